//! Bounds on what clients send to support; the checks themselves are `kit::check`.

/// The most characters a ticket's subject may have.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// The most characters a ticket's or a comment's body may have.
pub const MAX_BODY_CHARS: usize = 20_000;
/// The most characters an attachment's name may have.
pub const MAX_ATTACHMENT_NAME_CHARS: usize = 255;
/// The largest attachment.
pub const MAX_ATTACHMENT_BYTES: u64 = 25 << 20;
/// The most attachment bytes one user may keep, all tickets together: the bucket is the
/// platform's, shared by every user, so no one user may fill it.
pub const MAX_USER_ATTACHMENT_BYTES: i64 = 100 << 20;

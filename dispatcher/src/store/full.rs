//! Telling a full disk apart from every other storage failure: `ENOSPC` (no space left on
//! the device) and `EDQUOT` (the owner's quota is used up) from the operating system, and
//! `SQLITE_FULL` from SQLite, which is what a database write answers when the disk fills.
//! A full disk is the operator's to fix, not a bug, so it gets its own error and answer.

/// `ENOSPC` on Linux and the BSDs.
const ENOSPC: i32 = 28;
/// `EDQUOT` on Linux.
const EDQUOT: i32 = 122;

/// True when `error` says the disk or the quota is full.
pub fn io_is_full(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    ) || matches!(error.raw_os_error(), Some(ENOSPC | EDQUOT))
}

/// True when SQLite failed because the disk is full.
pub fn sqlite_is_full(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _) if failure.code == rusqlite::ErrorCode::DiskFull
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_and_edquot_are_full_and_other_errors_are_not() {
        assert!(io_is_full(&std::io::Error::from_raw_os_error(ENOSPC)));
        assert!(io_is_full(&std::io::Error::from_raw_os_error(EDQUOT)));
        assert!(io_is_full(&std::io::Error::from(
            std::io::ErrorKind::StorageFull
        )));
        assert!(!io_is_full(&std::io::Error::from_raw_os_error(5))); // EIO
        assert!(!io_is_full(&std::io::Error::from(
            std::io::ErrorKind::NotFound
        )));
    }

    #[test]
    fn sqlite_full_is_full_and_other_failures_are_not() {
        let failure = |code| {
            rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some("x".into()))
        };
        assert!(sqlite_is_full(&failure(rusqlite::ffi::SQLITE_FULL)));
        assert!(!sqlite_is_full(&failure(rusqlite::ffi::SQLITE_IOERR)));
        assert!(!sqlite_is_full(&rusqlite::Error::QueryReturnedNoRows));
    }
}

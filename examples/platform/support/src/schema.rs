//! The support database: its schema, one migration per version, and the handle every
//! request opens through [`database`], which brings the schema up to date first.

use platform_kit as kit;
use sdk::{Env, Result, Sql};

/// The schema, one entry per version (see `kit::migrate`).
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE tickets (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        app_key TEXT NOT NULL,
        subject TEXT NOT NULL,
        body TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX tickets_by_user ON tickets (user_id, created_at);
    CREATE INDEX tickets_by_status ON tickets (status, created_at);
    CREATE TABLE comments (
        id TEXT PRIMARY KEY,
        ticket_id TEXT NOT NULL REFERENCES tickets(id),
        user_id TEXT NOT NULL,
        author_role TEXT NOT NULL CHECK (author_role IN ('user', 'admin')),
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX comments_by_ticket ON comments (ticket_id, created_at)
",
    "
    CREATE TABLE attachments (
        id TEXT PRIMARY KEY,
        ticket_id TEXT NOT NULL REFERENCES tickets(id),
        user_id TEXT NOT NULL,
        name TEXT NOT NULL,
        size INTEGER NOT NULL,
        content_type TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX attachments_by_ticket ON attachments (ticket_id, created_at)
",
    "
    CREATE TABLE notifications (
        id TEXT PRIMARY KEY,
        ticket_id TEXT NOT NULL REFERENCES tickets(id),
        user_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX notifications_by_ticket ON notifications (ticket_id, created_at)
",
];

/// The `DB` binding, migrated to the latest schema.
pub fn database(env: &Env) -> Result<Sql> {
    let db = env.sql("DB");
    kit::migrate(&db, MIGRATIONS)?;
    Ok(db)
}

//! Ticket notifications through a queue: a ticket opened, or answered by an admin, sends
//! a message to the `NOTIFY` queue (`ticket-notifications`, the platform's own), and this
//! service's queue consumer writes it to its `notifications` outbox, which a mail sender
//! would read; `GET /tickets/{id}` shows the ticket's. The request never waits for the
//! notification: sending is one durable write, delivery happens after.

use platform_kit as kit;
use sdk::{Env, MessageBatch, Result, Sql, params};
use serde::{Deserialize, Serialize};

use crate::schema;

/// What a notification says.
#[derive(Debug, Serialize, Deserialize)]
pub struct Notification {
    pub ticket_id: String,
    /// Who is told.
    pub user_id: String,
    /// `ticket_opened` or `admin_replied`.
    pub kind: String,
}

/// Sends a notification; a refused send is logged, never the request's failure.
pub fn send(env: &Env, notification: &Notification) {
    if let Err(e) = env.queue("NOTIFY").send_json(notification) {
        sdk::log::warn(format!("sending a ticket notification failed: {e:#}"));
    }
}

/// The queue consumer: writes each message to the outbox (once per message id).
pub async fn deliver(batch: MessageBatch, env: Env) -> Result<()> {
    let db = schema::database(&env)?;
    for message in &batch.messages {
        match message.json::<Notification>() {
            Ok(n) => {
                db.execute(
                    "INSERT OR IGNORE INTO notifications (id, ticket_id, user_id, kind, created_at)
                     VALUES (?, ?, ?, ?, ?)",
                    params![
                        format!("ntf_{}", message.id),
                        &n.ticket_id,
                        &n.user_id,
                        &n.kind,
                        kit::now()
                    ],
                )?;
                message.ack();
            }
            // Nothing to retry in a message that does not parse.
            Err(e) => {
                sdk::log::warn(format!("dropping an unreadable notification: {e:#}"));
                message.ack();
            }
        }
    }
    Ok(())
}

/// A ticket's notifications, oldest first.
pub fn of_ticket(db: &Sql, ticket_id: &str) -> Result<Vec<serde_json::Value>> {
    #[derive(Deserialize, Serialize)]
    struct Row {
        kind: String,
        user_id: String,
        created_at: i64,
    }
    let rows: Vec<Row> = db.query(
        "SELECT kind, user_id, created_at FROM notifications WHERE ticket_id = ?
         ORDER BY created_at, id",
        params![ticket_id],
    )?;
    Ok(rows
        .into_iter()
        .map(|r| serde_json::to_value(r).expect("rows serialise"))
        .collect())
}

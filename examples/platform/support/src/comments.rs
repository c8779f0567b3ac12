//! Comments on a ticket: adding one (by the ticket's owner or an admin, while the ticket
//! is open) and reading a ticket's comments in order.

use platform_kit::{self as kit, Caller};
use sdk::{Request, Response, Result, RouteContext, Sql, Statement, params};
use serde::{Deserialize, Serialize};

use crate::notifications::{self, Notification};
use crate::tickets::{self, OPEN};
use crate::{input, schema};

/// A comment, as stored and as the API shows it. `author_role` says whether the ticket's
/// user or an admin wrote it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Comment {
    pub id: String,
    pub ticket_id: String,
    pub user_id: String,
    pub author_role: String,
    pub body: String,
    pub created_at: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewComment {
    body: String,
}

/// `POST /tickets/{id}/comments {body}` → `201 {comment}`; `409 ticket_closed` once the
/// ticket is closed.
pub async fn add(mut req: Request, route: RouteContext) -> Result<Response> {
    let caller = Caller::required(&req)?;
    let ticket_id = tickets::ticket_id(&route)?;
    let form: NewComment = kit::body(&mut req).await?;
    let body = kit::check::text("body", &form.body, input::MAX_BODY_CHARS)?;
    let db = schema::database(&route.env)?;
    let ticket = tickets::visible(&db, &caller, &ticket_id)?;
    let owner = ticket.user_id.clone();
    if ticket.status != OPEN {
        return Err(tickets::closed());
    }
    let comment = Comment {
        id: kit::id("cmt_"),
        ticket_id: ticket.id,
        user_id: caller.user_id.clone(),
        author_role: if caller.is_admin() { "admin" } else { "user" }.into(),
        body,
        created_at: kit::now(),
    };
    // Both statements apply only while the ticket is open, so a close that lands between
    // the check above and this write still wins.
    let written = db.batch([
        Statement::new(
            "INSERT INTO comments (id, ticket_id, user_id, author_role, body, created_at)
             SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS
                 (SELECT 1 FROM tickets WHERE id = ? AND status = ?)",
        )
        .bind_all(params![
            &comment.id,
            &comment.ticket_id,
            &comment.user_id,
            &comment.author_role,
            &comment.body,
            comment.created_at,
            &comment.ticket_id,
            OPEN
        ]),
        Statement::new("UPDATE tickets SET updated_at = ? WHERE id = ? AND status = ?")
            .bind_all(params![comment.created_at, &comment.ticket_id, OPEN]),
    ])?;
    if written
        .first()
        .is_none_or(|insert| insert.rows_written == 0)
    {
        return Err(tickets::closed());
    }
    if caller.is_admin() && owner != caller.user_id {
        notifications::send(
            &route.env,
            &Notification {
                ticket_id: comment.ticket_id.clone(),
                user_id: owner,
                kind: "admin_replied".into(),
            },
        );
    }
    kit::created(&serde_json::json!({ "comment": comment }))
}

/// The comments of ticket `ticket_id`, oldest first.
pub fn of_ticket(db: &Sql, ticket_id: &str) -> Result<Vec<Comment>> {
    db.query(
        "SELECT * FROM comments WHERE ticket_id = ? ORDER BY created_at, rowid",
        params![ticket_id],
    )
}

//! Tickets: opening one, the caller's list (every ticket for an admin), one ticket with
//! its comments and attachments, and closing. A ticket is visible to its owner and to admins; to anyone
//! else it does not exist (`404`).

use platform_kit::{self as kit, ApiError, Caller};
use sdk::{Request, RequestExt as _, Response, Result, RouteContext, Sql, params};
use serde::{Deserialize, Serialize};

use crate::notifications::{self, Notification};
use crate::{attachments, comments, input, schema};

/// The status of a ticket that takes comments.
pub const OPEN: &str = "open";
/// The status of a ticket that is done; it takes no more comments.
pub const CLOSED: &str = "closed";

/// A ticket, as stored and as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Ticket {
    pub id: String,
    pub user_id: String,
    pub app_key: String,
    pub subject: String,
    pub body: String,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTicket {
    subject: String,
    body: String,
}

/// `POST /tickets {subject, body}` → `201 {ticket}`, open, owned by the caller.
pub async fn open(mut req: Request, route: RouteContext) -> Result<Response> {
    let caller = Caller::required(&req)?;
    let form: NewTicket = kit::body(&mut req).await?;
    let subject = kit::check::text("subject", &form.subject, input::MAX_SUBJECT_CHARS)?;
    let body = kit::check::text("body", &form.body, input::MAX_BODY_CHARS)?;
    let db = schema::database(&route.env)?;
    let now = kit::now();
    let ticket = Ticket {
        id: kit::id("tkt_"),
        user_id: caller.user_id,
        app_key: caller.app_key,
        subject,
        body,
        status: OPEN.into(),
        created_at: now,
        updated_at: now,
    };
    db.execute(
        "INSERT INTO tickets (id, user_id, app_key, subject, body, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            &ticket.id,
            &ticket.user_id,
            &ticket.app_key,
            &ticket.subject,
            &ticket.body,
            &ticket.status,
            ticket.created_at,
            ticket.updated_at
        ],
    )?;
    notifications::send(
        &route.env,
        &Notification {
            ticket_id: ticket.id.clone(),
            user_id: ticket.user_id.clone(),
            kind: "ticket_opened".into(),
        },
    );
    kit::created(&serde_json::json!({ "ticket": ticket }))
}

/// `GET /tickets[?status=open|closed]` → `{tickets}`, newest first: the caller's own, or
/// every ticket for an admin.
pub async fn list(req: Request, route: RouteContext) -> Result<Response> {
    let caller = Caller::required(&req)?;
    let status = status_filter(&req)?;
    let db = schema::database(&route.env)?;
    let tickets: Vec<Ticket> = db.query(
        "SELECT * FROM tickets
         WHERE (?1 OR user_id = ?2) AND (?3 IS NULL OR status = ?3)
         ORDER BY created_at DESC, rowid DESC",
        params![caller.is_admin(), &caller.user_id, status],
    )?;
    kit::ok(&serde_json::json!({ "tickets": tickets }))
}

/// `GET /tickets/{id}` → `{ticket, comments, attachments}`, both lists oldest first.
pub async fn show(req: Request, route: RouteContext) -> Result<Response> {
    let caller = Caller::required(&req)?;
    let id = ticket_id(&route)?;
    let db = schema::database(&route.env)?;
    let ticket = visible(&db, &caller, &id)?;
    let comments = comments::of_ticket(&db, &ticket.id)?;
    let attachments = attachments::of_ticket(&db, &ticket.id)?;
    let notifications = notifications::of_ticket(&db, &ticket.id)?;
    kit::ok(&serde_json::json!({
        "ticket": ticket,
        "comments": comments,
        "attachments": attachments,
        "notifications": notifications,
    }))
}

/// `POST /tickets/{id}/close` → `{ticket}`, now closed; closing a closed ticket changes
/// nothing.
pub async fn close(req: Request, route: RouteContext) -> Result<Response> {
    let caller = Caller::required(&req)?;
    let id = ticket_id(&route)?;
    let db = schema::database(&route.env)?;
    let mut ticket = visible(&db, &caller, &id)?;
    if ticket.status == OPEN {
        ticket.status = CLOSED.into();
        ticket.updated_at = kit::now();
        db.execute(
            "UPDATE tickets SET status = ?, updated_at = ? WHERE id = ?",
            params![&ticket.status, ticket.updated_at, &ticket.id],
        )?;
    }
    kit::ok(&serde_json::json!({ "ticket": ticket }))
}

/// The ticket `id` if `caller` may see it (its owner or an admin); `404` otherwise.
pub fn visible(db: &Sql, caller: &Caller, id: &str) -> Result<Ticket> {
    let ticket = db
        .first::<Ticket>("SELECT * FROM tickets WHERE id = ?", params![id])?
        .filter(|ticket| caller.is_admin() || ticket.user_id == caller.user_id);
    Ok(ticket.ok_or_else(|| ApiError::not_found(format!("ticket `{id}`")))?)
}

/// `409 ticket_closed`: what adding to a closed ticket answers.
pub fn closed() -> sdk::Error {
    ApiError::Conflict {
        code: "ticket_closed",
        message: "the ticket is closed".into(),
    }
    .into()
}

/// The well-formed ticket id of the path.
pub fn ticket_id(route: &RouteContext) -> Result<String, ApiError> {
    kit::check::id("id", route.param("id").unwrap_or_default(), "tkt_")
}

/// The `?status=` filter: none, `open` or `closed`.
fn status_filter(req: &Request) -> Result<Option<&'static str>, ApiError> {
    match req.query_param("status").as_deref() {
        None => Ok(None),
        Some(OPEN) => Ok(Some(OPEN)),
        Some(CLOSED) => Ok(Some(CLOSED)),
        Some(_) => Err(ApiError::field("status", "must be `open` or `closed`")),
    }
}

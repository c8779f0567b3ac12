//! Attachments of a ticket: adding one (the raw bytes of a request, by the ticket's owner
//! or an admin, while the ticket is open), a ticket's list, and downloading one. The rows
//! are in the `DB` database; the bytes in the `ATTACHMENTS` bucket under
//! `tickets/{ticket id}/{attachment id}`, streamed in and out, never whole in memory.

use platform_kit::{self as kit, ApiError, Caller};
use sdk::r2::PutOptions;
use sdk::{Bucket, Env, Request, RequestExt as _, Response, Result, RouteContext, Sql, params};
use serde::{Deserialize, Serialize};

use crate::tickets::{self, OPEN};
use crate::{input, schema};

/// An attachment, as stored and as the API shows it; `user_id` is who added it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Attachment {
    pub id: String,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    pub user_id: String,
    pub created_at: i64,
}

/// What a body without a `content-type` is stored as.
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// `POST /tickets/{id}/attachments?name=<file name>` with the bytes as body →
/// `201 {attachment}`; its `content-type` is kept. `409 ticket_closed` once the ticket is
/// closed; `413 too_large` over `MAX_ATTACHMENT_BYTES`, once the user keeps
/// `MAX_USER_ATTACHMENT_BYTES`, or when the platform's storage is full.
pub async fn add(req: Request, route: RouteContext) -> Result<Response> {
    let caller = Caller::required(&req)?;
    let ticket_id = tickets::ticket_id(&route)?;
    let name = req.query_param("name").unwrap_or_default();
    let name = kit::check::text("name", &name, input::MAX_ATTACHMENT_NAME_CHARS)?;
    let content_type = req
        .header("content-type")
        .unwrap_or(DEFAULT_CONTENT_TYPE)
        .to_owned();
    let db = schema::database(&route.env)?;
    let ticket = tickets::visible(&db, &caller, &ticket_id)?;
    if ticket.status != OPEN {
        return Err(tickets::closed());
    }
    let declared = req
        .header("content-length")
        .and_then(|length| length.parse::<u64>().ok());
    if declared.is_some_and(|length| length > input::MAX_ATTACHMENT_BYTES) {
        return Err(too_large().into());
    }
    let stored: Option<i64> = db
        .first(
            "SELECT COALESCE(SUM(size), 0) AS total FROM attachments WHERE user_id = ?",
            params![&caller.user_id],
        )?
        .map(|row: serde_json::Value| row["total"].as_i64().unwrap_or(0));
    if stored.unwrap_or(0) >= input::MAX_USER_ATTACHMENT_BYTES {
        return Err(ApiError::TooLarge(format!(
            "you keep {} MiB of attachments already, the most one user may",
            input::MAX_USER_ATTACHMENT_BYTES >> 20
        ))
        .into());
    }
    let id = kit::id("att_");
    let key = key(&ticket.id, &id);
    let bucket = bucket(&route.env);
    let options = PutOptions::new().content_type(&content_type);
    let object = match bucket.put(&key, req.into_body(), options).await {
        Ok(object) => object,
        Err(e) if is_limit(&e) => return Err(too_large().into()),
        Err(e) => return Err(e),
    };
    // A body sent without a length is only measured once stored.
    if object.size > input::MAX_ATTACHMENT_BYTES {
        bucket.delete([&key]).await?;
        return Err(too_large().into());
    }
    let attachment = Attachment {
        id,
        name,
        size: object.size as i64, // objects are at most 5 GiB
        content_type,
        user_id: caller.user_id,
        created_at: kit::now(),
    };
    // Only while the ticket is still open, so a close that lands during the upload wins.
    let inserted = db.execute(
        "INSERT INTO attachments (id, ticket_id, user_id, name, size, content_type, created_at)
         SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS
             (SELECT 1 FROM tickets WHERE id = ? AND status = ?)",
        params![
            &attachment.id,
            &ticket.id,
            &attachment.user_id,
            &attachment.name,
            attachment.size,
            &attachment.content_type,
            attachment.created_at,
            &ticket.id,
            OPEN
        ],
    );
    match inserted {
        Ok(results) if results.rows_written > 0 => {
            kit::created(&serde_json::json!({ "attachment": attachment }))
        }
        // No row points at the bytes: remove them.
        Ok(_) => {
            bucket.delete([&key]).await?;
            Err(tickets::closed())
        }
        Err(e) => {
            if let Err(cleanup) = bucket.delete([&key]).await {
                sdk::console_error!("removing the bytes of a failed attachment: {cleanup:#}");
            }
            Err(e)
        }
    }
}

/// `GET /tickets/{id}/attachments/{attachment_id}` → the bytes, streamed, with the
/// `content-type` they were added with. They are served as a download
/// (`content-disposition: attachment`, no sniffing, a sandboxed document), so a file
/// someone attached never runs as a page of the platform's origin.
pub async fn download(req: Request, route: RouteContext) -> Result<Response> {
    let caller = Caller::required(&req)?;
    let ticket_id = tickets::ticket_id(&route)?;
    let attachment_id = route.param("attachment_id").unwrap_or_default();
    let attachment_id = kit::check::id("attachment_id", attachment_id, "att_")?;
    let db = schema::database(&route.env)?;
    let ticket = tickets::visible(&db, &caller, &ticket_id)?;
    let not_found = || ApiError::not_found(format!("attachment `{attachment_id}`"));
    let attachment = db.first::<Attachment>(
        "SELECT id, name, size, content_type, user_id, created_at FROM attachments
         WHERE id = ? AND ticket_id = ?",
        params![&attachment_id, &ticket.id],
    )?;
    let attachment = attachment.ok_or_else(not_found)?;
    let Some(found) = bucket(&route.env)
        .get(&key(&ticket.id, &attachment_id))
        .await?
    else {
        return Err(not_found().into());
    };
    found
        .into_response()
        .with_header("content-disposition", disposition(&attachment.name))?
        .with_header("x-content-type-options", "nosniff")?
        .with_header("content-security-policy", "sandbox")
}

/// The attachments of ticket `ticket_id`, oldest first.
pub fn of_ticket(db: &Sql, ticket_id: &str) -> Result<Vec<Attachment>> {
    db.query(
        "SELECT id, name, size, content_type, user_id, created_at FROM attachments
         WHERE ticket_id = ? ORDER BY created_at, rowid",
        params![ticket_id],
    )
}

/// `attachment; filename="<name>"`, the name's characters outside `A-Za-z0-9._-` and
/// space replaced by `_` so it is a valid header and cannot break out of the quotes.
fn disposition(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '_' | '-' | ' ' => c,
            _ => '_',
        })
        .collect();
    format!("attachment; filename=\"{safe}\"")
}

/// The `ATTACHMENTS` bucket.
fn too_large() -> ApiError {
    ApiError::TooLarge(format!(
        "an attachment is at most {} MiB",
        input::MAX_ATTACHMENT_BYTES >> 20
    ))
}

/// Whether the bucket refused a put for a limit (the platform's storage quota).
fn is_limit(error: &sdk::Error) -> bool {
    error
        .downcast_ref::<sdk::BindingError>()
        .is_some_and(|e| e.kind() == sdk::BindingErrorKind::LimitExceeded)
}

fn bucket(env: &Env) -> Bucket {
    env.bucket("ATTACHMENTS")
}

/// Where the bytes of attachment `id` of ticket `ticket_id` are.
fn key(ticket_id: &str, id: &str) -> String {
    format!("tickets/{ticket_id}/{id}")
}

//! `POST /ai/generate {prompt}` → `{text, credits_spent, balance}`: who pays is the owner
//! of the API key in `Authorization: Bearer ak_…`, or else the signed-in caller. Billing
//! (the `BILLING` binding, called with the payer's identity) is asked first whether the
//! payer has [`PRICE`] credits, then the model answers, then the credits are spent under
//! a fresh idempotency key. Too few credits is `402 insufficient_credits` with nothing
//! spent; any other failure of billing's is answered as billing gave it.

use platform_kit::{self as kit, ApiError, Caller};
use sdk::{Request, RequestExt as _, Response, RouteContext};
use serde::Deserialize;
use serde_json::json;

use crate::keys::{self, SECRET_PREFIX};
use crate::model;

/// What one answer costs, in credits.
const PRICE: u64 = 10;

/// The longest prompt, in characters.
const MAX_PROMPT_CHARS: usize = 4000;

/// The binding to the billing service.
const BILLING: &str = "BILLING";

#[derive(Deserialize)]
struct GenerateRequest {
    prompt: String,
}

/// The `data` of billing's envelope.
#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(Deserialize)]
struct CheckAnswer {
    sufficient: bool,
}

#[derive(Deserialize)]
struct SpendAnswer {
    balance: i64,
}

/// `POST /ai/generate {prompt}`; see the module's documentation.
pub async fn generate(mut req: Request, route: RouteContext) -> sdk::Result<Response> {
    let payer = payer(&req, &route)?;
    let request: GenerateRequest = kit::body(&mut req).await?;
    let prompt = kit::check::text("prompt", &request.prompt, MAX_PROMPT_CHARS)?;

    let check = call_billing(&route, &payer, "/credits/check", json!({ "amount": PRICE })).await?;
    if !is_success(&check) {
        return Ok(check);
    }
    let check: Envelope<CheckAnswer> = check.into_json().await?;
    if !check.data.sufficient {
        return Err(ApiError::InsufficientCredits(format!(
            "an answer costs {PRICE} credits; buy more to continue"
        ))
        .into());
    }

    let text = model::answer(&prompt);

    let spend = json!({ "amount": PRICE, "idempotency_key": kit::id("gen_") });
    let spend = call_billing(&route, &payer, "/credits/spend", spend).await?;
    // Billing's refusal as it is; a 402 here means a concurrent request spent the
    // credits since the check.
    if !is_success(&spend) {
        return Ok(spend);
    }
    let spend: Envelope<SpendAnswer> = spend.into_json().await?;
    kit::ok(&json!({ "text": text, "credits_spent": PRICE, "balance": spend.data.balance }))
}

/// Who pays: the owner of the request's API key, if it carries one (`401` when that key
/// is unknown or revoked), or else the signed-in caller.
fn payer(req: &Request, route: &RouteContext) -> sdk::Result<Caller> {
    let api_key = req
        .header("authorization")
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| token.starts_with(SECRET_PREFIX));
    match api_key {
        Some(secret) => {
            let db = keys::open(route)?;
            let owner = keys::owner(&db, secret)?;
            owner.ok_or_else(|| ApiError::Unauthorized("unknown or revoked API key".into()).into())
        }
        None => Ok(Caller::required(req)?),
    }
}

/// `POST path` with JSON `body` to billing, as `payer`.
async fn call_billing(
    route: &RouteContext,
    payer: &Caller,
    path: &str,
    body: serde_json::Value,
) -> sdk::Result<Response> {
    let mut request = sdk::http::Request::post(path).header("content-type", "application/json");
    for (name, value) in payer.headers() {
        request = request.header(name, value);
    }
    let request = request.body(serde_json::to_vec(&body)?)?;
    route.env.service(BILLING).fetch(request).await
}

fn is_success(response: &Response) -> bool {
    (200..300).contains(&response.status())
}

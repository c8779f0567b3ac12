//! The `Customer` extractor: the caller identified by its `X-Customer-Token`, or
//! `401 unauthorized`. Tokens are checked against stored digests in constant time. A
//! request carrying the token header more than once (in any spelling, `X_Customer_Token`
//! included) is ambiguous and answered `400 bad_request`: a proxy in front could have
//! read another one than this server.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::deploy::blocking;
use crate::identity;

pub const TOKEN_HEADER: &str = identity::CUSTOMER_TOKEN;

/// The authenticated customer making a management request.
pub struct Customer(pub crate::store::Customer);

impl FromRequestParts<AppState> for Customer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = parts
            .headers
            .iter()
            .filter(|(name, _)| identity::is_spelling_of(name.as_str(), TOKEN_HEADER))
            .count();
        if presented > 1 {
            return Err(ApiError::BadRequest(
                "send the X-Customer-Token header once; this request has several".into(),
            ));
        }
        let token = parts
            .headers
            .get(TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized)?
            .to_string();
        let store = state.store.clone();
        let found = blocking(move || Ok(store.authenticate(&token)?)).await?;
        found.map(Customer).ok_or(ApiError::Unauthorized)
    }
}

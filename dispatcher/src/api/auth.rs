//! The `Customer` extractor: the caller identified by its `X-Customer-Token`, or
//! `401 unauthorized`. Tokens are checked against stored digests in constant time.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::deploy::blocking;

pub const TOKEN_HEADER: &str = crate::identity::CUSTOMER_TOKEN;

/// The authenticated customer making a management request.
pub struct Customer(pub crate::store::Customer);

impl FromRequestParts<AppState> for Customer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized)?
            .to_string();
        let store = state.deployer.store.clone();
        let found = blocking(move || Ok(store.authenticate(&token)?)).await?;
        found.map(Customer).ok_or(ApiError::Unauthorized)
    }
}

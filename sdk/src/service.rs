//! Service bindings: [`Service`] calls another script of the platform over HTTP. There is
//! no import for it: the request is an ordinary `wasi:http` outgoing request carrying the
//! header [`BINDING_HEADER`], which the platform removes before running the bound script
//! in the same process.

use anyhow::Context as _;
use wstd::http::{Client, HeaderValue, Uri};

use crate::{Body, Request, Response, Result};

/// The header naming the binding an outgoing request is for.
pub use platform_names::SERVICE_BINDING_HEADER as BINDING_HEADER;

/// A `service` binding, from [`Env::service`](crate::Env::service): another script,
/// called with HTTP requests.
///
/// ```ignore
/// // Forward the incoming request as it is:
/// let response = env.service("BACKEND").fetch(req).await?;
/// // Or make a new one:
/// let me = env.service("AUTH").get("/whoami").await?.into_text().await?;
/// ```
#[derive(Debug, Clone)]
pub struct Service {
    binding: String,
}

impl Service {
    pub(crate) fn new(binding: &str) -> Self {
        Self {
            binding: binding.to_owned(),
        }
    }

    /// Sends `request` to the bound script and returns its response, whose body streams.
    ///
    /// Method, headers and body go as they are. A URI without scheme or authority (such
    /// as `/path?x=1`) is sent as `http://<binding name in lowercase>/path?x=1`; a full
    /// URI is kept. Fails, with the platform's explanation in the message, when the call
    /// cannot be made (no such binding, the call-depth limit, ...). A response of any
    /// status, `5xx` included, is a success.
    pub async fn fetch<B: Into<Body>>(&self, request: wstd::http::Request<B>) -> Result<Response> {
        let (mut parts, body) = request.into_parts();
        if parts.uri.scheme().is_none() || parts.uri.authority().is_none() {
            let path = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            parts.uri = Uri::builder()
                .scheme("http")
                .authority(self.binding.to_lowercase())
                .path_and_query(path)
                .build()
                .with_context(|| format!("service `{}`: building the URI", self.binding))?;
        }
        let name = HeaderValue::from_str(&self.binding)
            .with_context(|| format!("service `{}`: invalid binding name", self.binding))?;
        parts.headers.insert(BINDING_HEADER, name);
        let request = Request::from_parts(parts, body.into());
        // One message, so that `{e}` shows the platform's explanation too.
        let response = Client::new()
            .send(request)
            .await
            .map_err(|e| anyhow::anyhow!("service `{}`: {e:#}", self.binding))?;
        Ok(response.into())
    }

    /// Sends `GET uri` with an empty body; see [`Service::fetch`].
    pub async fn get(&self, uri: &str) -> Result<Response> {
        let request = wstd::http::Request::get(uri).body(Body::empty())?;
        self.fetch(request).await
    }
}

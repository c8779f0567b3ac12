//! [`RequestExt`], helpers on the incoming [`Request`]: reading the body as bytes, text or
//! JSON, and reading headers and query parameters.

use std::future::Future;

use serde::de::DeserializeOwned;

use crate::{Request, Result};

/// Helpers on [`Request`]. Bring them in with `use sdk::RequestExt as _;`.
///
/// ```ignore
/// #[derive(serde::Deserialize)]
/// struct NewNote { body: String }
///
/// let note: NewNote = req.json().await?;
/// let limit = req.query_param("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
/// ```
pub trait RequestExt {
    /// Reads the whole body.
    fn bytes(&mut self) -> impl Future<Output = Result<Vec<u8>>>;

    /// Reads the whole body as UTF-8 text.
    fn text(&mut self) -> impl Future<Output = Result<String>>;

    /// Reads the whole body as JSON into `T`.
    fn json<T: DeserializeOwned>(&mut self) -> impl Future<Output = Result<T>>;

    /// The first value of header `name`, if it is there and is text.
    fn header(&self, name: &str) -> Option<&str>;

    /// The first value of query parameter `name`, decoded (`%XX` and `+`).
    fn query_param(&self, name: &str) -> Option<String>;

    /// All query parameters in order, decoded (`%XX` and `+`).
    fn query_pairs(&self) -> Vec<(String, String)>;
}

impl RequestExt for Request {
    async fn bytes(&mut self) -> Result<Vec<u8>> {
        Ok(self.body_mut().contents().await?.to_vec())
    }

    async fn text(&mut self) -> Result<String> {
        Ok(self.body_mut().str_contents().await?.to_owned())
    }

    async fn json<T: DeserializeOwned>(&mut self) -> Result<T> {
        self.body_mut().json().await
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers().get(name)?.to_str().ok()
    }

    fn query_param(&self, name: &str) -> Option<String> {
        let query = self.uri().query()?;
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    fn query_pairs(&self) -> Vec<(String, String)> {
        let query = self.uri().query().unwrap_or_default();
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }
}

/// Reads the whole body of `req` as JSON into `T`; the same as
/// [`RequestExt::json`].
///
/// ```ignore
/// let note: Note = sdk::json(&mut req).await?;
/// ```
pub async fn json<T: DeserializeOwned>(req: &mut Request) -> Result<T> {
    req.json().await
}

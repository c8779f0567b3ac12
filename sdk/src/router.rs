//! [`Router`], dispatch on method and path (matched by `matchit`), and [`RouteContext`],
//! what a route handler gets besides the request.

use std::future::Future;
use std::pin::Pin;

use anyhow::anyhow;

use crate::{Context, Env, Method, Request, Response, Result};

type Handler =
    Box<dyn Fn(Request, RouteContext) -> Pin<Box<dyn Future<Output = Result<Response>>>>>;

/// Routes requests by method and path to `async fn(Request, RouteContext) -> Result<Response>`
/// handlers.
///
/// Paths are matched segment by segment: `:name` matches one segment, `*name` the rest of
/// the path (one or more characters, at the end only); matchit's own `{name}` and
/// `{*name}` work too. Static segments win over parameters. Parameter values are
/// percent-decoded ([`RouteContext::param`]).
///
/// [`Router::run`] answers `404 Not Found` when no path matches and `405 Method Not
/// Allowed` (with `allow`) when the path matches but not the method. An invalid or
/// conflicting path makes `run` fail.
///
/// ```ignore
/// #[sdk::fetch]
/// async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
///     Router::new()
///         .get("/notes/:id", get_note)
///         .put("/notes/:id", put_note)
///         .get("/files/*path", get_file)
///         .run(req, env, ctx)
///         .await
/// }
///
/// async fn get_note(_req: Request, route: RouteContext) -> Result<Response> {
///     let id = route.param("id").unwrap_or_default();
///     match route.env.kv("NOTES").get_text(id)? {
///         Some(note) => Ok(Response::text(note)),
///         None => Ok(Response::error("no such note", 404)),
///     }
/// }
/// ```
pub struct Router {
    matcher: matchit::Router<usize>,
    routes: Vec<Route>,
    error: Option<crate::Error>,
    unmatched: fn(u16, &str) -> Response,
}

struct Route {
    pattern: String,
    handlers: Vec<(Method, Handler)>,
}

/// What a route handler gets besides the request: the path parameters, the bindings and
/// the request's context.
#[derive(Debug)]
pub struct RouteContext {
    params: Vec<(String, String)>,
    /// The script's bindings.
    pub env: Env,
    /// The request's context, for [`Context::wait_until`].
    pub ctx: Context,
}

impl RouteContext {
    /// The percent-decoded value of path parameter `name` (`:name` or `*name`).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// All path parameters, in the order of the path.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

impl Router {
    /// A router without routes.
    pub fn new() -> Self {
        Self {
            matcher: matchit::Router::new(),
            routes: Vec::new(),
            error: None,
            unmatched: |status, message| Response::error(message, status),
        }
    }

    /// Sets how the router's own `404` and `405` answers are made: `answer(status,
    /// message)`, e.g. to answer in a JSON format of your API. The default is
    /// [`Response::error`] (plain text). A `405` keeps its `allow` header.
    pub fn on_unmatched(mut self, answer: fn(status: u16, message: &str) -> Response) -> Self {
        self.unmatched = answer;
        self
    }

    /// Routes `GET path` to `handler`.
    pub fn get<H, F>(self, path: &str, handler: H) -> Self
    where
        H: Fn(Request, RouteContext) -> F + 'static,
        F: Future<Output = Result<Response>> + 'static,
    {
        self.on(Method::GET, path, handler)
    }

    /// Routes `POST path` to `handler`.
    pub fn post<H, F>(self, path: &str, handler: H) -> Self
    where
        H: Fn(Request, RouteContext) -> F + 'static,
        F: Future<Output = Result<Response>> + 'static,
    {
        self.on(Method::POST, path, handler)
    }

    /// Routes `PUT path` to `handler`.
    pub fn put<H, F>(self, path: &str, handler: H) -> Self
    where
        H: Fn(Request, RouteContext) -> F + 'static,
        F: Future<Output = Result<Response>> + 'static,
    {
        self.on(Method::PUT, path, handler)
    }

    /// Routes `PATCH path` to `handler`.
    pub fn patch<H, F>(self, path: &str, handler: H) -> Self
    where
        H: Fn(Request, RouteContext) -> F + 'static,
        F: Future<Output = Result<Response>> + 'static,
    {
        self.on(Method::PATCH, path, handler)
    }

    /// Routes `DELETE path` to `handler`.
    pub fn delete<H, F>(self, path: &str, handler: H) -> Self
    where
        H: Fn(Request, RouteContext) -> F + 'static,
        F: Future<Output = Result<Response>> + 'static,
    {
        self.on(Method::DELETE, path, handler)
    }

    /// Routes `method path` to `handler`; a later route for the same method and path
    /// replaces an earlier one.
    pub fn on<H, F>(mut self, method: Method, path: &str, handler: H) -> Self
    where
        H: Fn(Request, RouteContext) -> F + 'static,
        F: Future<Output = Result<Response>> + 'static,
    {
        let pattern = to_matchit(path);
        let index = match self.routes.iter().position(|r| r.pattern == pattern) {
            Some(index) => index,
            None => {
                let index = self.routes.len();
                if let Err(e) = self.matcher.insert(pattern.clone(), index) {
                    self.error
                        .get_or_insert_with(|| anyhow!("router: invalid route `{path}`: {e}"));
                    return self;
                }
                self.routes.push(Route {
                    pattern,
                    handlers: Vec::new(),
                });
                index
            }
        };
        let handlers = &mut self.routes[index].handlers;
        handlers.retain(|(m, _)| *m != method);
        handlers.push((
            method,
            Box::new(move |req, route| Box::pin(handler(req, route))),
        ));
        self
    }

    /// Runs the handler of the route matching `req`, or answers `404` / `405`.
    pub async fn run(self, req: Request, env: Env, ctx: Context) -> Result<Response> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let Ok(matched) = self.matcher.at(req.uri().path()) else {
            return Ok((self.unmatched)(404, "Not Found").with_status(404));
        };
        let route = &self.routes[*matched.value];
        let Some((_, handler)) = route.handlers.iter().find(|(m, _)| *m == req.method()) else {
            let allow: Vec<&str> = route.handlers.iter().map(|(m, _)| m.as_str()).collect();
            return (self.unmatched)(405, "Method Not Allowed")
                .with_status(405)
                .with_header("allow", allow.join(", "));
        };
        let params = matched
            .params
            .iter()
            .map(|(name, value)| {
                let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
                (name.to_owned(), value.into_owned())
            })
            .collect();
        handler(req, RouteContext { params, env, ctx }).await
    }
}

/// `/notes/:id/*rest` → `/notes/{id}/{*rest}`; other segments are kept as they are.
fn to_matchit(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if let Some(name) = segment.strip_prefix(':') {
                format!("{{{name}}}")
            } else if let Some(name) = segment.strip_prefix('*') {
                format!("{{*{name}}}")
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

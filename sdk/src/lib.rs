//! The guest-side SDK for scripts: write one `async fn` marked [`#[sdk::fetch]`](fetch) and
//! build the crate as a `cdylib` for `wasm32-wasip2`; the platform runs it for every
//! request. Bindings of the script reach it through [`Env`]: plain-text variables and
//! secrets, KV namespaces ([`Kv`]), SQLite databases ([`Sql`]), object-storage buckets
//! ([`Bucket`]) and other scripts ([`Service`]). [`Context::wait_until`] runs work after
//! the response is sent, [`log`] writes to the script's log and [`Router`] dispatches on
//! method and path.
//!
//! ```ignore
//! use sdk::{Context, Env, Request, Response, Result};
//!
//! #[sdk::fetch]
//! async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
//!     let cache = env.kv("CACHE");
//!     let visits = cache.get_json::<u64>("visits")?.unwrap_or(0) + 1;
//!     cache.put_json("visits", &visits)?;
//!     let (db, path) = (env.sql("DB"), req.uri().path().to_owned());
//!     ctx.wait_until(async move {
//!         if let Err(e) = db.execute("INSERT INTO hits (path) VALUES (?)", sdk::params![path]) {
//!             sdk::console_error!("recording the hit: {e:#}");
//!         }
//!     });
//!     let greeting = env.var("GREETING").unwrap_or_else(|| "Hello".into());
//!     Ok(Response::text(format!("{greeting}! Visit #{visits}.")))
//! }
//! ```
//!
//! `examples/everything` adds a secret and a service call; `examples/kv`,
//! `examples/sql` and `examples/r2` use the [`Router`].
//!
//! The crate's `Cargo.toml` declares `[lib] crate-type = ["cdylib"]` and depends on `sdk`
//! alone; `cargo build --target wasm32-wasip2` produces the component to upload.
//!
//! The [`Error`] type is [`anyhow::Error`], so `?` works on the errors of this crate, of
//! [`wstd`] and of most libraries; an error returned from the handler is logged (its
//! owner reads it in the tail) and answered with a `500` whose body is only
//! `internal error`, so no error text reaches whoever sent the request.

mod bindings;
mod context;
mod env;
pub mod kv;
pub mod log;
pub mod queue;
pub mod r2;
mod request;
mod response;
mod router;
mod scheduled;
mod serve;
pub mod service;
pub mod sql;

pub use anyhow;
pub use context::Context;
pub use env::{BindingError, BindingErrorKind, Env};
pub use kv::Kv;
/// The names host and guests agree on (binding, script and bucket names, platform headers).
pub use platform_names as names;
pub use r2::Bucket;
pub use request::{RequestExt, json};
pub use response::Response;
pub use router::{RouteContext, Router};
pub use service::Service;
pub use sql::{Sql, Statement, Value};
pub use wstd;
pub use wstd::http;
pub use wstd::http::{Body, Method, StatusCode};

/// Exports an `async fn(ScheduledEvent, Env, Context) -> Result<()>` as the script's
/// `platform:worker/scheduled` handler, run at each of its Cron Triggers (a script that
/// has schedules must export it; it keeps its `#[sdk::fetch]` too).
///
/// ```ignore
/// #[sdk::scheduled]
/// async fn scheduled(event: sdk::ScheduledEvent, env: sdk::Env, _ctx: sdk::Context) -> sdk::Result<()> {
///     env.kv("CACHE").put("last-run", event.scheduled_time.to_string())?;
///     Ok(())
/// }
/// ```
pub use queue::{Message, MessageBatch, Queue};
pub use scheduled::ScheduledEvent;
/// Exports an `async fn(Request, Env, Context) -> Result<Response>` as the script's
/// `wasi:http/incoming-handler`.
///
/// For every request the handler runs inside the `wstd` runtime. `Ok(response)` is sent
/// as is (a streamed body streams). `Err(e)` is logged at the error level, with its
/// causes, and answered with `500` and the text `internal error`. Once the body
/// has been fully sent, every future given to [`Context::wait_until`] runs to completion
/// before the call returns, so the platform's limits still apply to them.
///
/// Use it once per crate, at the crate root. The handler may have any name but `main`;
/// the macro provides the `main` a `bin` crate needs, so the crate can be a `cdylib` lib
/// (preferred) or a `bin`.
///
/// ```ignore
/// #[sdk::fetch]
/// async fn fetch(req: sdk::Request, env: sdk::Env, ctx: sdk::Context) -> sdk::Result<sdk::Response> {
///     Ok(sdk::Response::text("Hello!"))
/// }
/// ```
pub use sdk_macro::fetch;
/// Exports an `async fn(MessageBatch, Env, Context) -> Result<()>` as the script's
/// `platform:worker/queue-handler`, given the messages of the queues it consumes (see
/// [`queue`]).
pub use sdk_macro::queue;
pub use sdk_macro::scheduled;

/// The incoming request handed to the handler: an [`http::Request`] whose body streams.
/// Read it with [`RequestExt`].
pub type Request = wstd::http::Request<Body>;

/// The error type of the SDK and of handlers: [`anyhow::Error`]. Binding calls fail with a
/// [`BindingError`] inside it.
pub type Error = anyhow::Error;

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What `#[sdk::fetch]` expands to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::queue::bindings as queue;
    pub use crate::queue::run as run_queue;
    pub use crate::scheduled::bindings as scheduled;
    pub use crate::scheduled::run as run_scheduled;
    pub use crate::serve::serve;
    pub use wstd::__internal::wasip2;
}

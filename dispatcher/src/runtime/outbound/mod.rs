//! The one way out of a script: every `wasi:http/outgoing-handler` request passes through
//! [`Egress::send_request`] (guests get no sockets, files or environment), which
//! 1. counts it as a subrequest of the run and its callers (refused past the limit);
//! 2. strips identity headers a script could forge (`X-User-Id`, `X-User-Role`,
//!    `X-App-Key`, `X-Customer-Token`, in any spelling: `crate::identity`) — `Host` is
//!    already refused by wasi-http. Only the platform's own scripts keep them on service
//!    calls to each other (a first-party service passes its caller's identity on);
//! 3. sends a request naming a service binding to the bound script, in-process
//!    (`service.rs`);
//! 4. applies the script's outbound policy: hand the request to its outbound worker
//!    (a platform script that sees the params as vars), or check it against its allow
//!    list; then sends it with the SSRF-safe client, at most `MAX_CONNECTIONS` at once.

mod client;
pub mod policy;
mod service;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use http_body::Body as _;
use http_body_util::BodyExt as _;
use tokio::sync::Semaphore;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::invoke::Entry;
use super::limits::{Budget, MAX_CALL_DEPTH};
use super::{LoadedScript, Runtime};
use crate::identity;
use crate::store::PLATFORM_NAMESPACE;
pub use policy::{AddressPolicy, AllowList};
pub use service::ServiceBinding;

/// Most connections one script run may have open at once; more wait for a free one.
pub const MAX_CONNECTIONS: usize = 6;

/// A script's outbound policy, ready to apply.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// Anywhere public (and what the server's config opens).
    Default,
    /// Only these origins.
    Allow(AllowList),
    /// Every request goes to this platform script, with these params as vars.
    Worker {
        script: String,
        params: Arc<BTreeMap<String, String>>,
    },
}

/// The error a script sees when the platform refuses its outgoing request; `why` reaches
/// the script as the message of `internal-error`.
pub(crate) fn refusal(why: String) -> HttpError {
    HttpError::InternalError(Some(why))
}

pub(crate) type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    HttpError,
>;

/// The `wasi:http` hooks of one script run.
pub struct Egress {
    pub runtime: Arc<Runtime>,
    pub script: Arc<LoadedScript>,
    pub budget: Arc<Budget>,
    /// `MAX_CONNECTIONS` permits, made on the run's first direct request.
    connections: Option<Arc<Semaphore>>,
}

impl Egress {
    pub fn new(runtime: Arc<Runtime>, script: Arc<LoadedScript>, budget: Arc<Budget>) -> Egress {
        Egress {
            runtime,
            script,
            budget,
            connections: None,
        }
    }

    fn refuse(why: String) -> Box<dyn Future<Output = SendResult> + Send> {
        Box::new(async move { Err(refusal(why)) })
    }
}

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        // A refused request is dropped before its body is read; drain it instead, so the
        // guest's body writes succeed and it sees why the request was refused.
        let mut request = request.map(|body| DrainOnDrop(Some(body)).boxed_unsync());
        if let Err(limit) = self.budget.take_subrequest() {
            return Egress::refuse(format!(
                "subrequest limit of {limit} reached: this request may make no more \
                 outgoing requests or service calls"
            ));
        }
        let runtime = self.runtime.clone();
        let binding = service::binding_of(&mut request);
        let first_party_call = binding.is_some() && self.script.namespace == PLATFORM_NAMESPACE;
        if !first_party_call {
            identity::strip(request.headers_mut());
        }
        if let Some(binding) = binding {
            let routed = service::route(&runtime, &self.script, &self.budget, &binding);
            return Box::new(async move {
                let routed = routed?;
                let entry = Entry::Call {
                    entrypoint: routed.entrypoint,
                };
                runtime
                    .call(routed.callee, request, routed.budget, None, entry)
                    .await
            });
        }
        match &self.script.outbound {
            Outbound::Worker { script, params } => {
                let worker = runtime.index.get(PLATFORM_NAMESPACE, script);
                let Some(worker) = worker else {
                    return Egress::refuse(format!(
                        "outbound worker `{script}` is not deployed; outgoing requests are refused"
                    ));
                };
                let Some(budget) = self.budget.for_callee(worker.limits) else {
                    return Egress::refuse(format!(
                        "outbound worker `{script}`: call depth limit of {MAX_CALL_DEPTH} reached"
                    ));
                };
                let params = params.clone();
                let entry = Entry::Call { entrypoint: None };
                Box::new(async move {
                    runtime
                        .call(worker, request, budget, Some(params), entry)
                        .await
                })
            }
            Outbound::Allow(list) if !list.allows(request.uri()) => Egress::refuse(format!(
                "outbound request to `{}` refused: not in this script's allow list",
                origin(request.uri())
            )),
            Outbound::Allow(_) | Outbound::Default => {
                let connections = self
                    .connections
                    .get_or_insert_with(|| Arc::new(Semaphore::new(MAX_CONNECTIONS)))
                    .clone();
                Box::new(async move {
                    let permit = connections
                        .acquire_owned()
                        .await
                        .map_err(|_| HttpError::ConnectionLimitReached)?;
                    client::send(request, &runtime.addresses, permit).await
                })
            }
        }
    }
}

/// A request body that, dropped unfinished, is read to its end in the background.
struct DrainOnDrop(Option<WasiBody>);

impl http_body::Body for DrainOnDrop {
    type Data = bytes::Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, HttpError>>> {
        match self.0.as_mut() {
            Some(body) => std::pin::Pin::new(body).poll_frame(cx),
            None => std::task::Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.as_ref().is_none_or(|body| body.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.as_ref().map(|b| b.size_hint()).unwrap_or_default()
    }
}

impl Drop for DrainOnDrop {
    fn drop(&mut self) {
        if let Some(mut body) = self.0.take().filter(|b| !b.is_end_stream()) {
            // Ends when the guest finishes its body or its store goes away.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { while let Some(Ok(_)) = body.frame().await {} });
            }
        }
    }
}

fn origin(uri: &http::Uri) -> String {
    format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("https"),
        uri.authority().map_or("", |a| a.as_str())
    )
}

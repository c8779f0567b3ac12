//! Running one request: a fresh `Store` with fresh host state, instantiate from the
//! script's `ProxyPre` (pooling allocator), call `wasi:http/incoming-handler.handle`,
//! and hand back the response as soon as the guest sets it; the body streams while the
//! guest keeps running. The request's task polls the guest until the head is set; a guest
//! still running then goes on in its own task, so it may finish writing after the
//! headers went out (`inline_run`); a client that goes away before the whole response
//! cancels it (`cancel`). The run is held to its budget (`limits`): CPU metered per poll
//! and enforced at epoch ticks, memory by the store's limiter, wall time by the deadline;
//! its console output is captured.
//!
//! A run that fails is answered for what it is (`script_error`, `exceeded_cpu`, ...) with
//! its request id only: the detail (trap text, backtrace) goes to the owner's tail and the
//! server log, never to the client. A run that fails after its response head went out
//! cuts the body short with an error (`bodies.rs`), so the client never takes a
//! truncated body for a whole one.
//!
//! `Runtime::run` reads as its steps: admit, `fresh_store`, `handle_call` (the request
//! and the outparam), `run_guest`, `await_head`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt as _;
use wasmtime::Store;
use wasmtime::component::{Component, ComponentExportIndex, Resource};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::{HyperIncomingBody, HyperOutgoingBody};
use wasmtime_wasi_http::p2::types::{
    HostIncomingRequest as IncomingRequest, HostResponseOutparam as ResponseOutparam,
};

use super::admission::Admitted;
use super::bodies::{RequestBody, ScriptBody, UnlessFailed, Verdict, request_body_error};
use super::cancel;
use super::capture::{LogCapture, escape_controls};
use super::cpu::Metered;
use super::inline_run::{HeadReceiver, InlineGuest, RunEnd, await_head};
use super::limits::{self, Budget, LimitExceeded};
use super::outbound::SendResult;
use super::report::RunReport;
use super::{Host, LoadedScript, Runtime};
use crate::metrics::Outcome;

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("the script failed: {0}")]
    ScriptError(String),
    #[error("the script used more CPU time than its limit")]
    ExceededCpu,
    #[error("the script needed more memory than its limit")]
    ExceededMemory,
    #[error("the script ran past its wall-time limit")]
    WallTime,
    #[error("too many requests are running; retry shortly")]
    Overloaded,
    /// The script's component cannot be loaded (the reason is for the log only).
    #[error("the script is unavailable")]
    Unavailable(String),
}

impl InvokeError {
    /// What a client may be told: the kind of failure, nothing of its detail.
    pub fn public_message(&self) -> String {
        match self {
            InvokeError::ScriptError(_) => "the script failed".into(),
            other => other.to_string(),
        }
    }

    pub(super) fn outcome(&self) -> Outcome {
        match self {
            InvokeError::ScriptError(_) => Outcome::ScriptError,
            InvokeError::ExceededCpu => Outcome::ExceededCpu,
            InvokeError::ExceededMemory => Outcome::ExceededMemory,
            InvokeError::WallTime => Outcome::ExceededWallTime,
            InvokeError::Overloaded => Outcome::Overloaded,
            InvokeError::Unavailable(_) => Outcome::ScriptError,
        }
    }
}

/// A run that gave no answer: why, and the id under which its owner finds the detail
/// (in the tail and the server log).
#[derive(Debug, thiserror::Error)]
#[error("{error} (request {request_id})")]
pub struct RunFailure {
    pub request_id: Arc<str>,
    pub error: InvokeError,
}

/// Extra context of one run: the params an outbound worker sees as vars.
pub type WorkerParams = Option<Arc<BTreeMap<String, String>>>;

impl Runtime {
    /// Runs an eyeball's (or the host's own) `request` through `script` and returns its
    /// response. A request body cut off at a length limit reaches the guest as a body too
    /// large; any other body error as a request denied.
    pub async fn invoke<B>(
        self: &Arc<Self>,
        script: Arc<LoadedScript>,
        request: hyper::Request<B>,
    ) -> Result<hyper::Response<ScriptBody>, RunFailure>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let left_unread = Arc::new(AtomicBool::new(false));
        let http1 = request.version() < http::Version::HTTP_2;
        let request = request.map(|body| {
            RequestBody::new(body, left_unread.clone())
                .map_err(request_body_error)
                .boxed_unsync()
        });
        let budget = Budget::root(script.limits);
        let mut response = self
            .run(script, request, budget, None, Entry::Outside)
            .await?;
        // Set before hyper sees the body gone, so the head must say it.
        if http1 && left_unread.load(Ordering::Relaxed) {
            response.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        Ok(response.map(ScriptBody))
    }

    /// A script's outgoing request handed to another script (a service binding's callee
    /// or an outbound worker), as the `wasi:http` hooks answer it.
    pub(crate) async fn call(
        self: &Arc<Self>,
        script: Arc<LoadedScript>,
        request: hyper::Request<HyperIncomingBody>,
        budget: Arc<Budget>,
        params: WorkerParams,
        entry: Entry,
    ) -> SendResult {
        // The caller is another script: it learns what kind of failure, not its detail.
        let response = self
            .run(script, request, budget, params, entry)
            .await
            .map_err(|failure| {
                wasmtime_wasi_http::Error::InternalError(Some(format!(
                    "the called script: {} (request {})",
                    failure.error.public_message(),
                    failure.request_id
                )))
            })?;
        let io: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send> =
            Box::new(async { Ok(()) });
        Ok((response, io))
    }

    /// One run, in the steps a reader expects: admit it, make its fresh store, spawn the
    /// guest, await the response head.
    async fn run(
        self: &Arc<Self>,
        script: Arc<LoadedScript>,
        request: hyper::Request<HyperIncomingBody>,
        budget: Arc<Budget>,
        params: WorkerParams,
        entry: Entry,
    ) -> Result<hyper::Response<HyperOutgoingBody>, RunFailure> {
        let report = RunReport::new(self, &script, &request);
        let head_only = request.method() == hyper::Method::HEAD;
        let failure = |error: InvokeError| {
            report.failed(&error);
            RunFailure {
                request_id: report.request_id.clone(),
                error,
            }
        };
        // A request from outside takes a place in its tenant's share for the whole run;
        // the scripts it calls run inside that place.
        let (admitted, entrypoint) = match entry {
            Entry::Outside => match self.admission.admit(&script).await {
                Some(admitted) => (Some(admitted), None),
                None => return Err(failure(InvokeError::Overloaded)),
            },
            Entry::Call { entrypoint } => (None, entrypoint),
        };
        // Loaded already but in the first moments after a start (`warmup.rs`).
        let pre = match script.component.get(self).await {
            Ok(pre) => pre,
            Err(reason) => return Err(failure(InvokeError::Unavailable(reason.to_string()))),
        };
        let logs = LogCapture::new(self.log_capacity);
        let engine = pre.instance_pre().component().engine();
        let mut store = self.fresh_store(engine, &script, &logs, &budget, params);
        let (head, call) = handle_call(&mut store, request).map_err(failure)?;
        let failed = Arc::new(AtomicBool::new(false));
        let handler = match entrypoint {
            None => Handler::Default,
            Some(name) => match named_handler(pre.instance_pre().component(), &name) {
                Some(index) => Handler::Named(index),
                None => {
                    return Err(failure(InvokeError::ScriptError(format!(
                        "the script does not export the entrypoint `{name}`"
                    ))));
                }
            },
        };
        let guest = Guest {
            store,
            pre,
            handler,
            call,
            script,
            budget,
            logs,
            report: report.clone(),
            admitted,
            failed: failed.clone(),
        };
        let (watch, cancellation) = cancel::watch();
        let guest = InlineGuest::new(self.run_guest(guest, cancellation));
        match await_head(head, guest, head_only, watch).await {
            Ok(response) => {
                report.answered(response.status().as_u16());
                Ok(response.map(|body| UnlessFailed { body, failed }.boxed_unsync()))
            }
            Err(error) => Err(failure(error)),
        }
    }

    /// A fresh store for one run in `engine` (its component's tier's): its host state,
    /// the memory limiter, and the epoch callback that stops the guest past its CPU limit
    /// and otherwise lets others run.
    pub(super) fn fresh_store(
        self: &Arc<Self>,
        engine: &wasmtime::Engine,
        script: &Arc<LoadedScript>,
        logs: &LogCapture,
        budget: &Arc<Budget>,
        params: WorkerParams,
    ) -> Store<Host> {
        let host = Host::new(self.clone(), script.clone(), logs, budget.clone(), params);
        let mut store = Store::new(engine, host);
        store.limiter(|host| &mut host.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| limits::on_epoch_tick(&ctx.data().budget));
        store
    }

    /// The guest's run, on its own task: instantiate and call the handler, metered and
    /// held to the wall-time deadline, until it returns or the client goes away (`None`);
    /// then its console output and its report.
    fn run_guest(
        &self,
        guest: Guest,
        cancellation: cancel::Cancellation,
    ) -> impl Future<Output = RunEnd> + Send + 'static {
        let Guest {
            store,
            pre,
            handler: entry_handler,
            call,
            script,
            budget,
            logs,
            report,
            admitted,
            failed,
        } = guest;
        let deadline = budget.deadline;
        let verdict = Verdict {
            failed,
            succeeded: false,
        };
        let handler_budget = budget.clone();
        let handler = async move {
            // Declared in this order so that, however the run ends (an error, the wall
            // time dropping it), the verdict is in before the store (and with it the
            // response body's sender) is dropped.
            let mut store = store;
            let mut verdict = verdict;
            let instantiation_failed = |e: wasmtime::Error| {
                if e.is::<wasmtime::PoolConcurrencyLimitError>() {
                    InvokeError::Overloaded
                } else {
                    describe_failure(e, &handler_budget, "instantiation failed: ")
                }
            };
            let (incoming, outparam) = call;
            match entry_handler {
                Handler::Default => {
                    let proxy = pre
                        .instantiate_async(&mut store)
                        .await
                        .map_err(instantiation_failed)?;
                    proxy
                        .wasi_http_incoming_handler()
                        .call_handle(&mut store, incoming, outparam)
                        .await
                }
                Handler::Named(index) => {
                    let instance = pre
                        .instance_pre()
                        .instantiate_async(&mut store)
                        .await
                        .map_err(instantiation_failed)?;
                    let handle = instance
                        .get_typed_func::<HandlerCall, ()>(&mut store, &index)
                        .map_err(|e| InvokeError::ScriptError(format!("entrypoint: {e:#}")))?;
                    handle.call_async(&mut store, (incoming, outparam)).await
                }
            }
            .map_err(|e| describe_failure(e, &handler_budget, ""))?;
            verdict.succeeded = true;
            Ok(())
        };
        let metered = Metered::new(
            handler,
            budget.clone(),
            &self.heavy_lane,
            script.cpu_history.clone(),
        );
        async move {
            let result = tokio::select! {
                biased;
                ran = tokio::time::timeout_at(deadline, metered) => {
                    Some(ran.unwrap_or(Err(InvokeError::WallTime)))
                }
                () = cancellation.client_gone() => None,
            };
            drop(admitted);
            let failure = result.as_ref().and_then(|result| result.as_ref().err());
            let lines = log_console(&script, &logs, failure, &report.request_id);
            let lines = if report.wants_logs() {
                lines
            } else {
                Vec::new()
            };
            match &result {
                Some(_) => report.finished(failure, &budget, lines),
                None => report.canceled(&budget, lines),
            }
            result
        }
    }
}

/// Which export a run calls.
enum Handler {
    /// `wasi:http/incoming-handler.handle`.
    Default,
    /// `handle` of a named entrypoint of the same shape.
    Named(ComponentExportIndex),
}

/// `handle` of the entrypoint `name` (an export of the shape of
/// `wasi:http/incoming-handler`), when the component has one.
pub fn named_handler(component: &Component, name: &str) -> Option<ComponentExportIndex> {
    let interface = component.get_export_index(None, name)?;
    component.get_export_index(Some(&interface), "handle")
}

/// What the guest's task owns.
struct Guest {
    store: Store<Host>,
    pre: ProxyPre<Host>,
    handler: Handler,
    call: HandlerCall,
    script: Arc<LoadedScript>,
    budget: Arc<Budget>,
    logs: LogCapture,
    report: Arc<RunReport>,
    admitted: Option<Admitted>,
    failed: Arc<AtomicBool>,
}

/// The request as the guest's handler takes it, and where it answers.
type HandlerCall = (Resource<IncomingRequest>, Resource<ResponseOutparam>);

/// The request as the guest's handler takes it, and where the response head will come.
fn handle_call(
    store: &mut Store<Host>,
    request: hyper::Request<HyperIncomingBody>,
) -> Result<(HeadReceiver, HandlerCall), InvokeError> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let mut http = store.data_mut().http();
    let incoming = http
        .new_incoming_request(Scheme::Http, request)
        .map_err(|e| InvokeError::ScriptError(format!("bad request: {e:#}")))?;
    let outparam = http
        .new_response_outparam(sender)
        .map_err(|e| InvokeError::ScriptError(format!("{e:#}")))?;
    Ok((receiver, (incoming, outparam)))
}

/// Where a run comes from.
pub(crate) enum Entry {
    /// A request from outside (an eyeball, the gateway): admitted against its tenant's
    /// share; it runs the default handler.
    Outside,
    /// Another script's call (a service binding, an outbound worker), to the default
    /// handler or to a named entrypoint.
    Call { entrypoint: Option<String> },
}

/// Turns a trap, an exit or a limit into the error a script's owner can act on.
pub(super) fn describe_failure(
    error: wasmtime::Error,
    budget: &Budget,
    context: &str,
) -> InvokeError {
    if let Some(LimitExceeded::Cpu) = error.downcast_ref::<LimitExceeded>() {
        return InvokeError::ExceededCpu;
    }
    // A refused growth makes a guest fail in its own way (most abort); either way the
    // limit is why.
    if budget.memory_refused() {
        return InvokeError::ExceededMemory;
    }
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return InvokeError::ScriptError(format!("the script called exit({})", exit.0));
    }
    if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        return InvokeError::ScriptError(format!("{context}{trap}"));
    }
    InvokeError::ScriptError(format!("{context}{error:#}"))
}

/// Logs what the script printed, at most `MAX_LINES` events with control characters
/// escaped, tagged with the script's name; returns the lines.
pub(super) fn log_console(
    script: &LoadedScript,
    logs: &LogCapture,
    failure: Option<&InvokeError>,
    request_id: &str,
) -> Vec<String> {
    let console = logs.take().into_lines();
    for line in &console.lines {
        tracing::info!(target: "script", script = %script.name, namespace = %script.namespace, request_id, "{line}");
    }
    if console.dropped_lines > 0 || console.dropped_bytes > 0 {
        tracing::warn!(target: "script", script = %script.name, request_id, dropped_lines = console.dropped_lines, dropped_bytes = console.dropped_bytes, "console output over the per-request limit was dropped");
    }
    if let Some(failure) = failure {
        // Trap text names the guest's own functions: the guest chose those bytes.
        let failure = escape_controls(&failure.to_string());
        tracing::warn!(target: "script", script = %script.name, namespace = %script.namespace, request_id, %failure, "request failed");
    }
    console.lines
}

//! Running one request: a fresh `Store` with fresh host state, instantiate from the
//! script's `ProxyPre` (pooling allocator), call `wasi:http/incoming-handler.handle`,
//! and hand back the response as soon as the guest sets it; the body streams while the
//! guest keeps running. The guest runs in its own task so it may finish writing after
//! the headers went out; a client that goes away before the whole response cancels it
//! (`cancel`). The run is held to its budget (`limits`): CPU metered per poll
//! and enforced at epoch ticks, memory by the store's limiter, wall time by the deadline;
//! its console output is captured.
//!
//! A run that fails is answered for what it is (`script_error`, `exceeded_cpu`, ...) with
//! its request id only: the detail (trap text, backtrace) goes to the owner's tail and the
//! server log, never to the client. A run that fails after its response head went out
//! cuts the body short with an error, so the client never takes a truncated body for a
//! whole one.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt as _;
use wasmtime::Store;
use wasmtime_wasi::I32Exit;
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::{HyperIncomingBody, HyperOutgoingBody};

use super::cancel::{self, WatchedBody};
use super::capture::{LogCapture, escape_controls};
use super::cpu::Metered;
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

/// A script's response body as the runtime hands it out: the bytes as the guest writes
/// them, and an error when the run failed before finishing it.
pub struct ScriptBody(HyperOutgoingBody);

/// Why a script's response body ended early (its run failed or was stopped).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ScriptBodyError(String);

impl Body for ScriptBody {
    type Data = Bytes;
    type Error = ScriptBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ScriptBodyError>>> {
        Pin::new(&mut self.0)
            .poll_frame(cx)
            .map_err(|error| ScriptBodyError(error.to_string()))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.size_hint()
    }
}

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
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let request = request.map(|body| body.map_err(request_body_error).boxed_unsync());
        let budget = Budget::root(script.limits);
        let response = self
            .run(script, request, budget, None, Entry::Outside)
            .await?;
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
    ) -> SendResult {
        // The caller is another script: it learns what kind of failure, not its detail.
        let response = self
            .run(script, request, budget, params, Entry::Call)
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
        let admitted = match entry {
            Entry::Outside => match self.admission.admit(&script).await {
                Some(admitted) => Some(admitted),
                None => return Err(failure(InvokeError::Overloaded)),
            },
            Entry::Call => None,
        };
        let logs = LogCapture::new(self.log_capacity);
        let deadline = budget.deadline;
        let host = Host::new(self.clone(), script.clone(), &logs, budget.clone(), params);
        let mut store = Store::new(&self.engine, host);
        store.limiter(|host| &mut host.limiter);
        // At every epoch tick: stop the guest past its CPU limit, else let others run.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| limits::on_epoch_tick(&ctx.data().budget));

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let (incoming, outparam) = {
            let mut http = store.data_mut().http();
            let incoming = http
                .new_incoming_request(Scheme::Http, request)
                .map_err(|e| failure(InvokeError::ScriptError(format!("bad request: {e:#}"))))?;
            let outparam = http
                .new_response_outparam(sender)
                .map_err(|e| failure(InvokeError::ScriptError(format!("{e:#}"))))?;
            (incoming, outparam)
        };

        let metered_budget = budget.clone();
        let reported_budget = budget.clone();
        let task_report = report.clone();
        let logged_script = script.clone();
        let failed = Arc::new(AtomicBool::new(false));
        let verdict = Verdict {
            failed: failed.clone(),
            succeeded: false,
        };
        let run = async move {
            // Declared in this order so that, however the run ends (an error, the wall
            // time dropping it), the verdict is in before the store (and with it the
            // response body's sender) is dropped.
            let mut store = store;
            let mut verdict = verdict;
            let proxy = script
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| {
                    if e.is::<wasmtime::PoolConcurrencyLimitError>() {
                        InvokeError::Overloaded
                    } else {
                        describe_failure(e, &budget, "instantiation failed: ")
                    }
                })?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, outparam)
                .await
                .map_err(|e| describe_failure(e, &budget, ""))?;
            verdict.succeeded = true;
            Ok(())
        };
        let metered = Metered::new(
            run,
            metered_budget,
            &self.heavy_lane,
            logged_script.cpu_history.clone(),
        );
        let (watch, cancellation) = cancel::watch();
        // `None`: canceled, the client went away.
        let task = tokio::spawn(async move {
            let result = tokio::select! {
                biased;
                ran = tokio::time::timeout_at(deadline, metered) => {
                    Some(ran.unwrap_or(Err(InvokeError::WallTime)))
                }
                () = cancellation.client_gone() => None,
            };
            drop(admitted);
            let failure = result.as_ref().and_then(|result| result.as_ref().err());
            let lines = log_console(&logged_script, &logs, failure, &task_report.request_id);
            let lines = if task_report.wants_logs() {
                lines
            } else {
                Vec::new()
            };
            match &result {
                Some(_) => task_report.finished(failure, &reported_budget, lines),
                None => task_report.canceled(&reported_budget, lines),
            }
            result
        });

        // Dropped with this future while the client waits for the head, the watch cancels
        // the run.
        let answer = match receiver.await {
            Ok(Ok(response)) => Ok(WatchedBody::wrap(response, head_only, watch)),
            Ok(Err(code)) => {
                // The client gets the error in full.
                watch.release();
                Err(InvokeError::ScriptError(format!(
                    "the script answered with an error: {code:?}"
                )))
            }
            // The guest never set a response: the task says why.
            Err(_) => match task.await {
                Ok(Some(Err(e))) => Err(e),
                Ok(Some(Ok(()))) => Err(InvokeError::ScriptError(
                    "the script returned without setting a response".into(),
                )),
                Ok(None) => Err(InvokeError::ScriptError("the run was canceled".into())),
                Err(join) => Err(InvokeError::ScriptError(format!(
                    "the script task died: {join}"
                ))),
            },
        };
        match answer {
            Ok(response) => {
                report.answered(response.status().as_u16());
                Ok(response.map(|body| UnlessFailed { body, failed }.boxed_unsync()))
            }
            Err(error) => Err(failure(error)),
        }
    }
}

/// Where a run comes from.
enum Entry {
    /// A request from outside (an eyeball, the gateway): admitted against its tenant's
    /// share.
    Outside,
    /// Another script's call (a service binding, an outbound worker).
    Call,
}

/// Marks the run failed when dropped before the guest's handler returned.
struct Verdict {
    failed: Arc<AtomicBool>,
    succeeded: bool,
}

impl Drop for Verdict {
    fn drop(&mut self) {
        if !self.succeeded {
            self.failed.store(true, Ordering::Release);
        }
    }
}

/// A script's response body that ends in an error, not cleanly, when the run failed
/// before finishing it: wasi-http ends a body whose guest went away as if it were
/// complete.
struct UnlessFailed {
    body: WatchedBody<HyperOutgoingBody>,
    failed: Arc<AtomicBool>,
}

impl Body for UnlessFailed {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(None) if self.failed.load(Ordering::Acquire) => {
                Poll::Ready(Some(Err(wasmtime_wasi_http::Error::InternalError(Some(
                    "the script failed before finishing its response".into(),
                )))))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Turns a trap, an exit or a limit into the error a script's owner can act on.
fn describe_failure(error: wasmtime::Error, budget: &Budget, context: &str) -> InvokeError {
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
fn log_console(
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

/// What the guest is told of a request body that failed: too large when it was cut off
/// at a length limit (`http_body_util::Limited`), else denied.
fn request_body_error(
    error: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> wasmtime_wasi_http::Error {
    let error = error.into();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
    while let Some(error) = source {
        if error.is::<http_body_util::LengthLimitError>() {
            return wasmtime_wasi_http::Error::HttpRequestBodySize(None);
        }
        source = error.source();
    }
    wasmtime_wasi_http::Error::HttpRequestDenied
}

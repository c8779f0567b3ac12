//! Running one request: a fresh `Store` with fresh host state, instantiate from the
//! script's `ProxyPre` (pooling allocator), call `wasi:http/incoming-handler.handle`,
//! and hand back the response as soon as the guest sets it; the body streams while the
//! guest keeps running. The guest runs in its own task so it may finish writing after
//! the headers went out; its wall time is bounded and its console output is captured.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt as _;
use wasmtime::Store;
use wasmtime_wasi::I32Exit;
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::{HyperIncomingBody, HyperOutgoingBody};

use super::bindings::service::CallChain;
use super::capture::LogCapture;
use super::{Host, LoadedScript, Runtime};
use crate::metrics::Outcome;

#[derive(Debug, Clone)]
pub struct InvokeLimits {
    /// Longest a request may run, host calls included.
    pub wall_time: Duration,
    /// Bytes of console output kept per request.
    pub log_capacity: usize,
}

impl Default for InvokeLimits {
    fn default() -> Self {
        InvokeLimits {
            wall_time: Duration::from_secs(30),
            log_capacity: 64 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("the script failed: {0}")]
    ScriptError(String),
    #[error("the script ran past its wall-time limit")]
    WallTime,
    #[error("too many requests are running; retry shortly")]
    Overloaded,
}

impl InvokeError {
    fn outcome(&self) -> Outcome {
        match self {
            InvokeError::ScriptError(_) => Outcome::ScriptError,
            InvokeError::WallTime => Outcome::ExceededWallTime,
            InvokeError::Overloaded => Outcome::Overloaded,
        }
    }
}

impl Runtime {
    /// Runs an eyeball's `request` through `script` and returns its response.
    pub async fn invoke<B>(
        self: &Arc<Self>,
        script: Arc<LoadedScript>,
        request: hyper::Request<B>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, InvokeError>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let request = request.map(|body| body.map_err(Into::into).boxed_unsync());
        let deadline = tokio::time::Instant::now() + self.invoke_limits.wall_time;
        self.invoke_service(script, request, CallChain::root(deadline))
            .await
    }

    /// Runs `request` through `script` as one call of `chain` (a service binding call
    /// when the chain is not at its root).
    pub async fn invoke_service(
        self: &Arc<Self>,
        script: Arc<LoadedScript>,
        request: hyper::Request<HyperIncomingBody>,
        chain: CallChain,
    ) -> Result<hyper::Response<HyperOutgoingBody>, InvokeError> {
        let result = self.run(script, request, chain).await;
        self.metrics.request(match &result {
            Ok(_) => Outcome::Ok,
            Err(e) => e.outcome(),
        });
        result
    }

    async fn run(
        self: &Arc<Self>,
        script: Arc<LoadedScript>,
        request: hyper::Request<HyperIncomingBody>,
        chain: CallChain,
    ) -> Result<hyper::Response<HyperOutgoingBody>, InvokeError> {
        let logs = LogCapture::new(self.invoke_limits.log_capacity);
        let deadline = chain
            .deadline
            .min(tokio::time::Instant::now() + self.invoke_limits.wall_time);
        let host = Host::new(self.clone(), script.clone(), &logs, chain);
        let mut store = Store::new(&self.engine, host);
        // Yield to the scheduler at every epoch tick so a busy guest cannot hog a thread.
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let (incoming, outparam) = {
            let mut http = store.data_mut().http();
            let incoming = http
                .new_incoming_request(Scheme::Http, request)
                .map_err(|e| InvokeError::ScriptError(format!("bad request: {e:#}")))?;
            let outparam = http
                .new_response_outparam(sender)
                .map_err(|e| InvokeError::ScriptError(format!("{e:#}")))?;
            (incoming, outparam)
        };

        let task = tokio::spawn(async move {
            let run = async {
                let proxy = script
                    .pre
                    .instantiate_async(&mut store)
                    .await
                    .map_err(|e| {
                        if e.is::<wasmtime::PoolConcurrencyLimitError>() {
                            InvokeError::Overloaded
                        } else {
                            InvokeError::ScriptError(format!("instantiation failed: {e:#}"))
                        }
                    })?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, incoming, outparam)
                    .await
                    .map_err(describe_failure)
            };
            let result = match tokio::time::timeout_at(deadline, run).await {
                Ok(result) => result,
                Err(_) => Err(InvokeError::WallTime),
            };
            drop(store);
            log_console(&script, &logs, result.as_ref().err());
            result
        });

        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(InvokeError::ScriptError(format!(
                "the script answered with an error: {code:?}"
            ))),
            // The guest never set a response: the task says why.
            Err(_) => match task.await {
                Ok(Err(e)) => Err(e),
                Ok(Ok(())) => Err(InvokeError::ScriptError(
                    "the script returned without setting a response".into(),
                )),
                Err(join) => Err(InvokeError::ScriptError(format!(
                    "the script task died: {join}"
                ))),
            },
        }
    }
}

/// Turns a trap or exit into the message a script's owner can act on.
fn describe_failure(error: wasmtime::Error) -> InvokeError {
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return InvokeError::ScriptError(format!("the script called exit({})", exit.0));
    }
    if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        return InvokeError::ScriptError(format!("wasm trap: {trap}"));
    }
    InvokeError::ScriptError(format!("{error:#}"))
}

/// Logs what the script printed, one event per line, tagged with the script's name.
fn log_console(script: &LoadedScript, logs: &LogCapture, failure: Option<&InvokeError>) {
    let captured = logs.take();
    let text = String::from_utf8_lossy(&captured.text);
    for line in text.lines() {
        tracing::info!(target: "script", script = %script.name, namespace = %script.namespace, "{line}");
    }
    if captured.dropped_bytes > 0 {
        tracing::warn!(target: "script", script = %script.name, dropped_bytes = captured.dropped_bytes, "console output over the per-request limit was dropped");
    }
    if let Some(failure) = failure {
        tracing::warn!(target: "script", script = %script.name, namespace = %script.namespace, %failure, "request failed");
    }
}

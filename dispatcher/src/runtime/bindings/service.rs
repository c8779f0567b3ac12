//! A script's outgoing HTTP: service bindings, and nothing else yet.
//!
//! Service bindings ride on plain `wasi:http/outgoing-handler`: a request carrying the
//! header `platform-service-binding: NAME` goes to the script bound as `NAME`, run in this
//! process (a fresh `Store` from its `ProxyPre`, no socket, no loopback HTTP). The header
//! is removed; method, URI, headers and the streamed body reach the callee unchanged, and
//! its response comes back unchanged. Calls nest up to `MAX_CALL_DEPTH`, every call counts
//! as a subrequest of the whole call chain, and a callee never outlives its caller's
//! deadline. Any other outgoing request is refused (`HttpRequestDenied`): egress stays
//! closed until the outbound filter exists.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::time::Instant;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::runtime::{LoadedScript, Runtime};

/// The header that names the service binding an outgoing request goes to.
pub const SERVICE_BINDING_HEADER: &str = "platform-service-binding";
/// Most scripts on one call chain (the eyeball's script is depth 0).
pub const MAX_CALL_DEPTH: u32 = 8;
/// Most service calls one eyeball request may make, all depths together.
pub const MAX_SUBREQUESTS: u32 = 50;

/// Where a running script sits: its depth, the chain's shared subrequest count and the
/// deadline no script of the chain may run past.
#[derive(Clone)]
pub struct CallChain {
    pub depth: u32,
    pub deadline: Instant,
    subrequests: Arc<AtomicU32>,
}

impl CallChain {
    /// The chain of an eyeball request that may run until `deadline`.
    pub fn root(deadline: Instant) -> CallChain {
        CallChain {
            depth: 0,
            deadline,
            subrequests: Arc::default(),
        }
    }

    /// The chain of a call made from this one.
    fn child(&self) -> CallChain {
        CallChain {
            depth: self.depth + 1,
            deadline: self.deadline,
            subrequests: self.subrequests.clone(),
        }
    }
}

/// The `wasi:http` hooks of one running script.
pub struct Egress {
    pub runtime: Arc<Runtime>,
    pub script: Arc<LoadedScript>,
    pub chain: CallChain,
}

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    HttpError,
>;

impl Egress {
    /// The bound script `request` goes to, or why it may not go anywhere.
    fn route(&self, request: &mut http::Request<WasiBody>) -> Result<Arc<LoadedScript>, HttpError> {
        let Some(binding) = request.headers_mut().remove(SERVICE_BINDING_HEADER) else {
            return Err(HttpError::HttpRequestDenied);
        };
        let refuse = |why: String| Err(HttpError::InternalError(Some(why)));
        let binding = String::from_utf8_lossy(binding.as_bytes()).into_owned();
        let Some(target) = self.script.bindings.services.get(&binding) else {
            return refuse(format!(
                "this script has no service binding named `{binding}`"
            ));
        };
        if self.chain.depth + 1 >= MAX_CALL_DEPTH {
            return refuse(format!(
                "service binding `{binding}`: call depth limit of {MAX_CALL_DEPTH} reached \
                 (does a script call itself in a loop?)"
            ));
        }
        let used = self.chain.subrequests.fetch_add(1, Ordering::Relaxed);
        if used >= MAX_SUBREQUESTS {
            return refuse(format!(
                "service binding `{binding}`: subrequest limit of {MAX_SUBREQUESTS} reached"
            ));
        }
        match self.runtime.index.get(&self.script.namespace, target) {
            Some(callee) if callee.customer_id == self.script.customer_id => Ok(callee),
            _ => refuse(format!(
                "service binding `{binding}`: script `{target}` is not deployed"
            )),
        }
    }
}

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let routed = self.route(&mut request);
        let runtime = self.runtime.clone();
        let chain = self.chain.child();
        Box::new(async move {
            let callee = routed?;
            let response = runtime
                .invoke_service(callee, request, chain)
                .await
                .map_err(|e| HttpError::InternalError(Some(e.to_string())))?;
            let io: Box<dyn Future<Output = Result<(), HttpError>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, io))
        })
    }
}

//! Service bindings: a script calls another script of the platform in-process.
//!
//! They ride on plain `wasi:http/outgoing-handler`: a request carrying the header
//! `platform-service-binding: NAME` goes to the script bound as `NAME`, run in this
//! process (a fresh `Store` from its `ProxyPre`, no socket, no loopback HTTP). The header
//! is removed; method, URI, headers and the streamed body reach the callee unchanged
//! (except that the identity headers of a customer's script are removed, see `outbound`),
//! and its response comes back unchanged. Calls nest up to `MAX_CALL_DEPTH`; the callee's
//! limits are the lower of its own and what its caller has left (see `limits`). The
//! egress path (`outbound`) counts the call as a subrequest and then asks `route`.

use std::sync::Arc;

use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use crate::runtime::limits::{Budget, MAX_CALL_DEPTH};
use crate::runtime::outbound::refusal;
use crate::runtime::{LoadedScript, Runtime};

/// The header that names the service binding an outgoing request goes to.
pub const SERVICE_BINDING_HEADER: &str = "platform-service-binding";

/// The service binding `request` names, with the naming header removed.
pub fn binding_of(request: &mut http::Request<WasiBody>) -> Option<String> {
    let binding = request.headers_mut().remove(SERVICE_BINDING_HEADER)?;
    Some(String::from_utf8_lossy(binding.as_bytes()).into_owned())
}

/// The script bound as `binding` to `caller` and the budget it runs with, or why the
/// call may not happen.
pub fn route(
    runtime: &Runtime,
    caller: &LoadedScript,
    budget: &Arc<Budget>,
    binding: &str,
) -> Result<(Arc<LoadedScript>, Arc<Budget>), HttpError> {
    let refuse = |why: String| Err(refusal(why));
    let Some(target) = caller.bindings.services.get(binding) else {
        return refuse(format!(
            "this script has no service binding named `{binding}`"
        ));
    };
    match runtime.index.get(&caller.namespace, target) {
        Some(callee) if callee.customer_id == caller.customer_id => {
            match budget.for_callee(callee.limits) {
                Some(budget) => Ok((callee, budget)),
                None => refuse(format!(
                    "service binding `{binding}`: call depth limit of {MAX_CALL_DEPTH} \
                     reached (does a script call itself in a loop?)"
                )),
            }
        }
        None if runtime
            .index
            .unavailable(&caller.namespace, target)
            .is_some_and(|callee| callee.customer_id == caller.customer_id) =>
        {
            refuse(format!(
                "service binding `{binding}`: script `{target}` is unavailable"
            ))
        }
        _ => refuse(format!(
            "service binding `{binding}`: script `{target}` is not deployed"
        )),
    }
}

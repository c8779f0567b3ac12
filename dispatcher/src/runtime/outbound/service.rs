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
//!
//! A binding may name an `entrypoint`: an interface the bound script exports besides its
//! default `wasi:http/incoming-handler`, of the same shape (`handle(request,
//! response-outparam)`). Only bound scripts reach a named entrypoint, never eyeballs.
//! That the bound script exports it is checked at upload (`deploy`) and again at call.

use std::sync::Arc;

use platform_names::{SERVICE_BINDING_HEADER, valid_name};
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use crate::runtime::bindings::{
    Accepted, BindingKind, ScriptBindings, ServiceTarget, UploadContext, required_string, spec_of,
};
use crate::store::{BindingFields, StoredBinding};

use crate::runtime::limits::{Budget, MAX_CALL_DEPTH};
use crate::runtime::outbound::refusal;
use crate::runtime::{LoadedScript, Runtime};

/// The `service` binding unit: `{"type": "service", "name": "AUTH", "service": "auth"}`
/// (with `"entrypoint": "admin-interface"` for a named entrypoint), to a script of the
/// same owner that exists at upload (or to the script being uploaded, so a script may
/// call itself: the call-depth limit stops the loop).
pub struct ServiceBinding;

impl BindingKind for ServiceBinding {
    fn kind(&self) -> &'static str {
        "service"
    }

    fn accept(
        &self,
        _name: &str,
        fields: &BindingFields,
        upload: &UploadContext<'_>,
    ) -> Result<Accepted, String> {
        let service = required_string(fields, "service")?;
        let exists = service == upload.script
            || (valid_name(service)
                && upload
                    .store
                    .get_script(upload.namespace, service, None)
                    .map_err(|error| {
                        tracing::error!(%error, "looking up a bound service failed");
                        "the bound service cannot be looked up now".to_string()
                    })?
                    .is_some_and(|record| record.customer_id.as_deref() == upload.owner));
        if !exists {
            return Err(format!("there is no script `{service}` of yours to bind"));
        }
        let mut spec = spec_of("service", service);
        match fields.get("entrypoint") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(entrypoint)) if valid_entrypoint(entrypoint) => {
                spec.insert("entrypoint".into(), entrypoint.clone().into());
            }
            Some(_) => {
                return Err(
                    "`entrypoint` must name an exported interface: 1-128 of a-z, 0-9, \
                     `-`, `:`, `/`, `@` and `.`"
                        .into(),
                );
            }
        }
        Ok(Accepted { spec, secret: None })
    }

    fn resolve(&self, binding: StoredBinding, into: &mut ScriptBindings) {
        if let Some(serde_json::Value::String(service)) = binding.spec.get("service") {
            let entrypoint = match binding.spec.get("entrypoint") {
                Some(serde_json::Value::String(entrypoint)) => Some(entrypoint.clone()),
                _ => None,
            };
            let target = ServiceTarget {
                script: service.clone(),
                entrypoint,
            };
            into.services.insert(binding.name, target);
        }
    }
}

/// The service binding `request` names, with the naming header removed.
pub fn binding_of(request: &mut http::Request<WasiBody>) -> Option<String> {
    let binding = request.headers_mut().remove(SERVICE_BINDING_HEADER)?;
    Some(String::from_utf8_lossy(binding.as_bytes()).into_owned())
}

/// An entrypoint's name: an export name (`admin-interface`) or an interface name
/// (`acme:auth/api@1.0.0`).
fn valid_entrypoint(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-:/@.".contains(&b))
}

/// Where a routed call goes: the callee, the budget it runs with, and its entrypoint.
pub struct Routed {
    pub callee: Arc<LoadedScript>,
    pub budget: Arc<Budget>,
    pub entrypoint: Option<String>,
}

/// The script bound as `binding` to `caller` and the budget it runs with, or why the
/// call may not happen.
pub fn route(
    runtime: &Runtime,
    caller: &LoadedScript,
    budget: &Arc<Budget>,
    binding: &str,
) -> Result<Routed, HttpError> {
    let refuse = |why: String| Err(refusal(why));
    let Some(ServiceTarget {
        script: target,
        entrypoint,
    }) = caller.bindings.services.get(binding)
    else {
        return refuse(format!(
            "this script has no service binding named `{binding}`"
        ));
    };
    match runtime.index.get(&caller.namespace, target) {
        Some(callee) if callee.customer_id == caller.customer_id => {
            match budget.for_callee(callee.limits) {
                Some(budget) => Ok(Routed {
                    callee,
                    budget,
                    entrypoint: entrypoint.clone(),
                }),
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

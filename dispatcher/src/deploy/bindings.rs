//! Checking the bindings of an upload before anything is compiled or committed: at most
//! `MAX_BINDINGS`, names a script can use (`GREETING`, `API_KEY`), no duplicates, a kind
//! this server has, and then what that kind's unit (`runtime/bindings`) says of its
//! fields (resource names, sizes, a bound service that exists and is the owner's); once
//! the component is prepared, that a named entrypoint a binding calls is exported.

use platform_names::valid_binding_name;

use super::DeployError;
use crate::runtime::bindings::{UploadContext, kinds, unit};
use crate::runtime::named_handler;
use crate::runtime::rpc::{mismatch, rpc_exports, rpc_imports};
use crate::store::{BindingRequest, StoredBinding};

const MAX_BINDINGS: usize = 64;

/// Checks `bindings` of an upload; what to store of them. Blocking: may read the store.
pub fn check(
    upload: &UploadContext<'_>,
    bindings: &[BindingRequest],
) -> Result<Vec<StoredBinding>, DeployError> {
    let invalid = |message: String| Err(DeployError::InvalidBinding(message));
    if bindings.len() > MAX_BINDINGS {
        return invalid(format!("at most {MAX_BINDINGS} bindings are allowed"));
    }
    let mut seen = std::collections::HashSet::new();
    let mut accepted = Vec::with_capacity(bindings.len());
    for binding in bindings {
        let name = binding.name.as_str();
        if !valid_binding_name(name) {
            return invalid(format!(
                "invalid binding name `{name}`: use 1-64 of A-Z, a-z, 0-9 and _, not starting with a digit"
            ));
        }
        if !seen.insert(name) {
            return invalid(format!("binding `{name}` is given twice"));
        }
        let Some(unit) = unit(&binding.kind) else {
            return invalid(format!(
                "binding `{name}`: unknown type `{}` (one of: {})",
                binding.kind,
                kinds().collect::<Vec<_>>().join(", ")
            ));
        };
        match unit.accept(name, &binding.fields, upload) {
            Ok(kept) => accepted.push(StoredBinding {
                name: name.to_string(),
                kind: binding.kind.clone(),
                spec: kept.spec,
                secret: kept.secret,
            }),
            Err(why) => return invalid(format!("binding `{name}`: {why}")),
        }
    }
    Ok(accepted)
}

impl super::Deployer {
    /// Checks the service bindings of an upload that name an entrypoint: a typed
    /// interface the upload imports (RPC) must be exported, with the same types, by the
    /// bound script's live versions (or by the upload itself when the script binds
    /// itself); any other entrypoint must be an HTTP handler they export. And every
    /// interface the upload imports for RPC must have such a binding.
    pub(super) async fn check_entrypoints(
        &self,
        namespace: &str,
        script: &str,
        bindings: &[StoredBinding],
        uploaded: &wasmtime::component::Component,
    ) -> Result<(), DeployError> {
        let imports = rpc_imports(uploaded);
        fn entrypoint_of(binding: &StoredBinding) -> Option<(&str, &str)> {
            let text = |field: &str| binding.spec.get(field).and_then(|v| v.as_str());
            (binding.kind == "service")
                .then(|| text("service").zip(text("entrypoint")))
                .flatten()
        }
        for import in &imports {
            if !bindings
                .iter()
                .any(|b| entrypoint_of(b).is_some_and(|(_, e)| e == import.interface))
            {
                return Err(DeployError::InvalidBinding(format!(
                    "the component imports `{}`: give it a service binding with \
                     \"entrypoint\": \"{}\"",
                    import.interface, import.interface
                )));
            }
        }
        for binding in bindings {
            let Some((service, entrypoint)) = entrypoint_of(binding) else {
                continue;
            };
            let refused = |why: String| {
                DeployError::InvalidBinding(format!(
                    "binding `{}`: script `{service}` {why}",
                    binding.name
                ))
            };
            let rpc = imports.iter().find(|i| i.interface == entrypoint);
            let check = |component: &wasmtime::component::Component| match rpc {
                Some(import) => match rpc_exports(component, entrypoint) {
                    None => Err(refused(format!("does not export `{entrypoint}`"))),
                    Some(offered) => match mismatch(&import.functions, &offered) {
                        Some(why) => Err(refused(format!("cannot serve `{entrypoint}`: {why}"))),
                        None => Ok(()),
                    },
                },
                None => named_handler(component, entrypoint)
                    .map(|_| ())
                    .ok_or_else(|| {
                        refused(format!("does not export the entrypoint `{entrypoint}`"))
                    }),
            };
            if service == script {
                check(uploaded)?;
                continue;
            }
            let deployed = self
                .runtime
                .index
                .deployed(namespace, service)
                .ok_or_else(|| refused("is not deployed".into()))?;
            for version in deployed.all() {
                let pre = version
                    .component
                    .get(&self.runtime)
                    .await
                    .map_err(|_| refused("cannot be loaded".into()))?;
                check(pre.instance_pre().component())?;
            }
        }
        Ok(())
    }
}

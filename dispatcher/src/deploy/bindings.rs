//! Checking the bindings of an upload before anything is compiled or committed: at most
//! `MAX_BINDINGS`, names a script can use (`GREETING`, `API_KEY`), no duplicates, a kind
//! this server has, and then what that kind's unit (`runtime/bindings`) says of its
//! fields (resource names, sizes, a bound service that exists and is the owner's); once
//! the component is prepared, that a named entrypoint a binding calls is exported.

use platform_names::valid_binding_name;

use super::DeployError;
use crate::runtime::bindings::{UploadContext, kinds, unit};
use crate::runtime::named_handler;
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
    /// Checks that every service binding of an upload that names an entrypoint reaches a
    /// script exporting it: the bound script's live versions, or `uploaded` (the
    /// upload's own component) when the script binds itself.
    pub(super) async fn check_entrypoints(
        &self,
        namespace: &str,
        script: &str,
        bindings: &[StoredBinding],
        uploaded: &wasmtime::component::Component,
    ) -> Result<(), DeployError> {
        for binding in bindings.iter().filter(|b| b.kind == "service") {
            let text = |field: &str| binding.spec.get(field).and_then(|v| v.as_str());
            let (Some(service), Some(entrypoint)) = (text("service"), text("entrypoint")) else {
                continue;
            };
            let missing = || {
                DeployError::InvalidBinding(format!(
                    "binding `{}`: script `{service}` does not export the entrypoint \
                     `{entrypoint}`",
                    binding.name
                ))
            };
            if service == script {
                named_handler(uploaded, entrypoint).ok_or_else(missing)?;
                continue;
            }
            let deployed = self
                .runtime
                .index
                .deployed(namespace, service)
                .ok_or_else(missing)?;
            for version in deployed.all() {
                let pre = version
                    .component
                    .get(&self.runtime)
                    .await
                    .map_err(|_| missing())?;
                named_handler(pre.instance_pre().component(), entrypoint).ok_or_else(missing)?;
            }
        }
        Ok(())
    }
}

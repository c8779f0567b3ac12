//! `plain_text` and `secret_text` bindings: text a script reads by name
//! (`platform:worker/vars`). A secret's text is sealed at rest and never shown by the API;
//! both are at most 5 KiB, as Cloudflare allows. An outbound worker also reads its
//! params as vars (they come before the script's own plain texts).

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

use super::platform::worker::vars::{Host as VarsHost, add_to_linker as link_vars};
use super::{Accepted, BindingKind, ScriptBindings, UploadContext, required_string, spec_of};
use crate::runtime::invoke::WorkerParams;
use crate::store::{BindingFields, StoredBinding};

/// Largest `plain_text` or `secret_text` value.
const MAX_TEXT_BYTES: usize = 5 << 10;

/// A script's texts, by binding name.
#[derive(Default)]
pub struct Vars {
    plain: Arc<HashMap<String, String>>,
    secrets: Arc<HashMap<String, String>>,
}

fn text(fields: &BindingFields) -> Result<&str, String> {
    let text = required_string(fields, "text")?;
    if text.len() > MAX_TEXT_BYTES {
        return Err(format!(
            "the text is {} bytes; the limit is {MAX_TEXT_BYTES}",
            text.len()
        ));
    }
    Ok(text)
}

pub struct PlainText;

impl BindingKind for PlainText {
    fn kind(&self) -> &'static str {
        "plain_text"
    }

    fn accept(
        &self,
        _name: &str,
        fields: &BindingFields,
        _upload: &UploadContext<'_>,
    ) -> Result<Accepted, String> {
        Ok(Accepted {
            spec: spec_of("text", text(fields)?),
            secret: None,
        })
    }

    fn resolve(&self, binding: StoredBinding, into: &mut ScriptBindings) {
        if let Some(serde_json::Value::String(text)) = binding.spec.get("text") {
            Arc::make_mut(&mut into.vars.plain).insert(binding.name, text.clone());
        }
    }
}

pub struct SecretText;

impl BindingKind for SecretText {
    fn kind(&self) -> &'static str {
        "secret_text"
    }

    fn accept(
        &self,
        _name: &str,
        fields: &BindingFields,
        _upload: &UploadContext<'_>,
    ) -> Result<Accepted, String> {
        Ok(Accepted {
            spec: BindingFields::new(),
            secret: Some(text(fields)?.to_string()),
        })
    }

    fn resolve(&self, binding: StoredBinding, into: &mut ScriptBindings) {
        if let Some(text) = binding.secret {
            Arc::make_mut(&mut into.vars.secrets).insert(binding.name, text);
        }
    }
}

/// One run's view of its texts.
pub struct VarsCtx {
    plain: Arc<HashMap<String, String>>,
    secrets: Arc<HashMap<String, String>>,
    /// An outbound worker's params.
    params: WorkerParams,
}

impl VarsCtx {
    pub fn new(vars: &Vars, params: WorkerParams) -> VarsCtx {
        VarsCtx {
            plain: vars.plain.clone(),
            secrets: vars.secrets.clone(),
            params,
        }
    }
}

struct HasVars;

impl HasData for HasVars {
    type Data<'a> = &'a mut VarsCtx;
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut VarsCtx,
) -> wasmtime::Result<()> {
    link_vars::<T, HasVars>(linker, get)
}

impl VarsHost for &mut VarsCtx {
    async fn get(&mut self, name: String) -> Option<String> {
        let param = self.params.as_ref().and_then(|p| p.get(&name));
        param.or_else(|| self.plain.get(&name)).cloned()
    }

    async fn secret(&mut self, name: String) -> Option<String> {
        self.secrets.get(&name).cloned()
    }
}

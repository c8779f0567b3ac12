//! Checking the bindings of an upload before anything is compiled or committed: names a
//! script can use (`GREETING`, `API_KEY`), sizes, no duplicates, resource names that
//! are valid, and service bindings only to scripts that exist and belong to the same
//! owner (or to the script being uploaded, so a script may call itself — the call-depth
//! limit stops the loop). KV namespaces and databases need no check: they are the
//! owner's own and come into being on first use.

use super::{DeployError, valid_name};
use crate::store::{BindingSpec, Store};

const MAX_BINDINGS: usize = 64;
/// Largest `plain_text` or `secret_text` value, as Cloudflare allows.
const MAX_TEXT_BYTES: usize = 5 << 10;

/// `^[A-Za-z_][A-Za-z0-9_]{0,63}$`
fn valid_binding_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && (bytes[0].is_ascii_alphabetic() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// Checks `bindings` of script `script` (namespace `namespace`, owned by `owner`).
/// Blocking: reads the store.
pub fn check(
    store: &Store,
    namespace: &str,
    script: &str,
    owner: Option<&str>,
    bindings: &[BindingSpec],
) -> Result<(), DeployError> {
    let invalid = |message: String| Err(DeployError::InvalidBinding(message));
    if bindings.len() > MAX_BINDINGS {
        return invalid(format!("at most {MAX_BINDINGS} bindings are allowed"));
    }
    let mut seen = std::collections::HashSet::new();
    for binding in bindings {
        let name = binding.name();
        if !valid_binding_name(name) {
            return invalid(format!(
                "invalid binding name `{name}`: use 1-64 of A-Z, a-z, 0-9 and _, not starting with a digit"
            ));
        }
        if !seen.insert(name) {
            return invalid(format!("binding `{name}` is given twice"));
        }
        match binding {
            BindingSpec::PlainText { text, .. } | BindingSpec::SecretText { text, .. }
                if text.len() > MAX_TEXT_BYTES =>
            {
                return invalid(format!(
                    "binding `{name}`: the text is {} bytes; the limit is {MAX_TEXT_BYTES}",
                    text.len()
                ));
            }
            BindingSpec::KvNamespace {
                namespace: target, ..
            }
            | BindingSpec::D1 {
                database: target, ..
            } if !valid_name(target) => {
                return invalid(format!(
                    "binding `{name}`: invalid resource name `{target}` (use 1-63 of a-z, 0-9 and -)"
                ));
            }
            BindingSpec::Service { service, .. } if service != script => {
                let exists = valid_name(service)
                    && store
                        .get_script(namespace, service, None)?
                        .is_some_and(|record| record.customer_id.as_deref() == owner);
                if !exists {
                    return invalid(format!(
                        "binding `{name}`: there is no script `{service}` of yours to bind"
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

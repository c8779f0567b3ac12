//! `platform:worker`: the host side of a script's bindings, generated with `bindgen!`
//! from the same WIT the guest SDK uses (`sdk/wit`). A script reaches a capability only
//! through a binding name it was uploaded with; every call resolves the name in the
//! script's own bindings, and data belongs to the script's customer, so no name a script
//! picks reaches another customer's data.
//!
//! This file: the generated bindings, `vars` (plain text and secrets) and `log`. KV, SQL
//! and service bindings have a file each.

pub mod kv;
#[cfg_attr(
    not(test),
    expect(
        dead_code,
        unused_imports,
        reason = "the r2_bucket binding's host side is not written yet"
    )
)]
pub mod r2;
pub mod service;
pub mod sql;

use platform::worker::log::Level;
use platform::worker::types::Error as BindingError;

use super::Host;

wasmtime::component::bindgen!({
    path: "../sdk/wit",
    world: "platform:worker/worker",
    imports: {
        "platform:worker/kv": async,
        "platform:worker/sql": async,
    },
});

/// Links every `platform:worker` interface into `linker`.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<Host>) -> wasmtime::Result<()> {
    Worker::add_to_linker::<Host, wasmtime::component::HasSelf<Host>>(linker, |host| host)
}

/// Whose data a script's KV namespaces and databases are: its customer's, or the
/// platform's for first-party scripts (a value no customer id can take).
pub fn data_owner(customer_id: Option<&str>) -> &str {
    customer_id.unwrap_or("_platform")
}

fn no_such_binding(kind: &str, name: &str) -> BindingError {
    BindingError::NoSuchBinding(format!("this script has no {kind} binding named `{name}`"))
}

impl platform::worker::types::Host for Host {}

impl platform::worker::vars::Host for Host {
    fn get(&mut self, name: String) -> Option<String> {
        let param = self.params.as_ref().and_then(|p| p.get(&name));
        param
            .or_else(|| self.script.bindings.vars.get(&name))
            .cloned()
    }

    fn secret(&mut self, name: String) -> Option<String> {
        self.script.bindings.secrets.get(&name).cloned()
    }
}

impl platform::worker::log::Host for Host {
    fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        let mut line = format!("[{level}] {message}");
        if !line.ends_with('\n') {
            line.push('\n');
        }
        self.logs.append(line.as_bytes());
    }
}

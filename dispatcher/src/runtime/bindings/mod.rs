//! Bindings: the capabilities a script is given by name at upload (a variable, a secret,
//! a KV namespace, a database, an object-storage bucket, a queue, another script). Each kind is one
//! unit implementing [`BindingKind`]: its metadata `type`, what it accepts at upload (and
//! stores: a spec, maybe a secret), how a stored binding resolves at load, and its own
//! per-request context (`KvCtx`, `SqlCtx`, ...) behind the WIT interface it implements,
//! linked in `host.rs` with a projection of the `Host` to that context only. The store
//! keeps bindings as `(script, name, kind, spec JSON, sealed secret)` and knows no kind.
//!
//! The WIT is `platform:worker` (`sdk/wit`), the same the guest SDK builds from. Every
//! call resolves a binding name in the script's own bindings, and data belongs to the
//! script's customer, so no name a script picks reaches another customer's data.
//!
//! Adding a kind: a unit file here (its `BindingKind`, its context, its WIT host
//! impl), its interface in `sdk/wit/worker.wit`, a line in [`UNITS`], a field in
//! [`ScriptBindings`] and [`BindingCtx`], and its linker line in `host.rs`.

pub mod kv;
pub mod legacy;
pub mod queue;
pub mod r2;
pub mod sql;
pub mod vars;

use std::collections::HashMap;
use std::sync::Arc;

use platform::worker::log::Level;
use platform::worker::types::Error as BindingError;

use super::capture::LogCapture;
use super::invoke::WorkerParams;
use super::outbound::ServiceBinding;
use crate::store::{BindingFields, Store, StoredBinding};

wasmtime::component::bindgen!({
    path: "../sdk/wit",
    world: "platform:worker/worker",
    imports: { default: async },
    with: {
        "wasi": wasmtime_wasi::p2::bindings,
        "platform:worker/kv.namespace": kv::NamespaceHandle,
        "platform:worker/sql.database": sql::DatabaseHandle,
        "platform:worker/r2.bucket": r2::BucketHandle,
        "platform:worker/r2.upload": r2::UploadHandle,
        "platform:worker/queue.producer": queue::ProducerHandle,
    },
});

/// Where an upload's bindings are checked: the script and its owner, and the store to
/// look up what a binding names.
pub struct UploadContext<'a> {
    pub store: &'a Store,
    pub namespace: &'a str,
    pub script: &'a str,
    pub owner: Option<&'a str>,
}

/// What a unit keeps of one binding of an upload.
pub struct Accepted {
    /// Shown by the API.
    pub spec: BindingFields,
    /// Sealed at rest, never shown.
    pub secret: Option<String>,
}

/// One kind of binding.
pub trait BindingKind: Sync {
    /// The metadata `type` (`kv_namespace`).
    fn kind(&self) -> &'static str;
    /// Checks one binding of an upload (its name is checked already); what to store, or
    /// why not, in words the uploader can act on.
    fn accept(
        &self,
        name: &str,
        fields: &BindingFields,
        upload: &UploadContext<'_>,
    ) -> Result<Accepted, String>;
    /// Adds a stored binding to what the script can reach (`binding.kind` is this kind).
    fn resolve(&self, binding: StoredBinding, into: &mut ScriptBindings);
}

/// Every kind of binding there is.
const UNITS: &[&dyn BindingKind] = &[
    &vars::PlainText,
    &vars::SecretText,
    &kv::KV_NAMESPACE,
    &sql::D1,
    &r2::R2_BUCKET,
    &queue::QUEUE,
    &ServiceBinding,
];

/// The unit of the metadata `type` `kind`.
pub fn unit(kind: &str) -> Option<&'static dyn BindingKind> {
    UNITS.iter().copied().find(|unit| unit.kind() == kind)
}

/// The metadata `type`s there are, for an error message.
pub fn kinds() -> impl Iterator<Item = &'static str> {
    UNITS.iter().map(|unit| unit.kind())
}

/// What one script can reach, by binding name, as its units resolved it (secrets
/// opened: never logged, no `Debug`).
#[derive(Default)]
pub struct ScriptBindings {
    pub vars: vars::Vars,
    pub kv: OwnedResources,
    pub sql: OwnedResources,
    pub r2: OwnedResources,
    pub queues: OwnedResources,
    /// Service bindings: binding name → the bound script and, when the binding names
    /// one, its named entrypoint.
    pub services: HashMap<String, ServiceTarget>,
}

/// Where a service binding goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTarget {
    pub script: String,
    /// A named HTTP entrypoint the script exports; its default handler when `None`.
    pub entrypoint: Option<String>,
}

impl ScriptBindings {
    /// Resolves a script's stored bindings; `owner` is whose data they reach
    /// ([`data_owner`]). A stored kind no unit knows (written by a newer version) is
    /// skipped and logged.
    pub fn resolve(owner: &str, stored: Vec<StoredBinding>) -> ScriptBindings {
        let mut bindings = ScriptBindings {
            kv: OwnedResources::owned_by(owner),
            sql: OwnedResources::owned_by(owner),
            r2: OwnedResources::owned_by(owner),
            queues: OwnedResources::owned_by(owner),
            ..ScriptBindings::default()
        };
        for binding in stored {
            match unit(&binding.kind) {
                Some(unit) => unit.resolve(binding, &mut bindings),
                None => tracing::warn!(
                    binding = binding.name,
                    kind = binding.kind,
                    "skipping a binding of a kind this server does not know"
                ),
            }
        }
        bindings
    }
}

/// The runtime-wide stores the binding units reach (one each, shared by every run).
pub struct BindingServices {
    pub kv: Arc<kv::KvStore>,
    pub sql: Arc<sql::SqlDatabases>,
    pub r2: Arc<r2::objects::ObjectStore>,
    pub queues: Arc<queue::Queues>,
}

/// One run's binding contexts: each unit's own, and nothing else of the host. A unit's
/// context is made from the runtime's stores and the script's bindings when the guest
/// first calls that unit, so a run that uses no bindings (hello) copies none of their
/// shared handles, whose reference counts every core's requests would otherwise touch.
pub struct BindingCtx {
    vars: Option<vars::VarsCtx>,
    kv: Option<kv::KvCtx>,
    sql: Option<sql::SqlCtx>,
    r2: Option<r2::R2Ctx>,
    queue: Option<queue::QueueCtx>,
    pub log: LogCtx,
    /// An outbound worker's params, for its vars.
    params: WorkerParams,
}

impl BindingCtx {
    pub fn for_run(logs: &LogCapture, params: WorkerParams) -> BindingCtx {
        BindingCtx {
            vars: None,
            kv: None,
            sql: None,
            r2: None,
            queue: None,
            log: LogCtx(logs.clone()),
            params,
        }
    }

    pub fn vars(&mut self, bindings: &ScriptBindings) -> &mut vars::VarsCtx {
        let params = &self.params;
        self.vars
            .get_or_insert_with(|| vars::VarsCtx::new(&bindings.vars, params.clone()))
    }

    pub fn kv(&mut self, services: &BindingServices, bindings: &ScriptBindings) -> &mut kv::KvCtx {
        self.kv
            .get_or_insert_with(|| kv::KvCtx::new(&services.kv, &bindings.kv))
    }

    pub fn sql(
        &mut self,
        services: &BindingServices,
        bindings: &ScriptBindings,
    ) -> &mut sql::SqlCtx {
        self.sql
            .get_or_insert_with(|| sql::SqlCtx::new(&services.sql, &bindings.sql))
    }

    pub fn r2(&mut self, services: &BindingServices, bindings: &ScriptBindings) -> &mut r2::R2Ctx {
        self.r2
            .get_or_insert_with(|| r2::R2Ctx::new(&services.r2, &bindings.r2))
    }

    pub fn queue(
        &mut self,
        services: &BindingServices,
        bindings: &ScriptBindings,
    ) -> &mut queue::QueueCtx {
        self.queue
            .get_or_insert_with(|| queue::QueueCtx::new(&services.queues, &bindings.queues))
    }
}

/// Whose data a script's KV namespaces and databases are: its customer's, or the
/// platform's for first-party scripts (a value no customer id can take).
pub fn data_owner(customer_id: Option<&str>) -> &str {
    customer_id.unwrap_or("_platform")
}

/// A script's bindings of one kind that name a resource of the owner's (a KV namespace, a
/// database, a bucket): binding name → resource name, and whose resources they are.
#[derive(Default, Clone)]
pub struct OwnedResources {
    pub owner: Arc<str>,
    names: Arc<HashMap<String, String>>,
}

impl OwnedResources {
    pub fn owned_by(owner: &str) -> OwnedResources {
        OwnedResources {
            owner: owner.into(),
            names: Arc::default(),
        }
    }

    /// The resource bound as `binding`, or the guest's `no-such-binding` error.
    pub fn get(&self, kind: &str, binding: &str) -> Result<&str, BindingError> {
        self.names
            .get(binding)
            .map(String::as_str)
            .ok_or_else(|| no_such_binding(kind, binding))
    }

    /// Adds a stored binding whose spec names its resource in `field`.
    fn resolve(&mut self, binding: StoredBinding, field: &str) {
        if let Some(serde_json::Value::String(resource)) = binding.spec.get(field) {
            Arc::make_mut(&mut self.names).insert(binding.name, resource.clone());
        }
    }
}

/// A kind of binding whose metadata names one resource of the owner's (a KV namespace, a
/// database, a bucket) in one string field: the kind's whole upload check and resolution.
pub struct ResourceBinding {
    pub kind: &'static str,
    /// The metadata field naming the resource (`namespace`).
    pub field: &'static str,
    pub valid: fn(&str) -> bool,
    /// What a valid name is, for the uploader.
    pub rule: &'static str,
    /// Where the script's resolved bindings of this kind go.
    pub resources: fn(&mut ScriptBindings) -> &mut OwnedResources,
}

impl BindingKind for ResourceBinding {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn accept(
        &self,
        _name: &str,
        fields: &BindingFields,
        _upload: &UploadContext<'_>,
    ) -> Result<Accepted, String> {
        let resource = required_string(fields, self.field)?;
        if !(self.valid)(resource) {
            return Err(format!(
                "invalid {} `{resource}` ({})",
                self.field, self.rule
            ));
        }
        Ok(Accepted {
            spec: spec_of(self.field, resource),
            secret: None,
        })
    }

    fn resolve(&self, binding: StoredBinding, into: &mut ScriptBindings) {
        (self.resources)(into).resolve(binding, self.field);
    }
}

/// A string field of a binding's metadata, required.
pub fn required_string<'a>(fields: &'a BindingFields, field: &str) -> Result<&'a str, String> {
    match fields.get(field) {
        Some(serde_json::Value::String(value)) => Ok(value),
        Some(_) => Err(format!("`{field}` must be a string")),
        None => Err(format!("`{field}` is missing")),
    }
}

/// A spec of one string field.
pub fn spec_of(field: &str, value: &str) -> BindingFields {
    let mut spec = BindingFields::new();
    spec.insert(field.into(), value.into());
    spec
}

fn no_such_binding(kind: &str, name: &str) -> BindingError {
    BindingError::NoSuchBinding(format!("this script has no {kind} binding named `{name}`"))
}

/// Links the interfaces no binding kind owns (`types`, `log`); the units' own are linked
/// in `host.rs`.
pub fn add_shared_to_linker<T: Send + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
    log: fn(&mut T) -> &mut LogCtx,
) -> wasmtime::Result<()> {
    platform::worker::types::add_to_linker::<T, NoState>(linker, |_| NoState)?;
    platform::worker::log::add_to_linker::<T, HasLog>(linker, log)
}

/// The `types` interface has no functions, so no state.
struct NoState;

impl wasmtime::component::HasData for NoState {
    type Data<'a> = NoState;
}

impl platform::worker::types::Host for NoState {}

/// `log`: lines that land in the run's captured console output.
pub struct LogCtx(LogCapture);

struct HasLog;

impl wasmtime::component::HasData for HasLog {
    type Data<'a> = &'a mut LogCtx;
}

impl platform::worker::log::Host for &mut LogCtx {
    async fn log(&mut self, level: Level, message: String) {
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
        self.0.append(line.as_bytes());
    }
}

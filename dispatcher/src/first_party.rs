//! The platform's own services — auth, billing, support, ai, content and admin — as
//! first-party components: built from `examples/platform/` by `build.rs`, embedded in
//! the binary, and installed into the `platform` namespace by `dispatcher serve` through
//! the same deploy pipeline as customer uploads. They run under the same limits as
//! customers; nothing about them is special-cased except the gateway in front of them.
//!
//! At every start, for each service: missing → installed; installed by this binary from
//! another build (its `bundled-sha256:` tag differs) → upgraded, keeping its generated
//! secrets; deployed by the operator (`dispatcher script deploy`, no such tag) → left
//! alone. Callees are installed before their callers, so service bindings resolve.

use bytes::Bytes;
use rand::RngCore as _;

use crate::deploy::{Deployer, NewVersion};
use crate::store::{BindingRequest, ConsumerSpec, LimitOverrides, PLATFORM_NAMESPACE, sha256_hex};

/// The tag that marks a script as installed from this binary, and from which build.
const BUNDLED_TAG: &str = "bundled-sha256:";

macro_rules! embedded {
    ($name:literal) => {
        include_bytes!(concat!(env!("DISPATCHER_GUESTS_DIR"), "/", $name, ".wasm"))
    };
}

/// What a service is bound to.
enum Binding {
    /// `DB`: the service's own SQLite database.
    Database(&'static str),
    /// A service binding `(binding name, script)`.
    Service(&'static str, &'static str),
    /// A secret generated at first install and kept across upgrades.
    GeneratedSecret(&'static str),
    /// An object-storage bucket `(binding name, bucket)` of the platform's own.
    Bucket(&'static str, &'static str),
    /// A queue `(binding name, queue)` of the platform's own, to send to.
    Queue(&'static str, &'static str),
}

struct Service {
    name: &'static str,
    wasm: &'static [u8],
    bindings: &'static [Binding],
    /// Limits set at first install (the operator may change them with `limits set`).
    limits: LimitOverrides,
    /// Its Cron Triggers, set at every install or upgrade.
    crons: &'static [&'static str],
    /// The platform queues it consumes (with Workers' defaults but a half-second
    /// batch timeout), set at every install or upgrade.
    consumes: &'static [&'static str],
}

const NO_OVERRIDES: LimitOverrides = LimitOverrides {
    cpu_ms: None,
    memory_mb: None,
    subrequests: None,
    wall_ms: None,
};

/// In install order: every service after the ones it binds to.
const SERVICES: &[Service] = &[
    Service {
        name: "auth",
        wasm: embedded!("auth"),
        bindings: &[Binding::Database("auth")],
        // One Argon2id hash (19 MiB, 2 passes) takes about 40 ms of CPU in wasm; leave
        // room for a slow machine.
        limits: LimitOverrides {
            cpu_ms: Some(500),
            ..NO_OVERRIDES
        },
        crons: &[],
        consumes: &[],
    },
    Service {
        name: "billing",
        wasm: embedded!("billing"),
        bindings: &[
            Binding::Database("billing"),
            Binding::GeneratedSecret("PAYMENT_WEBHOOK_SECRET"),
        ],
        limits: NO_OVERRIDES,
        // Nightly: expire orders left unpaid for a day.
        crons: &["0 3 * * *"],
        consumes: &[],
    },
    Service {
        name: "support",
        wasm: embedded!("support"),
        bindings: &[
            Binding::Database("support"),
            Binding::Bucket("ATTACHMENTS", "attachments"),
            Binding::Queue("NOTIFY", "ticket-notifications"),
        ],
        limits: NO_OVERRIDES,
        crons: &[],
        // Its own notification outbox: ticket events are written by a queue consumer.
        consumes: &["ticket-notifications"],
    },
    Service {
        name: "content",
        wasm: embedded!("content"),
        bindings: &[Binding::Database("content")],
        limits: NO_OVERRIDES,
        crons: &[],
        consumes: &[],
    },
    Service {
        name: "ai",
        wasm: embedded!("ai"),
        bindings: &[
            Binding::Database("ai"),
            Binding::Service("BILLING", "billing"),
        ],
        limits: NO_OVERRIDES,
        crons: &[],
        consumes: &[],
    },
    Service {
        name: "admin",
        wasm: embedded!("admin"),
        bindings: &[
            Binding::Service("AUTH", "auth"),
            Binding::Service("BILLING", "billing"),
            Binding::Service("SUPPORT", "support"),
        ],
        limits: NO_OVERRIDES,
        crons: &[],
        consumes: &[],
    },
];

/// The names of the first-party services.
pub fn service_names() -> impl Iterator<Item = &'static str> {
    SERVICES.iter().map(|service| service.name)
}

/// What `install` did to one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    Fresh,
    Upgraded,
    Current,
    /// The operator deployed their own version; it is kept.
    OperatorVersion,
}

/// Installs or upgrades every first-party service (see the module doc).
pub async fn install(deployer: &Deployer) -> anyhow::Result<Vec<(&'static str, Installed)>> {
    let mut report = Vec::new();
    for service in SERVICES {
        let sha256 = sha256_hex(service.wasm);
        let bundled_tag = format!("{BUNDLED_TAG}{sha256}");
        let current = deployer
            .store
            .get_script(PLATFORM_NAMESPACE, service.name, None)?;
        let state = match &current {
            None => Installed::Fresh,
            Some(record) if record.tags.contains(&bundled_tag) => Installed::Current,
            Some(record) if record.tags.iter().any(|t| t.starts_with(BUNDLED_TAG)) => {
                Installed::Upgraded
            }
            Some(_) => Installed::OperatorVersion,
        };
        // Limits first: the deploy below loads the script with the settings it finds.
        if state == Installed::Fresh && service.limits != NO_OVERRIDES {
            let settings = deployer
                .store
                .script_settings(PLATFORM_NAMESPACE, service.name)?;
            if settings.limits == NO_OVERRIDES {
                deployer
                    .store
                    .set_limits(PLATFORM_NAMESPACE, service.name, service.limits)?;
            }
        }
        if matches!(state, Installed::Fresh | Installed::Upgraded) {
            let bindings = bindings_of(deployer, service)?;
            deployer
                .deploy(NewVersion {
                    namespace: PLATFORM_NAMESPACE.into(),
                    name: service.name.into(),
                    customer_id: None,
                    wasm: Bytes::from_static(service.wasm),
                    tags: Some(vec!["first-party".into(), bundled_tag]),
                    bindings: Some(bindings),
                    annotations: Default::default(),
                    deploy: true,
                    crons: Some(service.crons.iter().map(|c| c.to_string()).collect()),
                    consumers: Some(
                        service
                            .consumes
                            .iter()
                            .map(|queue| ConsumerSpec {
                                queue: queue.to_string(),
                                max_batch_size: 10,
                                max_batch_timeout_ms: 500,
                                max_retries: 3,
                                dead_letter_queue: None,
                            })
                            .collect(),
                    ),
                })
                .await?;
        }
        tracing::info!(service = service.name, ?state, "first-party service");
        report.push((service.name, state));
    }
    Ok(report)
}

/// The bindings of `service`, as an upload's metadata gives them, reusing a generated
/// secret it already has.
fn bindings_of(deployer: &Deployer, service: &Service) -> anyhow::Result<Vec<BindingRequest>> {
    let existing = deployer
        .store
        .live_bindings(PLATFORM_NAMESPACE, service.name)?;
    let existing_secret = |name: &str| {
        existing
            .iter()
            .find(|binding| binding.name == name)
            .and_then(|binding| binding.secret.clone())
    };
    service
        .bindings
        .iter()
        .map(|binding| {
            let metadata = match binding {
                Binding::Database(database) => {
                    serde_json::json!({"type": "d1", "name": "DB", "database": database})
                }
                Binding::Service(name, script) => {
                    serde_json::json!({"type": "service", "name": name, "service": script})
                }
                Binding::Bucket(name, bucket) => serde_json::json!({
                    "type": "r2_bucket",
                    "name": name,
                    "bucket_name": bucket,
                }),
                Binding::Queue(name, queue) => serde_json::json!({
                    "type": "queue",
                    "name": name,
                    "queue_name": queue,
                }),
                Binding::GeneratedSecret(name) => serde_json::json!({
                    "type": "secret_text",
                    "name": name,
                    "text": existing_secret(name).unwrap_or_else(random_secret),
                }),
            };
            Ok(serde_json::from_value(metadata)?)
        })
        .collect()
}

/// 32 random bytes in hex.
fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

//! The one server configuration: defaults, overridden by a TOML file (`--config`), then
//! by command-line flags. Every limit the front door and the runtime enforce is here.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use ipnet::IpNet;

use crate::runtime::{
    AddressPolicy, CodeLimits, CompileLimits, EngineLimits, Limits, RuntimeConfig, SqlLimits,
};
use platform_names::valid_name;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the server listens on.
    pub listen: SocketAddr,
    /// `{script}.{dispatch_domain}` is routed to the script (`hello.localhost`).
    pub dispatch_domain: String,
    /// Largest component a customer may upload, in bytes.
    pub max_script_bytes: usize,
    /// Versions kept per script (never one the live or the previous deployment uses).
    pub versions_kept: usize,
    /// Most bytes of components one customer's kept versions may name, all scripts
    /// together (each distinct component once); older versions go first, and an upload
    /// that cannot fit is refused (`413`).
    pub max_version_bytes_per_customer: u64,
    /// Longest an upload's body may go without a byte arriving, in milliseconds
    /// (`408 request_timeout` past it).
    pub upload_idle_timeout_ms: u64,
    /// Longest an upload's whole body may take to arrive, in milliseconds.
    pub upload_timeout_ms: u64,
    /// Largest request body a dispatched script may receive, in bytes.
    pub max_request_body_bytes: usize,
    /// Longest a client may take to send a request's headers (also closes idle
    /// keep-alive connections), in milliseconds.
    pub header_read_timeout_ms: u64,
    /// Longest a new connection may stay silent before its first byte, in milliseconds.
    pub first_byte_timeout_ms: u64,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
    /// Most client connections open at once (default: the file-descriptor limit, raised
    /// to its hard limit at start, less 256 kept for the store and scripts' requests;
    /// at most 10,000).
    pub max_connections: Option<usize>,
    /// Most connections open at once from one client address (an IPv6 client counts by
    /// its /64).
    pub max_connections_per_address: usize,
    /// Serve cleartext HTTP/2 too (with at most 100 streams per connection); HTTP/1 only
    /// by default.
    pub http2: bool,
    /// Default CPU time limit of a request, in milliseconds (`limits set` overrides it
    /// per script).
    pub cpu_ms: u64,
    /// Default memory limit of a request (all its memories and tables), in MiB.
    pub memory_mb: u64,
    /// Default most outgoing requests and service calls per request.
    pub subrequests: u32,
    /// Default longest a request may run, in milliseconds.
    pub wall_time_ms: u64,
    /// Default longest a scheduled run (a Cron Trigger's fire) may run, in milliseconds
    /// (`limits set --wall-ms` overrides both per script).
    pub scheduled_wall_time_ms: u64,
    /// Most schedules (cron expressions) one script may have.
    pub max_crons_per_script: usize,
    /// Most messages one queue may hold; a send past it fails with `limit-exceeded`.
    pub max_queue_backlog: u64,
    /// Most bytes of messages one customer's queues may hold, all together.
    pub max_queue_bytes_per_customer: u64,
    /// Highest memory limit `limits set` may give a script, in MiB.
    pub max_script_memory_mb: u64,
    /// All running scripts' memory together, in MiB (default: half the machine's RAM).
    pub guest_memory_total_mb: Option<u64>,
    /// Most script instances alive at once; beyond it requests get `503 overloaded`.
    pub max_instances: u32,
    /// Most requests of one tenant (a customer, or one of the platform's own scripts)
    /// running at once (default: a quarter of `max_instances`), so one tenant cannot
    /// take the others' places.
    pub max_instances_per_tenant: Option<u32>,
    /// How long a request over its tenant's share waits for a place before `503
    /// overloaded`, in milliseconds.
    pub admission_queue_ms: u64,
    /// Non-public address ranges outgoing requests may reach anyway (CIDR, e.g.
    /// `["127.0.0.0/8"]`); by default every private, loopback, link-local and reserved
    /// range is refused.
    pub outbound_allow_private: Vec<IpNet>,
    /// Console output kept per request, in bytes.
    pub log_capacity_bytes: usize,
    /// Largest SQL (`d1`) database, in MiB.
    pub max_database_mb: u64,
    /// Longest one SQL statement may run, in milliseconds.
    pub sql_statement_ms: u64,
    /// Install (or upgrade) the platform's own services — auth, billing, support, ai,
    /// content, admin — at start and serve them through the gateway.
    pub first_party: bool,
    /// How long the gateway remembers what `auth` said of some credentials (a session,
    /// or none) before asking again, in milliseconds (0: every request). A logout
    /// through the gateway is immediate.
    pub session_cache_ms: u64,
    /// Let the web page's **Initialize** (demo customer + `hello`) run for requests from
    /// anywhere, not only from this machine.
    pub allow_remote_initialize: bool,
    /// How often metered usage is written to the store, in milliseconds (and at
    /// shutdown).
    pub usage_flush_ms: u64,
    /// Sign-ups and logins the gateway lets one client address make per minute (an
    /// IPv6 client counts by its /64); 0 turns the limit off, e.g. behind a proxy that
    /// makes every client one address.
    pub sign_in_attempts_per_minute: u32,
    /// Script names no customer may upload (`409 name_taken`), so that
    /// `{name}.{dispatch_domain}` never serves a tenant's page under a first-party name.
    pub reserved_names: Vec<String>,
    /// Longest one compile may take, in milliseconds (`400 compile_timeout` past it).
    pub compile_timeout_ms: u64,
    /// Most memory one compile may use, in MiB (`400 compile_too_large` past it).
    pub compile_memory_mb: u64,
    /// Most compiles running at once.
    pub max_concurrent_compiles: usize,
    /// Longest an upload waits for a compile slot, in milliseconds (`503 overloaded` past
    /// it).
    pub compile_queue_ms: u64,
    /// Largest compiled artifact of one component, in MiB (`400 compile_too_large` past
    /// it): the server maps all of it for as long as the script is deployed.
    pub max_artifact_mb: u64,
    /// Largest the compiled-function cache compiles share may grow, in MiB
    /// (`code-cache.pack` in the data directory); 0 compiles every function anew.
    pub code_cache_mb: u64,
    /// Code (function bodies) from which an upload is compiled by the baseline tier
    /// (Winch) first and answers on it while the optimized compile runs in the
    /// background, in KiB.
    pub baseline_min_code_kb: u64,
    /// Most a customer may store in its `r2_bucket` buckets, all together, in GiB (a put
    /// past it fails with `limit-exceeded` and stores nothing).
    pub max_bucket_gb: u64,
    /// The same in MiB, taking precedence when set (for small quotas, tests).
    pub max_bucket_mb: Option<u64>,
    /// Most functions a component's core modules may define together
    /// (`400 compile_too_large` past it, before compiling).
    pub max_wasm_functions: u64,
    /// Deepest nesting of blocks, loops and ifs in one function body
    /// (`400 compile_too_large` past it, before compiling).
    pub max_wasm_nesting: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            dispatch_domain: "localhost".into(),
            // Room for JavaScript (componentize-js, ~13 MB) and Python (componentize-py,
            // ~18 MB) components.
            max_script_bytes: 64 << 20,
            versions_kept: 100,
            max_version_bytes_per_customer: 4 << 30,
            upload_idle_timeout_ms: 10_000,
            upload_timeout_ms: 120_000,
            max_request_body_bytes: 100 << 20,
            header_read_timeout_ms: 10_000,
            first_byte_timeout_ms: 5_000,
            max_header_bytes: 64 << 10,
            max_connections: None,
            max_connections_per_address: 256,
            http2: false,
            cpu_ms: 50,
            memory_mb: 128,
            subrequests: 50,
            wall_time_ms: 30_000,
            scheduled_wall_time_ms: 15 * 60_000,
            max_crons_per_script: 3,
            max_queue_backlog: 100_000,
            max_queue_bytes_per_customer: 1 << 30,
            max_script_memory_mb: 1024,
            guest_memory_total_mb: None,
            max_instances: 1000,
            max_instances_per_tenant: None,
            admission_queue_ms: 100,
            outbound_allow_private: Vec::new(),
            log_capacity_bytes: 64 << 10,
            max_database_mb: 500,
            sql_statement_ms: 1000,
            first_party: true,
            session_cache_ms: 1000,
            allow_remote_initialize: false,
            usage_flush_ms: 10_000,
            sign_in_attempts_per_minute: 30,
            reserved_names: crate::first_party::service_names()
                .map(String::from)
                .collect(),
            // A typical Rust component compiles in well under a second. componentize-js
            // (13 MB) and componentize-py (18 MB) components take 9-13 s of CPU (5-7 s on
            // two idle cores, 10-14 s on busy ones) and peak at about 420 MiB.
            compile_timeout_ms: 60_000,
            compile_memory_mb: 2048,
            // One compile already keeps both cores of a 2-core machine busy (its
            // functions are compiled in parallel); a second would only halve the speed of
            // each and double the memory.
            max_concurrent_compiles: 1,
            compile_queue_ms: 10_000,
            // The server holds an artifact whole to run it. componentize-js (13 MB) and
            // componentize-py (18 MB) components compile to 35-37 MB; a bomb of tiny
            // functions is 50x its upload.
            max_artifact_mb: 512,
            // The engine code of componentize-js takes about 40 MiB, componentize-py's
            // about 60: room for a few toolchains and their versions.
            code_cache_mb: 256,
            baseline_min_code_kb: 4096,
            max_bucket_gb: 10,
            max_bucket_mb: None,
            max_wasm_functions: 100_000,
            max_wasm_nesting: 1_000,
        }
    }
}

/// Most instances at once: each place reserves its memories' address space in both
/// pooling engines (`runtime::engine`), some 32 GiB, and a process has 128 TiB.
const MAX_INSTANCES: u32 = 3000;

impl Config {
    /// Defaults, overridden by the TOML file at `path` when given.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        let config: Config = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("invalid config {}: {e}", path.display()))?;
        if let Err(why) = config.default_limits().check_memory_fits_cpu() {
            anyhow::bail!(
                "invalid config {}: memory_mb and cpu_ms: {why}",
                path.display()
            );
        }
        if !(1..=MAX_INSTANCES).contains(&config.max_instances) {
            anyhow::bail!(
                "invalid config {}: max_instances must be 1 to {MAX_INSTANCES}: every instance \
                 place reserves address space in two pools (about 32 GiB in all)",
                path.display()
            );
        }
        if let Some(name) = config.reserved_names.iter().find(|n| !valid_name(n)) {
            anyhow::bail!(
                "invalid config {}: reserved_names: `{name}` is not a script name \
                 (1-63 of a-z, 0-9 and -)",
                path.display()
            );
        }
        Ok(config)
    }

    /// Everything the runtime enforces.
    pub fn runtime(&self) -> RuntimeConfig {
        let guest_memory_bytes = self.guest_memory_total_mb.map_or_else(half_of_ram, mib);
        RuntimeConfig {
            engine: EngineLimits {
                max_instances: self.max_instances,
                max_memory_bytes: mib(self.max_script_memory_mb),
                guest_memory_bytes,
            },
            defaults: self.default_limits(),
            guest_memory_bytes,
            log_capacity: self.log_capacity_bytes,
            scheduled_wall: Duration::from_millis(self.scheduled_wall_time_ms),
            queue_caps: crate::runtime::bindings::queue::QueueCaps {
                messages_per_queue: self.max_queue_backlog,
                bytes_per_owner: self.max_queue_bytes_per_customer,
            },
            max_bucket_bytes: self
                .max_bucket_mb
                .map_or(self.max_bucket_gb << 30, |mb| mb << 20),
            sql: SqlLimits {
                max_database_bytes: self.max_database_mb << 20,
                statement_time: Duration::from_millis(self.sql_statement_ms),
                max_result_bytes: 16 << 20,
            },
            addresses: AddressPolicy {
                allowed_private: self.outbound_allow_private.clone(),
            },
            instances_per_tenant: self
                .max_instances_per_tenant
                .unwrap_or(self.max_instances / 4)
                .max(1) as usize,
            admission_queue: Duration::from_millis(self.admission_queue_ms),
            compile: CompileLimits {
                timeout: Duration::from_millis(self.compile_timeout_ms),
                memory_bytes: self.compile_memory_mb << 20,
                max_concurrent: self.max_concurrent_compiles,
                queue_timeout: Duration::from_millis(self.compile_queue_ms),
                max_artifact_bytes: self.max_artifact_mb << 20,
                code_cache_bytes: self.code_cache_mb << 20,
            },
            code: CodeLimits {
                max_functions: self.max_wasm_functions,
                max_nesting: self.max_wasm_nesting,
            },
            baseline_min_code_bytes: self.baseline_min_code_kb << 10,
        }
    }

    /// The limits of a script the admin gave none.
    pub fn default_limits(&self) -> Limits {
        Limits {
            cpu: Duration::from_millis(self.cpu_ms),
            memory_bytes: mib(self.memory_mb),
            subrequests: self.subrequests,
            wall: Duration::from_millis(self.wall_time_ms),
        }
    }

    pub fn session_cache(&self) -> Duration {
        Duration::from_millis(self.session_cache_ms)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }
}

fn mib(n: u64) -> usize {
    usize::try_from(n)
        .unwrap_or(usize::MAX)
        .saturating_mul(1 << 20)
}

/// Half the machine's RAM (`/proc/meminfo`), or 2 GiB when it cannot be read.
fn half_of_ram() -> usize {
    let total_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<usize>().ok()
        });
    total_kib.map_or(2 << 30, |kib| kib.saturating_mul(1024) / 2)
}

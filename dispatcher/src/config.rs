//! The one server configuration: defaults, overridden by a TOML file (`--config`), then
//! by command-line flags. Every limit the front door and the runtime enforce is here.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::runtime::{EngineLimits, InvokeLimits, SqlLimits};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the server listens on.
    pub listen: SocketAddr,
    /// `{script}.{dispatch_domain}` is routed to the script (`hello.localhost`).
    pub dispatch_domain: String,
    /// Largest component a customer may upload, in bytes.
    pub max_script_bytes: usize,
    /// Largest request body a dispatched script may receive, in bytes.
    pub max_request_body_bytes: usize,
    /// Longest a client may take to send a request's headers (also closes idle
    /// keep-alive connections), in milliseconds.
    pub header_read_timeout_ms: u64,
    /// Longest a dispatched request may run, in milliseconds.
    pub wall_time_ms: u64,
    /// Most script instances alive at once.
    pub max_instances: u32,
    /// Largest linear memory of a script, in MiB.
    pub max_memory_mb: usize,
    /// Console output kept per request, in bytes.
    pub log_capacity_bytes: usize,
    /// Largest SQL (`d1`) database, in MiB.
    pub max_database_mb: u64,
    /// Longest one SQL statement may run, in milliseconds.
    pub sql_statement_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            dispatch_domain: "localhost".into(),
            max_script_bytes: 10 << 20,
            max_request_body_bytes: 100 << 20,
            header_read_timeout_ms: 10_000,
            wall_time_ms: 30_000,
            max_instances: 1000,
            max_memory_mb: 128,
            log_capacity_bytes: 64 << 10,
            max_database_mb: 500,
            sql_statement_ms: 1000,
        }
    }
}

impl Config {
    /// Defaults, overridden by the TOML file at `path` when given.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("invalid config {}: {e}", path.display()))
    }

    pub fn engine_limits(&self) -> EngineLimits {
        EngineLimits {
            max_instances: self.max_instances,
            max_memory_bytes: self.max_memory_mb << 20,
        }
    }

    pub fn invoke_limits(&self) -> InvokeLimits {
        InvokeLimits {
            wall_time: Duration::from_millis(self.wall_time_ms),
            log_capacity: self.log_capacity_bytes,
        }
    }

    pub fn sql_limits(&self) -> SqlLimits {
        SqlLimits {
            max_database_bytes: self.max_database_mb << 20,
            statement_time: Duration::from_millis(self.sql_statement_ms),
            max_result_bytes: 16 << 20,
        }
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }
}

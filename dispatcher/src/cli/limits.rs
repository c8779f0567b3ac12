//! `dispatcher limits set | show`: the admin's per-script limits. A limit not set falls
//! back to the server's default (from `--config`, as `serve` would read it). A running
//! server applies a change to the next request.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde::Serialize;

use super::ScriptName;
use crate::config::Config;
use crate::store::{LimitOverrides, Store};

/// Highest CPU or wall-time limit the CLI accepts, in milliseconds (15 minutes).
const MAX_TIME_MS: u64 = 15 * 60 * 1000;
/// Highest subrequest limit the CLI accepts.
const MAX_SUBREQUESTS: u32 = 10_000;

#[derive(Subcommand)]
pub enum LimitsCommand {
    /// Set some of a script's limits; the others keep their value.
    Set {
        #[command(flatten)]
        script: ScriptName,
        /// CPU time per request, in milliseconds.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_TIME_MS))]
        cpu_ms: Option<u64>,
        /// Memory per request (all memories and tables), in MiB.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        memory_mb: Option<u64>,
        /// Outgoing requests and service calls per request.
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=MAX_SUBREQUESTS as i64))]
        subrequests: Option<u32>,
        /// Wall time per request, in milliseconds.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_TIME_MS))]
        wall_ms: Option<u64>,
        /// The server's configuration file, for the defaults and the memory ceiling.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show a script's effective limits and which of them the admin set.
    Show {
        #[command(flatten)]
        script: ScriptName,
        /// The server's configuration file, for the defaults.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// One limit as shown: its effective value and whether it is the default.
#[derive(Serialize)]
struct ShownLimit {
    value: u64,
    default: bool,
}

#[derive(Serialize)]
struct ShownLimits {
    name: String,
    namespace: String,
    cpu_ms: ShownLimit,
    memory_mb: ShownLimit,
    subrequests: ShownLimit,
    wall_ms: ShownLimit,
}

pub fn run(data: &Path, command: LimitsCommand) -> anyhow::Result<()> {
    let store = Store::open(data)?;
    let (script, config, json, overrides) = match command {
        LimitsCommand::Set {
            script,
            cpu_ms,
            memory_mb,
            subrequests,
            wall_ms,
            config,
            json,
        } => {
            let config = Config::load(config.as_deref())?;
            script.ensure_exists(&store)?;
            if let Some(mb) = memory_mb {
                anyhow::ensure!(
                    mb <= config.max_script_memory_mb,
                    "--memory-mb {mb} is above the server's ceiling of {} MiB \
                     (`max_script_memory_mb` in its config)",
                    config.max_script_memory_mb
                );
            }
            let overrides = LimitOverrides {
                cpu_ms,
                memory_mb,
                subrequests,
                wall_ms,
            };
            anyhow::ensure!(
                overrides != LimitOverrides::default(),
                "give at least one of --cpu-ms, --memory-mb, --subrequests, --wall-ms"
            );
            let current = store.script_settings(&script.namespace, &script.name)?;
            config
                .default_limits()
                .with_overrides(&current.limits.merged(overrides))
                .check_memory_fits_cpu()
                .map_err(anyhow::Error::msg)?;
            let settings = store.set_limits(&script.namespace, &script.name, overrides)?;
            (script, config, json, settings.limits)
        }
        LimitsCommand::Show {
            script,
            config,
            json,
        } => {
            let config = Config::load(config.as_deref())?;
            script.ensure_exists(&store)?;
            let settings = store.script_settings(&script.namespace, &script.name)?;
            (script, config, json, settings.limits)
        }
    };
    let shown = show(script, &config, &overrides);
    if json {
        super::print_json(&shown);
    } else {
        println!("limits of {} (namespace {})", shown.name, shown.namespace);
        for (label, limit, unit) in [
            ("cpu", &shown.cpu_ms, "ms"),
            ("memory", &shown.memory_mb, "MiB"),
            ("subrequests", &shown.subrequests, ""),
            ("wall time", &shown.wall_ms, "ms"),
        ] {
            let source = if limit.default { "default" } else { "set" };
            println!("  {label:<12} {:>8} {unit:<4} ({source})", limit.value);
        }
    }
    Ok(())
}

fn show(script: ScriptName, config: &Config, overrides: &LimitOverrides) -> ShownLimits {
    let shown = |set: Option<u64>, default: u64| ShownLimit {
        value: set.unwrap_or(default),
        default: set.is_none(),
    };
    ShownLimits {
        name: script.name,
        namespace: script.namespace,
        cpu_ms: shown(overrides.cpu_ms, config.cpu_ms),
        memory_mb: shown(overrides.memory_mb, config.memory_mb),
        subrequests: shown(
            overrides.subrequests.map(u64::from),
            u64::from(config.subrequests),
        ),
        wall_ms: shown(overrides.wall_ms, config.wall_time_ms),
    }
}

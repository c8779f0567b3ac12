//! `dispatcher usage [--customer ID] [--since ..] [--json]`: the operator's view of
//! metering, read from the store (what the running server flushed; it flushes every
//! `usage_flush_ms` and at shutdown): per script, totals and, with `--json`, minutes.

use std::time::SystemTime;

use crate::runtime::usage::{parse_since, per_script};
use crate::store::Store;

#[derive(clap::Args)]
pub struct UsageArgs {
    /// Only this customer's scripts.
    #[arg(long)]
    customer: Option<String>,
    /// From when: Unix seconds, an RFC 3339 time, or a span back from now (`2h`, `7d`);
    /// the last day by default.
    #[arg(long)]
    since: Option<String>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(data: &std::path::Path, args: UsageArgs) -> anyhow::Result<()> {
    let since =
        parse_since(args.since.as_deref(), SystemTime::now()).map_err(anyhow::Error::msg)?;
    let store = Store::open(data)?;
    let scripts = per_script(
        store.usage(args.customer.as_deref(), since)?,
        crate::runtime::usage::Grouping::Script,
    );
    if args.json {
        super::print_json(&serde_json::json!({ "since": since, "scripts": scripts }));
        return Ok(());
    }
    println!(
        "{:<24} {:<14} {:>11} {:>8} {:>8} {:>12} {:>12} {:>11} {:>12}",
        "SCRIPT",
        "CUSTOMER",
        "INVOCATIONS",
        "ERRORS",
        "CANCELED",
        "CPU MS",
        "WALL MS",
        "SUBREQUESTS",
        "PEAK MEMORY"
    );
    for script in scripts {
        let t = script.total;
        let e = t.errors;
        // A canceled run is its client's doing, not the script's failure.
        let errors = e.script_error
            + e.exceeded_cpu
            + e.exceeded_memory
            + e.exceeded_wall_time
            + e.overloaded;
        println!(
            "{:<24} {:<14} {:>11} {:>8} {:>8} {:>12.1} {:>12.1} {:>11} {:>12}",
            script.script,
            script.customer_id.as_deref().unwrap_or("platform"),
            t.invocations,
            errors,
            e.canceled,
            t.cpu_ms,
            t.wall_ms,
            t.subrequests,
            t.peak_memory_bytes
        );
    }
    Ok(())
}

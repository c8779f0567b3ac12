//! `dispatcher schedules set NAME [CRON...]`, `schedules show NAME` and `schedules
//! trigger NAME`: the admin's view of a script's Cron Triggers (`--namespace platform`
//! for the platform's own). `set` checks them as an upload does (it loads the script's
//! live versions to see that they export `platform:worker/scheduled`); a running server
//! fires the new schedules within a second. `trigger` runs the scheduled handler once,
//! in this process, against the same data (its run is not in the server's tail or usage).

use std::path::Path;

use clap::Subcommand;

use super::ScriptName;
use crate::config::Config;
use crate::store::Store;

#[derive(Subcommand)]
pub enum SchedulesCommand {
    /// Replace a script's schedules (5-field cron, UTC); none clears them.
    Set {
        #[command(flatten)]
        script: ScriptName,
        /// The cron expressions, e.g. "*/5 * * * *" (quote each).
        crons: Vec<String>,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a script's scheduled handler once, now, and say how it went.
    Trigger {
        #[command(flatten)]
        script: ScriptName,
        /// The cron the event carries (default: the script's first schedule).
        #[arg(long)]
        cron: Option<String>,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// A script's schedules and their next fires.
    Show {
        #[command(flatten)]
        script: ScriptName,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(data: &Path, command: SchedulesCommand) -> anyhow::Result<()> {
    match command {
        SchedulesCommand::Set {
            script,
            crons,
            json,
        } => {
            script.ensure_exists(&Store::open(data)?)?;
            let deployer = crate::server::open(data, &Config::default()).await?;
            deployer
                .set_schedules(&script.namespace, &script.name, None, crons)
                .await?;
            show(&deployer.store, &script, json)
        }
        SchedulesCommand::Trigger { script, cron, json } => {
            let store = Store::open(data)?;
            script.ensure_exists(&store)?;
            let cron = match cron {
                Some(cron) => cron,
                None => store
                    .schedules(&script.namespace, &script.name)?
                    .into_iter()
                    .next()
                    .ok_or_else(|| {
                        anyhow::anyhow!("{} has no schedules: give one with --cron", script.name)
                    })?,
            };
            crate::schedules::parse(&cron).map_err(anyhow::Error::msg)?;
            drop(store);
            let deployer = crate::server::open(data, &Config::default()).await?;
            let deployed = deployer
                .runtime
                .index
                .deployed(&script.namespace, &script.name)
                .ok_or_else(|| anyhow::anyhow!("{} cannot be loaded", script.name))?;
            let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
            let run = deployer
                .runtime
                .run_scheduled(deployed.pick(None).clone(), &cron, now_ms)
                .await?;
            if json {
                super::print_json(&serde_json::json!({
                    "outcome": "ok",
                    "cron": cron,
                    "request_id": run.request_id,
                    "cpu_ms": run.cpu_ms,
                }));
            } else {
                println!(
                    "ran {} for `{cron}`: ok ({:.1} ms CPU)",
                    script.name, run.cpu_ms
                );
            }
            Ok(())
        }
        SchedulesCommand::Show { script, json } => {
            let store = Store::open(data)?;
            script.ensure_exists(&store)?;
            show(&store, &script, json)
        }
    }
}

fn show(store: &Store, script: &ScriptName, json: bool) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let schedules: Vec<serde_json::Value> = store
        .schedules(&script.namespace, &script.name)?
        .into_iter()
        .map(|cron| {
            let next = crate::schedules::parse(&cron)
                .ok()
                .and_then(|parsed| crate::schedules::next_after(&parsed, &now))
                .map(|at| at.to_rfc3339());
            serde_json::json!({ "cron": cron, "next": next })
        })
        .collect();
    if json {
        super::print_json(&schedules);
    } else if schedules.is_empty() {
        println!("{} has no schedules", script.name);
    } else {
        for schedule in &schedules {
            println!(
                "{:<24} next {}",
                schedule["cron"].as_str().unwrap_or_default(),
                schedule["next"].as_str().unwrap_or("-")
            );
        }
    }
    Ok(())
}

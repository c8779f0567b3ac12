//! `dispatcher outbound set | clear`: where a script's outgoing requests may go. With
//! `--allow` only the listed origins (`scheme://host[:port]`, `*` wildcards); with
//! `--worker` every request is handed to that platform script, which reads the `--param`s
//! as vars. `clear` returns the script to the server's default policy. A running server
//! applies a change to the next request.

use std::collections::BTreeMap;
use std::path::Path;

use clap::Subcommand;

use super::ScriptName;
use crate::runtime::AllowList;
use crate::store::{OutboundPolicy, PLATFORM_NAMESPACE, Store};

/// Longest param value, as for plain-text bindings.
const MAX_PARAM_BYTES: usize = 5 * 1024;

#[derive(Subcommand)]
pub enum OutboundCommand {
    /// Restrict a script to an allow list, or hand its requests to an outbound worker.
    Set {
        #[command(flatten)]
        script: ScriptName,
        /// An origin the script may reach, `scheme://host[:port]` (`*` wildcards:
        /// `https://*.example.com`, `*://api.example.com:*`). Repeat for more.
        #[arg(long, num_args = 1.., required_unless_present = "worker", conflicts_with = "worker")]
        allow: Vec<String>,
        /// A script of the `platform` namespace that gets every outgoing request.
        #[arg(long)]
        worker: Option<String>,
        /// KEY=VALUE the outbound worker reads as a var. Repeat for more.
        #[arg(long = "param", requires = "worker", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Back to the server's default policy (public internet only).
    Clear {
        #[command(flatten)]
        script: ScriptName,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    let (key, value) = text.split_once('=').ok_or("write a param as KEY=VALUE")?;
    let valid_key = !key.is_empty()
        && key.len() <= 64
        && key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_key {
        return Err(format!(
            "param name `{key}`: use letters, digits and _, not starting with a digit"
        ));
    }
    if value.len() > MAX_PARAM_BYTES {
        return Err(format!(
            "param `{key}` is longer than {MAX_PARAM_BYTES} bytes"
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

pub fn run(data: &Path, command: OutboundCommand) -> anyhow::Result<()> {
    let store = Store::open(data)?;
    let (script, policy, json) = match command {
        OutboundCommand::Set {
            script,
            allow,
            worker,
            params,
            json,
        } => {
            script.ensure_exists(&store)?;
            let policy = match worker {
                Some(worker) => {
                    let exists = store.get_script(PLATFORM_NAMESPACE, &worker, None)?;
                    anyhow::ensure!(
                        exists.is_some(),
                        "no script named `{worker}` in the `{PLATFORM_NAMESPACE}` namespace \
                         (an outbound worker is a platform script)"
                    );
                    OutboundPolicy::Worker {
                        script: worker,
                        params: params.into_iter().collect::<BTreeMap<_, _>>(),
                    }
                }
                None => {
                    AllowList::parse(&allow).map_err(anyhow::Error::msg)?;
                    OutboundPolicy::Allow(allow)
                }
            };
            store.set_outbound(&script.namespace, &script.name, Some(policy.clone()))?;
            (script, Some(policy), json)
        }
        OutboundCommand::Clear { script, json } => {
            script.ensure_exists(&store)?;
            store.set_outbound(&script.namespace, &script.name, None)?;
            (script, None, json)
        }
    };
    if json {
        super::print_json(&serde_json::json!({
            "name": script.name,
            "namespace": script.namespace,
            "outbound": policy,
        }));
    } else {
        match policy {
            None => println!("{}: default outbound policy (public internet)", script.name),
            Some(OutboundPolicy::Allow(origins)) => {
                println!(
                    "{}: outbound allowed to {}",
                    script.name,
                    origins.join(", ")
                )
            }
            Some(OutboundPolicy::Worker {
                script: worker,
                params,
            }) => println!(
                "{}: outbound handed to worker `{worker}` with params {}",
                script.name,
                params.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
    }
    Ok(())
}

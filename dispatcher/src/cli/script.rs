//! `dispatcher script list | delete`: the admin's view over every customer's scripts
//! (`list --namespace platform`: the platform's own);
//! `script deploy`: install a platform script (first-party service, outbound worker)
//! through the same pipeline as uploads; `script versions | deploy-version | rollback`
//! (`versions.rs`); `script compose`: a script joined with the
//! platform module, as the upload pipeline does, so it also runs under `wasmtime serve`.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use bytes::Bytes;

use crate::config::Config;
use crate::deploy::{Metadata, NewVersion};
use crate::runtime::PlatformModule;
use crate::store::{CUSTOMER_NAMESPACE, PLATFORM_NAMESPACE, Store};

#[derive(Subcommand)]
pub enum ScriptCommand {
    /// List scripts, optionally of one customer and carrying every given tag.
    List {
        /// Only the scripts of the customer with this id.
        #[arg(long)]
        customer: Option<String>,
        /// Only scripts carrying this tag. Repeat for more: a script must carry them all.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// The namespace: `customers` (uploads) or `platform` (the platform's own scripts).
        #[arg(long, default_value = CUSTOMER_NAMESPACE, value_parser = [CUSTOMER_NAMESPACE, PLATFORM_NAMESPACE])]
        namespace: String,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete one script by name, or every script carrying a tag.
    Delete {
        /// The customer script to delete.
        #[arg(required_unless_present = "tag", conflicts_with = "tag")]
        name: Option<String>,
        /// Delete every customer script carrying this tag instead.
        #[arg(long)]
        tag: Option<String>,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Install or replace a script of the `platform` namespace (owned by no customer)
    /// from a component file. A running server serves the new version within a second.
    Deploy {
        /// The platform script's name.
        name: String,
        /// The component (`.wasm`).
        file: PathBuf,
        /// Upload metadata as JSON (`tags`, `bindings`, `annotations`), the same shape
        /// customers upload.
        #[arg(long)]
        metadata: Option<PathBuf>,
        /// Upload a new version without deploying it (`script deploy-version` later).
        #[arg(long)]
        upload_only: bool,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List a script's kept versions, newest first.
    Versions(super::versions::VersionsArgs),
    /// Deploy one or two versions of a script by percentage: `--split ID1=90,ID2=10`.
    DeployVersion(super::versions::DeployVersionArgs),
    /// Deploy a kept version at 100 % at once (by default the previous deployment's).
    Rollback(super::versions::RollbackArgs),
    /// Write INPUT composed with the platform module to OUTPUT (a component that runs
    /// under `wasmtime serve` too). A component that does not import `platform:module`
    /// is written unchanged.
    Compose {
        /// The component to compose (`.wasm`).
        input: PathBuf,
        /// Where to write the composed component.
        #[arg(long, short)]
        output: PathBuf,
    },
}

pub async fn run(data: &Path, command: ScriptCommand) -> anyhow::Result<()> {
    match command {
        ScriptCommand::Compose { input, output } => {
            let script = std::fs::read(input)?;
            let composed = PlatformModule::builtin()?.compose(&script)?;
            std::fs::write(output, composed.as_deref().unwrap_or(&script))?;
        }
        ScriptCommand::Deploy {
            name,
            file,
            metadata,
            upload_only,
            json,
        } => {
            let metadata: Metadata = match metadata {
                Some(path) => serde_json::from_slice(&std::fs::read(path)?)?,
                None => Metadata::default(),
            };
            let deployer = crate::server::open(data, &Config::default()).await?;
            let uploaded = deployer
                .deploy(NewVersion {
                    namespace: PLATFORM_NAMESPACE.into(),
                    name,
                    customer_id: None,
                    wasm: Bytes::from(std::fs::read(file)?),
                    tags: metadata.tags,
                    bindings: metadata.bindings,
                    annotations: metadata.annotations,
                    deploy: !upload_only,
                    crons: metadata.triggers.map(|t| t.crons),
                    consumers: metadata.consumers,
                })
                .await?;
            if json {
                super::print_json(&uploaded);
            } else {
                let verb = match (uploaded.created, upload_only) {
                    (true, _) => "installed",
                    (false, false) => "deployed a new version of",
                    (false, true) => "uploaded (not deployed) a new version of",
                };
                println!(
                    "{verb} platform script {}: version {} ({})",
                    uploaded.script.name, uploaded.version.id, uploaded.version.sha256
                );
            }
        }
        ScriptCommand::List {
            customer,
            tags,
            namespace,
            json,
        } => {
            let store = Store::open(data)?;
            let scripts = store.list_scripts(&namespace, customer.as_deref(), &tags)?;
            if json {
                super::print_json(&scripts);
            } else {
                println!(
                    "{:<24} {:<14} {:>9} {:<26} TAGS",
                    "NAME", "CUSTOMER", "SIZE", "UPDATED"
                );
                for s in scripts {
                    println!(
                        "{:<24} {:<14} {:>9} {:<26} {}",
                        s.name,
                        s.customer_id.as_deref().unwrap_or("-"),
                        s.size,
                        s.updated_at,
                        s.tags.join(",")
                    );
                }
            }
        }
        ScriptCommand::Versions(args) => super::versions::versions(data, args)?,
        ScriptCommand::DeployVersion(args) => super::versions::deploy_version(data, args)?,
        ScriptCommand::Rollback(args) => super::versions::rollback(data, args)?,
        ScriptCommand::Delete { name, tag, json } => {
            let store = Store::open(data)?;
            let deleted = match (name, tag) {
                (Some(name), _) => {
                    if store.delete_script(CUSTOMER_NAMESPACE, &name, None)? {
                        vec![name]
                    } else {
                        anyhow::bail!("no script named `{name}`");
                    }
                }
                (None, Some(tag)) => store.delete_scripts_tagged(CUSTOMER_NAMESPACE, &tag)?,
                (None, None) => unreachable!("clap requires a name or --tag"),
            };
            if json {
                super::print_json(&serde_json::json!({ "deleted": deleted }));
            } else {
                for name in &deleted {
                    println!("deleted {name}");
                }
                if deleted.is_empty() {
                    println!("no scripts matched");
                }
            }
        }
    }
    Ok(())
}

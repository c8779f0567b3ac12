//! The `dispatcher` command line (clap). One file per command group; each command works
//! on the data directory directly, so changes made while `serve` runs reach it through
//! the store's change watcher. With `--json` a command prints one JSON document only.

mod customer;
mod script;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Parser)]
#[command(
    name = "dispatcher",
    version,
    about = "A self-hosted Workers for Platforms"
)]
pub struct Cli {
    /// The data directory (database, components, compiled artifacts).
    #[arg(long, global = true, default_value = "./data", env = "DISPATCHER_DATA")]
    data: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on (overrides the config file).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Create the demo customer and its `hello` script if they do not exist.
        #[arg(long)]
        demo: bool,
    },
    /// Manage customers.
    #[command(subcommand)]
    Customer(customer::CustomerCommand),
    /// Manage scripts.
    #[command(subcommand)]
    Script(script::ScriptCommand),
    /// Create the demo customer and upload the default template `hello` for it.
    Demo {
        #[arg(long)]
        json: bool,
    },
}

pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            listen,
            config,
            demo,
        } => {
            let mut config = Config::load(config.as_deref())?;
            if let Some(listen) = listen {
                config.listen = listen;
            }
            runtime()?.block_on(crate::server::serve(config, &cli.data, demo))
        }
        Command::Customer(command) => customer::run(&cli.data, command),
        Command::Script(command) => runtime()?.block_on(script::run(&cli.data, command)),
        Command::Demo { json } => runtime()?.block_on(async {
            let config = Config::default();
            let deployer = crate::server::open(&cli.data, &config).await?;
            let demo = crate::demo::ensure(&deployer).await?;
            if json {
                print_json(&demo);
            } else {
                crate::demo::print(&demo, config.listen);
            }
            Ok(())
        }),
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

fn print_json<T: serde::Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("values serialise")
    );
}

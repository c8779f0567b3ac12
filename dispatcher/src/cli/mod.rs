//! The `dispatcher` command line (clap). One file per command group; each command works
//! on the data directory directly, so changes made while `serve` runs reach it through
//! the store's change watcher. With `--json` a command prints one JSON document only.

mod customer;
mod gc;
mod limits;
mod outbound;
mod platform;
mod queues;
mod schedules;
mod script;
mod tail;
mod usage;
mod versions;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::store::{CUSTOMER_NAMESPACE, PLATFORM_NAMESPACE, Store};

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

    /// How logs are written to stderr: `text`, or `json` (one object per line).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "DISPATCHER_LOG_FORMAT"
    )]
    log_format: LogFormat,

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
    /// Per-script limits (CPU, memory, subrequests, wall time).
    #[command(subcommand)]
    Limits(limits::LimitsCommand),
    /// Where a script's outgoing requests may go.
    #[command(subcommand)]
    Outbound(outbound::OutboundCommand),
    /// A script's Cron Triggers.
    #[command(subcommand)]
    Schedules(schedules::SchedulesCommand),
    /// The queues' messages and their consumers.
    #[command(subcommand)]
    Queues(queues::QueuesCommand),
    /// Remove the stored components and compiled artifacts no script uses any more.
    Gc(gc::GcArgs),
    /// Follow the runs of a script (or of all) on the running server.
    Tail(tail::TailArgs),
    /// Metered usage per script (invocations, errors, CPU, wall time, subrequests, memory).
    Usage(usage::UsageArgs),
    /// The platform's own services (auth, billing, ...).
    #[command(subcommand)]
    Platform(platform::PlatformCommand),
    /// Create the demo customer and upload the default template `hello` for it.
    Demo {
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Compile the component on stdin to an artifact on stdout, under the limits of its
    /// JSON spec; the server runs this in a child process for every compile.
    #[command(name = crate::runtime::WORKER_COMMAND, hide = true)]
    CompileWorker { spec: String },
}

/// How log lines are written to stderr.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Cli {
    /// The command line of this process.
    pub fn from_args() -> Cli {
        Cli::parse()
    }

    pub fn log_format(&self) -> LogFormat {
        self.log_format
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
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
            let runtime = runtime()?;
            let served = runtime.block_on(crate::server::serve(config, &cli.data, demo));
            // Blocking work still running (a compile) does not hold the exit up.
            runtime.shutdown_timeout(SHUTDOWN_BLOCKING_GRACE);
            served
        }
        Command::Customer(command) => customer::run(&cli.data, command),
        Command::Script(command) => runtime()?.block_on(script::run(&cli.data, command)),
        Command::Limits(command) => limits::run(&cli.data, command),
        Command::Outbound(command) => outbound::run(&cli.data, command),
        Command::Schedules(command) => runtime()?.block_on(schedules::run(&cli.data, command)),
        Command::Queues(command) => queues::run(&cli.data, command),
        Command::Gc(args) => gc::run(&cli.data, args),
        Command::Tail(args) => runtime()?.block_on(tail::run(&cli.data, args)),
        Command::Usage(args) => usage::run(&cli.data, args),
        Command::Platform(command) => runtime()?.block_on(platform::run(&cli.data, command)),
        Command::CompileWorker { spec } => crate::runtime::compile_worker::run(&spec),
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

/// A script named on the command line.
#[derive(clap::Args)]
pub struct ScriptName {
    /// The script's name.
    name: String,
    /// Its namespace: `customers` (uploads) or `platform` (the platform's own scripts).
    #[arg(long, default_value = CUSTOMER_NAMESPACE, value_parser = [CUSTOMER_NAMESPACE, PLATFORM_NAMESPACE])]
    namespace: String,
}

impl ScriptName {
    fn ensure_exists(&self, store: &Store) -> anyhow::Result<()> {
        let found = store.get_script(&self.namespace, &self.name, None)?;
        anyhow::ensure!(
            found.is_some(),
            "no script named `{}` in the `{}` namespace",
            self.name,
            self.namespace
        );
        Ok(())
    }
}

/// How long `serve` waits at exit for blocking work (compiles, store writes) still running
/// once its connections are done; store writes are atomic, so cutting them short is safe.
const SHUTDOWN_BLOCKING_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

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

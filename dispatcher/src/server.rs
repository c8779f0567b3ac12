//! `dispatcher serve`: opens the store and runtime, loads every script, and serves the
//! router through the front door (`front_door.rs`: connection caps and clocks). A
//! background task picks up changes other processes (the CLI) commit to the store,
//! within `CHANGE_POLL` — well under the promised one second — and another fires the
//! scripts' Cron Triggers (`schedules.rs`), and one delivers queues to their consumers
//! (`queues.rs`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::deploy::Deployer;
use crate::front_door;
use crate::local::{self, RunningServer};
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::store::Store;

const CHANGE_POLL: Duration = Duration::from_millis(250);

/// Opens the data directory: store, runtime and an index loaded from the store.
pub async fn open(data_dir: &Path, config: &Config) -> anyhow::Result<Deployer> {
    let store = Arc::new(Store::open(data_dir)?);
    let metrics = Arc::new(Metrics::default());
    let runtime = Arc::new(Runtime::new(data_dir, config.runtime(), metrics)?);
    let deployer = Deployer {
        store,
        runtime,
        max_script_bytes: config.max_script_bytes,
        versions_kept: config.versions_kept,
        max_version_bytes_per_customer: config.max_version_bytes_per_customer,
        max_crons_per_script: config.max_crons_per_script,
        reserved_names: config.reserved_names.clone().into(),
    };
    deployer.sync_from_store().await?;
    Ok(deployer)
}

pub async fn serve(mut config: Config, data_dir: &Path, demo: bool) -> anyhow::Result<()> {
    let deployer = open(data_dir, &config).await?;
    if config.first_party {
        crate::first_party::install(&deployer).await?;
    }
    if demo {
        crate::demo::print(&crate::demo::ensure(&deployer).await?, config.listen);
    }
    let store_changed = Arc::new(tokio::sync::Notify::new());
    spawn_change_watcher(deployer.clone(), store_changed.clone())?;
    crate::schedules::spawn(deployer.clone(), store_changed);
    crate::queues::spawn(deployer.clone());
    let usage_flusher = spawn_usage_flusher(deployer.clone(), config.usage_flush_ms);
    spawn_sweeper(deployer.store.clone());

    let listener = TcpListener::bind(config.listen).await?;
    let address = listener.local_addr()?;
    // The address actually bound (the config may ask for port 0), which the routes
    // that check a request's `Host` compare with.
    config.listen = address;
    tracing::info!(%address, data = %data_dir.display(), "dispatcher listening");
    println!("dispatcher listening on http://{address}");
    if deployer.store.list_customers()?.is_empty() {
        println!(
            "no customers yet: create one with `dispatcher --data {} customer create NAME`",
            data_dir.display()
        );
    }

    let operator_key = local::operator_key(data_dir)?;
    let usage_deployer = deployer.clone();
    RunningServer::announce(data_dir, address)?;
    let fd_limit = front_door::raise_fd_limit();
    let max_connections = config
        .max_connections
        .unwrap_or_else(|| front_door::default_max_connections(fd_limit));
    tracing::info!(fd_limit, max_connections, "connection caps");
    let front = config.clone();
    let state = AppState::new(deployer, config, operator_key);
    spawn_sign_in_forgetter(state.clone());
    let app = api::router(state);
    front_door::serve(listener, app, &front, max_connections, shutdown_signal()).await;
    RunningServer::withdraw(data_dir);
    usage_flusher.abort();
    flush_usage(&usage_deployer).await;
    Ok(())
}

/// Every minute, the sign-in limit forgets the addresses whose allowance is full again.
fn spawn_sign_in_forgetter(state: api::AppState) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(60));
        loop {
            ticks.tick().await;
            state.sign_in_limit.forget_idle();
        }
    });
}

/// How long an unused blob or artifact is kept before a sweep removes it.
const SWEEP_GRACE: Duration = Duration::from_secs(600);
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Removes the blobs and artifacts of versions no script uses, at start and hourly.
fn spawn_sweeper(store: Arc<Store>) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(SWEEP_EVERY);
        loop {
            ticks.tick().await;
            let store = store.clone();
            match tokio::task::spawn_blocking(move || store.sweep(SWEEP_GRACE)).await {
                Ok(Ok(swept)) if swept.bytes > 0 => {
                    tracing::info!(
                        blobs = swept.blobs,
                        artifacts = swept.artifacts,
                        bytes = swept.bytes,
                        "removed unused components"
                    )
                }
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::warn!(%error, "sweeping unused components failed"),
                Err(error) => tracing::warn!(%error, "the sweep task died"),
            }
        }
    });
}

/// Writes metered usage to the store every `every_ms`.
fn spawn_usage_flusher(deployer: Deployer, every_ms: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_millis(every_ms.max(10)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            flush_usage(&deployer).await;
        }
    })
}

/// One batch: everything counted since the last; put back if the store refuses it.
async fn flush_usage(deployer: &Deployer) {
    let batch = deployer.runtime.usage.take();
    if batch.is_empty() {
        return;
    }
    let store = deployer.store.clone();
    let result = tokio::task::spawn_blocking(move || {
        let written = store.add_usage(&batch);
        (batch, written)
    })
    .await;
    match result {
        Ok((_, Ok(()))) => {}
        Ok((batch, Err(error))) => {
            tracing::error!(%error, "writing usage failed; it is kept for the next flush");
            deployer.runtime.usage.restore(batch);
        }
        Err(error) => tracing::error!(%error, "the usage flush task died"),
    }
}

/// Re-reads the scripts when the store changed (and tells `store_changed`, which the
/// scheduler waits on).
fn spawn_change_watcher(
    deployer: Deployer,
    store_changed: Arc<tokio::sync::Notify>,
) -> anyhow::Result<()> {
    let mut watcher = deployer.store.change_watcher()?;
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(CHANGE_POLL).await;
            let (back, changed) = match tokio::task::spawn_blocking(move || {
                let changed = watcher.changed();
                (watcher, changed)
            })
            .await
            {
                Ok(result) => result,
                Err(error) => {
                    tracing::error!(%error, "change watcher died");
                    return;
                }
            };
            watcher = back;
            match changed {
                Ok(false) => {}
                Ok(true) => {
                    if let Err(error) = deployer.sync_from_store().await {
                        tracing::error!(%error, "reloading scripts failed");
                    }
                    store_changed.notify_one();
                }
                Err(error) => tracing::error!(%error, "checking the store for changes failed"),
            }
        }
    });
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

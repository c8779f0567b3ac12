//! The front door: accepting TCP connections and handing them to hyper, after shedding
//! what an anonymous client could use to exhaust the server.
//!
//! - **Connection caps.** At most `max_connections` open at once, and at most
//!   `max_connections_per_address` from one client (`client_address`); a connection past
//!   either is closed as soon as it is accepted, so it costs a file descriptor for
//!   microseconds. The default global cap follows the file-descriptor limit, which is
//!   raised to its hard limit at start (`raise_fd_limit`).
//! - **Clocks.** A connection that sends nothing within `first_byte_timeout_ms` is closed
//!   before hyper sees it; hyper's header-read timeout then bounds the rest of the head
//!   (and idle keep-alive), and heads are capped at `max_header_bytes`.
//! - **HTTP/1 only**, unless the config turns HTTP/2 on (`http2 = true`), which then runs
//!   with its own caps on concurrent streams and header lists.
//! - **Shutdown.** When `shutdown` resolves the listener is closed at once (new
//!   connections are refused, not queued), and connections in flight get `GRACE` to
//!   finish.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

use crate::client_address::counted_as;
use crate::config::Config;

/// How long connections in flight may take to finish after shutdown begins.
pub const GRACE: Duration = Duration::from_secs(10);
/// File descriptors kept for everything but client connections: the store, artifacts,
/// outgoing requests of scripts, the CLI's probes.
const FD_RESERVE: u64 = 256;
/// The global cap when the file-descriptor limit would allow more.
const MAX_CONNECTIONS: u64 = 10_000;
/// HTTP/2 streams one connection may have open at once (with `http2 = true`).
const H2_MAX_STREAMS: u32 = 100;

/// Raises the soft file-descriptor limit to the hard one; returns the soft limit now in
/// force.
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if let Some(hard) = limit.maximum
        && limit.current != Some(hard)
    {
        limit.current = Some(hard);
        if let Err(error) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(%error, "could not raise the file-descriptor limit");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The global connection cap for a file-descriptor limit of `fd_limit`.
pub fn default_max_connections(fd_limit: u64) -> usize {
    fd_limit
        .saturating_sub(FD_RESERVE)
        .clamp(64, MAX_CONNECTIONS) as usize
}

/// Serves `app` on `listener` until `shutdown` resolves, then for at most `GRACE`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: &Config,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) {
    let builder = builder(config);
    let gate = Arc::new(Gate {
        max_total: max_connections,
        max_per_address: config.max_connections_per_address,
        open: Mutex::default(),
    });
    let first_byte = Duration::from_millis(config.first_byte_timeout_ms);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(ticket) = Gate::admit(&gate, peer.ip()) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        // Handlers that care who connected (`ConnectInfo`) find the peer address here.
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        ));
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _ticket = ticket;
            let mut probe = [0u8; 1];
            match tokio::time::timeout(first_byte, stream.peek(&mut probe)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%error, "connection closed with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(GRACE) => {}
    }
}

fn builder(config: &Config) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout())
        .max_buf_size(config.max_header_bytes.max(8192))
        .keep_alive(true);
    if config.http2 {
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(H2_MAX_STREAMS)
            .max_header_list_size(config.max_header_bytes as u32)
            .keep_alive_interval(config.header_read_timeout())
            .keep_alive_timeout(config.header_read_timeout());
        builder
    } else {
        builder.http1_only()
    }
}

/// Who is connected: the count per client and in all.
struct Gate {
    max_total: usize,
    max_per_address: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// One admitted connection; counted until dropped.
struct Ticket {
    gate: Arc<Gate>,
    address: IpAddr,
}

impl Gate {
    fn admit(gate: &Arc<Gate>, peer: IpAddr) -> Option<Ticket> {
        let address = counted_as(peer);
        let mut open = gate.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= gate.max_total {
            return None;
        }
        let from_address = open.by_address.entry(address).or_default();
        if *from_address >= gate.max_per_address {
            return None;
        }
        *from_address += 1;
        open.total += 1;
        Some(Ticket {
            gate: gate.clone(),
            address,
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total -= 1;
        if let Some(count) = open.by_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

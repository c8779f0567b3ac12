//! A real HTTP server on a loopback port for scripts' outgoing requests to reach: it
//! answers every request with JSON describing what it received (method, path, headers)
//! and counts the requests, so tests can check what crossed the outbound filter.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::extract::{Request, State};
use serde_json::{Value, json};

pub struct Upstream {
    pub port: u16,
    hits: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl Upstream {
    pub fn start() -> Upstream {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("upstream runtime");
        let hits = Arc::new(AtomicUsize::new(0));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind upstream");
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new()
            .fallback(describe)
            .with_state(hits.clone());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Upstream {
            port,
            hits,
            _runtime: runtime,
        }
    }

    /// `http://127.0.0.1:{port}{path}`
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn describe(State(hits): State<Arc<AtomicUsize>>, request: Request) -> Json<Value> {
    hits.fetch_add(1, Ordering::SeqCst);
    let headers: BTreeMap<String, String> = request
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    Json(json!({
        "method": request.method().as_str(),
        "path": request.uri().path(),
        "headers": headers,
    }))
}

//! The dispatcher: a self-hosted Workers for Platforms. Customers upload WebAssembly
//! components; eyeballs reach them by URL; each request runs in a fresh wasmtime
//! `Store` instantiated from a pre-compiled, pre-linked component.
//!
//! Layout: `api/` (HTTP, axum), `runtime/` (wasmtime), `store/` (SQLite + blobs),
//! `deploy` (the upload pipeline joining them), `server` (start-up and background tasks),
//! `front_door` (accepting connections), `cli/` (commands).

pub mod api;
pub mod cli;
pub mod client_address;
pub mod config;
pub mod demo;
pub mod deploy;
pub mod first_party;
pub mod front_door;
pub mod identity;
pub mod local;
pub mod metrics;
pub mod queues;
pub mod runtime;
pub mod schedules;
pub mod server;
pub mod store;

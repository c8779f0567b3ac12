//! The dispatcher: a self-hosted Workers for Platforms. Customers upload WebAssembly
//! components; eyeballs reach them by URL; each request runs in a fresh wasmtime
//! `Store` instantiated from a pre-compiled, pre-linked component.
//!
//! Layout: `api/` (HTTP, axum), `runtime/` (wasmtime), `store/` (SQLite + blobs),
//! `deploy` (the upload pipeline joining them), `server` (listener), `cli/` (commands).

pub mod api;
pub mod cli;
pub mod config;
pub mod demo;
pub mod deploy;
pub mod first_party;
pub mod identity;
pub mod local;
pub mod metrics;
pub mod runtime;
pub mod server;
pub mod store;

//! End-to-end tests of the dispatcher as its users meet it: a real server on a loopback
//! port, real components, the real CLI, real SQLite files in a temp directory.

mod harness;
mod platform_client;
mod upstream;

mod bad_uploads;
mod bindings;
mod canceled;
mod cli;
mod compile_limits;
mod dispatch;
mod early_refusals;
mod entrypoints;
mod error_boundary;
mod fair_share;
mod first_party;
mod front_door;
mod gateway;
mod guest_versions;
mod identity_headers;
mod initialize;
mod large_uploads;
mod limits;
mod memory_back;
mod observability;
mod openapi;
mod outbound;
mod ownership;
mod persistence;
mod platform_module;
mod queues;
mod r2;
mod reserved_names;
mod rpc;
mod sandbox;
mod schedules;
mod scripts;
mod services;
mod showcase;
mod sign_in_limits;
mod storage;
mod support_attachments;
mod tiers;
mod versions;
mod web_page;

//! What a running server leaves in its data directory for the CLI on the same machine,
//! so `dispatcher tail` needs no address typed: `server.json` (where it listens, its
//! pid) and `operator.key` (owner-only, made at first start), the key that lets the
//! operator follow any script's tail. Customers never see either.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::store::{write_durably, write_owner_only};

const SERVER_FILE: &str = "server.json";
const OPERATOR_KEY_FILE: &str = "operator.key";

/// The header the operator's requests carry the key in.
pub const OPERATOR_KEY_HEADER: &str = "x-operator-key";

#[derive(Debug, Serialize, Deserialize)]
pub struct RunningServer {
    pub address: SocketAddr,
    pub pid: u32,
}

impl RunningServer {
    /// Records that this process serves `address` from `data_dir`.
    pub fn announce(data_dir: &Path, address: SocketAddr) -> std::io::Result<()> {
        let server = RunningServer {
            address,
            pid: std::process::id(),
        };
        let json = serde_json::to_vec(&server).map_err(std::io::Error::other)?;
        write_durably(data_dir, &data_dir.join(SERVER_FILE), &json)
    }

    /// Removes the record, if it is this process's.
    pub fn withdraw(data_dir: &Path) {
        if RunningServer::find(data_dir).is_ok_and(|s| s.pid == std::process::id()) {
            let _ = std::fs::remove_file(data_dir.join(SERVER_FILE));
        }
    }

    /// The server running on `data_dir`.
    pub fn find(data_dir: &Path) -> anyhow::Result<RunningServer> {
        let path = data_dir.join(SERVER_FILE);
        let json = std::fs::read(&path).map_err(|_| {
            anyhow::anyhow!(
                "no server is running on {} (start `dispatcher serve` first)",
                data_dir.display()
            )
        })?;
        Ok(serde_json::from_slice(&json)?)
    }
}

/// The operator key of `data_dir`, made (owner-only) on first use.
pub fn operator_key(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join(OPERATOR_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(key) => return Ok(key.trim().to_string()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let key = hex::encode(bytes);
    match write_owner_only(&path, key.as_bytes()) {
        Ok(()) => Ok(key),
        // Another process made it first; use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(&path)?.trim().to_string())
        }
        Err(e) => Err(e),
    }
}

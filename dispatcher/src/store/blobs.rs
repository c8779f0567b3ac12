//! Content-addressed component bytes: `blobs/<sha256>.wasm`, written durably
//! (`durable.rs`) before the row that names them commits. Reading a blob checks its bytes
//! against the digest that names it, so a corrupted blob is an error, never a different
//! component; writing bytes whose blob is corrupted rewrites it, which heals every script
//! that shares them. `sweep` removes the blobs and compiled artifacts no script uses any
//! more.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::{Store, StoreError, write_durably};

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hex SHA-256 of the file at `path`, read in pieces (never whole into memory).
pub fn sha256_file_hex(path: &std::path::Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

impl Store {
    fn blob_path(&self, sha256: &str) -> PathBuf {
        self.data_dir.join("blobs").join(format!("{sha256}.wasm"))
    }

    /// Stores `bytes` durably under their digest `sha256`: a no-op when an intact blob is
    /// already there, a rewrite when the blob there is corrupted.
    pub fn write_blob(&self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.blob_path(sha256);
        match file_digest(&path) {
            Ok(actual) if actual == sha256 => return Ok(()),
            Ok(actual) => tracing::warn!(sha256, actual, "rewriting a corrupted blob"),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error.into()),
        }
        Ok(write_durably(&self.data_dir.join("blobs"), &path, bytes)?)
    }

    /// The size in bytes of the blob named `sha256`, when it is there.
    pub fn blob_size(&self, sha256: &str) -> Option<u64> {
        std::fs::metadata(self.blob_path(sha256))
            .ok()
            .map(|m| m.len())
    }

    /// The component bytes named `sha256`, checked against that digest.
    pub fn read_blob(&self, sha256: &str) -> Result<Vec<u8>, StoreError> {
        let bytes = std::fs::read(self.blob_path(sha256))?;
        let actual = sha256_hex(&bytes);
        if actual != sha256 {
            return Err(StoreError::CorruptBlob {
                sha256: sha256.to_string(),
                actual,
            });
        }
        Ok(bytes)
    }
}

/// Hex SHA-256 of the file at `path`, read as a stream.
fn file_digest(path: &std::path::Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

impl Store {
    /// The digest recorded for the compiled artifact of `wasm_sha256` under `engine_hash`.
    pub fn artifact_digest(
        &self,
        wasm_sha256: &str,
        engine_hash: &str,
    ) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension as _;
        Ok(self
            .conn()
            .query_row(
                "SELECT artifact_sha256 FROM artifacts WHERE wasm_sha256 = ?1 AND engine_hash = ?2",
                [wasm_sha256, engine_hash],
                |row| row.get(0),
            )
            .optional()?)
    }

    pub fn record_artifact(
        &self,
        wasm_sha256: &str,
        engine_hash: &str,
        artifact_sha256: &str,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO artifacts (wasm_sha256, engine_hash, artifact_sha256) VALUES (?1, ?2, ?3)
             ON CONFLICT (wasm_sha256, engine_hash) DO UPDATE SET artifact_sha256 = excluded.artifact_sha256",
            [wasm_sha256, engine_hash, artifact_sha256],
        )?;
        Ok(())
    }
}

/// What a sweep removed.
#[derive(Debug, Default, serde::Serialize)]
pub struct Swept {
    pub blobs: usize,
    pub artifacts: usize,
    pub bytes: u64,
}

impl Store {
    /// Removes the component blobs and compiled artifacts (`artifacts/<wasm
    /// sha256>-….cwasm`) that no kept version of any script names, and forgets their artifact
    /// digests. Files younger than `grace` stay: an upload in another process writes its
    /// blob and artifact before it commits the script that names them.
    pub fn sweep(&self, grace: std::time::Duration) -> Result<Swept, StoreError> {
        let referenced: std::collections::HashSet<String> = {
            let conn = self.conn();
            let mut query = conn.prepare("SELECT DISTINCT sha256 FROM script_versions")?;
            query
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()?
        };
        let mut swept = Swept::default();
        for (dir, suffix) in [("blobs", ".wasm"), ("artifacts", ".cwasm")] {
            let Ok(entries) = std::fs::read_dir(self.data_dir.join(dir)) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                let Ok(metadata) = entry.metadata() else {
                    continue;
                };
                let old = metadata
                    .modified()
                    .ok()
                    .and_then(|modified| modified.elapsed().ok())
                    .is_some_and(|age| age >= grace);
                let name = entry.file_name().to_string_lossy().into_owned();
                // A temporary file left by a write that never finished is garbage too.
                let unused = name.starts_with(".tmp-")
                    || name.strip_suffix(suffix).is_some_and(|stem| {
                        let sha256 = stem.split('-').next().unwrap_or_default();
                        !referenced.contains(sha256)
                    });
                if !old || !unused || std::fs::remove_file(entry.path()).is_err() {
                    continue;
                }
                swept.bytes += metadata.len();
                match (dir, name.starts_with(".tmp-")) {
                    (_, true) => {}
                    ("blobs", false) => swept.blobs += 1,
                    _ => swept.artifacts += 1,
                }
            }
        }
        // A digest without its file only makes a later load rebuild; never wrong.
        self.conn().execute(
            "DELETE FROM artifacts WHERE wasm_sha256 NOT IN (SELECT sha256 FROM script_versions)",
            [],
        )?;
        Ok(swept)
    }
}

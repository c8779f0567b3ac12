//! Content-addressed component bytes: `blobs/<sha256>.wasm`, written to a temporary file,
//! fsynced, renamed into place and the directory fsynced, so a row that names a blob
//! never commits before the blob is durable.

use std::io::Write as _;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::{Store, StoreError};

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Store {
    fn blob_path(&self, sha256: &str) -> PathBuf {
        self.data_dir.join("blobs").join(format!("{sha256}.wasm"))
    }

    /// Stores `bytes` durably under their digest (a no-op when already stored).
    pub fn write_blob(&self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.blob_path(sha256);
        if path.exists() {
            return Ok(());
        }
        let dir = self.data_dir.join("blobs");
        let mut tmp = tempfile_in(&dir)?;
        tmp.1.write_all(bytes)?;
        tmp.1.sync_all()?;
        std::fs::rename(&tmp.0, &path)?;
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(())
    }

    pub fn read_blob(&self, sha256: &str) -> Result<Vec<u8>, StoreError> {
        Ok(std::fs::read(self.blob_path(sha256))?)
    }
}

/// Creates a uniquely named file in `dir` for writing.
pub fn tempfile_in(dir: &std::path::Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let path = dir.join(format!(".tmp-{}", super::random_hex(8)));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((path, file))
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

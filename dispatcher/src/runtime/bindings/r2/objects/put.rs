//! Puts: a body streams into a temp file in `r2/tmp/` while it is hashed and counted, so
//! a body over the object size limit or the owner's quota stops at the chunk that crosses
//! it. The commit fsyncs the file, then, under the store's lock, checks the quota again
//! (concurrent puts race), renames the file to its content address (or drops it when an
//! identical blob is there), fsyncs the directory, commits the row and removes the blob
//! of the object it replaced when nothing else uses it.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{OptionalExtension as _, TransactionBehavior, params};
use sha2::{Digest as _, Sha256};

use super::{
    MAX_CUSTOM_METADATA_BYTES, MAX_OBJECT_BYTES, ObjectMeta, ObjectStore, PutOptions, R2Error,
    check_bucket, check_key, get_u64, sync_dir, used_bytes,
};

/// A put under way: `write` the body, then `commit`. Dropped without a commit, it
/// removes its temp file and changes nothing.
pub struct PendingPut {
    store: Arc<ObjectStore>,
    owner: String,
    bucket: String,
    key: String,
    options: PutOptions,
    /// The temp file and the hash of what it holds; `None` once a write failed.
    upload: Option<Upload>,
    temp: TempBlob,
    size: u64,
    /// The most bytes the owner's quota left this put when it began.
    quota_left: u64,
}

struct Upload {
    file: std::fs::File,
    hasher: Sha256,
}

/// A temp file's path, removed when dropped unless it was renamed into place.
struct TempBlob {
    path: PathBuf,
    placed: bool,
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        if !self.placed
            && let Err(error) = std::fs::remove_file(&self.path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), %error, "r2: cannot remove a temp file");
        }
    }
}

impl ObjectStore {
    /// Starts a put of `key`; the body is streamed with `PendingPut::write`.
    pub fn begin_put(
        self: &Arc<Self>,
        owner: &str,
        bucket: &str,
        key: &str,
        options: PutOptions,
    ) -> Result<PendingPut, R2Error> {
        check_bucket(bucket);
        check_key(key)?;
        let metadata_bytes: usize = options
            .custom_metadata
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        if metadata_bytes > MAX_CUSTOM_METADATA_BYTES {
            return Err(R2Error::InvalidMetadata(format!(
                "custom metadata is at most {MAX_CUSTOM_METADATA_BYTES} bytes of keys and \
                 values; this is {metadata_bytes}"
            )));
        }
        let quota_left = {
            let conn = self.conn();
            let replaced = replaced_size(&conn, owner, bucket, key)?;
            let others = used_bytes(&conn, owner)?.saturating_sub(replaced);
            self.max_bytes_per_owner.saturating_sub(others)
        };
        let temp = TempBlob {
            path: self
                .root
                .join("tmp")
                .join(hex::encode(rand::random::<[u8; 16]>())),
            placed: false,
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp.path)?;
        Ok(PendingPut {
            store: self.clone(),
            owner: owner.to_string(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            options,
            upload: Some(Upload {
                file,
                hasher: Sha256::new(),
            }),
            temp,
            size: 0,
            quota_left,
        })
    }

    /// Places the fsynced temp file `temp` holding `sha256` and commits its row.
    fn install(
        &self,
        temp: TempBlob,
        object: &PendingObject,
        sha256: &str,
    ) -> Result<ObjectMeta, R2Error> {
        let PendingObject {
            owner,
            bucket,
            key,
            options,
            size,
        } = object;
        let meta = ObjectMeta {
            key: key.clone(),
            size: *size,
            etag: sha256[..32].to_string(),
            content_type: options.content_type.clone(),
            custom_metadata: options.custom_metadata.clone(),
            uploaded_ms: now_ms(),
        };
        let custom_metadata = serde_json::to_string(&meta.custom_metadata)
            .map_err(|e| R2Error::InvalidMetadata(e.to_string()))?;
        let blob = self.blob_path(sha256);

        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let replaced: Option<(String, u64)> = tx
            .prepare_cached(
                "SELECT sha256, size FROM objects WHERE owner = ?1 AND bucket = ?2 AND key = ?3",
            )?
            .query_row(params![owner, bucket, key], |row| {
                Ok((row.get(0)?, get_u64(row, 1)?))
            })
            .optional()?;
        let replaced_size = replaced.as_ref().map_or(0, |(_, size)| *size);
        let others = used_bytes(&tx, owner)?.saturating_sub(replaced_size);
        if others.saturating_add(*size) > self.max_bytes_per_owner {
            return Err(R2Error::QuotaExceeded {
                limit: self.max_bytes_per_owner,
            });
        }
        // An identical blob already there is named by a row (the lock is held, and open
        // swept the orphans), so it stays and the temp file goes.
        let placed_here = !blob.try_exists()?;
        if placed_here {
            place(temp, &blob)?;
        }
        let committed = tx
            .execute(
                "INSERT INTO objects (owner, bucket, key, sha256, size, etag, content_type,
                                      custom_metadata, uploaded_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (owner, bucket, key) DO UPDATE SET
                    sha256 = excluded.sha256, size = excluded.size, etag = excluded.etag,
                    content_type = excluded.content_type,
                    custom_metadata = excluded.custom_metadata,
                    uploaded_ms = excluded.uploaded_ms",
                params![
                    owner,
                    bucket,
                    key,
                    sha256,
                    *size as i64, // at most MAX_OBJECT_BYTES
                    meta.etag,
                    meta.content_type,
                    custom_metadata,
                    meta.uploaded_ms
                ],
            )
            .and_then(|_| tx.commit());
        if let Err(error) = committed {
            if placed_here {
                let _ = std::fs::remove_file(&blob);
            }
            return Err(error.into());
        }
        if let Some((replaced, _)) = replaced
            && replaced != sha256
        {
            self.remove_blob_if_unused(&conn, &replaced);
        }
        Ok(meta)
    }
}

/// What a put commits, besides its blob.
struct PendingObject {
    owner: String,
    bucket: String,
    key: String,
    options: PutOptions,
    size: u64,
}

impl PendingPut {
    /// Appends `chunk` to the body. Fails, and fails every later call, when the body
    /// passes `MAX_OBJECT_BYTES` or the owner's quota, or cannot be written.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), R2Error> {
        let mut upload = self.upload.take().ok_or_else(failed_earlier)?;
        let size = self.size + chunk.len() as u64;
        if size > MAX_OBJECT_BYTES {
            return Err(R2Error::TooLarge {
                limit: MAX_OBJECT_BYTES,
            });
        }
        if size > self.quota_left {
            return Err(R2Error::QuotaExceeded {
                limit: self.store.max_bytes_per_owner,
            });
        }
        let chunk = chunk.to_vec();
        let upload = tokio::task::spawn_blocking(move || {
            upload.file.write_all(&chunk)?;
            upload.hasher.update(&chunk);
            Ok::<_, std::io::Error>(upload)
        })
        .await
        .map_err(std::io::Error::other)??;
        self.upload = Some(upload);
        self.size = size;
        Ok(())
    }

    /// Makes the body durable and the object visible, replacing any object at its key.
    pub async fn commit(self) -> Result<ObjectMeta, R2Error> {
        let PendingPut {
            store,
            owner,
            bucket,
            key,
            options,
            upload,
            temp,
            size,
            quota_left: _,
        } = self;
        let Upload { file, hasher } = upload.ok_or_else(failed_earlier)?;
        let object = PendingObject {
            owner,
            bucket,
            key,
            options,
            size,
        };
        tokio::task::spawn_blocking(move || {
            file.sync_all()?;
            drop(file);
            let sha256 = hex::encode(hasher.finalize());
            store.install(temp, &object, &sha256)
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

fn failed_earlier() -> R2Error {
    R2Error::Io(std::io::Error::other(
        "an earlier write of this put failed; it cannot go on",
    ))
}

/// Renames the fsynced `temp` to `blob` and makes the rename durable.
fn place(mut temp: TempBlob, blob: &std::path::Path) -> Result<(), R2Error> {
    std::fs::rename(&temp.path, blob)?;
    temp.placed = true;
    let dir = blob.parent().expect("a blob path has a fan-out directory");
    if let Err(error) = sync_dir(dir) {
        let _ = std::fs::remove_file(blob);
        return Err(error.into());
    }
    Ok(())
}

/// The size of the object a put at (owner, bucket, key) replaces; 0 when there is none.
fn replaced_size(
    conn: &rusqlite::Connection,
    owner: &str,
    bucket: &str,
    key: &str,
) -> rusqlite::Result<u64> {
    Ok(conn
        .prepare_cached("SELECT size FROM objects WHERE owner = ?1 AND bucket = ?2 AND key = ?3")?
        .query_row(params![owner, bucket, key], |row| get_u64(row, 0))
        .optional()?
        .unwrap_or(0))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

//! Durable, all-or-nothing file writes: the bytes go to a temporary file (`.tmp-<random>`)
//! in the target's directory, are fsynced, renamed over the target and the directory is
//! fsynced. A reader sees the old file or the whole new one, never a part. A file the
//! server can rebuild when it is lost (a baseline artifact) is written the same way
//! without the fsyncs: a crash may lose it or leave it short, which the digest checked on
//! loading tells. A write that
//! fails at any step (a full disk above all) removes its temporary file, so failures leave
//! nothing behind; only a process killed mid-write leaves one (`sweep` removes those of
//! `blobs/` and `artifacts/`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` (in directory `dir`) durably, replacing any file there.
pub fn write_durably(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = TempFile::create_in(dir)?;
    tmp.file.write_all(bytes)?;
    tmp.persist(path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Writes `bytes` to `path` (in directory `dir`) all or nothing, replacing any file
/// there, but without waiting for the disk: for files that are rebuilt when lost.
pub fn write_replaceable(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = TempFile::create_in(dir)?;
    tmp.file.write_all(bytes)?;
    std::fs::rename(&tmp.path, path)?;
    tmp.persisted = true;
    Ok(())
}

/// A temporary file that is removed when dropped, unless `persist` renamed it into place.
struct TempFile {
    path: PathBuf,
    file: std::fs::File,
    persisted: bool,
}

impl TempFile {
    fn create_in(dir: &Path) -> std::io::Result<TempFile> {
        let path = dir.join(format!(".tmp-{}", super::random_hex(8)));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(TempFile {
            path,
            file,
            persisted: false,
        })
    }

    /// Flushes the file to disk and renames it to `target`.
    fn persist(mut self, target: &Path) -> std::io::Result<()> {
        self.file.sync_all()?;
        std::fs::rename(&self.path, target)?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted
            && let Err(error) = std::fs::remove_file(&self.path)
        {
            tracing::warn!(path = %self.path.display(), %error, "cannot remove a temporary file");
        }
    }
}

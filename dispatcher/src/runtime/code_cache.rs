//! The compiled-function cache compile workers share: Cranelift's incremental cache,
//! kept as one pack file in the data directory (`code-cache.pack`).
//!
//! Components from one toolchain carry the same engine code: every componentize-js
//! component holds the same StarlingMonkey build (the script itself is data in its memory
//! snapshot), every componentize-py one the same CPython. Cranelift keys each function it
//! compiles by the SHA-256 of its IR (with the names it calls abstracted, ISA flags
//! included), so a function any earlier compile met is not compiled again: a second
//! JavaScript upload skips most of its compile. A hit yields exactly what compiling that
//! IR yields, so sharing the cache across customers shares no data and lets no upload
//! change another's code; the worker that writes it is the one whose artifacts the server
//! already runs.
//!
//! A worker reads the pack once ([`CodeCache::open`]), serves Cranelift's lookups from
//! it, and writes it anew after its compile ([`CodeCache::write`]) with what it used and
//! added, in an order that bounds the file and resists flooding: entries hit by this
//! compile, then entries hit by an earlier one (shared), then this compile's new ones,
//! then the rest, as many as fit in the byte limit. Entries only one compile ever used
//! thus give way first, so an upload of many unique functions cannot push out the code
//! every JavaScript upload shares. The file is written under a new name and renamed into
//! place; a torn or foreign pack fails its header or checksum and is ignored (the compile
//! just runs cold).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::{Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

/// The first bytes of a pack, with the format's version.
const MAGIC: &[u8; 8] = b"DSPCODE1";

/// Where the pack is, how large it may grow and which engine it is for; handed to each
/// compile worker.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CodeCacheSpec {
    pub path: PathBuf,
    /// Where the pack is written before it is renamed into place: the artifacts
    /// directory, whose sweep removes a temporary file a killed worker left
    /// (`store/blobs.rs`). On the pack's filesystem.
    pub temp_dir: PathBuf,
    pub max_bytes: u64,
    /// The server engine's compatibility hash: a pack of another build is unused.
    pub tag: String,
}

/// What one compile got from the cache, reported by the worker to the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CacheStats {
    /// Functions whose compiled code came from the cache.
    pub hits: u64,
    /// Functions compiled (and added).
    pub misses: u64,
}

/// One entry of the pack read at start: where its value lies in `CodeCache::body`.
#[derive(Debug, Clone, Copy)]
struct Stored {
    start: usize,
    len: usize,
    shared: bool,
}

#[derive(Debug, Default)]
struct Session {
    hit: Vec<Box<[u8]>>,
    hit_set: HashSet<Box<[u8]>>,
    added: Vec<(Box<[u8]>, Vec<u8>)>,
    added_set: HashSet<Box<[u8]>>,
    stats: CacheStats,
}

/// The pack of one compile worker: what it read, and what this compile used and added.
#[derive(Debug)]
pub struct CodeCache {
    spec: CodeCacheSpec,
    body: Vec<u8>,
    stored: HashMap<Box<[u8]>, Stored>,
    session: Mutex<Session>,
}

impl CodeCache {
    /// The pack at `spec.path`, or an empty cache when there is none or it is not a
    /// whole pack for the engine `spec.tag`.
    pub fn open(spec: CodeCacheSpec) -> CodeCache {
        let (body, stored) = std::fs::read(&spec.path)
            .ok()
            .filter(|bytes| bytes.len() as u64 <= spec.max_bytes.saturating_mul(2))
            .and_then(|bytes| parse(bytes, &spec.tag))
            .unwrap_or_default();
        CodeCache {
            spec,
            body,
            stored,
            session: Mutex::default(),
        }
    }

    pub fn stats(&self) -> CacheStats {
        self.session().stats
    }

    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Writes the pack anew when this compile added or first shared something; a
    /// failure (a full disk) leaves the old pack, or none.
    pub fn write(&self) -> std::io::Result<()> {
        let session = self.session();
        let newly_shared = session.hit.iter().any(|key| !self.stored[key].shared);
        if session.added.is_empty() && !newly_shared {
            return Ok(());
        }
        let old = |key: &[u8]| {
            let entry = self.stored[key];
            &self.body[entry.start..entry.start + entry.len]
        };
        let mut order: Vec<(&[u8], &[u8], bool)> = Vec::new();
        order.extend(session.hit.iter().map(|k| (&**k, old(k), true)));
        let hit_set = &session.hit_set;
        let unused = |shared: bool| {
            self.stored
                .iter()
                .filter(move |(k, e)| e.shared == shared && !hit_set.contains(*k))
                .map(move |(k, _)| (&**k, old(k), shared))
        };
        order.extend(unused(true));
        order.extend(session.added.iter().map(|(k, v)| (&**k, &v[..], false)));
        order.extend(unused(false));

        let temp = self
            .spec
            .temp_dir
            .join(format!(".tmp-code-cache-{}", std::process::id()));
        let written = write_pack(&temp, &self.spec.tag, self.spec.max_bytes, &order)
            .and_then(|()| std::fs::rename(&temp, &self.spec.path));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written
    }
}

impl wasmtime::CacheStore for CodeCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let mut session = self.session();
        let Some(entry) = self.stored.get(key) else {
            session.stats.misses += 1;
            return None;
        };
        session.stats.hits += 1;
        if !session.hit_set.contains(key) {
            session.hit_set.insert(key.into());
            session.hit.push(key.into());
        }
        Some(Cow::Borrowed(
            &self.body[entry.start..entry.start + entry.len],
        ))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let mut session = self.session();
        if self.stored.contains_key(key) || !session.added_set.insert(key.into()) {
            return false;
        }
        session.added.push((key.into(), value));
        true
    }
}

/// The pack's header: magic, tag, body checksum.
fn header_len(tag: &str) -> usize {
    MAGIC.len() + 4 + tag.len() + 32
}

/// `(body, index)` of a whole pack for `tag`; `None` for anything else.
type Parsed = (Vec<u8>, HashMap<Box<[u8]>, Stored>);

fn parse(bytes: Vec<u8>, tag: &str) -> Option<Parsed> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let (tag_len, rest) = rest.split_first_chunk::<4>()?;
    let tag_len = u32::from_le_bytes(*tag_len) as usize;
    if rest.get(..tag_len)? != tag.as_bytes() {
        return None;
    }
    let (checksum, body) = rest[tag_len..].split_first_chunk::<32>()?;
    if Sha256::digest(body).as_slice() != checksum {
        return None;
    }
    let offset = header_len(tag);
    let mut stored = HashMap::new();
    let mut at = 0;
    while at < body.len() {
        let shared = *body.get(at)? == 1;
        let key_len = usize::from(*body.get(at + 1)?);
        let key = body.get(at + 2..at + 2 + key_len)?;
        at += 2 + key_len;
        let len = u32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?) as usize;
        at += 4;
        body.get(at..at + len)?;
        stored.insert(
            key.into(),
            Stored {
                start: offset + at,
                len,
                shared,
            },
        );
        at += len;
    }
    Some((bytes, stored))
}

/// Writes `entries` in order, as many as fit in `max_bytes`, to `path`, checksummed.
fn write_pack(
    path: &Path,
    tag: &str,
    max_bytes: u64,
    entries: &[(&[u8], &[u8], bool)],
) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    file.write_all(MAGIC)?;
    file.write_all(&(tag.len() as u32).to_le_bytes())?;
    file.write_all(tag.as_bytes())?;
    file.write_all(&[0; 32])?;
    let mut checksum = Sha256::new();
    let mut size = header_len(tag) as u64;
    for &(key, value, shared) in entries {
        let (Ok(key_len), Ok(value_len)) = (u8::try_from(key.len()), u32::try_from(value.len()))
        else {
            continue;
        };
        let entry_len = 2 + key.len() as u64 + 4 + value.len() as u64;
        if size + entry_len > max_bytes {
            continue;
        }
        size += entry_len;
        for part in [
            &[u8::from(shared), key_len][..],
            key,
            &value_len.to_le_bytes(),
            value,
        ] {
            checksum.update(part);
            file.write_all(part)?;
        }
    }
    let mut file = file.into_inner().map_err(|e| e.into_error())?;
    file.seek(SeekFrom::Start((header_len(tag) - 32) as u64))?;
    file.write_all(&checksum.finalize())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use wasmtime::CacheStore as _;

    use super::*;

    fn spec(dir: &Path, max_bytes: u64) -> CodeCacheSpec {
        CodeCacheSpec {
            path: dir.join("code-cache.pack"),
            temp_dir: dir.to_path_buf(),
            max_bytes,
            tag: "engine".into(),
        }
    }

    /// One compile: looks `keys` up, adds those it misses with a value of `value_len`.
    fn compile(spec: &CodeCacheSpec, keys: &[u8], value_len: usize) -> CacheStats {
        let cache = CodeCache::open(spec.clone());
        for &key in keys {
            if cache.get(&[key; 32]).is_none() {
                cache.insert(&[key; 32], vec![key; value_len]);
            }
        }
        cache.write().unwrap();
        cache.stats()
    }

    #[test]
    fn a_later_compile_finds_what_an_earlier_one_compiled() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(dir.path(), 1 << 20);
        assert_eq!(
            compile(&spec, &[1, 2, 3], 10),
            CacheStats { hits: 0, misses: 3 }
        );
        assert_eq!(
            compile(&spec, &[2, 3, 4], 10),
            CacheStats { hits: 2, misses: 1 }
        );
        let cache = CodeCache::open(spec.clone());
        assert_eq!(cache.get(&[4; 32]).as_deref(), Some(&[4; 10][..]));
        // Another engine's pack is not used.
        let other = CodeCacheSpec {
            tag: "other".into(),
            ..spec
        };
        assert!(CodeCache::open(other).get(&[4; 32]).is_none());
    }

    #[test]
    fn a_damaged_pack_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(dir.path(), 1 << 20);
        compile(&spec, &[1, 2], 10);
        let mut bytes = std::fs::read(&spec.path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&spec.path, &bytes).unwrap();
        assert_eq!(
            compile(&spec, &[1, 2], 10),
            CacheStats { hits: 0, misses: 2 }
        );
        std::fs::write(&spec.path, &bytes[..bytes.len() / 2]).unwrap();
        assert_eq!(compile(&spec, &[1], 10).hits, 0);
    }

    #[test]
    fn shared_entries_outlast_a_flood_of_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        // Room for about ten entries of 100 bytes.
        let spec = spec(dir.path(), 1_400);
        compile(&spec, &[1, 2, 3], 100);
        // A second compile shares 1-3.
        assert_eq!(compile(&spec, &[1, 2, 3], 100).hits, 3);
        // A flood of unique functions fills only what is left.
        compile(&spec, &(10..40).collect::<Vec<_>>(), 100);
        assert_eq!(compile(&spec, &[1, 2, 3], 100).hits, 3);
        assert!(std::fs::metadata(&spec.path).unwrap().len() <= 1_400);
    }
}

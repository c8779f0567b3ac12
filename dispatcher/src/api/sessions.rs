//! The gateway's short memory of verified sessions, so a signed-in user's burst of
//! requests costs one run of `auth`, not one per request. An entry lives `ttl` (default
//! one second, `session_cache_ms`; 0 turns the cache off), so a session ended anywhere
//! else (an admin, another process) stops working within that time, as every other
//! change does; a logout through the gateway forgets its session at once. Entries are
//! keyed by the SHA-256 of the credentials presented, so no token is kept in memory.
//! Credentials that name no session are remembered too, as such: a browser holding an
//! expired cookie costs one check per `ttl`, not one per request. That is safe because
//! a token only becomes valid when `auth` makes it, and no client holds it before.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use sha2::{Digest as _, Sha256};

/// More entries than this and expired ones are dropped; if all are live, all are.
const MAX_ENTRIES: usize = 100_000;

/// The signed-in user, as `auth` describes the session.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Session {
    pub user_id: String,
    pub role: String,
    pub app_key: String,
}

/// What the cache knows of some credentials.
#[derive(Clone)]
pub enum Remembered {
    /// They are this session's.
    Session(Session),
    /// They name no valid session.
    NoSession,
}

pub struct SessionCache {
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], (Remembered, Instant)>>,
}

/// What identifies the credentials of a request: its `Authorization` and `Cookie`
/// headers, hashed.
#[derive(Clone, Copy)]
pub struct CredentialsKey([u8; 32]);

impl CredentialsKey {
    /// `None` when the request presents no credentials.
    pub fn of(headers: &HeaderMap) -> Option<CredentialsKey> {
        let mut hasher = Sha256::new();
        let mut any = false;
        for name in [header::AUTHORIZATION, header::COOKIE] {
            for value in headers.get_all(&name) {
                any = true;
                hasher.update(name.as_str().as_bytes());
                hasher.update([0]);
                hasher.update(value.as_bytes());
                hasher.update([0]);
            }
        }
        any.then(|| CredentialsKey(hasher.finalize().into()))
    }
}

impl SessionCache {
    pub fn new(ttl: Duration) -> SessionCache {
        SessionCache {
            ttl,
            entries: Mutex::default(),
        }
    }

    /// What was learnt of `key` less than `ttl` ago, if anything.
    pub fn get(&self, key: CredentialsKey) -> Option<Remembered> {
        let entries = self.entries.lock().expect("session cache lock");
        let (remembered, verified) = entries.get(&key.0)?;
        (verified.elapsed() < self.ttl).then(|| remembered.clone())
    }

    /// Remembers what `auth` said of `key`.
    pub fn insert(&self, key: CredentialsKey, remembered: Remembered) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().expect("session cache lock");
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, verified)| verified.elapsed() < self.ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key.0, (remembered, Instant::now()));
    }

    /// Forgets `key` (its session is being ended).
    pub fn forget(&self, key: CredentialsKey) {
        self.entries
            .lock()
            .expect("session cache lock")
            .remove(&key.0);
    }
}

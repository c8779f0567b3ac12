//! Secrets at rest: `secret_text` binding values are sealed with XChaCha20-Poly1305 under
//! a 256-bit key kept in the data directory (`secrets.key`, created with mode 0600). The
//! script's namespace, name and binding name are the associated data, so a sealed value
//! copied onto another script or binding does not open. Plaintext never leaves this
//! module except to the runtime that hands it to the script.

use std::io::Write as _;
use std::path::Path;

use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

use super::StoreError;

const KEY_FILE: &str = "secrets.key";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;

pub struct SecretKey {
    cipher: XChaCha20Poly1305,
}

/// Where a sealed value belongs; bound into the ciphertext.
pub struct SecretSlot<'a> {
    pub namespace: &'a str,
    pub script: &'a str,
    pub binding: &'a str,
}

impl SecretSlot<'_> {
    fn associated_data(&self) -> Vec<u8> {
        format!("{}\0{}\0{}", self.namespace, self.script, self.binding).into_bytes()
    }
}

impl SecretKey {
    /// Reads the data directory's key, creating it (mode 0600) on first use.
    pub fn load_or_create(data_dir: &Path) -> Result<SecretKey, StoreError> {
        let path = data_dir.join(KEY_FILE);
        let key = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key(&path)?,
            Err(e) => return Err(e.into()),
        };
        if key.len() != KEY_LEN {
            return Err(StoreError::Io(std::io::Error::other(format!(
                "{} must hold {KEY_LEN} bytes",
                path.display()
            ))));
        }
        Ok(SecretKey {
            cipher: XChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }

    pub fn seal(&self, slot: &SecretSlot<'_>, plaintext: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        let aad = slot.associated_data();
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 encryption does not fail for in-memory buffers");
        [nonce.as_slice(), &sealed].concat()
    }

    pub fn open(&self, slot: &SecretSlot<'_>, sealed: &[u8]) -> Result<String, StoreError> {
        let corrupt = || StoreError::Io(std::io::Error::other("a sealed secret does not open"));
        if sealed.len() < NONCE_LEN {
            return Err(corrupt());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let aad = slot.associated_data();
        let plaintext = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| corrupt())?;
        String::from_utf8(plaintext).map_err(|_| corrupt())
    }
}

fn create_key(path: &Path) -> Result<Vec<u8>, StoreError> {
    let mut key = vec![0u8; KEY_LEN];
    rand::fill(&mut key[..]);
    write_owner_only(path, &key)?;
    Ok(key)
}

/// Writes `bytes` durably to a new file at `path` that only its owner may read; fails
/// with `AlreadyExists` when the file exists. A write that fails (a full disk) removes the
/// file, so no part of a key is ever left to be read as one.
pub fn write_owner_only(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    if let Err(error) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        let _ = std::fs::remove_file(path);
        return Err(error);
    }
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

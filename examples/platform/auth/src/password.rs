//! Password hashing: Argon2id with OWASP's minimum parameters (19 MiB, 2 passes), a
//! random salt per password, stored as a PHC string so parameters can change later.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string of `password` with a fresh salt.
pub fn hash(password: &str) -> sdk::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| sdk::anyhow::anyhow!("randomness: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| sdk::anyhow::anyhow!("salt: {e}"))?;
    let hash = hasher()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| sdk::anyhow::anyhow!("hashing: {e}"))?;
    Ok(hash.to_string())
}

/// Whether `password` matches `stored`; `None` for `stored` still does the same work,
/// so an unknown email takes as long as a wrong password.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    let Some(stored) = stored else {
        let _ = hash(password);
        return false;
    };
    PasswordHash::new(stored)
        .map(|parsed| {
            hasher()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

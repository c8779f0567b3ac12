//! The names the host (`dispatcher`), the SDK and the platform's own services agree on:
//! which names a script, a customer's resource, a binding and a bucket may have, and the
//! headers that carry identity and service bindings inside the platform. A leaf: it
//! depends on nothing, so any module or crate may import it without a cycle.

/// The header a guest sets on an outgoing request to call a bound script instead of the
/// network; the host removes it before the bound script runs.
pub const SERVICE_BINDING_HEADER: &str = "platform-service-binding";
/// The signed-in platform user's id, set by the gateway.
pub const USER_ID_HEADER: &str = "x-user-id";
/// The signed-in platform user's role (`user` or `admin`), set by the gateway.
pub const USER_ROLE_HEADER: &str = "x-user-role";
/// The app the signed-in platform user belongs to, set by the gateway.
pub const APP_KEY_HEADER: &str = "x-app-key";
/// A customer's management credential.
pub const CUSTOMER_TOKEN_HEADER: &str = "x-customer-token";

/// A script name, or the name of a customer's KV namespace or database:
/// `^[a-z0-9][a-z0-9-]{0,62}$`.
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| is_lower_alphanumeric(*b) || *b == b'-')
}

/// A binding's name, as the script reads it (`GREETING`, `API_KEY`):
/// `^[A-Za-z_][A-Za-z0-9_]{0,63}$`.
pub fn valid_binding_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && (bytes[0].is_ascii_alphabetic() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// An object-storage bucket's name, as R2 allows: `^[a-z0-9][a-z0-9-]{2,62}$`.
pub fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len()) && valid_name(name)
}

fn is_lower_alphanumeric(byte: u8) -> bool {
    byte.is_ascii_lowercase() || byte.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_and_resource_names() {
        for good in ["a", "0", "hello-world", "a1-b2", &"x".repeat(63)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "-a", "A", "a_b", "a.b", "a/b", "é", &"x".repeat(64)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn binding_names() {
        for good in ["A", "_", "API_KEY", "cache2", &"K".repeat(64)] {
            assert!(valid_binding_name(good), "{good}");
        }
        for bad in ["", "2X", "A-B", "A B", "Ä", &"K".repeat(65)] {
            assert!(!valid_binding_name(bad), "{bad}");
        }
    }

    #[test]
    fn bucket_names() {
        for good in ["abc", "vouchers", "a-1", &"b".repeat(63)] {
            assert!(valid_bucket_name(good), "{good}");
        }
        for bad in ["ab", "-ab", "Abc", "a_b", "a.b", &"b".repeat(64)] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }
}

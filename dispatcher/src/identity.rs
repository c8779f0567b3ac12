//! The headers that carry identity inside the platform, and the one test of whether a
//! header is one of them. The gateway sets `X-User-Id`, `X-User-Role` and `X-App-Key`
//! from a verified session, and the management API reads `X-Customer-Token`; a header a
//! client or a customer's script sent under any of these names, in any spelling, is a
//! forgery to remove (the gateway on the way in, egress and customers' service-binding
//! calls on the way out).

use http::HeaderMap;

pub use platform_names::{
    APP_KEY_HEADER as APP_KEY, CUSTOMER_TOKEN_HEADER as CUSTOMER_TOKEN, USER_ID_HEADER as USER_ID,
    USER_ROLE_HEADER as USER_ROLE,
};

/// Every identity header, lowercase with `-`.
const ALL: [&str; 4] = [USER_ID, USER_ROLE, APP_KEY, CUSTOMER_TOKEN];

/// True when `name` is an identity header in any spelling: any letter case, and `_`
/// for any `-` (`X_User_Id`, `x-user_role`), as proxies and frameworks that map `_` to
/// `-` would read it.
pub fn is_identity_header(name: &str) -> bool {
    ALL.iter().any(|identity| is_spelling_of(name, identity))
}

/// True when `name` is `header` (lowercase with `-`) in some spelling: any letter
/// case, and `_` for any `-`.
pub fn is_spelling_of(name: &str, header: &str) -> bool {
    header.len() == name.len()
        && header.bytes().zip(name.bytes()).all(|(want, got)| {
            let got = if got == b'_' { b'-' } else { got };
            want == got.to_ascii_lowercase()
        })
}

/// Removes every identity header from `headers`, whatever its spelling.
/// Removes the customer's token in every spelling: a request its owner sent to a
/// version of its script carries it, and the script has no use for it.
pub fn strip_customer_token(headers: &mut HeaderMap) {
    let spellings: Vec<_> = headers
        .keys()
        .filter(|name| is_spelling_of(name.as_str(), CUSTOMER_TOKEN))
        .cloned()
        .collect();
    for name in spellings {
        headers.remove(name);
    }
}

pub fn strip(headers: &mut HeaderMap) {
    let claimed: Vec<_> = headers
        .keys()
        .filter(|name| is_identity_header(name.as_str()))
        .cloned()
        .collect();
    for name in claimed {
        headers.remove(name);
    }
}

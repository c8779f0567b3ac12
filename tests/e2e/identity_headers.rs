//! Identity headers (`X-User-Id`, `X-User-Role`, `X-App-Key`, `X-Customer-Token`) a
//! customer's script sends, in any spelling, reach neither an upstream nor another
//! script it calls over a service binding. (The platform's own scripts passing them to
//! each other is what the gateway and services tests rely on.)

use serde_json::Value;

use crate::harness::{Server, guest};
use crate::limits::with_query;
use crate::services::front_and_back;
use crate::upstream::Upstream;

/// The identity headers a script forges, spelled every way a proxy might read them.
const FORGED: [(&str, &str); 7] = [
    ("X-User-Id", "usr_victim"),
    ("X_User_Id", "usr_victim"),
    ("x-user_role", "admin"),
    ("X_USER_ROLE", "admin"),
    ("x_app_key", "someone-elses-app"),
    ("X-Customer-Token", "stolen"),
    ("x_customer-token", "stolen"),
];

/// The header names of `seen` (a description of a request: `{"headers": {..}}`) that
/// are an identity header in some spelling.
fn identity_headers_in(seen: &Value) -> Vec<String> {
    let identity = ["x-user-id", "x-user-role", "x-app-key", "x-customer-token"];
    seen["headers"]
        .as_object()
        .expect("a headers object")
        .keys()
        .filter(|name| identity.contains(&name.to_ascii_lowercase().replace('_', "-").as_str()))
        .cloned()
        .collect()
}

#[test]
fn a_customer_script_cannot_send_identity_headers_upstream_in_any_spelling() {
    let upstream = Upstream::start();
    let server = Server::start_with_config("outbound_allow_private = [\"127.0.0.0/8\"]");
    let (_, token) = server.create_customer("acme");
    assert_eq!(server.upload(&token, "app", &guest("limits")).status(), 201);

    let url = upstream.url("/hello");
    let headers: Vec<String> = FORGED
        .iter()
        .map(|(name, value)| format!("{name}:{value}"))
        .chain(["x-trace:ok".to_string()])
        .collect();
    let mut params = vec![("url", url.as_str())];
    params.extend(headers.iter().map(|h| ("header", h.as_str())));
    let response = server.get(&with_query("/dispatch/app/fetch", &params));
    assert_eq!(response.status(), 200);
    let seen: Value = response.json().unwrap();
    assert_eq!(seen["headers"]["x-trace"], "ok", "{seen}");
    assert_eq!(identity_headers_in(&seen), Vec::<String>::new(), "{seen}");
    assert_eq!(upstream.hits(), 1);
}

#[test]
fn a_customer_script_cannot_forge_identity_headers_to_a_script_it_calls() {
    let server = Server::start();
    front_and_back(&server);

    let mut request = server
        .request(reqwest::Method::GET, "/dispatch/front/who")
        .header("x-trace", "ok");
    for (name, value) in FORGED {
        request = request.header(name, value);
    }
    let response = request.send().unwrap();
    assert_eq!(response.status(), 200);
    let seen: Value = response.json().unwrap();
    assert_eq!(seen["path"], "/who", "{seen}");
    assert_eq!(seen["headers"]["x-trace"], "ok", "{seen}");
    assert_eq!(identity_headers_in(&seen), Vec::<String>::new(), "{seen}");
}

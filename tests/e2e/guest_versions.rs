//! Components built against an older `platform:worker` keep running: a guest of the
//! first SDK (0.1.0, binding names on every call) reaches its vars, KV namespace and
//! database exactly as one built against 0.2.0 (resources) does.

use serde_json::{Value, json};

use crate::harness::{Server, guest};

#[test]
fn a_component_of_the_first_sdk_reaches_its_bindings() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let metadata = json!({"bindings": [
        {"type": "plain_text", "name": "GREETING", "text": "hello from 0.1"},
        {"type": "kv_namespace", "name": "CACHE", "namespace": "cache"},
        {"type": "d1", "name": "DB", "database": "legacy"},
    ]});
    let uploaded = server.upload_with(&token, "old", &guest("sdk-0-1"), metadata);
    assert_eq!(uploaded.status(), 201, "{}", uploaded.text().unwrap());
    let response = server.get("/dispatch/old/");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().unwrap();
    assert_eq!(
        body,
        json!({
            "greeting": "hello from 0.1",
            "cached": "1",
            "listed": ["hits"],
            "sum": 5,
            "batched": 1,
            "missing": "no-such-binding",
        })
    );
}

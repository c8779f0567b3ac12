//! The SDK showcase (`examples/everything`): one short script using every binding kind,
//! uploaded with its bindings in WfP multipart metadata and called over HTTP.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Server, eventually, guest};

/// Uploads `examples/everything` for the customer of `token`, with a binding of every
/// kind (`GREETING` Welcome, `API_KEY` k-123, `CACHE` namespace `visits`, `DB` database
/// `main`) and `AUTH` bound to the customer's `whoami` (echo-wstd), uploaded first.
pub fn upload_everything(server: &Server, token: &str) {
    assert_eq!(
        server.upload(token, "whoami", &guest("echo-wstd")).status(),
        201
    );
    let metadata = json!({
        "main_module": "worker.wasm",
        "bindings": [
            {"type": "plain_text", "name": "GREETING", "text": "Welcome"},
            {"type": "secret_text", "name": "API_KEY", "text": "k-123"},
            {"type": "kv_namespace", "name": "CACHE", "namespace": "visits"},
            {"type": "d1", "name": "DB", "database": "main"},
            {"type": "service", "name": "AUTH", "service": "whoami"},
        ],
    });
    let created = server.upload_with(token, "everything", &guest("everything"), metadata);
    assert_eq!(created.status(), 201);
}

#[test]
fn one_script_uses_every_binding_kind() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    upload_everything(&server, &token);

    let call = |key: &str| {
        server
            .request(Method::GET, "/dispatch/everything/hello")
            .header("x-api-key", key)
            .send()
            .unwrap()
    };
    assert_eq!(call("wrong").status(), 401);
    for visit in 1..=2 {
        let response = call("k-123");
        assert_eq!(response.status(), 200);
        let text = response.text().unwrap();
        assert!(text.starts_with("Welcome, "), "{text}");
        assert!(
            text.contains("\"path\":\"/whoami\""),
            "AUTH was not asked: {text}"
        );
        assert!(text.ends_with(&format!("Visit #{visit}.")), "{text}");
    }

    // `ctx.wait_until` recorded each visit in the customer's database after answering.
    let reader = json!({"bindings": [{"type": "d1", "name": "DB", "database": "main"}]});
    assert_eq!(
        server
            .upload_with(&token, "reader", &guest("sql"), reader)
            .status(),
        201
    );
    let recorded = eventually(Duration::from_secs(5), || {
        let rows: Value = server
            .request(Method::POST, "/dispatch/reader/query")
            .json(&json!({"sql": "SELECT path FROM visits", "params": []}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        rows["rows"] == json!([["/hello"], ["/hello"]])
    });
    assert!(recorded, "the visits were not recorded");
}

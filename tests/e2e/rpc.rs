//! Typed RPC: a script imports an interface another script exports, bound by a service
//! binding naming it as `entrypoint`. Records, variants, lists, options and results are
//! copied both ways; a trapping callee reaches the caller as the error of its result; an
//! import no binding serves, or a callee without the interface or with other types, is
//! refused at upload, named.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Server, expect_error, guest};
use crate::observability::{follow, next_event};

fn upload(
    server: &Server,
    token: &str,
    name: &str,
    wasm: &str,
    bindings: Value,
) -> reqwest::blocking::Response {
    let metadata = json!({"main_module": "worker.wasm", "bindings": bindings});
    server.upload_with(token, name, &guest(wasm), metadata)
}

fn api_binding(service: &str) -> Value {
    json!([{"type": "service", "name": "API", "service": service, "entrypoint": "test:rpc/api"}])
}

fn text(server: &Server, path: &str) -> (u16, String) {
    let response = server.get(path);
    (response.status().as_u16(), response.text().unwrap())
}

#[test]
fn typed_values_cross_between_scripts_and_a_trap_is_an_error_value() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    assert_eq!(
        upload(&server, &token, "callee", "rpc-callee", json!([])).status(),
        201
    );
    assert_eq!(
        upload(
            &server,
            &token,
            "caller",
            "rpc-caller",
            api_binding("callee")
        )
        .status(),
        201
    );
    let events = follow(&server, &token, "callee");

    assert_eq!(
        text(&server, "/dispatch/caller/greet?name=ann"),
        (200, r#"Ok("hello ann (a,b, age Some(42))")"#.into())
    );
    assert_eq!(
        text(&server, "/dispatch/caller/greet?name="),
        (200, r#"Err("no name")"#.into())
    );
    let (status, areas) = text(&server, "/dispatch/caller/area");
    assert_eq!(status, 200);
    assert_eq!(areas, format!("{} 9 0", std::f64::consts::PI));

    // The callee traps: the caller gets an error value and answers on.
    let (status, boom) = text(&server, "/dispatch/caller/boom");
    assert_eq!(status, 200);
    assert!(
        boom.starts_with(r#"Err("the called script: the script failed"#),
        "{boom}"
    );

    let event = next_event(&events);
    assert_eq!(
        (event["event"].as_str(), event["method"].as_str()),
        (Some("rpc"), Some("RPC"))
    );
    assert_eq!(event["path"], "test:rpc/api.greet");
}

#[test]
fn an_import_no_binding_serves_or_a_callee_that_cannot_serve_it_is_refused() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    assert_eq!(
        upload(&server, &token, "plain", "hello", json!([])).status(),
        201
    );
    assert_eq!(
        upload(&server, &token, "other-api", "rpc-mismatch", json!([])).status(),
        201
    );

    let message = expect_error(
        upload(&server, &token, "caller", "rpc-caller", json!([])),
        400,
        "bad_request",
    );
    assert!(message.contains("imports `test:rpc/api`"), "{message}");
    let message = expect_error(
        upload(
            &server,
            &token,
            "caller",
            "rpc-caller",
            api_binding("plain"),
        ),
        400,
        "bad_request",
    );
    assert!(
        message.contains("does not export `test:rpc/api`"),
        "{message}"
    );
    let message = expect_error(
        upload(
            &server,
            &token,
            "caller",
            "rpc-caller",
            api_binding("other-api"),
        ),
        400,
        "bad_request",
    );
    assert!(message.contains("cannot serve `test:rpc/api`"), "{message}");
    let missing = server
        .request(Method::GET, "/script/caller")
        .header("x-customer-token", &token)
        .send()
        .unwrap();
    expect_error(missing, 404, "script_not_found");
}

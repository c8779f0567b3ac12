//! Service bindings: a script calls another in the same process through a binding name;
//! the request and the response cross unchanged, loops stop at the depth limit with an
//! error, and a customer can only bind its own scripts.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Server, expect_error, guest};

fn service_metadata(target: &str) -> Value {
    json!({"bindings": [{"type": "service", "name": "BACKEND", "service": target}]})
}

/// Customer `acme` owns `back` (echo-wstd, which echoes what it got) and `front` (the
/// service example, which forwards every request, headers included, to `back` over a
/// service binding); returns acme's token.
pub fn front_and_back(server: &Server) -> String {
    let (_, token) = server.create_customer("acme");
    assert_eq!(
        server.upload(&token, "back", &guest("echo-wstd")).status(),
        201
    );
    let front = server.upload_with(&token, "front", &guest("service"), service_metadata("back"));
    assert_eq!(front.status(), 201);
    token
}

#[test]
fn a_service_binding_carries_method_path_headers_and_body_both_ways() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    assert_eq!(
        server
            .upload(&token, "backend", &guest("echo-wstd"))
            .status(),
        201
    );
    let created = server.upload_with(
        &token,
        "front",
        &guest("service"),
        service_metadata("backend"),
    );
    assert_eq!(created.status(), 201);

    let response = server
        .request(Method::POST, "/dispatch/front/orders/42?expand=items")
        .header("x-trace", "abc123")
        .body("the body")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-echo"],
        "wstd",
        "the callee's headers come back"
    );
    let seen: Value = response.json().unwrap();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/orders/42");
    assert_eq!(seen["query"], "expand=items");
    assert_eq!(seen["headers"]["x-trace"], "abc123");
    assert_eq!(seen["body"], "the body");
    assert!(
        seen["headers"].get("platform-service-binding").is_none(),
        "the routing header leaked to the callee: {seen}"
    );

    // The callee's streamed response arrives whole.
    let streamed = server
        .get("/dispatch/front/stream?chunks=500")
        .text()
        .unwrap();
    assert_eq!(streamed.lines().count(), 500);
    assert!(
        server.log().contains("echo POST /orders/42"),
        "the callee's console is captured"
    );
}

#[test]
fn a_script_calling_itself_stops_at_the_depth_limit_with_an_error() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let created = server.upload_with(&token, "loop", &guest("service"), service_metadata("loop"));
    assert_eq!(created.status(), 201);

    let response = server.get("/dispatch/loop/");
    assert_eq!(response.status(), 502);
    let text = response.text().unwrap();
    assert!(text.contains("depth"), "no depth error in: {text}");

    // Nothing is left stuck: the server keeps serving other scripts.
    assert_eq!(
        server.upload(&token, "echo", &guest("echo-wstd")).status(),
        201
    );
    assert_eq!(server.get("/dispatch/echo/").status(), 200);
}

#[test]
fn a_customer_cannot_bind_another_customers_script() {
    let server = Server::start();
    let (_, token_a) = server.create_customer("a");
    let (_, token_b) = server.create_customer("b");
    assert_eq!(
        server
            .upload(&token_a, "a-backend", &guest("echo-wstd"))
            .status(),
        201
    );
    let refused = server.upload_with(
        &token_b,
        "b-front",
        &guest("service"),
        service_metadata("a-backend"),
    );
    let message = expect_error(refused, 400, "bad_request");
    assert!(message.contains("a-backend"), "{message}");
    assert_eq!(server.get("/dispatch/b-front/").status(), 404);
}

#[test]
fn calling_a_binding_the_script_does_not_have_is_refused() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    // Uploaded without bindings: its call to BACKEND names nothing it was given.
    assert_eq!(
        server.upload(&token, "front", &guest("service")).status(),
        201
    );
    let response = server.get("/dispatch/front/");
    assert_eq!(response.status(), 502);
    assert!(response.text().unwrap().contains("BACKEND"));
}

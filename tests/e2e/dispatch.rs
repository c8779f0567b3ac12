//! What a script sees and what eyeballs get back: path without the dispatch prefix,
//! method, headers, query, body; streamed responses; traps answered 500 while the
//! server keeps serving; console output captured and logged with the script's name.

use reqwest::Method;

use crate::harness::{Server, expect_error, guest};
use crate::platform_module::HELLO;

#[test]
fn a_script_sees_method_path_query_headers_and_body() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    assert_eq!(
        server.upload(&token, "echo", &guest("echo-wstd")).status(),
        201
    );

    let response = server
        .request(Method::POST, "/dispatch/echo/orders/42?expand=items&x=1")
        .header("x-request-note", "from the test")
        .body("the body")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-echo"], "wstd");
    let seen: serde_json::Value = response.json().unwrap();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/orders/42");
    assert_eq!(seen["query"], "expand=items&x=1");
    assert_eq!(seen["headers"]["x-request-note"], "from the test");
    assert_eq!(seen["body"], "the body");

    // Host routing passes the whole path through.
    let by_host: serde_json::Value = server
        .request(Method::GET, "/any/path?q=1")
        .header("host", format!("echo.localhost:{}", server.port))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(by_host["path"], "/any/path");
    assert_eq!(by_host["query"], "q=1");

    // Bare /dispatch/echo is the script's root.
    let root: serde_json::Value = server.get("/dispatch/echo").json().unwrap();
    assert_eq!(root["path"], "/");
}

#[test]
fn a_large_response_streams_back_whole() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    server.upload(&token, "echo", &guest("echo-wstd"));
    let text = server
        .get("/dispatch/echo/stream?chunks=20000")
        .text()
        .unwrap();
    assert_eq!(text.lines().count(), 20000);
    assert_eq!(text.lines().last(), Some("chunk 19999"));
}

#[test]
fn a_trapping_script_answers_script_error_and_others_keep_serving() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    server.upload(&token, "boom", &guest("trap"));
    server.upload(&token, "hello", &guest("hello"));

    expect_error(server.get("/dispatch/boom/"), 500, "script_error");
    expect_error(server.get("/dispatch/boom/panic"), 500, "script_error");
    let exit = expect_error(server.get("/dispatch/boom/exit"), 500, "script_error");
    assert_eq!(exit, "the script failed");

    assert_eq!(server.get("/dispatch/hello/").text().unwrap(), HELLO);
    assert_eq!(
        server.metric("dispatcher_requests_total{outcome=\"script_error\"}"),
        3
    );
}

#[test]
fn console_output_is_captured_and_logged_with_the_script_name() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    server.upload(&token, "echo", &guest("echo-wstd"));
    server.get("/dispatch/echo/logged-path");
    assert!(crate::harness::eventually(
        std::time::Duration::from_secs(5),
        || server.log().contains("echo GET /logged-path")
    ));
    let line = server
        .log()
        .lines()
        .find(|l| l.contains("echo GET /logged-path"))
        .unwrap()
        .to_string();
    assert!(line.contains("script=echo"), "{line}");
}

#[test]
fn operator_routes_answer() {
    let server = Server::start();
    let health: serde_json::Value = server.get("/healthz").json().unwrap();
    assert_eq!(health["ok"], true);
    let metrics = server.get("/metrics").text().unwrap();
    assert!(metrics.contains("# TYPE dispatcher_requests_total counter"));
}

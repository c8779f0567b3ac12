//! One error boundary for eyeballs: a failed run answers a fixed envelope (`script_error`,
//! "the script failed", a request id), never trap text, backtraces or function names,
//! while the script's owner finds the detail under that request id in its tail. The
//! SDK's default `500` says nothing of the error either. A run that fails after its
//! response head went out cuts the body short, so the client never takes a truncated
//! body for a whole one. What a script prints becomes a bounded number of log events,
//! with control characters escaped.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Server, eventually, guest};
use crate::observability::{follow, next_event};
use crate::showcase::upload_everything;

/// Words that give a wasm failure's internals away.
const INTERNALS: [&str; 7] = [
    "wasm",
    "trap",
    "backtrace",
    "unreachable",
    "secret_internal_fn_name",
    "handle",
    "0x",
];

fn generic_failure(server: &Server, path: &str) -> String {
    let response = server.get(path);
    assert_eq!(response.status(), 500, "{path}");
    let header_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let text = response.text().unwrap();
    for word in INTERNALS {
        assert!(
            !text.to_lowercase().contains(word),
            "{path} leaks `{word}`: {text}"
        );
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["ok"], false);
    assert_eq!(body["error"]["code"], "script_error");
    assert_eq!(body["error"]["message"], "the script failed");
    let request_id = body["error"]["request_id"].as_str().unwrap().to_string();
    assert_eq!(request_id, header_id);
    request_id
}

#[test]
fn a_failing_scripts_client_sees_a_request_id_and_its_owner_the_detail() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    assert_eq!(server.upload(&token, "boom", &guest("trap")).status(), 201);
    let tail = follow(&server, &token, "boom");

    for (path, detail) in [
        ("/dispatch/boom/", "unreachable"),
        ("/dispatch/boom/bad-handle", "handle"),
        ("/dispatch/boom/exit", "called exit("),
    ] {
        let request_id = generic_failure(&server, path);
        let event = next_event(&tail);
        assert_eq!(event["request_id"], request_id.as_str(), "{event}");
        assert_eq!(event["outcome"], "script_error");
        let error = event["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(detail),
            "{path}: the tail lacks `{detail}`: {event}"
        );
        assert!(
            server.log().contains(&request_id),
            "the server log lacks the request id"
        );
    }
    // An answered run has no error in its tail.
    assert_eq!(server.get_and_read("/dispatch/boom/console?lines=0"), 200);
    let event = next_event(&tail);
    assert_eq!(event["outcome"], "ok");
    assert!(event["error"].is_null(), "{event}");
}

#[test]
fn the_sdks_default_500_carries_no_error_text() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    upload_everything(&server, &token);
    // Another script of the customer puts a value in the shared namespace that
    // `everything` cannot parse as its visit count, so its handler returns an error.
    let kv =
        json!({"bindings": [{"type": "kv_namespace", "name": "CACHE", "namespace": "visits"}]});
    assert_eq!(
        server.upload_with(&token, "kv", &guest("kv"), kv).status(),
        201
    );
    let put = server
        .request(reqwest::Method::PUT, "/dispatch/kv/visits")
        .body("SELECT secret FROM internal_table")
        .send()
        .unwrap();
    assert_eq!(put.status(), 204);
    let tail = follow(&server, &token, "everything");

    let response = server
        .request(reqwest::Method::GET, "/dispatch/everything/")
        .header("x-api-key", "k-123")
        .send()
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(response.text().unwrap(), "internal error");
    let event = next_event(&tail);
    let logs = event["logs"].to_string();
    assert!(
        logs.contains("fetch failed"),
        "the owner's tail lacks the error: {event}"
    );
}

#[test]
fn a_failure_after_the_head_went_out_cuts_the_body_short() {
    let server = Server::start_with_config("cpu_ms = 100\n");
    let (_, token) = server.create_customer("acme");
    assert_eq!(server.upload(&token, "boom", &guest("trap")).status(), 201);
    let tail = follow(&server, &token, "boom");
    let cut = |response: reqwest::blocking::Response| {
        assert_eq!(response.status(), 200);
        let read = response.text();
        assert!(
            read.is_err(),
            "a cut body was delivered as complete: {read:?}"
        );
    };
    // The CPU limit stops the guest well after its head and first chunk went out.
    cut(server.get("/dispatch/boom/stream-then-spin"));
    assert_eq!(next_event(&tail)["outcome"], "exceeded_cpu");
    // A trap right after the first chunk may even reach the client before the head
    // does; either way the exchange fails, never ends cleanly.
    let trapped = server
        .request(reqwest::Method::GET, "/dispatch/boom/stream-then-trap")
        .send();
    if let Ok(response) = trapped {
        cut(response);
    }
    assert_eq!(next_event(&tail)["outcome"], "script_error");
    assert_eq!(server.get_and_read("/dispatch/boom/console?lines=0"), 200);
}

#[test]
fn console_output_becomes_a_bounded_number_of_escaped_log_events() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    assert_eq!(
        server.upload(&token, "chatty", &guest("trap")).status(),
        201
    );
    let tail = follow(&server, &token, "chatty");
    assert_eq!(
        server.get_and_read("/dispatch/chatty/console?lines=65536"),
        200
    );
    let event = next_event(&tail);
    let logs = event["logs"].as_array().unwrap();
    assert!(logs.len() <= 256, "{} console events", logs.len());

    assert_eq!(server.get_and_read("/dispatch/chatty/console?lines=3"), 200);
    let event = next_event(&tail);
    let last = event["logs"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last, "forged\\rINFO admin logged in\\u{1b}[2K");

    assert!(eventually(Duration::from_secs(5), || server
        .log()
        .contains(
            "console output over the per-request limit was dropped"
        )));
    let log = server.log();
    let events = log.lines().filter(|l| l.contains("chatty")).count();
    assert!(events < 600, "{events} log lines for two requests");
    assert!(!log.contains("forged\rINFO"), "a raw CR reached the log");
    assert!(!log.contains('\u{1b}'), "a raw escape reached the log");
}

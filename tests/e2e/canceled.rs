//! A run is cancelled when its client goes: a client that hangs up while the script
//! sleeps (before the response head) or while its body streams (after it) ends the run
//! long before its 30 s wall-time limit, as the outcome `canceled` in the tail, the
//! metrics and the usage report, and its instance slot is free again at once. A client
//! that reads a whole response is `ok`.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Server, eventually};
use crate::limits::two_tenants;
use crate::observability::{follow, next_event};

/// Sends `GET path` on a connection of its own and leaves it open.
fn send_get(server: &Server, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

/// Whether the server has answered on `stream` (without waiting or reading).
fn answered(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let peeked = stream.peek(&mut [0u8; 1]);
    stream.set_nonblocking(false).unwrap();
    matches!(peeked, Ok(n) if n > 0)
}

#[test]
fn a_client_that_hangs_up_before_the_head_cancels_the_run_and_frees_its_slot() {
    let server = Server::start_with_config("max_instances = 1\nusage_flush_ms = 200\n");
    let acme = two_tenants(&server);
    let events = follow(&server, &acme, "app");

    let sleep = "/dispatch/app/sleep?ms=20000";
    let mut sleeper = send_get(&server, sleep);
    assert!(
        eventually(Duration::from_secs(10), || {
            // A probe that got in first took the slot and the sleeper was refused: again.
            if answered(&sleeper) {
                sleeper = send_get(&server, sleep);
                std::thread::sleep(Duration::from_millis(100));
            }
            server.get("/dispatch/hello/").status() == 503
        }),
        "the sleeper holds the only instance slot"
    );
    std::thread::sleep(Duration::from_millis(300));
    let hung_up = Instant::now();
    drop(sleeper);

    // Past the sleepers refused while a probe held the slot.
    let event = std::iter::repeat_with(|| next_event(&events))
        .find(|event| event["outcome"] != "overloaded")
        .unwrap();
    assert_eq!(event["outcome"], "canceled", "{event}");
    assert_eq!(event["path"], "/sleep");
    assert_eq!(event["status"], Value::Null, "canceled is never a status");
    assert!(
        hung_up.elapsed() < Duration::from_secs(10),
        "canceled {:?} after the hang-up",
        hung_up.elapsed()
    );
    assert!(event["wall_ms"].as_f64().unwrap() < 15_000.0, "{event}");
    assert!(
        eventually(Duration::from_secs(2), || server
            .get("/dispatch/hello/")
            .status()
            == 200),
        "the slot is free again"
    );

    assert_eq!(
        server.metric("dispatcher_requests_total{outcome=\"canceled\"}"),
        1
    );
    let usage_canceled = || {
        let answer: Value = server
            .request(reqwest::Method::GET, "/usage?since=1h")
            .header("x-customer-token", &acme)
            .send()
            .unwrap()
            .json()
            .unwrap();
        answer["data"]["scripts"][0]["total"]["errors"]["canceled"].clone()
    };
    assert!(
        eventually(Duration::from_secs(10), || usage_canceled() == 1),
        "GET /usage counts the canceled run: {}",
        usage_canceled()
    );
}

#[test]
fn a_client_that_hangs_up_mid_body_cancels_the_run_and_a_whole_read_is_ok() {
    let server = Server::start();
    let acme = two_tenants(&server);
    let events = follow(&server, &acme, "app");

    // The head and the first ticks arrive; then the client goes.
    let mut ticker = send_get(&server, "/dispatch/app/tick?ms=50");
    ticker
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("tick") {
        let n = ticker.read(&mut buffer).unwrap();
        assert!(n > 0, "the body streams");
        seen.extend_from_slice(&buffer[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    std::thread::sleep(Duration::from_millis(300));
    drop(ticker);
    let event = next_event(&events);
    assert_eq!(event["outcome"], "canceled", "{event}");
    assert_eq!(event["path"], "/tick");
    assert_eq!(event["status"], 200, "the head went out");

    // Read whole: the run is not canceled by the end of its body.
    assert_eq!(server.get_and_read("/dispatch/app/sleep?ms=10"), 200);
    let event = next_event(&events);
    assert_eq!(event["outcome"], "ok", "{event}");
    assert_eq!(server.get_and_read("/dispatch/app/no-such-route"), 404);
    assert_eq!(next_event(&events)["outcome"], "ok");
    assert_eq!(
        server.metric("dispatcher_requests_total{outcome=\"canceled\"}"),
        1
    );
}

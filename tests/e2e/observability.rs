//! Watching the platform: live tails (a customer sees exactly its own script's runs; the
//! CLI follows the running server through the data directory), usage metering (exact
//! for a known workload, flushed to the store, kept across a restart), the operator's
//! Prometheus metrics and JSON logs.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{BIN, Server, guest};

/// Follows `name`'s tail as the customer of `token`; each event arrives on the channel.
pub fn follow(server: &Server, token: &str, name: &str) -> mpsc::Receiver<Value> {
    // No client timeout: a tail is a response that does not end.
    let response = reqwest::blocking::Client::new()
        .get(server.url(&format!("/script/{name}/tail")))
        .header("x-customer-token", token)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (events, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(response).lines() {
            let Ok(line) = line else { break };
            if let Some(json) = line.strip_prefix("data:") {
                let event = serde_json::from_str(json.trim()).expect("an event is JSON");
                if events.send(event).is_err() {
                    break;
                }
            }
        }
    });
    received
}

pub fn next_event(events: &mpsc::Receiver<Value>) -> Value {
    events
        .recv_timeout(Duration::from_secs(10))
        .expect("a tail event within 10 s")
}

#[test]
fn a_tail_streams_exactly_the_runs_of_the_customers_own_script() {
    let server = Server::start();
    let (_, alice) = server.create_customer("alice");
    let (_, bob) = server.create_customer("bob");
    assert_eq!(
        server
            .upload(&alice, "a-echo", &guest("echo-wstd"))
            .status(),
        201
    );
    assert_eq!(
        server.upload(&alice, "a-trap", &guest("trap")).status(),
        201
    );
    assert_eq!(
        server.upload(&bob, "b-echo", &guest("echo-wstd")).status(),
        201
    );

    // Only the owner may tail a script; others get what a missing script gets.
    let tail_of = |token: &str, name: &str| {
        server
            .request(reqwest::Method::GET, &format!("/script/{name}/tail"))
            .header("x-customer-token", token)
            .send()
            .unwrap()
    };
    assert_eq!(tail_of(&bob, "a-echo").status(), 404);
    assert_eq!(tail_of("dsp_wrong", "a-echo").status(), 401);

    let echoes = follow(&server, &alice, "a-echo");
    let traps = follow(&server, &alice, "a-trap");
    for _ in 0..3 {
        assert_eq!(server.get_and_read("/dispatch/a-echo/one?x=1"), 200);
        assert_eq!(server.get_and_read("/dispatch/b-echo/other"), 200);
    }
    assert_eq!(server.get_and_read("/dispatch/a-trap/panic"), 500);

    for _ in 0..3 {
        let event = next_event(&echoes);
        assert_eq!(event["script"], "a-echo", "{event}");
        assert_eq!(event["method"], "GET");
        assert_eq!(event["path"], "/one");
        assert_eq!(event["status"], 200);
        assert_eq!(event["outcome"], "ok");
        assert_eq!(
            event["logs"],
            serde_json::json!(["echo GET /one"]),
            "{event}"
        );
        assert!(event["wall_ms"].as_f64().unwrap() > 0.0, "{event}");
        assert!(event["cpu_ms"].as_f64().unwrap() > 0.0, "{event}");
        assert!(event["time"].as_str().unwrap().ends_with('Z'), "{event}");
    }
    let failed = next_event(&traps);
    assert_eq!(failed["outcome"], "script_error", "{failed}");
    assert_eq!(failed["status"], 500, "{failed}");
    // Nothing else arrives: not bob's runs, not the other script's.
    std::thread::sleep(Duration::from_millis(500));
    assert!(echoes.try_recv().is_err(), "only the three runs of a-echo");
    assert!(traps.try_recv().is_err());
}

#[test]
fn the_cli_tail_follows_the_running_server_found_through_the_data_dir() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    server.upload(&token, "app", &guest("echo-wstd"));

    let missing = server.cli(&["tail", "nope"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("nope"),
        "{missing:?}"
    );

    let mut tail = Command::new(BIN)
        .arg("--data")
        .arg(server.data_dir())
        .args(["tail", "app", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(tail.stdout.take().unwrap());
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    // Requests until the tail, which connects on its own time, reports one.
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        assert!(Instant::now() < deadline, "the CLI tail printed nothing");
        server.get("/dispatch/app/hello");
        if let Ok(line) = received.recv_timeout(Duration::from_millis(200)) {
            break line;
        }
    };
    let _ = tail.kill();
    let _ = tail.wait();
    let event: Value = serde_json::from_str(&line).expect("--json prints JSON lines");
    assert_eq!(event["script"], "app");
    assert_eq!(event["path"], "/hello");
    assert_eq!(event["logs"], serde_json::json!(["echo GET /hello"]));
}

/// `GET /usage` of the customer of `token`: the scripts' totals by name.
fn usage_totals(server: &Server, token: &str) -> Value {
    let answer: Value = server
        .request(reqwest::Method::GET, "/usage?since=1h")
        .header("x-customer-token", token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut totals = serde_json::Map::new();
    for script in answer["data"]["scripts"].as_array().unwrap() {
        totals.insert(
            script["script"].as_str().unwrap().into(),
            script["total"].clone(),
        );
    }
    Value::Object(totals)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn usage_counts_a_known_workload_exactly_and_keeps_it_across_a_restart() {
    let server = Server::start_with_config("usage_flush_ms = 200");
    let (alice_id, alice) = server.create_customer("alice");
    let (_, bob) = server.create_customer("bob");
    server.upload(&alice, "metered", &guest("echo-wstd"));
    server.upload(&alice, "broken", &guest("trap"));
    server.upload(&bob, "other", &guest("echo-wstd"));
    for _ in 0..7 {
        assert_eq!(server.get_and_read("/dispatch/metered/"), 200);
    }
    for _ in 0..2 {
        assert_eq!(server.get_and_read("/dispatch/broken/panic"), 500);
    }
    for _ in 0..3 {
        server.get_and_read("/dispatch/other/");
    }

    let expected =
        |usage: &Value| usage["metered"]["invocations"] == 7 && usage["broken"]["invocations"] == 2;
    wait_until("the workload in GET /usage", || {
        expected(&usage_totals(&server, &alice))
    });
    let usage = usage_totals(&server, &alice);
    assert_eq!(
        usage.as_object().unwrap().len(),
        2,
        "only alice's scripts: {usage}"
    );
    assert_eq!(usage["metered"]["errors"]["script_error"], 0);
    assert_eq!(usage["broken"]["errors"]["script_error"], 2);
    assert!(usage["metered"]["cpu_ms"].as_f64().unwrap() > 0.0);
    assert!(usage["metered"]["wall_ms"].as_f64().unwrap() > 0.0);
    assert!(usage["metered"]["peak_memory_bytes"].as_u64().unwrap() > 0);

    // The operator's view reads what was flushed to the store.
    wait_until("the flushed workload in `dispatcher usage`", || {
        let out = server.cli(&["usage", "--customer", &alice_id, "--json"]);
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        doc["scripts"].as_array().is_some_and(|scripts| {
            scripts
                .iter()
                .filter_map(|s| s["total"]["invocations"].as_u64())
                .sum::<u64>()
                == 9
        })
    });

    let (data, _temp) = server.stop();
    let server = Server::start_in(&data, &[]);
    assert!(
        expected(&usage_totals(&server, &alice)),
        "usage survives a restart, counted once"
    );
    let answer = server
        .request(reqwest::Method::GET, "/usage?since=yesterday-ish")
        .header("x-customer-token", &alice)
        .send()
        .unwrap();
    assert_eq!(answer.status(), 400);
}

#[test]
fn metrics_are_prometheus_text_and_logs_can_be_json() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let server = Server::start_in(&data, &["--log-format", "json"]);
    let (_, token) = server.create_customer("acme");
    server.upload(&token, "app", &guest("echo-wstd"));
    for _ in 0..3 {
        assert_eq!(server.get_and_read("/dispatch/app/"), 200);
    }

    let response = server.get("/metrics");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().unwrap();
    let samples = parse_prometheus(&text);
    let value = |name: &str| samples.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    assert!(value("dispatcher_requests_total{outcome=\"ok\"}").unwrap() >= 3.0);
    assert!(value("dispatcher_run_duration_seconds_count").unwrap() >= 3.0);
    assert_eq!(
        value("dispatcher_run_duration_seconds_bucket{le=\"+Inf\"}"),
        value("dispatcher_run_duration_seconds_count")
    );
    for name in [
        "dispatcher_instances_in_use",
        "dispatcher_memories_in_use",
        "dispatcher_compiles_total",
        "dispatcher_artifact_cache_hits_total",
        "dispatcher_scripts_loaded",
    ] {
        assert!(value(name).is_some(), "{name} missing in:\n{text}");
    }

    let log = server.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let entry: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(entry["level"].is_string(), "{line}");
    }
}

/// Parses the Prometheus text format strictly enough to catch a malformed exposition:
/// every sample belongs to a declared family, names and values are well formed, and
/// histogram buckets only grow. Returns (name with labels, value) pairs.
fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    let valid_name = |name: &str| {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut families: Vec<(String, String)> = Vec::new();
    let mut samples = Vec::new();
    let mut last_bucket: Option<(String, f64)> = None;
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (keyword, name, rest) = (parts.next(), parts.next(), parts.next());
            let name = name.unwrap_or_else(|| panic!("bad comment: {line}"));
            assert!(valid_name(name), "bad name: {line}");
            if keyword == Some("TYPE") {
                let kind = rest.unwrap_or_default();
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                families.push((name.to_string(), kind.to_string()));
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(valid_name(name), "bad name: {line}");
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "{line}"
            );
        }
        let family = families
            .iter()
            .find(|(f, _)| {
                name == f
                    || name
                        .strip_prefix(f.as_str())
                        .is_some_and(|s| ["_bucket", "_sum", "_count"].contains(&s))
            })
            .unwrap_or_else(|| panic!("sample without a TYPE: {line}"));
        if name.ends_with("_bucket") {
            if let Some((previous_family, previous)) = &last_bucket
                && previous_family == &family.0
            {
                assert!(value >= *previous, "histogram buckets must grow: {line}");
            }
            last_bucket = Some((family.0.clone(), value));
        }
        samples.push((series.to_string(), value));
    }
    samples
}

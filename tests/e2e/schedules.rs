//! Cron Triggers: a script exporting `platform:worker/scheduled` runs at its schedules
//! (set at upload or with `PUT .../schedules`), and at once with `POST .../trigger`;
//! its runs are seen in the tail, usage and metrics as `scheduled`; bad schedules are
//! refused, named, and change nothing.

use std::time::Duration;

use reqwest::Method;
use reqwest::blocking::Response;
use serde_json::{Value, json};

use crate::harness::{Server, envelope, eventually, expect_error, guest};
use crate::observability::{follow, next_event};

/// A cron that does not fire while a test runs (midnight on January 1st).
const YEARLY: &str = "0 0 1 1 *";
/// The cron guest's handler fails for this one.
const FAILING: &str = "59 23 31 12 *";

fn upload_cron(server: &Server, token: &str, name: &str, crons: &[&str]) -> Response {
    let metadata = json!({
        "main_module": "worker.wasm",
        "bindings": [{"type": "kv_namespace", "name": "CACHE", "namespace": format!("{name}-kv")}],
        "triggers": {"crons": crons},
    });
    server.upload_with(token, name, &guest("cron"), metadata)
}

fn call(server: &Server, token: &str, method: Method, path: &str, body: Option<Value>) -> Response {
    let mut request = server
        .request(method, path)
        .header("x-customer-token", token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().unwrap()
}

/// What the cron guest recorded: (fires, last cron, last time).
fn recorded(server: &Server, name: &str) -> (u64, String, String) {
    let text = server.get(&format!("/dispatch/{name}/")).text().unwrap();
    let mut lines = text.split('\n');
    let fires = lines.next().unwrap().parse().unwrap();
    let cron = lines.next().unwrap_or_default().to_string();
    let time = lines.next().unwrap_or_default().to_string();
    (fires, cron, time)
}

#[test]
fn a_manual_trigger_runs_the_scheduled_handler_and_the_tail_and_usage_see_it() {
    let server = Server::start_with_config("usage_flush_ms = 200");
    let (_, token) = server.create_customer("acme");
    assert_eq!(upload_cron(&server, &token, "job", &[YEARLY]).status(), 201);
    assert_eq!(recorded(&server, "job").0, 0);
    let events = follow(&server, &token, "job");

    let before = chrono_now_ms();
    let ran = call(
        &server,
        &token,
        Method::POST,
        "/script/job/schedules/trigger",
        None,
    );
    assert_eq!(ran.status(), 200);
    let ran = envelope(ran, true)["data"].clone();
    assert_eq!(ran["outcome"], "ok");
    assert_eq!(ran["cron"], YEARLY);
    let (fires, cron, time) = recorded(&server, "job");
    assert_eq!((fires, cron.as_str()), (1, YEARLY));
    let time: u64 = time.parse().unwrap();
    assert!(time >= before && time <= chrono_now_ms(), "{time}");

    let event = next_event(&events);
    assert_eq!(event["event"], "scheduled");
    assert_eq!(event["outcome"], "ok");
    assert_eq!(event["method"], "SCHEDULED");
    assert_eq!(event["path"], YEARLY);
    assert_eq!(event["request_id"], ran["request_id"]);
    assert!(event["logs"].to_string().contains("fired"), "{event}");
    // The fetch that read the record is a fetch.
    assert_eq!(next_event(&events)["event"], "fetch");

    // A handler that fails is a failed run: the caller gets the envelope, the tail why.
    let failed = call(
        &server,
        &token,
        Method::POST,
        "/script/job/schedules/trigger",
        Some(json!({"cron": FAILING})),
    );
    expect_error(failed, 500, "script_error");
    let event = next_event(&events);
    assert_eq!(
        (event["event"].as_str(), event["outcome"].as_str()),
        (Some("scheduled"), Some("script_error"))
    );
    assert!(
        event["error"].as_str().unwrap().contains("always fails"),
        "{event}"
    );

    let by_event = || -> Vec<(String, u64)> {
        let usage = call(
            &server,
            &token,
            Method::GET,
            "/usage?since=1h&group_by=event",
            None,
        );
        let data = envelope(usage, true)["data"].clone();
        let mut rows: Vec<(String, u64)> = data["scripts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["event"].as_str().unwrap().to_string(),
                    e["total"]["invocations"].as_u64().unwrap(),
                )
            })
            .collect();
        rows.sort();
        rows
    };
    assert!(
        eventually(Duration::from_secs(10), || by_event()
            == [("fetch".to_string(), 2), ("scheduled".to_string(), 2)]),
        "{:?}",
        by_event()
    );
    let metrics = server.get("/metrics").text().unwrap();
    for outcome in ["ok", "script_error"] {
        let series = format!("dispatcher_scheduled_runs_total{{outcome=\"{outcome}\"}} 1");
        assert!(
            metrics.lines().any(|l| l == series),
            "{series} in:\n{metrics}"
        );
    }
}

#[test]
fn a_schedule_fires_at_its_minute() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    assert_eq!(
        upload_cron(&server, &token, "every-minute", &["* * * * *"]).status(),
        201
    );
    // A fire is due at the start of the next minute: at most 60 s from now.
    assert!(
        eventually(Duration::from_secs(75), || recorded(
            &server,
            "every-minute"
        )
        .0 >= 1),
        "no fire within 75 s"
    );
    let (_, cron, time) = recorded(&server, "every-minute");
    assert_eq!(cron, "* * * * *");
    let time: u64 = time.parse().unwrap();
    assert_eq!(time % 60_000, 0, "a fire is due at a whole minute: {time}");
}

#[test]
fn schedules_are_set_listed_and_cleared_and_bad_ones_change_nothing() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let (_, other) = server.create_customer("other");

    // At upload: an invalid expression, too many, or no scheduled export: refused, named.
    expect_error(
        upload_cron(&server, &token, "job", &["every minute"]),
        400,
        "bad_request",
    );
    let four = ["1 * * * *", "2 * * * *", "3 * * * *", "4 * * * *"];
    let message = expect_error(
        upload_cron(&server, &token, "job", &four),
        400,
        "bad_request",
    );
    assert!(message.contains("at most 3"), "{message}");
    let metadata = json!({"main_module": "worker.wasm", "triggers": {"crons": [YEARLY]}});
    let refused = server.upload_with(&token, "plain", &guest("hello"), metadata);
    let message = expect_error(refused, 400, "bad_request");
    assert!(message.contains("platform:worker/scheduled"), "{message}");
    for name in ["job", "plain"] {
        let missing = call(
            &server,
            &token,
            Method::GET,
            &format!("/script/{name}"),
            None,
        );
        expect_error(missing, 404, "script_not_found");
    }

    assert_eq!(upload_cron(&server, &token, "job", &[YEARLY]).status(), 201);
    let listed = call(&server, &token, Method::GET, "/script/job/schedules", None);
    let listed = envelope(listed, true)["data"].clone();
    assert_eq!(listed[0]["cron"], YEARLY);
    assert!(
        listed[0]["next"]
            .as_str()
            .unwrap()
            .contains("-01-01T00:00:00"),
        "{listed}"
    );

    // Replaced with PUT (strings or {"cron"} objects); bad lists change nothing.
    let put = |body: Value| {
        call(
            &server,
            &token,
            Method::PUT,
            "/script/job/schedules",
            Some(body),
        )
    };
    let set = put(json!(["*/5 * * * *", {"cron": "0 3 * * MON"}]));
    assert_eq!(set.status(), 200);
    let crons = |data: &Value| -> Vec<String> {
        data.as_array()
            .unwrap()
            .iter()
            .map(|s| s["cron"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        crons(&envelope(set, true)["data"]),
        ["*/5 * * * *", "0 3 * * MON"]
    );
    expect_error(put(json!(["61 * * * *"])), 400, "bad_request");
    expect_error(put(json!(["* * * * *", "* * * * *"])), 400, "bad_request");
    expect_error(put(json!({"crons": []})), 400, "bad_request");
    let unchanged = call(&server, &token, Method::GET, "/script/job/schedules", None);
    assert_eq!(
        crons(&envelope(unchanged, true)["data"]),
        ["*/5 * * * *", "0 3 * * MON"]
    );

    // Another customer's script is not found; a script without the export takes none.
    let theirs = call(
        &server,
        &other,
        Method::PUT,
        "/script/job/schedules",
        Some(json!([YEARLY])),
    );
    expect_error(theirs, 404, "script_not_found");
    assert_eq!(
        server.upload(&token, "plain", &guest("hello")).status(),
        201
    );
    let plain = call(
        &server,
        &token,
        Method::PUT,
        "/script/plain/schedules",
        Some(json!([YEARLY])),
    );
    expect_error(plain, 400, "bad_request");

    // With schedules set, a new version must keep the export; once cleared it need not.
    expect_error(
        server.upload(&token, "job", &guest("hello")),
        400,
        "bad_request",
    );
    assert_eq!(put(json!([])).status(), 200);
    assert_eq!(server.upload(&token, "job", &guest("hello")).status(), 200);

    // A deleted script's schedules go with it: the name's next owner has none.
    upload_cron(&server, &token, "gone", &[YEARLY]);
    let deleted = call(&server, &token, Method::DELETE, "/script/gone", None);
    assert_eq!(deleted.status(), 200);
    assert_eq!(upload_cron(&server, &other, "gone", &[]).status(), 201);
    let fresh = call(&server, &other, Method::GET, "/script/gone/schedules", None);
    assert_eq!(envelope(fresh, true)["data"], json!([]));
}

#[test]
fn the_cli_sets_and_shows_schedules() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    assert_eq!(upload_cron(&server, &token, "job", &[]).status(), 201);
    let out = server.cli(&["schedules", "set", "job", "*/10 * * * *", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let set: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(set[0]["cron"], "*/10 * * * *");
    let out = server.cli(&["schedules", "show", "job", "--json"]);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown, set);
    let bad = server.cli(&["schedules", "set", "job", "not a cron"]);
    assert!(!bad.status.success());
    let listed = call(&server, &token, Method::GET, "/script/job/schedules", None);
    assert_eq!(envelope(listed, true)["data"][0]["cron"], "*/10 * * * *");
}

fn chrono_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The platform uses Cron Triggers: billing's nightly job expires orders left unpaid for
/// a day, and an expired order can no longer be paid.
#[test]
fn billings_nightly_job_expires_orders_left_unpaid_for_a_day() {
    use crate::platform_client::{As, call as platform, error_code, log_in, sign_up};

    let server = Server::start_with_platform();
    let out = server.cli(&[
        "schedules",
        "show",
        "billing",
        "--namespace",
        "platform",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let installed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(installed[0]["cron"], "0 3 * * *");

    sign_up(&server, "buyer@example.com");
    let session = log_in(&server, "buyer@example.com");
    let me = As::Cookie(&session);
    let order = |credits: u64| -> String {
        let (status, answer) = platform(
            &server,
            Method::POST,
            "/orders",
            me,
            Some(json!({"credits": credits})),
        );
        assert_eq!(status, 201, "{answer}");
        answer["data"]["order"]["id"].as_str().unwrap().to_string()
    };
    let (old, fresh) = (order(100), order(200));
    // The old one was made two days ago (the billing database is a real SQLite file).
    let db =
        rusqlite::Connection::open(server.data_dir().join("d1/_platform/billing.sqlite")).unwrap();
    let changed = db
        .execute(
            "UPDATE orders SET created_at = created_at - 2 * 86400 WHERE id = ?1",
            [&old],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(db);

    let out = server.cli(&[
        "schedules",
        "trigger",
        "billing",
        "--namespace",
        "platform",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let ran: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (ran["outcome"].as_str(), ran["cron"].as_str()),
        (Some("ok"), Some("0 3 * * *"))
    );

    let status_of = |id: &str| -> String {
        let (status, answer) = platform(&server, Method::GET, &format!("/orders/{id}"), me, None);
        assert_eq!(status, 200, "{answer}");
        answer["data"]["order"]["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(status_of(&old), "expired");
    assert_eq!(status_of(&fresh), "pending");
    let (status, answer) = platform(
        &server,
        Method::POST,
        "/payment/checkout",
        me,
        Some(json!({"order_id": old})),
    );
    assert_eq!(
        (status, error_code(&answer)),
        (409, "order_expired"),
        "{answer}"
    );
    let (status, _) = platform(
        &server,
        Method::POST,
        "/payment/checkout",
        me,
        Some(json!({"order_id": fresh})),
    );
    assert_eq!(status, 200);
}

//! Queues: a producer's messages are stored before `send` returns and delivered at least
//! once to the queue's consumer, in batches; a message the consumer keeps retrying goes
//! to the dead letter queue after `max_retries`; a kill -9 loses nothing; queues are per
//! customer; bad sends and bad consumers are refused.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Server, eventually, expect_error, guest};

fn bindings(kv: &str) -> Value {
    json!([
        {"type": "queue", "name": "JOBS", "queue_name": "jobs"},
        {"type": "kv_namespace", "name": "CACHE", "namespace": kv},
    ])
}

fn upload(
    server: &Server,
    token: &str,
    name: &str,
    consumers: Value,
) -> reqwest::blocking::Response {
    let metadata = json!({"main_module": "worker.wasm", "bindings": bindings(&format!("{name}-kv")), "consumers": consumers});
    server.upload_with(token, name, &guest("queue"), metadata)
}

fn post(server: &Server, path: &str) -> (u16, String) {
    let response = server.request(Method::POST, path).send().unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

/// (distinct, deliveries) the consumer `name` recorded for messages starting with `prefix`.
fn seen(server: &Server, name: &str, what: &str, prefix: &str) -> (u64, u64) {
    let text = server
        .get(&format!("/dispatch/{name}/{what}?prefix={prefix}"))
        .text()
        .unwrap();
    let mut parts = text.split(' ').map(|n| n.parse().unwrap());
    (parts.next().unwrap(), parts.next().unwrap())
}

#[test]
fn a_hundred_messages_all_reach_the_consumer_and_a_failing_one_ends_in_the_dead_letter_queue() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let consumers = json!([
        {"queue": "jobs", "max_batch_size": 10, "max_batch_timeout_ms": 200, "max_retries": 3,
         "dead_letter_queue": "jobs-dlq"},
        {"queue": "jobs-dlq", "max_batch_timeout_ms": 100},
    ]);
    assert_eq!(upload(&server, &token, "worker", consumers).status(), 201);

    assert_eq!(
        post(&server, "/dispatch/worker/send?n=60&prefix=m"),
        (200, "sent 60".into())
    );
    assert_eq!(
        post(&server, "/dispatch/worker/send-batch?n=40&prefix=b"),
        (200, "sent 40".into())
    );
    assert!(
        eventually(Duration::from_secs(30), || seen(
            &server, "worker", "seen", "m"
        )
        .0 == 60
            && seen(&server, "worker", "seen", "b").0 == 40),
        "seen {:?} {:?}",
        seen(&server, "worker", "seen", "m"),
        seen(&server, "worker", "seen", "b")
    );
    // At least once: every message at least once (here, each once).
    let (distinct, total) = seen(&server, "worker", "seen", "m");
    assert!(total >= distinct, "{distinct} {total}");

    // Retried at once each time: delivered 1 + 3 times, then dead-lettered.
    assert_eq!(
        post(&server, "/dispatch/worker/send?n=1&prefix=fail"),
        (200, "sent 1".into())
    );
    assert!(
        eventually(Duration::from_secs(30), || seen(
            &server, "worker", "dead", "fail"
        ) == (1, 1)),
        "dead {:?}, seen {:?}",
        seen(&server, "worker", "dead", "fail"),
        seen(&server, "worker", "seen", "fail")
    );
    assert_eq!(seen(&server, "worker", "seen", "fail"), (1, 4));

    // The tail and usage see queue runs.
    let usage = server
        .request(Method::GET, "/usage?since=1h&group_by=event")
        .header("x-customer-token", &token)
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    let events: Vec<&str> = usage["data"]["scripts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"queue"), "{usage}");
}

#[test]
fn messages_sent_before_a_kill_9_are_delivered_after_the_restart() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    // No consumer yet: the messages wait in the store.
    assert_eq!(upload(&server, &token, "producer", json!([])).status(), 201);
    assert_eq!(
        post(&server, "/dispatch/producer/send?n=50&prefix=k"),
        (200, "sent 50".into())
    );
    let (data, _temp) = server.stop(); // SIGKILL

    let server = Server::start_in(&data, &[]);
    let consumers = json!([{"queue": "jobs", "max_batch_timeout_ms": 100}]);
    assert_eq!(upload(&server, &token, "producer", consumers).status(), 200);
    assert!(
        eventually(Duration::from_secs(30), || seen(
            &server, "producer", "seen", "k"
        )
        .0 == 50),
        "seen {:?}",
        seen(&server, "producer", "seen", "k")
    );
}

#[test]
fn queues_are_per_customer_and_bad_sends_and_consumers_are_refused() {
    let server = Server::start();
    let (_, alice) = server.create_customer("alice");
    let (_, bob) = server.create_customer("bob");
    let consumes = json!([{"queue": "jobs", "max_batch_timeout_ms": 100}]);
    assert_eq!(
        upload(&server, &alice, "a-worker", consumes.clone()).status(),
        201
    );
    // Bob's queue `jobs` is another queue: his consumer never sees Alice's messages.
    assert_eq!(
        upload(&server, &bob, "b-worker", consumes.clone()).status(),
        201
    );
    assert_eq!(
        post(&server, "/dispatch/a-worker/send?n=5&prefix=alice"),
        (200, "sent 5".into())
    );
    assert!(eventually(Duration::from_secs(20), || seen(
        &server, "a-worker", "seen", "alice"
    )
    .0 == 5));
    assert_eq!(seen(&server, "b-worker", "seen", "alice"), (0, 0));

    // A message over 128 KiB is refused, and nothing is sent.
    let (status, body) = post(&server, "/dispatch/a-worker/send-big");
    assert_eq!(status, 400);
    assert!(body.contains("at most 131072 bytes"), "{body}");

    // A second consumer of the same queue, bad settings, no handler: refused, named.
    let message = expect_error(
        upload(&server, &alice, "second", consumes),
        400,
        "bad_request",
    );
    assert!(message.contains("a-worker"), "{message}");
    for consumers in [
        json!([{"queue": "jobs2", "max_batch_size": 0}]),
        json!([{"queue": "jobs2", "dead_letter_queue": "jobs2"}]),
        json!([{"queue": "Not A Queue"}]),
        json!([{"queue": "jobs2", "unknown": 1}]),
    ] {
        let refused = upload(&server, &alice, "second", consumers.clone());
        assert_eq!(refused.status(), 400, "{consumers}");
    }
    let metadata = json!({"main_module": "worker.wasm", "consumers": [{"queue": "other"}]});
    let refused = server.upload_with(&alice, "plain", &guest("hello"), metadata);
    let message = expect_error(refused, 400, "bad_request");
    assert!(message.contains("queue-handler"), "{message}");
    for name in ["second", "plain"] {
        let missing = server
            .request(Method::GET, &format!("/script/{name}"))
            .header("x-customer-token", &alice)
            .send()
            .unwrap();
        expect_error(missing, 404, "script_not_found");
    }
}

#[test]
fn the_cli_lists_shows_and_purges_queues() {
    let server = Server::start();
    let (id, token) = server.create_customer("acme");
    assert_eq!(upload(&server, &token, "producer", json!([])).status(), 201);
    assert_eq!(
        post(&server, "/dispatch/producer/send?n=3&prefix=c"),
        (200, "sent 3".into())
    );
    let json_of = |args: &[&str]| -> Value {
        let out = server.cli(args);
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let listed = json_of(&["queues", "list", "--json"]);
    assert_eq!(
        listed,
        json!([{"owner": id, "queue": "jobs", "messages": 3, "ready": 3, "consumer": null}])
    );
    let shown = json_of(&["queues", "show", "jobs", "--customer", &id, "--json"]);
    assert_eq!(
        (shown["messages"].as_u64(), shown["consumer"].is_null()),
        (Some(3), true)
    );
    let purged = json_of(&["queues", "purge", "jobs", "--customer", &id, "--json"]);
    assert_eq!(purged["deleted"], 3);
    assert_eq!(json_of(&["queues", "list", "--json"]), json!([]));
}

#[test]
fn a_queue_and_a_customers_queues_are_bounded_and_a_refused_send_sends_nothing() {
    let server =
        Server::start_with_config("max_queue_backlog = 5\nmax_queue_bytes_per_customer = 1000\n");
    let (id, token) = server.create_customer("acme");
    let (_, other) = server.create_customer("other");
    assert_eq!(upload(&server, &token, "producer", json!([])).status(), 201);
    assert_eq!(upload(&server, &other, "theirs", json!([])).status(), 201);
    let held = || -> u64 {
        let out = server.cli(&["queues", "show", "jobs", "--customer", &id, "--json"]);
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["messages"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        post(&server, "/dispatch/producer/send?n=5&prefix=a"),
        (200, "sent 5".into())
    );
    let (status, body) = post(&server, "/dispatch/producer/send?n=1&prefix=x");
    assert_eq!(status, 400);
    assert!(body.contains("holds 5 messages"), "{body}");
    let (status, _) = post(&server, "/dispatch/producer/send-batch?n=3&prefix=y");
    assert_eq!(status, 400);
    assert_eq!(held(), 5);
    // Another customer's queue of the same name is not full.
    assert_eq!(
        post(&server, "/dispatch/theirs/send?n=5&prefix=t"),
        (200, "sent 5".into())
    );

    // Bytes, all of a customer's queues together.
    let server = Server::start_with_config("max_queue_bytes_per_customer = 6\n");
    let (_, token) = server.create_customer("acme");
    assert_eq!(upload(&server, &token, "producer", json!([])).status(), 201);
    assert_eq!(
        post(&server, "/dispatch/producer/send?n=3&prefix=b"),
        (200, "sent 3".into())
    );
    let (status, body) = post(&server, "/dispatch/producer/send?n=1&prefix=c");
    assert_eq!(status, 400);
    assert!(body.contains("hold 6 bytes"), "{body}");
}

/// The platform uses queues: support's ticket notifications go through its own queue,
/// and its consumer writes them to the ticket's outbox.
#[test]
fn supports_ticket_notifications_go_through_its_queue() {
    use crate::platform_client::{As, call, log_in, sign_up};

    let server = Server::start_with_platform();
    sign_up(&server, "user@example.com");
    sign_up(&server, "agent@example.com");
    let out = server.cli(&["platform", "set-role", "agent@example.com", "admin"]);
    assert!(out.status.success(), "{out:?}");
    let (user, agent) = (
        log_in(&server, "user@example.com"),
        log_in(&server, "agent@example.com"),
    );
    let (user, agent) = (As::Cookie(&user), As::Cookie(&agent));

    let ticket = json!({"subject": "Help", "body": "It broke"});
    let (status, opened) = call(&server, Method::POST, "/tickets", user, Some(ticket));
    assert_eq!(status, 201, "{opened}");
    let id = opened["data"]["ticket"]["id"].as_str().unwrap().to_string();
    let kinds = || -> Vec<String> {
        let (_, shown) = call(&server, Method::GET, &format!("/tickets/{id}"), user, None);
        shown["data"]["notifications"]
            .as_array()
            .map(|n| {
                n.iter()
                    .map(|n| n["kind"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        eventually(Duration::from_secs(20), || kinds() == ["ticket_opened"]),
        "{:?}",
        kinds()
    );

    let reply = json!({"body": "Fixed"});
    let (status, answer) = call(
        &server,
        Method::POST,
        &format!("/tickets/{id}/comments"),
        agent,
        Some(reply),
    );
    assert_eq!(status, 201, "{answer}");
    assert!(
        eventually(Duration::from_secs(20), || kinds()
            == ["ticket_opened", "admin_replied"]),
        "{:?}",
        kinds()
    );
}

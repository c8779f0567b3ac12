//! Per-script limits: a CPU loop, memory bombs, unbounded recursion, a guest asleep in a
//! host call, too many random bytes asked for at once, too many subrequests and too many
//! requests at once each get their own answer, while another tenant's script keeps
//! answering. Limits set with the CLI apply to the next request of the running server; a
//! config asking for more instances than the address space holds is refused at start.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Server, eventually, expect_error, guest, is_error, refused_config};
use crate::upstream::Upstream;

/// `path?key=value...` with the values percent-encoded.
pub fn with_query(path: &str, params: &[(&str, &str)]) -> String {
    let url = reqwest::Url::parse_with_params(&format!("http://x{path}"), params).unwrap();
    format!("{}?{}", url.path(), url.query().unwrap_or_default())
}

/// A server where customer `acme` owns the `limits` test guest as `app` and customer
/// `bystander` owns `hello`; returns acme's token.
pub fn two_tenants(server: &Server) -> String {
    let (_, acme) = server.create_customer("acme");
    assert_eq!(server.upload(&acme, "app", &guest("limits")).status(), 201);
    let (_, bystander) = server.create_customer("bystander");
    assert_eq!(
        server.upload(&bystander, "hello", &guest("hello")).status(),
        201
    );
    acme
}

fn set_limits(server: &Server, args: &[&str]) {
    let mut command = vec!["limits", "set", "app"];
    command.extend_from_slice(args);
    let out = server.cli(&command);
    assert!(out.status.success(), "limits set: {out:?}");
}

fn hello_answers(server: &Server) -> bool {
    server.get("/dispatch/hello/").status() == 200
}

#[test]
fn a_cpu_loop_is_stopped_while_another_tenant_keeps_answering() {
    let server = Server::start();
    two_tenants(&server);
    // Under the default limit (50 ms), a short burst of work is fine.
    assert_eq!(server.get("/dispatch/app/spin-ms?ms=5").status(), 200);

    let loops: Vec<_> = (0..4)
        .map(|_| {
            let url = server.url("/dispatch/app/spin");
            std::thread::spawn(move || reqwest::blocking::get(url).unwrap())
        })
        .collect();
    for _ in 0..10 {
        assert!(hello_answers(&server), "the bystander must keep answering");
    }
    for looping in loops {
        let message = expect_error(looping.join().unwrap(), 503, "exceeded_cpu");
        assert!(message.contains("CPU"), "{message}");
    }

    // A higher limit set with the CLI applies to the next request.
    assert_eq!(server.get("/dispatch/app/spin-ms?ms=120").status(), 503);
    set_limits(&server, &["--cpu-ms", "1000"]);
    assert!(eventually(Duration::from_secs(5), || server
        .get("/dispatch/app/spin-ms?ms=120")
        .status()
        == 200));
    assert!(server.metric("dispatcher_requests_total{outcome=\"exceeded_cpu\"}") >= 5);
}

#[test]
fn memory_bombs_are_refused_at_the_scripts_limit() {
    let server = Server::start();
    two_tenants(&server);
    // CPU is generous so that touching every page never hits the CPU limit first.
    set_limits(&server, &["--memory-mb", "32", "--cpu-ms", "2000"]);
    let show = server.cli(&["limits", "show", "app", "--json"]);
    let shown: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(shown["memory_mb"]["value"], 32);
    assert_eq!(shown["memory_mb"]["default"], false);
    assert_eq!(shown["subrequests"]["value"], 50);
    assert_eq!(shown["subrequests"]["default"], true);

    // Polled by code: under the old 50 ms CPU limit, touching 48 MiB may be a 503 too.
    assert!(eventually(Duration::from_secs(5), || is_error(
        server.get("/dispatch/app/grow-big?mb=48"),
        503,
        "exceeded_memory"
    )));
    expect_error(
        server.get("/dispatch/app/grow-big?mb=48"),
        503,
        "exceeded_memory",
    );
    expect_error(
        server.get("/dispatch/app/grow-many?mb=48"),
        503,
        "exceeded_memory",
    );
    assert!(hello_answers(&server));
    assert_eq!(server.get("/dispatch/app/grow-many?mb=8").status(), 200);

    set_limits(&server, &["--memory-mb", "96"]);
    assert!(eventually(Duration::from_secs(5), || server
        .get("/dispatch/app/grow-big?mb=48")
        .status()
        == 200));
    // Above the server's ceiling is refused by the CLI, and nothing changes.
    let refused = server.cli(&["limits", "set", "app", "--memory-mb", "100000"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("ceiling"));
}

#[test]
fn unbounded_recursion_is_a_script_error_and_the_server_keeps_serving() {
    let server = Server::start();
    two_tenants(&server);
    expect_error(server.get("/dispatch/app/recurse"), 500, "script_error");
    assert!(hello_answers(&server));
    assert_eq!(server.get("/dispatch/app/spin-ms?ms=1").status(), 200);
}

#[test]
fn one_host_call_may_ask_for_at_most_64_kib_of_random_bytes() {
    let server = Server::start();
    two_tenants(&server);
    // Zeroing the 64 MiB buffer asked for below must not hit the CPU limit first on a
    // busy machine.
    set_limits(&server, &["--cpu-ms", "1000"]);
    assert!(eventually(Duration::from_secs(5), || server
        .get("/dispatch/app/spin-ms?ms=120")
        .status()
        == 200));
    let small = server.get("/dispatch/app/random?bytes=65536");
    assert_eq!(small.status(), 200);
    assert_eq!(small.text().unwrap(), "got 65536 random bytes");
    // Above the cap the call traps before the host generates anything.
    for bytes in [65537, 64 << 20] {
        let path = format!("/dispatch/app/random?bytes={bytes}");
        expect_error(server.get(&path), 500, "script_error");
        assert!(hello_answers(&server));
    }
    assert_eq!(server.get("/dispatch/app/random?bytes=16").status(), 200);
}

#[test]
fn a_guest_asleep_in_a_host_call_is_cut_off_at_its_wall_time() {
    let server = Server::start();
    two_tenants(&server);
    set_limits(&server, &["--wall-ms", "300"]);
    assert!(eventually(Duration::from_secs(5), || is_error(
        server.get("/dispatch/app/sleep?ms=3000"),
        503,
        "exceeded_wall_time"
    )));
    expect_error(
        server.get("/dispatch/app/sleep?ms=3000"),
        503,
        "exceeded_wall_time",
    );
    assert_eq!(server.get("/dispatch/app/sleep?ms=10").status(), 200);
    assert!(hello_answers(&server));
}

#[test]
fn the_subrequest_past_the_limit_fails_inside_the_guest() {
    let upstream = Upstream::start();
    let server = Server::start_with_config("outbound_allow_private = [\"127.0.0.0/8\"]\n");
    two_tenants(&server);
    set_limits(&server, &["--subrequests", "3"]);
    let path = with_query(
        "/dispatch/app/fetch-many",
        &[("url", &upstream.url("/count")), ("n", "5")],
    );
    assert!(eventually(Duration::from_secs(5), || {
        let result: Value = server.get(&path).json().unwrap();
        result["succeeded"] == 3
    }));
    let result: Value = server.get(&path).json().unwrap();
    assert_eq!(result["succeeded"], 3, "{result}");
    let error = result["first_error"].as_str().unwrap();
    assert!(error.contains("subrequest limit of 3"), "{error}");
}

#[test]
fn too_many_requests_at_once_get_overloaded_with_retry_after() {
    // One tenant may fill the whole pool here: this is the pool's limit, not the share's.
    let server = Server::start_with_config("max_instances = 2\nmax_instances_per_tenant = 2\n");
    two_tenants(&server);
    let sleepers: Vec<_> = (0..2)
        .map(|_| {
            let url = server.url("/dispatch/app/sleep?ms=6000");
            std::thread::spawn(move || {
                reqwest::blocking::get(url)
                    .map(|response| response.status().as_u16())
                    .map_err(|error| format!("{error:?}"))
            })
        })
        .collect();
    let mut refusal = None;
    eventually(Duration::from_secs(5), || {
        let response = server.get("/dispatch/hello/");
        let refused = response.status() == 503;
        if refused {
            refusal = Some(response);
        }
        refused
    });
    // A sleeper whose connection the server closed (seen once, under the whole suite's
    // load) shows here with the server's log.
    let refusal = refusal.unwrap_or_else(|| {
        panic!(
            "a third request must be refused while two run; server log:\n{}",
            server.log()
        )
    });
    assert_eq!(refusal.headers()["retry-after"], "1");
    expect_error(refusal, 503, "overloaded");
    for sleeper in sleepers {
        assert_eq!(
            sleeper.join().unwrap(),
            Ok(200),
            "server log:\n{}",
            server.log()
        );
    }
    assert!(
        hello_answers(&server),
        "served again once the others finished"
    );
}

#[test]
fn a_service_callee_gets_the_lower_of_its_own_limits_and_what_its_caller_has_left() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    assert_eq!(
        server.upload(&token, "back", &guest("limits")).status(),
        201
    );
    let metadata = serde_json::json!({
        "bindings": [{"type": "service", "name": "BACKEND", "service": "back"}]
    });
    let front = server.upload_with(&token, "front", &guest("service"), metadata);
    assert_eq!(front.status(), 201);
    let spin = "/dispatch/front/spin-ms?ms=150";

    // The callee may use 1 s, but its caller has only 50 ms: the callee is stopped there,
    // and since a callee's CPU counts against its caller too, so is the caller.
    let out = server.cli(&["limits", "set", "back", "--cpu-ms", "1000"]);
    assert!(out.status.success(), "{out:?}");
    assert!(eventually(Duration::from_secs(5), || {
        server.get("/dispatch/back/spin-ms?ms=150").status() == 200
    }));
    let exceeded = "dispatcher_requests_total{outcome=\"exceeded_cpu\"}";
    let before = server.metric(exceeded);
    expect_error(server.get(spin), 503, "exceeded_cpu");
    assert_eq!(
        server.metric(exceeded) - before,
        2,
        "callee and caller both stopped"
    );

    // With a caller allowed 1 s as well, the same call succeeds.
    let out = server.cli(&["limits", "set", "front", "--cpu-ms", "1000"]);
    assert!(out.status.success(), "{out:?}");
    assert!(eventually(Duration::from_secs(5), || server
        .get(spin)
        .status()
        == 200));
}

#[test]
fn the_memory_limit_counts_every_memory_of_the_instance_together() {
    // The default template composed with the platform module has two linear memories of
    // 17 pages (1.06 MiB) each. Under a 2 MiB limit each fits alone; together they do not.
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    assert_eq!(
        server.upload(&token, "greeter", &guest("hello")).status(),
        201
    );
    assert_eq!(server.get("/dispatch/greeter/").status(), 200);

    let out = server.cli(&["limits", "set", "greeter", "--memory-mb", "2"]);
    assert!(out.status.success(), "{out:?}");
    assert!(eventually(Duration::from_secs(5), || is_error(
        server.get("/dispatch/greeter/"),
        503,
        "exceeded_memory"
    )));
    expect_error(server.get("/dispatch/greeter/"), 503, "exceeded_memory");

    let out = server.cli(&["limits", "set", "greeter", "--memory-mb", "3"]);
    assert!(out.status.success(), "{out:?}");
    assert!(eventually(Duration::from_secs(5), || server
        .get("/dispatch/greeter/")
        .status()
        == 200));
}

#[test]
fn all_guests_together_stay_within_the_servers_memory_budget() {
    // Room for the stack of one instance (2 MiB) and one memory of the composed template
    // (1.06 MiB), but not its second.
    let server = Server::start_with_config("guest_memory_total_mb = 4\n");
    let (_, token) = server.create_customer("acme");
    assert_eq!(
        server.upload(&token, "greeter", &guest("hello")).status(),
        201
    );
    expect_error(server.get("/dispatch/greeter/"), 503, "exceeded_memory");
    assert_eq!(server.get("/healthz").status(), 200);
}

#[test]
fn memory_is_limited_to_what_the_cpu_limit_could_touch() {
    let server = Server::start();
    two_tenants(&server);
    // One `memory.fill` over 1 GiB cannot be interrupted: 50 ms of CPU is too little.
    let refused = server.cli(&["limits", "set", "app", "--memory-mb", "1024"]);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("needs at least 256 ms of CPU"), "{why}");
    set_limits(&server, &["--memory-mb", "1024", "--cpu-ms", "300"]);
    // Lowering the CPU limit alone is checked against the memory already given.
    let refused = server.cli(&["limits", "set", "app", "--cpu-ms", "100"]);
    assert!(!refused.status.success());
    let shown = server.cli(&["limits", "show", "app", "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["cpu_ms"]["value"], 300);
    assert_eq!(shown["memory_mb"]["value"], 1024);
}

#[test]
fn more_instances_than_the_address_space_holds_are_refused_at_start() {
    for bad in ["max_instances = 0", "max_instances = 3001"] {
        let stderr = refused_config(&format!("first_party = false\n{bad}\n"));
        assert!(
            stderr.contains("max_instances must be 1 to 3000"),
            "{bad}: {stderr}"
        );
    }
}

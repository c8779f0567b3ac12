//! Versions and gradual deployments: every upload keeps an immutable version, a
//! deployment splits traffic between at most two of them by percentage (sticky with a
//! key, bypassed by the owner's override), a rollback returns to a kept version without
//! compiling, and versions, the live split, tails, usage, restarts, gc and the CLI all
//! agree on which version ran.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use reqwest::Method;
use reqwest::blocking::{RequestBuilder, Response};
use serde_json::{Value, json};

use crate::harness::{Server, envelope, eventually, expect_error, guest};
use crate::observability::{follow, next_event};
use crate::platform_module::HELLO;

/// An id no version has (ids are 12 lowercase hex characters).
const UNKNOWN_ID: &str = "000000000000";

/// Which of the two versions answered: `"v1"` (the hello guest, its text) or `"v2"`
/// (the echo guest, a JSON echo with `x-echo: wstd`). Reads the whole body.
fn version_of(response: Response) -> &'static str {
    let status = response.status();
    let echo = response
        .headers()
        .get("x-echo")
        .map(|value| value.to_str().unwrap().to_string());
    let body = response.text().expect("the whole body");
    assert_eq!(status, 200, "{body}");
    match echo.as_deref() {
        Some("wstd") => {
            let seen: Value = serde_json::from_str(&body).expect("the echo answers JSON");
            assert!(seen["path"].is_string(), "{seen}");
            "v2"
        }
        None if body == HELLO => "v1",
        _ => panic!("neither version answered: x-echo {echo:?}, body {body:?}"),
    }
}

/// The version that answers `GET path`.
fn served(server: &Server, path: &str) -> &'static str {
    version_of(server.get(path))
}

/// How many of `n` requests to `path` each version answered: (v1, v2).
fn tally(server: &Server, path: &str, n: usize) -> (usize, usize) {
    let mut counts = (0, 0);
    for _ in 0..n {
        match served(server, path) {
            "v1" => counts.0 += 1,
            _ => counts.1 += 1,
        }
    }
    counts
}

/// The version that answers `GET path` with `X-Version-Key: key`.
fn served_with_key(server: &Server, path: &str, key: &str) -> &'static str {
    version_of(
        server
            .request(Method::GET, path)
            .header("x-version-key", key)
            .send()
            .expect("GET with a version key"),
    )
}

/// A request as the customer of `token`.
fn as_customer(server: &Server, token: &str, method: Method, path: &str) -> RequestBuilder {
    server
        .request(method, path)
        .header("x-customer-token", token)
}

/// `data` of a successful `GET path` as the customer of `token`.
fn get_data(server: &Server, token: &str, path: &str) -> Value {
    let response = as_customer(server, token, Method::GET, path)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    envelope(response, true)["data"].clone()
}

/// A raw upload to `path` (which may carry `?deploy=false`) with extra `headers`.
fn upload_raw(
    server: &Server,
    token: &str,
    path: &str,
    wasm: &[u8],
    headers: &[(&str, &str)],
) -> Response {
    let mut request =
        as_customer(server, token, Method::PUT, path).header("content-type", "application/wasm");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(wasm.to_vec()).send().expect("PUT script")
}

/// The id of the version an upload created, after checking the upload's status.
fn created_version(response: Response, status: u16) -> String {
    assert_eq!(response.status(), status);
    let id = envelope(response, true)["data"]["version"]["id"]
        .as_str()
        .expect("the upload answers its version")
        .to_string();
    assert_version_id(&id);
    id
}

/// Uploads `name` as v1 (deployed) and then v2 with `deploy=false`; returns their ids.
fn two_versions(server: &Server, token: &str, name: &str) -> (String, String) {
    let v1 = created_version(server.upload(token, name, &guest("hello")), 201);
    let path = format!("/script/{name}?deploy=false");
    let v2 = created_version(
        upload_raw(server, token, &path, &guest("echo-wstd"), &[]),
        200,
    );
    (v1, v2)
}

fn assert_version_id(id: &str) {
    assert!(
        id.len() == 12 && id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
        "a version id is 12 lowercase hex characters: {id:?}"
    );
}

/// The body of `POST /script/{name}/deployments` for `split`.
fn split_body<S: AsRef<str>>(split: &[(S, i64)]) -> Value {
    let versions: Vec<Value> = split
        .iter()
        .map(|(id, percentage)| {
            let id: &str = id.as_ref();
            json!({ "version_id": id, "percentage": percentage })
        })
        .collect();
    json!({ "strategy": "percentage", "versions": versions })
}

/// The `versions` of a deployment record for `split`.
fn split_of<S: AsRef<str>>(split: &[(S, i64)]) -> Value {
    split_body(split)["versions"].clone()
}

fn post_deployment(server: &Server, token: &str, name: &str, body: &Value) -> Response {
    as_customer(
        server,
        token,
        Method::POST,
        &format!("/script/{name}/deployments"),
    )
    .json(body)
    .send()
    .unwrap()
}

/// Deploys `split` to `name`; returns the new deployment record.
fn deploy<S: AsRef<str>>(server: &Server, token: &str, name: &str, split: &[(S, i64)]) -> Value {
    let response = post_deployment(server, token, name, &split_body(split));
    assert_eq!(response.status(), 201);
    let deployment = envelope(response, true)["data"].clone();
    assert_eq!(deployment["versions"], split_of(split), "{deployment}");
    assert_eq!(deployment["strategy"], "percentage", "{deployment}");
    assert_eq!(deployment["source"], "api", "{deployment}");
    deployment
}

/// `POST /script/{name}/rollback` with `body` (none: no body at all).
fn rollback(server: &Server, token: &str, name: &str, body: Option<Value>) -> Response {
    let request = as_customer(
        server,
        token,
        Method::POST,
        &format!("/script/{name}/rollback"),
    );
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().unwrap()
}

/// A rollback that succeeds to `to` at 100%; returns the deployment record.
fn rolled_back(server: &Server, token: &str, name: &str, body: Option<Value>, to: &str) -> Value {
    let response = rollback(server, token, name, body);
    assert_eq!(response.status(), 201);
    let deployment = envelope(response, true)["data"].clone();
    assert_eq!(deployment["source"], "rollback", "{deployment}");
    assert_eq!(deployment["strategy"], "percentage", "{deployment}");
    assert_eq!(
        deployment["versions"],
        split_of(&[(to, 100)]),
        "{deployment}"
    );
    deployment
}

/// The ids of a list's `items`, in order.
fn item_ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("a list has items")
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect()
}

/// `GET /dispatch/{name}/` with `X-Version-Override: id`, as the customer of `token`
/// when one is given.
fn with_override(server: &Server, name: &str, id: &str, token: Option<&str>) -> Response {
    let request = server
        .request(Method::GET, &format!("/dispatch/{name}/"))
        .header("x-version-override", id);
    let request = match token {
        Some(token) => request.header("x-customer-token", token),
        None => request,
    };
    request.send().unwrap()
}

#[test]
fn an_undeployed_version_serves_nothing_until_its_owner_overrides_to_it() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let (_, other) = server.create_customer("other");

    let response = server.upload(&token, "app", &guest("hello"));
    assert_eq!(response.status(), 201);
    let first = envelope(response, true)["data"].clone();
    assert_eq!(first["name"], "app");
    let v1 = first["version"]["id"].as_str().unwrap().to_string();
    assert_version_id(&v1);
    assert_eq!(first["version"]["number"], 1);
    assert_eq!(first["version"]["size"], guest("hello").len());
    assert_eq!(first["version"]["sha256"], first["sha256"]);
    assert_eq!(first["version"]["message"], Value::Null);
    assert_eq!(first["version"]["tag"], Value::Null);
    assert_eq!(first["deployment"]["source"], "upload");
    assert_eq!(first["deployment"]["strategy"], "percentage");
    assert_eq!(first["deployment"]["versions"], split_of(&[(&v1, 100)]));

    let response = upload_raw(
        &server,
        &token,
        "/script/app?deploy=false",
        &guest("echo-wstd"),
        &[("x-version-message", "second"), ("x-version-tag", "beta")],
    );
    assert_eq!(response.status(), 200);
    let second = envelope(response, true)["data"].clone();
    let v2 = second["version"]["id"].as_str().unwrap().to_string();
    assert_version_id(&v2);
    assert_ne!(v1, v2);
    assert_eq!(second["version"]["number"], 2);
    assert_eq!(second["version"]["size"], guest("echo-wstd").len());
    assert_ne!(second["version"]["sha256"], first["version"]["sha256"]);
    // What is live has not changed.
    assert_eq!(second["deployment"]["id"], first["deployment"]["id"]);
    assert_eq!(second["deployment"]["versions"], split_of(&[(&v1, 100)]));

    for _ in 0..20 {
        assert_eq!(served(&server, "/dispatch/app/"), "v1");
    }

    // The owner reaches either kept version, deployed or not.
    assert_eq!(
        version_of(with_override(&server, "app", &v2, Some(token.as_str()))),
        "v2"
    );
    assert_eq!(
        version_of(with_override(&server, "app", &v1, Some(token.as_str()))),
        "v1"
    );
    expect_error(
        with_override(&server, "app", &v2, None),
        401,
        "unauthorized",
    );
    expect_error(
        with_override(&server, "app", &v2, Some(other.as_str())),
        401,
        "unauthorized",
    );
    expect_error(
        with_override(&server, "app", UNKNOWN_ID, Some(token.as_str())),
        404,
        "version_not_found",
    );
    // The override ran once and changed nothing.
    assert_eq!(served(&server, "/dispatch/app/"), "v1");

    let versions = get_data(&server, &token, "/script/app/versions?page=1&per_page=20");
    assert_eq!(item_ids(&versions), [v2.clone(), v1.clone()]);
    assert_eq!(versions["total"], 2);
    assert_eq!(versions["page"], 1);
    assert_eq!(versions["per_page"], 20);
    let items = versions["items"].as_array().unwrap();
    assert_eq!(items[0]["number"], 2);
    assert_eq!(items[1]["number"], 1);
    assert_eq!(items[0]["message"], "second");
    assert_eq!(items[0]["tag"], "beta");
    assert_eq!(items[1]["message"], Value::Null);
    assert_eq!(items[1]["tag"], Value::Null);
    assert_eq!(items[0], second["version"]);

    // Pages of one, newest first.
    let page = |n: u32| {
        get_data(
            &server,
            &token,
            &format!("/script/app/versions?page={n}&per_page=1"),
        )
    };
    let first_page = page(1);
    assert_eq!(item_ids(&first_page), std::slice::from_ref(&v2));
    assert_eq!(first_page["total"], 2);
    assert_eq!(item_ids(&page(2)), std::slice::from_ref(&v1));

    assert_eq!(
        get_data(&server, &token, &format!("/script/app/versions/{v2}")),
        items[0]
    );
    let unknown = as_customer(
        &server,
        &token,
        Method::GET,
        &format!("/script/app/versions/{UNKNOWN_ID}"),
    )
    .send()
    .unwrap();
    expect_error(unknown, 404, "version_not_found");
    let foreign = as_customer(&server, &other, Method::GET, "/script/app/versions")
        .send()
        .unwrap();
    expect_error(foreign, 404, "script_not_found");

    let deployments = get_data(&server, &token, "/script/app/deployments");
    assert_eq!(deployments["total"], 1);
    assert_eq!(
        item_ids(&deployments),
        [first["deployment"]["id"].as_str().unwrap()]
    );
}

#[test]
fn a_first_upload_that_would_serve_nothing_is_refused() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let response = upload_raw(
        &server,
        &token,
        "/script/fresh?deploy=false",
        &guest("hello"),
        &[],
    );
    expect_error(response, 400, "bad_request");

    let read = as_customer(&server, &token, Method::GET, "/script/fresh")
        .send()
        .unwrap();
    expect_error(read, 404, "script_not_found");
    expect_error(server.get("/dispatch/fresh/"), 404, "script_not_found");
    // The name is still free: a deploying upload creates the script as version 1.
    let v1 = server.upload(&token, "fresh", &guest("hello"));
    assert_eq!(v1.status(), 201);
    assert_eq!(envelope(v1, true)["data"]["version"]["number"], 1);
}

#[test]
fn a_90_10_split_sends_a_tenth_of_requests_to_v2_and_a_key_sticks_to_one_version() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let (v1, v2) = two_versions(&server, &token, "app");
    deploy(&server, &token, "app", &[(&v1, 90), (&v2, 10)]);

    let (ones, twos) = tally(&server, "/dispatch/app/", 2000);
    assert_eq!(ones + twos, 2000);
    assert!(
        (140..=260).contains(&twos),
        "{twos} of 2,000 requests went to v2 (expected 7–13%)"
    );

    let by_key: Vec<(String, &str)> = (0..200)
        .map(|k| {
            let key = format!("user-{k}");
            let version = served_with_key(&server, "/dispatch/app/", &key);
            (key, version)
        })
        .collect();
    let on = |version: &str| {
        by_key
            .iter()
            .find(|(_, v)| *v == version)
            .unwrap_or_else(|| panic!("none of 200 keys landed on {version}"))
            .0
            .clone()
    };
    // A key that landed on v2 (a tenth of the traffic) and one on v1 stay there.
    for (key, version) in [(on("v2"), "v2"), (on("v1"), "v1")] {
        for _ in 0..20 {
            assert_eq!(
                served_with_key(&server, "/dispatch/app/", &key),
                version,
                "key {key}"
            );
        }
    }
}

#[test]
fn a_rollback_returns_traffic_to_the_previous_version_without_compiling() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let (v1, v2) = two_versions(&server, &token, "app");

    // One deployment: nothing to roll back to, and nothing changes.
    expect_error(rollback(&server, &token, "app", None), 400, "bad_request");
    assert_eq!(
        get_data(&server, &token, "/script/app/deployments")["total"],
        1
    );

    deploy(&server, &token, "app", &[(&v2, 100)]);
    assert_eq!(served(&server, "/dispatch/app/"), "v2");
    let compiles = server.metric("dispatcher_compiles_total");

    // No body: the first version of the previous deployment, on the very next request.
    let back = rolled_back(&server, &token, "app", None, &v1);
    for _ in 0..20 {
        assert_eq!(served(&server, "/dispatch/app/"), "v1");
    }
    assert_eq!(server.metric("dispatcher_compiles_total"), compiles);

    let deployments = get_data(&server, &token, "/script/app/deployments");
    assert_eq!(deployments["total"], 3);
    let items = deployments["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0], back);
    let sources: Vec<&Value> = items.iter().map(|d| &d["source"]).collect();
    assert_eq!(
        sources,
        [&json!("rollback"), &json!("api"), &json!("upload")]
    );

    // To a named version.
    rolled_back(
        &server,
        &token,
        "app",
        Some(json!({ "version_id": v2 })),
        &v2,
    );
    for _ in 0..20 {
        assert_eq!(served(&server, "/dispatch/app/"), "v2");
    }
    // `{}` is no body: back to what the rollback to v1 deployed.
    rolled_back(&server, &token, "app", Some(json!({})), &v1);
    for _ in 0..20 {
        assert_eq!(served(&server, "/dispatch/app/"), "v1");
    }
    assert_eq!(server.metric("dispatcher_compiles_total"), compiles);
    assert_eq!(
        get_data(&server, &token, "/script/app/deployments")["total"],
        5
    );
}

#[test]
fn bad_deployment_requests_are_refused_and_change_nothing() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let (_, bob) = server.create_customer("bob");
    let (v1, v2) = two_versions(&server, &token, "app");
    let v3 = created_version(
        upload_raw(
            &server,
            &token,
            "/script/app?deploy=false",
            &guest("trap"),
            &[],
        ),
        200,
    );
    let elsewhere = created_version(server.upload(&token, "other", &guest("hello")), 201);
    let live = get_data(&server, &token, "/script/app/deployments");
    assert_eq!(live["total"], 1);

    let unchanged = |what: &str| {
        let now = get_data(&server, &token, "/script/app/deployments");
        assert_eq!(now["total"], 1, "{what}: {now}");
        assert_eq!(item_ids(&now), item_ids(&live), "{what}");
        for _ in 0..5 {
            assert_eq!(served(&server, "/dispatch/app/"), "v1", "{what}");
        }
    };

    let bad_requests: [(&str, Value); 7] = [
        ("not summing to 100", split_body(&[(&v1, 90), (&v2, 20)])),
        ("one version short of 100", split_body(&[(&v1, 90)])),
        (
            "three versions",
            split_body(&[(&v1, 40), (&v2, 30), (&v3, 30)]),
        ),
        ("no versions", split_body::<&str>(&[])),
        (
            "the same version twice",
            split_body(&[(&v1, 50), (&v1, 50)]),
        ),
        ("a percentage of 0", split_body(&[(&v1, 100), (&v2, 0)])),
        ("another script's version", split_body(&[(&elsewhere, 100)])),
    ];
    for (what, body) in &bad_requests {
        let message = expect_error(
            post_deployment(&server, &token, "app", body),
            400,
            "bad_request",
        );
        if *what == "another script's version" {
            assert!(message.contains(&elsewhere), "{what}: {message}");
        }
        unchanged(what);
    }

    let unknown = post_deployment(&server, &token, "app", &split_body(&[(UNKNOWN_ID, 100)]));
    expect_error(unknown, 404, "version_not_found");
    unchanged("an unknown version");

    let foreign = post_deployment(&server, &bob, "app", &split_body(&[(&v2, 100)]));
    expect_error(foreign, 404, "script_not_found");
    unchanged("another customer's request");

    // The other script was not touched either.
    let other = get_data(&server, &token, "/script/other/deployments");
    assert_eq!(other["total"], 1);
    assert_eq!(
        other["items"][0]["versions"],
        split_of(&[(&elsewhere, 100)])
    );
}

#[test]
fn tails_and_usage_say_which_version_ran() {
    let server = Server::start_with_config("usage_flush_ms = 200");
    let (_, token) = server.create_customer("acme");
    let (v1, v2) = two_versions(&server, &token, "app");
    deploy(&server, &token, "app", &[(&v1, 50), (&v2, 50)]);
    let id_of = |version: &str| {
        if version == "v1" {
            v1.clone()
        } else {
            v2.clone()
        }
    };

    let events = follow(&server, &token, "app");
    let mut answered: HashMap<String, String> = HashMap::new();
    for i in 0..40 {
        let path = format!("/n{i}");
        let version = served(&server, &format!("/dispatch/app{path}"));
        answered.insert(path, id_of(version));
    }
    let both: BTreeSet<String> = [v1.clone(), v2.clone()].into();
    let answering: BTreeSet<String> = answered.values().cloned().collect();
    assert_eq!(answering, both, "a 50/50 split over 40 requests ran both");

    let mut in_tail = BTreeSet::new();
    for _ in 0..40 {
        let event = next_event(&events);
        let path = event["path"].as_str().expect("an event has a path");
        assert_eq!(event["version_id"], answered[path].as_str(), "{event}");
        in_tail.insert(event["version_id"].as_str().unwrap().to_string());
    }
    assert_eq!(in_tail, both);

    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for id in answered.values() {
        *expected.entry(id.clone()).or_default() += 1;
    }
    let usage = |query: &str| -> Vec<Value> {
        let data = get_data(&server, &token, &format!("/usage?since=1h{query}"));
        data["scripts"]
            .as_array()
            .expect("usage lists scripts")
            .iter()
            .filter(|entry| entry["script"] == "app")
            .cloned()
            .collect()
    };
    let per_version = || -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for entry in usage("&group_by=version") {
            let id = entry["version_id"]
                .as_str()
                .expect("an entry per version")
                .to_string();
            let invocations = entry["total"]["invocations"].as_u64().unwrap();
            assert!(
                counts.insert(id, invocations).is_none(),
                "one entry per version"
            );
        }
        counts
    };
    assert!(
        eventually(Duration::from_secs(10), || per_version() == expected),
        "usage by version {:?}, answered {expected:?}",
        per_version()
    );
    // Without group_by, one entry for the script, counting both versions' runs.
    let per_script = usage("");
    assert_eq!(per_script.len(), 1, "{per_script:?}");
    assert_eq!(per_script[0]["total"]["invocations"], 40);

    // `/metrics` counts the runs of each version under the split.
    let metrics = server.get("/metrics").text().unwrap();
    for (id, runs) in &expected {
        let series = format!(
            "dispatcher_split_requests_total{{namespace=\"customers\",script=\"app\",\
             version=\"{id}\",outcome=\"ok\"}} {runs}"
        );
        assert!(
            metrics.lines().any(|line| line == series),
            "{series} in:\n{metrics}"
        );
    }
}

#[test]
fn a_restart_keeps_versions_deployments_and_the_live_split() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let (v1, v2) = two_versions(&server, &token, "app");
    deploy(&server, &token, "app", &[(&v1, 50), (&v2, 50)]);
    let versions = get_data(&server, &token, "/script/app/versions");
    let deployments = get_data(&server, &token, "/script/app/deployments");
    assert_eq!(versions["total"], 2);
    assert_eq!(deployments["total"], 2);
    let (data, _temp) = server.stop();

    let server = Server::start_in(&data, &[]);
    assert_eq!(get_data(&server, &token, "/script/app/versions"), versions);
    assert_eq!(
        get_data(&server, &token, "/script/app/deployments"),
        deployments
    );
    let (ones, twos) = tally(&server, "/dispatch/app/", 40);
    assert!(ones > 0 && twos > 0, "still split: {ones} v1, {twos} v2");
    assert_eq!(
        version_of(with_override(&server, "app", &v2, Some(token.as_str()))),
        "v2"
    );
}

#[test]
fn gc_keeps_the_components_of_kept_versions_for_a_later_rollback() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let v1 = created_version(server.upload(&token, "app", &guest("hello")), 201);
    // The second upload deploys v2 to 100%; v1 is kept but serves nothing.
    let v2 = created_version(server.upload(&token, "app", &guest("echo-wstd")), 200);
    assert_eq!(served(&server, "/dispatch/app/"), "v2");

    let out = server.cli(&["gc", "--grace", "0s", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let swept: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(
        swept["blobs"], 0,
        "no kept version's component goes: {swept}"
    );
    let (data, _temp) = server.stop();

    // After a restart v1 was loaded by nothing in memory: only the store can bring it back.
    let server = Server::start_in(&data, &[]);
    assert_eq!(served(&server, "/dispatch/app/"), "v2");
    let compiles = server.metric("dispatcher_compiles_total");
    rolled_back(
        &server,
        &token,
        "app",
        Some(json!({ "version_id": v1 })),
        &v1,
    );
    for _ in 0..20 {
        assert_eq!(served(&server, "/dispatch/app/"), "v1");
    }
    assert_eq!(server.metric("dispatcher_compiles_total"), compiles);
    assert_eq!(
        version_of(with_override(&server, "app", &v2, Some(token.as_str()))),
        "v2"
    );
    let (data, _temp2) = server.stop();

    // The rollback itself was kept.
    let server = Server::start_in(&data, &[]);
    for _ in 0..20 {
        assert_eq!(served(&server, "/dispatch/app/"), "v1");
    }
    drop(_temp);
}

/// Runs the CLI with `args`; returns its one JSON document.
fn cli_json(server: &Server, args: &[&str]) -> Value {
    let out = server.cli(args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?} --json: {e}: {out:?}"))
}

#[test]
fn the_cli_lists_versions_deploys_a_split_and_rolls_back() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let (v1, v2) = two_versions(&server, &token, "app");

    let listed = cli_json(&server, &["script", "versions", "app", "--json"]);
    let listed = listed.as_array().expect("a JSON array of versions");
    let ids: Vec<&str> = listed.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [v2.as_str(), v1.as_str()]);
    let numbers: Vec<&Value> = listed.iter().map(|v| &v["number"]).collect();
    assert_eq!(numbers, [&json!(2), &json!(1)]);
    assert!(
        !server
            .cli(&["script", "versions", "nope", "--json"])
            .status
            .success()
    );

    // A split that does not sum to 100 is refused and deploys nothing.
    let bad = format!("{v1}=90,{v2}=20");
    assert!(
        !server
            .cli(&["script", "deploy-version", "app", "--split", &bad, "--json"])
            .status
            .success()
    );
    assert_eq!(
        get_data(&server, &token, "/script/app/deployments")["total"],
        1
    );

    let split = format!("{v1}=50,{v2}=50");
    let deployment = cli_json(
        &server,
        &[
            "script",
            "deploy-version",
            "app",
            "--split",
            &split,
            "--json",
        ],
    );
    assert_eq!(deployment["strategy"], "percentage", "{deployment}");
    assert_eq!(deployment["versions"], split_of(&[(&v1, 50), (&v2, 50)]));
    let live = get_data(&server, &token, "/script/app/deployments");
    assert_eq!(live["items"][0]["id"], deployment["id"]);
    // Until now only v1 served; the split reaches the running server.
    assert!(eventually(Duration::from_secs(5), || served(
        &server,
        "/dispatch/app/"
    ) == "v2"));

    let back = cli_json(&server, &["script", "rollback", "app", "--json"]);
    assert_eq!(back["source"], "rollback", "{back}");
    assert_eq!(back["versions"], split_of(&[(&v1, 100)]));
    assert!(eventually(Duration::from_secs(5), || (0..20)
        .all(|_| served(&server, "/dispatch/app/") == "v1")));

    let to = cli_json(
        &server,
        &["script", "rollback", "app", "--to", &v2, "--json"],
    );
    assert_eq!(to["source"], "rollback", "{to}");
    assert_eq!(to["versions"], split_of(&[(&v2, 100)]));
    assert!(eventually(Duration::from_secs(5), || (0..20)
        .all(|_| served(&server, "/dispatch/app/") == "v2")));
    let deployments = get_data(&server, &token, "/script/app/deployments");
    assert_eq!(deployments["total"], 4);
    assert_eq!(deployments["items"][0]["id"], to["id"]);
}

#[test]
fn multipart_annotations_set_a_versions_message_and_tag() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let metadata = json!({
        "main_module": "worker.wasm",
        "tags": ["prod"],
        "annotations": { "workers/message": "first release", "workers/tag": "v1.0.0" },
    });
    let response = server.upload_with(&token, "app", &guest("hello"), metadata);
    assert_eq!(response.status(), 201);
    let version = envelope(response, true)["data"]["version"].clone();
    assert_eq!(version["message"], "first release", "{version}");
    assert_eq!(version["tag"], "v1.0.0", "{version}");
    assert!(
        version["tags"].as_array().unwrap().contains(&json!("prod")),
        "{version}"
    );
    let id = version["id"].as_str().unwrap();
    assert_eq!(
        get_data(&server, &token, &format!("/script/app/versions/{id}")),
        version
    );

    // Annotations belong to one version: the next upload without them has none.
    let metadata = json!({ "main_module": "worker.wasm", "tags": ["prod"] });
    let response = server.upload_with(&token, "app", &guest("echo-wstd"), metadata);
    assert_eq!(response.status(), 200);
    let next = envelope(response, true)["data"]["version"].clone();
    assert_eq!(next["number"], 2);
    assert_eq!(next["message"], Value::Null, "{next}");
    assert_eq!(next["tag"], Value::Null, "{next}");
    let versions = get_data(&server, &token, "/script/app/versions");
    assert_eq!(versions["items"][1]["message"], "first release");
    assert_eq!(versions["items"][1]["tag"], "v1.0.0");
}

#[test]
fn a_customers_kept_versions_are_bounded_in_bytes_oldest_first() {
    // Room for about two of these components (each ~0.5 MB) per customer.
    let server = Server::start_with_config("max_version_bytes_per_customer = 1100000");
    let (_, token) = server.create_customer("acme");
    let (_, other_token) = server.create_customer("other");
    let v1 = created_version(server.upload(&token, "app", &guest("echo-wstd")), 201);
    let v2 = created_version(server.upload(&token, "app", &guest("vars")), 200);
    // A third would pass the limit: the oldest version no deployment needs goes.
    let v3 = created_version(server.upload(&token, "app", &guest("kv")), 200);
    let kept = |server: &Server| -> Vec<String> {
        let versions = get_data(server, &token, "/script/app/versions");
        versions["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(kept(&server), [v3.clone(), v2.clone()]);
    let gone = as_customer(
        &server,
        &token,
        Method::GET,
        &format!("/script/app/versions/{v1}"),
    )
    .send()
    .unwrap();
    expect_error(gone, 404, "version_not_found");

    // Nothing more can go (the live and the previous deployment's versions stay): an
    // upload that does not fit is refused and changes nothing, for any script of theirs.
    let path = "/script/app?deploy=false";
    let refused = upload_raw(&server, &token, path, &guest("outbound-worker"), &[]);
    expect_error(refused, 413, "too_large");
    let refused = server.upload(&token, "second", &guest("hello"));
    expect_error(refused, 413, "too_large");
    assert_eq!(kept(&server), [v3.clone(), v2.clone()]);
    let missing = as_customer(&server, &token, Method::GET, "/script/second")
        .send()
        .unwrap();
    expect_error(missing, 404, "script_not_found");
    let live = &get_data(&server, &token, "/script/app")["deployment"]["versions"];
    assert_eq!(live, &json!([{"version_id": v3, "percentage": 100}]));

    // Another customer has a share of its own.
    assert_eq!(
        server
            .upload(&other_token, "theirs", &guest("hello"))
            .status(),
        201
    );
}

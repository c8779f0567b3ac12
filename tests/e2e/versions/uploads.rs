//! Versions as uploads make them: deployed or not, reached by the owner's override,
//! listed, annotated, kept across restarts and gc, bounded per customer.

use super::*;

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

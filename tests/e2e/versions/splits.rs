//! Deployments: splits by percentage (sticky by key), rollbacks, bad requests, what
//! tails, usage and metrics say of each version, and the CLI.

use super::*;

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

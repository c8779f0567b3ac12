//! State survives a restart without recompiling, and a damaged compiled artifact is
//! detected and rebuilt from the stored component.

use crate::harness::{Server, guest};
use crate::platform_module::HELLO;

#[test]
fn a_restart_keeps_every_script_and_recompiles_nothing() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    server.upload(&token, "one", &guest("hello"));
    server.upload(&token, "two", &guest("echo-wstd"));
    assert_eq!(server.metric("dispatcher_compiles_total"), 2);
    let (data, _temp) = server.stop();

    let server = Server::start_in(&data, &[]);
    // The start loads no component; the warm-up behind it loads both, unasked.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while server.metric("dispatcher_artifact_cache_hits_total") < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the warm-up never loaded both"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(server.get("/dispatch/one/").text().unwrap(), HELLO);
    assert_eq!(server.get("/dispatch/two/").status(), 200);
    assert_eq!(server.metric("dispatcher_compiles_total"), 0);
    assert_eq!(server.metric("dispatcher_artifact_cache_hits_total"), 2);
    // The token still works after the restart.
    assert_eq!(server.upload(&token, "one", &guest("hello")).status(), 200);
}

#[test]
fn a_corrupted_artifact_is_detected_and_rebuilt() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    server.upload(&token, "app", &guest("hello"));
    let (data, _temp) = server.stop();

    for entry in std::fs::read_dir(data.join("artifacts")).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
    }

    let server = Server::start_in(&data, &[]);
    // The first request waits for the load (and so the rebuild) if the warm-up after the
    // start has not done it yet.
    assert_eq!(server.get("/dispatch/app/").text().unwrap(), HELLO);
    assert_eq!(server.metric("dispatcher_artifact_rebuilds_total"), 1);
    assert_eq!(server.metric("dispatcher_compiles_total"), 1);
    let (data, _temp2) = server.stop();

    // The rebuilt artifact is good: the next start loads it without compiling.
    let server = Server::start_in(&data, &[]);
    assert_eq!(server.metric("dispatcher_compiles_total"), 0);
    assert_eq!(server.get("/dispatch/app/").text().unwrap(), HELLO);
    drop(_temp);
}

/// Files in `dir` of the data directory, temporary ones aside.
fn files_in(server: &Server, dir: &str) -> usize {
    std::fs::read_dir(server.data_dir().join(dir))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .count()
}

fn gc(server: &Server, grace: &str) -> serde_json::Value {
    let out = server.cli(&["gc", "--grace", grace, "--json"]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn components_no_kept_version_uses_are_swept_and_the_rest_keep_serving() {
    // One version kept per script, besides those the live and the previous deployment use.
    let server = Server::start_with_config("versions_kept = 1");
    let (_, token) = server.create_customer("acme");
    server.upload(&token, "app", &guest("trap"));
    server.upload(&token, "app", &guest("echo-wstd"));
    server.upload(&token, "app", &guest("hello"));
    server.upload(&token, "other", &guest("kv"));
    assert_eq!(files_in(&server, "blobs"), 4);
    assert_eq!(files_in(&server, "artifacts"), 4);

    // Within the grace period an unused file stays (an upload may have just written it).
    assert_eq!(gc(&server, "10m")["blobs"], 0);
    // The first version of `app` is no longer kept: it goes, with its compiled artifact.
    // The second stays, for a rollback.
    let swept = gc(&server, "0s");
    assert_eq!(
        (swept["blobs"].as_u64(), swept["artifacts"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(files_in(&server, "blobs"), 3);
    assert_eq!(server.get("/dispatch/app/x").status(), 200);

    // A deleted script's files go too.
    let deleted = server
        .request(reqwest::Method::DELETE, "/script/other")
        .header("x-customer-token", &token)
        .send()
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(gc(&server, "0s")["blobs"], 1);
    assert_eq!(
        (files_in(&server, "blobs"), files_in(&server, "artifacts")),
        (2, 2)
    );

    // What is left is whole: a restart loads it without compiling.
    let (data, _temp) = server.stop();
    let server = Server::start_in(&data, &[]);
    assert_eq!(server.metric("dispatcher_compiles_total"), 0);
    assert_eq!(server.get("/dispatch/app/x").status(), 200);
}

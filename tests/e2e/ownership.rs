//! Settings follow their owner: the limits and outbound policy the admin gave a
//! customer's script are the owner's, kept when the owner replaces the script and gone
//! with a delete, so a customer who later takes the freed name starts with the defaults
//! and its requests never reach the earlier owner's outbound worker. The worker's params
//! (credentials) are sealed at rest.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Server, eventually, guest};
use crate::limits::with_query;
use crate::outbound::deploy_egress_worker;
use crate::upstream::Upstream;

const OPEN_LOOPBACK: &str = "outbound_allow_private = [\"127.0.0.0/8\"]\n";
const CREDENTIAL: &str = "credential-of-acme-7f3a91";

fn cli_ok(server: &Server, args: &[&str]) -> String {
    let out = server.cli(args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// What the upstream saw of `app`'s request, or `None` when it did not answer 200.
fn fetched_by_app(server: &Server, upstream: &Upstream) -> Option<Value> {
    let path = with_query("/dispatch/app/fetch", &[("url", &upstream.url("/data"))]);
    let response = server.get(&path);
    let status = response.status().as_u16();
    let body = response.text().unwrap();
    (status == 200).then(|| serde_json::from_str(&body).unwrap())
}

fn cpu_limit(server: &Server) -> Value {
    let shown: Value =
        serde_json::from_str(&cli_ok(server, &["limits", "show", "app", "--json"])).unwrap();
    shown["cpu_ms"].clone()
}

/// Every file of the store's database, as bytes.
fn database_bytes(server: &Server) -> Vec<u8> {
    ["dispatcher.db", "dispatcher.db-wal"]
        .iter()
        .filter_map(|f| std::fs::read(server.data_dir().join(f)).ok())
        .flatten()
        .collect()
}

#[test]
fn a_reclaimed_name_starts_with_defaults_and_never_reaches_the_old_owners_worker() {
    let upstream = Upstream::start();
    let server = Server::start_with_config(OPEN_LOOPBACK);
    let (_, acme) = server.create_customer("acme");
    let (_, other) = server.create_customer("other");
    assert_eq!(server.upload(&acme, "app", &guest("limits")).status(), 201);
    deploy_egress_worker(&server);
    cli_ok(
        &server,
        &[
            "outbound",
            "set",
            "app",
            "--worker",
            "egress",
            "--param",
            &format!("CREDENTIAL={CREDENTIAL}"),
        ],
    );
    cli_ok(
        &server,
        &[
            "limits",
            "set",
            "app",
            "--cpu-ms",
            "4000",
            "--memory-mb",
            "512",
        ],
    );
    assert!(eventually(Duration::from_secs(5), || {
        fetched_by_app(&server, &upstream)
            .is_some_and(|seen| seen["headers"]["x-injected-credential"] == CREDENTIAL)
    }));
    assert_eq!(cpu_limit(&server)["value"], 4000);

    // The credential is sealed at rest.
    let stored = database_bytes(&server);
    assert!(
        !stored
            .windows(CREDENTIAL.len())
            .any(|w| w == CREDENTIAL.as_bytes()),
        "the worker's params are stored in plaintext"
    );

    // The owner replacing its script keeps its settings.
    assert_eq!(server.upload(&acme, "app", &guest("limits")).status(), 200);
    assert_eq!(cpu_limit(&server)["value"], 4000);
    let seen = fetched_by_app(&server, &upstream).expect("the replaced script still fetches");
    assert_eq!(seen["headers"]["x-injected-credential"], CREDENTIAL);

    // Deleted and taken by another customer: defaults, and no worker.
    let deleted = server
        .request(reqwest::Method::DELETE, "/script/app")
        .header("x-customer-token", &acme)
        .send()
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(server.upload(&other, "app", &guest("limits")).status(), 201);
    assert_eq!(cpu_limit(&server)["default"], true);
    let shown: Value =
        serde_json::from_str(&cli_ok(&server, &["limits", "show", "app", "--json"])).unwrap();
    assert_eq!(shown["memory_mb"]["default"], true);
    let seen = fetched_by_app(&server, &upstream).expect("the new owner's script fetches");
    assert!(
        seen["headers"].get("x-injected-credential").is_none(),
        "the new owner's request went through the old owner's worker: {seen}"
    );

    // And so after a restart, which reloads every script from the store.
    let (data, temp) = server.stop();
    let config = data.with_extension("restart.toml");
    std::fs::write(&config, format!("first_party = false\n{OPEN_LOOPBACK}")).unwrap();
    let server = Server::start_in(&data, &["--config", config.to_str().unwrap()]);
    let seen = fetched_by_app(&server, &upstream).expect("serves after restart");
    assert!(
        seen["headers"].get("x-injected-credential").is_none(),
        "{seen}"
    );
    drop(temp);
}

#[test]
fn an_outbound_policy_stored_in_plaintext_by_an_older_version_is_sealed_at_start() {
    let upstream = Upstream::start();
    let server = Server::start_with_config(OPEN_LOOPBACK);
    let (_, acme) = server.create_customer("acme");
    assert_eq!(server.upload(&acme, "app", &guest("limits")).status(), 201);
    deploy_egress_worker(&server);
    cli_ok(&server, &["outbound", "set", "app", "--worker", "egress"]);
    let (data, temp) = server.stop();

    // What an older version wrote: the policy as plaintext JSON.
    let legacy =
        format!(r#"{{"worker":{{"script":"egress","params":{{"CREDENTIAL":"{CREDENTIAL}"}}}}}}"#);
    let db = rusqlite::Connection::open(data.join("dispatcher.db")).unwrap();
    let changed = db
        .execute(
            "UPDATE script_settings SET outbound = ?1, outbound_sealed = NULL WHERE name = 'app'",
            [&legacy],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(db);

    let config = data.with_extension("legacy.toml");
    std::fs::write(&config, format!("first_party = false\n{OPEN_LOOPBACK}")).unwrap();
    let server = Server::start_in(&data, &["--config", config.to_str().unwrap()]);
    let seen = fetched_by_app(&server, &upstream).expect("serves after the upgrade");
    assert_eq!(
        seen["headers"]["x-injected-credential"], CREDENTIAL,
        "{seen}"
    );
    assert!(
        !database_bytes(&server)
            .windows(CREDENTIAL.len())
            .any(|w| w == CREDENTIAL.as_bytes()),
        "the legacy plaintext policy is still on disk"
    );
    drop(temp);
}

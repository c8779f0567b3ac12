//! The lifecycle of the platform's own services: installed at first start under their
//! own limits, kept (not recompiled) across restarts with their data, upgraded when the
//! installed copy came from another build, and left alone when the operator deployed
//! their own version.

use serde_json::{Value, json};

use crate::harness::{Server, guest};
use crate::platform_module::HELLO;

/// `GET /content?app=default` through the gateway: the real content service answers in
/// the envelope; the hello stand-in answers its greeting.
fn content_listing(server: &Server) -> String {
    server.get("/content?app=default").text().unwrap()
}

/// Stops `server` (started by `start_in`) and starts another on its data directory.
fn restart(server: Server) -> Server {
    let (data, _) = server.stop();
    start_with_platform_in(&data)
}

fn start_with_platform_in(data: &std::path::Path) -> Server {
    let config = data.with_extension("platform.toml");
    std::fs::write(&config, "first_party = true").unwrap();
    Server::start_in(data, &["--config", config.to_str().unwrap()])
}

/// Waits until the running server serves what the CLI deployed (it polls the store).
fn wait_for_content(server: &Server, expected: &str) {
    for _ in 0..50 {
        if content_listing(server) == expected {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the server never served the new version of `content`");
}

/// Deploys hello as the platform script `content` with `tags`, through the CLI.
fn deploy_hello_as_content(server: &Server, tags: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (wasm, metadata) = (dir.path().join("hello.wasm"), dir.path().join("meta.json"));
    std::fs::write(&wasm, guest("hello")).unwrap();
    std::fs::write(&metadata, json!({ "tags": tags }).to_string()).unwrap();
    let out = server.cli(&[
        "script",
        "deploy",
        "content",
        wasm.to_str().unwrap(),
        "--metadata",
        metadata.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn first_party_services_survive_restarts_upgrade_by_build_and_yield_to_the_operator() {
    let server = Server::start_with_platform();
    // Installed with their own limits, set through the same settings as any script.
    let out = server.cli(&[
        "limits",
        "show",
        "auth",
        "--namespace",
        "platform",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let limits: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(limits["cpu_ms"]["value"], 500, "{limits}");
    let signup = json!({ "email": "carol@example.com", "password": "a long password" });
    let response = server
        .request(reqwest::Method::POST, "/auth/signup")
        .json(&signup)
        .send()
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().unwrap());
    assert!(content_listing(&server).starts_with(r#"{"data":{"items":[]}"#));

    // A restart keeps the services and their data, and compiles nothing.
    let (data, _temp) = server.stop();
    let server = start_with_platform_in(&data);
    assert_eq!(server.metric("dispatcher_compiles_total"), 0);
    let login = json!({ "email": "carol@example.com", "password": "a long password" });
    let response = server
        .request(reqwest::Method::POST, "/auth/login")
        .json(&login)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);

    // A copy installed by another build is upgraded to this binary's at start.
    deploy_hello_as_content(&server, &["first-party", "bundled-sha256:0000"]);
    wait_for_content(&server, HELLO);
    let server = restart(server);
    assert!(content_listing(&server).starts_with(r#"{"data":{"items":[]}"#));

    // The operator's own version (no bundled tag) is kept.
    deploy_hello_as_content(&server, &[]);
    let server = restart(server);
    assert_eq!(content_listing(&server), HELLO);
}

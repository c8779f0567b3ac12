//! The admin's CLI against a running server: changes reach it within one second.

use std::time::Duration;

use crate::harness::{Server, eventually, expect_error, guest};

#[test]
fn cli_lists_customers_and_scripts_as_json() {
    let server = Server::start();
    let (id, token) = server.create_customer("acme");
    server.upload(&token, "app", &guest("hello"));

    let customers: serde_json::Value =
        serde_json::from_slice(&server.cli(&["customer", "list", "--json"]).stdout).unwrap();
    assert_eq!(customers[0]["id"], id.as_str());
    assert!(customers[0].get("token").is_none());

    let scripts: serde_json::Value = serde_json::from_slice(
        &server
            .cli(&["script", "list", "--customer", &id, "--json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(scripts[0]["name"], "app");
}

#[test]
fn a_script_deleted_by_the_cli_stops_serving_within_a_second() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    server.upload(&token, "app", &guest("hello"));
    server.upload(&token, "tagged", &guest("hello"));
    assert_eq!(server.get("/dispatch/app/").status(), 200);

    let out = server.cli(&["script", "delete", "app", "--json"]);
    assert!(out.status.success(), "{out:?}");
    assert!(eventually(Duration::from_secs(5), || server
        .get("/dispatch/app/")
        .status()
        == 404));

    // Delete by tag.
    let out = server.cli(&["script", "delete", "--tag", "customer_id:nobody", "--json"]);
    assert!(out.status.success());
    assert_eq!(server.get("/dispatch/tagged/").status(), 200);
}

#[test]
fn a_rotated_token_stops_working_at_once() {
    let server = Server::start();
    let (id, old) = server.create_customer("acme");
    let out = server.cli(&["customer", "rotate-token", &id, "--json"]);
    assert!(out.status.success());
    let new: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let new = new["token"].as_str().unwrap();
    expect_error(
        server.upload(&old, "app", &guest("hello")),
        401,
        "unauthorized",
    );
    assert_eq!(server.upload(new, "app", &guest("hello")).status(), 201);
}

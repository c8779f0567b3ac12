//! The first-party services' names belong to the platform: no customer may upload one
//! (`409 name_taken`), so `billing.localhost` never serves a tenant's page. The config's
//! `reserved_names` replaces the list.

use serde_json::json;

use crate::harness::{Server, expect_error, guest, refused_config};

#[test]
fn customers_cannot_take_the_first_party_services_names() {
    let server = Server::start_with_platform();
    let (_, token) = server.create_customer("mallory");
    for name in ["auth", "billing", "support", "ai", "content", "admin"] {
        let message = expect_error(
            server.upload(&token, name, &guest("hello")),
            409,
            "name_taken",
        );
        assert!(message.contains("reserved for the platform"), "{message}");
    }
    let metadata = json!({"main_module": "worker.wasm", "tags": ["phish"]});
    let multipart = server.upload_with(&token, "billing", &guest("hello"), metadata);
    expect_error(multipart, 409, "name_taken");

    // Host routing finds no tenant page under a first-party name; nothing was stored.
    let page = server.get_host("billing", "/");
    expect_error(page, 404, "script_not_found");
    let mine = server
        .request(reqwest::Method::GET, "/scripts")
        .header("x-customer-token", &token)
        .send()
        .unwrap();
    assert_eq!(mine.json::<serde_json::Value>().unwrap()["data"], json!([]));
    // The platform's own billing still answers through the gateway.
    expect_error(server.get("/credits"), 401, "unauthorized");

    // Other names are the customers'.
    assert_eq!(
        server
            .upload(&token, "billing-app", &guest("hello"))
            .status(),
        201
    );
    assert_eq!(server.get_host("billing-app", "/").status(), 200);
}

#[test]
fn the_config_chooses_which_names_are_reserved() {
    let server = Server::start_with_config("reserved_names = [\"status\", \"docs\"]");
    let (_, token) = server.create_customer("acme");
    let message = expect_error(
        server.upload(&token, "status", &guest("hello")),
        409,
        "name_taken",
    );
    assert!(message.contains("reserved for the platform"), "{message}");
    expect_error(server.get_host("status", "/"), 404, "script_not_found");
    // The list replaces the default: `billing` is an ordinary name on this server.
    assert_eq!(
        server.upload(&token, "billing", &guest("hello")).status(),
        201
    );
    assert_eq!(server.get_host("billing", "/").status(), 200);
}

#[test]
fn a_reserved_name_that_is_no_script_name_is_refused_at_start() {
    let stderr = refused_config("first_party = false\nreserved_names = [\"Billing\"]\n");
    assert!(stderr.contains("reserved_names"), "{stderr}");
}

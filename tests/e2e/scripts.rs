//! A customer manages its scripts: upload, replace, read, list by tag, retag, delete —
//! and never sees another customer's.

use reqwest::Method;

use crate::harness::{Server, envelope, expect_error, guest};
use crate::platform_module::HELLO;

#[test]
fn uploading_hello_then_opening_its_url_answers_hello() {
    let server = Server::start();
    let (id, token) = server.create_customer("acme");

    let response = server.upload(&token, "my-customer-script", &guest("hello"));
    assert_eq!(response.status(), 201);
    let record = envelope(response, true)["data"].clone();
    assert_eq!(record["name"], "my-customer-script");
    assert_eq!(record["customer_id"], id.as_str());
    assert_eq!(record["size"], guest("hello").len());
    assert_eq!(record["sha256"].as_str().unwrap().len(), 64);
    assert!(
        record["tags"]
            .as_array()
            .unwrap()
            .contains(&format!("customer_id:{id}").into())
    );

    let by_path = server.get("/dispatch/my-customer-script/");
    assert_eq!(by_path.status(), 200);
    assert_eq!(by_path.text().unwrap(), HELLO);
    let by_host = server.get_host("my-customer-script", "/");
    assert_eq!(by_host.status(), 200);
    assert_eq!(by_host.text().unwrap(), HELLO);
}

#[test]
fn replacing_a_script_serves_the_new_version_on_the_next_request() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    assert_eq!(server.upload(&token, "app", &guest("hello")).status(), 201);
    assert_eq!(server.get("/dispatch/app/").text().unwrap(), HELLO);

    let replaced = server.upload(&token, "app", &guest("echo-wstd"));
    assert_eq!(replaced.status(), 200);
    // The very next request, no waiting: the new version answers.
    let response = server.get("/dispatch/app/after");
    assert_eq!(response.headers()["x-echo"], "wstd");
    let seen: serde_json::Value = response.json().unwrap();
    assert_eq!(seen["path"], "/after");
}

#[test]
fn scripts_are_listed_and_filtered_by_tags_and_tags_can_be_replaced() {
    let server = Server::start();
    let (id, token) = server.create_customer("acme");
    let multipart = |name: &str, tags: &[&str]| {
        let metadata = serde_json::json!({ "main_module": "worker.wasm", "tags": tags });
        server.upload_with(&token, name, &guest("hello"), metadata)
    };
    assert_eq!(multipart("one", &["prod", "eu"]).status(), 201);
    assert_eq!(multipart("two", &["prod"]).status(), 201);
    assert_eq!(multipart("three", &["staging"]).status(), 201);

    let list = |query: &str| -> Vec<String> {
        let response = server
            .request(Method::GET, &format!("/scripts{query}"))
            .header("x-customer-token", &token)
            .send()
            .unwrap();
        envelope(response, true)["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(list(""), ["one", "three", "two"]);
    assert_eq!(list("?tag=prod"), ["one", "two"]);
    assert_eq!(list("?tag=prod&tag=eu"), ["one"]);
    assert_eq!(
        list(&format!("?tag=customer_id:{id}&tag=staging")),
        ["three"]
    );
    assert!(list("?tag=nope").is_empty());

    let retag = server
        .request(Method::PUT, "/script/two/tags")
        .header("x-customer-token", &token)
        .json(&["eu", "beta"])
        .send()
        .unwrap();
    let tags = envelope(retag, true)["data"]["tags"].clone();
    assert_eq!(
        tags,
        serde_json::json!(["beta", format!("customer_id:{id}"), "eu"])
    );
    assert_eq!(list("?tag=prod"), ["one"]);
    assert_eq!(list("?tag=eu"), ["one", "two"]);

    // A tag that would impersonate another owner is refused.
    let forged = server
        .request(Method::PUT, "/script/two/tags")
        .header("x-customer-token", &token)
        .json(&["customer_id:someone-else"])
        .send()
        .unwrap();
    expect_error(forged, 400, "bad_request");
}

#[test]
fn deleting_a_script_stops_it_serving() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    server.upload(&token, "gone", &guest("hello"));
    let deleted = server
        .request(Method::DELETE, "/script/gone")
        .header("x-customer-token", &token)
        .send()
        .unwrap();
    assert_eq!(deleted.status(), 200);
    expect_error(server.get("/dispatch/gone/"), 404, "script_not_found");
    let read = server
        .request(Method::GET, "/script/gone")
        .header("x-customer-token", &token)
        .send()
        .unwrap();
    expect_error(read, 404, "script_not_found");
}

#[test]
fn a_customer_never_sees_replaces_or_deletes_another_customers_script() {
    let server = Server::start();
    let (_, alice) = server.create_customer("alice");
    let (_, bob) = server.create_customer("bob");
    assert_eq!(server.upload(&alice, "shop", &guest("hello")).status(), 201);

    let as_bob = |method: Method, path: &str| {
        server
            .request(method, path)
            .header("x-customer-token", &bob)
            .send()
            .unwrap()
    };
    expect_error(as_bob(Method::GET, "/script/shop"), 404, "script_not_found");
    expect_error(
        as_bob(Method::DELETE, "/script/shop"),
        404,
        "script_not_found",
    );
    let retag = server
        .request(Method::PUT, "/script/shop/tags")
        .header("x-customer-token", &bob)
        .json(&["mine"])
        .send()
        .unwrap();
    expect_error(retag, 404, "script_not_found");
    expect_error(
        server.upload(&bob, "shop", &guest("echo-wstd")),
        409,
        "name_taken",
    );
    let bobs = envelope(as_bob(Method::GET, "/scripts"), true);
    assert_eq!(bobs["data"], serde_json::json!([]));

    // Alice's script is untouched and still serves her version.
    assert_eq!(server.get("/dispatch/shop/").text().unwrap(), HELLO);
}

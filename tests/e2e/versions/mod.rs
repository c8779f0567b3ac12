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

mod splits;
mod uploads;

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

/// Runs the CLI with `args`; returns its one JSON document.
fn cli_json(server: &Server, args: &[&str]) -> Value {
    let out = server.cli(args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?} --json: {e}: {out:?}"))
}

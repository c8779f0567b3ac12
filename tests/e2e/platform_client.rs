//! A client of the platform's own services through the gateway, shared by the tests
//! that play its users: how a request authenticates, one call as JSON, sign-up, login.

use reqwest::Method;
use reqwest::blocking::RequestBuilder;
use serde_json::{Value, json};

use crate::harness::Server;

/// How a request authenticates.
#[derive(Clone, Copy)]
pub enum As<'a> {
    Nobody,
    /// The `session` cookie.
    Cookie(&'a str),
    /// `Authorization: Bearer` (a session token or an API key).
    Bearer(&'a str),
}

pub fn call(
    server: &Server,
    method: Method,
    path: &str,
    who: As<'_>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request: RequestBuilder = server.request(method, path);
    request = match who {
        As::Nobody => request,
        As::Cookie(token) => request.header("cookie", format!("theme=dark; session={token}")),
        As::Bearer(token) => request.header("authorization", format!("Bearer {token}")),
    };
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().expect("request");
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    let value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"));
    (status, value)
}

pub fn error_code(answer: &Value) -> &str {
    assert_eq!(answer["ok"], false, "{answer}");
    answer["error"]["code"].as_str().unwrap()
}

pub fn sign_up(server: &Server, email: &str) -> String {
    let (status, answer) = call(
        server,
        Method::POST,
        "/auth/signup",
        As::Nobody,
        Some(json!({ "email": email, "password": "correct horse battery" })),
    );
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["data"]["user"]["role"], "user");
    answer["data"]["user"]["id"].as_str().unwrap().to_string()
}

/// Logs in; returns the session token taken from the `Set-Cookie` header.
pub fn log_in(server: &Server, email: &str) -> String {
    let response = server
        .request(Method::POST, "/auth/login")
        .json(&json!({ "email": email, "password": "correct horse battery" }))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let token = cookie
        .strip_prefix("session=")
        .and_then(|rest| rest.split(';').next())
        .unwrap()
        .to_string();
    let answer: Value = response.json().unwrap();
    assert_eq!(answer["data"]["token"], token.as_str());
    token
}

pub fn balance(server: &Server, who: As<'_>) -> i64 {
    let (status, answer) = call(server, Method::GET, "/credits", who, None);
    assert_eq!(status, 200, "{answer}");
    answer["data"]["balance"].as_i64().unwrap()
}

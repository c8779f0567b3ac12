//! Guessing passwords and burning the platform's CPU on sign-ins: `auth` limits attempts
//! per account, the gateway limits sign-ups and logins per client address. Other
//! accounts and other addresses stay served.

use std::net::IpAddr;

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::Server;
use crate::platform_client::{As, call, log_in, sign_up};

/// One login attempt for `email` with `password`: the status, the error code if any,
/// and `Retry-After`.
fn try_login(server: &Server, email: &str, password: &str) -> (u16, String, Option<u64>) {
    sign_in_from(server, None, "/auth/login", email, password)
}

/// A sign-in request (`path` is `/auth/login` or `/auth/signup`) from `source`, or from
/// the default loopback address.
fn sign_in_from(
    server: &Server,
    source: Option<IpAddr>,
    path: &str,
    email: &str,
    password: &str,
) -> (u16, String, Option<u64>) {
    let client = reqwest::blocking::Client::builder()
        .local_address(source)
        .build()
        .unwrap();
    let response = client
        .post(server.url(path))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().parse().unwrap());
    let answer: Value = response.json().unwrap();
    let code = answer["error"]["code"].as_str().unwrap_or("").to_string();
    (status, code, retry_after)
}

#[test]
fn password_guessing_is_throttled_per_account_without_locking_out_others() {
    let server = Server::start_with_platform();
    sign_up(&server, "alice@example.com");
    sign_up(&server, "bob@example.com");
    let right = "correct horse battery";

    // Four wrong guesses, then the right password: the count starts over.
    for _ in 0..4 {
        let (status, code, _) = try_login(&server, "alice@example.com", "wrong password");
        assert_eq!((status, code.as_str()), (401, "unauthorized"));
    }
    let alice = log_in(&server, "alice@example.com");

    // Five more wrong guesses are answered; the sixth attempt is refused before any
    // password check, even with the right password, and says when to come back.
    for _ in 0..5 {
        assert_eq!(try_login(&server, "Alice@example.com", "guess").0, 401);
    }
    let (status, code, retry_after) = try_login(&server, "alice@example.com", right);
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    let retry_after = retry_after.expect("Retry-After on 429");
    assert!((1..=900).contains(&retry_after), "{retry_after}");

    // An unknown email is counted the same way, so the answers reveal nothing.
    for _ in 0..5 {
        assert_eq!(try_login(&server, "nobody@example.com", "guess").0, 401);
    }
    assert_eq!(try_login(&server, "nobody@example.com", "guess").0, 429);

    // Other accounts, and alice's existing sessions, are untouched.
    let bob = log_in(&server, "bob@example.com");
    for token in [&alice, &bob] {
        let (status, _) = call(
            &server,
            Method::GET,
            "/auth/get-session",
            As::Bearer(token),
            None,
        );
        assert_eq!(status, 200);
    }
}

#[test]
fn sign_ins_are_limited_per_client_address_before_auth_runs() {
    let server = Server::start_with_config("first_party = true\nsign_in_attempts_per_minute = 3");
    let password = "correct horse battery";
    let signup = |source, email| sign_in_from(&server, source, "/auth/signup", email, password);

    // Three attempts from 127.0.0.1 (two sign-ups and a login) pass; the fourth is
    // refused by the gateway with the wait until the next one.
    assert_eq!(signup(None, "alice@example.com").0, 201);
    assert_eq!(signup(None, "bob@example.com").0, 201);
    let alice = log_in(&server, "alice@example.com");
    let (status, code, retry_after) = signup(None, "carol@example.com");
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    let retry_after = retry_after.expect("Retry-After on 429");
    assert!((1..=20).contains(&retry_after), "{retry_after}");

    // auth never ran for it: carol does not exist.
    let out = server.cli(&["platform", "set-role", "carol@example.com", "admin"]);
    assert!(!out.status.success(), "{out:?}");

    // Other routes, signed-in users and other addresses are not affected.
    let (status, _) = call(
        &server,
        Method::GET,
        "/auth/get-session",
        As::Bearer(&alice),
        None,
    );
    assert_eq!(status, 200);
    let elsewhere: IpAddr = "127.0.0.2".parse().unwrap();
    assert_eq!(signup(Some(elsewhere), "carol@example.com").0, 201);
}

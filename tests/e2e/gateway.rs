//! The gateway and the platform's own services, as the platform's users meet them: one
//! user story from an empty data directory through sign-up, payment, API keys, the ai
//! service spending credits through billing, support tickets and the admin's view —
//! plus spoofed identity headers that never reach a service, and logout.

use reqwest::Method;
use reqwest::blocking::RequestBuilder;
use serde_json::{Value, json};

use crate::harness::Server;
use crate::platform_client::{As, balance, call, error_code, log_in, sign_up};

#[test]
fn the_platform_serves_its_users_from_an_empty_data_dir() {
    let server = Server::start_with_platform();

    // Sign up and log in with a cookie.
    let alice_id = sign_up(&server, "alice@example.com");
    let alice = log_in(&server, "Alice@Example.com");
    let alice = As::Cookie(&alice);
    let (status, me) = call(&server, Method::GET, "/auth/get-session", alice, None);
    assert_eq!(status, 200);
    assert_eq!(me["data"]["user_id"], alice_id.as_str());
    let (status, answer) = call(
        &server,
        Method::POST,
        "/auth/signup",
        As::Nobody,
        Some(json!({ "email": "alice@example.com", "password": "another password" })),
    );
    assert_eq!((status, error_code(&answer)), (409, "email_taken"));

    // Order credits and pay in test mode; the provider's callback credits once.
    assert_eq!(balance(&server, alice), 0);
    let (status, order) = call(
        &server,
        Method::POST,
        "/orders",
        alice,
        Some(json!({ "credits": 100 })),
    );
    assert_eq!(status, 201, "{order}");
    let order_id = order["data"]["order"]["id"].as_str().unwrap().to_string();
    assert_eq!(order["data"]["order"]["status"], "pending");
    let (status, checkout) = call(
        &server,
        Method::POST,
        "/payment/checkout",
        alice,
        Some(json!({ "order_id": order_id })),
    );
    assert_eq!(status, 200, "{checkout}");
    let payload = checkout["data"]["test_event"]["payload"]
        .as_str()
        .unwrap()
        .to_string();
    let signature = checkout["data"]["test_event"]["signature"]
        .as_str()
        .unwrap()
        .to_string();
    let webhook = |signature: &str| {
        let response = server
            .request(Method::POST, "/payment/webhook")
            .header("x-payment-signature", signature)
            .header("content-type", "application/json")
            .body(payload.clone())
            .send()
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().unwrap(),
        )
    };
    let (status, answer) = webhook(&"0".repeat(64));
    assert_eq!((status, error_code(&answer)), (401, "unauthorized"));
    assert_eq!(
        balance(&server, alice),
        0,
        "a forged callback changes nothing"
    );
    let (status, answer) = webhook(&signature);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["credited"], true);
    for _ in 0..2 {
        let (status, answer) = webhook(&signature);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["data"]["credited"], false,
            "a replay credits nothing"
        );
    }
    assert_eq!(balance(&server, alice), 100);
    let (_, order) = call(
        &server,
        Method::GET,
        &format!("/orders/{order_id}"),
        alice,
        None,
    );
    assert_eq!(order["data"]["order"]["status"], "paid");

    // An API key, and the ai service spending credits through billing.
    let (status, key) = call(
        &server,
        Method::POST,
        "/keys",
        alice,
        Some(json!({ "name": "laptop" })),
    );
    assert_eq!(status, 201, "{key}");
    let secret = key["data"]["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("ak_"));
    let (_, keys) = call(&server, Method::GET, "/keys", alice, None);
    assert!(
        !keys.to_string().contains(&secret),
        "a listing never shows secrets"
    );
    let generate = |prompt: &str| {
        call(
            &server,
            Method::POST,
            "/ai/generate",
            As::Bearer(&secret),
            Some(json!({ "prompt": prompt })),
        )
    };
    let (status, generated) = generate("write a haiku about sandboxes");
    assert_eq!(status, 200, "{generated}");
    let price = generated["data"]["credits_spent"].as_i64().unwrap();
    assert!(price > 0);
    assert_eq!(generated["data"]["balance"].as_i64().unwrap(), 100 - price);
    assert_eq!(balance(&server, alice), 100 - price);
    // Spend down to less than the price (idempotently), then the ai refuses.
    let spend = json!({ "amount": 100 - price - 1, "idempotency_key": "spend-1" });
    for replayed in [false, true] {
        let (status, spent) = call(
            &server,
            Method::POST,
            "/credits/spend",
            alice,
            Some(spend.clone()),
        );
        assert_eq!(status, 200, "{spent}");
        assert_eq!(spent["data"]["replayed"], replayed);
        assert_eq!(spent["data"]["balance"], 1);
    }
    let (status, refused) = generate("one more");
    assert_eq!(
        (status, error_code(&refused)),
        (402, "insufficient_credits")
    );
    assert_eq!(
        balance(&server, alice),
        1,
        "a refused generation spends nothing"
    );

    // A support ticket.
    let (status, ticket) = call(
        &server,
        Method::POST,
        "/tickets",
        alice,
        Some(json!({ "subject": "Out of credits", "body": "How do I buy more?" })),
    );
    assert_eq!(status, 201, "{ticket}");
    let ticket_id = ticket["data"]["ticket"]["id"].as_str().unwrap().to_string();

    // Content: owner write, public read.
    let (status, item) = call(
        &server,
        Method::POST,
        "/content",
        alice,
        Some(json!({ "title": "Hello", "body": "First post" })),
    );
    assert_eq!(status, 201, "{item}");
    let item_id = item["data"]["item"]["id"].as_str().unwrap().to_string();
    let (status, public) = call(
        &server,
        Method::GET,
        &format!("/content/{item_id}"),
        As::Nobody,
        None,
    );
    assert_eq!(status, 200, "{public}");
    assert_eq!(public["data"]["item"]["title"], "Hello");
    let (status, answer) = call(
        &server,
        Method::DELETE,
        &format!("/content/{item_id}"),
        As::Nobody,
        None,
    );
    assert_eq!((status, error_code(&answer)), (401, "unauthorized"));

    // The gateway's own refusals, and a downstream error passing through.
    let (status, answer) = call(&server, Method::GET, "/admin/users", alice, None);
    assert_eq!((status, error_code(&answer)), (403, "forbidden"));
    let (status, answer) = call(&server, Method::GET, "/admin/users", As::Nobody, None);
    assert_eq!((status, error_code(&answer)), (401, "unauthorized"));
    let (status, answer) = call(&server, Method::GET, "/credits", As::Nobody, None);
    assert_eq!((status, error_code(&answer)), (401, "unauthorized"));
    let (status, answer) = call(
        &server,
        Method::GET,
        "/credits",
        As::Cookie("ses_forged"),
        None,
    );
    assert_eq!((status, error_code(&answer)), (401, "unauthorized"));
    let (status, answer) = call(&server, Method::GET, "/nowhere", alice, None);
    assert_eq!((status, error_code(&answer)), (404, "not_found"));
    let (status, answer) = call(
        &server,
        Method::GET,
        "/orders/ord_0000000000000000",
        alice,
        None,
    );
    assert_eq!((status, error_code(&answer)), (404, "not_found"));

    // The admin: signed up as a user, made admin by the operator's CLI.
    sign_up(&server, "root@example.com");
    let out = server.cli(&["platform", "set-role", "root@example.com", "admin"]);
    assert!(out.status.success(), "{out:?}");
    let root = log_in(&server, "root@example.com");
    let root = As::Bearer(&root);
    let (status, users) = call(&server, Method::GET, "/admin/users", root, None);
    assert_eq!(status, 200, "{users}");
    let emails: Vec<&str> = users["data"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["alice@example.com", "root@example.com"]);
    let (status, tickets) = call(&server, Method::GET, "/admin/tickets", root, None);
    assert_eq!(status, 200, "{tickets}");
    assert!(tickets.to_string().contains(&ticket_id), "{tickets}");
    let (status, adjusted) = call(
        &server,
        Method::POST,
        "/admin/credits",
        root,
        Some(
            json!({ "user_id": alice_id, "app_key": "default", "delta": 50, "reason": "goodwill" }),
        ),
    );
    assert_eq!(status, 200, "{adjusted}");
    assert_eq!(balance(&server, alice), 51);

    // Logout ends the session: the same cookie is refused afterwards.
    let (status, _) = call(&server, Method::POST, "/auth/logout", alice, None);
    assert_eq!(status, 200);
    let (status, answer) = call(&server, Method::GET, "/credits", alice, None);
    assert_eq!((status, error_code(&answer)), (401, "unauthorized"));
    assert_eq!(server.get("/healthz").status(), 200);
}

#[test]
fn spoofed_identity_headers_never_reach_a_service_and_bad_input_names_the_field() {
    let server = Server::start_with_platform();
    let user_id = sign_up(&server, "mallory@example.com");
    let session = log_in(&server, "mallory@example.com");

    let spoofed = |request: RequestBuilder| {
        request
            .header("X-User-Id", "usr_victim")
            .header("X_User_Id", "usr_victim")
            .header("x-user-role", "admin")
            .header("X_USER_ROLE", "admin")
            .header("x-app-key", "someone-elses-app")
            .header("X_App_Key", "someone-elses-app")
    };
    // Nobody signed in: the service sees no identity header at all.
    let answer: Value = spoofed(server.request(Method::GET, "/auth/whoami"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(answer["data"]["caller"], Value::Null, "{answer}");
    assert_eq!(answer["data"]["identity_headers"], json!([]), "{answer}");
    // Signed in: exactly the three headers the gateway set from the session.
    let answer: Value = spoofed(server.request(Method::GET, "/auth/whoami"))
        .header("cookie", format!("session={session}"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut received: Vec<(String, String)> = answer["data"]["identity_headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap().into(),
                h["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    received.sort();
    let expected = [
        ("x-app-key", "default"),
        ("x-user-id", user_id.as_str()),
        ("x-user-role", "user"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    assert_eq!(received, expected, "{answer}");
    // A spoofed role opens no admin route.
    let response = spoofed(server.request(Method::GET, "/admin/users"))
        .header("cookie", format!("session={session}"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 403);

    // Every service validates its input and names the field; nothing changes.
    let me = As::Cookie(&session);
    let cases: [(Method, &str, Value, &str); 6] = [
        (
            Method::POST,
            "/orders",
            json!({ "credits": "many" }),
            "credits",
        ),
        (Method::POST, "/orders", json!({}), "credits"),
        (
            Method::POST,
            "/credits/spend",
            json!({ "amount": -5, "idempotency_key": "k" }),
            "amount",
        ),
        (
            Method::POST,
            "/tickets",
            json!({ "subject": 7, "body": "x" }),
            "subject",
        ),
        (Method::POST, "/keys", json!({ "name": ["x"] }), "name"),
        (Method::POST, "/content", json!({ "title": "t" }), "body"),
    ];
    for (method, path, body, field) in cases {
        let (status, answer) = call(&server, method, path, me, Some(body));
        assert_eq!(
            (status, error_code(&answer)),
            (400, "bad_request"),
            "{path}"
        );
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(field),
            "{path}: `{message}` does not name `{field}`"
        );
    }
    let response = server
        .request(Method::POST, "/auth/signup")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    let (status, answer) = call(
        &server,
        Method::POST,
        "/content",
        me,
        Some(json!(["t", "b"])),
    );
    assert_eq!(
        (status, error_code(&answer)),
        (400, "bad_request"),
        "only an object is a body"
    );
    assert_eq!(balance(&server, me), 0);
    let (_, orders) = call(&server, Method::GET, "/orders", me, None);
    assert_eq!(orders["data"]["orders"], json!([]), "{orders}");
    assert_eq!(server.get("/healthz").status(), 200);
}

/// How many times `auth` ran, as the operator's usage shows once flushed.
fn auth_runs(server: &Server) -> u64 {
    let out = server.cli(&["usage", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let usage: Value = serde_json::from_slice(&out.stdout).unwrap();
    usage["scripts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|script| script["script"] == "auth")
        .map(|script| script["total"]["invocations"].as_u64().unwrap())
        .sum()
}

#[test]
fn credentials_that_name_no_session_are_checked_once_per_memory_span() {
    let server = Server::start_with_config(
        "first_party = true\nsession_cache_ms = 60000\nusage_flush_ms = 100",
    );
    let settle = || {
        // Two equal readings a few flushes apart: nothing is still on its way.
        let mut last = auth_runs(&server);
        for _ in 0..100 {
            std::thread::sleep(std::time::Duration::from_millis(300));
            let now = auth_runs(&server);
            if now == last {
                return now;
            }
            last = now;
        }
        panic!("auth's usage kept changing for 30 s");
    };
    let before = settle();

    // A browser with an expired cookie reads public content five times: auth is asked
    // once, and every read is answered as for nobody.
    for _ in 0..5 {
        let (status, answer) = call(
            &server,
            Method::GET,
            "/content?app=default",
            As::Cookie("ses_expired"),
            None,
        );
        assert_eq!(status, 200, "{answer}");
    }
    assert_eq!(settle(), before + 1);
    // Protected routes still refuse it, without asking again.
    let (status, answer) = call(
        &server,
        Method::GET,
        "/credits",
        As::Cookie("ses_expired"),
        None,
    );
    assert_eq!((status, error_code(&answer)), (401, "unauthorized"));
    assert_eq!(settle(), before + 1);
}

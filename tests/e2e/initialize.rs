//! The web page's **Initialize** makes the demo customer and its `hello`, or nothing; it
//! answers requests from the server's own machine only, at one of its loopback names,
//! unless the operator allows it from anywhere in the config, and never a page of
//! another origin.

use std::net::{IpAddr, UdpSocket};

use serde_json::Value;

use crate::harness::{Server, guest};

/// An address of this machine other than loopback, if it has one: the source address
/// of a route to a documentation address (nothing is sent).
fn non_loopback_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("203.0.113.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

fn initialize_from(server: &Server, source: Option<IpAddr>) -> (u16, Value) {
    let client = reqwest::blocking::Client::builder()
        .local_address(source)
        .build()
        .unwrap();
    let response = client.post(server.url("/ui/initialize")).send().unwrap();
    (response.status().as_u16(), response.json().unwrap())
}

#[test]
fn initialize_serves_this_machine_and_other_machines_only_with_the_operators_consent() {
    let server = Server::start();
    let (status, answer) = initialize_from(&server, None);
    assert_eq!(status, 201, "{answer}");
    let token = answer["data"]["customers"][0]["token"].as_str().unwrap();
    assert_eq!(server.get("/dispatch/hello/").status(), 200);
    let scripts: Value = server
        .request(reqwest::Method::GET, "/scripts")
        .header("x-customer-token", token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(scripts["data"][0]["name"], "hello");
    // A second Initialize shows no token again.
    let (status, answer) = initialize_from(&server, None);
    assert_eq!(status, 200);
    assert_eq!(answer["data"]["customers"], serde_json::json!([]));

    let Some(elsewhere) = non_loopback_address() else {
        eprintln!("this machine has no address but loopback: the remote case is not checked");
        return;
    };
    let server = Server::start();
    let (status, answer) = initialize_from(&server, Some(elsewhere));
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"]["code"], "forbidden");
    let customers = server.cli(&["customer", "list", "--json"]);
    assert_eq!(
        String::from_utf8_lossy(&customers.stdout).trim(),
        "[]",
        "nothing was made"
    );

    let server = Server::start_with_config("allow_remote_initialize = true");
    let (status, answer) = initialize_from(&server, Some(elsewhere));
    assert_eq!(status, 201, "{answer}");
}

/// `POST /ui/initialize` from this machine with extra `headers`.
fn initialize_with(server: &Server, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = server.request(reqwest::Method::POST, "/ui/initialize");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().unwrap();
    (response.status().as_u16(), response.json().unwrap())
}

fn customer_names(server: &Server) -> Vec<String> {
    let out = server.cli(&["customer", "list", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let customers: Value = serde_json::from_slice(&out.stdout).unwrap();
    customers
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn initialize_refuses_other_origins_and_names_that_are_not_this_servers_loopback() {
    let server = Server::start();
    let own = format!("127.0.0.1:{}", server.port);
    let refused: [&[(&str, &str)]; 6] = [
        // A page of another site, posting from a browser on this machine.
        &[("origin", "http://evil.example")],
        &[("origin", "null")],
        &[("origin", &format!("http://localhost:{}", server.port))],
        // A name rebound to 127.0.0.1 by its owner's DNS.
        &[("host", &format!("evil.example:{}", server.port))],
        &[
            ("host", &format!("evil.example:{}", server.port)),
            ("origin", &format!("http://evil.example:{}", server.port)),
        ],
        // Loopback, but not this server's port.
        &[("host", "127.0.0.1:1")],
    ];
    for headers in refused {
        let (status, answer) = initialize_with(&server, headers);
        assert_eq!(status, 403, "{headers:?}: {answer}");
        assert_eq!(answer["error"]["code"], "forbidden", "{answer}");
    }
    assert_eq!(
        customer_names(&server),
        Vec::<String>::new(),
        "nothing was made"
    );

    // The page's own origin, under any of this server's loopback names.
    let own_origin = format!("http://{own}");
    let (status, answer) = initialize_with(&server, &[("origin", &own_origin)]);
    assert_eq!(status, 201, "{answer}");
    let localhost = format!("localhost:{}", server.port);
    let localhost_origin = format!("http://{localhost}");
    let (status, answer) = initialize_with(
        &server,
        &[("host", &localhost), ("origin", &localhost_origin)],
    );
    assert_eq!(status, 200, "{answer}");
    let v6 = format!("[::1]:{}", server.port);
    let (status, answer) = initialize_with(&server, &[("host", &v6)]);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(customer_names(&server), ["demo"]);

    // Allowed from anywhere, a foreign origin is still refused.
    let server = Server::start_with_config("allow_remote_initialize = true");
    let evil = format!("evil.example:{}", server.port);
    let (status, _) = initialize_with(&server, &[("host", &evil), ("origin", "http://elsewhere")]);
    assert_eq!(status, 403);
    assert_eq!(customer_names(&server), Vec::<String>::new());
}

#[test]
fn initialize_makes_the_whole_demo_or_nothing() {
    let server = Server::start();
    // Another customer owns `hello`, so the demo's cannot be deployed.
    let (_, acme) = server.create_customer("acme");
    assert_eq!(server.upload(&acme, "hello", &guest("hello")).status(), 201);
    let (status, answer) = initialize_with(&server, &[]);
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "name_taken", "{answer}");
    assert_eq!(
        customer_names(&server),
        ["acme"],
        "no demo customer is left"
    );

    // Once the name is free, Initialize makes a working demo (not "it existed already").
    let deleted = server
        .request(reqwest::Method::DELETE, "/script/hello")
        .header("x-customer-token", &acme)
        .send()
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let (status, answer) = initialize_with(&server, &[]);
    assert_eq!(status, 201, "{answer}");
    let token = answer["data"]["customers"][0]["token"].as_str().unwrap();
    let record = server
        .request(reqwest::Method::GET, "/script/hello")
        .header("x-customer-token", token)
        .send()
        .unwrap();
    assert_eq!(record.status(), 200);
    assert_eq!(customer_names(&server), ["acme", "demo"]);
}

//! The web page's **Initialize** makes the demo customer and its `hello`; it answers
//! requests from the server's own machine only, unless the operator allows it from
//! anywhere in the config.

use std::net::{IpAddr, UdpSocket};

use serde_json::Value;

use crate::harness::Server;

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

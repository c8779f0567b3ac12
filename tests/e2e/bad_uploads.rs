//! Every bad input answers its envelope error, changes nothing (the old version keeps
//! serving), and leaves the server serving.

use std::io::{Read as _, Write as _};

use reqwest::Method;

use crate::harness::{Server, expect_error, guest};
use crate::platform_module::HELLO;

/// A server where customer `acme` owns `app`, serving hello.
fn server_with_app() -> (Server, String) {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    assert_eq!(server.upload(&token, "app", &guest("hello")).status(), 201);
    (server, token)
}

fn still_serves_hello(server: &Server) {
    let response = server.get("/dispatch/app/");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().unwrap(), HELLO);
}

#[test]
fn uploads_without_a_valid_token_are_unauthorized() {
    let (server, token) = server_with_app();
    let no_token = server
        .request(Method::PUT, "/script/app")
        .body(guest("echo-wstd"))
        .send()
        .unwrap();
    expect_error(no_token, 401, "unauthorized");
    expect_error(
        server.upload("dsp_nobody_00", "app", &guest("echo-wstd")),
        401,
        "unauthorized",
    );
    // Right customer id, wrong secret.
    let (id_part, _) = token.rsplit_once('_').unwrap();
    let forged = format!("{id_part}_{}", "0".repeat(64));
    expect_error(
        server.upload(&forged, "app", &guest("echo-wstd")),
        401,
        "unauthorized",
    );
    let list = server.request(Method::GET, "/scripts").send().unwrap();
    expect_error(list, 401, "unauthorized");
    still_serves_hello(&server);
}

#[test]
fn bad_names_are_refused() {
    let (server, token) = server_with_app();
    for name in ["App", "-app", "a_b", &"a".repeat(64)] {
        expect_error(
            server.upload(&token, name, &guest("echo-wstd")),
            400,
            "invalid_name",
        );
    }
    still_serves_hello(&server);
}

#[test]
fn garbage_truncated_and_core_module_uploads_are_invalid_wasm_and_change_nothing() {
    let (server, token) = server_with_app();
    expect_error(
        server.upload(&token, "app", b"definitely not wasm"),
        400,
        "invalid_wasm",
    );

    let echo = guest("echo-wstd");
    let truncated = &echo[..echo.len() / 2];
    expect_error(server.upload(&token, "app", truncated), 400, "invalid_wasm");

    // The smallest valid core module: magic + version.
    let core_module = b"\0asm\x01\0\0\0";
    let message = expect_error(
        server.upload(&token, "app", core_module),
        400,
        "invalid_wasm",
    );
    assert!(
        message.contains("cargo build --target wasm32-wasip2"),
        "{message}"
    );
    still_serves_hello(&server);
}

/// An interface of another package can only be a typed-RPC import: without a service
/// binding that serves it, the upload is refused, naming it.
#[test]
fn a_component_importing_an_unknown_interface_is_refused_naming_it() {
    let (server, token) = server_with_app();
    let message = expect_error(
        server.upload(&token, "app", &guest("bad-import")),
        400,
        "bad_request",
    );
    assert!(message.contains("acme:evil/backdoor"), "{message}");
    // Refused for a new name too, and nothing was created.
    expect_error(
        server.upload(&token, "fresh", &guest("bad-import")),
        400,
        "bad_request",
    );
    expect_error(server.get("/dispatch/fresh/"), 404, "script_not_found");
    still_serves_hello(&server);
}

#[test]
fn an_oversize_upload_is_too_large() {
    let (server, token) = server_with_app();
    // Announce a body one byte over the 64 MiB cap, as a client waiting for an early
    // answer would: the server refuses it before reading any of it.
    let oversize = 64 * 1024 * 1024 + 1;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "PUT /script/app HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\
         x-customer-token: {token}\r\n\
         content-type: application/wasm\r\ncontent-length: {oversize}\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"code\":\"too_large\""), "{answer}");

    // A body just over the cap that is actually sent is refused the same way.
    let huge = vec![0u8; oversize];
    if let Ok(response) = server
        .request(Method::PUT, "/script/app")
        .header("x-customer-token", &token)
        .body(huge)
        .send()
    {
        expect_error(response, 413, "too_large");
    }
    still_serves_hello(&server);
}

#[test]
fn bad_multipart_and_tag_bodies_are_bad_requests() {
    let (server, token) = server_with_app();
    let form = reqwest::blocking::multipart::Form::new()
        .text("metadata", "{not json")
        .part(
            "worker.wasm",
            reqwest::blocking::multipart::Part::bytes(guest("echo-wstd")),
        );
    let response = server
        .request(Method::PUT, "/script/app")
        .header("x-customer-token", &token)
        .multipart(form)
        .send()
        .unwrap();
    expect_error(response, 400, "bad_request");

    let tags = server
        .request(Method::PUT, "/script/app/tags")
        .header("x-customer-token", &token)
        .body("{\"not\":\"an array\"}")
        .send()
        .unwrap();
    expect_error(tags, 400, "bad_request");
    still_serves_hello(&server);
}

#[test]
fn unknown_scripts_and_routes_answer_not_found() {
    let server = Server::start();
    expect_error(server.get("/dispatch/nobody/"), 404, "script_not_found");
    expect_error(server.get_host("nobody", "/"), 404, "script_not_found");
    expect_error(server.get("/no/such/route"), 404, "not_found");
}

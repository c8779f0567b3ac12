//! What the management API refuses before it does anything: a request carrying the
//! customer token twice is ambiguous (`400 bad_request`, nothing changes), and an upload
//! with a bad token or name is answered at once, without waiting for its body, and a
//! client still sending it reads that answer.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use reqwest::Method;

use crate::harness::{Server, expect_error, guest};

#[test]
fn a_repeated_token_header_is_a_bad_request_and_changes_nothing() {
    let server = Server::start();
    let (_, acme) = server.create_customer("acme");
    let (_, other) = server.create_customer("other");
    assert_eq!(server.upload(&acme, "kept", &guest("hello")).status(), 201);

    let twice = |method: Method, path: &str, second: &str, second_value: &str| {
        server
            .request(method, path)
            .header("x-customer-token", &acme)
            .header(second, second_value)
    };
    // The same token twice, another customer's second, or a second one spelled with `_`.
    for (second, value) in [
        ("x-customer-token", acme.as_str()),
        ("X-Customer-Token", other.as_str()),
        ("X_Customer_Token", other.as_str()),
    ] {
        let upload = twice(Method::PUT, "/script/fresh", second, value)
            .header("content-type", "application/wasm")
            .body(guest("hello"))
            .send()
            .unwrap();
        expect_error(upload, 400, "bad_request");
        let delete = twice(Method::DELETE, "/script/kept", second, value)
            .send()
            .unwrap();
        expect_error(delete, 400, "bad_request");
        let list = twice(Method::GET, "/scripts", second, value)
            .send()
            .unwrap();
        expect_error(list, 400, "bad_request");
    }

    let read = |name: &str| {
        server
            .request(Method::GET, &format!("/script/{name}"))
            .header("x-customer-token", &acme)
            .send()
            .unwrap()
    };
    expect_error(read("fresh"), 404, "script_not_found");
    assert_eq!(read("kept").status(), 200);
    assert_eq!(server.get("/dispatch/kept/").status(), 200);
}

/// Sends the head of a `PUT path` declaring a 5 MB body, then only a few bytes of it,
/// and keeps the connection open; returns the first line and the headers of the answer
/// (read for at most 5 s, a bound on a hang).
fn put_head_only(server: &Server, path: &str, token: Option<&str>) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let token = token.map_or(String::new(), |t| format!("x-customer-token: {t}\r\n"));
    let head = format!(
        "PUT {path} HTTP/1.1\r\nhost: 127.0.0.1:{}\r\n{token}\
         content-type: application/wasm\r\ncontent-length: 5000000\r\n\r\n\0asm",
        server.port
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(e) => panic!("no answer to PUT {path} while its body is pending: {e}"),
        }
    }
    String::from_utf8_lossy(&answer).to_ascii_lowercase()
}

#[test]
fn an_upload_with_a_bad_token_or_name_is_answered_before_its_body_arrives() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");

    let answer = put_head_only(&server, "/script/app", None);
    assert!(answer.starts_with("http/1.1 401"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    let answer = put_head_only(&server, "/script/app", Some("dsp_wrong_token"));
    assert!(answer.starts_with("http/1.1 401"), "{answer}");
    let answer = put_head_only(&server, "/script/Not_A_Name", Some(&token));
    assert!(answer.starts_with("http/1.1 400"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    let answer = put_head_only(&server, "/script/billing", Some(&token));
    assert!(answer.starts_with("http/1.1 409"), "{answer}");
    // A client busy sending a large body reads the answer, not a reset connection.
    let large = vec![0u8; 4 << 20];
    let metadata = serde_json::json!({});
    let refused = server.upload_with("dsp_wrong_token", "app", &large, metadata);
    expect_error(refused, 401, "unauthorized");
    expect_error(
        server.upload(&token, "Not_A_Name", &large),
        400,
        "invalid_name",
    );

    // Nothing was made, and the server goes on serving.
    let read = server
        .request(Method::GET, "/script/app")
        .header("x-customer-token", &token)
        .send()
        .unwrap();
    expect_error(read, 404, "script_not_found");
    assert_eq!(server.upload(&token, "app", &guest("hello")).status(), 201);
    assert_eq!(server.get("/dispatch/app/").status(), 200);
}

//! Uploads the size of real components: a JavaScript or Python component is 13-21 MB, so
//! a multipart upload carries up to `max_script_bytes` (64 MiB), and a gzip upload is
//! inflated as a stream under the same cap, so a gzip bomb is refused without being
//! inflated whole. An upload body that stalls, or trickles in for too long, gets `408`
//! and changes nothing.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::Method;
use serde_json::json;

use crate::harness::{Server, expect_error, guest};
use crate::platform_module::HELLO;

/// `wasm` with a custom section of `padding` bytes appended: the same component, bigger.
pub(crate) fn padded(wasm: &[u8], padding: usize) -> Vec<u8> {
    fn leb128(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"padding";
    let mut section = Vec::new();
    leb128(name.len(), &mut section);
    section.extend_from_slice(name);
    section.resize(section.len() + padding, 0xab);
    let mut padded = wasm.to_vec();
    padded.push(0); // custom section
    leb128(section.len(), &mut padded);
    padded.extend_from_slice(&section);
    padded
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn put_gzip(
    server: &Server,
    token: &str,
    name: &str,
    body: Vec<u8>,
) -> reqwest::blocking::Response {
    server
        .request(Method::PUT, &format!("/script/{name}"))
        .header("x-customer-token", token)
        .header("content-type", "application/wasm")
        .header("content-encoding", "gzip")
        .body(body)
        .send()
        .unwrap()
}

fn serves_hello(server: &Server, name: &str) {
    let response = server.get(&format!("/dispatch/{name}/"));
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().unwrap(), HELLO);
}

#[test]
fn a_20_mib_multipart_upload_and_gzip_uploads_succeed() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let big = padded(&guest("hello"), 20 << 20);
    let uploaded = server.upload_with(&token, "big", &big, json!({"main_module": "worker.wasm"}));
    assert_eq!(uploaded.status(), 201);
    serves_hello(&server, "big");

    assert_eq!(
        put_gzip(&server, &token, "zipped", gzip(&guest("hello"))).status(),
        201
    );
    serves_hello(&server, "zipped");
}

#[test]
fn a_gzip_bomb_and_bad_encodings_are_refused_and_change_nothing() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    assert_eq!(server.upload(&token, "app", &guest("hello")).status(), 201);

    // 256 MiB of zeros, about 1 MB compressed: over the 64 MiB cap once inflated.
    let bomb = gzip(&vec![0u8; 256 << 20]);
    assert!(bomb.len() < 2 << 20);
    expect_error(put_gzip(&server, &token, "app", bomb), 413, "too_large");

    expect_error(
        put_gzip(&server, &token, "app", b"not gzip at all".to_vec()),
        400,
        "bad_request",
    );
    let brotli = server
        .request(Method::PUT, "/script/app")
        .header("x-customer-token", &token)
        .header("content-encoding", "br")
        .body(guest("echo-wstd"))
        .send()
        .unwrap();
    expect_error(brotli, 400, "bad_request");
    serves_hello(&server, "app");
}

/// Sends an upload's head announcing `length` bytes, then `chunks` one at a time with
/// `pause` between them, and returns the start of the answer.
fn trickle(server: &Server, token: &str, length: usize, chunks: usize, pause: Duration) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "PUT /script/app HTTP/1.1\r\nhost: 127.0.0.1\r\nx-customer-token: {token}\r\n\
         content-type: application/wasm\r\ncontent-length: {length}\r\n\r\n"
    )
    .unwrap();
    for _ in 0..chunks {
        if stream.write_all(b"\0").is_err() {
            break;
        }
        std::thread::sleep(pause);
    }
    let mut answer = vec![0u8; 4096];
    let read = stream.read(&mut answer).unwrap_or(0);
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

#[test]
fn a_stalled_or_endless_upload_body_gets_408_and_changes_nothing() {
    let server =
        Server::start_with_config("upload_idle_timeout_ms = 500\nupload_timeout_ms = 2000\n");
    let (_, token) = server.create_customer("acme");
    assert_eq!(server.upload(&token, "app", &guest("hello")).status(), 201);

    // A few bytes, then silence.
    let answer = trickle(&server, &token, 1000, 3, Duration::from_millis(10));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    assert!(
        answer.to_lowercase().contains("connection: close"),
        "{answer}"
    );

    // A byte every 200 ms never stalls for 500 ms, but never ends either.
    let answer = trickle(&server, &token, 1000, 40, Duration::from_millis(200));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    serves_hello(&server, "app");
}

//! The front door sheds what an anonymous client could exhaust the server with: a
//! connection that stays silent is closed after `first_byte_timeout_ms`; connections past
//! `max_connections_per_address` from one client, or past `max_connections` in all, are
//! closed at once while other clients still get in; request heads are capped; cleartext
//! HTTP/2 is off unless configured; and at SIGTERM new connections are refused at once
//! while requests in flight finish.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::Duration;

use crate::harness::{Server, eventually, guest};
use crate::limits::with_query;

/// Connects and waits, without sending, for the server to end the connection; true when
/// it did within `within` (which only bounds a hang).
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Ok(0) | Err(_)) && {
        // A timeout is not a close: tell them apart.
        stream.set_nonblocking(true).unwrap();
        !matches!(stream.read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

fn connect(server: &Server) -> TcpStream {
    TcpStream::connect(("127.0.0.1", server.port)).unwrap()
}

/// A client whose connections come from `source` (another loopback address).
fn client_from(source: Ipv4Addr) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .local_address(IpAddr::V4(source))
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn hello_answers(client: &reqwest::blocking::Client, server: &Server) -> bool {
    client
        .get(server.url("/dispatch/app/"))
        .send()
        .is_ok_and(|r| r.status() == 200)
}

fn server_with(config: &str) -> Server {
    let server = Server::start_with_config(config);
    let (_, token) = server.create_customer("acme");
    assert_eq!(server.upload(&token, "app", &guest("hello")).status(), 201);
    server
}

#[test]
fn a_silent_connection_is_closed_after_the_first_byte_timeout() {
    let server = server_with("first_byte_timeout_ms = 300\n");
    let mut silent = connect(&server);
    assert!(closed_by_server(&mut silent, Duration::from_secs(10)));
    // A client that speaks at once is served.
    assert!(hello_answers(&client_from(Ipv4Addr::LOCALHOST), &server));
}

#[test]
fn connections_past_the_per_address_cap_are_closed_and_other_clients_get_in() {
    let server = server_with("first_byte_timeout_ms = 20000\nmax_connections_per_address = 4\n");
    let held: Vec<TcpStream> = (0..4).map(|_| connect(&server)).collect();
    let mut fifth = connect(&server);
    assert!(closed_by_server(&mut fifth, Duration::from_secs(10)));
    let other = client_from(Ipv4Addr::new(127, 0, 0, 2));
    assert!(hello_answers(&other, &server));
    drop(held);
    // Its connections closed, the first address gets in again.
    let first = client_from(Ipv4Addr::LOCALHOST);
    assert!(eventually(Duration::from_secs(5), || hello_answers(
        &first, &server
    )));
}

#[test]
fn connections_past_the_global_cap_are_closed_until_some_end() {
    let server = server_with("first_byte_timeout_ms = 20000\nmax_connections = 4\n");
    let held: Vec<TcpStream> = (0..4).map(|_| connect(&server)).collect();
    let other = client_from(Ipv4Addr::new(127, 0, 0, 2));
    assert!(!hello_answers(&other, &server));
    drop(held);
    assert!(eventually(Duration::from_secs(5), || hello_answers(
        &other, &server
    )));
}

/// Sends `head` on a new connection and returns what the server answers first.
fn exchange(server: &Server, head: &[u8]) -> String {
    let mut stream = connect(server);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(head);
    let mut answer = vec![0u8; 1024];
    let read = stream.read(&mut answer).unwrap_or(0);
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

#[test]
fn oversized_heads_and_cleartext_http2_are_refused() {
    let server = server_with("");
    let mut head = b"GET /dispatch/app/ HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: ".to_vec();
    head.resize(head.len() + (100 << 10), b'a');
    head.extend_from_slice(b"\r\n\r\n");
    let answer = exchange(&server, &head);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // HTTP/2 with prior knowledge gets no HTTP/2 (no SETTINGS frame back).
    let answer = exchange(&server, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 "),
        "{answer:?}"
    );
    assert!(hello_answers(&client_from(Ipv4Addr::LOCALHOST), &server));

    // Turned on, HTTP/2 answers the preface with its SETTINGS frame (type 4).
    let h2 = server_with("http2 = true\n");
    let answer = exchange(&h2, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert_eq!(answer.as_bytes().get(3), Some(&4), "{answer:?}");
}

#[test]
fn at_sigterm_new_connections_are_refused_at_once_and_requests_in_flight_finish() {
    let mut server = Server::start();
    let (_, token) = server.create_customer("acme");
    assert_eq!(server.upload(&token, "app", &guest("limits")).status(), 201);
    let url = server.url(&with_query("/dispatch/app/sleep", &[("ms", "3000")]));
    let in_flight = std::thread::spawn(move || {
        let response = reqwest::blocking::get(url).unwrap();
        (response.status().as_u16(), response.text().unwrap())
    });
    std::thread::sleep(Duration::from_millis(500));
    server.terminate();
    let refused = eventually(Duration::from_secs(5), || {
        TcpStream::connect(("127.0.0.1", server.port)).is_err()
    });
    assert!(refused, "new connections are still accepted after SIGTERM");
    assert!(
        !in_flight.is_finished(),
        "refused only once the request in flight was done"
    );
    assert_eq!(
        in_flight.join().unwrap(),
        (200, "slept 3000 ms".to_string())
    );
    assert!(server.exited_within(Duration::from_secs(15)));
}

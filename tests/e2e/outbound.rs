//! The outbound filter: every outgoing request of a script passes one interceptor.
//! Private addresses are refused by default (by IP, by a name that resolves to one, and
//! in IPv4-mapped IPv6 form) and reachable when the server's config opens them; identity
//! headers cannot be forged; an allow list permits its origins only; an outbound worker
//! sees the params, can inject a credential the upstream receives, and can refuse.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Server, eventually, guest};
use crate::limits::with_query;
use crate::services::front_and_back;
use crate::upstream::Upstream;

const OPEN_LOOPBACK: &str = "outbound_allow_private = [\"127.0.0.0/8\"]\n";

fn app(server: &Server) {
    let (_, token) = server.create_customer("acme");
    assert_eq!(server.upload(&token, "app", &guest("limits")).status(), 201);
}

/// `GET /dispatch/app/fetch?url=..&header=..` → (status, body).
fn fetch(server: &Server, url: &str, headers: &[&str]) -> (u16, String) {
    let mut params = vec![("url", url)];
    params.extend(headers.iter().map(|h| ("header", *h)));
    let response = server.get(&with_query("/dispatch/app/fetch", &params));
    (response.status().as_u16(), response.text().unwrap())
}

/// A script fetching `url` (a loopback peer that misbehaves) gets a timeout error well
/// before its 30 s wall-time limit: the outbound timeouts are 5 s and 10 s.
fn expect_timeout(url: &str) {
    let server = Server::start_with_config(OPEN_LOOPBACK);
    app(&server);
    let started = std::time::Instant::now();
    let (status, body) = fetch(&server, url, &[]);
    assert_eq!(status, 502, "{body}");
    assert!(body.to_lowercase().contains("timeout"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(25));
}

/// Installs the outbound-worker test guest as the platform script `egress`.
pub fn deploy_egress_worker(server: &Server) {
    let worker = server.data_dir().join("outbound-worker.wasm");
    std::fs::write(&worker, guest("outbound-worker")).unwrap();
    cli_ok(
        server,
        &["script", "deploy", "egress", worker.to_str().unwrap()],
    );
}

fn cli_ok(server: &Server, args: &[&str]) {
    let out = server.cli(args);
    assert!(out.status.success(), "{args:?}: {out:?}");
}

#[test]
fn private_addresses_are_refused_by_default_however_they_are_written() {
    let upstream = Upstream::start();
    let server = Server::start();
    app(&server);
    let port = upstream.port;
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://[::1]:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.0.0.1/".to_string(),
    ] {
        let (status, body) = fetch(&server, &url, &[]);
        assert_eq!(status, 502, "{url}: {body}");
        assert!(body.contains("refused"), "{url}: {body}");
    }
    assert_eq!(upstream.hits(), 0, "nothing reached the upstream");
}

#[test]
fn the_config_opens_private_ranges_and_identity_headers_cannot_be_forged() {
    let upstream = Upstream::start();
    let server = Server::start_with_config(OPEN_LOOPBACK);
    app(&server);
    let (status, body) = fetch(
        &server,
        &upstream.url("/hello"),
        &[
            "X-User-Id:admin",
            "x-user-role:admin",
            "X-Customer-Token:stolen",
            "x-trace:ok",
        ],
    );
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["path"], "/hello");
    let headers = seen["headers"].as_object().unwrap();
    assert_eq!(headers["x-trace"], "ok");
    for forged in ["x-user-id", "x-user-role", "x-customer-token"] {
        assert!(
            !headers.contains_key(forged),
            "{forged} reached the upstream"
        );
    }
    assert_eq!(headers["host"], format!("127.0.0.1:{}", upstream.port));

    // `Host` cannot be set at all.
    let (status, body) = fetch(&server, &upstream.url("/"), &["Host:internal.example"]);
    assert_eq!(status, 502, "{body}");
    assert_eq!(upstream.hits(), 1);
}

#[test]
fn an_allow_list_permits_its_origins_only() {
    let upstream = Upstream::start();
    let other = Upstream::start();
    let server = Server::start_with_config(OPEN_LOOPBACK);
    app(&server);
    let allowed = format!("http://127.0.0.1:{}", upstream.port);
    cli_ok(&server, &["outbound", "set", "app", "--allow", &allowed]);
    assert!(eventually(Duration::from_secs(5), || {
        fetch(&server, &other.url("/"), &[]).0 == 502
    }));
    // (Requests made before the policy reached the server may have gone through.)
    let reached_before = other.hits();
    let (status, body) = fetch(&server, &other.url("/"), &[]);
    assert!(body.contains("allow list"), "{status} {body}");
    assert_eq!(fetch(&server, &upstream.url("/x"), &[]).0, 200);
    assert_eq!(
        other.hits(),
        reached_before,
        "a refused request reached its host"
    );

    // A bad pattern is refused by the CLI and changes nothing.
    let refused = server.cli(&["outbound", "set", "app", "--allow", "ftp://x"]);
    assert!(!refused.status.success());
    assert_eq!(fetch(&server, &upstream.url("/x"), &[]).0, 200);

    cli_ok(&server, &["outbound", "clear", "app"]);
    assert!(eventually(Duration::from_secs(5), || {
        fetch(&server, &other.url("/"), &[]).0 == 200
    }));
}

#[test]
fn an_outbound_worker_sees_params_injects_credentials_and_can_refuse() {
    let upstream = Upstream::start();
    let server = Server::start_with_config(OPEN_LOOPBACK);
    app(&server);
    deploy_egress_worker(&server);
    cli_ok(
        &server,
        &[
            "outbound",
            "set",
            "app",
            "--worker",
            "egress",
            "--param",
            "TENANT=acme",
            "--param",
            "CREDENTIAL=s3cret",
        ],
    );

    let forwarded = || {
        let (status, body) = fetch(&server, &upstream.url("/data"), &[]);
        (status == 200)
            .then(|| serde_json::from_str::<Value>(&body).ok())
            .flatten()
            .filter(|seen| seen["headers"].get("x-injected-credential").is_some())
    };
    assert!(eventually(Duration::from_secs(5), || forwarded().is_some()));
    let seen = forwarded().unwrap();
    assert_eq!(seen["headers"]["x-injected-credential"], "s3cret");
    assert_eq!(seen["headers"]["x-outbound-tenant"], "acme");
    assert_eq!(seen["path"], "/data");

    let (status, body) = fetch(&server, &upstream.url("/refuse/me"), &[]);
    assert_eq!(
        (status, body.as_str()),
        (403, "refused by the outbound worker")
    );

    let hits = upstream.hits();
    let (status, body) = fetch(&server, &upstream.url("/local"), &["x-answer-locally:1"]);
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["answered_by"], "outbound-worker");
    assert_eq!(answer["tenant"], "acme");
    assert_eq!(answer["url"], upstream.url("/local"));
    assert_eq!(
        upstream.hits(),
        hits,
        "answered without reaching the upstream"
    );

    // The worker must exist in the platform namespace.
    let refused = server.cli(&["outbound", "set", "app", "--worker", "missing"]);
    assert!(!refused.status.success());
}

#[test]
fn a_refused_request_with_a_body_reports_why_it_was_refused() {
    let server = Server::start();
    let token = front_and_back(&server);
    let deleted = server
        .request(reqwest::Method::DELETE, "/script/back")
        .header("X-Customer-Token", &token)
        .send()
        .unwrap();
    assert_eq!(deleted.status(), 200);

    // The call is refused before its 256 KiB body is read; the guest still learns why.
    let response = server
        .request(reqwest::Method::POST, "/dispatch/front/upload")
        .body(vec![b'x'; 256 << 10])
        .send()
        .unwrap();
    assert_eq!(response.status(), 502);
    let body = response.text().unwrap();
    assert!(body.contains("is not deployed"), "{body}");
}

#[test]
fn an_upstream_that_never_answers_times_out_at_the_first_byte() {
    // Accepts connections and never answers (held open for longer than the timeout).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(4).collect();
        std::thread::sleep(Duration::from_secs(30));
        drop(held);
    });
    expect_timeout(&format!("http://127.0.0.1:{port}/"));
}

#[test]
fn a_request_opens_at_most_six_connections_at_once() {
    // Counts connections and never answers them.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(stream);
        }
    });
    let server = Server::start_with_config(OPEN_LOOPBACK);
    app(&server);
    let url = format!("http://127.0.0.1:{port}/");
    let path = with_query("/dispatch/app/fetch-parallel", &[("url", &url), ("n", "8")]);
    let request = std::thread::spawn({
        let url = server.url(&path);
        move || reqwest::blocking::get(url).unwrap().text().unwrap()
    });
    let count = || accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        eventually(Duration::from_secs(5), || count() == 6),
        "{}",
        count()
    );
    // Two more would connect now if the limit did not hold them back.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(count(), 6);
    // Each held connection times out at its first byte; the waiting ones then go.
    let report: Value = serde_json::from_str(&request.join().unwrap()).unwrap();
    assert_eq!(report["succeeded"], 0, "{report}");
    assert_eq!(count(), 8);
}

#[test]
fn an_upstream_that_stalls_mid_body_times_out_between_bytes() {
    use std::io::{Read as _, Write as _};
    // Answers the headers and the first bytes of a 100-byte body, then stalls.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nfirst bytes");
        std::thread::sleep(Duration::from_secs(30));
    });
    expect_timeout(&format!("http://127.0.0.1:{port}/"));
}

#[test]
fn a_host_that_never_accepts_the_connection_times_out_at_connect() {
    // A listener whose accept queue is full and never drained: the kernel drops further
    // connection attempts, so a connect hangs until the client gives up.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        socket.listen(0).unwrap()
    });
    let address = listener.local_addr().unwrap();
    let fillers: Vec<_> = (0..4)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&address, Duration::from_millis(300)).ok()
        })
        .collect();
    let probe = std::net::TcpStream::connect_timeout(&address, Duration::from_millis(500));
    assert_eq!(
        probe.map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::TimedOut),
        "the kernel should drop connection attempts to a full accept queue"
    );

    expect_timeout(&format!("http://{address}/"));
    drop((fillers, listener));
}

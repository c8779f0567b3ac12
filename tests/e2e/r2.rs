//! R2 bucket bindings, driven over HTTP through `examples/r2`: objects in and out with
//! their content type and metadata, ranges (`206`, `416`), conditional gets (`304`),
//! delimited listings and deletes of many; a 200 MiB object streamed both ways while the
//! server's memory stays flat; each customer's bucket names reach only its own objects;
//! the storage quota stores nothing partial; a server killed mid-put keeps the old object
//! and sweeps the half-written one; bad bucket names and keys are refused.

use std::io::Read;
use std::time::Duration;

use reqwest::Method;
use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};

use crate::harness::{Server, envelope, expect_error, guest};

const MIB: usize = 1 << 20;

fn files_metadata(bucket_name: &str) -> Value {
    json!({"bindings": [{"type": "r2_bucket", "name": "FILES", "bucket_name": bucket_name}]})
}

/// A server with `examples/r2` uploaded as `script`, bound to the bucket `files`.
fn with_files(server: &Server, customer: &str, script: &str) {
    let (_, token) = server.create_customer(customer);
    let created = server.upload_with(&token, script, &guest("r2"), files_metadata("files"));
    assert_eq!(created.status(), 201, "{}", created.text().unwrap());
}

fn put(server: &Server, path: &str, body: impl Into<Vec<u8>>) -> Response {
    server
        .request(Method::PUT, &format!("/dispatch/r2{path}"))
        .body(body.into())
        .send()
        .unwrap()
}

fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut request = server.request(Method::GET, &format!("/dispatch/r2{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().unwrap()
}

fn list(server: &Server, query: &[(&str, &str)]) -> Value {
    let listed = server
        .request(Method::GET, "/dispatch/r2/files")
        .query(query)
        .send()
        .unwrap();
    assert_eq!(listed.status(), 200);
    listed.json().unwrap()
}

fn keys(page: &Value) -> Vec<&str> {
    page["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect()
}

fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response.headers()[name].to_str().unwrap()
}

#[test]
fn r2_objects_go_in_and_come_out_with_ranges_conditions_listings_and_deletes() {
    let server = Server::start();
    with_files(&server, "acme", "r2");
    const TEXT: &str = "hello world, this is r2";

    let created = server
        .request(Method::PUT, "/dispatch/r2/files/notes.txt")
        .header("content-type", "text/plain")
        .header("x-meta-owner", "alice")
        .body(TEXT)
        .send()
        .unwrap();
    assert_eq!(created.status(), 201);
    let object: Value = created.json().unwrap();
    assert_eq!(object["key"], "notes.txt");
    assert_eq!(object["size"], TEXT.len());
    assert_eq!(object["content_type"], "text/plain");
    assert_eq!(object["custom_metadata"], json!({"owner": "alice"}));
    let etag = object["etag"].as_str().unwrap().to_string();
    assert!(!etag.is_empty() && !etag.contains('"'), "{etag}");

    let whole = get(&server, "/files/notes.txt", &[]);
    assert_eq!(whole.status(), 200);
    assert_eq!(header(&whole, "content-type"), "text/plain");
    assert_eq!(header(&whole, "content-length"), TEXT.len().to_string());
    assert_eq!(header(&whole, "etag"), format!("\"{etag}\""));
    assert_eq!(whole.text().unwrap(), TEXT);

    let meta = get(&server, "/files/notes.txt?meta", &[]);
    assert_eq!(meta.status(), 200);
    assert_eq!(meta.json::<Value>().unwrap(), object);
    assert_eq!(get(&server, "/files/nothing?meta", &[]).status(), 404);
    assert_eq!(get(&server, "/files/nothing", &[]).status(), 404);

    // Ranges: a span, an open end, a suffix; past the end is 416; several are ignored.
    for (range, bytes, content_range) in [
        ("bytes=0-4", "hello", "bytes 0-4/23"),
        ("bytes=6-", "world, this is r2", "bytes 6-22/23"),
        ("bytes=-2", "r2", "bytes 21-22/23"),
        ("bytes=6-1000", "world, this is r2", "bytes 6-22/23"),
    ] {
        let part = get(&server, "/files/notes.txt", &[("range", range)]);
        assert_eq!(part.status(), 206, "{range}");
        assert_eq!(header(&part, "content-range"), content_range, "{range}");
        assert_eq!(header(&part, "content-length"), bytes.len().to_string());
        assert_eq!(part.text().unwrap(), bytes, "{range}");
    }
    let past = get(&server, "/files/notes.txt", &[("range", "bytes=100-")]);
    assert_eq!(past.status(), 416);
    assert_eq!(header(&past, "content-range"), "bytes */23");
    let several = get(&server, "/files/notes.txt", &[("range", "bytes=0-1,4-5")]);
    assert_eq!(several.status(), 200);
    assert_eq!(several.text().unwrap(), TEXT);

    // Conditional gets.
    let quoted = format!("\"{etag}\"");
    let unchanged = get(&server, "/files/notes.txt", &[("if-none-match", &quoted)]);
    assert_eq!(unchanged.status(), 304);
    assert_eq!(header(&unchanged, "etag"), quoted);
    assert_eq!(unchanged.text().unwrap(), "");
    let stale = get(
        &server,
        "/files/notes.txt",
        &[("if-none-match", "\"other\"")],
    );
    assert_eq!(stale.status(), 200);
    assert_eq!(stale.text().unwrap(), TEXT);

    // A replaced object has a new etag; the old one no longer matches.
    let replaced: Value = put(&server, "/files/notes.txt", "v2").json().unwrap();
    assert_ne!(replaced["etag"], etag.as_str());
    assert_eq!(replaced["content_type"], Value::Null);
    let changed = get(&server, "/files/notes.txt", &[("if-none-match", &quoted)]);
    assert_eq!(changed.status(), 200);
    assert_eq!(changed.text().unwrap(), "v2");

    // Listings: a prefix, a delimiter, pages.
    for key in ["photos/2024/a.jpg", "photos/2024/b.jpg", "photos/c.jpg"] {
        assert_eq!(put(&server, &format!("/files/{key}"), key).status(), 201);
    }
    let all = list(&server, &[]);
    assert_eq!(
        keys(&all),
        [
            "notes.txt",
            "photos/2024/a.jpg",
            "photos/2024/b.jpg",
            "photos/c.jpg"
        ]
    );
    assert_eq!(all["truncated"], false);
    let folder = list(&server, &[("prefix", "photos/"), ("delimiter", "/")]);
    assert_eq!(keys(&folder), ["photos/c.jpg"]);
    assert_eq!(folder["delimited_prefixes"], json!(["photos/2024/"]));
    let first = list(&server, &[("limit", "2")]);
    assert_eq!(keys(&first), ["notes.txt", "photos/2024/a.jpg"]);
    assert_eq!(first["truncated"], true);
    let cursor = first["cursor"].as_str().unwrap();
    let rest = list(&server, &[("limit", "2"), ("cursor", cursor)]);
    assert_eq!(keys(&rest), ["photos/2024/b.jpg", "photos/c.jpg"]);

    // Deletes: one, many (a missing key is no error).
    let deleted = server
        .request(Method::DELETE, "/dispatch/r2/files/notes.txt")
        .send()
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(get(&server, "/files/notes.txt", &[]).status(), 404);
    let deleted = server
        .request(Method::POST, "/dispatch/r2/delete")
        .json(&json!([
            "photos/2024/a.jpg",
            "photos/2024/b.jpg",
            "never-there"
        ]))
        .send()
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(keys(&list(&server, &[])), ["photos/c.jpg"]);

    // Bad input: a key over 1024 bytes, a bad limit, a body that is not a key list.
    let long = put(&server, &format!("/files/{}", "k".repeat(1025)), "x");
    assert_eq!(long.status(), 400);
    assert!(long.text().unwrap().contains("key"));
    let longest = put(&server, &format!("/files/{}", "k".repeat(1024)), "x");
    assert_eq!(longest.status(), 201);
    let bad_limit = server
        .request(Method::GET, "/dispatch/r2/files?limit=many")
        .send()
        .unwrap();
    assert_eq!(bad_limit.status(), 400);
    let bad_keys = server
        .request(Method::POST, "/dispatch/r2/delete")
        .body("{\"keys\": 1}")
        .send()
        .unwrap();
    assert_eq!(bad_keys.status(), 400);
    assert!(bad_keys.json::<Value>().unwrap()["error"].is_string());
}

/// The bytes of a 200 MiB object, made as they are read: byte `i` is a function of `i`
/// that repeats only every 251 * 256 bytes, so a shifted or dropped chunk shows.
struct Pattern {
    at: usize,
    len: usize,
}

fn pattern_byte(i: usize) -> u8 {
    ((i % 251) as u8).wrapping_add((i / 251 % 256) as u8)
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.len - self.at);
        for (offset, byte) in buf[..n].iter_mut().enumerate() {
            *byte = pattern_byte(self.at + offset);
        }
        self.at += n;
        Ok(n)
    }
}

#[test]
fn r2_a_200_mib_object_streams_up_and_down_while_the_servers_memory_stays_flat() {
    const SIZE: usize = 200 * MIB;
    let server = Server::start_with_config(
        "max_request_body_bytes = 314572800\ncpu_ms = 120000\nwall_time_ms = 300000",
    );
    with_files(&server, "acme", "r2");
    // Warm up: the component compiled and instantiated, the store open.
    assert_eq!(put(&server, "/files/warm", "x").status(), 201);
    assert_eq!(get(&server, "/files/warm", &[]).text().unwrap(), "x");
    let baseline = server.rss_mib();
    let client = Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();

    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(baseline));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(server.rss_mib(), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });

        let body = reqwest::blocking::Body::sized(Pattern { at: 0, len: SIZE }, SIZE as u64);
        let created = client
            .put(server.url("/dispatch/r2/files/big.bin"))
            .body(body)
            .send()
            .unwrap();
        assert_eq!(created.status(), 201);
        let object: Value = created.json().unwrap();
        assert_eq!(object["size"], SIZE);

        let mut download = client
            .get(server.url("/dispatch/r2/files/big.bin"))
            .send()
            .unwrap();
        assert_eq!(download.status(), 200);
        assert_eq!(header(&download, "content-length"), SIZE.to_string());
        let (mut at, mut buf) = (0, vec![0u8; 1 << 16]);
        loop {
            let n = download.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            let wrong = (0..n).find(|&i| buf[i] != pattern_byte(at + i));
            assert!(wrong.is_none(), "byte {} differs", at + wrong.unwrap());
            at += n;
        }
        assert_eq!(at, SIZE);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        peak < baseline + 64,
        "the server's RSS grew from {baseline} MiB to {peak} MiB for a 200 MiB object"
    );
    // A range from the middle of the big object.
    let offset = 123 * MIB + 7;
    let range = format!("bytes={offset}-{}", offset + 9);
    let part = get(&server, "/files/big.bin", &[("range", &range)]);
    assert_eq!(part.status(), 206);
    let expected: Vec<u8> = (offset..offset + 10).map(pattern_byte).collect();
    assert_eq!(part.bytes().unwrap().as_ref(), expected.as_slice());
}

#[test]
fn r2_two_customers_with_the_same_bucket_name_see_only_their_own_objects() {
    let server = Server::start();
    let (_, token_a) = server.create_customer("a");
    let (_, token_b) = server.create_customer("b");
    for (token, script) in [(&token_a, "r2"), (&token_b, "r2-b")] {
        let created = server.upload_with(token, script, &guest("r2"), files_metadata("shared"));
        assert_eq!(created.status(), 201);
    }
    assert_eq!(put(&server, "/files/secret.txt", "a's data").status(), 201);
    let b_get = server.get("/dispatch/r2-b/files/secret.txt");
    assert_eq!(b_get.status(), 404);
    let b_list: Value = server.get("/dispatch/r2-b/files").json().unwrap();
    assert_eq!(b_list["objects"], json!([]));
    let b_put = server
        .request(Method::PUT, "/dispatch/r2-b/files/secret.txt")
        .body("b's data")
        .send()
        .unwrap();
    assert_eq!(b_put.status(), 201);
    assert_eq!(
        get(&server, "/files/secret.txt", &[]).text().unwrap(),
        "a's data"
    );
    let b_get = server.get("/dispatch/r2-b/files/secret.txt");
    assert_eq!(b_get.text().unwrap(), "b's data");
}

#[test]
fn r2_a_put_over_the_quota_is_refused_and_stores_nothing() {
    let server = Server::start_with_config("max_bucket_mb = 1");
    with_files(&server, "acme", "r2");

    let over = put(&server, "/files/big.bin", vec![7u8; 2 * MIB]);
    assert_eq!(over.status(), 413);
    // The rest of the body was never read: the connection closes after this answer, and
    // the answer says so (the next request goes on a new connection).
    assert_eq!(header(&over, "connection"), "close");
    let error: Value = over.json().unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("limit"),
        "{error}"
    );
    assert_eq!(list(&server, &[])["objects"], json!([]));
    assert_eq!(get(&server, "/files/big.bin", &[]).status(), 404);

    // Within the quota: stored; replacing it counts the new size only.
    assert_eq!(
        put(&server, "/files/a.bin", vec![1u8; 600 << 10]).status(),
        201
    );
    assert_eq!(
        put(&server, "/files/a.bin", vec![2u8; 700 << 10]).status(),
        201
    );
    // Another 600 KiB on top of the 700 KiB would pass 1 MiB.
    assert_eq!(
        put(&server, "/files/b.bin", vec![3u8; 600 << 10]).status(),
        413
    );
    assert_eq!(keys(&list(&server, &[])), ["a.bin"]);
    let kept = get(&server, "/files/a.bin", &[]).bytes().unwrap();
    assert_eq!(kept.len(), 700 << 10);
    assert!(kept.iter().all(|&b| b == 2));
    assert_eq!(put(&server, "/files/small.txt", "fits").status(), 201);
}

#[test]
fn r2_a_bad_bucket_name_is_refused_at_upload_and_changes_nothing() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let created = server.upload_with(&token, "r2", &guest("r2"), files_metadata("files"));
    assert_eq!(created.status(), 201);
    assert_eq!(put(&server, "/files/kept.txt", "still here").status(), 201);

    for bad in ["Bad_Name", "ab", "-files", &"b".repeat(64), "../etc"] {
        let response = server.upload_with(&token, "r2", &guest("r2"), files_metadata(bad));
        expect_error(response, 400, "bad_request");
    }
    let missing = json!({"bindings": [{"type": "r2_bucket", "name": "FILES"}]});
    let response = server.upload_with(&token, "r2", &guest("r2"), missing);
    expect_error(response, 400, "bad_request");

    let record = envelope(
        server
            .request(Method::GET, "/script/r2")
            .header("x-customer-token", &token)
            .send()
            .unwrap(),
        true,
    );
    assert_eq!(
        record["data"]["bindings"],
        json!([{"type": "r2_bucket", "name": "FILES", "bucket_name": "files"}])
    );
    assert_eq!(
        get(&server, "/files/kept.txt", &[]).text().unwrap(),
        "still here"
    );
}

#[test]
fn r2_a_server_killed_during_a_put_keeps_the_old_object_and_leaves_nothing_behind() {
    use std::io::Write as _;

    let server = Server::start();
    with_files(&server, "acme", "r2");
    assert_eq!(put(&server, "/files/doc", "the old version").status(), 201);

    // A put of 8 MiB whose client sends 1 MiB and then waits.
    let mut client = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let head = format!(
        "PUT /dispatch/r2/files/doc HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {}\r\n\r\n",
        8 * MIB
    );
    client.write_all(head.as_bytes()).unwrap();
    client.write_all(&vec![b'n'; MIB]).unwrap();
    let tmp = server.data_dir().join("r2").join("tmp");
    let pending = || std::fs::read_dir(&tmp).map_or(0, |dir| dir.count());
    assert!(
        crate::harness::eventually(Duration::from_secs(10), || pending() > 0),
        "the put never reached the store"
    );

    let (data, _temp) = server.stop(); // SIGKILL, mid-put
    let server = Server::start_in(&data, &[]);
    let read = get(&server, "/files/doc", &[]);
    assert_eq!(read.status(), 200);
    assert_eq!(read.text().unwrap(), "the old version");
    assert_eq!(pending(), 0, "the half-written put was left in r2/tmp");
    // Only the old object's blob is stored.
    let blobs: usize = std::fs::read_dir(data.join("r2").join("objects"))
        .unwrap()
        .map(|fan| std::fs::read_dir(fan.unwrap().path()).unwrap().count())
        .sum();
    assert_eq!(blobs, 1);
    drop(client);
}

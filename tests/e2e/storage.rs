//! Storage going wrong under the server: a disk that fills up answers
//! `507 insufficient_storage`, changes nothing and leaves no temporary files, scripts'
//! KV and SQL writes fail cleanly, and everything works again once there is space; a
//! component whose stored bytes are corrupted answers `503 script_unavailable` (never
//! "not found") until the same bytes are uploaded again.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Server, envelope, eventually, expect_error, guest};
use crate::platform_module::HELLO;

/// A file that takes all the free space of the filesystem it is on, until dropped.
struct Filler {
    path: PathBuf,
}

impl Filler {
    fn fill(dir: &Path) -> Filler {
        let path = dir.join("filler");
        let mut file = std::fs::File::create(&path).expect("create the filler");
        let chunk = vec![0xa5u8; 64 << 10];
        let error = loop {
            if let Err(error) = file.write_all(&chunk) {
                break error;
            }
        };
        assert_eq!(
            error.raw_os_error(),
            Some(28),
            "the filler stops at ENOSPC: {error}"
        );
        Filler { path }
    }

    /// Frees `bytes` of the space it took.
    fn shrink(&self, bytes: u64) {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .unwrap();
        let len = file.metadata().unwrap().len();
        file.set_len(len.saturating_sub(bytes)).unwrap();
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Every file under `dir` whose name starts with `.tmp-`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            found.extend(temp_files(&path));
        } else if entry.file_name().to_string_lossy().starts_with(".tmp-") {
            found.push(path);
        }
    }
    found
}

/// Asserts that `dir` holds no temporary file within a moment: a compile worker writes
/// the code cache after handing over its artifact, so its temporary file may outlive
/// the answer briefly.
fn no_temp_files_soon(dir: &Path, when: &str) {
    assert!(
        eventually(Duration::from_secs(10), || temp_files(dir).is_empty()),
        "{when}: {:?}",
        temp_files(dir)
    );
}

fn record(server: &Server, token: &str, name: &str) -> Value {
    let response = server
        .request(Method::GET, &format!("/script/{name}"))
        .header("x-customer-token", token)
        .send()
        .unwrap();
    envelope(response, true)["data"].clone()
}

fn kv_put(server: &Server, key: &str, value: Vec<u8>) -> reqwest::blocking::Response {
    server
        .request(Method::PUT, &format!("/dispatch/cache/{key}"))
        .body(value)
        .send()
        .unwrap()
}

fn sql(server: &Server, statement: &str, params: Value) -> reqwest::blocking::Response {
    server
        .request(Method::POST, "/dispatch/db/query")
        .json(&json!({"sql": statement, "params": params}))
        .send()
        .unwrap()
}

#[test]
fn a_full_disk_answers_507_changes_nothing_leaves_no_temp_files_and_then_recovers() {
    let Some(server) = Server::start_on_tmpfs(64) else {
        return;
    };
    let (_, token) = server.create_customer("acme");
    assert_eq!(server.upload(&token, "app", &guest("hello")).status(), 201);
    let kv = json!({"bindings": [{"type": "kv_namespace", "name": "CACHE", "namespace": "c"}]});
    let created = server.upload_with(&token, "cache", &guest("kv"), kv);
    assert_eq!(created.status(), 201);
    let d1 = json!({"bindings": [{"type": "d1", "name": "DB", "database": "main"}]});
    assert_eq!(
        server.upload_with(&token, "db", &guest("sql"), d1).status(),
        201
    );
    assert_eq!(
        sql(&server, "CREATE TABLE t (v BLOB)", json!([])).status(),
        200
    );
    let before = record(&server, &token, "app");
    let data = server.data_dir().to_path_buf();
    let new_version = guest("echo-wstd");

    // The new code-cache pack a compile worker writes replaces an older one and frees
    // that one's space: fill the disk once those writes are done.
    no_temp_files_soon(&data, "before filling");
    let filler = Filler::fill(&data);
    let message = expect_error(
        server.upload(&token, "app", &new_version),
        507,
        "insufficient_storage",
    );
    assert!(message.contains("storage"), "{message}");
    no_temp_files_soon(&data, "after the refused upload");
    assert_eq!(server.get("/dispatch/app/").text().unwrap(), HELLO);
    assert_eq!(record(&server, &token, "app"), before);
    // A new name is refused the same way and does not appear.
    expect_error(
        server.upload(&token, "fresh", &new_version),
        507,
        "insufficient_storage",
    );
    expect_error(server.get("/dispatch/fresh/"), 404, "script_not_found");

    // Scripts' own writes fail inside the script, which answers for itself.
    let put = kv_put(&server, "big", vec![7; 1 << 20]);
    assert_eq!(put.status(), 400);
    let error = put.text().unwrap();
    assert!(error.contains("storage is full"), "{error}");
    assert_eq!(server.get("/dispatch/cache/big").status(), 404);
    let insert = sql(
        &server,
        "INSERT INTO t VALUES (zeroblob(1048576))",
        json!([]),
    );
    assert_eq!(insert.status(), 400);
    let error = insert.text().unwrap();
    assert!(error.contains("full"), "{error}");
    let count: Value = sql(&server, "SELECT count(*) FROM t", json!([]))
        .json()
        .unwrap();
    assert_eq!(count["rows"], json!([[0]]));

    // As space comes back bit by bit, whichever write runs out first (the compiled
    // artifact, the component's bytes, the database) answers 507 and leaves nothing.
    // Steps of half the component's size: at least one lands where the artifact fits
    // and the component's bytes do not.
    let step = new_version.len() as u64 / 2;
    let mut answers = Vec::new();
    let created = loop {
        filler.shrink(step);
        let response = server.upload(&token, "app", &new_version);
        let status = response.status().as_u16();
        no_temp_files_soon(&data, &format!("after {status}"));
        if status == 200 {
            break response;
        }
        expect_error(response, 507, "insufficient_storage");
        assert_eq!(server.get("/dispatch/app/").text().unwrap(), HELLO);
        answers.push(status);
    };
    assert!(!answers.is_empty(), "the disk was full at first");
    assert_ne!(envelope(created, true)["data"]["sha256"], before["sha256"]);
    let echoed: Value = server.get("/dispatch/app/seen").json().unwrap();
    assert_eq!(echoed["path"], "/seen", "{echoed}");

    drop(filler);
    assert_eq!(server.upload(&token, "fresh", &new_version).status(), 201);
    assert_eq!(kv_put(&server, "big", vec![7; 1 << 20]).status(), 204);
    assert_eq!(
        server.get("/dispatch/cache/big").bytes().unwrap().len(),
        1 << 20
    );
    let insert = sql(
        &server,
        "INSERT INTO t VALUES (zeroblob(1048576))",
        json!([]),
    );
    assert_eq!(insert.status(), 200);
}

/// Flips a byte in the middle of the file at `path`.
fn corrupt(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_corrupted_component_answers_503_not_404_until_its_bytes_are_uploaded_again() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let hello = guest("hello");
    assert_eq!(server.upload(&token, "app", &hello).status(), 201);
    assert_eq!(server.upload(&token, "twin", &hello).status(), 201);
    assert_eq!(
        server.upload(&token, "other", &guest("echo-wstd")).status(),
        201
    );
    let sha256 = record(&server, &token, "app")["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let (data, _temp) = server.stop();

    // Both the component and its compiled artifact, so loading has nothing good to use.
    let blob = data.join("blobs").join(format!("{sha256}.wasm"));
    corrupt(&blob);
    let mut artifacts = 0;
    for entry in std::fs::read_dir(data.join("artifacts")).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&sha256)
        {
            corrupt(&path);
            artifacts += 1;
        }
    }
    assert_eq!(artifacts, 1);

    let server = Server::start_in(&data, &[]);
    for name in ["app", "twin"] {
        let message = expect_error(
            server.get(&format!("/dispatch/{name}/")),
            503,
            "script_unavailable",
        );
        assert!(!message.contains(&sha256), "no internals: {message}");
        assert_eq!(record(&server, &token, name)["sha256"], sha256.as_str());
    }
    assert_eq!(server.get("/dispatch/other/").status(), 200);
    expect_error(server.get("/dispatch/never/"), 404, "script_not_found");
    let log = server.log();
    assert!(log.contains("is corrupted"), "the reason is logged:\n{log}");
    assert!(log.contains("script unavailable"), "{log}");

    // The same bytes again rewrite the blob: both scripts that share it serve again.
    assert_eq!(server.upload(&token, "app", &hello).status(), 200);
    assert_eq!(server.get("/dispatch/app/").text().unwrap(), HELLO);
    assert_eq!(server.get("/dispatch/twin/").text().unwrap(), HELLO);
    let (data, _temp2) = server.stop();
    assert!(std::fs::read(&blob).unwrap() == hello, "the blob is healed");

    let server = Server::start_in(&data, &[]);
    assert_eq!(server.get("/dispatch/twin/").text().unwrap(), HELLO);
    drop(_temp);
}

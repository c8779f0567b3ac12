//! Bindings, driven over HTTP through the SDK examples: vars and secrets (readable by the
//! script, never returned or stored in the clear), KV (put/get/list/expiry, kept across
//! restarts), SQL (parameters, batches rolled back, host-file access refused), and the
//! rule that a customer's names only ever reach its own data.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Server, envelope, expect_error, guest};

const SECRET: &str = "s3cret-api-key-7f1e";

#[test]
fn vars_and_secrets_reach_the_script_but_never_the_api_or_the_disk() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let metadata = json!({"bindings": [
        {"type": "plain_text", "name": "GREETING", "text": "hi there"},
        {"type": "secret_text", "name": "API_KEY", "text": SECRET},
    ]});
    let created = server.upload_with(&token, "vars", &guest("vars"), metadata);
    assert_eq!(created.status(), 201);
    let record = envelope(created, true).to_string();
    assert!(
        !record.contains(SECRET),
        "the upload answer shows a secret: {record}"
    );

    let call = |key: &str| {
        server
            .request(Method::GET, "/dispatch/vars/")
            .header("x-api-key", key)
            .send()
            .unwrap()
    };
    let ok = call(SECRET);
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<Value>().unwrap(), json!({"greeting": "hi there"}));
    assert_eq!(call("wrong").status(), 401);
    let length: Value = server.get("/dispatch/vars/secret-length").json().unwrap();
    assert_eq!(length, json!({"length": SECRET.len()}));

    let read = server
        .request(Method::GET, "/script/vars")
        .header("x-customer-token", &token)
        .send()
        .unwrap();
    let record = envelope(read, true);
    assert_eq!(
        record["data"]["bindings"],
        json!([
            {"type": "secret_text", "name": "API_KEY"},
            {"type": "plain_text", "name": "GREETING", "text": "hi there"},
        ])
    );
    let listed = server
        .request(Method::GET, "/scripts")
        .header("x-customer-token", &token)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!listed.contains(SECRET));

    // At rest: sealed in the database, key file private, never in the log.
    let data = server.data_dir().to_path_buf();
    for file in ["dispatcher.db", "dispatcher.db-wal"] {
        let bytes = std::fs::read(data.join(file)).unwrap_or_default();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "{file} holds the secret in the clear"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(data.join("secrets.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(!server.log().contains(SECRET));

    // The secret survives a restart (the key is read back from the data dir).
    let (data, _temp) = server.stop();
    let server = Server::start_in(&data, &[]);
    let ok = server
        .request(Method::GET, "/dispatch/vars/")
        .header("x-api-key", SECRET)
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);
}

fn kv_metadata(namespace: &str) -> Value {
    json!({"bindings": [{"type": "kv_namespace", "name": "CACHE", "namespace": namespace}]})
}

#[test]
fn kv_values_small_and_large_come_back_byte_for_byte() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let created = server.upload_with(&token, "kv", &guest("kv"), kv_metadata("cache"));
    assert_eq!(created.status(), 201);
    // Small values are read inline, large ones (over 64 KiB) on the blocking pool.
    for size in [1, 64 << 10, (64 << 10) + 1, 1 << 20] {
        let value: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let key = format!("value-{size}");
        let put = server
            .request(Method::PUT, &format!("/dispatch/kv/{key}"))
            .body(value.clone())
            .send()
            .unwrap();
        assert_eq!(put.status(), 204, "put {size} bytes: {:?}", put.text());
        let got = server.get(&format!("/dispatch/kv/{key}"));
        assert_eq!(got.status(), 200);
        assert!(
            got.bytes().unwrap() == value,
            "{size} bytes came back changed"
        );
    }
    assert_eq!(server.get("/dispatch/kv/never-put").status(), 404);
}

#[test]
fn kv_put_get_list_and_expiry_survive_a_restart() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let created = server.upload_with(&token, "kv", &guest("kv"), kv_metadata("cache"));
    assert_eq!(created.status(), 201);

    let put = |server: &Server, key: &str, value: &str| {
        let response = server
            .request(Method::PUT, &format!("/dispatch/kv/{key}"))
            .body(value.to_string())
            .send()
            .unwrap();
        assert_eq!(response.status(), 204, "put {key}");
    };
    for (key, value) in [
        ("apple", "red"),
        ("banana", "yellow"),
        ("b2", "x"),
        ("cherry", "dark"),
    ] {
        put(&server, key, value);
    }
    let short_lived_at = std::time::Instant::now();
    let short_lived = server
        .request(Method::PUT, "/dispatch/kv/mayfly?ttl=2")
        .body("brief")
        .send()
        .unwrap();
    assert_eq!(short_lived.status(), 204);
    assert_eq!(server.get("/dispatch/kv/apple").text().unwrap(), "red");
    assert_eq!(server.get("/dispatch/kv/mayfly").text().unwrap(), "brief");
    assert_eq!(server.get("/dispatch/kv/missing").status(), 404);

    let list: Value = server.get("/dispatch/kv/?prefix=b").json().unwrap();
    let names: Vec<&str> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b2", "banana"]);
    assert_eq!(list["cursor"], Value::Null);

    // Pages of two, followed by cursor.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/dispatch/kv/?limit=2&cursor={c}"),
            None => "/dispatch/kv/?limit=2".to_string(),
        };
        let page: Value = server.get(&path).json().unwrap();
        let keys = page["keys"].as_array().unwrap();
        assert!(keys.len() <= 2);
        seen.extend(keys.iter().map(|k| k["name"].as_str().unwrap().to_string()));
        match page["cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["apple", "b2", "banana", "cherry", "mayfly"]);

    // A TTL of 2 s lives at least 2 s and less than 3 s.
    std::thread::sleep(Duration::from_millis(3100).saturating_sub(short_lived_at.elapsed()));
    assert_eq!(
        server.get("/dispatch/kv/mayfly").status(),
        404,
        "expired key still served"
    );
    let all: Value = server.get("/dispatch/kv/").json().unwrap();
    assert_eq!(all["keys"].as_array().unwrap().len(), 4);

    let deleted = server
        .request(Method::DELETE, "/dispatch/kv/cherry")
        .send()
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(server.get("/dispatch/kv/cherry").status(), 404);

    let long_key = "k".repeat(600);
    let refused = server
        .request(Method::PUT, &format!("/dispatch/kv/{long_key}"))
        .body("v")
        .send()
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.text().unwrap().contains("512"));

    let (data, _temp) = server.stop();
    let server = Server::start_in(&data, &[]);
    assert_eq!(server.get("/dispatch/kv/banana").text().unwrap(), "yellow");
    assert_eq!(server.get("/dispatch/kv/cherry").status(), 404);
}

fn sql_metadata(database: &str) -> Value {
    json!({"bindings": [{"type": "d1", "name": "DB", "database": database}]})
}

fn query(server: &Server, script: &str, sql: &str, params: Value) -> reqwest::blocking::Response {
    server
        .request(Method::POST, &format!("/dispatch/{script}/query"))
        .json(&json!({"sql": sql, "params": params}))
        .send()
        .unwrap()
}

#[test]
fn sql_runs_parameterised_statements_and_batches_and_refuses_host_access() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let created = server.upload_with(&token, "sql", &guest("sql"), sql_metadata("main"));
    assert_eq!(created.status(), 201);

    let ok = |sql: &str, params: Value| {
        let response = query(&server, "sql", sql, params);
        assert_eq!(response.status(), 200, "{sql}");
        response.json::<Value>().unwrap()
    };
    ok(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, score REAL)",
        json!([]),
    );
    let inserted = ok(
        "INSERT INTO notes (body, score) VALUES (?1, ?2)",
        json!(["first'); DROP TABLE notes; --", 1.5]),
    );
    assert_eq!(inserted["rows_written"], 1);
    assert_eq!(inserted["last_insert_id"], 1);
    ok(
        "INSERT INTO notes (body, score) VALUES (?, ?)",
        json!(["second", null]),
    );
    let rows = ok(
        "SELECT id, body, score FROM notes WHERE id >= ? ORDER BY id",
        json!([1]),
    );
    assert_eq!(rows["columns"], json!(["id", "body", "score"]));
    assert_eq!(
        rows["rows"],
        json!([
            [1, "first'); DROP TABLE notes; --", 1.5],
            [2, "second", null]
        ])
    );

    // A batch is one transaction: the failing statement rolls back the insert before it.
    let batch = server
        .request(Method::POST, "/dispatch/sql/batch")
        .json(&json!([
            {"sql": "INSERT INTO notes (body) VALUES (?)", "params": ["third"]},
            {"sql": "INSERT INTO no_such_table VALUES (1)", "params": []},
        ]))
        .send()
        .unwrap();
    assert_eq!(batch.status(), 400);
    let count = ok("SELECT COUNT(*) AS n FROM notes", json!([]));
    assert_eq!(count["rows"], json!([[2]]));
    let batch = server
        .request(Method::POST, "/dispatch/sql/batch")
        .json(&json!([
            {"sql": "INSERT INTO notes (body) VALUES (?)", "params": ["third"]},
            {"sql": "SELECT COUNT(*) FROM notes", "params": []},
        ]))
        .send()
        .unwrap();
    assert_eq!(batch.status(), 200);
    assert_eq!(batch.json::<Value>().unwrap()[1]["rows"], json!([[3]]));

    let outside = server.data_dir().parent().unwrap().join("stolen.db");
    let outside = outside.to_str().unwrap();
    for refused in [
        format!("ATTACH DATABASE '{outside}' AS stolen"),
        format!("VACUUM INTO '{outside}'"),
        "PRAGMA writable_schema = ON".to_string(),
        "PRAGMA max_page_count = 999999999".to_string(),
        "BEGIN".to_string(),
        "SELECT load_extension('/tmp/evil')".to_string(),
    ] {
        let response = query(&server, "sql", &refused, json!([]));
        assert_eq!(response.status(), 400, "{refused} was not refused");
        assert!(response.json::<Value>().unwrap()["error"].is_string());
    }
    assert!(
        !std::path::Path::new(outside).exists(),
        "a statement wrote outside its database"
    );
    // Read-only introspection stays available, and the database still works.
    let info = ok("PRAGMA table_info(notes)", json!([]));
    assert_eq!(info["rows"].as_array().unwrap().len(), 3);
    ok("INSERT INTO notes (body) VALUES ('after')", json!([]));
}

#[test]
fn a_customer_binding_another_customers_names_gets_its_own_empty_data() {
    let server = Server::start();
    let (_, token_a) = server.create_customer("a");
    let (_, token_b) = server.create_customer("b");
    let both = |ns: &str| {
        json!({"bindings": [
            {"type": "kv_namespace", "name": "CACHE", "namespace": ns},
        ]})
    };
    assert_eq!(
        server
            .upload_with(&token_b, "kv-b", &guest("kv"), both("shared"))
            .status(),
        201
    );
    assert_eq!(
        server
            .upload_with(&token_a, "kv-a", &guest("kv"), both("shared"))
            .status(),
        201
    );
    assert_eq!(
        server
            .upload_with(&token_b, "sql-b", &guest("sql"), sql_metadata("main"))
            .status(),
        201
    );
    assert_eq!(
        server
            .upload_with(&token_a, "sql-a", &guest("sql"), sql_metadata("main"))
            .status(),
        201
    );

    let put = server
        .request(Method::PUT, "/dispatch/kv-b/secret")
        .body("b's data")
        .send()
        .unwrap();
    assert_eq!(put.status(), 204);
    assert_eq!(
        server.get("/dispatch/kv-b/secret").text().unwrap(),
        "b's data"
    );
    assert_eq!(server.get("/dispatch/kv-a/secret").status(), 404);
    let listed: Value = server.get("/dispatch/kv-a/").json().unwrap();
    assert_eq!(listed["keys"], json!([]));

    assert_eq!(
        query(&server, "sql-b", "CREATE TABLE private (v TEXT)", json!([])).status(),
        200
    );
    assert_eq!(
        query(
            &server,
            "sql-b",
            "INSERT INTO private VALUES ('b only')",
            json!([])
        )
        .status(),
        200
    );
    let from_a = query(&server, "sql-a", "SELECT v FROM private", json!([]));
    assert_eq!(from_a.status(), 400);
    assert!(from_a.text().unwrap().contains("no such table"));
}

#[test]
fn bad_bindings_are_refused_and_change_nothing() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let good = json!({"bindings": [{"type": "plain_text", "name": "GREETING", "text": "v1"}]});
    assert_eq!(
        server
            .upload_with(&token, "vars", &guest("vars"), good)
            .status(),
        201
    );

    for bad in [
        json!({"bindings": [{"type": "service", "name": "AUTH", "service": "nope"}]}),
        json!({"bindings": [{"type": "plain_text", "name": "bad-name", "text": "x"}]}),
        json!({"bindings": [{"type": "plain_text", "name": "A", "text": "x"}, {"type": "plain_text", "name": "A", "text": "y"}]}),
        json!({"bindings": [{"type": "kv_namespace", "name": "CACHE", "namespace": "../../etc"}]}),
        json!({"bindings": [{"type": "plain_text", "name": "BIG", "text": "x".repeat(6000)}]}),
        json!({"bindings": [{"type": "teleporter", "name": "T"}]}),
    ] {
        let response = server.upload_with(&token, "vars", &guest("vars"), bad.clone());
        expect_error(response, 400, "bad_request");
    }
    let record = envelope(
        server
            .request(Method::GET, "/script/vars")
            .header("x-customer-token", &token)
            .send()
            .unwrap(),
        true,
    );
    assert_eq!(
        record["data"]["bindings"],
        json!([{"type": "plain_text", "name": "GREETING", "text": "v1"}])
    );
    // The first version, with its bindings, still serves.
    let length: Value = server.get("/dispatch/vars/secret-length").json().unwrap();
    assert_eq!(length, json!({"length": null}));
}

#[test]
fn sql_statements_stop_at_their_time_limit_and_databases_at_their_size_cap() {
    let temp = tempfile::tempdir().unwrap();
    let config = temp.path().join("dispatcher.toml");
    std::fs::write(
        &config,
        "first_party = false\nmax_database_mb = 1\nsql_statement_ms = 200\n",
    )
    .unwrap();
    let data = temp.path().join("data");
    let server = Server::start_in(&data, &["--config", config.to_str().unwrap()]);
    let (_, token) = server.create_customer("acme");
    assert_eq!(
        server
            .upload_with(&token, "sql", &guest("sql"), sql_metadata("main"))
            .status(),
        201
    );

    let endless =
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n";
    let stopped = query(&server, "sql", endless, json!([]));
    assert_eq!(stopped.status(), 400);
    assert!(stopped.text().unwrap().contains("time limit"));
    // A read too long to finish on the caller's thread (a quick read does) is run again
    // on the blocking pool, to the statement's limit, and gives its whole answer.
    let long_read = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 200000) \
                     SELECT COUNT(*), SUM(i) FROM n";
    let counted = query(&server, "sql", long_read, json!([]));
    assert_eq!(counted.status(), 200);
    let counted: Value = counted.json().unwrap();
    assert_eq!(counted["rows"], json!([[200000, 20000100000i64]]));

    assert_eq!(
        query(&server, "sql", "CREATE TABLE big (b BLOB)", json!([])).status(),
        200
    );
    let fill = "INSERT INTO big SELECT zeroblob(100000) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 30) SELECT i FROM n)";
    let full = query(&server, "sql", fill, json!([]));
    assert_eq!(full.status(), 400);
    assert!(full.text().unwrap().contains("full"));
    // Still usable afterwards.
    assert_eq!(
        query(&server, "sql", "SELECT COUNT(*) FROM big", json!([])).status(),
        200
    );
}

//! A script runs with nothing of the host: no environment variables or arguments, no
//! files, no sockets — even though its WASI imports link. Every request starts from the
//! script's own data segments, whether they are copied in (small data) or mapped from a
//! memory image (large data).

use std::net::TcpListener;

use crate::harness::{Server, guest};

#[test]
fn a_script_sees_no_environment_files_or_sockets() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    assert_eq!(
        server
            .upload(&token, "probe", &guest("sandbox-probe"))
            .status(),
        201
    );

    // Something real to connect to, so a refusal is the sandbox's doing.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    let report: serde_json::Value = server
        .get(&format!("/dispatch/probe/?connect={target}"))
        .json()
        .unwrap();

    assert_eq!(report["env"], serde_json::json!([]), "{report}");
    assert!(report["args"].as_array().unwrap().len() <= 1, "{report}");
    assert!(
        report["list_root"].as_str().unwrap().starts_with("Err"),
        "{report}"
    );
    assert!(
        report["read_passwd"].as_str().unwrap().starts_with("Err"),
        "{report}"
    );
    assert!(
        report["write_file"].as_str().unwrap().starts_with("Err"),
        "{report}"
    );
    assert!(
        report["connect"].as_str().unwrap().starts_with("error"),
        "{report}"
    );
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_err(),
        "the guest reached the host socket"
    );
}

#[test]
fn every_request_starts_from_the_data_segments_small_or_large() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    for (name, wasm) in [("probe", "sandbox-probe"), ("large", "large-data")] {
        assert_eq!(server.upload(&token, name, &guest(wasm)).status(), 201);
    }
    // Each request overwrites the data it found; the next must find it as it was.
    for round in 0..4 {
        let probe: serde_json::Value = server.get("/dispatch/probe/").json().unwrap();
        assert_eq!(probe["data_pristine"], true, "round {round}: {probe}");
        let large: serde_json::Value = server.get("/dispatch/large/").json().unwrap();
        assert_eq!(large["pristine"], true, "round {round}: {large}");
        assert_eq!(large["bytes"], 1 << 20);
    }
    // Small data is copied in and large data mapped, by two engines: their artifacts
    // carry two engine hashes.
    let engines: std::collections::BTreeSet<String> =
        std::fs::read_dir(server.data_dir().join("artifacts"))
            .unwrap()
            .filter_map(|entry| {
                let name = entry.unwrap().file_name().into_string().unwrap();
                let stem = name.strip_suffix(".cwasm")?;
                Some(stem.rsplit('-').next().unwrap().to_string())
            })
            .collect();
    assert_eq!(engines.len(), 2, "{engines:?}");
}

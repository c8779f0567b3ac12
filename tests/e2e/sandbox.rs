//! A script runs with nothing of the host: no environment variables or arguments, no
//! files, no sockets — even though its WASI imports link.

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

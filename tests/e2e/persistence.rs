//! State survives a restart without recompiling, and a damaged compiled artifact is
//! detected and rebuilt from the stored component.

use crate::harness::{Server, guest};
use crate::platform_module::HELLO;

#[test]
fn a_restart_keeps_every_script_and_recompiles_nothing() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    server.upload(&token, "one", &guest("hello"));
    server.upload(&token, "two", &guest("echo-wstd"));
    assert_eq!(server.metric("dispatcher_compiles_total"), 2);
    let (data, _temp) = server.stop();

    let server = Server::start_in(&data, &[]);
    assert_eq!(server.get("/dispatch/one/").text().unwrap(), HELLO);
    assert_eq!(server.get("/dispatch/two/").status(), 200);
    assert_eq!(server.metric("dispatcher_compiles_total"), 0);
    assert_eq!(server.metric("dispatcher_artifact_cache_hits_total"), 2);
    // The token still works after the restart.
    assert_eq!(server.upload(&token, "one", &guest("hello")).status(), 200);
}

#[test]
fn a_corrupted_artifact_is_detected_and_rebuilt() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    server.upload(&token, "app", &guest("hello"));
    let (data, _temp) = server.stop();

    for entry in std::fs::read_dir(data.join("artifacts")).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
    }

    let server = Server::start_in(&data, &[]);
    assert_eq!(server.metric("dispatcher_artifact_rebuilds_total"), 1);
    assert_eq!(server.metric("dispatcher_compiles_total"), 1);
    assert_eq!(server.get("/dispatch/app/").text().unwrap(), HELLO);
    let (data, _temp2) = server.stop();

    // The rebuilt artifact is good: the next start loads it without compiling.
    let server = Server::start_in(&data, &[]);
    assert_eq!(server.metric("dispatcher_compiles_total"), 0);
    assert_eq!(server.get("/dispatch/app/").text().unwrap(), HELLO);
    drop(_temp);
}

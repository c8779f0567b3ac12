//! The platform module (seed 002's `platform_module.mjs`): composed at upload into every
//! script that imports `platform:module/*`. The default template answers with its text,
//! also after a restart without recompiling; a script importing something the platform
//! module does not export is refused at upload naming it, and changes nothing.

use crate::harness::{Server, expect_error, guest};

/// What the default template (`examples/hello`) answers: `Hello! ` + `platform-thing()`.
pub const HELLO: &str = "Hello! This module is provided by the platform";

#[test]
fn the_default_template_answers_with_the_platform_module_text_also_after_a_restart() {
    let temp = tempfile::tempdir().expect("temp dir");
    let data = temp.path().join("data");
    let server = Server::start_in(&data, &["--demo"]);
    let response = server.get("/dispatch/hello/");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().unwrap(), HELLO);
    assert_eq!(server.get_host("hello", "/").text().unwrap(), HELLO);
    assert_eq!(server.metric("dispatcher_compiles_total"), 1);
    let (data, _) = server.stop();

    // The composed artifact is reused: no composition, no compilation.
    let server = Server::start_in(&data, &["--demo"]);
    assert_eq!(server.get("/dispatch/hello/").text().unwrap(), HELLO);
    assert_eq!(server.metric("dispatcher_compiles_total"), 0);
    assert_eq!(server.metric("dispatcher_artifact_cache_hits_total"), 1);
    assert_eq!(server.metric("dispatcher_artifact_rebuilds_total"), 0);
}

#[test]
fn a_customer_upload_of_the_template_is_composed_too() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    assert_eq!(server.upload(&token, "app", &guest("hello")).status(), 201);
    assert_eq!(server.get("/dispatch/app/").text().unwrap(), HELLO);
    // Every request instantiates the composition afresh; it keeps answering.
    for _ in 0..20 {
        assert_eq!(server.get("/dispatch/app/x").text().unwrap(), HELLO);
    }
}

#[test]
fn importing_a_function_the_platform_module_lacks_is_refused_naming_it() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    assert_eq!(server.upload(&token, "app", &guest("hello")).status(), 201);
    let compiles = server.metric("dispatcher_compiles_total");

    let message = expect_error(
        server.upload(&token, "app", &guest("bad-platform-import")),
        400,
        "invalid_wasm",
    );
    assert!(message.contains("unknown-thing"), "{message}");
    assert!(
        message.contains("platform:module/platform@0.1.0#unknown-thing"),
        "{message}"
    );
    assert!(
        message.contains("the platform module does not provide"),
        "{message}"
    );

    // Refused for a new name too, and nothing was created.
    expect_error(
        server.upload(&token, "fresh", &guest("bad-platform-import")),
        400,
        "invalid_wasm",
    );
    expect_error(server.get("/dispatch/fresh/"), 404, "script_not_found");

    // Refused before compiling; the earlier version keeps serving.
    assert_eq!(server.metric("dispatcher_compiles_total"), compiles);
    let response = server.get("/dispatch/app/");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().unwrap(), HELLO);
}

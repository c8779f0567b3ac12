//! Named entrypoints: a script may export HTTP handlers besides its default one, and a
//! service binding may name one. Only bound scripts reach a named entrypoint, never
//! eyeballs; a binding to an entrypoint the bound script does not export is refused at
//! upload, named, and a call to one that went away fails as a call, not the caller.

use serde_json::{Value, json};

use crate::harness::{Server, expect_error, guest};

fn upload(
    server: &Server,
    token: &str,
    name: &str,
    wasm: &str,
    bindings: Value,
) -> reqwest::blocking::Response {
    let metadata = json!({"main_module": "worker.wasm", "bindings": bindings});
    server.upload_with(token, name, &guest(wasm), metadata)
}

fn text(server: &Server, path: &str) -> (u16, String) {
    let response = server.get(path);
    (response.status().as_u16(), response.text().unwrap())
}

#[test]
fn a_bound_script_reaches_a_named_entrypoint_and_an_eyeball_only_the_default() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    let bindings = json!([
        {"type": "service", "name": "ADMIN", "service": "app", "entrypoint": "admin-interface"},
        {"type": "service", "name": "DEFAULT", "service": "app"},
    ]);
    assert_eq!(
        upload(&server, &token, "app", "entrypoints", bindings).status(),
        201
    );

    assert_eq!(
        text(&server, "/dispatch/app/x"),
        (200, "default: /x".into())
    );
    assert_eq!(
        text(&server, "/dispatch/app/call/ADMIN/y"),
        (200, "admin: /y".into())
    );
    assert_eq!(
        text(&server, "/dispatch/app/call/DEFAULT/y"),
        (200, "default: /y".into())
    );
    // No URL leads an eyeball to the named entrypoint.
    for path in [
        "/dispatch/app/admin-interface",
        "/dispatch/app/admin-interface/handle",
    ] {
        let (status, body) = text(&server, path);
        assert_eq!(status, 200);
        assert!(body.starts_with("default: "), "{body}");
    }
    let (status, body) = text(&server, "/dispatch/app/");
    assert_eq!((status, body.as_str()), (200, "default: /"));

    // Another script of the same owner binds it too.
    let bindings = json!([{"type": "service", "name": "ADMIN", "service": "app", "entrypoint": "admin-interface"}]);
    assert_eq!(
        upload(&server, &token, "caller", "entrypoints", bindings).status(),
        201
    );
    assert_eq!(
        text(&server, "/dispatch/caller/call/ADMIN/z"),
        (200, "admin: /z".into())
    );

    // The bound script loses the entrypoint: the call fails, the caller answers for it.
    assert_eq!(server.upload(&token, "app", &guest("hello")).status(), 200);
    let (status, _) = text(&server, "/dispatch/caller/call/ADMIN/z");
    assert_eq!(status, 500);
    assert_eq!(
        text(&server, "/dispatch/caller/x"),
        (200, "default: /x".into())
    );
}

#[test]
fn a_binding_to_an_entrypoint_that_is_not_exported_is_refused_at_upload() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    assert_eq!(
        server.upload(&token, "plain", &guest("hello")).status(),
        201
    );

    let cases = [
        json!([{"type": "service", "name": "ADMIN", "service": "plain", "entrypoint": "admin-interface"}]),
        json!([{"type": "service", "name": "SELF", "service": "caller", "entrypoint": "no-such-interface"}]),
        json!([{"type": "service", "name": "BAD", "service": "plain", "entrypoint": "Not A Name!"}]),
        json!([{"type": "service", "name": "BAD", "service": "plain", "entrypoint": 7}]),
    ];
    for bindings in cases {
        let message = expect_error(
            upload(&server, &token, "caller", "entrypoints", bindings.clone()),
            400,
            "bad_request",
        );
        assert!(message.contains("entrypoint"), "{bindings}: {message}");
    }
    let missing = server
        .request(reqwest::Method::GET, "/script/caller")
        .header("x-customer-token", &token)
        .send()
        .unwrap();
    expect_error(missing, 404, "script_not_found");
}

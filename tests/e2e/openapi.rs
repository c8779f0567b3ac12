//! `/openapi.json` describes the management, web-page and operator routes and the
//! envelope, and is kept true by construction: every route it documents is served.

use serde_json::Value;

use crate::harness::Server;

#[test]
fn the_openapi_document_lists_every_management_route_and_each_is_served() {
    let server = Server::start();
    let response = server.get("/openapi.json");
    assert_eq!(response.headers()["content-type"], "application/json");
    let doc: Value = response.json().unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/script/{name}", &["put", "get", "delete"][..]),
        ("/script/{name}/tags", &["put"]),
        ("/script/{name}/tail", &["get"]),
        ("/scripts", &["get"]),
        ("/usage", &["get"]),
        ("/ui/initialize", &["post"]),
        ("/healthz", &["get"]),
        ("/metrics", &["get"]),
        ("/operator/tail", &["get"]),
    ] {
        for method in methods {
            assert!(
                paths[path][method].is_object(),
                "{method} {path} is not documented"
            );
        }
    }
    let components = &doc["components"];
    for schema in ["ErrorEnvelope", "ScriptRecord", "TailEvent"] {
        assert!(
            components["schemas"][schema].is_object(),
            "schema {schema} missing"
        );
    }
    assert_eq!(
        components["securitySchemes"]["customer_token"]["name"],
        "X-Customer-Token"
    );

    // Nothing documented falls through to the fallback's "no such route".
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let url = path.replace("{name}", "nosuch");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = server
                .request(method.clone(), &url)
                .send()
                .unwrap()
                .text()
                .unwrap();
            assert!(
                !body.contains("no such route"),
                "{method} {url} is not served: {body}"
            );
        }
    }
}

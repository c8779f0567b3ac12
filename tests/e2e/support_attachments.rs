//! Support ticket attachments through the gateway: the ticket's owner adds raw bytes
//! (kept in the support service's R2 bucket), sees them listed with the ticket and
//! downloads them back byte for byte with their content type; another user finds neither
//! the ticket nor its attachments; an admin reads them; a closed ticket takes no more.

use reqwest::Method;
use reqwest::blocking::Response;
use serde_json::{Value, json};

use crate::harness::Server;
use crate::platform_client::{As, call, error_code, log_in, sign_up};

fn authorized(server: &Server, method: Method, path: &str, token: &str) -> Response {
    server
        .request(method, path)
        .header("authorization", format!("Bearer {token}"))
        .send()
        .unwrap()
}

fn attach(server: &Server, ticket: &str, name: &str, token: &str, bytes: &[u8]) -> Response {
    server
        .request(Method::POST, &format!("/tickets/{ticket}/attachments"))
        .query(&[("name", name)])
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/pdf")
        .body(bytes.to_vec())
        .send()
        .unwrap()
}

#[test]
fn ticket_attachments_are_stored_listed_and_downloaded_by_owner_and_admin_only() {
    let server = Server::start_with_platform();
    sign_up(&server, "alice@example.com");
    let alice = log_in(&server, "alice@example.com");
    sign_up(&server, "mallory@example.com");
    let mallory = log_in(&server, "mallory@example.com");
    sign_up(&server, "root@example.com");
    let out = server.cli(&["platform", "set-role", "root@example.com", "admin"]);
    assert!(out.status.success(), "{out:?}");
    let root = log_in(&server, "root@example.com");

    let (status, ticket) = call(
        &server,
        Method::POST,
        "/tickets",
        As::Bearer(&alice),
        Some(json!({ "subject": "Refund", "body": "The receipt is attached." })),
    );
    assert_eq!(status, 201, "{ticket}");
    let ticket_id = ticket["data"]["ticket"]["id"].as_str().unwrap().to_string();

    // The owner attaches a file of every byte value, a few times over.
    let pdf: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let added = attach(&server, &ticket_id, "receipt.pdf", &alice, &pdf);
    assert_eq!(added.status(), 201);
    let added: Value = added.json().unwrap();
    let attachment = &added["data"]["attachment"];
    assert_eq!(attachment["name"], "receipt.pdf");
    assert_eq!(attachment["size"], pdf.len());
    assert_eq!(attachment["content_type"], "application/pdf");
    let attachment_id = attachment["id"].as_str().unwrap().to_string();
    assert!(attachment_id.starts_with("att_"), "{attachment_id}");

    let (status, shown) = call(
        &server,
        Method::GET,
        &format!("/tickets/{ticket_id}"),
        As::Bearer(&alice),
        None,
    );
    assert_eq!(status, 200, "{shown}");
    let listed = shown["data"]["attachments"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{shown}");
    assert_eq!(listed[0]["id"], attachment_id.as_str());
    assert_eq!(listed[0]["size"], pdf.len());

    let path = format!("/tickets/{ticket_id}/attachments/{attachment_id}");
    for reader in [&alice, &root] {
        let download = authorized(&server, Method::GET, &path, reader);
        assert_eq!(download.status(), 200);
        assert_eq!(download.headers()["content-type"], "application/pdf");
        assert!(
            download.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment"),
        );
        assert_eq!(download.bytes().unwrap().as_ref(), pdf.as_slice());
    }

    // Another user: no such ticket, so no attachments to read or add.
    let download = authorized(&server, Method::GET, &path, &mallory);
    assert!(
        [403, 404].contains(&download.status().as_u16()),
        "{}",
        download.status()
    );
    let refused = attach(&server, &ticket_id, "evil.pdf", &mallory, b"x");
    assert!([403, 404].contains(&refused.status().as_u16()));
    // Nobody signed in: the gateway refuses.
    let anonymous = server.request(Method::GET, &path).send().unwrap();
    assert_eq!(anonymous.status(), 401);

    // Bad input: no name; an attachment id of another shape; one that does not exist.
    let unnamed = server
        .request(Method::POST, &format!("/tickets/{ticket_id}/attachments"))
        .header("authorization", format!("Bearer {alice}"))
        .body("x")
        .send()
        .unwrap();
    assert_eq!(unnamed.status(), 400);
    let bad_id = format!("/tickets/{ticket_id}/attachments/nope");
    assert_eq!(
        authorized(&server, Method::GET, &bad_id, &alice).status(),
        400
    );
    let missing = format!("/tickets/{ticket_id}/attachments/att_0000000000000000");
    assert_eq!(
        authorized(&server, Method::GET, &missing, &alice).status(),
        404
    );

    // An admin may attach too; once closed, the ticket takes no more.
    let by_admin = attach(&server, &ticket_id, "note.txt", &root, b"from support");
    assert_eq!(by_admin.status(), 201);
    let (status, _) = call(
        &server,
        Method::POST,
        &format!("/tickets/{ticket_id}/close"),
        As::Bearer(&alice),
        None,
    );
    assert_eq!(status, 200);
    // Over the size of one attachment: refused, and nothing is listed.
    let (status, open) = call(
        &server,
        Method::POST,
        "/tickets",
        As::Bearer(&alice),
        Some(json!({ "subject": "Big", "body": "A large file." })),
    );
    assert_eq!(status, 201, "{open}");
    let open_id = open["data"]["ticket"]["id"].as_str().unwrap().to_string();
    // Refused on its declared length, before the body is read: the answer is a 413, or,
    // when the server closes the connection under the rest of the upload first, none.
    let big = server
        .request(Method::POST, &format!("/tickets/{open_id}/attachments"))
        .query(&[("name", "big.bin")])
        .header("authorization", format!("Bearer {alice}"))
        .body(vec![7u8; (25 << 20) + 1])
        .send();
    if let Ok(big) = big {
        assert_eq!(big.status(), 413);
    }
    let (_, shown) = call(
        &server,
        Method::GET,
        &format!("/tickets/{open_id}"),
        As::Bearer(&alice),
        None,
    );
    assert_eq!(shown["data"]["attachments"], json!([]));
    let late = attach(&server, &ticket_id, "late.pdf", &alice, b"late");
    assert_eq!(late.status(), 409);
    assert_eq!(error_code(&late.json::<Value>().unwrap()), "ticket_closed");
    let (_, shown) = call(
        &server,
        Method::GET,
        &format!("/tickets/{ticket_id}"),
        As::Bearer(&root),
        None,
    );
    let names: Vec<&str> = shown["data"]["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["receipt.pdf", "note.txt"]);
}

//! The admin's CLI against a running server: changes reach it within one second.

use std::time::Duration;

use crate::harness::{Server, eventually, expect_error, guest};

#[test]
fn cli_lists_customers_and_scripts_as_json() {
    let server = Server::start();
    let (id, token) = server.create_customer("acme");
    server.upload(&token, "app", &guest("hello"));

    let customers: serde_json::Value =
        serde_json::from_slice(&server.cli(&["customer", "list", "--json"]).stdout).unwrap();
    assert_eq!(customers[0]["id"], id.as_str());
    assert!(customers[0].get("token").is_none());

    let scripts: serde_json::Value = serde_json::from_slice(
        &server
            .cli(&["script", "list", "--customer", &id, "--json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(scripts[0]["name"], "app");
}

#[test]
fn a_script_deleted_by_the_cli_stops_serving_within_a_second() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    server.upload(&token, "app", &guest("hello"));
    server.upload(&token, "tagged", &guest("hello"));
    assert_eq!(server.get("/dispatch/app/").status(), 200);

    let out = server.cli(&["script", "delete", "app", "--json"]);
    assert!(out.status.success(), "{out:?}");
    assert!(eventually(Duration::from_secs(5), || server
        .get("/dispatch/app/")
        .status()
        == 404));

    // Delete by tag.
    let out = server.cli(&["script", "delete", "--tag", "customer_id:nobody", "--json"]);
    assert!(out.status.success());
    assert_eq!(server.get("/dispatch/tagged/").status(), 200);
}

#[test]
fn a_rotated_token_stops_working_at_once() {
    let server = Server::start();
    let (id, old) = server.create_customer("acme");
    let out = server.cli(&["customer", "rotate-token", &id, "--json"]);
    assert!(out.status.success());
    let new: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let new = new["token"].as_str().unwrap();
    expect_error(
        server.upload(&old, "app", &guest("hello")),
        401,
        "unauthorized",
    );
    assert_eq!(server.upload(new, "app", &guest("hello")).status(), 201);
}

#[test]
fn script_list_shows_the_platforms_own_scripts_with_namespace_platform() {
    let server = Server::start_with_platform();
    let (_, token) = server.create_customer("acme");
    server.upload(&token, "app", &guest("hello"));
    let names = |args: &[&str]| -> Vec<String> {
        let out = server.cli(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        let scripts: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut names: Vec<String> = scripts
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(&["script", "list", "--namespace", "platform", "--json"]),
        ["admin", "ai", "auth", "billing", "content", "support"]
    );
    assert_eq!(
        names(&[
            "script",
            "list",
            "--namespace",
            "platform",
            "--tag",
            "first-party",
            "--json"
        ]),
        ["admin", "ai", "auth", "billing", "content", "support"]
    );
    assert_eq!(names(&["script", "list", "--json"]), ["app"]);
    let refused = server.cli(&["script", "list", "--namespace", "elsewhere"]);
    assert!(!refused.status.success());
}

/// The entries (`name`, `has a description`) of the `Arguments:` and `Options:`
/// sections of a `--help` text, and the subcommands its `Commands:` section lists.
fn help_entries(help: &str) -> (Vec<(String, bool)>, Vec<String>) {
    let (mut entries, mut commands) = (Vec::new(), Vec::new());
    let mut section = "";
    let lines: Vec<&str> = help.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with(' ') {
            section = line.trim_end_matches(':');
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let text = line.trim_start();
        // Entries start within 6 columns; deeper lines continue a description.
        if indent > 6 || text.is_empty() {
            continue;
        }
        let (name, description) = text.split_once("  ").unwrap_or((text, ""));
        match section {
            "Commands" => commands.push(name.trim().to_string()),
            "Arguments" | "Options" => {
                let next_is_description = lines.get(i + 1).is_some_and(|next| {
                    let next_indent = next.len() - next.trim_start().len();
                    next_indent > 6 && !next.trim().is_empty()
                });
                let described = !description.trim().is_empty() || next_is_description;
                entries.push((name.trim().to_string(), described));
            }
            _ => {}
        }
    }
    (entries, commands)
}

#[test]
fn every_flag_and_argument_of_every_command_has_help_text() {
    let temp = tempfile::tempdir().unwrap();
    let mut pending = vec![Vec::<String>::new()];
    let mut checked = 0;
    while let Some(command) = pending.pop() {
        let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
        args.push("--help");
        let out = crate::harness::cli(temp.path(), &args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        let help = String::from_utf8(out.stdout).unwrap();
        let (entries, commands) = help_entries(&help);
        assert!(!entries.is_empty(), "{args:?} shows no options:\n{help}");
        for (entry, described) in entries {
            assert!(described, "`{entry}` of {args:?} has no help text:\n{help}");
        }
        for sub in commands.into_iter().filter(|c| c != "help") {
            let mut path = command.clone();
            path.push(sub);
            pending.push(path);
        }
        checked += 1;
    }
    // dispatcher, serve, customer (3), script (4), limits (2), outbound (2), gc, tail,
    // usage, platform (1), demo, and their groups.
    assert!(checked >= 20, "only {checked} commands were checked");
}

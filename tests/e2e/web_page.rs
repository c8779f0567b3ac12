//! A customer uses the web page in a real browser (headless Chromium driven through
//! chromedriver): Initialize the demo, sign in with a token the page shows, upload a
//! component through the form, see it listed and open its URL, watch a request arrive in
//! the live tail, see its versions and deployments and roll it back, and read why a bad
//! upload was refused. A screenshot of the page is kept as `target/web-page-screenshot.png`.
//!
//! Without `/usr/bin/chromedriver` the test is skipped with a note, so `cargo test` works
//! on a machine without a browser; with `CI` set it fails instead (`.ci/run` installs
//! `chromium` and `chromium-driver`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Server, envelope, eventually, guest};
use crate::platform_module::HELLO;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long the page may take to show what a step expects (a CI machine can be slow).
const WAIT: Duration = Duration::from_secs(30);

#[test]
fn a_customer_initializes_signs_in_uploads_opens_tails_and_rolls_back_from_the_web_page() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start();
    let files = tempfile::tempdir().expect("temp dir");

    // Initialize shows the demo customer's token once.
    browser.goto(&server.url("/"));
    browser.click("#initialize");
    let token = browser.wait_for_text(".demo-token", |t| t.starts_with("dsp_"));

    // A wrong token is refused readably; the shown one signs in and lists the demo script.
    browser.fill("#token", "dsp_not_a_real_token");
    browser.click("#sign-in");
    browser.wait_for_text("#sign-in-error", |t| t.contains("not accepted"));
    browser.fill("#token", &token);
    browser.click("#sign-in");
    browser.find(r#"#scripts tr[data-script="hello"]"#);
    let storage = browser.execute("return [JSON.stringify(sessionStorage), localStorage.length]");
    assert!(storage[0].as_str().unwrap().contains(&token), "{storage}");
    assert_eq!(storage[1], 0, "nothing is kept in localStorage");

    // Upload `hello` through the form as `hello2` with two tags; it is listed with them.
    let hello = files.path().join("hello.wasm");
    std::fs::write(&hello, guest("hello")).unwrap();
    browser.upload(&hello, "hello2", "web,demo");
    browser.wait_for_text("#upload-status", |t| t.contains("Uploaded hello2"));
    let tags = browser.wait_for_text(r#"#scripts tr[data-script="hello2"] .tags"#, |t| {
        t.contains("web") && t.contains("demo")
    });
    assert!(
        !tags.contains("customer_id:"),
        "the owner's tag is shown: {tags}"
    );
    let link = browser.attr(r#"#scripts tr[data-script="hello2"] a"#, "href");
    assert_eq!(link, server.url("/dispatch/hello2/"));

    // Its dispatched URL answers in the browser.
    browser.goto(&link);
    browser.wait_for_text("body", |t| t.contains(HELLO));
    browser.back();

    // The live tail shows a request made while it is open.
    browser.click(r#"#scripts tr[data-script="hello2"] button.tail"#);
    browser.wait_for_text("#tail-status", |t| t.starts_with("Connected"));
    assert_eq!(server.get_and_read("/dispatch/hello2/"), 200);
    browser.wait_for_text("#tail-events tr .status", |t| t == "200");
    assert_eq!(browser.text("#tail-events tr .path"), "/");
    assert_eq!(browser.text("#tail-events tr .method"), "GET");
    assert_eq!(browser.text("#tail-events tr .outcome"), "ok");
    browser.click("#tail-stop");
    browser.wait_for_text("#tail-status", |t| t == "Stopped.");

    // Its Versions panel shows its one version live; with one deployment there is nothing
    // to roll back to, and the server's reason is shown.
    browser.click(r#"#scripts tr[data-script="hello2"] button.versions"#);
    browser.wait_for_text("#versions-name", |t| t == "hello2");
    browser.wait_for_text("#versions-rows tr.version .share", |t| t == "100%");
    browser.click("#versions-rollback");
    browser.wait_for_text("#versions-error", |t| t.contains("no earlier deployment"));

    // A second version uploaded through the API goes live at once; reopened, the panel
    // lists both, newest first, the newer live at 100% (the older one deployable).
    let replaced = server.upload(&token, "hello2", &guest("echo-wstd"));
    assert_eq!(replaced.status(), 200);
    let v2 = envelope(replaced, true)["data"]["version"]["id"]
        .as_str()
        .expect("the upload answers its version")
        .to_string();
    let versions = server
        .request(Method::GET, "/script/hello2/versions")
        .header("x-customer-token", &token)
        .send()
        .unwrap();
    let v1 = envelope(versions, true)["data"]["items"][1]["id"]
        .as_str()
        .expect("the first version is kept")
        .to_string();
    assert_eq!(served_version(&server, "/dispatch/hello2/"), "echo");
    let share = |id: &str| format!(r#"#versions-rows tr[data-version-id="{id}"] .share"#);
    browser.click(r#"#scripts tr[data-script="hello2"] button.versions"#);
    browser.wait_for_text(&share(&v2), |t| t == "100%");
    assert_eq!(browser.text(&share(&v1)), "—");
    let rows = browser.execute(
        "return [...document.querySelectorAll('#versions-rows tr')]
            .map((row) => [row.dataset.versionId, row.querySelector('button.deploy') !== null])",
    );
    assert_eq!(rows, json!([[v2, false], [v1, true]]));
    let error_hidden = browser.execute("return document.querySelector('#versions-error').hidden");
    assert_eq!(error_hidden, true, "reopening the panel clears its error");
    // A cell of the live deployment's row (the first).
    let live = |column: &str| format!("#deployments-rows tr.live .{column}");
    browser.wait_for_text(&live("split"), |t| t == format!("{v2} 100%"));
    assert_eq!(browser.text(&live("source")), "upload");

    // Roll back: the older version is live at 100% again, and answers.
    browser.click("#versions-rollback");
    browser.wait_for_text(&share(&v1), |t| t == "100%");
    assert_eq!(browser.text(&share(&v2)), "—");
    browser.wait_for_text(&live("split"), |t| t == format!("{v1} 100%"));
    assert_eq!(browser.text(&live("source")), "rollback");
    browser.wait_for_text("#versions-status", |t| t.contains("is live"));
    assert_eq!(served_version(&server, "/dispatch/hello2/"), "hello");

    // Deploy 100% on the newer version's row makes it live again.
    browser.click(&format!(
        r#"#versions-rows tr[data-version-id="{v2}"] button.deploy"#
    ));
    browser.wait_for_text(&share(&v2), |t| t == "100%");
    assert_eq!(served_version(&server, "/dispatch/hello2/"), "echo");

    // A file that is not a component is refused with a readable reason, and not kept.
    let bad = files.path().join("bad.wasm");
    std::fs::write(&bad, "not wasm").unwrap();
    browser.upload(&bad, "broken", "");
    let error = browser.wait_for_text("#upload-error", |t| !t.is_empty());
    let lowercase = error.to_lowercase();
    assert!(
        lowercase.contains("wasm") || lowercase.contains("webassembly"),
        "the server's reason is not shown: {error}"
    );
    let listed = server
        .request(Method::GET, "/scripts")
        .header("x-customer-token", &token)
        .send()
        .unwrap();
    let names: Vec<Value> = envelope(listed, true)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|script| script["name"].clone())
        .collect();
    assert_eq!(names, ["hello", "hello2"]);

    browser.screenshot(&screenshot_path());

    // Signing out forgets the token.
    browser.click("#sign-out");
    browser.find("#token");
    let storage = browser.execute("return [JSON.stringify(sessionStorage), location.href]");
    assert!(!storage.to_string().contains(&token), "{storage}");
}

/// Which guest answers `GET path`: `"hello"` (its text) or `"echo"` (`x-echo: wstd`).
fn served_version(server: &Server, path: &str) -> &'static str {
    let response = server.get(path);
    assert_eq!(response.status(), 200);
    if response.headers().contains_key("x-echo") {
        return "echo";
    }
    let body = response.text().expect("the whole body");
    assert_eq!(body, HELLO, "neither hello nor echo answered");
    "hello"
}

/// `target/web-page-screenshot.png`, beside the target's `tmp/`.
fn screenshot_path() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is inside the target directory")
        .join("web-page-screenshot.png")
}

/// A headless Chromium session. Every method blocks until the browser has answered (or
/// panics saying what it waited for), so the test reads top to bottom like the others.
struct Browser {
    client: Client,
    runtime: tokio::runtime::Runtime,
    _chromedriver: Chromedriver,
}

impl Browser {
    /// A browser at 1280×800, or `None` (after a note) when chromedriver is not
    /// installed and this is not CI.
    fn start() -> Option<Browser> {
        if !Path::new(CHROMEDRIVER).exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{CHROMEDRIVER} is missing: CI must run the web page test \
                 (install chromium and chromium-driver, as .ci/run does)"
            );
            // Straight to stderr: the test harness would capture an `eprintln!`.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** web_page: skipping: install chromium and chromium-driver, as .ci/run does ***\n"
            );
            return None;
        }
        let chromedriver = Chromedriver::start();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    "--window-size=1280,800",
                ],
            },
        });
        let client = runtime
            .block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(capabilities.as_object().unwrap().clone())
                    .connect(&chromedriver.url),
            )
            .expect("start a Chromium session through chromedriver");
        Some(Browser {
            client,
            runtime,
            _chromedriver: chromedriver,
        })
    }

    fn goto(&self, url: &str) {
        self.runtime
            .block_on(self.client.goto(url))
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    fn back(&self) {
        self.runtime.block_on(self.client.back()).expect("go back");
    }

    /// Retries `attempt` until it gives a value or `WAIT` passes. The page changes under
    /// the test (lists are re-rendered, sections shown), so a step that found a stale or
    /// hidden element simply tries again.
    fn poll<T>(&self, mut attempt: impl AsyncFnMut() -> Option<T>) -> Option<T> {
        self.runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                if let Some(value) = attempt().await {
                    return Some(value);
                }
                if tokio::time::Instant::now() >= deadline {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    }

    /// The first displayed element matching `css`, if any.
    async fn visible(&self, css: &str) -> Option<Element> {
        for element in self.client.find_all(Locator::Css(css)).await.ok()? {
            if element.is_displayed().await.ok()? {
                return Some(element);
            }
        }
        None
    }

    /// Waits for a visible `css`.
    fn find(&self, css: &str) -> Element {
        self.poll(async || self.visible(css).await)
            .unwrap_or_else(|| panic!("no visible `{css}` within {WAIT:?}"))
    }

    fn click(&self, css: &str) {
        self.poll(async || self.visible(css).await?.click().await.ok())
            .unwrap_or_else(|| panic!("could not click `{css}` within {WAIT:?}"));
    }

    /// Replaces the text of the input `css` with `text`.
    fn fill(&self, css: &str, text: &str) {
        self.poll(async || {
            let input = self.visible(css).await?;
            input.clear().await.ok()?;
            input.send_keys(text).await.ok()
        })
        .unwrap_or_else(|| panic!("could not type into `{css}` within {WAIT:?}"));
    }

    /// Fills in and submits the upload form.
    fn upload(&self, file: &Path, name: &str, tags: &str) {
        // A file input takes the file's path as its keys (replacing any earlier choice).
        let path = file.to_str().unwrap();
        self.poll(async || {
            self.visible("#upload-file")
                .await?
                .send_keys(path)
                .await
                .ok()
        })
        .expect("could not choose the file to upload");
        self.fill("#upload-name", name);
        self.fill("#upload-tags", tags);
        self.click("#upload-submit");
    }

    /// The text of a visible `css`.
    fn text(&self, css: &str) -> String {
        self.wait_for_text(css, |_| true)
    }

    fn attr(&self, css: &str, name: &str) -> String {
        self.poll(async || self.visible(css).await?.prop(name).await.ok()?)
            .unwrap_or_else(|| panic!("`{css}` has no `{name}` within {WAIT:?}"))
    }

    /// Waits until the text of a visible `css` satisfies `ready`; returns it.
    fn wait_for_text(&self, css: &str, ready: impl Fn(&str) -> bool) -> String {
        let mut last = None;
        let text = self.poll(async || {
            let text = self.visible(css).await?.text().await.ok()?;
            if ready(&text) {
                return Some(text);
            }
            last = Some(text);
            None
        });
        text.unwrap_or_else(|| {
            panic!("`{css}` never showed the expected text within {WAIT:?}; last: {last:?}")
        })
    }

    /// Runs `script` in the page and returns its result.
    fn execute(&self, script: &str) -> Value {
        self.runtime
            .block_on(self.client.execute(script, Vec::new()))
            .unwrap_or_else(|e| panic!("run `{script}`: {e}"))
    }

    /// Saves what the window shows, from the top of the page, as a PNG.
    fn screenshot(&self, path: &Path) {
        self.execute("window.scrollTo(0, 0)");
        let png = self
            .runtime
            .block_on(self.client.screenshot())
            .expect("take a screenshot");
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

impl Drop for Browser {
    /// Ends the session (Chromium quits) before chromedriver is killed.
    fn drop(&mut self) {
        let client = self.client.clone();
        let _ = self.runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), client.close()).await
        });
    }
}

/// chromedriver on a free loopback port, killed when dropped.
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    fn start() -> Chromedriver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {CHROMEDRIVER}: {e}"));
        let chromedriver = Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let status = format!("{}/status", chromedriver.url);
        let ready = eventually(WAIT, || {
            reqwest::blocking::get(&status)
                .and_then(|response| response.json::<Value>())
                .is_ok_and(|body| body["value"]["ready"] == true)
        });
        assert!(ready, "chromedriver did not answer on port {port}");
        chromedriver
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

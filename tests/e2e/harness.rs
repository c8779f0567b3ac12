//! Test harness: a real `dispatcher serve` on a free loopback port with its own temp data
//! directory, a real HTTP client, the real CLI, and the guest components built by
//! `dispatcher/build.rs`. Tests speak HTTP and never reach into internals.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_dispatcher");

/// A guest component built from `examples/` or `tests/guests/`.
pub fn guest(name: &str) -> Vec<u8> {
    let path = Path::new(env!("DISPATCHER_GUESTS_DIR")).join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Most tests do not need the platform's own services; installing them on every fresh
/// data directory would compile six components per test.
const WITHOUT_FIRST_PARTY: &str = "first_party = false";

pub struct Server {
    child: Child,
    pub base: String,
    pub port: u16,
    data: PathBuf,
    /// Where this test process sees the data directory's files: `data`, or a path into
    /// the server's own mount namespace.
    files: PathBuf,
    /// The command (and its arguments) the CLI runs under to see the data directory: none,
    /// or `nsenter` into the server's mount namespace.
    cli_prefix: Vec<String>,
    _temp: Option<tempfile::TempDir>,
    client: Client,
}

impl Server {
    /// A server on a fresh, empty data directory.
    pub fn start() -> Server {
        let temp = tempfile::tempdir().expect("temp dir");
        let data = temp.path().join("data");
        let mut server = Server::start_in(&data, &[]);
        server._temp = Some(temp);
        server
    }

    /// A server on a fresh data directory, started with `config` as its TOML config file.
    pub fn start_with_config(config: &str) -> Server {
        let temp = tempfile::tempdir().expect("temp dir");
        let data = temp.path().join("data");
        let path = temp.path().join("dispatcher.toml");
        let config = if config.contains("first_party") {
            config.to_string()
        } else {
            format!("{WITHOUT_FIRST_PARTY}\n{config}")
        };
        std::fs::write(&path, config).expect("write config");
        let mut server = Server::start_in(&data, &["--config", path.to_str().unwrap()]);
        server._temp = Some(temp);
        server
    }

    /// A server with the platform's own services and the gateway, on a fresh data
    /// directory (their first install compiles six components).
    pub fn start_with_platform() -> Server {
        Server::start_with_config("first_party = true")
    }

    /// A server on `data` (which may hold a previous server's state). Without a
    /// `--config` in `extra_args` it runs without the first-party services.
    pub fn start_in(data: &Path, extra_args: &[&str]) -> Server {
        Server::launch(data, extra_args, &[])
    }

    /// A server on a fresh data directory of its own `mib` MiB filesystem, so a test can
    /// fill the disk for real: a tmpfs mounted in a private mount namespace (as root, or
    /// in a user namespace when unprivileged), which dies with the server. The test sees
    /// its files through `/proc/PID/root` and the CLI runs in it with `nsenter`. `None`,
    /// said loudly, when this machine allows neither (and this is not CI).
    pub fn start_on_tmpfs(mib: u64) -> Option<Server> {
        let Some(namespace) = MountNamespace::available() else {
            let why = "cannot mount a tmpfs here (neither as root nor in a user namespace, \
                       or unshare/nsenter from util-linux are missing)";
            assert!(
                std::env::var_os("CI").is_none(),
                "{why}: CI must run this test"
            );
            // Straight to stderr: the test harness would capture an `eprintln!`.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPING a full-disk test: {why} ***\n"
            );
            return None;
        };
        let temp = tempfile::tempdir().expect("temp dir");
        let data = temp.path().join("data");
        let mount = format!("mount -t tmpfs -o size={mib}m tmpfs \"$0\" && exec \"$@\"");
        let mut wrapper: Vec<String> = ["unshare"].into_iter().map(String::from).collect();
        wrapper.extend(namespace.unshare.iter().map(|flag| flag.to_string()));
        wrapper.extend(["sh".into(), "-c".into(), mount, data.display().to_string()]);
        let mut server = Server::launch(&data, &[], &wrapper);
        // `unshare` and `sh` exec the server, so the child's id is the server's.
        let pid = server.child.id().to_string();
        let relative = data.strip_prefix("/").expect("an absolute temp dir");
        server.files = Path::new("/proc").join(&pid).join("root").join(relative);
        server.cli_prefix = ["nsenter", "--target", &pid]
            .into_iter()
            .chain(namespace.nsenter.iter().copied())
            .map(String::from)
            .collect();
        server._temp = Some(temp);
        Some(server)
    }

    /// A server on `data`, its command run by `wrapper` (a program and its arguments that
    /// end by exec'ing the rest of its arguments) unless that is empty.
    fn launch(data: &Path, extra_args: &[&str], wrapper: &[String]) -> Server {
        let mut args: Vec<String> = extra_args.iter().map(|a| a.to_string()).collect();
        if !extra_args.contains(&"--config") {
            let config = data.with_extension("toml");
            std::fs::write(&config, WITHOUT_FIRST_PARTY).expect("write config");
            args.extend(["--config".into(), config.display().to_string()]);
        }
        let mut command = match wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(BIN);
                command
            }
            None => Command::new(BIN),
        };
        let mut child = command
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log_path(data))
                    .expect("open server log"),
            ))
            .spawn()
            .expect("spawn dispatcher serve");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("dispatcher listening on ") {
                    let _ = tx.send(url.to_string());
                }
                // Keep draining so the server never blocks on a full pipe.
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("server did not start; log:\n{}", read_log(data)));
        let port = base.rsplit(':').next().unwrap().parse().unwrap();
        Server {
            child,
            base,
            port,
            data: data.to_path_buf(),
            files: data.to_path_buf(),
            cli_prefix: Vec::new(),
            _temp: None,
            // The server closes a keep-alive connection idle for its header clock (10 s);
            // reusing one that old races that close (an `IncompleteMessage`), so the pool
            // drops idle connections well before.
            client: Client::builder()
                .timeout(Duration::from_secs(60))
                .pool_idle_timeout(Duration::from_secs(4))
                .build()
                .unwrap(),
        }
    }

    /// Stops the server, keeping its data directory for a restart.
    pub fn stop(mut self) -> (PathBuf, Option<tempfile::TempDir>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.data.clone(), self._temp.take())
    }

    /// Sends the server SIGTERM (a graceful stop) and returns at once.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// The server's resident memory (`VmRSS` of /proc/PID/status), in MiB. Not for a
    /// server started on a tmpfs (its child is the namespace's wrapper).
    pub fn rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read the server's /proc status");
        status
            .lines()
            .find_map(|l| {
                l.strip_prefix("VmRSS:")?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .expect("VmRSS in /proc status")
            / 1024
    }

    /// Waits for the server to exit (after `terminate`), at most `within`.
    pub fn exited_within(&mut self, within: Duration) -> bool {
        eventually(within, || matches!(self.child.try_wait(), Ok(Some(_))))
    }

    /// The server's stderr log so far (tracing output, captured script console lines).
    pub fn log(&self) -> String {
        read_log(&self.data)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// GETs `path`; a request that gets no answer fails the test with the end of the
    /// server's log, which says why (a panic, a connection it closed).
    pub fn get(&self, path: &str) -> Response {
        self.request(reqwest::Method::GET, path)
            .send()
            .unwrap_or_else(|error| {
                let log = read_log(&self.data);
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                panic!(
                    "GET {path}: {error:?}; the server's log ends:\n{}",
                    tail.join("\n")
                )
            })
    }

    /// GETs `path` and reads the whole answer, as a browser does; returns the status. A
    /// client that hangs up before the end makes the script's last writes fail, so a run
    /// whose outcome a test checks must be read to the end.
    pub fn get_and_read(&self, path: &str) -> u16 {
        let response = self.get(path);
        let status = response.status().as_u16();
        response.text().expect("the whole body");
        status
    }

    /// `GET /` on host `{name}.localhost` (host routing).
    pub fn get_host(&self, name: &str, path: &str) -> Response {
        self.request(reqwest::Method::GET, path)
            .header("host", format!("{name}.localhost:{}", self.port))
            .send()
            .expect("GET with host")
    }

    pub fn upload(&self, token: &str, name: &str, wasm: &[u8]) -> Response {
        self.request(reqwest::Method::PUT, &format!("/script/{name}"))
            .header("x-customer-token", token)
            .header("content-type", "application/wasm")
            .body(wasm.to_vec())
            .send()
            .expect("PUT script")
    }

    /// Uploads `wasm` as multipart with WfP `metadata` (tags, bindings, ...).
    pub fn upload_with(&self, token: &str, name: &str, wasm: &[u8], metadata: Value) -> Response {
        let form = reqwest::blocking::multipart::Form::new()
            .part(
                "metadata",
                reqwest::blocking::multipart::Part::text(metadata.to_string()),
            )
            .part(
                "worker.wasm",
                reqwest::blocking::multipart::Part::bytes(wasm.to_vec())
                    .file_name("worker.wasm")
                    .mime_str("application/wasm")
                    .expect("valid mime"),
            );
        self.request(reqwest::Method::PUT, &format!("/script/{name}"))
            .header("x-customer-token", token)
            .multipart(form)
            .send()
            .expect("PUT script (multipart)")
    }

    /// The data directory this server runs on, as this test process sees it.
    pub fn data_dir(&self) -> &Path {
        &self.files
    }

    /// Runs the CLI against this server's data directory.
    pub fn cli(&self, args: &[&str]) -> Output {
        match self.cli_prefix.split_first() {
            Some((program, prefix_args)) => Command::new(program)
                .args(prefix_args)
                .arg(BIN)
                .arg("--data")
                .arg(&self.data)
                .args(args)
                .output()
                .expect("run the dispatcher CLI in the server's mount namespace"),
            None => cli(&self.data, args),
        }
    }

    /// Creates a customer with the CLI; returns (id, token).
    pub fn create_customer(&self, name: &str) -> (String, String) {
        let out = self.cli(&["customer", "create", name, "--json"]);
        assert!(out.status.success(), "customer create failed: {out:?}");
        let doc: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
        (
            doc["id"].as_str().unwrap().to_string(),
            doc["token"].as_str().unwrap().to_string(),
        )
    }

    /// A metric's value from `GET /metrics`.
    pub fn metric(&self, name: &str) -> u64 {
        let text = self.get("/metrics").text().unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("metric {name} missing in:\n{text}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a private mount namespace is made and entered on this machine.
struct MountNamespace {
    /// `unshare` flags that make one in which a tmpfs can be mounted.
    unshare: &'static [&'static str],
    /// `nsenter` flags that enter it.
    nsenter: &'static [&'static str],
}

impl MountNamespace {
    /// As root a mount namespace is enough; unprivileged, a user namespace where the
    /// caller is root goes with it. Tried on a scratch directory, in a namespace that
    /// ends with the probe.
    fn available() -> Option<MountNamespace> {
        let nsenter = Command::new("nsenter").arg("--version").output();
        if !nsenter.is_ok_and(|out| out.status.success()) {
            return None;
        }
        let scratch = tempfile::tempdir().ok()?;
        let candidates = [
            MountNamespace {
                unshare: &["--mount"],
                nsenter: &["--mount"],
            },
            MountNamespace {
                unshare: &["--user", "--map-root-user", "--mount"],
                // Unprivileged, nsenter may not set groups (the namespace denies it).
                nsenter: &["--user", "--mount", "--preserve-credentials"],
            },
        ];
        candidates.into_iter().find(|namespace| {
            Command::new("unshare")
                .args(namespace.unshare)
                .args(["sh", "-c", "mount -t tmpfs -o size=1m tmpfs \"$0\""])
                .arg(scratch.path())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })
    }
}

pub fn cli(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("run the dispatcher CLI")
}

/// Starts `dispatcher serve` on a fresh data dir with `config` as its TOML config, which
/// it must refuse: its standard error.
pub fn refused_config(config: &str) -> String {
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("dispatcher.toml");
    std::fs::write(&path, config).unwrap();
    let data = temp.path().join("data");
    let listen = ["serve", "--listen", "127.0.0.1:0", "--config"];
    let out = cli(&data, &[&listen[..], &[path.to_str().unwrap()]].concat());
    assert!(!out.status.success(), "started with {config:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn log_path(data: &Path) -> PathBuf {
    std::fs::create_dir_all(data).expect("create data dir");
    data.join("server.log")
}

fn read_log(data: &Path) -> String {
    std::fs::read_to_string(log_path(data)).unwrap_or_default()
}

/// The JSON body of a response, checked to be the envelope with `ok` = `expect_ok`.
pub fn envelope(response: Response, expect_ok: bool) -> Value {
    let status = response.status();
    let body: Value = response.json().expect("an envelope JSON body");
    assert_eq!(
        body["ok"],
        Value::Bool(expect_ok),
        "status {status}: {body}"
    );
    body
}

/// Asserts an error envelope with `status` and `code`; returns the message.
pub fn expect_error(response: Response, status: u16, code: &str) -> String {
    let got = response.status().as_u16();
    if got != status {
        panic!(
            "unexpected status {got} (expected {status}): {}",
            response.text().unwrap_or_default()
        );
    }
    let body = envelope(response, false);
    assert_eq!(body["error"]["code"], code, "{body}");
    body["error"]["message"].as_str().unwrap().to_string()
}

/// Whether `response` is the error envelope with `status` and `code` (for polling until
/// a setting applies: another failure with the same status does not count).
pub fn is_error(response: Response, status: u16, code: &str) -> bool {
    response.status().as_u16() == status
        && response
            .json::<Value>()
            .is_ok_and(|body| body["error"]["code"] == code)
}

/// Polls `check` until it returns true or `within` passes.
pub fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

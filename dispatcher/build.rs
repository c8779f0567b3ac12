//! Builds every guest component of the workspace (`platform-module`, `examples/*`,
//! `examples/platform/*` and `tests/guests/*`) for `wasm32-wasip2` once, so the binary
//! can embed the platform module, the default template and the first-party services,
//! and the tests can upload real components. Guests go to their own target directory so
//! this nested cargo never waits on the outer one. If the `wasm32-wasip2` target is
//! missing it is installed with rustup, so `cargo run` works on a fresh machine.

use std::path::{Path, PathBuf};
use std::process::Command;

const GUEST_TARGET: &str = "wasm32-wasip2";
const GUEST_PROFILE: &str = "guest";

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("dispatcher/ sits in the workspace");
    let out_dir = PathBuf::from(env("OUT_DIR"));

    let mut guests: Vec<(String, PathBuf)> = ["examples", "examples/platform", "tests/guests"]
        .iter()
        .flat_map(|dir| guest_crates(&workspace.join(dir)))
        .collect();
    // The platform module, embedded in the binary and composed into scripts at upload.
    guests.push(("platform-module".into(), workspace.join("platform-module")));
    for (_, dir) in &guests {
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );

    ensure_target_installed();

    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("guests");
    // The platform module is `no_std`: built with the others, it would get the `std`
    // feature that they turn on in their shared dependencies (wit-bindgen), so it is
    // built on its own.
    let (alone, together): (Vec<_>, Vec<_>) = guests
        .iter()
        .map(|(name, _)| name.as_str())
        .partition(|name| *name == "platform-module");
    for names in [together, alone] {
        build_guests(workspace, &target_dir, &names);
    }

    // Only this build's guests are offered: a component left over from an earlier build
    // (a guest since renamed or no longer found) must not pass a test locally that fails
    // on a clean checkout.
    for stale in std::fs::read_dir(&out_dir).expect("read OUT_DIR").flatten() {
        if stale.path().extension().is_some_and(|ext| ext == "wasm") {
            std::fs::remove_file(stale.path()).expect("remove a stale guest");
        }
    }
    let built = target_dir.join(GUEST_TARGET).join(GUEST_PROFILE);
    for (name, _) in &guests {
        let file = format!("{}.wasm", name.replace('-', "_"));
        let from = [built.join(&file), built.join(format!("{name}.wasm"))]
            .into_iter()
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("guest {name} produced no .wasm in {}", built.display()));
        std::fs::copy(&from, out_dir.join(format!("{name}.wasm"))).expect("copy guest");
    }
    println!(
        "cargo:rustc-env=DISPATCHER_GUESTS_DIR={}",
        out_dir.display()
    );
}

/// Builds the guest packages `names` in one cargo invocation (so they share the features
/// of their dependencies) into `target_dir`.
fn build_guests(workspace: &Path, target_dir: &Path, names: &[&str]) {
    let mut cargo = Command::new(env("CARGO"));
    cargo
        .current_dir(workspace)
        .args([
            "build",
            "--target",
            GUEST_TARGET,
            "--profile",
            GUEST_PROFILE,
        ])
        .arg("--target-dir")
        .arg(target_dir);
    for name in names {
        cargo.args(["-p", name]);
    }
    // The outer build's flags and wrappers (clippy, coverage) are for the host, not guests.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cargo.env_remove(var);
    }
    let status = cargo.status().expect("run cargo for the guest components");
    assert!(status.success(), "building the guest components failed");
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}

/// Every component crate directly under `dir`, as (package name, directory): a `cdylib`
/// (the `sdk` convention) or a binary with `src/main.rs` (the `wstd` convention). The
/// package name is the directory name by convention; plain library crates (such as the
/// first-party services' `kit`) are built as their dependents' dependencies.
fn guest_crates(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut crates: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.join("src/main.rs").is_file()
                || std::fs::read_to_string(p.join("Cargo.toml"))
                    .is_ok_and(|toml| toml.contains("cdylib"))
        })
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    crates.sort();
    crates
}

fn ensure_target_installed() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", GUEST_TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if libdir.is_some_and(|dir| dir.exists()) {
        return;
    }
    println!("cargo:warning=installing the {GUEST_TARGET} target with rustup");
    let status = Command::new("rustup")
        .args(["target", "add", GUEST_TARGET])
        .status()
        .expect("rustup is needed to add the wasm32-wasip2 target");
    assert!(status.success(), "rustup target add {GUEST_TARGET} failed");
}

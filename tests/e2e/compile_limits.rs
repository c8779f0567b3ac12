//! Compiles happen in a cage: a component over the code limits is refused before
//! compiling, a compile past its time or memory limit is refused with the limit named
//! (and the old version keeps serving), and identical bytes compile once.

use std::time::{Duration, Instant};

use wasm_encoder::{
    CodeSection, Component, Function, FunctionSection, Instruction, Module, ModuleSection,
    TypeSection, ValType,
};

use crate::harness::{Server, expect_error, guest};
use crate::large_uploads::padded;
use crate::platform_module::HELLO;

/// A component holding one core module of `functions` functions, each `i32 -> i32` with
/// `body_ops` additions, and the first one nesting `depth` blocks. Valid, and costly to
/// compile when large enough; it exports nothing, so it would not link.
fn generated_component(functions: u32, body_ops: u32, depth: u32) -> Vec<u8> {
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], [ValType::I32]);
    let mut declared = FunctionSection::new();
    let mut code = CodeSection::new();
    for i in 0..functions {
        declared.function(0);
        let mut body = Function::new([]);
        let nesting = if i == 0 { depth } else { 0 };
        for _ in 0..nesting {
            body.instruction(&Instruction::Block(wasm_encoder::BlockType::Empty));
        }
        for _ in 0..nesting {
            body.instruction(&Instruction::End);
        }
        body.instruction(&Instruction::LocalGet(0));
        for k in 0..body_ops {
            body.instruction(&Instruction::I32Const(k as i32 + 1));
            body.instruction(&Instruction::I32Mul);
            body.instruction(&Instruction::LocalGet(0));
            body.instruction(&Instruction::I32Add);
        }
        body.instruction(&Instruction::End);
        code.function(&body);
    }
    let mut module = Module::new();
    module.section(&types).section(&declared).section(&code);
    let mut component = Component::new();
    component.section(&ModuleSection(&module));
    component.finish()
}

/// Big enough that compiling it takes seconds.
fn slow_component() -> Vec<u8> {
    generated_component(30_000, 20, 0)
}

fn still_serves_hello(server: &Server) {
    let response = server.get("/dispatch/app/");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().unwrap(), HELLO);
}

/// A server on a data directory where `acme` owns `app` (hello), restarted with `config`;
/// the temp directory holding both lives as long as the returned guard.
fn restarted_with(config: &str) -> (Server, String, Option<tempfile::TempDir>) {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    assert_eq!(server.upload(&token, "app", &guest("hello")).status(), 201);
    let (data, temp) = server.stop();
    let path = data.parent().unwrap().join("restart.toml");
    std::fs::write(&path, format!("first_party = false\n{config}")).unwrap();
    let server = Server::start_in(&data, &["--config", path.to_str().unwrap()]);
    (server, token, temp)
}

#[test]
fn identical_bytes_are_compiled_once() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    assert_eq!(server.upload(&token, "one", &guest("hello")).status(), 201);
    assert_eq!(server.metric("dispatcher_compiles_total"), 1);
    let hits = server.metric("dispatcher_artifact_cache_hits_total");

    assert_eq!(server.upload(&token, "two", &guest("hello")).status(), 201);
    assert_eq!(server.upload(&token, "one", &guest("hello")).status(), 200);
    assert_eq!(server.metric("dispatcher_compiles_total"), 1);
    assert_eq!(
        server.metric("dispatcher_artifact_cache_hits_total"),
        hits + 2
    );
    assert_eq!(server.get("/dispatch/one/").text().unwrap(), HELLO);
    assert_eq!(server.get("/dispatch/two/").text().unwrap(), HELLO);
}

#[test]
fn code_over_the_limits_is_refused_before_compiling() {
    let server = Server::start_with_config("max_wasm_functions = 100\nmax_wasm_nesting = 20");
    let (_, token) = server.create_customer("acme");

    let message = expect_error(
        server.upload(&token, "app", &generated_component(101, 1, 0)),
        400,
        "compile_too_large",
    );
    assert!(message.contains("100 functions"), "{message}");
    let message = expect_error(
        server.upload(&token, "app", &generated_component(1, 1, 21)),
        400,
        "compile_too_large",
    );
    assert!(message.contains("deeper than 20"), "{message}");
    assert_eq!(server.metric("dispatcher_compiles_total"), 0);

    // Within the limits, the same shapes pass the check (and fail only at linking: they
    // export no handler).
    expect_error(
        server.upload(&token, "app", &generated_component(100, 1, 20)),
        400,
        "invalid_wasm",
    );
    assert_eq!(server.metric("dispatcher_compiles_total"), 1);
}

#[test]
fn a_compile_past_the_time_limit_is_refused_and_the_old_version_serves() {
    let (server, token, _config) = restarted_with("compile_timeout_ms = 200");
    let started = Instant::now();
    let message = expect_error(
        server.upload(&token, "app", &slow_component()),
        400,
        "compile_timeout",
    );
    assert!(message.contains("200 ms"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the compile was not cut short"
    );
    assert_eq!(server.metric("dispatcher_compiles_total"), 0);
    still_serves_hello(&server);
}

#[test]
fn a_compile_past_the_memory_limit_is_refused_and_the_old_version_serves() {
    let (server, token, _config) = restarted_with("compile_memory_mb = 64");
    let message = expect_error(
        server.upload(&token, "app", &slow_component()),
        400,
        "compile_too_large",
    );
    assert!(message.contains("64 MiB"), "{message}");
    assert_eq!(server.metric("dispatcher_compiles_total"), 0);
    still_serves_hello(&server);
}

#[test]
fn an_artifact_over_the_artifact_limit_is_refused_and_the_old_version_serves() {
    let (server, token, _config) = restarted_with("max_artifact_mb = 1");
    let message = expect_error(
        server.upload(&token, "app", &generated_component(10_000, 20, 0)),
        400,
        "compile_too_large",
    );
    assert!(message.contains("artifact limit (1 MiB)"), "{message}");
    assert_eq!(server.metric("dispatcher_compiles_total"), 0);
    still_serves_hello(&server);
    // A small artifact passes the cap (and fails only at linking: it exports no handler).
    expect_error(
        server.upload(&token, "app", &generated_component(100, 1, 0)),
        400,
        "invalid_wasm",
    );
    assert_eq!(server.metric("dispatcher_compiles_total"), 1);
}

#[test]
fn a_busy_compiler_answers_overloaded_and_a_gone_uploader_frees_it() {
    let server = Server::start_with_config("max_concurrent_compiles = 1\ncompile_queue_ms = 300");
    let (_, token) = server.create_customer("acme");
    let slow = slow_component();

    // An upload whose client gives up after a second: its compile is killed with it,
    // long before it would have finished (it takes seconds of CPU).
    let gave_up = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap()
        .put(server.url("/script/slow"))
        .header("x-customer-token", &token)
        .header("content-type", "application/wasm")
        .body(slow.clone())
        .send();
    assert!(gave_up.is_err(), "the slow upload answered within a second");
    let started = Instant::now();
    assert_eq!(server.upload(&token, "app", &guest("hello")).status(), 201);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the abandoned compile held the compile slot"
    );

    // While one compile runs, another upload waits the queue time, then is refused.
    std::thread::scope(|scope| {
        let running = scope.spawn(|| server.upload(&token, "slow", &slow).status());
        std::thread::sleep(Duration::from_millis(1500));
        let response = server.upload(&token, "other", &guest("echo-wstd"));
        assert_eq!(
            response.headers()["retry-after"].to_str().unwrap(),
            "1",
            "{response:?}"
        );
        expect_error(response, 503, "overloaded");
        // The first upload compiles (and fails only at linking: it exports no handler).
        assert_eq!(running.join().unwrap(), 400);
    });
    assert_eq!(server.metric("dispatcher_compiles_total"), 2);
}

#[test]
fn a_compile_of_code_compiled_before_takes_its_functions_from_the_code_cache() {
    let server = Server::start();
    let (_, token) = server.create_customer("acme");
    assert_eq!(server.upload(&token, "one", &guest("hello")).status(), 201);
    let compiles = server.metric("dispatcher_compiles_total");
    let hits = server.metric("dispatcher_code_cache_hits_total");

    // Other bytes, so the artifact is not reused: it compiles, from the cache.
    let other = padded(&guest("hello"), 16);
    assert_eq!(server.upload(&token, "two", &other).status(), 201);
    assert_eq!(server.metric("dispatcher_compiles_total"), compiles + 1);
    assert!(server.metric("dispatcher_code_cache_hits_total") > hits);
    assert_eq!(server.get("/dispatch/two/").text().unwrap(), HELLO);
}

//! The two compiler tiers: an upload with much code answers on its baseline (Winch)
//! artifact first and moves to its optimized (Cranelift) one in the background; limits
//! hold on either; a restart loads the optimized artifact and compiles nothing; code
//! Winch cannot compile goes straight to the optimized tier; bytes that fail validation
//! while their compile runs are refused as invalid. Every upload here counts as large
//! (`baseline_min_code_kb = 0`).

use std::time::Duration;

use wasm_encoder::{
    CodeSection, Component, ExportKind, ExportSection, Function, FunctionSection, Instruction,
    Module, ModuleSection, TypeSection,
};

use crate::harness::{Server, eventually, expect_error, guest};
use crate::large_uploads::padded;
use crate::platform_module::HELLO;

const EVERY_UPLOAD_BASELINE_FIRST: &str = "baseline_min_code_kb = 0";

fn tier_ups(server: &Server) -> u64 {
    server.metric("dispatcher_tier_ups_total")
}

#[test]
fn an_upload_answers_on_the_baseline_tier_then_moves_to_the_optimized_one() {
    let server = Server::start_with_config(EVERY_UPLOAD_BASELINE_FIRST);
    let (_, token) = server.create_customer("acme");
    assert_eq!(server.upload(&token, "app", &guest("hello")).status(), 201);
    assert_eq!(server.get("/dispatch/app/").text().unwrap(), HELLO);
    assert!(
        eventually(Duration::from_secs(60), || tier_ups(&server) == 1),
        "the optimized compile never replaced the baseline artifact: {}",
        server.log()
    );
    assert_eq!(server.get("/dispatch/app/").text().unwrap(), HELLO);
    // The baseline compile and the optimized one; the baseline artifact is gone.
    assert_eq!(server.metric("dispatcher_compiles_total"), 2);
    assert_eq!(server.metric("dispatcher_tier_up_failures_total"), 0);
    let artifacts = std::fs::read_dir(server.data_dir().join("artifacts"))
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().path().extension() == Some("cwasm".as_ref()))
        .count();
    assert_eq!(artifacts, 1, "one artifact, the optimized one");

    // The same bytes again reuse the optimized artifact: nothing compiles or tiers up.
    assert_eq!(server.upload(&token, "copy", &guest("hello")).status(), 201);
    assert_eq!(server.get("/dispatch/copy/").text().unwrap(), HELLO);
    assert_eq!(server.metric("dispatcher_compiles_total"), 2);

    // Restarted, it loads the optimized artifact.
    let config = server.data_dir().parent().unwrap().join("dispatcher.toml");
    let (data, _temp) = server.stop();
    let server = Server::start_in(&data, &["--config", config.to_str().unwrap()]);
    assert_eq!(server.get("/dispatch/app/").text().unwrap(), HELLO);
    assert_eq!(server.metric("dispatcher_compiles_total"), 0);
    assert_eq!(tier_ups(&server), 0);
}

#[test]
fn the_cpu_limit_stops_a_loop_on_the_baseline_tier() {
    let server = Server::start_with_config(EVERY_UPLOAD_BASELINE_FIRST);
    let (_, token) = server.create_customer("acme");
    // Each try is a new component, its loop run the moment its upload answers, while
    // its optimized compile has only just started; a try whose tier-up won the race
    // says nothing about the baseline tier, so another is made.
    let mut on_baseline = 0;
    for attempt in 0..5 {
        let before = tier_ups(&server);
        let name = format!("spin-{attempt}");
        let wasm = padded(&guest("limits"), 16 + attempt);
        assert_eq!(server.upload(&token, &name, &wasm).status(), 201);
        expect_error(
            server.get(&format!("/dispatch/{name}/spin")),
            503,
            "exceeded_cpu",
        );
        if tier_ups(&server) == before {
            on_baseline += 1;
        }
        assert!(eventually(Duration::from_secs(60), || tier_ups(&server) == before + 1));
        assert_eq!(
            server
                .get(&format!("/dispatch/{name}/spin-ms?ms=5"))
                .status(),
            200
        );
    }
    assert!(on_baseline > 0, "every loop ran on the optimized tier");
    assert_eq!(server.metric("dispatcher_tier_up_failures_total"), 0);
}

/// A component whose one core module uses a tail call (`return_call`), which Winch
/// does not compile; it exports nothing, so it links nowhere.
fn tail_calling_component() -> Vec<u8> {
    let mut types = TypeSection::new();
    types.ty().function([], []);
    let mut declared = FunctionSection::new();
    declared.function(0);
    declared.function(0);
    let mut code = CodeSection::new();
    let mut callee = Function::new([]);
    callee.instruction(&Instruction::End);
    code.function(&callee);
    let mut caller = Function::new([]);
    caller.instruction(&Instruction::ReturnCall(0));
    caller.instruction(&Instruction::End);
    code.function(&caller);
    let mut exports = ExportSection::new();
    exports.export("caller", ExportKind::Func, 1);
    let mut module = Module::new();
    module
        .section(&types)
        .section(&declared)
        .section(&exports)
        .section(&code);
    let mut component = Component::new();
    component.section(&ModuleSection(&module));
    component.finish()
}

/// A component whose one function, of type `[] -> [i32]`, returns nothing: it parses,
/// and fails validation only in that body.
fn invalid_body_component() -> Vec<u8> {
    let mut types = TypeSection::new();
    types.ty().function([], [wasm_encoder::ValType::I32]);
    let mut declared = FunctionSection::new();
    declared.function(0);
    let mut code = CodeSection::new();
    let mut body = Function::new([]);
    body.instruction(&Instruction::End);
    code.function(&body);
    let mut module = Module::new();
    module.section(&types).section(&declared).section(&code);
    let mut component = Component::new();
    component.section(&ModuleSection(&module));
    component.finish()
}

#[test]
fn a_body_that_fails_validation_is_refused_though_its_compile_had_started() {
    let server = Server::start_with_config(EVERY_UPLOAD_BASELINE_FIRST);
    let (_, token) = server.create_customer("acme");
    let message = expect_error(
        server.upload(&token, "bad", &invalid_body_component()),
        400,
        "invalid_wasm",
    );
    assert!(
        message.contains("invalid WebAssembly component"),
        "the validator's answer, not the compiler's: {message}"
    );
    assert_eq!(server.metric("dispatcher_compiles_total"), 0);
    assert_eq!(server.upload(&token, "app", &guest("hello")).status(), 201);
    assert_eq!(server.get("/dispatch/app/").text().unwrap(), HELLO);
}

#[test]
fn code_the_baseline_tier_cannot_compile_is_compiled_by_the_optimized_one() {
    let server = Server::start_with_config(EVERY_UPLOAD_BASELINE_FIRST);
    let (_, token) = server.create_customer("acme");
    // It compiles (optimized; the baseline try fails and is not counted) and only then
    // fails to link, as it would with one tier.
    let message = expect_error(
        server.upload(&token, "tail", &tail_calling_component()),
        400,
        "invalid_wasm",
    );
    assert!(message.contains("incoming-handler"), "{message}");
    assert_eq!(server.metric("dispatcher_compiles_total"), 1);
    assert_eq!(tier_ups(&server), 0);
}

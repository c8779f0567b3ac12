//! The platform module (seed 002's `platform_module.mjs`): a component exporting
//! `platform:module/platform` (see `wit/module.wit`). The dispatcher embeds it and, at
//! upload, plugs it into every customer script that imports any `platform:module/*`
//! interface, so the composed script carries the platform's code with it.
//!
//! It is `no_std`: without Rust's standard library the component imports nothing (no
//! WASI environment, exit or stdio for a runtime it does not need), so composing it into
//! a script adds one core instance to each request's instantiation, not a dozen imports
//! and the shims that tie them to its memory.

#![no_std]

extern crate alloc;

use alloc::string::{String, ToString as _};

wit_bindgen::generate!({
    path: "wit",
    world: "module",
});

/// The heap: an arena in the module's own zeroed data, so an instance never grows its
/// memory (a grow, and the reset that takes it back after the request, changes the
/// memory's protection: a TLB flush on every core, per request). Its only allocations
/// are the strings it returns, far below the arena's size; past it an allocation fails
/// and the instance traps.
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmArenaTalc = {
    static mut ARENA: [core::mem::MaybeUninit<u8>; ARENA_BYTES] =
        [core::mem::MaybeUninit::uninit(); ARENA_BYTES];
    // SAFETY: nothing but the allocator touches ARENA.
    unsafe { talc::wasm::new_wasm_arena_allocator(&raw mut ARENA) }
};

const ARENA_BYTES: usize = 64 << 10;

/// A panic traps: there is no stderr to report it on, and the host records the trap.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

/// The text every script that asks gets from the platform.
pub const PLATFORM_THING: &str = "This module is provided by the platform";

struct PlatformModule;

impl exports::platform::module::platform::Guest for PlatformModule {
    fn platform_thing() -> String {
        PLATFORM_THING.to_string()
    }
}

export!(PlatformModule);

//! The platform module (seed 002's `platform_module.mjs`): a component exporting
//! `platform:module/platform` (see `wit/module.wit`). The dispatcher embeds it and, at
//! upload, plugs it into every customer script that imports any `platform:module/*`
//! interface, so the composed script carries the platform's code with it.

wit_bindgen::generate!({
    path: "wit",
    world: "module",
});

/// The text every script that asks gets from the platform.
pub const PLATFORM_THING: &str = "This module is provided by the platform";

struct PlatformModule;

impl exports::platform::module::platform::Guest for PlatformModule {
    fn platform_thing() -> String {
        PLATFORM_THING.to_string()
    }
}

export!(PlatformModule);

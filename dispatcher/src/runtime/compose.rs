//! The platform module (seed 002's `platform_module.mjs`, which Cloudflare appends to
//! every customer bundle), composed into customer scripts at upload with `wac-graph` —
//! the library behind `wac plug`.
//!
//! A script that imports any `platform:module/*` interface gets the platform module
//! plugged into those imports: the result is one self-contained component whose
//! remaining imports are only `wasi:*` (and host-provided `platform:*`) interfaces, so
//! the linker, the compiled artifact and the per-request instantiation stay exactly as
//! for any other script. Composition runs when a script is uploaded, and again only
//! when its compiled artifact must be rebuilt — never per request.
//!
//! Before plugging, every `platform:module/*` import of the script is checked against the
//! platform module's exports down to each function name and type, so a script built
//! against a different copy of the WIT is refused at upload naming exactly what is
//! missing, e.g. `platform:module/platform@0.1.0#unknown-thing`.

use std::collections::HashSet;

use wac_graph::types::{ItemKind, Package, SubtypeChecker, Types, are_semver_compatible};
use wac_graph::{CompositionGraph, EncodeOptions, NodeId, PackageId};

use crate::store::sha256_hex;

/// The platform module the binary ships, built from `platform-module/`.
pub const PLATFORM_MODULE_WASM: &[u8] = include_bytes!(concat!(
    env!("DISPATCHER_GUESTS_DIR"),
    "/platform-module.wasm"
));

/// The package whose interfaces the platform module provides.
pub const PLATFORM_MODULE_PACKAGE: &str = "platform:module";

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("the platform module is unusable: {0}")]
    InvalidPlatformModule(String),
    #[error("the component cannot be read for composition: {0}")]
    Parse(String),
    #[error("the script imports `{0}`, which the platform module does not provide")]
    NotProvided(String),
    #[error(
        "the script imports `{import}` with a type the platform module does not provide: {reason}"
    )]
    TypeMismatch { import: String, reason: String },
    #[error("composing the script with the platform module failed: {0}")]
    Graph(String),
}

/// The platform module, parsed once: its digest and a composition graph holding it,
/// cloned for each composition.
#[derive(Clone)]
pub struct PlatformModule {
    sha256: String,
    graph: CompositionGraph,
    package: PackageId,
}

impl std::fmt::Debug for PlatformModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformModule")
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

impl PlatformModule {
    /// Parses a platform module: a component exporting one or more `platform:module/*`
    /// interfaces.
    pub fn new(bytes: &[u8]) -> Result<PlatformModule, ComposeError> {
        let invalid = |e: String| ComposeError::InvalidPlatformModule(e);
        let mut graph = CompositionGraph::new();
        let package = Package::from_bytes(PLATFORM_MODULE_PACKAGE, None, bytes, graph.types_mut())
            .map_err(|e| invalid(format!("{e:#}")))?;
        let world = &graph.types()[package.ty()];
        if !world
            .exports
            .keys()
            .any(|name| is_platform_module_interface(name))
        {
            return Err(invalid(format!(
                "it exports no `{PLATFORM_MODULE_PACKAGE}/*` interface"
            )));
        }
        if let Some(own) = world
            .imports
            .keys()
            .find(|name| is_platform_module_interface(name))
        {
            return Err(invalid(format!("it imports `{own}` itself")));
        }
        let package = graph
            .register_package(package)
            .map_err(|e| invalid(format!("{e:#}")))?;
        Ok(PlatformModule {
            sha256: sha256_hex(bytes),
            graph,
            package,
        })
    }

    /// The platform module the binary ships.
    pub fn builtin() -> Result<PlatformModule, ComposeError> {
        PlatformModule::new(PLATFORM_MODULE_WASM)
    }

    /// The SHA-256 of the platform module's bytes (hex).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Plugs the platform module into `script`'s `platform:module/*` imports. `None` when
    /// the script imports nothing from `platform:module`: it is used as uploaded.
    ///
    /// Every such import is first checked against the platform module's exports, item by
    /// item (functions and types, by name and type); the first mismatch is the error.
    pub fn compose(&self, script: &[u8]) -> Result<Option<Vec<u8>>, ComposeError> {
        let mut graph = self.graph.clone();
        let script = Package::from_bytes("customer:script", None, script, graph.types_mut())
            .map_err(|e| ComposeError::Parse(format!("{e:#}")))?;
        let world = &graph.types()[script.ty()];
        let imports: Vec<(String, ItemKind)> = world
            .imports
            .iter()
            .filter(|(name, _)| is_platform_module_interface(name))
            .map(|(name, kind)| (name.clone(), *kind))
            .collect();
        if imports.is_empty() {
            return Ok(None);
        }
        let script_exports: Vec<String> = world.exports.keys().cloned().collect();

        let platform_world = &graph.types()[graph[self.package].ty()];
        let mut plugs = Vec::with_capacity(imports.len());
        for (import, kind) in &imports {
            let (export, export_kind) = platform_world
                .exports
                .iter()
                .find(|(export, _)| *export == import)
                .or_else(|| {
                    platform_world
                        .exports
                        .iter()
                        .find(|(export, _)| are_semver_compatible(export, import))
                })
                .ok_or_else(|| ComposeError::NotProvided(import.clone()))?;
            check_import(graph.types(), import, *kind, *export_kind)?;
            plugs.push((import.clone(), export.clone()));
        }

        let graph_error = |e: &dyn std::fmt::Display| ComposeError::Graph(e.to_string());
        let script = graph
            .register_package(script)
            .map_err(|e| graph_error(&e))?;
        let platform = graph.instantiate(self.package);
        let customer = graph.instantiate(script);
        for (import, export) in &plugs {
            let provided = graph
                .alias_instance_export(platform, export)
                .map_err(|e| graph_error(&e))?;
            graph
                .set_instantiation_argument(customer, import, provided)
                .map_err(|e| ComposeError::TypeMismatch {
                    import: import.clone(),
                    reason: chain(&e),
                })?;
        }
        export_all(&mut graph, customer, &script_exports)?;
        let composed = graph
            .encode(EncodeOptions::default())
            .map_err(|e| ComposeError::Graph(chain(&e)))?;
        Ok(Some(composed))
    }
}

/// `platform:module/...` (any interface, any version).
pub fn is_platform_module_interface(name: &str) -> bool {
    name.strip_prefix(PLATFORM_MODULE_PACKAGE)
        .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('@'))
}

/// Checks that the platform module's `export` satisfies the script's `import` item by
/// item, naming the first item (`interface#item`) that is missing or of another type.
fn check_import(
    types: &Types,
    import: &str,
    wanted: ItemKind,
    provided: ItemKind,
) -> Result<(), ComposeError> {
    let mut cache = HashSet::new();
    let mut checker = SubtypeChecker::new(&mut cache);
    let (ItemKind::Instance(wanted_id), ItemKind::Instance(provided_id)) = (wanted, provided)
    else {
        return checker
            .is_subtype(provided, types, wanted, types)
            .map_err(|e| ComposeError::TypeMismatch {
                import: import.to_string(),
                reason: format!("{e:#}"),
            });
    };
    let provided_items = &types[provided_id].exports;
    for (item, wanted_item) in &types[wanted_id].exports {
        let name = format!("{import}#{item}");
        let provided_item = provided_items
            .get(item)
            .ok_or_else(|| ComposeError::NotProvided(name.clone()))?;
        checker
            .is_subtype(*provided_item, types, *wanted_item, types)
            .map_err(|e| ComposeError::TypeMismatch {
                import: name,
                reason: format!("{e:#}"),
            })?;
    }
    // Items can match one by one yet not as a whole (resources shared between them).
    checker
        .is_subtype(provided, types, wanted, types)
        .map_err(|e| ComposeError::TypeMismatch {
            import: import.to_string(),
            reason: format!("{e:#}"),
        })
}

/// Exports every export of the script's instance from the composition, under its name.
fn export_all(
    graph: &mut CompositionGraph,
    customer: NodeId,
    names: &[String],
) -> Result<(), ComposeError> {
    for name in names {
        let export = graph
            .alias_instance_export(customer, name)
            .map_err(|e| ComposeError::Graph(chain(&e)))?;
        graph
            .export(export, name)
            .map_err(|e| ComposeError::Graph(chain(&e)))?;
    }
    Ok(())
}

/// An error with its sources, `outer: inner: ...`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    /// The platform module is instantiated beside every script composed with it, on
    /// every request: it stays free of imports (`no_std`; with Rust's standard library it
    /// imported a dozen WASI interfaces, each one lowered anew per instance, and the
    /// shim modules that tie them to its memory).
    #[test]
    fn the_platform_module_imports_nothing() {
        let engine = wasmtime::Engine::default();
        let component = wasmtime::component::Component::new(&engine, super::PLATFORM_MODULE_WASM)
            .expect("the platform module compiles");
        let imports: Vec<String> = component
            .component_type()
            .imports(&engine)
            .map(|(name, _)| name.to_string())
            .collect();
        assert_eq!(imports, Vec::<String>::new());
    }
}

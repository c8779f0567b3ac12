//! Upload validation of component bytes with `wasmparser`, before anything is compiled:
//! the bytes must be a valid component (a core module is refused with how to build a
//! component), and every top-level import must come from an allowed package (or be an
//! interface of another package, for typed RPC between scripts). Whether the
//! import's exact interface and version can be satisfied is checked afterwards: for
//! `platform:module/*` by composition with the platform module (`compose.rs`, down to each
//! function), for everything else by linking. Before validating, a linear pass refuses
//! what would cost too much to compile: too many functions in all core modules together,
//! or blocks nested too deep in one function body (compile time grows with the square of
//! the depth).

use wasmparser::{Parser, Payload, Validator, WasmFeatures};

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("the upload is not a WebAssembly binary")]
    NotWasm,
    #[error(
        "this is a core WebAssembly module, not a component; build a component with \
         `cargo build --target wasm32-wasip2` (or `wasm-tools component new`)"
    )]
    CoreModule,
    #[error("invalid WebAssembly component: {0}")]
    Invalid(String),
    #[error(
        "import `{0}` is not allowed: scripts may import wasi:http, wasi:io, wasi:clocks, wasi:random, wasi:cli, wasi:filesystem, wasi:sockets, platform:module and platform:worker interfaces, and interfaces of other packages that a service binding serves (typed RPC)"
    )]
    ImportNotAllowed(String),
    #[error(
        "the component defines more than {limit} functions (the compile limit); nothing was compiled"
    )]
    TooManyFunctions { limit: u64 },
    #[error(
        "a function of the component nests blocks deeper than {limit} (the compile limit); nothing was compiled"
    )]
    NestedTooDeep { limit: u64 },
}

/// How much code a component may ask the compiler to handle; from the server
/// configuration.
#[derive(Debug, Clone, Copy)]
pub struct CodeLimits {
    /// Most functions all the component's core modules define together.
    pub max_functions: u64,
    /// Deepest nesting of blocks, loops and ifs in one function body.
    pub max_nesting: u64,
}

/// Packages a script may import from: each is given safely by the host (see `host.rs`),
/// except `platform:module`, which the platform module provides by composition.
const ALLOWED_PACKAGES: &[&str] = &[
    "wasi:http",
    "wasi:io",
    "wasi:clocks",
    "wasi:random",
    "wasi:cli",
    "wasi:filesystem",
    "wasi:sockets",
    "platform:worker",
    super::compose::PLATFORM_MODULE_PACKAGE,
];

pub fn validate_component(bytes: &[u8], limits: CodeLimits) -> Result<(), ValidateError> {
    if Parser::is_core_wasm(bytes) {
        return Err(ValidateError::CoreModule);
    }
    if !Parser::is_component(bytes) {
        return Err(ValidateError::NotWasm);
    }
    check_code_size(bytes, limits)?;
    Validator::new_with_features(WasmFeatures::default())
        .validate_all(bytes)
        .map_err(|e| ValidateError::Invalid(e.to_string()))?;
    for import in top_level_imports(bytes)? {
        if !import_allowed(&import) {
            return Err(ValidateError::ImportNotAllowed(import));
        }
    }
    Ok(())
}

/// An import of an allowed package, or an interface (`ns:pkg/iface`) of a package outside
/// the host's own namespaces, which only typed RPC can serve (`rpc.rs`: a binding must).
fn import_allowed(name: &str) -> bool {
    let package = name.split('/').next().unwrap_or(name);
    if ALLOWED_PACKAGES.contains(&package) {
        return true;
    }
    let namespace = package.split(':').next().unwrap_or(package);
    package.contains(':') && name.contains('/') && !matches!(namespace, "wasi" | "platform")
}

/// Names of the component's own imports (not those of components nested inside it).
fn top_level_imports(bytes: &[u8]) -> Result<Vec<String>, ValidateError> {
    let mut imports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| ValidateError::Invalid(e.to_string()))? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section {
                    let import = import.map_err(|e| ValidateError::Invalid(e.to_string()))?;
                    imports.push(import.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(imports)
}

/// Refuses a component over `limits`, in one pass over its bytes: function counts come
/// from the function sections (before any body is read), nesting from the operators of
/// each body.
fn check_code_size(bytes: &[u8], limits: CodeLimits) -> Result<(), ValidateError> {
    let invalid = |e: wasmparser::BinaryReaderError| ValidateError::Invalid(e.to_string());
    let mut functions = 0u64;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(invalid)? {
            Payload::FunctionSection(section) => {
                functions += u64::from(section.count());
                if functions > limits.max_functions {
                    return Err(ValidateError::TooManyFunctions {
                        limit: limits.max_functions,
                    });
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut depth = 0u64;
                let mut operators = body.get_operators_reader().map_err(invalid)?;
                while !operators.eof() {
                    use wasmparser::Operator;
                    match operators.read().map_err(invalid)? {
                        Operator::Block { .. }
                        | Operator::Loop { .. }
                        | Operator::If { .. }
                        | Operator::Try { .. }
                        | Operator::TryTable { .. } => {
                            depth += 1;
                            if depth > limits.max_nesting {
                                return Err(ValidateError::NestedTooDeep {
                                    limit: limits.max_nesting,
                                });
                            }
                        }
                        Operator::End => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::import_allowed;

    #[test]
    fn host_packages_and_other_packages_interfaces_are_allowed_and_the_rest_not() {
        assert!(import_allowed("wasi:http/types@0.2.3"));
        assert!(import_allowed("platform:worker/kv@0.2.0"));
        assert!(
            import_allowed("acme:auth/api"),
            "an interface for typed RPC"
        );
        assert!(import_allowed("acme:auth/api@1.0.0"));
        assert!(
            !import_allowed("wasi:keyvalue/store@0.2.0"),
            "no unknown wasi package"
        );
        assert!(
            !import_allowed("platform:other/x"),
            "no unknown platform package"
        );
        assert!(!import_allowed("plain-function"), "not an interface");
        assert!(!import_allowed("acme:auth"), "a package, not an interface");
    }
}

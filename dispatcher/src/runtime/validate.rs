//! Upload validation of component bytes with `wasmparser`, before anything is compiled
//! (for a large upload, `Pass::Outline` first and `Pass::Full` beside its baseline
//! compile, `tiering.rs`): the bytes must be a valid component (a core module is refused
//! with how to build a component), and every top-level import must come from an allowed
//! package (or be an interface of another package, for typed RPC between scripts).
//! Whether the import's exact interface and version can be satisfied is checked
//! afterwards: for `platform:module/*` by composition with the platform module
//! (`compose.rs`, down to each function), for everything else by linking. The same single
//! pass refuses what would cost too much to compile: too many functions in all core
//! modules together, or blocks nested too deep in one function body (compile time grows
//! with the square of the depth).

use wasmparser::{
    FuncValidatorAllocations, Parser, Payload, ValidPayload, Validator, WasmFeatures,
};

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

/// What validation learned about a valid component.
#[derive(Debug, Clone, Copy)]
pub struct Validated {
    /// Bytes of function bodies in all its core modules (what compile time follows).
    pub code_bytes: u64,
    /// Whether it imports `platform:module/*` (and so is composed with it).
    pub imports_platform_module: bool,
}

/// How much of a component `validate_component` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Its outline: what it is, its imports, its function count and code size, without
    /// decoding any function body (milliseconds for megabytes). What it accepts may
    /// still be invalid.
    Outline,
    /// All of it: every type and operator, and the nesting limit.
    Full,
}

pub fn validate_component(
    bytes: &[u8],
    limits: CodeLimits,
    pass: Pass,
) -> Result<Validated, ValidateError> {
    if Parser::is_core_wasm(bytes) {
        return Err(ValidateError::CoreModule);
    }
    if !Parser::is_component(bytes) {
        return Err(ValidateError::NotWasm);
    }
    let (imports, code_bytes) = validate_within(bytes, limits, pass)?;
    if let Some(refused) = imports.iter().find(|import| !import_allowed(import)) {
        return Err(ValidateError::ImportNotAllowed(refused.clone()));
    }
    Ok(Validated {
        code_bytes,
        imports_platform_module: imports
            .iter()
            .any(|import| super::compose::is_platform_module_interface(import)),
    })
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

/// Validates the component (its outline only, or all of it) in one pass over its bytes
/// and returns the names of its own imports (not those of components nested inside it)
/// and its bytes of code. On the way it refuses what is over `limits`: function counts
/// come from the function sections (before any body is read), nesting from the
/// validator's control stack after each operator of a body.
fn validate_within(
    bytes: &[u8],
    limits: CodeLimits,
    pass: Pass,
) -> Result<(Vec<String>, u64), ValidateError> {
    let invalid = |e: wasmparser::BinaryReaderError| ValidateError::Invalid(e.to_string());
    let mut validator = Validator::new_with_features(WasmFeatures::default());
    let mut allocations = FuncValidatorAllocations::default();
    let mut imports = Vec::new();
    let mut functions = 0u64;
    let mut code_bytes = 0u64;
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(invalid)?;
        match &payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section.clone() {
                    imports.push(import.map_err(invalid)?.name.name.to_string());
                }
            }
            Payload::CodeSectionStart { size, .. } => code_bytes += u64::from(*size),
            Payload::FunctionSection(section) => {
                functions += u64::from(section.count());
                if functions > limits.max_functions {
                    return Err(ValidateError::TooManyFunctions {
                        limit: limits.max_functions,
                    });
                }
            }
            _ => {}
        }
        if pass == Pass::Outline {
            continue;
        }
        if let ValidPayload::Func(function, body) = validator.payload(&payload).map_err(invalid)? {
            let mut function = function.into_validator(std::mem::take(&mut allocations));
            let mut reader = body.get_binary_reader();
            function.read_locals(&mut reader).map_err(invalid)?;
            reader.set_features(*validator.features());
            // The validator visits each operator straight from the bytes, as
            // `FuncValidator::validate` does (materializing each `Operator` first made
            // validation about twice as slow).
            while !reader.eof() {
                let offset = reader.original_position();
                reader
                    .visit_operator(&mut function.visitor(offset))
                    .map_err(invalid)?
                    .map_err(invalid)?;
                // The function's own frame is the first on the stack.
                if u64::from(function.control_stack_height()) > limits.max_nesting + 1 {
                    return Err(ValidateError::NestedTooDeep {
                        limit: limits.max_nesting,
                    });
                }
            }
            reader
                .finish_expression(&function.visitor(reader.original_position()))
                .map_err(invalid)?;
            allocations = function.into_allocations();
        }
    }
    Ok((imports, code_bytes))
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

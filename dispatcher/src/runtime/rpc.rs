//! Typed RPC over service bindings. A script may import an interface of its own choosing
//! (`acme:auth/api`, anything but `wasi:*` and `platform:*`); a service binding whose
//! `entrypoint` names that interface (`{"type": "service", "name": "AUTH", "service":
//! "auth", "entrypoint": "acme:auth/api"}`) satisfies it with the bound script's export of
//! the same interface. The host links each such import function dynamically: a call
//! copies its WIT values (records, variants, lists, strings, options, results: plain
//! data, no resources or streams, refused at upload) into a fresh instance of the callee
//! — one per call, the isolation unit as everywhere — run on a task of its own (so its
//! CPU is not counted to the caller), counted as a subrequest and held to what the
//! caller's budget has left, and copies the results back. A callee that fails reaches
//! the caller as the error of a `result<_, string>` (or of a variant case taking a
//! string) when the function returns one, and as a trap of the call otherwise.
//!
//! At upload (`deploy`), every such import must have a binding, and each bound script's
//! live versions must export the interface with the same types.

use std::sync::Arc;

use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, Linker, Type, Val};
use wasmtime::{Engine, StoreContextMut};

use super::bindings::ServiceTarget;
use super::invoke::{InvokeError, describe_failure};
use super::limits::Budget;
use super::report::{Event, RunReport};
use super::{Host, LoadedScript, Runtime};

/// An imported interface served by RPC, and its functions.
pub struct RpcImport {
    pub interface: String,
    pub functions: Vec<(String, ComponentFunc)>,
}

/// Whether an interface is the host's own (never RPC).
fn is_host_interface(name: &str) -> bool {
    name.starts_with("wasi:") || name.starts_with("platform:")
}

/// The interfaces `component` imports that only RPC can satisfy.
pub fn rpc_imports(component: &Component) -> Vec<RpcImport> {
    let engine = component.engine();
    component
        .component_type()
        .imports(engine)
        .filter(|(name, _)| !is_host_interface(name))
        .filter_map(|(name, item)| {
            Some(RpcImport {
                interface: name.to_string(),
                functions: functions_of(engine, item.ty)?,
            })
        })
        .collect()
}

/// The functions of an instance type (`None` for anything else).
fn functions_of(engine: &Engine, item: ComponentItem) -> Option<Vec<(String, ComponentFunc)>> {
    let ComponentItem::ComponentInstance(instance) = item else {
        return None;
    };
    Some(
        instance
            .exports(engine)
            .filter_map(|(func, item)| match item.ty {
                ComponentItem::ComponentFunc(ty) => Some((func.to_string(), ty)),
                _ => None,
            })
            .collect(),
    )
}

/// The functions `component` exports under `interface`, if it does.
pub fn rpc_exports(component: &Component, interface: &str) -> Option<Vec<(String, ComponentFunc)>> {
    let engine = component.engine();
    component
        .component_type()
        .exports(engine)
        .find(|(name, _)| *name == interface)
        .and_then(|(_, item)| functions_of(engine, item.ty))
}

/// Why the import `wanted` cannot be served by the export `offered` (`None` when it can).
pub fn mismatch(
    wanted: &[(String, ComponentFunc)],
    offered: &[(String, ComponentFunc)],
) -> Option<String> {
    for (name, want) in wanted {
        let Some((_, have)) = offered.iter().find(|(n, _)| n == name) else {
            return Some(format!("it exports no function `{name}`"));
        };
        let want_params: Vec<Type> = want.params().map(|(_, t)| t).collect();
        let have_params: Vec<Type> = have.params().map(|(_, t)| t).collect();
        let want_results: Vec<Type> = want.results().collect();
        let have_results: Vec<Type> = have.results().collect();
        if want_params != have_params || want_results != have_results {
            return Some(format!("function `{name}` has other types"));
        }
        if let Some(bad) = want_params
            .iter()
            .chain(&want_results)
            .find_map(not_plain_data)
        {
            return Some(format!(
                "function `{name}` passes {bad}, which RPC does not copy"
            ));
        }
    }
    None
}

/// What in `ty` is not plain data (a resource, a stream, a future), if anything.
fn not_plain_data(ty: &Type) -> Option<&'static str> {
    match ty {
        Type::Own(_) | Type::Borrow(_) => Some("a resource"),
        Type::Future(_) | Type::Stream(_) | Type::ErrorContext => Some("a stream or future"),
        Type::List(list) => not_plain_data(&list.ty()),
        Type::Option(option) => not_plain_data(&option.ty()),
        Type::Result(result) => result
            .ok()
            .and_then(|t| not_plain_data(&t))
            .or_else(|| result.err().and_then(|t| not_plain_data(&t))),
        Type::Record(record) => record.fields().find_map(|f| not_plain_data(&f.ty)),
        Type::Tuple(tuple) => tuple.types().find_map(|t| not_plain_data(&t)),
        Type::Variant(variant) => variant
            .cases()
            .find_map(|c| c.ty.as_ref().and_then(not_plain_data)),
        _ => None,
    }
}

/// `linker` with every RPC import of a component defined as a call to its binding.
pub fn link_imports(linker: &mut Linker<Host>, imports: &[RpcImport]) -> wasmtime::Result<()> {
    for import in imports {
        let mut instance = linker.instance(&import.interface)?;
        for (function, _) in &import.functions {
            let (interface, function): (Arc<str>, Arc<str>) =
                (import.interface.as_str().into(), function.as_str().into());
            instance.func_new_async(&function.clone(), move |store, ty, params, results| {
                let (interface, function) = (interface.clone(), function.clone());
                Box::new(
                    async move { call(store, ty, (&interface, &function), params, results).await },
                )
            })?;
        }
    }
    Ok(())
}

/// One call of an RPC import from the script running in `store`.
async fn call(
    store: StoreContextMut<'_, Host>,
    ty: ComponentFunc,
    (interface, function): (&str, &str),
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let egress = store.data().egress();
    let (runtime, caller, budget) = (
        egress.runtime.clone(),
        egress.script.clone(),
        egress.budget.clone(),
    );
    let answer = match route(&runtime, &caller, &budget, interface) {
        Ok((callee, callee_budget)) => {
            let (interface, function, params) =
                (interface.to_string(), function.to_string(), params.to_vec());
            let run = tokio::spawn(async move {
                runtime
                    .run_rpc(callee, callee_budget, (&interface, &function), params)
                    .await
            });
            run.await
                .unwrap_or_else(|e| Err(format!("the called script's task died: {e}")))
        }
        Err(why) => Err(why),
    };
    match answer {
        Ok(values) if values.len() == results.len() => {
            results.clone_from_slice(&values);
            Ok(())
        }
        Ok(_) => wasmtime::bail!("rpc `{interface}.{function}`: the callee answered other results"),
        Err(why) => match (error_value(&ty, &why), results.first_mut()) {
            (Some(value), Some(slot)) => {
                *slot = value;
                Ok(())
            }
            _ => wasmtime::bail!("rpc `{interface}.{function}`: {why}"),
        },
    }
}

/// The script bound for `interface` and its budget, or why the call may not happen.
fn route(
    runtime: &Runtime,
    caller: &LoadedScript,
    budget: &Arc<Budget>,
    interface: &str,
) -> Result<(Arc<LoadedScript>, Arc<Budget>), String> {
    let target = caller
        .bindings
        .services
        .values()
        .find(|t| t.entrypoint.as_deref() == Some(interface))
        .map(|ServiceTarget { script, .. }| script.clone())
        .ok_or_else(|| format!("no service binding serves `{interface}`"))?;
    budget
        .take_subrequest()
        .map_err(|limit| format!("subrequest limit of {limit} reached"))?;
    let callee = runtime
        .index
        .get(&caller.namespace, &target)
        .filter(|callee| callee.customer_id == caller.customer_id)
        .ok_or_else(|| format!("script `{target}` is not deployed"))?;
    let callee_budget = budget
        .for_callee(callee.limits)
        .ok_or_else(|| "call depth limit reached".to_string())?;
    Ok((callee, callee_budget))
}

/// The error value of a function returning `result<_, string>` (or `result<_, E>` with a
/// variant `E` having a case of a string), carrying `why`.
fn error_value(ty: &ComponentFunc, why: &str) -> Option<Val> {
    let Some(Type::Result(result)) = ty.results().next() else {
        return None;
    };
    let error = match result.err()? {
        Type::String => Val::String(why.to_string()),
        Type::Variant(variant) => {
            let case = variant
                .cases()
                .find(|c| matches!(c.ty, Some(Type::String)))?;
            Val::Variant(
                case.name.to_string(),
                Some(Box::new(Val::String(why.to_string()))),
            )
        }
        _ => return None,
    };
    Some(Val::Result(Err(Some(Box::new(error)))))
}

impl Runtime {
    /// A typed call from outside any script (the gateway asking `auth`): admitted
    /// against the callee's tenant share like a request, with its own limits.
    pub async fn call_export(
        self: &Arc<Self>,
        callee: Arc<LoadedScript>,
        export: (&str, &str),
        params: Vec<Val>,
    ) -> Result<Vec<Val>, String> {
        let Some(_admitted) = self.admission.admit(&callee).await else {
            return Err(InvokeError::Overloaded.public_message());
        };
        let budget = Budget::root(callee.limits);
        self.run_rpc(callee, budget, export, params).await
    }

    /// Runs `function` of `interface` of `callee` with `params` in a fresh instance: its
    /// results, or why there are none (what the caller may be told).
    pub async fn run_rpc(
        self: &Arc<Self>,
        callee: Arc<LoadedScript>,
        budget: Arc<Budget>,
        (interface, function): (&str, &str),
        params: Vec<Val>,
    ) -> Result<Vec<Val>, String> {
        let report = RunReport::for_event(self, &callee, Event::Rpc, || {
            ("RPC".into(), format!("{interface}.{function}"))
        });
        let pre = self
            .component_for_run(&callee, &report)
            .await
            .map_err(|error| error.public_message())?;
        let run_budget = budget.clone();
        let (interface_name, function_name) = (interface.to_string(), function.to_string());
        let result = self
            .run_metered(
                &callee,
                &report,
                &budget,
                pre,
                |mut store, pre| async move {
                    let component = pre.instance_pre().component();
                    let index = component
                        .get_export_index(None, &interface_name)
                        .and_then(|i| component.get_export_index(Some(&i), &function_name))
                        .ok_or_else(|| {
                            InvokeError::ScriptError(format!(
                                "it does not export `{interface_name}.{function_name}`"
                            ))
                        })?;
                    let instance = pre
                        .instance_pre()
                        .instantiate_async(&mut store)
                        .await
                        .map_err(|e| describe_failure(e, &run_budget, "instantiation failed: "))?;
                    let func = instance
                        .get_func(&mut store, index)
                        .ok_or_else(|| InvokeError::ScriptError("no such function".into()))?;
                    let mut results = vec![Val::Bool(false); func.ty(&store).results().len()];
                    func.call_async(&mut store, &params, &mut results)
                        .await
                        .map_err(|e| describe_failure(e, &run_budget, ""))?;
                    Ok(results)
                },
            )
            .await;
        result.map_err(|error| {
            format!(
                "the called script: {} (request {})",
                error.public_message(),
                report.request_id
            )
        })
    }
}

//! The per-request host state a guest's `Store` holds, and the linker that gives guests
//! their imports. Every WASI 0.2 interface `wasmtime serve -Scli` links is linked here,
//! given safely: empty environment and arguments, no preopened directories, no network
//! (every socket address denied, no name lookup), random bytes capped per call
//! (`MAX_RANDOM_BYTES_PER_CALL`), stdout/stderr captured; outgoing HTTP goes through
//! `Egress` (service bindings, the outbound policy). `platform:worker` is linked too: each
//! binding unit's interface with a projection of this state to that unit's own context
//! (`BindingCtx`), nothing else. The run's budget and memory limiter live here so the
//! store's callbacks can reach them.

use std::sync::Arc;

use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::kv::KvView;
use super::bindings::legacy::Projections;
use super::bindings::queue::QueueView;
use super::bindings::r2::R2View;
use super::bindings::sql::SqlView;
use super::bindings::vars::VarsCtx;
use super::bindings::{self, BindingCtx};
use super::capture::LogCapture;
use super::invoke::WorkerParams;
use super::limits::{Budget, MemoryLimiter};
use super::outbound::Egress;
use super::{LoadedScript, Runtime};

/// The most bytes one `wasi:random` call may ask for (secure or insecure); a larger ask
/// traps. Generating them runs on the host, outside the CPU meter's reach, so one call
/// must stay small; 64 KiB is the cap Web Crypto's `getRandomValues` has too.
const MAX_RANDOM_BYTES_PER_CALL: u64 = 64 * 1024;

pub struct Host {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    egress: Egress,
    pub(super) budget: Arc<Budget>,
    pub(super) limiter: MemoryLimiter,
    /// Each binding unit's context for this run.
    bindings: BindingCtx,
}

impl Host {
    /// Who runs in this store: the runtime, the script and its budget.
    pub(super) fn egress(&self) -> &Egress {
        &self.egress
    }

    // Each binding unit's view of this run: its context (made on first use, see
    // `BindingCtx`) and the resource table.

    fn vars(&mut self) -> &mut VarsCtx {
        self.bindings.vars(&self.egress.script.bindings)
    }

    fn kv_view(&mut self) -> KvView<'_> {
        let (runtime, script) = (&self.egress.runtime, &self.egress.script);
        KvView {
            ctx: self.bindings.kv(&runtime.bindings, &script.bindings),
            table: &mut self.table,
        }
    }

    fn sql_view(&mut self) -> SqlView<'_> {
        let (runtime, script) = (&self.egress.runtime, &self.egress.script);
        SqlView {
            ctx: self.bindings.sql(&runtime.bindings, &script.bindings),
            table: &mut self.table,
        }
    }

    fn r2_view(&mut self) -> R2View<'_> {
        let (runtime, script) = (&self.egress.runtime, &self.egress.script);
        R2View {
            ctx: self.bindings.r2(&runtime.bindings, &script.bindings),
            table: &mut self.table,
        }
    }

    fn queue_view(&mut self) -> QueueView<'_> {
        let (runtime, script) = (&self.egress.runtime, &self.egress.script);
        QueueView {
            ctx: self.bindings.queue(&runtime.bindings, &script.bindings),
            table: &mut self.table,
        }
    }

    pub fn new(
        runtime: Arc<Runtime>,
        script: Arc<LoadedScript>,
        logs: &LogCapture,
        budget: Arc<Budget>,
        params: WorkerParams,
    ) -> Host {
        let wasi = WasiCtxBuilder::new()
            .stdout(logs.clone())
            .stderr(logs.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_addr, _use| Box::pin(async { false }))
            .max_random_size(MAX_RANDOM_BYTES_PER_CALL)
            .build();
        let bindings = BindingCtx::for_run(logs, params);
        let limiter = MemoryLimiter::new(budget.clone(), runtime.guest_memory.clone());
        Host {
            wasi,
            bindings,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            egress: Egress::new(runtime, script, budget.clone()),
            limiter,
            budget,
        }
    }
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.egress,
        }
    }
}

/// The linker every script is checked against at upload and instantiated with.
pub fn new_linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<Host>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    bindings::add_shared_to_linker(&mut linker, |host: &mut Host| &mut host.bindings.log)?;
    bindings::vars::add_to_linker(&mut linker, Host::vars)?;
    bindings::kv::add_to_linker(&mut linker, Host::kv_view)?;
    bindings::sql::add_to_linker(&mut linker, Host::sql_view)?;
    bindings::r2::add_to_linker(&mut linker, Host::r2_view)?;
    bindings::queue::add_to_linker(&mut linker, Host::queue_view)?;
    // Components built with the first SDK import platform:worker@0.1.0.
    bindings::legacy::add_to_linker(
        &mut linker,
        Projections {
            vars: Host::vars,
            kv: |host: &mut Host| host.kv_view().ctx,
            sql: |host: &mut Host| host.sql_view().ctx,
            log: |host: &mut Host| &mut host.bindings.log,
        },
    )?;
    Ok(linker)
}

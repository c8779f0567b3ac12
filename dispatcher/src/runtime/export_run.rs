//! What every run of an export other than the HTTP handler shares (a scheduled handler,
//! a queue handler, a typed RPC function): the script's component, loaded if need be
//! (a failure reported as the run's); then a fresh `Store` for the typed call, metered,
//! held to the budget's deadline, its console captured, and the run finished into its
//! report. Each caller owns the rest: admission, the budget, the call itself.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::capture::LogCapture;
use super::cpu::Metered;
use super::invoke::{InvokeError, log_console};
use super::limits::{Budget, Limits};
use super::report::RunReport;
use super::{Host, LoadedScript, Runtime};

impl Runtime {
    /// The budget of a scheduled or queue run: the script's limits, with the scheduled
    /// runs' wall time unless the admin set the script one.
    pub(super) fn background_budget(&self, script: &LoadedScript) -> Arc<Budget> {
        let wall = script
            .settings
            .limits
            .wall_ms
            .map_or(self.scheduled_wall, Duration::from_millis);
        Budget::root(Limits {
            wall,
            ..script.limits
        })
    }

    /// The script's component, or why it cannot be loaded (reported as the run's failure).
    pub(super) async fn component_for_run(
        self: &Arc<Self>,
        script: &LoadedScript,
        report: &RunReport,
    ) -> Result<ProxyPre<Host>, InvokeError> {
        match script.component.get(self).await {
            Ok(pre) => Ok(pre),
            Err(reason) => {
                let error = InvokeError::Unavailable(reason.to_string());
                report.failed(&error);
                Err(error)
            }
        }
    }

    /// Runs `call` with `pre` on a fresh store of `script`, metered and held to
    /// `budget`, and finishes `report` with how it went.
    pub(super) async fn run_metered<T, Fut>(
        self: &Arc<Self>,
        script: &Arc<LoadedScript>,
        report: &RunReport,
        budget: &Arc<Budget>,
        pre: ProxyPre<Host>,
        call: impl FnOnce(Store<Host>, ProxyPre<Host>) -> Fut,
    ) -> Result<T, InvokeError>
    where
        Fut: Future<Output = Result<T, InvokeError>>,
    {
        let logs = LogCapture::new(self.log_capacity);
        let engine = pre.instance_pre().component().engine();
        let store = self.fresh_store(engine, script, &logs, budget, None);
        let metered = Metered::new(
            call(store, pre),
            budget.clone(),
            &self.heavy_lane,
            script.cpu_history.clone(),
        );
        let result = tokio::time::timeout_at(budget.deadline, metered)
            .await
            .unwrap_or(Err(InvokeError::WallTime));
        let failed = result.as_ref().err();
        let lines = log_console(script, &logs, failed, &report.request_id);
        let lines = if report.wants_logs() {
            lines
        } else {
            Vec::new()
        };
        report.finished(failed, budget, lines);
        result
    }
}

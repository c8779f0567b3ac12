//! Running a script's `platform:worker/scheduled` export for one fire of a Cron Trigger:
//! the same isolation as a request (a fresh `Store` from the script's pre-instantiated
//! component, admitted against its tenant's share, CPU metered, memory limited, console
//! captured, reported to usage, metrics and the tail as a `scheduled` run), with its own
//! wall-time default (`scheduled_wall_time_ms`, 15 minutes), unless the admin set the
//! script a wall time.

use std::sync::Arc;

use wasmtime::component::{ComponentExportIndex, ComponentType, Lower};

use super::invoke::{InvokeError, RunFailure, describe_failure};
use super::report::{Event, RunReport};
use super::{LoadedScript, Runtime};

/// The export a script with schedules must have.
pub const SCHEDULED_INTERFACE: &str = "platform:worker/scheduled@0.2.0";

/// `platform:worker/scheduled.scheduled-event`.
#[derive(ComponentType, Lower)]
#[component(record)]
struct ScheduledEvent {
    cron: String,
    #[component(name = "scheduled-time")]
    scheduled_time: u64,
}

/// Where `handle` of the scheduled export is, when the component has one.
pub fn scheduled_handler(
    component: &wasmtime::component::Component,
) -> Option<ComponentExportIndex> {
    let interface = component.get_export_index(None, SCHEDULED_INTERFACE)?;
    component.get_export_index(Some(&interface), "handle")
}

/// How a scheduled run went, as a manual trigger answers it.
#[derive(Debug, serde::Serialize)]
pub struct ScheduledRun {
    pub request_id: String,
    pub cpu_ms: f64,
}

impl Runtime {
    /// Runs `script`'s scheduled handler for a fire of `cron` due at `scheduled_ms`
    /// (milliseconds since the Unix epoch).
    pub async fn run_scheduled(
        self: &Arc<Self>,
        script: Arc<LoadedScript>,
        cron: &str,
        scheduled_ms: u64,
    ) -> Result<ScheduledRun, RunFailure> {
        let report = RunReport::for_event(self, &script, Event::Scheduled, || {
            ("SCHEDULED".into(), cron.to_string())
        });
        let failure = |error: InvokeError| {
            report.failed(&error);
            RunFailure {
                request_id: report.request_id.clone(),
                error,
            }
        };
        let Some(_admitted) = self.admission.admit(&script).await else {
            return Err(failure(InvokeError::Overloaded));
        };
        let pre = self
            .component_for_run(&script, &report)
            .await
            .map_err(|error| RunFailure {
                request_id: report.request_id.clone(),
                error,
            })?;
        let Some(handler) = scheduled_handler(pre.instance_pre().component()) else {
            return Err(failure(InvokeError::ScriptError(format!(
                "the script does not export {SCHEDULED_INTERFACE}"
            ))));
        };
        let budget = self.background_budget(&script);
        let event = ScheduledEvent {
            cron: cron.to_string(),
            scheduled_time: scheduled_ms,
        };
        let run_budget = budget.clone();
        let result = self
            .run_metered(
                &script,
                &report,
                &budget,
                pre,
                |mut store, pre| async move {
                    let instance = pre
                        .instance_pre()
                        .instantiate_async(&mut store)
                        .await
                        .map_err(|e| describe_failure(e, &run_budget, "instantiation failed: "))?;
                    let handle = instance
                        .get_typed_func::<(ScheduledEvent,), (Result<(), String>,)>(
                            &mut store, &handler,
                        )
                        .map_err(|e| {
                            InvokeError::ScriptError(format!("{SCHEDULED_INTERFACE}: {e:#}"))
                        })?;
                    let (answer,) = handle
                        .call_async(&mut store, (event,))
                        .await
                        .map_err(|e| describe_failure(e, &run_budget, ""))?;
                    answer.map_err(|e| {
                        InvokeError::ScriptError(format!("the scheduled handler failed: {e}"))
                    })
                },
            )
            .await;
        let cpu_ms = budget.cpu_used().as_secs_f64() * 1e3;
        match result {
            Ok(()) => Ok(ScheduledRun {
                request_id: report.request_id.to_string(),
                cpu_ms,
            }),
            Err(error) => Err(RunFailure {
                request_id: report.request_id.clone(),
                error,
            }),
        }
    }
}

//! Running a consumer's `platform:worker/queue-handler` export for one batch of its
//! queue: the same isolation as a request (admitted against its tenant's share, a fresh
//! `Store`, metered, limited, console captured), reported to usage, metrics and the tail
//! as a `queue` run, with the scheduled runs' wall-time default. The outcome of every
//! message comes back; a run that fails gives none, so its messages are retried.

use std::sync::Arc;

use wasmtime::component::{ComponentExportIndex, ComponentType, Lift, Lower};

use super::invoke::{InvokeError, RunFailure, describe_failure};
use super::report::{Event, RunReport};
use super::{LoadedScript, Runtime};

/// The export a queue consumer must have.
pub const QUEUE_HANDLER_INTERFACE: &str = "platform:worker/queue-handler@0.2.0";

/// `platform:worker/queue-handler.message`.
#[derive(ComponentType, Lower)]
#[component(record)]
pub struct QueueMessage {
    pub id: String,
    pub body: Vec<u8>,
    pub attempts: u32,
    pub timestamp: u64,
}

/// `platform:worker/queue-handler.outcome`.
#[derive(ComponentType, Lift, Debug, Clone, Copy, PartialEq, Eq)]
#[component(variant)]
pub enum Outcome {
    #[component(name = "ack")]
    Ack,
    #[component(name = "retry")]
    Retry(Option<u32>),
}

/// Where `handle` of the queue-handler export is, when the component has one.
pub fn queue_handler(component: &wasmtime::component::Component) -> Option<ComponentExportIndex> {
    let interface = component.get_export_index(None, QUEUE_HANDLER_INTERFACE)?;
    component.get_export_index(Some(&interface), "handle")
}

impl Runtime {
    /// Delivers `batch` of `queue` to `script`'s queue handler; the outcome of each
    /// message it answered for, in order.
    pub async fn run_queue(
        self: &Arc<Self>,
        script: Arc<LoadedScript>,
        queue: &str,
        batch: Vec<QueueMessage>,
    ) -> Result<Vec<Outcome>, RunFailure> {
        let report = RunReport::for_event(self, &script, Event::Queue, || {
            ("QUEUE".into(), queue.to_string())
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
        let Some(handler) = queue_handler(pre.instance_pre().component()) else {
            return Err(failure(InvokeError::ScriptError(format!(
                "the script does not export {QUEUE_HANDLER_INTERFACE}"
            ))));
        };
        let budget = self.background_budget(&script);
        let queue_name = queue.to_string();
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
                        .get_typed_func::<(String, Vec<QueueMessage>), (Vec<Outcome>,)>(
                            &mut store, &handler,
                        )
                        .map_err(|e| {
                            InvokeError::ScriptError(format!("{QUEUE_HANDLER_INTERFACE}: {e:#}"))
                        })?;
                    let (outcomes,) = handle
                        .call_async(&mut store, (queue_name, batch))
                        .await
                        .map_err(|e| describe_failure(e, &run_budget, ""))?;
                    Ok(outcomes)
                },
            )
            .await;
        result.map_err(|error| RunFailure {
            request_id: report.request_id.clone(),
            error,
        })
    }
}

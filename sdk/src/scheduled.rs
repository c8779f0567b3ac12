//! `#[sdk::scheduled]`: the script's `platform:worker/scheduled` export, run at each of
//! its Cron Triggers. The handler gets the fire's [`ScheduledEvent`], the same [`Env`] as
//! a fetch, and a [`Context`] whose `wait_until` work finishes before the run ends; an
//! error fails the run and reaches the script's log (its owner's tail).

use std::future::Future;

use crate::{Context, Env, Result, log};

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "platform:worker/scheduled-handler",
        pub_export_macro: true,
        export_macro_name: "export_scheduled",
        default_bindings_module: "::sdk::__private::scheduled",
    });
}

use bindings::exports::platform::worker::scheduled as wit;

/// One fire of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledEvent {
    /// The schedule that fired, e.g. `*/5 * * * *`.
    pub cron: String,
    /// When the fire was due, in milliseconds since the Unix epoch (UTC).
    pub scheduled_time: u64,
}

/// The body of the `handle` export that `#[sdk::scheduled]` generates.
pub fn run<H, F>(event: wit::ScheduledEvent, handler: H) -> std::result::Result<(), String>
where
    H: FnOnce(ScheduledEvent, Env, Context) -> F,
    F: Future<Output = Result<()>>,
{
    let event = ScheduledEvent {
        cron: event.cron,
        scheduled_time: event.scheduled_time,
    };
    wstd::runtime::block_on(async move {
        let ctx = Context::default();
        let result = handler(event, Env::new(), ctx.clone()).await;
        ctx.finish().await;
        result.map_err(|e| {
            log::error(format!("scheduled failed: {e:#}"));
            format!("{e:#}")
        })
    })
}

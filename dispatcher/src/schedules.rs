//! Cron Triggers: what a schedule may be (standard 5-field cron, UTC, parsed by
//! `croner`; at most `max_crons_per_script` distinct ones per script), and the task that
//! fires them. The task keeps every schedule's next fire in a heap, sleeps until the
//! earliest, and runs the script's live deployment (a version picked by its share) for
//! each fire: one run per fire, never replayed after a downtime, and skipped (logged)
//! while the previous fire of the same schedule still runs. Any change to the store
//! (an upload, `PUT .../schedules`, the CLI) makes it re-read the schedules.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use tokio::sync::Notify;

use crate::deploy::Deployer;
use crate::store::StoredSchedule;

/// A schedule's expression: five fields (minute, hour, day of month, month, day of
/// week), or an alias (`@hourly`, `@daily`, ...); no seconds, no years.
pub fn parse(cron: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(cron)
        .map_err(|e| format!("invalid cron expression `{cron}`: {e}"))
}

/// Checks a script's schedules: each valid, none twice, at most `max`.
pub fn check(crons: &[String], max: usize) -> Result<(), String> {
    if crons.len() > max {
        return Err(format!(
            "a script may have at most {max} schedules, not {}",
            crons.len()
        ));
    }
    let mut seen = HashSet::new();
    for cron in crons {
        parse(cron)?;
        if !seen.insert(cron.trim()) {
            return Err(format!("the schedule `{cron}` is given twice"));
        }
    }
    Ok(())
}

/// The first fire of `cron` after `time`.
pub fn next_after(cron: &Cron, time: &DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_next_occurrence(time, false).ok()
}

/// A schedule the task fires, and when next.
struct Entry {
    schedule: StoredSchedule,
    cron: Cron,
}

/// Runs the schedules of `deployer`'s store until the process ends; `changed` is
/// notified whenever the store changed.
pub fn spawn(deployer: Deployer, changed: Arc<Notify>) {
    tokio::spawn(async move {
        let running: Arc<Mutex<HashSet<StoredSchedule>>> = Arc::default();
        loop {
            let entries = match load(&deployer).await {
                Ok(entries) => entries,
                Err(error) => {
                    tracing::error!(%error, "reading the schedules failed; retrying on the next change");
                    Vec::new()
                }
            };
            let now = Utc::now();
            let mut due: BinaryHeap<Reverse<(DateTime<Utc>, usize)>> = entries
                .iter()
                .enumerate()
                .filter_map(|(i, entry)| Some(Reverse((next_after(&entry.cron, &now)?, i))))
                .collect();
            loop {
                let sleep = due
                    .peek()
                    .map(|Reverse((at, _))| (*at - Utc::now()).to_std().unwrap_or_default());
                // A fire that is due goes before a reload, which counts from its own now.
                tokio::select! {
                    biased;
                    () = sleep_for(sleep) => {}
                    () = changed.notified() => break,
                }
                let now = Utc::now();
                while let Some(Reverse((at, i))) = due.peek().copied() {
                    if at > now {
                        break;
                    }
                    due.pop();
                    fire(&deployer, &running, &entries[i].schedule, at);
                    if let Some(next) = next_after(&entries[i].cron, &now) {
                        due.push(Reverse((next, i)));
                    }
                }
            }
        }
    });
}

async fn sleep_for(duration: Option<std::time::Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}

async fn load(deployer: &Deployer) -> Result<Vec<Entry>, crate::store::StoreError> {
    let store = deployer.store.clone();
    let stored = tokio::task::spawn_blocking(move || store.all_schedules())
        .await
        .map_err(|e| crate::store::StoreError::Io(std::io::Error::other(e.to_string())))??;
    Ok(stored
        .into_iter()
        .filter_map(|schedule| match parse(&schedule.cron) {
            Ok(cron) => Some(Entry { schedule, cron }),
            Err(error) => {
                tracing::error!(script = %schedule.name, %error, "a stored schedule does not parse");
                None
            }
        })
        .collect())
}

/// Starts the run of one fire, unless the previous fire of the schedule still runs.
fn fire(
    deployer: &Deployer,
    running: &Arc<Mutex<HashSet<StoredSchedule>>>,
    schedule: &StoredSchedule,
    at: DateTime<Utc>,
) {
    let Some(deployed) = deployer
        .runtime
        .index
        .deployed(&schedule.namespace, &schedule.name)
    else {
        tracing::warn!(script = %schedule.name, cron = %schedule.cron, "a schedule fired for a script that is not served; skipped");
        return;
    };
    if !running
        .lock()
        .expect("schedule lock")
        .insert(schedule.clone())
    {
        tracing::warn!(script = %schedule.name, cron = %schedule.cron, "the previous fire of this schedule still runs; this one is skipped");
        return;
    }
    let script = deployed.pick(None).clone();
    let (runtime, running, schedule) =
        (deployer.runtime.clone(), running.clone(), schedule.clone());
    tokio::spawn(async move {
        let scheduled_ms = at.timestamp_millis().max(0) as u64;
        // Failures reach the tail, usage and the log through the run's report.
        let _ = runtime
            .run_scheduled(script, &schedule.cron, scheduled_ms)
            .await;
        running.lock().expect("schedule lock").remove(&schedule);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_fields_and_aliases_parse_and_seconds_or_nonsense_do_not() {
        assert!(parse("*/5 * * * *").is_ok());
        assert!(parse("0 3 * * MON-FRI").is_ok());
        assert!(parse("@daily").is_ok());
        assert!(parse("* * * * * *").is_err(), "no seconds field");
        assert!(parse("61 * * * *").is_err());
        assert!(parse("every minute").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn a_scripts_schedules_are_few_valid_and_distinct() {
        let crons = |list: &[&str]| list.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        assert!(check(&crons(&["* * * * *", "0 0 * * *"]), 3).is_ok());
        assert!(
            check(&crons(&["* * * * *"; 4]), 3)
                .unwrap_err()
                .contains("at most 3")
        );
        let twice = check(&crons(&["* * * * *", "* * * * *"]), 3).unwrap_err();
        assert!(twice.contains("twice"));
        assert!(check(&crons(&["bad"]), 3).unwrap_err().contains("`bad`"));
    }

    #[test]
    fn the_next_fire_is_the_next_matching_minute() {
        let cron = parse("*/15 * * * *").unwrap();
        let at = "2026-12-02T10:07:30Z".parse::<DateTime<Utc>>().unwrap();
        let next = next_after(&cron, &at).unwrap();
        assert_eq!(next.to_rfc3339(), "2026-12-02T10:15:00+00:00");
    }
}

//! `dispatcher queues list | show QUEUE | purge QUEUE`: the operator's view of the
//! queues' messages (from `queues.sqlite`) and their consumers. A queue is named by its
//! owner (`--customer ID`; the platform's own without it) and its name.

use std::path::Path;

use clap::{Args, Subcommand};

use crate::runtime::bindings::data_owner;
use crate::runtime::bindings::queue::{QueueStore, now_ms};
use crate::store::Store;

#[derive(Subcommand)]
pub enum QueuesCommand {
    /// Every queue that holds messages, with its consumer.
    List {
        /// Only the queues of the customer with this id.
        #[arg(long)]
        customer: Option<String>,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One queue: its messages and its consumer's settings.
    Show(QueueName),
    /// Delete every message of a queue.
    Purge(QueueName),
}

#[derive(Args)]
pub struct QueueName {
    /// The queue's name.
    queue: String,
    /// Its owner: the customer with this id (the platform's own without it).
    #[arg(long)]
    customer: Option<String>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(data: &Path, command: QueuesCommand) -> anyhow::Result<()> {
    let store = Store::open(data)?;
    let queues = QueueStore::open(data)?;
    let consumers = store.all_consumers()?;
    let consumer_of = |owner: &str, queue: &str| {
        consumers
            .iter()
            .find(|c| c.owner == owner && c.spec.queue == queue)
    };
    match command {
        QueuesCommand::List { customer, json } => {
            let owner = customer.as_deref();
            let stats = queues.stats(owner, now_ms())?;
            let rows: Vec<serde_json::Value> = stats
                .iter()
                .map(|s| {
                    let consumer = consumer_of(&s.owner, &s.queue).map(|c| c.name.clone());
                    serde_json::json!({
                        "owner": s.owner, "queue": s.queue, "messages": s.messages,
                        "ready": s.ready, "consumer": consumer,
                    })
                })
                .collect();
            if json {
                super::print_json(&rows);
            } else {
                println!(
                    "{:<16} {:<24} {:>9} {:>9} CONSUMER",
                    "OWNER", "QUEUE", "MESSAGES", "READY"
                );
                for row in &rows {
                    println!(
                        "{:<16} {:<24} {:>9} {:>9} {}",
                        row["owner"].as_str().unwrap_or_default(),
                        row["queue"].as_str().unwrap_or_default(),
                        row["messages"],
                        row["ready"],
                        row["consumer"].as_str().unwrap_or("-")
                    );
                }
            }
        }
        QueuesCommand::Show(name) => {
            let owner = data_owner(name.customer.as_deref());
            let stats = queues
                .stats(Some(owner), now_ms())?
                .into_iter()
                .find(|s| s.queue == name.queue);
            let consumer = consumer_of(owner, &name.queue);
            let shown = serde_json::json!({
                "owner": owner,
                "queue": name.queue,
                "messages": stats.as_ref().map_or(0, |s| s.messages),
                "ready": stats.as_ref().map_or(0, |s| s.ready),
                "consumer": consumer.map(|c| serde_json::json!({"script": c.name, "settings": c.spec})),
            });
            if name.json {
                super::print_json(&shown);
            } else {
                println!("{}", serde_json::to_string_pretty(&shown)?);
            }
        }
        QueuesCommand::Purge(name) => {
            let owner = data_owner(name.customer.as_deref());
            let deleted = queues.purge((owner, &name.queue))?;
            if name.json {
                super::print_json(&serde_json::json!({ "queue": name.queue, "deleted": deleted }));
            } else {
                println!("deleted {deleted} messages of {}", name.queue);
            }
        }
    }
    Ok(())
}

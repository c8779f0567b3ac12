//! `dispatcher gc [--grace 10m] [--json]`: removes the component blobs and compiled
//! artifacts of versions no script uses any more (replaced or deleted scripts). A
//! running server does the same at start and hourly; files younger than the grace
//! period stay, as an upload in progress may have just written them.

use crate::store::Store;

#[derive(clap::Args)]
pub struct GcArgs {
    /// Keep unused files younger than this (`0s`, `30s`, `10m`, `1h`).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    grace: std::time::Duration,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(data: &std::path::Path, args: GcArgs) -> anyhow::Result<()> {
    let swept = Store::open(data)?.sweep(args.grace)?;
    if args.json {
        super::print_json(&swept);
    } else {
        println!(
            "removed {} blobs and {} artifacts ({} bytes)",
            swept.blobs, swept.artifacts, swept.bytes
        );
    }
    Ok(())
}

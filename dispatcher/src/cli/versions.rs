//! `dispatcher script versions NAME`, `script deploy-version NAME --split A=90,B=10` and
//! `script rollback NAME [--to ID]`, for customers' scripts or (`--namespace platform`)
//! the platform's own. They change the store only; a running server notices within a
//! second and serves the new split from its next request.

use std::path::Path;

use clap::Args;

use crate::store::{
    CUSTOMER_NAMESPACE, DeploymentRecord, MAX_PER_PAGE, PLATFORM_NAMESPACE, PageRequest, Store,
    VersionShare,
};

#[derive(Args)]
pub struct VersionsArgs {
    /// The script.
    name: String,
    /// `customers` (uploads) or `platform` (the platform's own scripts).
    #[arg(long, default_value = CUSTOMER_NAMESPACE, value_parser = [CUSTOMER_NAMESPACE, PLATFORM_NAMESPACE])]
    namespace: String,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct DeployVersionArgs {
    /// The script.
    name: String,
    /// One or two versions with their percentages, summing to 100: `ID1=90,ID2=10`
    /// (a single `ID` is 100 %).
    #[arg(long, value_parser = parse_split)]
    split: Shares,
    /// `customers` (uploads) or `platform` (the platform's own scripts).
    #[arg(long, default_value = CUSTOMER_NAMESPACE, value_parser = [CUSTOMER_NAMESPACE, PLATFORM_NAMESPACE])]
    namespace: String,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct RollbackArgs {
    /// The script.
    name: String,
    /// The version to roll back to (default: the previous deployment's).
    #[arg(long)]
    to: Option<String>,
    /// `customers` (uploads) or `platform` (the platform's own scripts).
    #[arg(long, default_value = CUSTOMER_NAMESPACE, value_parser = [CUSTOMER_NAMESPACE, PLATFORM_NAMESPACE])]
    namespace: String,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Clone)]
pub struct Shares(Vec<VersionShare>);

/// `A=90,B=10` or `A`.
fn parse_split(text: &str) -> Result<Shares, String> {
    let shares = text
        .split(',')
        .map(|part| match part.split_once('=') {
            Some((id, percent)) => {
                let percentage = percent
                    .trim()
                    .trim_end_matches('%')
                    .parse()
                    .map_err(|_| format!("`{percent}` is no percentage from 0 to 100"))?;
                Ok(VersionShare {
                    version_id: id.trim().to_string(),
                    percentage,
                })
            }
            None => Ok(VersionShare {
                version_id: part.trim().to_string(),
                percentage: 100,
            }),
        })
        .collect::<Result<Vec<_>, String>>()?;
    crate::store::check_shares(&shares)?;
    Ok(Shares(shares))
}

pub fn versions(data: &Path, args: VersionsArgs) -> anyhow::Result<()> {
    let store = Store::open(data)?;
    if store
        .get_script(&args.namespace, &args.name, None)?
        .is_none()
    {
        anyhow::bail!("no script named `{}` in {}", args.name, args.namespace);
    }
    let page = PageRequest {
        page: 1,
        per_page: MAX_PER_PAGE,
    };
    let versions = store.list_versions(&args.namespace, &args.name, page)?;
    let live = store
        .list_deployments(
            &args.namespace,
            &args.name,
            PageRequest {
                page: 1,
                per_page: 1,
            },
        )?
        .items
        .into_iter()
        .next();
    if args.json {
        super::print_json(&versions.items);
        return Ok(());
    }
    println!(
        "{:<14} {:>4} {:>5} {:<26} {:<16} MESSAGE",
        "VERSION", "NO", "LIVE", "CREATED", "TAG"
    );
    for v in versions.items {
        let share = live
            .iter()
            .flat_map(|d| &d.versions)
            .find(|s| s.version_id == v.id)
            .map_or_else(|| "-".to_string(), |s| format!("{}%", s.percentage));
        println!(
            "{:<14} {:>4} {:>5} {:<26} {:<16} {}",
            v.id,
            v.number,
            share,
            v.created_at,
            v.tag.as_deref().unwrap_or("-"),
            v.message.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

pub fn deploy_version(data: &Path, args: DeployVersionArgs) -> anyhow::Result<()> {
    let store = Store::open(data)?;
    let record = store.deploy_versions(&args.namespace, &args.name, None, &args.split.0, "cli")?;
    print_deployment(&record, args.json);
    Ok(())
}

pub fn rollback(data: &Path, args: RollbackArgs) -> anyhow::Result<()> {
    let store = Store::open(data)?;
    let record = store.rollback(&args.namespace, &args.name, None, args.to.as_deref())?;
    print_deployment(&record, args.json);
    Ok(())
}

fn print_deployment(record: &DeploymentRecord, json: bool) {
    if json {
        super::print_json(record);
        return;
    }
    let split: Vec<String> = record
        .versions
        .iter()
        .map(|s| format!("{}={}%", s.version_id, s.percentage))
        .collect();
    println!("deployment {} is live: {}", record.id, split.join(", "));
}

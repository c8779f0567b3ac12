//! `dispatcher tail [NAME] [--namespace ..] [--json]`: follows the running server found
//! through the data directory (`server.json`), as the operator (`operator.key`): every
//! run of NAME, or of every script, one line per run — or, with `--json`, the events as
//! JSON lines — until interrupted.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;

use crate::local::{self, OPERATOR_KEY_HEADER, RunningServer};
use crate::store::{CUSTOMER_NAMESPACE, PLATFORM_NAMESPACE};

#[derive(clap::Args)]
pub struct TailArgs {
    /// The script to follow; every script when left out.
    name: Option<String>,
    /// The script's namespace.
    #[arg(long, default_value = CUSTOMER_NAMESPACE, value_parser = [CUSTOMER_NAMESPACE, PLATFORM_NAMESPACE])]
    namespace: String,
    /// Print each event as a JSON line.
    #[arg(long)]
    json: bool,
}

pub async fn run(data: &std::path::Path, args: TailArgs) -> anyhow::Result<()> {
    let server = RunningServer::find(data)?;
    let key = local::operator_key(data)?;
    let path = match &args.name {
        Some(name) => format!("/operator/tail?script={name}&namespace={}", args.namespace),
        None => "/operator/tail".to_string(),
    };
    let stream = tokio::net::TcpStream::connect(server.address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the server at {}: {e}", server.address))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, server.address.to_string())
        .header(OPERATOR_KEY_HEADER, key)
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    if !response.status().is_success() {
        let body = response.into_body().collect().await?.to_bytes();
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let message = answer["error"]["message"]
            .as_str()
            .unwrap_or("the server refused");
        anyhow::bail!("{message}");
    }
    let what = args.name.as_deref().unwrap_or("every script");
    eprintln!("following {what} on {} (Ctrl-C to stop)", server.address);

    let mut body = response.into_body();
    let mut pending = String::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        pending.push_str(&String::from_utf8_lossy(&data));
        while let Some(end) = pending.find("\n\n") {
            let block: String = pending.drain(..end + 2).collect();
            for json in block.lines().filter_map(|line| line.strip_prefix("data:")) {
                print_event(json.trim(), args.json);
            }
        }
    }
    Ok(())
}

fn print_event(json: &str, as_json: bool) {
    if as_json {
        println!("{json}");
        return;
    }
    let Ok(event) = serde_json::from_str::<serde_json::Value>(json) else {
        return;
    };
    let status = event["status"]
        .as_u64()
        .map_or_else(|| "-".to_string(), |s| s.to_string());
    println!(
        "{} {} {} {} {} {} cpu={:.2}ms wall={:.2}ms",
        event["time"].as_str().unwrap_or_default(),
        event["script"].as_str().unwrap_or_default(),
        event["method"].as_str().unwrap_or_default(),
        event["path"].as_str().unwrap_or_default(),
        status,
        event["outcome"].as_str().unwrap_or_default(),
        event["cpu_ms"].as_f64().unwrap_or_default(),
        event["wall_ms"].as_f64().unwrap_or_default(),
    );
    for line in event["logs"].as_array().into_iter().flatten() {
        println!("    {}", line.as_str().unwrap_or_default());
    }
}

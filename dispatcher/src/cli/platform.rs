//! `dispatcher platform set-role EMAIL ROLE`: the operator's way to make the first admin
//! (or take the role back). It runs the first-party `auth` script in this process, as
//! an operator with the admin role, so the rule lives in one place: the script.

use bytes::Bytes;
use clap::Subcommand;
use http_body_util::BodyExt as _;

use crate::config::Config;
use crate::store::PLATFORM_NAMESPACE;

#[derive(Subcommand)]
pub enum PlatformCommand {
    /// Give the user with EMAIL the role ROLE (`admin` or `user`).
    SetRole {
        /// The platform user's email address.
        email: String,
        /// The role to give: `admin` or `user`.
        #[arg(value_parser = ["admin", "user"])]
        role: String,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(data: &std::path::Path, command: PlatformCommand) -> anyhow::Result<()> {
    let PlatformCommand::SetRole { email, role, json } = command;
    let deployer = crate::server::open(data, &Config::default()).await?;
    let Some(auth) = deployer.runtime.index.get(PLATFORM_NAMESPACE, "auth") else {
        anyhow::bail!(
            "the first-party `auth` service is not installed: start `dispatcher serve` once"
        );
    };
    let body = serde_json::to_vec(&serde_json::json!({ "email": email, "role": role }))?;
    let request = hyper::Request::post("http://auth/auth/role")
        .header("content-type", "application/json")
        .header("x-user-id", "operator")
        .header("x-user-role", "admin")
        .header("x-app-key", "default")
        .body(http_body_util::Full::new(Bytes::from(body)))?;
    let response = deployer.runtime.invoke(auth, request).await?;
    let status = response.status();
    let answer = response.into_body().collect().await?.to_bytes();
    let answer: serde_json::Value = serde_json::from_slice(&answer)?;
    if !status.is_success() {
        let message = answer["error"]["message"]
            .as_str()
            .unwrap_or("auth refused");
        anyhow::bail!("{message}");
    }
    if json {
        super::print_json(&answer["data"]);
    } else {
        println!("{email} now has the role {role}");
    }
    Ok(())
}

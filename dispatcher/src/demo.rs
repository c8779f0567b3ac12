//! The demo (seed 002's **Initialize**): a `demo` customer owning the default template
//! `hello`, so a fresh server answers `http://hello.localhost:8787/` at once. Made all or
//! nothing: when `hello` cannot be deployed for the new customer, the customer is removed
//! again, so a later attempt starts afresh (and a token is never shown for a demo that
//! does not work).

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::Mutex;

use crate::deploy::{DeployError, Deployer, NewVersion};
use crate::store::{CUSTOMER_NAMESPACE, IssuedToken};

/// The default customer template, built from `examples/hello`.
pub const HELLO_WASM: &[u8] = include_bytes!(concat!(env!("DISPATCHER_GUESTS_DIR"), "/hello.wasm"));

const DEMO_CUSTOMER: &str = "demo";
const DEMO_SCRIPT: &str = "hello";

/// One `ensure` at a time in this process, so two at once make one demo.
static ENSURING: Mutex<()> = Mutex::const_new(());

#[derive(Serialize)]
pub struct Demo {
    /// The new demo customer and its token; `None` when the demo already existed.
    pub customer: Option<IssuedToken>,
    pub script: String,
}

/// Creates the demo customer and uploads `hello` for it, unless a `demo` customer exists.
pub async fn ensure(deployer: &Deployer) -> Result<Demo, DeployError> {
    let _one_at_a_time = ENSURING.lock().await;
    let store = deployer.store.clone();
    let exists = store
        .list_customers()?
        .into_iter()
        .any(|c| c.name == DEMO_CUSTOMER);
    if exists {
        return Ok(Demo {
            customer: None,
            script: DEMO_SCRIPT.into(),
        });
    }
    let issued = store.create_customer(DEMO_CUSTOMER)?;
    let deployed = deployer
        .deploy(NewVersion {
            namespace: CUSTOMER_NAMESPACE.into(),
            name: DEMO_SCRIPT.into(),
            customer_id: Some(issued.customer.id.clone()),
            wasm: Bytes::from_static(HELLO_WASM),
            tags: Some(vec!["demo".into()]),
            bindings: None,
            annotations: Default::default(),
            deploy: true,
            crons: None,
            consumers: None,
        })
        .await;
    if let Err(error) = deployed {
        undo(deployer, &issued.customer.id).await;
        return Err(error);
    }
    Ok(Demo {
        customer: Some(issued),
        script: DEMO_SCRIPT.into(),
    })
}

/// Removes the demo customer `id` whose `hello` failed to deploy, with the script in
/// case the failure came after it was stored.
async fn undo(deployer: &Deployer, id: &str) {
    let removed = match deployer
        .delete(CUSTOMER_NAMESPACE, DEMO_SCRIPT, Some(id))
        .await
    {
        Ok(_) => deployer
            .store
            .delete_customer(id)
            .map_err(DeployError::from),
        Err(error) => Err(error),
    };
    if let Err(error) = removed {
        tracing::error!(customer = id, %error, "removing a half-made demo customer failed");
    }
}

pub fn print(demo: &Demo, listen: std::net::SocketAddr) {
    let port = listen.port();
    match &demo.customer {
        Some(issued) => {
            println!(
                "demo customer `{}` created; its token (shown once):",
                issued.customer.id
            );
            println!("  {}", issued.token);
        }
        None => println!(
            "demo customer already exists (rotate its token with `dispatcher customer rotate-token ID`)"
        ),
    }
    println!("try: curl http://{}.localhost:{port}/", demo.script);
    println!(
        "     curl http://127.0.0.1:{port}/dispatch/{}/",
        demo.script
    );
}

//! The demo (seed 002's **Initialize**): a `demo` customer owning the default template
//! `hello`, so a fresh server answers `http://hello.localhost:8787/` at once.

use bytes::Bytes;
use serde::Serialize;

use crate::deploy::{Deployer, NewVersion};
use crate::store::{CUSTOMER_NAMESPACE, IssuedToken};

/// The default customer template, built from `examples/hello`.
pub const HELLO_WASM: &[u8] = include_bytes!(concat!(env!("DISPATCHER_GUESTS_DIR"), "/hello.wasm"));

const DEMO_CUSTOMER: &str = "demo";
const DEMO_SCRIPT: &str = "hello";

#[derive(Serialize)]
pub struct Demo {
    /// The new demo customer and its token; `None` when the demo already existed.
    pub customer: Option<IssuedToken>,
    pub script: String,
}

/// Creates the demo customer and uploads `hello` for it, unless a `demo` customer exists.
pub async fn ensure(deployer: &Deployer) -> anyhow::Result<Demo> {
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
    deployer
        .deploy(NewVersion {
            namespace: CUSTOMER_NAMESPACE.into(),
            name: DEMO_SCRIPT.into(),
            customer_id: Some(issued.customer.id.clone()),
            wasm: Bytes::from_static(HELLO_WASM),
            tags: Some(vec!["demo".into()]),
            bindings: None,
        })
        .await?;
    Ok(Demo {
        customer: Some(issued),
        script: DEMO_SCRIPT.into(),
    })
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

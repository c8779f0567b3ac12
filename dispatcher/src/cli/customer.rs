//! `dispatcher customer create | list | rotate-token`.

use std::path::Path;

use clap::Subcommand;

use crate::store::Store;

#[derive(Subcommand)]
pub enum CustomerCommand {
    /// Create a customer and print its token (shown once, never again).
    Create {
        /// The customer's display name.
        name: String,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List customers.
    List {
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Issue a new token for a customer; the old one stops working at once.
    RotateToken {
        /// The customer's id (`customer list` shows it).
        id: String,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(data: &Path, command: CustomerCommand) -> anyhow::Result<()> {
    let store = Store::open(data)?;
    match command {
        CustomerCommand::Create { name, json } => {
            anyhow::ensure!(
                !name.trim().is_empty() && name.len() <= 200,
                "a customer name is 1-200 characters"
            );
            let issued = store.create_customer(&name)?;
            if json {
                super::print_json(&issued);
            } else {
                println!(
                    "created customer {} ({})",
                    issued.customer.id, issued.customer.name
                );
                println!("token (shown once, store it now): {}", issued.token);
            }
        }
        CustomerCommand::List { json } => {
            let customers = store.list_customers()?;
            if json {
                super::print_json(&customers);
            } else {
                println!("{:<14} {:<26} NAME", "ID", "CREATED");
                for c in customers {
                    println!("{:<14} {:<26} {}", c.id, c.created_at, c.name);
                }
            }
        }
        CustomerCommand::RotateToken { id, json } => {
            let issued = store
                .rotate_token(&id)
                .map_err(|e| anyhow::anyhow!("cannot rotate the token of customer {id}: {e}"))?;
            if json {
                super::print_json(&issued);
            } else {
                println!(
                    "new token for customer {} (shown once): {}",
                    issued.customer.id, issued.token
                );
            }
        }
    }
    Ok(())
}

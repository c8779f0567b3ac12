//! Customers and their tokens. A token is `dsp_<customer id>_<64 hex>` (256 random bits);
//! only its SHA-256 is stored. Checking a token looks the customer up by the id in the
//! token and compares fixed-size digests in constant time.

use rusqlite::OptionalExtension as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use super::{Store, StoreError, random_hex};

const TOKEN_PREFIX: &str = "dsp_";

#[derive(Debug, Clone, Serialize)]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

/// A customer with the token just issued for it; the only time the token exists in clear.
#[derive(Debug, Serialize)]
pub struct IssuedToken {
    #[serde(flatten)]
    pub customer: Customer,
    pub token: String,
}

fn new_token(customer_id: &str) -> (String, [u8; 32]) {
    let token = format!("{TOKEN_PREFIX}{customer_id}_{}", random_hex(32));
    let digest = Sha256::digest(token.as_bytes()).into();
    (token, digest)
}

fn customer_id_of(token: &str) -> Option<&str> {
    let (id, secret) = token.strip_prefix(TOKEN_PREFIX)?.split_once('_')?;
    (!id.is_empty() && secret.len() == 64).then_some(id)
}

impl Store {
    pub fn create_customer(&self, name: &str) -> Result<IssuedToken, StoreError> {
        let id = random_hex(6);
        let (token, digest) = new_token(&id);
        let created_at: String = self.conn().query_row(
            "INSERT INTO customers (id, name, token_sha256) VALUES (?1, ?2, ?3)
             RETURNING created_at",
            rusqlite::params![id, name, &digest[..]],
            |row| row.get(0),
        )?;
        Ok(IssuedToken {
            customer: Customer {
                id,
                name: name.to_string(),
                created_at,
            },
            token,
        })
    }

    pub fn list_customers(&self) -> Result<Vec<Customer>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT id, name, created_at FROM customers ORDER BY created_at, id")?;
        let rows = stmt.query_map([], |row| {
            Ok(Customer {
                id: row.get(0)?,
                name: row.get(1)?,
                created_at: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes a customer that owns no scripts (any it owns make this fail). False when
    /// there was no such customer.
    pub fn delete_customer(&self, customer_id: &str) -> Result<bool, StoreError> {
        let deleted = self
            .conn()
            .execute("DELETE FROM customers WHERE id = ?1", [customer_id])?;
        Ok(deleted > 0)
    }

    /// Issues a new token for the customer; the old one stops working at once.
    pub fn rotate_token(&self, customer_id: &str) -> Result<IssuedToken, StoreError> {
        let (token, digest) = new_token(customer_id);
        let customer = self
            .conn()
            .query_row(
                "UPDATE customers SET token_sha256 = ?2 WHERE id = ?1
                 RETURNING id, name, created_at",
                rusqlite::params![customer_id, &digest[..]],
                |row| {
                    Ok(Customer {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        created_at: row.get(2)?,
                    })
                },
            )
            .optional()?
            .ok_or(StoreError::NotFound)?;
        Ok(IssuedToken { customer, token })
    }

    /// The customer a token belongs to, or `None` for any wrong, malformed or stale token.
    pub fn authenticate(&self, token: &str) -> Result<Option<Customer>, StoreError> {
        let Some(id) = customer_id_of(token) else {
            return Ok(None);
        };
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let found = self
            .conn()
            .query_row(
                "SELECT id, name, created_at, token_sha256 FROM customers WHERE id = ?1",
                [id],
                |row| {
                    let customer = Customer {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        created_at: row.get(2)?,
                    };
                    Ok((customer, row.get::<_, Vec<u8>>(3)?))
                },
            )
            .optional()?;
        Ok(found.and_then(|(customer, stored)| {
            bool::from(stored.ct_eq(&presented[..])).then_some(customer)
        }))
    }
}

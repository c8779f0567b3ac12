//! [`Env`], the script's bindings by name, and [`BindingError`], what a binding call
//! fails with.

use std::fmt;

use crate::bindings::{types, vars};
use crate::{Bucket, Kv, Service, Sql};

/// The bindings of the script, by name, as configured on the platform.
///
/// Handles ([`Kv`], [`Sql`], [`Bucket`], [`Service`]) are cheap to make: they only hold
/// the name, and a missing binding shows up as a [`BindingErrorKind::NoSuchBinding`] error on use.
///
/// ```ignore
/// let greeting = env.var("GREETING").unwrap_or_default();
/// let hits = env.kv("CACHE").get_text("hits")?;
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Env {
    _private: (),
}

impl Env {
    pub(crate) fn new() -> Self {
        Self { _private: () }
    }

    /// The script's bindings, for an export of its own (an interface served to other
    /// scripts by typed RPC), which gets no `Env` argument.
    pub fn for_export() -> Self {
        Self::new()
    }

    /// The text of the `plain_text` binding `name`, or `None` if there is none.
    pub fn var(&self, name: &str) -> Option<String> {
        vars::get(name)
    }

    /// The text of the `secret_text` binding `name`, or `None` if there is none.
    pub fn secret(&self, name: &str) -> Option<String> {
        vars::secret(name)
    }

    /// The `kv_namespace` binding `name`.
    pub fn kv(&self, name: &str) -> Kv {
        Kv::new(name)
    }

    /// The `queue` binding `name`: a queue of the customer, to send messages to.
    pub fn queue(&self, name: &str) -> crate::Queue {
        crate::Queue::new(name)
    }

    /// The `d1` (SQLite) binding `name`.
    pub fn sql(&self, name: &str) -> Sql {
        Sql::new(name)
    }

    /// The `r2_bucket` binding `name`: an object-storage bucket.
    pub fn bucket(&self, name: &str) -> Bucket {
        Bucket::new(name)
    }

    /// The `service` binding `name`: another script, called over HTTP.
    pub fn service(&self, name: &str) -> Service {
        Service::new(name)
    }
}

/// Why the platform refused or failed a binding call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BindingErrorKind {
    /// The script has no binding of that name and kind.
    NoSuchBinding,
    /// The platform refused the call (a key too long, a statement that is not allowed).
    Invalid,
    /// A limit was reached (size, time, count, the storage quota).
    LimitExceeded,
    /// The call failed on the platform's side.
    Internal,
}

/// A KV, SQL or R2 call the platform refused or failed, found inside the [`Error`](crate::Error)
/// those calls return; get it back with `err.downcast_ref::<BindingError>()`.
///
/// Its message names the call, the binding, the kind and the platform's explanation,
/// e.g. ``kv put on `CACHE`: invalid: key is longer than 512 bytes``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingError {
    operation: &'static str,
    binding: String,
    kind: BindingErrorKind,
    message: String,
}

impl BindingError {
    pub(crate) fn new(operation: &'static str, binding: &str, error: types::Error) -> Self {
        let (kind, message) = match error {
            types::Error::NoSuchBinding(m) => (BindingErrorKind::NoSuchBinding, m),
            types::Error::Invalid(m) => (BindingErrorKind::Invalid, m),
            types::Error::LimitExceeded(m) => (BindingErrorKind::LimitExceeded, m),
            types::Error::Internal(m) => (BindingErrorKind::Internal, m),
        };
        Self {
            operation,
            binding: binding.to_owned(),
            kind,
            message,
        }
    }

    /// Why the call failed.
    pub fn kind(&self) -> BindingErrorKind {
        self.kind
    }

    /// The platform's explanation.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The binding the call was made on.
    pub fn binding(&self) -> &str {
        &self.binding
    }
}

impl fmt::Display for BindingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            BindingErrorKind::NoSuchBinding => "no such binding",
            BindingErrorKind::Invalid => "invalid",
            BindingErrorKind::LimitExceeded => "limit exceeded",
            BindingErrorKind::Internal => "internal error",
        };
        write!(
            f,
            "{} on `{}`: {kind}: {}",
            self.operation, self.binding, self.message
        )
    }
}

impl std::error::Error for BindingError {}

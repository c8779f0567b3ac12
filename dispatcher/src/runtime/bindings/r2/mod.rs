//! R2-style object storage under a script's `r2_bucket` bindings: buckets of objects
//! (bodies up to 5 GiB with a content type and custom metadata) per customer. `objects`
//! is the storage engine; the binding's host side is built on its API.

pub mod objects;

//! What the Vigo server and agent must agree on: the bundle format and its signature,
//! the `when:` expression language, host-name globs and hex text for keys and hashes.
//!
//! This crate does no I/O and depends on neither tokio nor ureq; it is `no_std` with
//! `alloc` so that every byte of it can be linked into the size-budgeted agent.
#![no_std]

extern crate alloc;

pub mod bundle;
pub mod codec;
pub mod digest;
pub mod glob;
pub mod hex;
pub mod protocol;
pub mod schema;
pub mod seal;
pub mod sign;
pub mod when;

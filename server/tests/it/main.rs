//! Integration tests of the server crate: one binary, modules per area.

mod cli;
mod e2e;
mod fixture;
mod trace;
mod validate;

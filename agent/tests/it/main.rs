//! Integration tests of the `vigo-agent` binary: signed bundles applied into temporary
//! roots, checked with the file system's own metadata, a second run and observe mode.

mod accounts;
mod cron;
mod engine;
mod exec;
mod facts;
mod files;
mod refuse;
mod run;
mod sealed;
mod server;
mod support;

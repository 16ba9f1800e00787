//! Integration tests of the server crate: one binary, modules per area.

mod bootstrap;
mod cli;
mod e2e;
mod fixture;
mod fleet;
mod fleetsim;
mod inputs;
mod server_app;
mod server_checkin;
mod server_crash;
mod server_enroll;
mod server_init;
mod server_limits;
mod server_publish;
mod serverkit;
mod trace;
mod validate;

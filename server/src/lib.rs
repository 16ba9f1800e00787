//! The Vigo server library: loading and validating the config directory, compiling a
//! node's bundle, tracing how it was resolved, and the secrets it needs.

pub mod client;
pub mod compile;
pub mod config;
pub mod crypt;
pub mod daemon;
pub mod date;
pub mod fleet;
pub mod fleetsim;
pub mod pki;
pub mod release;
pub mod seal;
pub mod secrets;
pub mod store;
pub mod tokens;
pub mod trace;

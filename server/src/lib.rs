//! The Vigo server library: loading and validating the config directory, compiling a
//! node's bundle, tracing how it was resolved, and the secrets it needs.

pub mod compile;
pub mod config;
pub mod crypt;
pub mod date;
pub mod secrets;
pub mod trace;

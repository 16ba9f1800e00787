//! The config directory: its model, how it is loaded and checked, and the guardrails.

pub mod check;
pub mod diag;
pub mod guardrails;
pub mod load;
pub mod model;
pub mod read;
pub mod resource;
pub mod yaml;

pub use diag::Diagnostic;
pub use load::load;
pub use model::Config;

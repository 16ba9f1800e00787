//! Talking to the Vigo server: TLS pinned to the Vigo CA, the HTTPS client, the check-in
//! and enrollment messages, and base64 for bundles on the wire.

pub mod base64;
pub mod checkin;
pub mod client;
pub mod tls;

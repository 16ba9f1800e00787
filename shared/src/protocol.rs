//! The agent–server protocol: endpoints, the per-request Ed25519 signature, and the
//! messages both sides exchange.
//!
//! Transport is HTTPS with mutual TLS pinned to the Vigo CA; there is no other. Bodies are
//! JSON (the server encodes them with serde, the agent with miniserde); the field names
//! below are the contract and are listed in `docs/protocol.md`. Binary values (keys,
//! signatures, hashes) are lower-case hex; a bundle travels as base64 of its signed
//! envelope ([`crate::sign`]).
//!
//! Every request an enrolled agent makes carries these headers, and the server checks all
//! of them against the node's stored public key before it touches any state:
//!
//! | header | value |
//! |---|---|
//! | `x-vigo-node` | the node name |
//! | `x-vigo-time` | Unix seconds when the request was signed |
//! | `x-vigo-seq` | a number greater than every earlier one from this node |
//! | `x-vigo-signature` | hex Ed25519 signature of [`request_message`] |

use alloc::string::String;
use alloc::vec::Vec;

use crate::hex;

/// Enrollment: an unenrolled agent proves a one-time token and receives its certificate.
pub const PATH_ENROLL: &str = "/v1/enroll";
/// Check-in: facts, results and the bundle decision.
pub const PATH_CHECKIN: &str = "/v1/checkin";

/// Header names of the request signature.
pub const HEADER_NODE: &str = "x-vigo-node";
/// Unix seconds of signing.
pub const HEADER_TIME: &str = "x-vigo-time";
/// Monotonic per-node sequence number.
pub const HEADER_SEQ: &str = "x-vigo-seq";
/// Hex Ed25519 signature.
pub const HEADER_SIGNATURE: &str = "x-vigo-signature";

/// How far a request's time may be from the server's clock, in seconds.
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

const REQUEST_DOMAIN: &str = "vigo-request-v1";
const ENROLL_DOMAIN: &str = "vigo-enroll-v1";

/// The bytes a request signature covers: domain, method, path, node, time, sequence and the
/// SHA-256 of the body, one per line. Any change to any of them invalidates the signature.
pub fn request_message(
    method: &str,
    path: &str,
    node: &str,
    time: u64,
    seq: u64,
    body: &[u8],
) -> Vec<u8> {
    // Built in one allocation of its final size: the server does this for every check-in.
    let parts = [REQUEST_DOMAIN, method, path, node];
    let text_len: usize = parts.iter().map(|p| p.len() + 1).sum();
    let mut s = String::with_capacity(text_len + 2 * (U64_DIGITS + 1) + 64);
    for part in parts {
        s.push_str(part);
        s.push('\n');
    }
    push_u64(&mut s, time);
    s.push('\n');
    push_u64(&mut s, seq);
    s.push('\n');
    hex::encode_into(&mut s, &crate::digest::sha256(body));
    s.into_bytes()
}

/// What an enrolling agent signs with its new key to prove it holds it: domain, host name,
/// public key (text form) and the SHA-256 of the token, so the proof is bound to this one
/// enrollment and cannot be replayed with another token or for another host.
pub fn enroll_message(hostname: &str, public_key: &str, token: &str) -> Vec<u8> {
    let mut s = String::with_capacity(200);
    for part in [ENROLL_DOMAIN, hostname, public_key] {
        s.push_str(part);
        s.push('\n');
    }
    s.push_str(&hex::encode(&crate::digest::sha256(token.as_bytes())));
    s.into_bytes()
}

/// Decimal digits of `u64::MAX`.
const U64_DIGITS: usize = 20;

/// Appends `v` in decimal.
fn push_u64(s: &mut String, mut v: u64) {
    let mut digits = [0u8; U64_DIGITS];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // ASCII digits, which are always UTF-8; the empty fallback is unreachable.
    s.push_str(core::str::from_utf8(&digits[i..]).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::SigningKey;
    use alloc::format;

    #[test]
    fn every_signed_field_matters() {
        let base = request_message("POST", PATH_CHECKIN, "web01", 1_700_000_000, 7, b"{}");
        let variants = [
            request_message("GET", PATH_CHECKIN, "web01", 1_700_000_000, 7, b"{}"),
            request_message("POST", PATH_ENROLL, "web01", 1_700_000_000, 7, b"{}"),
            request_message("POST", PATH_CHECKIN, "web02", 1_700_000_000, 7, b"{}"),
            request_message("POST", PATH_CHECKIN, "web01", 1_700_000_001, 7, b"{}"),
            request_message("POST", PATH_CHECKIN, "web01", 1_700_000_000, 8, b"{}"),
            request_message("POST", PATH_CHECKIN, "web01", 1_700_000_000, 7, b"{ }"),
        ];
        let key = SigningKey::from_seed([3; 32]);
        let sig = key.sign(&base);
        assert!(key.public().verify(&base, &sig));
        for v in variants {
            assert_ne!(v, base);
            assert!(!key.public().verify(&v, &sig));
        }
    }

    /// The exact bytes, so that a change of how the message is built cannot change what
    /// agents and servers of different versions sign.
    #[test]
    fn request_message_bytes() {
        let m = request_message("POST", PATH_CHECKIN, "web01", 1_700_000_000, 7, b"{}");
        let expected = format!(
            "vigo-request-v1\nPOST\n{PATH_CHECKIN}\nweb01\n1700000000\n7\n{}",
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(String::from_utf8(m).unwrap(), expected);
    }

    #[test]
    fn numbers_print_in_decimal() {
        for (n, s) in [
            (0u64, "0"),
            (7, "7"),
            (1_700_000_000, "1700000000"),
            (u64::MAX, "18446744073709551615"),
        ] {
            let mut text = String::from("x");
            push_u64(&mut text, n);
            assert_eq!(text, format!("x{s}"));
        }
    }
}

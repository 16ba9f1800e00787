//! Sealed attribute values: the wire format and the X25519 key agreement behind it.
//!
//! A secret-derived value in a bundle for an enrolled node travels as
//! [`AttrValue::Sealed`](crate::bundle::AttrValue::Sealed), encrypted to that node's key,
//! so that the wire, the server's caches and the agent's on-disk cache hold only ciphertext.
//! The layout of a sealed value is
//!
//! ```text
//! version (1 byte, = 1) | ephemeral X25519 public key (32) | nonce (12) | ciphertext + tag (16)
//! ```
//!
//! The recipient key is the node's Ed25519 key converted to X25519. The AEAD key is
//! HKDF-SHA256 with ikm = X25519(ephemeral secret, recipient public), salt = ephemeral public
//! || recipient public and info = `vigo-seal-v1`; the cipher is ChaCha20-Poly1305 with
//! additional data = resource id, `\n`, attribute key ([`aad`]), so that a sealed value cannot
//! be moved to another resource or attribute. This crate stays free of an AEAD and a KDF
//! (it is `no_std` without ring): it does the key agreement and the framing; the server seals
//! and the agent opens with ring.

use alloc::vec::Vec;

use ed25519_compact::x25519;

use crate::sign::{PublicKey, SigningKey};

/// The format version, the first byte of every sealed value.
pub const VERSION: u8 = 1;
/// The HKDF info string.
pub const INFO: &[u8] = b"vigo-seal-v1";
/// Length of the nonce.
pub const NONCE_LEN: usize = 12;
/// Length of the AEAD tag.
pub const TAG_LEN: usize = 16;
/// Length of the header before the ciphertext: version, ephemeral key, nonce.
pub const HEADER_LEN: usize = 1 + 32 + NONCE_LEN;

/// The secrets both sides derive the AEAD key from.
pub struct Agreement {
    /// The X25519 shared secret (the HKDF ikm).
    pub shared: [u8; 32],
    /// The HKDF salt: ephemeral public key || recipient public key.
    pub salt: [u8; 64],
}

/// The additional authenticated data of a value: resource id, `\n`, attribute key.
pub fn aad(resource_id: &str, attr_key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(resource_id.len() + 1 + attr_key.len());
    out.extend_from_slice(resource_id.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(attr_key.as_bytes());
    out
}

fn salt(eph_pub: &[u8; 32], recipient_pub: &[u8; 32]) -> [u8; 64] {
    let mut s = [0u8; 64];
    s[..32].copy_from_slice(eph_pub);
    s[32..].copy_from_slice(recipient_pub);
    s
}

/// The sender's side: from 32 random bytes (the ephemeral secret) and the node's Ed25519
/// public key, the ephemeral public key to put in the header and the agreement. `None` when
/// the node key is not a valid point or the agreement is degenerate.
pub fn seal_agreement(eph_secret: [u8; 32], node: &PublicKey) -> Option<([u8; 32], Agreement)> {
    let ed = ed25519_compact::PublicKey::new(*node.as_bytes());
    let recipient = x25519::PublicKey::from_ed25519(&ed).ok()?;
    let sk = x25519::SecretKey::new(eph_secret);
    let eph_pub = *sk.recover_public_key().ok()?;
    let shared = *recipient.dh(&sk).ok()?;
    let salt = salt(&eph_pub, &recipient);
    Some((eph_pub, Agreement { shared, salt }))
}

/// The recipient's side: the agreement for a value sealed to `node` with `eph_pub`.
pub fn open_agreement(node: &SigningKey, eph_pub: &[u8; 32]) -> Option<Agreement> {
    let sk = x25519_secret(node)?;
    let own_pub = *sk.recover_public_key().ok()?;
    let shared = *x25519::PublicKey::new(*eph_pub).dh(&sk).ok()?;
    Some(Agreement {
        shared,
        salt: salt(eph_pub, &own_pub),
    })
}

/// The node's X25519 secret: the clamped first half of SHA-512 of its Ed25519 seed, the
/// same scalar Ed25519 signs with (RFC 8032 section 5.1.5), so its public half is the
/// Montgomery form of the node's Ed25519 public key.
fn x25519_secret(node: &SigningKey) -> Option<x25519::SecretKey> {
    let hash = ring::digest::digest(&ring::digest::SHA512, node.seed());
    let mut scalar = [0u8; 32];
    scalar.copy_from_slice(&hash.as_ref()[..32]);
    scalar[0] &= 248;
    scalar[31] &= 63;
    scalar[31] |= 64;
    x25519::SecretKey::from_slice(&scalar).ok()
}

/// The parts of a sealed value.
pub struct Parts<'a> {
    /// The ephemeral X25519 public key.
    pub eph_pub: [u8; 32],
    /// The AEAD nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext followed by the tag.
    pub ciphertext: &'a [u8],
}

/// Splits a sealed value; `None` for an unknown version or a value too short to hold a tag.
pub fn split(sealed: &[u8]) -> Option<Parts<'_>> {
    if sealed.len() < HEADER_LEN + TAG_LEN || sealed[0] != VERSION {
        return None;
    }
    let mut eph_pub = [0u8; 32];
    eph_pub.copy_from_slice(&sealed[1..33]);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&sealed[33..HEADER_LEN]);
    Some(Parts {
        eph_pub,
        nonce,
        ciphertext: &sealed[HEADER_LEN..],
    })
}

/// Frames a sealed value from its parts.
pub fn join(eph_pub: &[u8; 32], nonce: &[u8; NONCE_LEN], ciphertext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len());
    out.push(VERSION);
    out.extend_from_slice(eph_pub);
    out.extend_from_slice(nonce);
    out.extend_from_slice(ciphertext);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_agree_and_another_key_does_not() {
        let node = SigningKey::from_seed([7; 32]);
        let (eph_pub, a) = seal_agreement([9; 32], &node.public()).expect("valid key");
        let b = open_agreement(&node, &eph_pub).expect("valid key");
        assert_eq!(a.shared, b.shared);
        assert_eq!(a.salt, b.salt);
        let other = SigningKey::from_seed([8; 32]);
        let c = open_agreement(&other, &eph_pub).expect("valid key");
        assert_ne!(a.shared, c.shared);
    }

    #[test]
    fn node_secret_matches_the_rfc8032_derivation_of_ed25519_compact() {
        for seed in [[1u8; 32], [7; 32], [0xff; 32]] {
            let ours = x25519_secret(&SigningKey::from_seed(seed)).expect("clamped scalar");
            let pair = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed));
            let theirs = x25519::SecretKey::from_ed25519(&pair.sk).expect("valid seed");
            assert_eq!(*ours, *theirs);
        }
    }
}

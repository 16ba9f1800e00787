//! Sealing secret-derived values to a node's key before its bundle is signed, so that the
//! wire and every cache hold only ciphertext (format and key agreement: `vigo_shared::seal`).
//!
//! Sealing is deterministic for a given server key, node key, resource, attribute and value:
//! the ephemeral secret and the nonce are derived from an Ed25519 signature of those by the
//! server's bundle key (deterministic and unpredictable without that key). So a recompile
//! after a restart or a publish that changes nothing for the node yields the same bundle and
//! hash, and the agent is told "unchanged". An equal ciphertext reveals only that the value
//! did not change; a changed value gets a fresh ephemeral key and nonce.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, Salt};
use sha2::{Digest, Sha512};
use vigo_shared::bundle::{AttrValue, Bundle, Sensitive};
use vigo_shared::seal;
use vigo_shared::sign::{PublicKey, SigningKey};

/// Why a bundle could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the node key {0} is not usable for sealing; enroll the node again")]
    NodeKey(PublicKey),
}

/// The ephemeral secret and nonce for one value (see the module comment).
fn derive(
    server: &SigningKey,
    node: &PublicKey,
    aad: &[u8],
    plaintext: &[u8],
) -> ([u8; 32], [u8; seal::NONCE_LEN]) {
    let mut msg = Vec::with_capacity(64 + aad.len() + plaintext.len());
    msg.extend_from_slice(b"vigo-seal-ephemeral-v1\n");
    msg.extend_from_slice(node.as_bytes());
    msg.extend_from_slice(&(aad.len() as u64).to_le_bytes());
    msg.extend_from_slice(aad);
    msg.extend_from_slice(plaintext);
    let digest = Sha512::digest(server.sign(&msg));
    let mut eph = [0u8; 32];
    eph.copy_from_slice(&digest[..32]);
    let mut nonce = [0u8; seal::NONCE_LEN];
    nonce.copy_from_slice(&digest[32..32 + seal::NONCE_LEN]);
    (eph, nonce)
}

/// Seals one value for `node`, bound to the resource and attribute it belongs to; `server`
/// is the bundle signing key, from which the ephemeral key and nonce are derived.
pub fn seal_value(
    server: &SigningKey,
    node: &PublicKey,
    resource_id: &str,
    attr_key: &str,
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    let (eph, nonce) = derive(server, node, &seal::aad(resource_id, attr_key), plaintext);
    let (eph_pub, agreement) = seal::seal_agreement(eph, node).ok_or(SealError::NodeKey(*node))?;
    let unbound: UnboundKey = Salt::new(HKDF_SHA256, &agreement.salt)
        .extract(&agreement.shared)
        .expand(&[seal::INFO], &CHACHA20_POLY1305)
        .map_err(|_| SealError::NodeKey(*node))?
        .into();
    let key = LessSafeKey::new(unbound);
    let mut buf = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(seal::aad(resource_id, attr_key)),
        &mut buf,
    )
    .map_err(|_| SealError::NodeKey(*node))?;
    Ok(seal::join(&eph_pub, &nonce, &buf))
}

/// Replaces every `Sensitive` attribute of `bundle` with a value sealed to `node`.
pub fn seal_bundle(
    bundle: &mut Bundle,
    server: &SigningKey,
    node: &PublicKey,
) -> Result<(), SealError> {
    for res in &mut bundle.resources {
        let id = res.id();
        for attr in &mut res.attrs {
            if let AttrValue::Sensitive(s) = &attr.value {
                let sealed = seal_value(server, node, &id, &attr.key, s.expose().as_bytes())?;
                attr.value = AttrValue::Sealed(sealed);
            }
        }
    }
    Ok(())
}

/// Opens a value sealed to `node` (the agent's side, kept here for tests and tools that hold
/// a node key). `None` when it was sealed to another key, for another attribute, or altered.
pub fn open_value(
    node: &SigningKey,
    resource_id: &str,
    attr_key: &str,
    sealed: &[u8],
) -> Option<Sensitive> {
    let parts = seal::split(sealed)?;
    let agreement = seal::open_agreement(node, &parts.eph_pub)?;
    let unbound: UnboundKey = Salt::new(HKDF_SHA256, &agreement.salt)
        .extract(&agreement.shared)
        .expand(&[seal::INFO], &CHACHA20_POLY1305)
        .ok()?
        .into();
    let mut buf = parts.ciphertext.to_vec();
    let plain = LessSafeKey::new(unbound)
        .open_in_place(
            Nonce::assume_unique_for_key(parts.nonce),
            Aad::from(seal::aad(resource_id, attr_key)),
            &mut buf,
        )
        .ok()?;
    String::from_utf8(plain.to_vec()).ok().map(Sensitive::new)
}

/// Opens every sealed value of `bundle` with `node` into a `Sensitive` one; `false` when one
/// could not be opened.
pub fn open_bundle(bundle: &mut Bundle, node: &SigningKey) -> bool {
    for res in &mut bundle.resources {
        let id = res.id();
        for attr in &mut res.attrs {
            if let AttrValue::Sealed(b) = &attr.value {
                match open_value(node, &id, &attr.key, b) {
                    Some(v) => attr.value = AttrValue::Sensitive(v),
                    None => return false,
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_and_refusals() {
        let server = SigningKey::from_seed([1; 32]);
        let node = SigningKey::from_seed([2; 32]);
        let id = "file:/etc/x";
        let sealed = seal_value(&server, &node.public(), id, "content", b"s3cr3t").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"s3cr3t"));
        let opened = open_value(&node, id, "content", &sealed).expect("opens");
        assert_eq!(opened.expose(), "s3cr3t");
        // Deterministic for the same inputs, different for another value.
        assert_eq!(
            sealed,
            seal_value(&server, &node.public(), id, "content", b"s3cr3t").unwrap()
        );
        let other_value = seal_value(&server, &node.public(), id, "content", b"s3cr3u").unwrap();
        assert_ne!(sealed[..seal::HEADER_LEN], other_value[..seal::HEADER_LEN]);

        // Another node's key, another resource or attribute, any flipped byte: refused.
        let other = SigningKey::from_seed([3; 32]);
        assert!(open_value(&other, id, "content", &sealed).is_none());
        assert!(open_value(&node, "file:/etc/y", "content", &sealed).is_none());
        assert!(open_value(&node, id, "mode", &sealed).is_none());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            assert!(open_value(&node, id, "content", &bad).is_none(), "byte {i}");
        }
        assert!(open_value(&node, id, "content", &sealed[..40]).is_none());
    }
}

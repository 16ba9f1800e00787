//! Ed25519 keys and the signed bundle envelope.
//!
//! A signed bundle is `VGSB`, the signer's 32-byte public key, a 64-byte signature and the
//! canonical bundle bytes ([`crate::codec`]). The signature covers a domain-separation
//! prefix and the bundle bytes, so a signature made for another purpose (a request, a
//! release binary) can never pass as a bundle signature. The only way to obtain a
//! [`VerifiedBundle`] is [`verify_bundle`]: code that applies policy takes that type and
//! therefore cannot be handed an unverified bundle.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

use crate::bundle::Bundle;
use crate::codec::{self, DecodeError};
use crate::hex;

const ENVELOPE_MAGIC: &[u8; 4] = b"VGSB";
const BUNDLE_DOMAIN: &[u8] = b"vigo-bundle-v1\0";
const HEADER_LEN: usize = 4 + 32 + 64;

/// SHA-256 of a bundle's canonical bytes: names a bundle in check-ins and caches.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BundleHash(pub [u8; 32]);

impl BundleHash {
    /// Hashes canonical bundle bytes.
    pub fn of(bytes: &[u8]) -> BundleHash {
        BundleHash(crate::digest::sha256(bytes))
    }
}

impl fmt::Display for BundleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for BundleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BundleHash({self})")
    }
}

/// An Ed25519 public key. Its text form is `ed25519:` followed by 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> PublicKey {
        PublicKey(bytes)
    }

    /// Parses the text form (surrounding whitespace is ignored).
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let hex_part = text
            .trim()
            .strip_prefix("ed25519:")
            .ok_or(KeyError::Prefix)?;
        let bytes = hex::decode_array::<32>(hex_part).ok_or(KeyError::Hex)?;
        Ok(PublicKey(bytes))
    }

    /// Checks `signature` over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, signature)
            .is_ok()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ed25519:{}", hex::encode(&self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

/// A private Ed25519 key. It has no `Display`, and its `Debug` shows only the public half.
/// Its text form (for a 0600 key file) is `ed25519-seed:` followed by 64 hex digits.
pub struct SigningKey {
    seed: [u8; 32],
    pair: Ed25519KeyPair,
}

impl Clone for SigningKey {
    fn clone(&self) -> SigningKey {
        SigningKey::from_seed(self.seed)
    }
}

impl SigningKey {
    /// Derives the key pair from 32 secret random bytes.
    pub fn from_seed(seed: [u8; 32]) -> SigningKey {
        // from_seed_unchecked derives the public half from the seed, so there is nothing
        // left to check: any 32 bytes are a valid Ed25519 seed.
        let pair = match Ed25519KeyPair::from_seed_unchecked(&seed) {
            Ok(pair) => pair,
            Err(_) => unreachable!("every 32-byte string is an Ed25519 seed"),
        };
        SigningKey { seed, pair }
    }

    /// The 32 secret bytes (for deriving the node's X25519 key in [`crate::seal`]).
    pub(crate) fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// Parses the text form of a key file.
    pub fn parse(text: &str) -> Result<SigningKey, KeyError> {
        let hex_part = text
            .trim()
            .strip_prefix("ed25519-seed:")
            .ok_or(KeyError::Prefix)?;
        let seed = hex::decode_array::<32>(hex_part).ok_or(KeyError::Hex)?;
        Ok(SigningKey::from_seed(seed))
    }

    /// The text form, for writing to a key file created with mode 0600.
    pub fn to_file_text(&self) -> String {
        let mut s = String::from("ed25519-seed:");
        s.push_str(&hex::encode(&self.seed));
        s.push('\n');
        s
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(out)
    }

    /// Signs `message` (deterministic Ed25519).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.pair.sign(message).as_ref());
        out
    }

    /// Encodes `bundle` canonically and wraps it in a signed envelope.
    pub fn sign_bundle(&self, bundle: &Bundle) -> Vec<u8> {
        let payload = codec::encode(bundle);
        let signature = self.sign(&bundle_message(&payload));
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(ENVELOPE_MAGIC);
        out.extend_from_slice(self.public().as_bytes());
        out.extend_from_slice(&signature);
        out.extend_from_slice(&payload);
        out
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(public {})", self.public())
    }
}

/// Why a key could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// The text does not start with the expected `ed25519:` / `ed25519-seed:` prefix.
    Prefix,
    /// The part after the prefix is not 64 hex digits.
    Hex,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Prefix => f.write_str(
                "key text must start with 'ed25519:' (public) or 'ed25519-seed:' (private)",
            ),
            KeyError::Hex => f.write_str("key must be 64 hexadecimal digits after its prefix"),
        }
    }
}

/// A bundle whose signature was checked against a trusted key. Only [`verify_bundle`]
/// creates one.
#[derive(Clone, Debug)]
pub struct VerifiedBundle {
    bundle: Bundle,
    hash: BundleHash,
    signer: PublicKey,
}

impl VerifiedBundle {
    /// The verified bundle.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// SHA-256 of its canonical bytes.
    pub fn hash(&self) -> BundleHash {
        self.hash
    }

    /// The trusted key that signed it.
    pub fn signer(&self) -> PublicKey {
        self.signer
    }
}

/// Why a signed bundle was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BundleError {
    /// Too short, or not a signed bundle at all.
    NotSigned,
    /// Signed by a key that is not trusted here.
    UntrustedSigner(PublicKey),
    /// The signature does not match the bytes: tampered or corrupted.
    BadSignature,
    /// Signed, but the payload does not decode.
    Malformed(DecodeError),
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleError::NotSigned => {
                f.write_str("not a signed vigo bundle (truncated or wrong file); nothing was applied")
            }
            BundleError::UntrustedSigner(key) => write!(
                f,
                "bundle is signed by {key}, which this agent does not trust; nothing was applied"
            ),
            BundleError::BadSignature => f.write_str(
                "bundle signature does not match its contents (tampered or corrupted); nothing was applied",
            ),
            BundleError::Malformed(e) => write!(f, "{e}; nothing was applied"),
        }
    }
}

/// Checks a signed envelope against the trusted keys and decodes it.
pub fn verify_bundle(bytes: &[u8], trusted: &[PublicKey]) -> Result<VerifiedBundle, BundleError> {
    if bytes.len() < HEADER_LEN || &bytes[..4] != ENVELOPE_MAGIC {
        return Err(BundleError::NotSigned);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes[4..36]);
    let mut signature = [0u8; 64];
    signature.copy_from_slice(&bytes[36..HEADER_LEN]);
    let payload = &bytes[HEADER_LEN..];
    let signer = PublicKey(key);
    if !trusted.contains(&signer) {
        return Err(BundleError::UntrustedSigner(signer));
    }
    if !signer.verify(&bundle_message(payload), &signature) {
        return Err(BundleError::BadSignature);
    }
    let bundle = codec::decode(payload).map_err(BundleError::Malformed)?;
    Ok(VerifiedBundle {
        bundle,
        hash: BundleHash::of(payload),
        signer,
    })
}

fn bundle_message(payload: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(BUNDLE_DOMAIN.len() + payload.len());
    msg.extend_from_slice(BUNDLE_DOMAIN);
    msg.extend_from_slice(payload);
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{Attr, AttrValue, Resource, ResourceKind, Sensitive};
    use alloc::string::ToString;
    use alloc::vec;

    fn sample() -> Bundle {
        Bundle {
            node: "web01.prod".to_string(),
            policy: "abc123".to_string(),
            observe: false,
            interval_secs: 1800,
            resources: vec![Resource {
                kind: ResourceKind::User,
                name: "alice".to_string(),
                attrs: vec![
                    Attr {
                        key: "groups".to_string(),
                        value: AttrValue::List(vec!["sudo".to_string()]),
                    },
                    Attr {
                        key: "password".to_string(),
                        value: AttrValue::Sensitive(Sensitive::new("$6$x$y".to_string())),
                    },
                    Attr {
                        key: "token".to_string(),
                        value: AttrValue::Sealed(vec![1, 0, 255, 7]),
                    },
                    Attr {
                        key: "uid".to_string(),
                        value: AttrValue::Int(-5),
                    },
                ],
                when: Some("has_command('sudo')".to_string()),
                depends_on: vec!["group:sudo".to_string()],
                notify: vec![],
                compliance: vec!["cis-5.1".to_string()],
                dangerous: false,
                origin: "modules/users.yaml:3:5".to_string(),
                module: "users".to_string(),
                skip: None,
            }],
        }
    }

    fn key(n: u8) -> SigningKey {
        SigningKey::from_seed([n; 32])
    }

    #[test]
    fn signed_bundle_round_trips_and_is_deterministic() {
        let k = key(7);
        let a = k.sign_bundle(&sample());
        assert_eq!(a, k.sign_bundle(&sample()));
        let v = verify_bundle(&a, &[k.public()]).expect("signed by a trusted key");
        assert_eq!(v.bundle(), &sample());
        assert_eq!(v.hash(), BundleHash::of(&codec::encode(&sample())));
    }

    #[test]
    fn sealed_values_round_trip_and_debug_shows_only_their_length() {
        let b = sample();
        let back = codec::decode(&codec::encode(&b)).expect("decodes");
        assert_eq!(
            back.resources[0].attr("token"),
            Some(&AttrValue::Sealed(vec![1, 0, 255, 7]))
        );
        let debug = alloc::format!("{:?}", back.resources[0].attr("token"));
        assert_eq!(debug, "Some(Sealed(<4 bytes>))");
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let k = key(7);
        let good = k.sign_bundle(&sample());
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            assert!(
                verify_bundle(&bad, &[k.public()]).is_err(),
                "flip at byte {i} accepted"
            );
        }
    }

    #[test]
    fn truncation_untrusted_signer_and_garbage_are_refused() {
        let k = key(7);
        let good = k.sign_bundle(&sample());
        for len in 0..good.len() {
            assert!(
                verify_bundle(&good[..len], &[k.public()]).is_err(),
                "truncated to {len} accepted"
            );
        }
        assert_eq!(
            verify_bundle(&good, &[key(8).public()]).unwrap_err(),
            BundleError::UntrustedSigner(k.public())
        );
        assert_eq!(
            verify_bundle(b"hello", &[k.public()]).unwrap_err(),
            BundleError::NotSigned
        );
    }

    #[test]
    fn decode_refuses_trailing_bytes() {
        let mut bytes = codec::encode(&sample());
        bytes.push(0);
        assert_eq!(
            codec::decode(&bytes).unwrap_err().what,
            "trailing bytes after the bundle"
        );
    }

    #[test]
    fn key_text_round_trips_and_debug_hides_the_seed() {
        let k = key(9);
        let text = k.to_file_text();
        let back = SigningKey::parse(&text).expect("own text form parses");
        assert_eq!(back.public(), k.public());
        assert_eq!(PublicKey::parse(&k.public().to_string()), Ok(k.public()));
        let debug = alloc::format!("{k:?}");
        assert!(!debug.contains(&text.trim()[13..]), "{debug}");
        assert_eq!(PublicKey::parse("ed25519:zz"), Err(KeyError::Hex));
        assert_eq!(PublicKey::parse("rsa:00"), Err(KeyError::Prefix));
    }

    #[test]
    fn sensitive_values_never_show_in_debug() {
        let debug = alloc::format!("{:?}", sample());
        assert!(!debug.contains("$6$x$y"), "{debug}");
    }
}

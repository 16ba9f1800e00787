//! The ZIP-215 Ed25519 equations on curve25519-dalek, single and batched, with a cache of
//! decompressed node keys.
//!
//! ed25519-zebra decompresses every public key A and every commitment R anew: ~8 µs each on
//! a core here, about a sixth of a batched verification. A node signs every check-in with the
//! same key, so its decompressed point is kept — in the FleetIndex entry (168 bytes a node),
//! which check-ins pass along — and only R is decompressed per signature. Callers without a
//! point (tools, benchmarks) go through the verifier thread's [`KeyCache`].
//!
//! The rules are ed25519-zebra's (ZIP-215), restated here with the same curve25519-dalek calls
//! on the same bytes, so that no signature can pass one and fail the other:
//! - A and R are decoded by `CompressedEdwardsY::decompress`, which accepts non-canonical
//!   encodings (y ≥ p, a set sign bit on x = 0) and points of small or mixed order; bytes
//!   that are no point are refused;
//! - S must be canonical (`Scalar::from_canonical_bytes`: below ℓ, high bit clear);
//! - k = SHA-512(R_bytes ‖ A_bytes ‖ M) mod ℓ, over the encodings as sent;
//! - the cofactored equation [8](S·B − R − k·A) = 0 must hold, computed for one signature
//!   exactly as ed25519-zebra's `verify_prehashed` does;
//! - a batch draws a random 128-bit zᵢ per signature and checks
//!   [8](−(Σ zᵢSᵢ)·B + Σ zᵢ·Rᵢ + Σ (zᵢkᵢ)·Aᵢ) = 0, as ed25519-zebra's batch verifier does.
//!   Because each term is multiplied by the cofactor, a batch of signatures that each pass
//!   always passes, and a batch with one that fails passes with probability below 2⁻¹²⁸.
//!
//! The tests compare every answer with ed25519-zebra's on valid, small-order, mixed-order and
//! non-canonical inputs.
//!
//! Memory of the cache, which the server's check-ins leave empty: an entry is the 32-byte key and its 160-byte point in a `HashMap`, 193 bytes
//! a bucket with hashbrown's control byte; at its load factor of 7/16 to 7/8 that is 220–441
//! bytes per cached key, and there is at most one per enrolled node (keys come from the fleet
//! index). The cache is emptied when it holds [`KEY_CACHE_LIMIT`] keys, the most a table of
//! 2¹⁸ buckets takes before it would double, so it never exceeds 2¹⁸ × 193 B ≈ 50.6 MB. A
//! fleet of more nodes than that would see the cache refill over and over, and then should
//! raise the limit.

use std::collections::HashMap;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use sha2::{Digest, Sha512};

/// Keys the cache holds before it is emptied: 7/8 of 2¹⁸, hashbrown's capacity for a table
/// of 2¹⁸ buckets, so that the table never grows past that.
pub const KEY_CACHE_LIMIT: usize = 7 << 15;

/// Decompressed public keys by their encoding. Only keys that decompress are kept; the
/// point of an encoding never changes, so an entry never goes stale, only unused.
pub struct KeyCache {
    points: HashMap<[u8; 32], EdwardsPoint>,
    limit: usize,
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache::with_limit(KEY_CACHE_LIMIT)
    }
}

impl KeyCache {
    /// A cache that is emptied when it holds `limit` keys.
    pub fn with_limit(limit: usize) -> KeyCache {
        KeyCache {
            points: HashMap::new(),
            limit: limit.max(1),
        }
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The point `key` encodes, or `None` if it encodes none.
    fn point(&mut self, key: &[u8; 32]) -> Option<EdwardsPoint> {
        if let Some(point) = self.points.get(key) {
            return Some(*point);
        }
        let point = CompressedEdwardsY(*key).decompress()?;
        if self.points.len() >= self.limit {
            // Emptying rather than evicting one entry keeps the hot path a plain HashMap;
            // every node's key is back in the cache after its next check-in.
            self.points.clear();
        }
        self.points.insert(*key, point);
        Some(point)
    }
}

/// A signature whose parts all decode: what the equations need.
pub(super) struct Decoded {
    a: EdwardsPoint,
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

/// Decodes `key`'s `signature` of `message`; `None` when ZIP-215 refuses it before any
/// equation: A or R is no point, or S is not canonical.
pub(super) fn decode(
    keys: &mut KeyCache,
    point: Option<&EdwardsPoint>,
    key: &[u8; 32],
    message: &[u8],
    signature: &[u8; 64],
) -> Option<Decoded> {
    let (r_bytes, s_bytes) = signature.split_at(32);
    let r_bytes: [u8; 32] = r_bytes.try_into().expect("a signature is 64 bytes");
    let s_bytes: [u8; 32] = s_bytes.try_into().expect("a signature is 64 bytes");
    // The caller's point, decompressed once from `key` (the FleetIndex keeps one per node),
    // else the cache's.
    let a = match point {
        Some(point) => *point,
        None => keys.point(key)?,
    };
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    let r = CompressedEdwardsY(r_bytes).decompress()?;
    let hash: [u8; 64] = Sha512::new()
        .chain_update(r_bytes)
        .chain_update(key)
        .chain_update(message)
        .finalize()
        .into();
    let k = Scalar::from_bytes_mod_order_wide(&hash);
    Some(Decoded { a, r, s, k })
}

impl Decoded {
    /// The single equation, computed as ed25519-zebra's `verify_prehashed` does:
    /// [8](R − R′) = 0 where R′ = [s]B − [k]A.
    pub(super) fn holds(&self) -> bool {
        let r_prime = EdwardsPoint::vartime_double_scalar_mul_basepoint(&self.k, &-self.a, &self.s);
        (self.r - r_prime).mul_by_cofactor().is_identity()
    }
}

/// Whether the batch equation holds for all of `items`. False also when the system has no
/// randomness to give: the caller then checks each signature alone, which needs none.
pub(super) fn batch_holds(items: &[&Decoded]) -> bool {
    let mut random = vec![0u8; 16 * items.len()];
    // One system call for the whole batch rather than one per signature.
    if getrandom::fill(&mut random).is_err() {
        return false;
    }
    let z: Vec<Scalar> = random
        .chunks_exact(16)
        .map(|c| Scalar::from(u128::from_le_bytes(c.try_into().expect("chunks of 16"))))
        .collect();
    let mut b_coeff = Scalar::ZERO;
    let mut a_coeffs = Vec::with_capacity(items.len());
    for (item, z) in items.iter().zip(&z) {
        b_coeff -= z * item.s;
        a_coeffs.push(z * item.k);
    }
    let check = EdwardsPoint::vartime_multiscalar_mul(
        std::iter::once(&b_coeff).chain(&z).chain(&a_coeffs),
        std::iter::once(&ED25519_BASEPOINT_POINT)
            .chain(items.iter().map(|i| &i.r))
            .chain(items.iter().map(|i| &i.a)),
    );
    check.mul_by_cofactor().is_identity()
}

/// Points, scalars and signatures with known discrete logs, for tests here and in `verify`.
#[cfg(test)]
pub(super) mod fixtures {
    use curve25519_dalek::edwards::EdwardsPoint;
    use curve25519_dalek::scalar::Scalar;
    use sha2::{Digest, Sha512};

    /// ℓ, the order of the prime-order subgroup, little-endian.
    pub const ELL: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    /// p + n with p = 2²⁵⁵ − 19, little-endian: the non-canonical encoding of y = n (n ≤ 18)
    /// with the sign bit clear.
    pub fn p_plus(n: u8) -> [u8; 32] {
        assert!(n <= 18, "p + n stays below 2^255");
        let mut b = [0xff; 32];
        b[0] = 0xed + n;
        b[31] = 0x7f;
        b
    }

    /// `bytes` with the sign bit of x set.
    pub fn sign_bit(mut bytes: [u8; 32]) -> [u8; 32] {
        bytes[31] |= 0x80;
        bytes
    }

    /// `a + b`, little-endian, for sums that stay below 2²⁵⁶.
    pub fn add_le(a: [u8; 32], b: [u8; 32]) -> [u8; 32] {
        let mut sum = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(a[i]) + u16::from(b[i]) + carry;
            sum[i] = v as u8;
            carry = v >> 8;
        }
        assert_eq!(carry, 0, "the sum fits 256 bits");
        sum
    }

    /// The point y = 0 with non-negative x, of order 4; its canonical encoding is all zeros.
    pub fn t4() -> EdwardsPoint {
        curve25519_dalek::edwards::CompressedEdwardsY([0; 32])
            .decompress()
            .expect("y = 0 is on the curve")
    }

    /// S = r + k·a with k = SHA-512(`r_bytes` ‖ `a_bytes` ‖ `message`) mod ℓ: the honest S
    /// for a key with discrete log `a` and a commitment with discrete log `r` (of their
    /// prime-order parts).
    pub fn s_for(r: Scalar, a: Scalar, r_bytes: &[u8; 32], a_bytes: &[u8; 32], m: &[u8]) -> Scalar {
        let hash: [u8; 64] = Sha512::new()
            .chain_update(r_bytes)
            .chain_update(a_bytes)
            .chain_update(m)
            .finalize()
            .into();
        r + Scalar::from_bytes_mod_order_wide(&hash) * a
    }

    /// R ‖ S.
    pub fn signature(r_bytes: &[u8; 32], s: &[u8; 32]) -> [u8; 64] {
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(r_bytes);
        sig[32..].copy_from_slice(s);
        sig
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::daemon::verify::{VerifyStats, verify_batch};
    use curve25519_dalek::constants::EIGHT_TORSION;

    /// An encoding, and the discrete log of the prime-order part of the point it encodes when
    /// known (zero for points of small order).
    type Encoding = (String, [u8; 32], Option<Scalar>);

    /// Encodings of every kind ZIP-215 treats specially, for a prime-order part `dl`·B.
    fn encodings(dl: Scalar) -> Vec<Encoding> {
        let prime = EdwardsPoint::mul_base(&dl);
        let mut all: Vec<Encoding> = vec![
            ("prime order".into(), prime.compress().to_bytes(), Some(dl)),
            (
                "mixed order, + T4".into(),
                (prime + t4()).compress().to_bytes(),
                Some(dl),
            ),
            (
                "mixed order, + T8".into(),
                (prime + EIGHT_TORSION[1]).compress().to_bytes(),
                Some(dl),
            ),
        ];
        for (i, t) in EIGHT_TORSION.iter().enumerate() {
            all.push((
                format!("torsion {i}"),
                t.compress().to_bytes(),
                Some(Scalar::ZERO),
            ));
        }
        let identity = EIGHT_TORSION[0].compress().to_bytes();
        let order_two = EIGHT_TORSION[4].compress().to_bytes();
        all.extend([
            (
                "identity, sign bit set".into(),
                sign_bit(identity),
                Some(Scalar::ZERO),
            ),
            ("identity, y = p + 1".into(), p_plus(1), Some(Scalar::ZERO)),
            (
                "identity, y = p + 1, sign bit".into(),
                sign_bit(p_plus(1)),
                Some(Scalar::ZERO),
            ),
            (
                "order 2, sign bit set".into(),
                sign_bit(order_two),
                Some(Scalar::ZERO),
            ),
            ("order 4, y = p".into(), p_plus(0), Some(Scalar::ZERO)),
            (
                "order 4, y = p, sign bit".into(),
                sign_bit(p_plus(0)),
                Some(Scalar::ZERO),
            ),
        ]);
        // Other y ≥ p that decode: points of unknown discrete log, in non-canonical form.
        let mut unknown = 0;
        let mut undecodable = false;
        for n in 2..=18u8 {
            let bytes = p_plus(n);
            if CompressedEdwardsY(bytes).decompress().is_some() {
                if unknown < 3 {
                    all.push((format!("y = p + {n}"), bytes, None));
                    unknown += 1;
                }
            } else if !undecodable {
                all.push((format!("y = p + {n}, no point"), bytes, None));
                undecodable = true;
            }
        }
        assert!(unknown > 0 && undecodable, "both kinds exist below p + 19");
        all
    }

    /// ed25519-zebra's single verification: the reference.
    fn zebra(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
        match ed25519_zebra::VerificationKey::try_from(*key) {
            Ok(key) => key
                .verify(&ed25519_zebra::Signature::from(*signature), message)
                .is_ok(),
            Err(_) => false,
        }
    }

    /// A key, a message and a signature, named, with ZIP-215's answer where it is certain
    /// without computing the equation (it is not for points of unknown discrete log).
    type Combo = (String, [u8; 32], Vec<u8>, [u8; 64], Option<bool>);

    /// Every key encoding with a commitment of prime, small and mixed order, and every
    /// commitment encoding under a key of prime, small and mixed order; each with the honest S
    /// (when the discrete logs are known; else zero), the honest S plus one, and the honest S
    /// plus ℓ (the same scalar, not canonical). Not the full cross product, which takes
    /// minutes in a debug build.
    fn combos() -> Vec<Combo> {
        let a = Scalar::from(0x5eed_0001_u64) * Scalar::from(0x1234_5678_9abc_u64);
        let r = Scalar::from(0x5eed_0002_u64) * Scalar::from(0x0fed_cba9_8765_u64);
        let message = b"POST\n/v1/checkin\nnode-1.prod\n1796000000\n7\n{}".to_vec();
        let partners = ["prime order", "order 4, y = p", "mixed order, + T8"];
        let (keys, commitments) = (encodings(a), encodings(r));
        let mut pairs: Vec<(&Encoding, &Encoding)> = Vec::new();
        for key in &keys {
            for commitment in &commitments {
                let pair = (key, commitment);
                if partners.contains(&key.0.as_str()) || partners.contains(&commitment.0.as_str()) {
                    pairs.push(pair);
                }
            }
        }
        let decodes = |b: &[u8; 32]| CompressedEdwardsY(*b).decompress().is_some();
        let mut out = Vec::new();
        for ((a_name, a_bytes, a_dl), (r_name, r_bytes, r_dl)) in pairs {
            let honest = match (r_dl, a_dl) {
                (Some(r_dl), Some(a_dl)) => s_for(*r_dl, *a_dl, r_bytes, a_bytes, &message),
                _ => Scalar::ZERO,
            };
            let known = a_dl.is_some() && r_dl.is_some();
            let points = decodes(a_bytes) && decodes(r_bytes);
            let s_values = [
                ("honest S", honest.to_bytes(), known.then_some(true)),
                (
                    "S + 1",
                    (honest + Scalar::ONE).to_bytes(),
                    known.then_some(false),
                ),
                ("S + ℓ", add_le(honest.to_bytes(), ELL), Some(false)),
            ];
            for (s_name, s_bytes, expect) in s_values {
                out.push((
                    format!("A {a_name}; R {r_name}; {s_name}"),
                    *a_bytes,
                    message.clone(),
                    signature(r_bytes, &s_bytes),
                    if points { expect } else { Some(false) },
                ));
            }
        }
        out
    }

    /// The single equation here answers as ed25519-zebra's single verification on every
    /// combination, and those answers are what ZIP-215 says of each kind. A batch of every
    /// combination ed25519-zebra accepts passes the batch equation, and batches of eight in
    /// turn answer each signature as ed25519-zebra does.
    #[test]
    fn equations_answer_as_zebra() {
        let all = combos();
        let mut keys = KeyCache::default();
        let mut want = Vec::new();
        for (name, key, message, sig, expect) in &all {
            let zebra = zebra(key, message, sig);
            let got = decode(&mut keys, None, key, message, sig).is_some_and(|d| d.holds());
            assert_eq!(got, zebra, "{name}");
            if let Some(expect) = expect {
                assert_eq!(zebra, *expect, "{name}: ZIP-215's answer");
            }
            want.push(zebra);
        }
        let accepted = want.iter().filter(|ok| **ok).count();
        assert!(accepted > 50, "{accepted} of {} accepted", all.len());

        let good: Vec<Decoded> = all
            .iter()
            .zip(&want)
            .filter(|(_, ok)| **ok)
            .map(|((name, k, m, s, _), _)| {
                decode(&mut keys, None, k, m, s).unwrap_or_else(|| panic!("{name}"))
            })
            .collect();
        assert!(batch_holds(&good.iter().collect::<Vec<_>>()));

        let stats = VerifyStats::default();
        // A stride coprime to the count mixes kinds of key, commitment and S in each batch.
        let stride = (7..).find(|s| gcd(*s, all.len()) == 1).expect("one exists");
        let order: Vec<usize> = (0..all.len()).map(|i| i * stride % all.len()).collect();
        for chunk in order.chunks(8) {
            let jobs: Vec<(&[u8; 32], &[u8], &[u8; 64])> = chunk
                .iter()
                .map(|i| (&all[*i].1, all[*i].2.as_slice(), &all[*i].3))
                .collect();
            let got = verify_batch(&mut keys, &jobs, &stats);
            for (i, got) in chunk.iter().zip(got) {
                assert_eq!(got, want[*i], "{} in a batch", all[*i].0);
            }
        }
    }

    /// k is over the encodings as sent, not over a re-encoding of the points: no honest
    /// signature tells the two apart (a non-canonical key of large order has no known
    /// discrete log), so this is checked on k itself.
    #[test]
    fn k_is_over_the_encodings_as_sent() {
        let mut keys = KeyCache::default();
        let key = (2..=18u8)
            .map(p_plus)
            .find(|b| CompressedEdwardsY(*b).decompress().is_some())
            .expect("some y below 19 is on the curve");
        let r_bytes = p_plus(0);
        let message = b"m";
        let d = decode(
            &mut keys,
            None,
            &key,
            message,
            &signature(&r_bytes, &[0; 32]),
        )
        .expect("points");
        assert_ne!(d.a.compress().to_bytes(), key, "the key is not canonical");
        assert_ne!(d.r.compress().to_bytes(), r_bytes, "R is not canonical");
        let k = s_for(Scalar::ZERO, Scalar::ONE, &r_bytes, &key, message);
        assert_eq!(d.k, k);
    }

    /// Two bad signatures whose errors cancel out, S + 1 in one and S − 1 in the other: the
    /// random coefficients are what makes the batch equation fail.
    #[test]
    fn errors_that_cancel_out_still_fail_the_batch() {
        let mut keys = KeyCache::default();
        let a = Scalar::from(0xa11ce_u64);
        let a_bytes = EdwardsPoint::mul_base(&a).compress().to_bytes();
        let bad = |r: u64, delta: Scalar, keys: &mut KeyCache| {
            let r = Scalar::from(r);
            let r_bytes = EdwardsPoint::mul_base(&r).compress().to_bytes();
            let s = s_for(r, a, &r_bytes, &a_bytes, b"m") + delta;
            let sig = signature(&r_bytes, &s.to_bytes());
            decode(keys, None, &a_bytes, b"m", &sig).expect("points, canonical S")
        };
        let plus = bad(1111, Scalar::ONE, &mut keys);
        let minus = bad(2222, -Scalar::ONE, &mut keys);
        assert!(!plus.holds() && !minus.holds());
        for _ in 0..8 {
            assert!(!batch_holds(&[&plus, &minus]));
        }
    }

    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 { a } else { gcd(b, a % b) }
    }
}

//! Which Ed25519 keys a node may enroll with. Signatures are checked under ZIP-215 rules
//! (daemon/verify.rs), which accept keys of small order: for such a key, a signature with
//! the right small-order commitment verifies for *any* message, so anyone could sign a
//! check-in as that node. A real agent's key is a multiple of the base point (prime
//! order), so enrollment refuses every key that is not: one that does not decode to a
//! curve point, one of small order (the identity and the other seven torsion points),
//! and one with a torsion component (mixed order).

use curve25519_dalek::edwards::CompressedEdwardsY;

/// Why a key is refused; the text goes into the enrollment answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeakKey {
    /// The bytes are no point of the curve.
    NotAPoint,
    /// A point of order 1, 2, 4 or 8.
    SmallOrder,
    /// A point with a torsion component.
    MixedOrder,
}

impl WeakKey {
    /// The reason, for the client.
    pub fn reason(self) -> &'static str {
        match self {
            WeakKey::NotAPoint => "public_key is not an Ed25519 point",
            WeakKey::SmallOrder => {
                "public_key has small order (a weak key anyone could sign for); generate a new key"
            }
            WeakKey::MixedOrder => {
                "public_key has a torsion component (not a key Ed25519 key generation makes); generate a new key"
            }
        }
    }
}

/// Checks a node key at enrollment (~one scalar multiplication).
pub fn check(key: &[u8; 32]) -> Result<(), WeakKey> {
    let point = CompressedEdwardsY(*key)
        .decompress()
        .ok_or(WeakKey::NotAPoint)?;
    if point.is_small_order() {
        return Err(WeakKey::SmallOrder);
    }
    if !point.is_torsion_free() {
        return Err(WeakKey::MixedOrder);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;

    fn real_key(seed: u8) -> [u8; 32] {
        *vigo_shared::sign::SigningKey::from_seed([seed; 32])
            .public()
            .as_bytes()
    }

    #[test]
    fn keys_are_refused_unless_of_prime_order() {
        let real = real_key(7);
        let real_point = CompressedEdwardsY(real).decompress().unwrap();
        // An encoding with no point: the first y (from 2 up) whose x² is not a square.
        let not_a_point = (2u8..=255)
            .map(|y| {
                let mut b = [0u8; 32];
                b[0] = y;
                b
            })
            .find(|b| CompressedEdwardsY(*b).decompress().is_none())
            .expect("about half of all y have no x");
        let mut cases: Vec<(String, [u8; 32], Result<(), WeakKey>)> = vec![
            ("a generated key".into(), real, Ok(())),
            ("another generated key".into(), real_key(200), Ok(())),
            ("no point".into(), not_a_point, Err(WeakKey::NotAPoint)),
            (
                "identity, non-canonical y = p + 1".into(),
                {
                    let mut b = [0xffu8; 32];
                    b[0] = 0xee;
                    b[31] = 0x7f;
                    b
                },
                Err(WeakKey::SmallOrder),
            ),
        ];
        for (i, t) in EIGHT_TORSION.iter().enumerate() {
            cases.push((
                format!("torsion point {i}"),
                t.compress().to_bytes(),
                Err(WeakKey::SmallOrder),
            ));
            if i > 0 {
                cases.push((
                    format!("generated key + torsion point {i}"),
                    (real_point + t).compress().to_bytes(),
                    Err(WeakKey::MixedOrder),
                ));
            }
        }
        for (what, key, want) in cases {
            assert_eq!(check(&key), want, "{what}");
        }
    }
}

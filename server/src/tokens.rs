//! One-time enrollment tokens: `vigo_<id>_<secret>`. The server keeps the id, a SHA-256 hash
//! of the whole text, the host glob and the expiry; the text itself is shown once.
//!
//! Why SHA-256 and not a password hash: a slow hash (bcrypt, Argon2) exists to make guessing
//! a low-entropy secret expensive after the database leaks. A token's secret is 192 bits from
//! the system's random source, so an offline search costs 2^192 hash evaluations whatever the
//! hash costs; a keyed or slow hash adds nothing but ~90 ms of server CPU per token (bcrypt
//! cost 10), which capped enrollment at ~11 nodes/s. Stored hashes are `sha256:<hex>`; rows
//! written by earlier versions (`$2…`, bcrypt) still verify, so outstanding tokens keep
//! working after an upgrade.

use ring::digest;

/// A freshly made token.
pub struct NewToken {
    /// The id (public, used to find the row).
    pub id: String,
    /// The whole token, to print once.
    pub text: String,
    /// Its hash, to store.
    pub hash: String,
}

/// The prefix of hashes this version writes.
const SHA256_PREFIX: &str = "sha256:";

/// Why no token could be made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No randomness.
    #[error("no system randomness: {0}")]
    Random(getrandom::Error),
}

/// Makes a token: 64 random bits of id, 192 of secret.
pub fn new_token() -> Result<NewToken, TokenError> {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 24];
    getrandom::fill(&mut id).map_err(TokenError::Random)?;
    getrandom::fill(&mut secret).map_err(TokenError::Random)?;
    let id = vigo_shared::hex::encode(&id);
    let text = format!("vigo_{id}_{}", vigo_shared::hex::encode(&secret));
    let hash = hash(&text);
    Ok(NewToken { id, text, hash })
}

/// The stored form of a token's text.
fn hash(text: &str) -> String {
    let d = digest::digest(&digest::SHA256, text.as_bytes());
    format!("{SHA256_PREFIX}{}", vigo_shared::hex::encode(d.as_ref()))
}

/// Whether `text` is the token whose stored hash is `stored`. Compares in constant time;
/// an unknown hash format never matches.
pub fn verify(text: &str, stored: &str) -> bool {
    if stored.starts_with(SHA256_PREFIX) {
        let ours = hash(text);
        equal_in_constant_time(ours.as_bytes(), stored.as_bytes())
    } else if stored.starts_with("$2") {
        bcrypt::verify(text, stored).unwrap_or(false)
    } else {
        false
    }
}

/// Compares without stopping at the first difference, so the time taken says nothing about
/// where the two differ (the lengths are public: every hash of this format has the same).
fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::{new_token, verify};

    #[test]
    fn tokens_verify_against_their_hash_only() {
        let t = new_token().unwrap();
        assert_eq!(t.text.len(), 70);
        assert!(t.hash.starts_with("sha256:"));
        assert!(
            !t.hash.contains(&t.text[t.text.len() - 48..]),
            "the secret is not stored"
        );
        assert!(verify(&t.text, &t.hash));
        let mut other = t.text.clone();
        other.pop();
        other.push(if t.text.ends_with('x') { 'y' } else { 'x' });
        assert!(!verify(&other, &t.hash));
        let u = new_token().unwrap();
        assert_ne!(t.hash, u.hash);
        assert!(!verify(&u.text, &t.hash));
    }

    #[test]
    fn stored_hash_formats() {
        let t = new_token().unwrap();
        let legacy = bcrypt::hash(&t.text, 4).unwrap();
        let cases: &[(&str, bool)] = &[
            (&t.hash, true),
            (&legacy, true),
            ("", false),
            ("sha256:", false),
            (&t.hash[..t.hash.len() - 1], false),
            (&t.hash.to_uppercase(), false),
            ("plain", false),
            (&t.text, false),
        ];
        for (stored, want) in cases {
            assert_eq!(verify(&t.text, stored), *want, "stored {stored:?}");
        }
    }
}

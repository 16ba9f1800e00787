//! One-time enrollment tokens: `vigo_<id>_<secret>`. The server keeps the id, a bcrypt hash
//! of the whole text, the host glob and the expiry; the text itself is shown once.

/// A freshly made token.
pub struct NewToken {
    /// The id (public, used to find the row).
    pub id: String,
    /// The whole token, to print once.
    pub text: String,
    /// Its bcrypt hash, to store.
    pub hash: String,
}

/// bcrypt cost: enrollment is rare, and the token already carries 192 random bits.
const COST: u32 = 10;

/// Why no token could be made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No randomness.
    #[error("no system randomness: {0}")]
    Random(getrandom::Error),
    /// bcrypt failed.
    #[error("hashing the token: {0}")]
    Hash(#[from] bcrypt::BcryptError),
}

/// Makes a token. Its text is 70 bytes, inside bcrypt's 72-byte input limit.
pub fn new_token() -> Result<NewToken, TokenError> {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 24];
    getrandom::fill(&mut id).map_err(TokenError::Random)?;
    getrandom::fill(&mut secret).map_err(TokenError::Random)?;
    let id = vigo_shared::hex::encode(&id);
    let text = format!("vigo_{id}_{}", vigo_shared::hex::encode(&secret));
    let hash = bcrypt::hash(&text, COST)?;
    Ok(NewToken { id, text, hash })
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_verify_against_their_hash_only() {
        let t = super::new_token().unwrap();
        assert_eq!(t.text.len(), 70);
        assert!(bcrypt::verify(&t.text, &t.hash).unwrap());
        let mut other = t.text.clone();
        other.pop();
        other.push('x');
        assert!(!bcrypt::verify(&other, &t.hash).unwrap());
    }
}

//! SHA-256, the one hash both sides name things with: bundle hashes, request body hashes
//! in signed messages, token hashes. Backed by ring, which the agent links for TLS anyway.

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::sha256;
    use crate::hex;

    #[test]
    fn known_answers() {
        // FIPS 180-2 examples.
        let cases: [(&[u8], &str); 2] = [
            (
                b"",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                b"abc",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(hex::encode(&sha256(input)), want);
        }
    }
}

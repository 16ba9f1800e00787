//! Password hashes for `type: user` resources: SHA-512-crypt (`$6$`), the format every
//! supported OS family's shadow file and `chpasswd -e` accept.
//!
//! The salt is derived from the node and user names, so compiling the same config twice
//! gives the same bundle bytes (and the agent sees no change), while two nodes — or two
//! users with the same password — never share a hash.

use sha_crypt::{PasswordHasher, ShaCrypt};
use sha2::{Digest, Sha256};

/// Hashes `password` for `user` on `node`.
pub fn hash_password(password: &str, node: &str, user: &str) -> Result<String, String> {
    let mut h = Sha256::new();
    h.update(b"vigo-crypt-salt\0");
    h.update(node.as_bytes());
    h.update([0]);
    h.update(user.as_bytes());
    let digest = h.finalize();
    // 12 bytes of salt encode to the customary 16 salt characters.
    let salt = &digest[..12];
    ShaCrypt::SHA512
        .hash_password_with_salt(password.as_bytes(), salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password of user {user}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_per_node_and_user() {
        let a = hash_password("pw", "web01", "alice").unwrap();
        assert!(a.starts_with("$6$"), "{a}");
        assert_eq!(a, hash_password("pw", "web01", "alice").unwrap());
        assert_ne!(a, hash_password("pw", "web02", "alice").unwrap());
        assert_ne!(a, hash_password("pw", "web01", "bob").unwrap());
        assert!(!a.contains("pw$"));
    }

    /// The hash must be what the system's crypt(3) computes for the same salt: check it
    /// against `openssl passwd -6`, an independent implementation, when it is installed.
    #[test]
    fn matches_openssl_passwd() {
        let hash = hash_password("correct horse", "web01", "alice").unwrap();
        let fields: Vec<&str> = hash.split('$').collect();
        // $6$[rounds=N$]salt$digest
        let salt = fields[fields.len() - 2];
        let rounds = fields.iter().find_map(|f| f.strip_prefix("rounds="));
        let mut cmd = std::process::Command::new("openssl");
        cmd.args(["passwd", "-6", "-salt", salt]);
        let Ok(out) = cmd.arg("correct horse").output() else {
            eprintln!("openssl not installed; skipping the cross-check");
            return;
        };
        let theirs = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let ours_digest = fields[fields.len() - 1];
        match rounds {
            None | Some("5000") => assert!(
                theirs.ends_with(ours_digest),
                "ours {hash}, openssl {theirs}"
            ),
            Some(r) => panic!("unexpected rounds={r}; the cross-check assumes the default 5000"),
        }
    }
}

//! Password hashes for `type: user` resources: SHA-512-crypt (`$6$`), the format every
//! supported OS family's shadow file and `chpasswd -e` accept.
//!
//! The salt is derived from the node and user names, so compiling the same config twice
//! gives the same bundle bytes (and the agent sees no change), while two nodes — or two
//! users with the same password — never share a hash.
//!
//! SHA-512-crypt's 5,000 rounds cost ~4 ms, most of a node's compile, and a publish makes
//! every node recompile: so hashes are remembered per (node, user, password) for the life
//! of the process. The cache key is an HMAC-SHA-256 of the three under a key drawn at start
//! and never stored, so the cache holds no password and no fast hash of one that could be
//! searched without that key; the hash itself is what the node's shadow file gets. It
//! lives in memory only, like the secret values the server has loaded.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use sha_crypt::{PasswordHasher, ShaCrypt};
use sha2::{Digest, Sha256};

/// Entries kept before the cache is emptied (a bound for fleets whose names churn): ~170
/// bytes each.
const CACHE_LIMIT: usize = 1 << 20;

/// Remembered hashes, keyed by [`cache_key`].
struct Cache {
    /// `None` when the system had no randomness for a key: then nothing is cached.
    key: Option<ring::hmac::Key>,
    hashes: HashMap<[u8; 32], Box<str>>,
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(|| {
        let rng = ring::rand::SystemRandom::new();
        let key = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng).ok();
        Mutex::new(Cache {
            key,
            hashes: HashMap::new(),
        })
    })
}

fn cache_key(key: &ring::hmac::Key, password: &str, node: &str, user: &str) -> [u8; 32] {
    let mut ctx = ring::hmac::Context::with_key(key);
    for part in [node, user, password] {
        ctx.update(&(part.len() as u64).to_le_bytes());
        ctx.update(part.as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// Hashes `password` for `user` on `node`, from the cache when this process hashed the same
/// three before.
pub fn hash_password(password: &str, node: &str, user: &str) -> Result<String, String> {
    let key = {
        let cache = cache().lock().unwrap_or_else(|e| e.into_inner());
        let Some(hmac) = &cache.key else {
            drop(cache);
            return hash_password_uncached(password, node, user);
        };
        let key = cache_key(hmac, password, node, user);
        if let Some(hash) = cache.hashes.get(&key) {
            return Ok(hash.to_string());
        }
        key
    };
    // Hashed outside the lock: other compiles go on meanwhile.
    let hash = hash_password_uncached(password, node, user)?;
    let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
    if cache.hashes.len() >= CACHE_LIMIT {
        cache.hashes.clear();
    }
    cache.hashes.insert(key, hash.clone().into_boxed_str());
    Ok(hash)
}

/// SHA-512-crypt of `password` with the salt of `node` and `user`.
fn hash_password_uncached(password: &str, node: &str, user: &str) -> Result<String, String> {
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
    fn cached_hashes_are_the_computed_ones() {
        // (password, node, user): each first computed, then served from the cache.
        let cases = [
            ("pw", "cache-web01", "alice"),
            ("pw", "cache-web02", "alice"),
            ("pw", "cache-web01", "bob"),
            ("other", "cache-web01", "alice"),
            // Same concatenation, other split: must not share an entry.
            ("xpw", "cache-web01", "alic"),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for (pw, node, user) in cases {
            let first = hash_password(pw, node, user).unwrap();
            assert_eq!(first, hash_password_uncached(pw, node, user).unwrap());
            assert_eq!(
                hash_password(pw, node, user).unwrap(),
                first,
                "{node} {user}"
            );
            assert!(seen.insert(first), "{pw} {node} {user} shares a hash");
        }
        let cache = cache().lock().unwrap();
        let key = cache_key(cache.key.as_ref().unwrap(), "pw", "cache-web01", "alice");
        assert!(cache.hashes.contains_key(&key));
        let stored: Vec<&str> = cache.hashes.values().map(|h| &**h).collect();
        assert!(
            stored
                .iter()
                .all(|h| h.starts_with("$6$") && !h.contains("pw$"))
        );
    }

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

//! Release signing: signs a dist directory (`vigocli release sign`) and verifies one
//! (`vigocli release verify`, and `vigo-server run --dist` at start).
//!
//! The layout (docs/release.md, docs/bootstrap.md): `agent/<os>-<arch>/<binary>` and
//! `server/<os>-<arch>/<binary>`, each with `<binary>.sig` (the raw 64-byte Ed25519
//! signature of its bytes); `SHA256SUMS` (`<hex>  <path>` lines, sorted, every binary);
//! `SHA256SUMS.sig`; `release.pub` (`ed25519:<hex>`) and `release.pub.pem` (the same key as
//! a SubjectPublicKeyInfo PEM, for `openssl pkeyutl -verify -pubin -rawin`). Signing is
//! deterministic: Ed25519 signatures are, and files are visited in sorted order.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use vigo_shared::sign::{PublicKey, SigningKey};

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow.
pub const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The folders of a dist that hold signed binaries.
pub const SIGNED_DIRS: [&str; 2] = ["agent", "server"];

/// A file of a dist larger than this is refused (binaries are a few MiB).
pub const MAX_FILE: u64 = 256 << 20;

/// Why a dist could not be signed or verified; each names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The key file may be read by others.
    #[error(
        "{path}: a release key must be readable by its owner only (mode 0600), found {mode:04o}; run chmod 600 on it"
    )]
    KeyMode {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A file's content is not what it must be.
    #[error("{path}: {why}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what to do.
        why: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReleaseError + '_ {
    move |source| ReleaseError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn bad(path: &Path, why: impl Into<String>) -> ReleaseError {
    ReleaseError::Bad {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

/// The PEM (SubjectPublicKeyInfo) of an Ed25519 public key.
pub fn public_pem(key: &PublicKey) -> String {
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(key.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    vigo_shared::hex::encode(&Sha256::digest(bytes))
}

/// Reads a release key, refusing one that group or others may access.
pub fn read_key(path: &Path) -> Result<SigningKey, ReleaseError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(io(path))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(ReleaseError::KeyMode {
            path: path.to_path_buf(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    SigningKey::parse(&text).map_err(|e| bad(path, format!("not a release key: {e}")))
}

/// Creates a new release key file with mode 0600 from its first byte; refuses to
/// overwrite one.
pub fn create_key(path: &Path) -> Result<SigningKey, ReleaseError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| bad(path, format!("no system randomness: {e}")))?;
    let key = SigningKey::from_seed(seed);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    f.write_all(format!("{}\n", key.to_file_text()).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io(path))?;
    Ok(key)
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReleaseError> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, ReleaseError> {
    let meta = std::fs::symlink_metadata(path).map_err(io(path))?;
    if !meta.is_file() {
        return Err(bad(path, "not a regular file"));
    }
    if meta.len() > MAX_FILE {
        return Err(bad(path, format!("larger than {MAX_FILE} bytes")));
    }
    std::fs::read(path).map_err(io(path))
}

/// Whether `name` can be a platform folder (`linux-x86_64`): lower-case letters, digits
/// and `_`, one `-`.
pub fn platform_name_ok(name: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    matches!(name.split_once('-'), Some((os, arch)) if ok(os) && ok(arch))
}

/// Whether `name` can be a binary of a dist (no path separators, no hidden files).
fn file_name_ok(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Every binary of the dist (not the `.sig` files), as relative paths with `/`, sorted.
pub fn binaries(dist: &Path) -> Result<Vec<String>, ReleaseError> {
    let mut out = Vec::new();
    for top in SIGNED_DIRS {
        let dir = dist.join(top);
        if !dir.exists() {
            continue;
        }
        for platform in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let platform = platform.map_err(io(&dir))?;
            let pdir = platform.path();
            let Some(pname) = platform.file_name().to_str().map(str::to_string) else {
                return Err(bad(&pdir, "the name is not UTF-8"));
            };
            if !platform.file_type().map_err(io(&pdir))?.is_dir() || !platform_name_ok(&pname) {
                return Err(bad(
                    &pdir,
                    "expected a platform folder named <os>-<arch> (e.g. linux-x86_64)",
                ));
            }
            for file in std::fs::read_dir(&pdir).map_err(io(&pdir))? {
                let file = file.map_err(io(&pdir))?;
                let path = file.path();
                let name = file.file_name().to_str().map(str::to_string);
                let Some(name) = name.filter(|n| file_name_ok(n)) else {
                    return Err(bad(&path, "unexpected file name in a platform folder"));
                };
                if name.ends_with(".sig") {
                    continue;
                }
                if !file.file_type().map_err(io(&path))?.is_file() {
                    return Err(bad(&path, "not a regular file"));
                }
                out.push(format!("{top}/{pname}/{name}"));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// What signing wrote.
#[derive(Debug)]
pub struct Signed {
    /// The public key, also in `release.pub`.
    pub public: PublicKey,
    /// The binaries signed and listed in `SHA256SUMS`.
    pub files: Vec<String>,
}

/// Signs every binary of `dist`, writes `SHA256SUMS`, its signature and the public key
/// files. Running it twice with the same key writes the same bytes.
pub fn sign_dist(dist: &Path, key: &SigningKey) -> Result<Signed, ReleaseError> {
    let files = binaries(dist)?;
    if !files.iter().any(|f| f.starts_with("agent/")) {
        return Err(bad(
            &dist.join("agent"),
            "no agent binary to sign; build the dist first (cargo xtask dist)",
        ));
    }
    let mut sums = String::new();
    for rel in &files {
        let path = dist.join(rel);
        let bytes = read_bounded(&path)?;
        let _ = writeln!(sums, "{}  {rel}", sha256_hex(&bytes));
        write_atomic(&sig_path(&path), &key.sign(&bytes))?;
    }
    write_atomic(&dist.join("SHA256SUMS"), sums.as_bytes())?;
    write_atomic(&dist.join("SHA256SUMS.sig"), &key.sign(sums.as_bytes()))?;
    let public = key.public();
    write_atomic(&dist.join("release.pub"), format!("{public}\n").as_bytes())?;
    write_atomic(
        &dist.join("release.pub.pem"),
        public_pem(&public).as_bytes(),
    )?;
    Ok(Signed { public, files })
}

/// `FILE.sig` beside `FILE`.
pub fn sig_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

/// Parses `SHA256SUMS`: `(hex, relative path)` per line, strictly (64 lower-case hex
/// digits, two spaces, a path of the dist's signed folders without `..`).
pub fn parse_sums(path: &Path, text: &str) -> Result<Vec<(String, String)>, ReleaseError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let bad_line = || {
            bad(
                path,
                format!("line {}: expected `<sha256 hex>  <path>`", n + 1),
            )
        };
        let (hash, rel) = line.split_once("  ").ok_or_else(bad_line)?;
        let parts: Vec<&str> = rel.split('/').collect();
        let well_formed = hash.len() == 64
            && hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && parts.len() == 3
            && SIGNED_DIRS.contains(&parts[0])
            && platform_name_ok(parts[1])
            && file_name_ok(parts[2]);
        if !well_formed {
            return Err(bad_line());
        }
        out.push((hash.to_string(), rel.to_string()));
    }
    Ok(out)
}

fn read_sig(path: &Path) -> Result<[u8; 64], ReleaseError> {
    let bytes = read_bounded(path)?;
    bytes
        .try_into()
        .map_err(|_| bad(path, "a signature must be exactly 64 bytes"))
}

/// A dist that verified: its key, and the binaries `SHA256SUMS` lists.
#[derive(Debug)]
pub struct Verified {
    /// The key from `release.pub`.
    pub public: PublicKey,
    /// The `(hash, path)` lines of `SHA256SUMS`.
    pub files: Vec<(String, String)>,
}

/// Verifies a dist: `release.pub.pem` is `release.pub`, which (when `expected` is given)
/// is that key; `SHA256SUMS.sig` is its signature of `SHA256SUMS`; every binary listed
/// has that hash and a valid `.sig`, and no binary is left unlisted.
pub fn verify_dist(dist: &Path, expected: Option<&PublicKey>) -> Result<Verified, ReleaseError> {
    let pub_path = dist.join("release.pub");
    let text = std::fs::read_to_string(&pub_path).map_err(io(&pub_path))?;
    let public = PublicKey::parse(text.trim())
        .map_err(|e| bad(&pub_path, format!("not an ed25519:<hex> public key: {e}")))?;
    if let Some(expected) = expected
        && *expected.as_bytes() != *public.as_bytes()
    {
        return Err(bad(
            &pub_path,
            format!("the dist is signed by {public}, not by the expected key {expected}"),
        ));
    }
    let pem_path = dist.join("release.pub.pem");
    let pem = std::fs::read_to_string(&pem_path).map_err(io(&pem_path))?;
    if pem != public_pem(&public) {
        return Err(bad(&pem_path, "does not hold the key of release.pub"));
    }
    let sums_path = dist.join("SHA256SUMS");
    let sums = read_bounded(&sums_path)?;
    let sig_file = dist.join("SHA256SUMS.sig");
    if !public.verify(&sums, &read_sig(&sig_file)?) {
        return Err(bad(
            &sig_file,
            "the signature of SHA256SUMS does not verify against release.pub; the dist was altered or signed with another key",
        ));
    }
    let text = String::from_utf8(sums).map_err(|_| bad(&sums_path, "not UTF-8 text"))?;
    let files = parse_sums(&sums_path, &text)?;
    for (hash, rel) in &files {
        let path = dist.join(rel);
        let bytes = read_bounded(&path)?;
        if sha256_hex(&bytes) != *hash {
            return Err(bad(&path, "its SHA-256 differs from the one in SHA256SUMS"));
        }
        let sig = sig_path(&path);
        if !public.verify(&bytes, &read_sig(&sig)?) {
            return Err(bad(
                &sig,
                "the signature does not verify against release.pub",
            ));
        }
    }
    let listed: Vec<&str> = files.iter().map(|(_, r)| r.as_str()).collect();
    if let Some(extra) = binaries(dist)?
        .iter()
        .find(|b| !listed.contains(&b.as_str()))
    {
        return Err(bad(
            &dist.join(extra),
            "not listed in SHA256SUMS; sign the dist again",
        ));
    }
    Ok(Verified { public, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pem_is_the_spki_of_the_key() {
        let key = SigningKey::from_seed([7; 32]).public();
        let pem = public_pem(&key);
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(&der[..12], &SPKI_PREFIX);
        assert_eq!(&der[12..], key.as_bytes());
    }

    #[test]
    fn platform_and_sum_lines_are_strict() {
        assert!(platform_name_ok("linux-x86_64"));
        assert!(!platform_name_ok("linux"));
        assert!(!platform_name_ok("../x-y"));
        let p = Path::new("SHA256SUMS");
        let h = "a".repeat(64);
        assert!(parse_sums(p, &format!("{h}  agent/linux-x86_64/vigo-agent\n")).is_ok());
        for line in [
            format!("{h}  agent/../x/vigo-agent"),
            format!("{h} agent/linux-x86_64/vigo-agent"),
            format!("{h}  etc/linux-x86_64/vigo-agent"),
            format!("{}  agent/linux-x86_64/vigo-agent", "A".repeat(64)),
        ] {
            assert!(parse_sums(p, &line).is_err(), "{line}");
        }
    }
}

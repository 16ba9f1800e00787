//! `vigo-server init`: a new data directory with the CA, the server certificate, the
//! bundle-signing key, the admin credential and the database; private keys 0600 from the
//! first byte.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, Result, bail};
use vigo_shared::sign::SigningKey;

use crate::pki::{ADMIN_NAME, Ca, fingerprint, pem_to_der};
use crate::store::Db;

/// Writes a file that is created with `mode` (never wider, not even for a moment).
fn write_new(path: &Path, text: &str, mode: u32) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// What `init` made that the operator needs to see.
pub struct Initialized {
    /// SHA-256 of the CA certificate (DER), hex: agents pin it.
    pub ca_fingerprint: String,
    /// The bundle-signing public key, `ed25519:<hex>`.
    pub bundle_key: String,
}

/// Creates the data directory `data` (mode 0700) with the CA, the server certificate for
/// `hostname`, the bundle key, the admin credential and the database. Refuses to touch a
/// directory that exists.
pub fn init(data: &Path, hostname: &str) -> Result<Initialized> {
    if data.exists() {
        bail!(
            "{} already exists; refusing to overwrite a data directory (choose another --data or remove it)",
            data.display()
        );
    }
    if let Some(parent) = data.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(data)
        .with_context(|| format!("creating {}", data.display()))?;

    let (ca, ca_key) = Ca::create().context("creating the CA")?;
    write_new(&data.join("ca.key"), &ca_key, 0o600)?;
    write_new(&data.join("ca.pem"), &ca.cert_pem, 0o644)?;

    let server = ca
        .issue_server(hostname)
        .context("creating the server certificate")?;
    write_new(&data.join("server.key"), &server.key_pem, 0o600)?;
    write_new(&data.join("server.pem"), &server.cert_pem, 0o644)?;

    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
    let bundle_key = SigningKey::from_seed(seed);
    write_new(&data.join("bundle.key"), &bundle_key.to_file_text(), 0o600)?;
    write_new(
        &data.join("bundle.pub"),
        &format!("{}\n", bundle_key.public()),
        0o644,
    )?;

    let admin = ca
        .issue_client_with_key(ADMIN_NAME)
        .context("creating the admin credential")?;
    write_new(&data.join("admin.key"), &admin.key_pem, 0o600)?;
    write_new(&data.join("admin.pem"), &admin.cert_pem, 0o644)?;

    // The database holds no key material, but node names and reports are nobody else's
    // business either.
    write_new(&data.join("vigo.db"), "", 0o600)?;
    Db::open(&data.join("vigo.db")).context("creating the database")?;

    Ok(Initialized {
        ca_fingerprint: fingerprint(&pem_to_der(&ca.cert_pem)?),
        bundle_key: bundle_key.public().to_string(),
    })
}

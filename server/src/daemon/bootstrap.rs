//! The bootstrap routes, reachable without a client certificate: `/bootstrap.sh` and
//! `/bootstrap.ps1` (rendered with the server URL, the CA certificate and the release
//! public key), and the agent binaries of the dist given with `vigo-server run --dist`
//! with their checksums and signatures (docs/bootstrap.md). Only whitelisted names are
//! served; anything else is 404.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Extension, Path as UrlPath, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::routes::ApiError;
use super::{Peer, State};
use crate::release::{self, MAX_FILE, ReleaseError};

/// The POSIX script template; see [`render`].
pub const SH_TEMPLATE: &str = include_str!("../bootstrap/bootstrap.sh");
/// The PowerShell script template; see [`render`].
pub const PS1_TEMPLATE: &str = include_str!("../bootstrap/bootstrap.ps1");

/// Operating systems a dist may carry agents for (`<os>-<arch>` folder names).
pub const OSES: [&str; 7] = [
    "linux", "darwin", "freebsd", "openbsd", "netbsd", "illumos", "windows",
];
/// Architectures a dist may carry agents for.
pub const ARCHES: [&str; 3] = ["x86_64", "aarch64", "armv7"];
/// Files of the dist's top level that are served.
pub const TOP_FILES: [&str; 4] = [
    "SHA256SUMS",
    "SHA256SUMS.sig",
    "release.pub",
    "release.pub.pem",
];

/// A dist that verified at start.
#[derive(Debug)]
pub struct Dist {
    dir: PathBuf,
    /// `release.pub.pem`, pasted into the scripts.
    release_pem: String,
    /// `ed25519:<hex>`.
    release_pub: String,
}

impl Dist {
    /// Verifies the dist in `dir` (signature of SHA256SUMS, every checksum and signature)
    /// and keeps what the scripts need.
    pub fn open(dir: &Path) -> Result<Dist, ReleaseError> {
        let verified = release::verify_dist(dir, None)?;
        Ok(Dist {
            dir: dir.to_path_buf(),
            release_pem: release::public_pem(&verified.public),
            release_pub: verified.public.to_string(),
        })
    }

    /// The release key, `ed25519:<hex>`.
    pub fn release_pub(&self) -> &str {
        &self.release_pub
    }
}

/// The routes; merged into [`super::routes::app`].
pub fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/bootstrap.sh", get(bootstrap_sh))
        .route("/bootstrap.ps1", get(bootstrap_ps1))
        .route("/dist/{file}", get(dist_top))
        .route("/dist/agent/{platform}/{file}", get(dist_agent))
}

/// Whether `platform` is `<os>-<arch>` from the whitelists.
pub fn platform_ok(platform: &str) -> bool {
    platform
        .split_once('-')
        .is_some_and(|(os, arch)| OSES.contains(&os) && ARCHES.contains(&arch))
}

/// Whether `file` is an agent binary name (or its signature) for `platform`.
pub fn agent_file_ok(platform: &str, file: &str) -> bool {
    let exe = if platform.starts_with("windows-") {
        "vigo-agent.exe"
    } else {
        "vigo-agent"
    };
    file == exe || file.strip_suffix(".sig") == Some(exe)
}

/// `https://HOST[:PORT]` from a Host header, when it is only a host name, an IPv4 address
/// or a bracketed IPv6 address, with an optional numeric port.
pub fn server_url(host: &str) -> Option<String> {
    if host.is_empty() || host.len() > 255 {
        return None;
    }
    let (name_ok, port) = if let Some(rest) = host.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let ok = !v6.is_empty()
            && v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        let port = match after {
            "" => None,
            a => Some(a.strip_prefix(':')?),
        };
        (ok, port)
    } else {
        let (name, port) = match host.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        };
        let ok = !name.is_empty()
            && !name.starts_with(['.', '-'])
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        (ok, port)
    };
    if !name_ok {
        return None;
    }
    if let Some(port) = port {
        let digits =
            !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
        if !digits || port.parse::<u16>().ok().filter(|&p| p > 0).is_none() {
            return None;
        }
    }
    Some(format!("https://{host}"))
}

/// Whether `pem` holds only what a PEM may: base64, `-`, space, newlines and letters in
/// the armour. Everything pasted into a script passes this first.
fn pem_ok(pem: &str) -> bool {
    pem.starts_with("-----BEGIN ")
        && pem.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b' ' | b'\n')
        })
}

/// Pastes the values into a template. Each value was checked to contain no quote, no
/// backslash, no `$`, no backtick: inside the scripts' single-quoted strings they are
/// inert in both sh and PowerShell. `None` when a value fails its check.
pub fn render(template: &str, url: &str, ca_pem: &str, release_pem: &str) -> Option<String> {
    let url_ok = url.strip_prefix("https://").and_then(server_url).as_deref() == Some(url);
    if !url_ok || !pem_ok(ca_pem) || !pem_ok(release_pem) {
        return None;
    }
    Some(
        template
            .replace("@@VIGO_SERVER_URL@@", url)
            .replace("@@VIGO_CA_PEM@@", ca_pem.trim_end())
            .replace("@@VIGO_RELEASE_PUB_PEM@@", release_pem.trim_end()),
    )
}

fn no_dist() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "this server was started without --dist, so it serves no bootstrap; start it with `vigo-server run --dist DIR`",
    )
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not found")
}

fn dist(state: &State) -> Result<&Dist, ApiError> {
    state.dist.get().map(|d| &**d).ok_or_else(no_dist)
}

fn script(
    state: &State,
    peer: &Peer,
    headers: &HeaderMap,
    template: &str,
    name: &str,
    content_type: &'static str,
) -> Result<Response, ApiError> {
    let dist = dist(state)?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let Some(url) = server_url(host) else {
        return Err(super::routes::refuse(
            StatusCode::BAD_REQUEST,
            name,
            peer,
            "the Host header must be a host name or address with an optional port",
        ));
    };
    let Some(text) = render(template, &url, &state.ca.cert_pem, &dist.release_pem) else {
        return Err(ApiError::internal(
            "rendering the bootstrap script",
            "a value failed its character check",
        ));
    };
    eprintln!("vigo-server: served {name} to {} for {url}", peer.addr);
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        text,
    )
        .into_response())
}

async fn bootstrap_sh(
    AxState(state): AxState<Arc<State>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    script(
        &state,
        &peer,
        &headers,
        SH_TEMPLATE,
        "bootstrap.sh",
        "text/x-shellscript; charset=utf-8",
    )
}

async fn bootstrap_ps1(
    AxState(state): AxState<Arc<State>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    script(
        &state,
        &peer,
        &headers,
        PS1_TEMPLATE,
        "bootstrap.ps1",
        "text/plain; charset=utf-8",
    )
}

/// Sends a file of the dist, read whole on a blocking thread (tokio's `fs` is not
/// linked; binaries are a few MiB, bounded by `MAX_FILE`).
async fn send(path: PathBuf) -> Result<Response, ApiError> {
    let bytes = super::routes::blocking(move || {
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() && m.len() <= MAX_FILE => {}
            Ok(m) if m.is_file() => {
                return Err(ApiError::internal(
                    "serving a dist file",
                    format!("{} is larger than {MAX_FILE} bytes", path.display()),
                ));
            }
            _ => return Err(not_found()),
        }
        std::fs::read(&path).map_err(|e| {
            ApiError::internal("reading a dist file", format!("{}: {e}", path.display()))
        })
    })
    .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )],
        bytes,
    )
        .into_response())
}

async fn dist_top(
    AxState(state): AxState<Arc<State>>,
    Extension(peer): Extension<Peer>,
    UrlPath(file): UrlPath<String>,
) -> Result<Response, ApiError> {
    let dist = dist(&state)?;
    if !TOP_FILES.contains(&file.as_str()) {
        return Err(not_found());
    }
    let sent = send(dist.dir.join(&file)).await?;
    eprintln!("vigo-server: served dist/{file} to {}", peer.addr);
    Ok(sent)
}

async fn dist_agent(
    AxState(state): AxState<Arc<State>>,
    Extension(peer): Extension<Peer>,
    UrlPath((platform, file)): UrlPath<(String, String)>,
) -> Result<Response, ApiError> {
    let dist = dist(&state)?;
    if !platform_ok(&platform) || !agent_file_ok(&platform, &file) {
        return Err(not_found());
    }
    let sent = send(dist.dir.join("agent").join(&platform).join(&file)).await?;
    eprintln!(
        "vigo-server: served dist/agent/{platform}/{file} to {}",
        peer.addr
    );
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_headers_become_urls_only_when_plain() {
        for (host, url) in [
            (
                "vigo.example.com:8443",
                Some("https://vigo.example.com:8443"),
            ),
            ("vigo.example.com", Some("https://vigo.example.com")),
            ("127.0.0.1:8443", Some("https://127.0.0.1:8443")),
            ("[::1]:8443", Some("https://[::1]:8443")),
            ("[::1]", Some("https://[::1]")),
            ("", None),
            ("a b", None),
            ("x:notaport", None),
            ("x:0", None),
            ("x:+1", None),
            ("x:", None),
            ("x'$(id)", None),
            ("[::1]x", None),
            ("-x.example", None),
            ("x/y", None),
        ] {
            assert_eq!(server_url(host).as_deref(), url, "{host:?}");
        }
    }

    #[test]
    fn only_whitelisted_agent_files() {
        assert!(platform_ok("linux-x86_64") && platform_ok("illumos-x86_64"));
        assert!(!platform_ok("linux-mips") && !platform_ok("..") && !platform_ok("linux"));
        assert!(agent_file_ok("linux-armv7", "vigo-agent"));
        assert!(agent_file_ok("linux-armv7", "vigo-agent.sig"));
        assert!(!agent_file_ok("linux-armv7", "vigo-agent.exe"));
        assert!(agent_file_ok("windows-x86_64", "vigo-agent.exe.sig"));
        assert!(!agent_file_ok("linux-x86_64", "vigocli"));
    }

    #[test]
    fn render_refuses_unexpected_characters() {
        let pem = "-----BEGIN PUBLIC KEY-----\nAAAA+/==\n-----END PUBLIC KEY-----\n";
        let t = "U='@@VIGO_SERVER_URL@@' C='@@VIGO_CA_PEM@@' R='@@VIGO_RELEASE_PUB_PEM@@'";
        let out = render(t, "https://h:1", pem, pem).unwrap();
        assert!(!out.contains("@@"), "{out}");
        assert!(render(t, "https://h:1'", pem, pem).is_none());
        assert!(render(t, "https://h:1", "-----BEGIN X'-----", pem).is_none());
        assert!(render(t, "https://h:1", pem, "-----BEGIN $(id)").is_none());
    }
}

//! A user's `~/.ssh/authorized_keys`: validation that every line is an OpenSSH public key
//! (so a pasted private key or a typo is refused before it locks anyone out), and
//! convergence of the exact content with `.ssh` 0700 and the file 0600, owned by the user.

use std::path::Path;

use super::os;
use crate::providers::{Change, Ctx, ProviderError};

/// Key types sshd accepts in authorized_keys.
const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com",
    "ssh-rsa-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
];

/// One parsed key line.
#[derive(Debug, PartialEq, Eq)]
pub struct Key<'a> {
    /// The key type (`ssh-ed25519`).
    pub kind: &'a str,
    /// The base64 key blob.
    pub blob: &'a str,
    /// The trailing comment, possibly empty.
    pub comment: &'a str,
}

/// Checks every line of `content`: blank lines and `#` comments are allowed, every other
/// line must be `[options] type base64 [comment]` whose blob decodes to a key of that type.
pub fn validate(content: &str) -> Result<Vec<Key<'_>>, ProviderError> {
    let mut keys = Vec::new();
    for (n, line) in content.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        keys.push(parse_line(line).map_err(|why| {
            ProviderError(format!(
                "authorized_keys line {}: {why}; each line must be an OpenSSH public key such \
                 as `ssh-ed25519 AAAA… user@host`",
                n + 1
            ))
        })?);
    }
    Ok(keys)
}

fn parse_line(line: &str) -> Result<Key<'_>, &'static str> {
    if line.contains("PRIVATE KEY") {
        return Err("this is a private key, never put it on a server");
    }
    let rest = if KEY_TYPES.iter().any(|t| line.starts_with(&format!("{t} "))) {
        line
    } else {
        skip_options(line).ok_or("unknown key type or malformed options")?
    };
    let mut parts = rest.splitn(3, [' ', '\t']);
    let kind = parts.next().unwrap_or("");
    if !KEY_TYPES.contains(&kind) {
        return Err("unknown key type");
    }
    let blob = parts.next().unwrap_or("").trim();
    let comment = parts.next().unwrap_or("").trim();
    let raw = base64_decode(blob).ok_or("the key is not valid base64")?;
    // The blob starts with the key type as an SSH string (u32 length, bytes).
    let len = raw
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let inner = len.and_then(|l| raw.get(4..4 + l));
    if inner != Some(kind.as_bytes()) {
        return Err("the key data does not match its type");
    }
    Ok(Key {
        kind,
        blob,
        comment,
    })
}

/// The text after an options prefix (`from="a,b",no-pty ssh-ed25519 …`), honouring
/// double quotes, or `None` when the quotes do not close.
fn skip_options(line: &str) -> Option<&str> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return Some(line[i..].trim_start()),
            _ => {}
        }
    }
    None
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// A short description of a key list for reports: the count and the key comments.
pub fn describe(content: &str) -> String {
    let keys = validate(content).unwrap_or_default();
    let comments: Vec<&str> = keys
        .iter()
        .map(|k| k.comment)
        .filter(|c| !c.is_empty())
        .collect();
    let count = if keys.len() == 1 {
        "1 key".to_string()
    } else {
        format!("{} keys", keys.len())
    };
    if comments.is_empty() {
        count
    } else {
        format!("{count} ({})", comments.join(", "))
    }
}

/// The content written: `content` with a final newline.
pub fn normalized(content: &str) -> String {
    if content.is_empty() || content.ends_with('\n') {
        content.to_string()
    } else {
        format!("{content}\n")
    }
}

/// Converges `<home>/.ssh/authorized_keys` (home is a node path) to `content` for the
/// user `uid:gid`. Refuses to follow a symlink at `.ssh` or the file: writing as root
/// through a link the user planted would let them overwrite any file.
pub fn converge(
    ctx: &Ctx<'_>,
    home: &str,
    uid: u32,
    gid: u32,
    content: &str,
) -> Result<Option<Change>, ProviderError> {
    let body = normalized(content);
    let ssh_node = format!("{}/.ssh", home.trim_end_matches('/'));
    let file_node = format!("{ssh_node}/authorized_keys");
    let (ssh, file) = (ctx.path(&ssh_node), ctx.path(&file_node));
    let dir_meta = os::meta(&ssh)?;
    let file_meta = os::meta(&file)?;
    for (m, p) in [(dir_meta, &ssh_node), (file_meta, &file_node)] {
        if m.is_some_and(|m| m.symlink) {
            return Err(ProviderError(format!(
                "managing authorized_keys: {p} is a symlink; Vigo does not write through it, \
                 remove it"
            )));
        }
    }
    let current = file_meta.and_then(|_| std::fs::read_to_string(&file).ok());
    let content_ok = current.as_deref() == Some(body.as_str());
    let dir_ok = dir_meta.is_some_and(|m| m.dir && m.mode == 0o700 && (m.uid, m.gid) == (uid, gid));
    let file_ok = file_meta.is_some_and(|m| m.mode == 0o600 && (m.uid, m.gid) == (uid, gid));
    if content_ok && dir_ok && file_ok {
        return Ok(None);
    }
    if !ctx.observe {
        write(&ssh, dir_meta.is_some(), &file, &body, uid, gid)?;
    }
    let from = match &current {
        None => "absent".to_string(),
        Some(c) if content_ok => format!("{} (owner or mode differs)", describe(c)),
        Some(c) => describe(c),
    };
    Ok(Some(Change::new("authorized_keys", from, describe(&body))))
}

fn write(
    ssh: &Path,
    exists: bool,
    file: &Path,
    body: &str,
    uid: u32,
    gid: u32,
) -> Result<(), ProviderError> {
    if exists {
        os::chown(ssh, uid, gid)?;
        os::chmod(ssh, 0o700)?;
    } else {
        if let Some(home) = ssh.parent()
            && !home.exists()
        {
            return Err(ProviderError(format!(
                "writing authorized_keys: the home folder {} does not exist; set manage_home: true \
                 or create it",
                home.display()
            )));
        }
        os::mkdir(ssh, 0o700, uid, gid)?;
    }
    os::write_atomic(file, body.as_bytes(), 0o600, uid, gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop";

    fn check(content: &str, expected: Result<usize, &str>) {
        match (validate(content), expected) {
            (Ok(keys), Ok(n)) => assert_eq!(keys.len(), n, "{content}"),
            (Err(e), Err(msg)) => assert!(e.0.contains(msg), "{e}"),
            (got, want) => panic!("{content:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn key_lines_are_validated() {
        check(ED, Ok(1));
        check(&format!("# team\n\n{ED}\n"), Ok(1));
        check(&format!("from=\"10.0.0.1,10.0.0.2\",no-pty {ED}\n"), Ok(1));
        check(&format!("command=\"echo \\\"hi there\\\"\" {ED}"), Ok(1));
        check(
            "ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ x",
            Err("line 1: the key data does not match"),
        );
        check("ssh-ed25519 not*base64", Err("not valid base64"));
        check("hunter2", Err("line 1: unknown key type"));
        check("-----BEGIN OPENSSH PRIVATE KEY-----", Err("private key"));
        check(&format!("{ED}\nssh-foo AAAA"), Err("line 2"));
    }

    #[test]
    fn descriptions_name_keys() {
        assert_eq!(describe(ED), "1 key (alice@laptop)");
        assert_eq!(describe(""), "0 keys");
        assert_eq!(normalized(ED), format!("{ED}\n"));
    }
}

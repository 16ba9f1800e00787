//! Facts on Windows: the computer name from the environment and the version from `ver`.
//! Memory and addresses are not collected yet.

use std::process::{Command, Stdio};

use super::OsFacts;

pub(super) fn collect() -> OsFacts {
    let ver = Command::new("cmd")
        .args(["/C", "ver"])
        .stdin(Stdio::null())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    // "Microsoft Windows [Version 10.0.22631.2861]"
    let version = ver.as_deref().and_then(|v| {
        let start = v.find("Version ")? + "Version ".len();
        let rest = &v[start..];
        Some(rest[..rest.find(']')?].to_string())
    });
    OsFacts {
        family: Some("windows".to_string()),
        id: Some("windows".to_string()),
        kernel: version.clone(),
        version,
        hostname: std::env::var("COMPUTERNAME").ok().map(|h| h.to_lowercase()),
        domain: std::env::var("USERDNSDOMAIN")
            .ok()
            .map(|d| d.to_lowercase()),
        ..OsFacts::default()
    }
}

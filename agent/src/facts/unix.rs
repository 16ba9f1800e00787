//! Facts on the BSDs, macOS and illumos, from `uname`, `sysctl`, `hostname`, `ifconfig`
//! and `prtconf`.

use std::process::{Command, Stdio};

use super::OsFacts;

/// The trimmed stdout of a command that succeeded.
fn run(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub(super) fn collect() -> OsFacts {
    let (family, id, version) = if cfg!(target_os = "macos") {
        ("macos", "macos", run("sw_vers", &["-productVersion"]))
    } else if cfg!(target_os = "freebsd") {
        (
            "freebsd",
            "freebsd",
            run("freebsd-version", &["-u"]).or_else(|| run("uname", &["-r"])),
        )
    } else if cfg!(target_os = "openbsd") {
        ("openbsd", "openbsd", run("uname", &["-r"]))
    } else if cfg!(target_os = "netbsd") {
        ("netbsd", "netbsd", run("uname", &["-r"]))
    } else if cfg!(any(target_os = "illumos", target_os = "solaris")) {
        ("illumos", "illumos", run("uname", &["-v"]))
    } else {
        ("", "", None)
    };
    let memory_bytes = if cfg!(target_os = "macos") {
        run("sysctl", &["-n", "hw.memsize"])
    } else if cfg!(any(target_os = "openbsd", target_os = "netbsd")) {
        run("sysctl", &["-n", "hw.physmem64"])
    } else {
        run("sysctl", &["-n", "hw.physmem"])
    };
    let mut memory_mb = memory_bytes
        .and_then(|b| b.parse::<u64>().ok())
        .map(|b| b / (1024 * 1024));
    if memory_mb.is_none() {
        // illumos: "Memory size: 16384 Megabytes".
        memory_mb = run("/usr/sbin/prtconf", &[]).and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("Memory size:"))?;
            line.split_whitespace().nth(2)?.parse().ok()
        });
    }
    OsFacts {
        family: Some(family.to_string()).filter(|f| !f.is_empty()),
        id: Some(id.to_string()).filter(|f| !f.is_empty()),
        version,
        kernel: run("uname", &["-r"]),
        memory_mb,
        addresses: ifconfig_addresses(&run("ifconfig", &["-a"]).unwrap_or_default()),
        hostname: run("hostname", &[]),
        hosts: std::fs::read_to_string("/etc/hosts").ok(),
        domain: None,
    }
}

/// `inet A` and `inet6 A` addresses from ifconfig output, without loopback and link-local.
fn ifconfig_addresses(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(kind), Some(addr)) = (words.next(), words.next()) else {
            continue;
        };
        let addr = addr.split(['%', '/']).next().unwrap_or(addr);
        let keep = match kind {
            "inet" => addr
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|a| !a.is_loopback()),
            "inet6" => addr
                .parse::<std::net::Ipv6Addr>()
                .is_ok_and(|a| !a.is_loopback() && (a.segments()[0] & 0xffc0) != 0xfe80),
            _ => false,
        };
        if keep {
            out.push(addr.to_string());
        }
    }
    out
}

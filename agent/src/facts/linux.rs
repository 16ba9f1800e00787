//! Linux facts from /etc/os-release and /proc: no commands are run.

use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{OsFacts, linux_family, parse_os_release};

fn read(path: &str) -> Option<String> {
    fs::read_to_string(path).ok()
}

pub(super) fn collect() -> OsFacts {
    let release = read("/etc/os-release")
        .or_else(|| read("/usr/lib/os-release"))
        .unwrap_or_default();
    let release = parse_os_release(&release);
    let id = release.get("ID").cloned();
    let like = release.get("ID_LIKE").map_or("", String::as_str);
    let mut addresses = ipv4_local(&read("/proc/net/fib_trie").unwrap_or_default());
    addresses.extend(ipv6_addresses(
        &read("/proc/net/if_inet6").unwrap_or_default(),
    ));
    OsFacts {
        family: id
            .as_deref()
            .and_then(|id| linux_family(id, like))
            .map(str::to_string),
        id,
        version: release.get("VERSION_ID").cloned(),
        kernel: read("/proc/sys/kernel/osrelease"),
        memory_mb: read("/proc/meminfo").and_then(|m| mem_total_mb(&m)),
        addresses,
        hostname: read("/proc/sys/kernel/hostname"),
        hosts: read("/etc/hosts"),
        domain: read("/proc/sys/kernel/domainname"),
    }
}

/// `MemTotal:  16314384 kB` in MiB.
fn mem_total_mb(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// The machine's own IPv4 addresses: `/32 host LOCAL` leaves of /proc/net/fib_trie,
/// without loopback.
fn ipv4_local(trie: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in trie.lines() {
        let t = line.trim();
        if let Some(addr) = t.strip_prefix("|-- ") {
            last = addr.parse().ok();
        } else if t.starts_with("/32 host LOCAL")
            && let Some(a) = last.take()
            && !a.is_loopback()
        {
            out.push(a.to_string());
        }
    }
    out
}

/// Global and site IPv6 addresses from /proc/net/if_inet6 (scope 00), without loopback
/// and link-local ones.
fn ipv6_addresses(table: &str) -> Vec<String> {
    table
        .lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let hex = f.next()?;
            let scope = f.nth(2)?;
            if hex.len() != 32 || scope != "00" {
                return None;
            }
            let bits = u128::from_str_radix(hex, 16).ok()?;
            let addr = Ipv6Addr::from(bits);
            (!addr.is_loopback()).then(|| addr.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_memory() {
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 127.0.0.1\n        /32 host LOCAL\n     |-- 192.0.2.2\n        /32 host LOCAL\n     |-- 192.0.2.255\n        /32 link BROADCAST\n";
        assert_eq!(ipv4_local(trie), ["192.0.2.2"]);
        let v6 = "00000000000000000000000000000001 01 80 10 80 lo\nfd000000000000000000000000000002 04 40 00 82 eth0\nfe8000000000000000fc00fffe000001 04 40 20 80 eth0\n";
        assert_eq!(ipv6_addresses(v6), ["fd00::2"]);
        assert_eq!(
            mem_total_mb("MemTotal:       2097152 kB\nMemFree: 1 kB\n"),
            Some(2048)
        );
    }
}

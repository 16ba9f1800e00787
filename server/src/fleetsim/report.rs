//! What a simulation measured: per-mode check-in figures (rate, latency percentiles from
//! the sorted samples, errors by kind, handshakes, the phase's windows from window.rs), the
//! enrollment phase and the server's resources, printed as a table and written as JSON.

use std::collections::BTreeMap;

use serde::Serialize;

use super::spawn::ProcStats;
use super::window::{StealPeak, WINDOW_MS, Window, WindowSummary};

/// Latency percentiles in milliseconds from samples in microseconds (sorted in place).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles; every sample is kept, which at a few hundred thousand
    /// check-ins per run is a few MB and exact.
    pub fn of(samples: &mut [u64]) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_unstable();
        let at = |p: f64| {
            let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1] as f64 / 1000.0
        };
        Percentiles {
            p50_ms: at(50.0),
            p95_ms: at(95.0),
            p99_ms: at(99.0),
            max_ms: samples[samples.len() - 1] as f64 / 1000.0,
        }
    }
}

/// The timed check-in phase of one mode.
#[derive(Debug, Default, Serialize)]
pub struct ModeReport {
    pub mode: String,
    /// The phase as the table and bench/fleetsim.tsv name it: the mode, `/RATE` when paced
    /// (`keepalive/9600`).
    pub label: String,
    /// Workers: the most check-ins in flight at once.
    pub concurrency: usize,
    /// Paced phases: the check-ins per second offered on a schedule (`MODE/RATE`).
    pub offered_per_sec: Option<u32>,
    /// Paced phases: check-ins that started more than 1 ms after their due time because
    /// every worker was busy; their latency counts from the due time.
    pub late_starts: u64,
    pub duration_secs: f64,
    pub checkins: u64,
    pub checkins_per_sec: f64,
    pub latency: Percentiles,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Answers with a new bundle (in the timed phase only changing nodes get them; a
    /// steady node getting one is counted as an error instead).
    pub bundles: u64,
    pub unchanged: u64,
    /// Check-ins that carried at least one run result.
    pub with_results: u64,
    pub handshakes_full: u64,
    pub handshakes_resumed: u64,
    /// Changing nodes that received at least one bundle after their first.
    pub changing_nodes_with_new_bundle: u64,
    pub server_before: ProcStats,
    pub server_after: ProcStats,
    /// Server CPU seconds spent during this phase, and per check-in in µs.
    pub server_cpu_secs: f64,
    pub server_cpu_us_per_checkin: f64,
    /// The same for this simulator, which runs on one thread: near 1 s per second means
    /// the client, not the server, set the pace. Signing ahead is not in it (below).
    pub sim_cpu_secs: f64,
    pub sim_cpu_us_per_checkin: f64,
    /// Check-ins signed ahead of the phase (`--presign-rate`), the seconds and simulator
    /// CPU seconds that took, and how many of them were sent; the others were signed as
    /// they went.
    pub presigned: u64,
    pub presign_secs: f64,
    pub presign_cpu_secs: f64,
    pub checkins_presigned: u64,
    pub stats_before: serde_json::Value,
    pub stats_after: serde_json::Value,
    /// Check-ins completed in each second of the phase.
    pub per_second: Vec<u64>,
    /// Share of the phase the hypervisor took from the server's CPU, and the most it took
    /// in one window; `None` without `/proc/stat`, or when the server may be on another
    /// host (attached without `--server-pid`).
    pub host_steal_pct: Option<f64>,
    pub host_steal_max: Option<StealPeak>,
    /// The `/proc/stat` line they come from: `cpuN`, the CPU the server is pinned to, or
    /// `cpu`, all of this host's CPUs.
    pub host_steal_line: Option<String>,
    /// The phase in [`WINDOW_MS`] windows.
    pub windows: Vec<Window>,
    /// The publish made during the phase (`--publish-at`).
    pub publish: Option<PublishReport>,
}

/// A publish during a timed phase and the check-in rate around it.
#[derive(Debug, Default, Serialize)]
pub struct PublishReport {
    /// Seconds into the phase when the config was changed.
    pub at_secs: f64,
    /// How long the publish request took.
    pub took_secs: f64,
    /// What was changed: file, variable and new value.
    pub change: String,
    /// The server's verdict (`accepted`).
    pub result: String,
    /// Which publish of the run this was (1, 2, ...), when the server accepted it; else 0.
    pub number: u64,
    /// Compiles the server had counted just before.
    pub compiles_before: u64,
    /// Compiles from then to the end of the phase.
    pub compiles_since: u64,
    /// Of those, at least this many were changing nodes' (their new bundles from check-ins
    /// started after the publish began); the rest are the publish's, give or take the
    /// changing nodes' check-ins in flight at that moment.
    pub changing_bundles_since: u64,
    /// Nodes whose inputs the publish changed (web nodes; every steady node for a
    /// settings change) that checked in after it was accepted.
    pub affected_nodes: u64,
    /// Nodes of that kind that took a new bundle for it in this phase.
    pub nodes_with_new_bundle: u64,
    /// Mean check-ins/s over the whole seconds before the publish.
    pub rate_before: f64,
    /// The slowest whole second after it.
    pub min_rate_after: f64,
    /// Mean check-ins/s over the whole seconds after it.
    pub rate_after: f64,
    /// What went wrong, if the change or the publish failed.
    pub error: Option<String>,
}

impl PublishReport {
    /// Fills in the rates from the phase's per-second counts. The second the publish fell in
    /// and the phase's last (partial) second are left out.
    pub fn with_rates(mut self, per_second: &[u64]) -> PublishReport {
        let split = self.at_secs.floor() as usize;
        let end = per_second.len().saturating_sub(1);
        let mean = |xs: &[u64]| {
            if xs.is_empty() {
                0.0
            } else {
                xs.iter().sum::<u64>() as f64 / xs.len() as f64
            }
        };
        let before = &per_second[..split.min(end)];
        let after = per_second.get(split + 1..end).unwrap_or(&[]);
        self.rate_before = mean(before);
        self.rate_after = mean(after);
        self.min_rate_after = after.iter().copied().min().unwrap_or(0) as f64;
        self
    }
}

impl ModeReport {
    /// Signatures per verification batch on the server during this mode, from the
    /// `/v1/admin/stats` counters (0 when the server did not report them).
    pub fn mean_verify_batch(&self) -> f64 {
        let delta = |key: &str| {
            let get = |v: &serde_json::Value| v.get(key).and_then(|x| x.as_u64()).unwrap_or(0);
            get(&self.stats_after).saturating_sub(get(&self.stats_before))
        };
        let batches = delta("verify_batches");
        if batches == 0 {
            return 0.0;
        }
        delta("verify_batched") as f64 / batches as f64
    }
}

/// Everything one run measured.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub nodes: usize,
    pub changing_nodes: usize,
    /// Steady nodes named `web-sim-N.prod` (`--publish-share`).
    pub web_nodes: usize,
    pub changing_share: f64,
    pub results_share: f64,
    pub enrollment: EnrollReport,
    /// The first check-in of every node (full facts, first compile), before the timed ones.
    pub first_checkin_secs: f64,
    pub first_checkin_errors: BTreeMap<String, u64>,
    /// The server after every node's first check-in, with no connection open: the memory
    /// the enrolled fleet itself costs.
    pub server_fleet: ProcStats,
    pub modes: Vec<ModeReport>,
    pub server_pid: Option<u32>,
    pub server_end: ProcStats,
    pub sqlite_bytes: u64,
    pub sqlite_wal_bytes: u64,
    pub stats_start: serde_json::Value,
    pub stats_end: serde_json::Value,
}

/// The enrollment phase: token creation through the admin API, then `/v1/enroll`.
#[derive(Debug, Default, Serialize)]
pub struct EnrollReport {
    pub enrolled: usize,
    pub tokens_secs: f64,
    pub enroll_secs: f64,
    pub enroll_per_sec: f64,
    pub errors_by_kind: BTreeMap<String, u64>,
}

fn mb(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

impl Report {
    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let e = &self.enrollment;
        s.push_str(&format!(
            "nodes {} (changing {}, web {}), enrolled {}; tokens {:.1} s, enrollment {:.1} s ({:.1}/s), first check-in of all {:.1} s\n",
            self.nodes,
            self.changing_nodes,
            self.web_nodes,
            e.enrolled,
            e.tokens_secs,
            e.enroll_secs,
            e.enroll_per_sec,
            self.first_checkin_secs
        ));
        if !e.errors_by_kind.is_empty() {
            s.push_str(&format!("enrollment errors {:?}\n", e.errors_by_kind));
        }
        if !self.first_checkin_errors.is_empty() {
            s.push_str(&format!(
                "first check-in errors {:?}\n",
                self.first_checkin_errors
            ));
        }
        s.push_str(&format!(
            "{:<15} {:>5} {:>6} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7} {:>8} {:>9} {:>8} {:>9} {:>9} {:>6}\n",
            "mode", "conc", "secs", "checkins", "per_s", "p50_ms", "p95_ms", "p99_ms", "errors",
            "bundles", "resumed", "full_hs", "srv_us/ci", "sim_us/ci", "batch"
        ));
        for m in &self.modes {
            s.push_str(&format!(
                "{:<15} {:>5} {:>6.1} {:>9} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>8} {:>9} {:>8} {:>9.0} {:>9.0} {:>6.1}\n",
                m.label,
                m.concurrency,
                m.duration_secs,
                m.checkins,
                m.checkins_per_sec,
                m.latency.p50_ms,
                m.latency.p95_ms,
                m.latency.p99_ms,
                m.errors,
                m.bundles,
                m.handshakes_resumed,
                m.handshakes_full,
                m.server_cpu_us_per_checkin,
                m.sim_cpu_us_per_checkin,
                m.mean_verify_batch()
            ));
            if !m.errors_by_kind.is_empty() {
                s.push_str(&format!("  errors {:?}\n", m.errors_by_kind));
            }
            if let Some(w) = WindowSummary::of(&m.windows) {
                s.push_str(&format!(
                    "  {WINDOW_MS} ms windows: server µs/check-in median {:.0}, p90 {:.0}, max {:.0}; worst p99 {:.2} ms at {:.1} s (server {} µs/check-in, host steal {} % there)\n",
                    w.us_median,
                    w.us_p90,
                    w.us_max,
                    w.worst_p99_ms,
                    w.worst_at_s,
                    w.worst_us.map_or("?".to_string(), |us| format!("{us:.0}")),
                    w.worst_steal_pct.map_or("?".to_string(), |p| format!("{p:.0}")),
                ));
            }
            if let (Some(pct), Some(peak)) = (m.host_steal_pct, m.host_steal_max) {
                let whose = match m
                    .host_steal_line
                    .as_deref()
                    .and_then(|l| l.strip_prefix("cpu"))
                {
                    Some("") | None => "this host's CPUs (the server is not pinned)".to_string(),
                    Some(n) => format!("the server's CPU {n}"),
                };
                s.push_str(&format!(
                    "  host steal on {whose}: {pct:.1} % of the phase; most in one window {:.0} % at {:.1} s\n",
                    peak.pct, peak.at_s,
                ));
            }
            if let Some(rate) = m.offered_per_sec {
                s.push_str(&format!(
                    "  paced: {rate}/s offered; {} check-ins started over 1 ms late (latency from their due time)\n",
                    m.late_starts
                ));
            }
            if m.presigned > 0 {
                s.push_str(&format!(
                    "  signed ahead: {} check-ins in {:.1} s ({:.1} CPU s, not in sim_us/ci); {} of them sent\n",
                    m.presigned, m.presign_secs, m.presign_cpu_secs, m.checkins_presigned
                ));
            }
            if let Some(p) = &m.publish {
                s.push_str(&format!(
                    "  publish at {:.1} s ({}; {}, {:.2} s): check-ins/s {:.0} before, {:.0} after (slowest second {:.0})\n",
                    p.at_secs,
                    p.change,
                    p.error.as_deref().unwrap_or(&p.result),
                    p.took_secs,
                    p.rate_before,
                    p.rate_after,
                    p.min_rate_after,
                ));
                s.push_str(&format!(
                    "  {} compiles since the publish ({} of them changing nodes' flips); {} affected nodes checked in after it, {} took a new bundle\n",
                    p.compiles_since,
                    p.changing_bundles_since,
                    p.affected_nodes,
                    p.nodes_with_new_bundle,
                ));
            }
        }
        if self.server_pid.is_some() {
            s.push_str(&format!(
                "server RSS with every node enrolled and checked in, no connection open: {:.1} MB ({:.0} B/node)\n",
                mb(self.server_fleet.rss_bytes),
                self.server_fleet.rss_bytes as f64 / self.nodes.max(1) as f64,
            ));
            s.push_str(&format!(
                "server RSS {:.1} MB (peak {:.1} MB, {:.0} B/node), CPU {:.1} s; sqlite {} B + wal {} B\n",
                mb(self.server_end.rss_bytes),
                mb(self.server_end.hwm_bytes),
                self.server_end.rss_bytes as f64 / self.nodes.max(1) as f64,
                self.server_end.cpu_secs,
                self.sqlite_bytes,
                self.sqlite_wal_bytes
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::PublishReport;

    #[test]
    fn rates_around_a_publish_leave_out_its_second_and_the_last() {
        let p = PublishReport {
            at_secs: 3.4,
            ..PublishReport::default()
        }
        .with_rates(&[10, 12, 14, 1, 4, 8, 6, 99]);
        assert_eq!(p.rate_before, 12.0);
        assert_eq!(p.rate_after, 6.0);
        assert_eq!(p.min_rate_after, 4.0);

        let early = PublishReport::default().with_rates(&[5, 7]);
        assert_eq!(
            (early.rate_before, early.rate_after, early.min_rate_after),
            (0.0, 0.0, 0.0)
        );
        let none = PublishReport::default().with_rates(&[]);
        assert_eq!(none.rate_after, 0.0);
    }
}

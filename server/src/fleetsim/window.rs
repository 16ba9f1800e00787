//! A timed phase cut into 100 ms windows: the check-ins completed in each, their p99, the
//! server's CPU time and the host steal of its CPU between the readings at the window's two
//! ends. Windows show what a figure over the whole phase hides: a p99 made by a few slow
//! windows, and whether the server then spent more CPU per check-in (the machine ran
//! slower), less (it stalled, or waited), or lost its CPU to the hypervisor.

use std::collections::BTreeMap;

use serde::Serialize;

use super::report::Percentiles;
use super::steal::Ticks;

/// One check-in of a timed phase: when it completed (ms into the phase) and its latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub at_ms: u32,
    pub micros: u64,
}

/// Width of the windows a timed phase is cut into.
pub const WINDOW_MS: u32 = 100;

/// Fewest ticks (10 ms each) a window's steal share is given over: a full window has 10
/// per CPU.
pub const MIN_WINDOW_TICKS: u64 = 5;

/// One [`WINDOW_MS`] window of a timed phase. Windows show what a figure over the whole
/// phase hides: a p99 made by a few slow windows, and whether the server then spent more
/// CPU per check-in (the machine ran slower), less (it stalled, or waited), or lost its CPU
/// to the hypervisor (host steal).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Window {
    pub start_ms: u32,
    pub checkins: u64,
    pub p99_ms: f64,
    /// The server's CPU time in the window over all its threads (ms); `None` without the
    /// server's pid or when a reading was missed.
    pub server_cpu_ms: Option<f64>,
    /// Share of the window the hypervisor took from the server's CPU (all CPUs when the
    /// server is not pinned). Counted in 10 ms ticks, so one CPU's window moves in steps of
    /// about 10 %; `None` without `/proc/stat` or a reading, or when fewer than
    /// [`MIN_WINDOW_TICKS`] passed (a shortened window would make one tick a large share).
    pub host_steal_pct: Option<f64>,
}

/// A reading taken about every [`WINDOW_MS`] of a phase, counted from the phase's start.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Reading {
    /// When, in ms into the phase.
    pub at_ms: u32,
    /// The server's CPU time since the phase began (ns); `None` without its pid.
    pub server_ns: Option<u64>,
    /// Ticks of the server's CPU (all CPUs when it is not pinned) since the phase began;
    /// `None` without `/proc/stat`.
    pub host: Option<Ticks>,
}

/// Cuts a phase's check-ins into windows. Each reading counts for the window boundary
/// nearest to it, and a window's CPU time and steal are the differences between the
/// readings at its two ends.
pub fn windows(samples: &[Sample], readings: &[Reading]) -> Vec<Window> {
    let Some(last) = samples.iter().map(|s| s.at_ms).max() else {
        return Vec::new();
    };
    let count = (last / WINDOW_MS) as usize + 1;
    let mut latencies: Vec<Vec<u64>> = vec![Vec::new(); count];
    for s in samples {
        latencies[(s.at_ms / WINDOW_MS) as usize].push(s.micros);
    }
    let mut at_boundary: BTreeMap<u32, Reading> = BTreeMap::new();
    at_boundary.insert(
        0,
        Reading {
            at_ms: 0,
            server_ns: Some(0),
            host: Some(Ticks::default()),
        },
    );
    for r in readings {
        at_boundary.insert((r.at_ms + WINDOW_MS / 2) / WINDOW_MS, *r);
    }
    latencies
        .into_iter()
        .enumerate()
        .map(|(i, mut l)| {
            let i = i as u32;
            let ends = at_boundary.get(&i).zip(at_boundary.get(&(i + 1)));
            let cpu_ns =
                ends.and_then(|(start, end)| Some(end.server_ns?.saturating_sub(start.server_ns?)));
            let steal = ends
                .and_then(|(start, end)| Some(end.host?.since(start.host?)))
                .filter(|ticks| ticks.total >= MIN_WINDOW_TICKS)
                .and_then(Ticks::steal_pct);
            Window {
                start_ms: i * WINDOW_MS,
                checkins: l.len() as u64,
                p99_ms: Percentiles::of(&mut l).p99_ms,
                server_cpu_ms: cpu_ns.map(|ns| ns as f64 / 1e6),
                host_steal_pct: steal,
            }
        })
        .collect()
}

/// What a phase's windows say, in one line of the table.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowSummary {
    /// Server CPU µs per check-in over the windows with at least 10 check-ins: median, p90
    /// and the largest.
    pub us_median: f64,
    pub us_p90: f64,
    pub us_max: f64,
    /// The window with the worst p99, the server's CPU per check-in and the host steal in it.
    pub worst_p99_ms: f64,
    pub worst_at_s: f64,
    pub worst_us: Option<f64>,
    pub worst_steal_pct: Option<f64>,
}

impl WindowSummary {
    pub fn of(windows: &[Window]) -> Option<WindowSummary> {
        let per_checkin = |w: &Window| {
            w.server_cpu_ms
                .map(|ms| ms * 1000.0 / w.checkins.max(1) as f64)
        };
        let mut us: Vec<f64> = windows
            .iter()
            .filter(|w| w.checkins >= 10)
            .filter_map(per_checkin)
            .collect();
        let worst = windows
            .iter()
            .filter(|w| w.checkins > 0)
            .max_by(|a, b| a.p99_ms.total_cmp(&b.p99_ms))?;
        if us.is_empty() {
            return None;
        }
        us.sort_by(f64::total_cmp);
        let at = |p: f64| us[((p * us.len() as f64).ceil() as usize).clamp(1, us.len()) - 1];
        Some(WindowSummary {
            us_median: at(0.5),
            us_p90: at(0.9),
            us_max: us[us.len() - 1],
            worst_p99_ms: worst.p99_ms,
            worst_at_s: f64::from(worst.start_ms) / 1000.0,
            worst_us: per_checkin(worst),
            worst_steal_pct: worst.host_steal_pct,
        })
    }
}

/// The window in which the hypervisor took the largest share of the server's CPU.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct StealPeak {
    pub pct: f64,
    pub at_s: f64,
}

impl StealPeak {
    /// The window with the most steal; `None` when no window has a reading.
    pub fn of(windows: &[Window]) -> Option<StealPeak> {
        windows
            .iter()
            .filter_map(|w| Some((w.host_steal_pct?, w.start_ms)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(pct, start_ms)| StealPeak {
                pct,
                at_s: f64::from(start_ms) / 1000.0,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::{Reading, Sample, StealPeak, Ticks, Window, WindowSummary, windows};

    fn sample(at_ms: u32, micros: u64) -> Sample {
        Sample { at_ms, micros }
    }

    /// A reading at `at_ms`: server CPU ns and host (steal, total) ticks since the start.
    fn reading(at_ms: u32, server_ns: Option<u64>, host: Option<(u64, u64)>) -> Reading {
        Reading {
            at_ms,
            server_ns,
            host: host.map(|(steal, total)| Ticks { steal, total }),
        }
    }

    #[test]
    fn windows_count_check_ins_and_take_the_cpu_and_steal_between_their_ends() {
        // Three windows; readings at 101 ms (boundary 1), 198 ms (2) and 305 ms (3).
        let samples = [
            sample(0, 1_000),
            sample(99, 3_000),
            sample(100, 2_000),
            sample(250, 9_000),
            sample(299, 1_000),
        ];
        let readings = [
            reading(101, Some(40_000_000), Some((0, 10))),
            reading(198, Some(70_000_000), Some((4, 20))),
            reading(305, Some(150_000_000), Some((5, 30))),
        ];
        let want = [
            (0, 2, 3.0, Some(40.0), Some(0.0)),
            (100, 1, 2.0, Some(30.0), Some(40.0)),
            (200, 2, 9.0, Some(80.0), Some(10.0)),
        ];
        let got: Vec<_> = windows(&samples, &readings)
            .into_iter()
            .map(|w| {
                (
                    w.start_ms,
                    w.checkins,
                    w.p99_ms,
                    w.server_cpu_ms,
                    w.host_steal_pct,
                )
            })
            .collect();
        assert_eq!(got, want);
        // A missed reading leaves both windows next to it without a figure; no pid, no CPU
        // time; no /proc/stat, no steal; no reading at all, neither.
        let sparse = [readings[0], readings[2]];
        let got: Vec<_> = windows(&samples, &sparse)
            .into_iter()
            .map(|w| (w.server_cpu_ms, w.host_steal_pct))
            .collect();
        assert_eq!(got, [(Some(40.0), Some(0.0)), (None, None), (None, None)]);
        let no_pid: Vec<Reading> = readings
            .iter()
            .map(|r| reading(r.at_ms, None, r.host.map(|t| (t.steal, t.total))))
            .collect();
        let got: Vec<_> = windows(&samples, &no_pid)
            .into_iter()
            .map(|w| (w.server_cpu_ms, w.host_steal_pct))
            .collect();
        assert_eq!(
            got,
            [(None, Some(0.0)), (None, Some(40.0)), (None, Some(10.0))]
        );
        let no_stat: Vec<Reading> = readings
            .iter()
            .map(|r| reading(r.at_ms, r.server_ns, None))
            .collect();
        assert!(
            windows(&samples, &no_stat)
                .iter()
                .all(|w| w.host_steal_pct.is_none() && w.server_cpu_ms.is_some())
        );
        assert!(
            windows(&samples, &[])
                .iter()
                .all(|w| w.server_cpu_ms.is_none() && w.host_steal_pct.is_none())
        );
        assert_eq!(windows(&[], &readings), Vec::<Window>::new());
        // A window over which fewer than MIN_WINDOW_TICKS passed (a late reading before
        // it, an early one after) gives no steal rather than one tick as a large share.
        let short = [
            reading(101, Some(40_000_000), Some((0, 10))),
            reading(198, Some(70_000_000), Some((1, 14))),
            reading(305, Some(150_000_000), Some((2, 24))),
        ];
        let got: Vec<_> = windows(&samples, &short)
            .into_iter()
            .map(|w| w.host_steal_pct)
            .collect();
        assert_eq!(got, [Some(0.0), None, Some(10.0)]);
    }

    #[test]
    fn a_window_summary_names_the_worst_window_its_cost_and_steal() {
        let w = |start_ms, checkins, p99_ms, cpu_ms, steal| Window {
            start_ms,
            checkins,
            p99_ms,
            server_cpu_ms: cpu_ms,
            host_steal_pct: steal,
        };
        let ws = [
            w(0, 1000, 2.0, Some(80.0), Some(0.0)),
            w(100, 1000, 9.5, Some(140.0), Some(20.0)),
            w(200, 1000, 3.0, Some(90.0), Some(30.0)),
            // Too few check-ins to say a cost; the slowest latency is still seen.
            w(300, 5, 1.0, Some(50.0), None),
        ];
        let s = WindowSummary::of(&ws).unwrap();
        assert_eq!((s.us_median, s.us_p90, s.us_max), (90.0, 140.0, 140.0));
        assert_eq!(
            (s.worst_p99_ms, s.worst_at_s, s.worst_us, s.worst_steal_pct),
            (9.5, 0.1, Some(140.0), Some(20.0))
        );
        assert_eq!(
            StealPeak::of(&ws),
            Some(StealPeak {
                pct: 30.0,
                at_s: 0.2
            })
        );
        assert_eq!(WindowSummary::of(&[w(0, 1000, 2.0, None, None)]), None);
        assert_eq!(StealPeak::of(&[w(0, 1000, 2.0, None, None)]), None);
        assert_eq!(WindowSummary::of(&[]), None);
    }
}

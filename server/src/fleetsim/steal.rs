//! Host steal: the time a hypervisor gave the server's CPU to someone else.
//!
//! On a virtual machine the same binary runs 20–30 % slower from one hour to the next, and
//! within a phase the hypervisor can take a CPU away for tens of milliseconds. A paced
//! phase at 80 % of the server's capacity has no room for that: a backlog forms and its
//! check-ins are late until it drains. `/proc/stat` counts, per CPU, the ticks (USER_HZ,
//! 100 a second) the CPU was runnable but not running this guest: the `steal` column. The
//! simulator reads it beside the server's CPU time so that a slow window can be told apart
//! from a slow server.

/// Which line of `/proc/stat` counts for the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The CPU the server is pinned to (`cpuN`).
    Cpu(usize),
    /// All CPUs of this host together (`cpu`): the server runs here, on any of them.
    AllCpus,
}

impl Scope {
    /// The name of its line: `cpuN`, or `cpu` for all of them.
    pub fn line(self) -> String {
        match self {
            Scope::Cpu(n) => format!("cpu{n}"),
            Scope::AllCpus => "cpu".to_string(),
        }
    }
}

/// Ticks of one `/proc/stat` CPU line: stolen, and all of them (busy, idle and stolen).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ticks {
    pub steal: u64,
    pub total: u64,
}

impl Ticks {
    /// The ticks from `earlier` to `self`.
    pub fn since(self, earlier: Ticks) -> Ticks {
        Ticks {
            steal: self.steal.saturating_sub(earlier.steal),
            total: self.total.saturating_sub(earlier.total),
        }
    }

    /// Stolen ticks as a percentage of all of them; `None` when no tick passed.
    pub fn steal_pct(self) -> Option<f64> {
        (self.total > 0).then(|| self.steal as f64 * 100.0 / self.total as f64)
    }
}

/// The line of `scope` from the text of `/proc/stat`. `None` when the line is missing or
/// has no steal column (kernels before 2.6.11).
pub fn parse(stat: &str, scope: Scope) -> Option<Ticks> {
    let name = scope.line();
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is
    // already inside user and nice, so the total is the first eight.
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if fields.len() < 8 {
        return None;
    }
    Some(Ticks {
        steal: fields[7],
        total: fields.iter().sum(),
    })
}

/// Reads `/proc/stat` now; `None` where there is none.
pub fn read(scope: Scope) -> Option<Ticks> {
    parse(&std::fs::read_to_string("/proc/stat").ok()?, scope)
}

#[cfg(test)]
mod tests {
    use super::{Scope, Ticks, parse};

    const STAT: &str = "\
cpu  1109509 0 178383 795707 6217 0 49965 73018 0 0
cpu0 594704 0 89324 365246 2105 0 25988 25195 0 0
cpu1 514805 0 89059 430461 4112 0 23977 47823 12 3
cpu10 1 2 3 4 5 6 7 8 0 0
intr 123 4 5
cpu2 1 2 3
";

    #[test]
    fn a_cpus_line_gives_its_steal_and_total() {
        let cases = [
            (Scope::AllCpus, Some((73018, 2212799))),
            (Scope::Cpu(0), Some((25195, 1102562))),
            // Guest ticks are not counted twice.
            (Scope::Cpu(1), Some((47823, 1110237))),
            // `cpu1` is not `cpu10`, nor the other way round.
            (Scope::Cpu(10), Some((8, 36))),
            // Too few columns (no steal), or no such CPU.
            (Scope::Cpu(2), None),
            (Scope::Cpu(3), None),
        ];
        for (scope, want) in cases {
            let got = parse(STAT, scope).map(|t| (t.steal, t.total));
            assert_eq!(got, want, "{scope:?}");
        }
        assert_eq!(parse("", Scope::AllCpus), None);
        assert_eq!(parse("cpu0 1 2 x 4 5 6 7 8\n", Scope::Cpu(0)), None);
    }

    #[test]
    fn the_share_is_over_the_ticks_between_two_readings() {
        let a = Ticks {
            steal: 100,
            total: 1000,
        };
        let b = Ticks {
            steal: 115,
            total: 1100,
        };
        assert_eq!(b.since(a).steal_pct(), Some(15.0));
        assert_eq!(a.since(a).steal_pct(), None);
        // A counter that went backwards (it does not, but a reading may be garbled) gives
        // zero, not a wrapped figure.
        assert_eq!(a.since(b), Ticks { steal: 0, total: 0 });
    }
}

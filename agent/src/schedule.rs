//! When `vigo-agent run` converges and checks in next: the interval (from the server, the
//! command line or the default) with ±10% jitter, and exponential backoff with jitter for
//! check-ins while the server is unavailable. Pure: time is a `Duration` since any origin
//! the caller chooses and randomness comes from a seeded generator, so the rules are
//! unit-tested without sleeping.

use std::time::Duration;

/// The interval used before the server has given one and without `--interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1800);
/// Server intervals are held within these bounds (a bad config must not make agents spin).
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// The first check-in retry after a failure; it doubles up to the interval.
pub const FIRST_RETRY: Duration = Duration::from_secs(5);

/// A small xorshift generator: jitter needs spread, not cryptographic quality, and a seed
/// makes tests repeatable.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Zero is the one state xorshift never leaves.
        Rng(seed.max(1))
    }

    /// Seeded from the clock and the process id, so agents started together spread out.
    pub fn from_entropy() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng::new(nanos ^ (u64::from(std::process::id()) << 32))
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Exponential backoff for check-ins: `first`, doubling up to `cap`; each delay is drawn
/// uniformly from the upper half of the current step, so retries from many agents spread.
#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    step: Option<Duration>,
}

impl Backoff {
    pub fn new(first: Duration) -> Backoff {
        Backoff { first, step: None }
    }

    /// The delay before the next retry after one more failure.
    pub fn fail(&mut self, cap: Duration, rng: &mut Rng) -> Duration {
        let first = self.first.min(cap);
        let step = match self.step {
            None => first,
            Some(s) => s.saturating_mul(2).min(cap),
        };
        self.step = Some(step);
        step.mul_f64(0.5 + 0.5 * rng.unit())
    }

    /// A success: the next failure starts again from the first delay.
    pub fn reset(&mut self) {
        self.step = None;
    }

    /// The current (unjittered) step, `None` after a success.
    #[cfg(test)]
    pub fn step(&self) -> Option<Duration> {
        self.step
    }
}

/// The run loop's timetable.
#[derive(Clone, Debug)]
pub struct Schedule {
    fixed: Option<Duration>,
    server: Option<Duration>,
    backoff: Backoff,
    rng: Rng,
}

impl Schedule {
    /// `fixed` (from `--interval`) overrides whatever the server says; `server` is the
    /// interval the server gave last time (persisted across restarts).
    pub fn new(fixed: Option<Duration>, server: Option<u64>, rng: Rng) -> Schedule {
        let first = fixed.map_or(FIRST_RETRY, |f| FIRST_RETRY.min(f));
        let mut s = Schedule {
            fixed,
            server: None,
            backoff: Backoff::new(first),
            rng,
        };
        if let Some(secs) = server {
            s.set_server_interval(secs);
        }
        s
    }

    /// Records the interval from a check-in answer; 0 (not given) is ignored.
    pub fn set_server_interval(&mut self, secs: u64) {
        if secs > 0 {
            self.server = Some(Duration::from_secs(secs).clamp(MIN_INTERVAL, MAX_INTERVAL));
        }
    }

    /// The interval in force, before jitter.
    pub fn interval(&self) -> Duration {
        self.fixed.or(self.server).unwrap_or(DEFAULT_INTERVAL)
    }

    /// When to converge next after a cycle that ended at `now`: the interval ±10%.
    pub fn next_converge(&mut self, now: Duration) -> Duration {
        let factor = 0.9 + 0.2 * self.rng.unit();
        now + self.interval().mul_f64(factor)
    }

    /// After a check-in at `now`: `None` when it worked (the next check-in goes with the
    /// next cycle), else when to retry, backing off up to the interval.
    pub fn after_checkin(&mut self, now: Duration, ok: bool) -> Option<Duration> {
        if ok {
            self.backoff.reset();
            return None;
        }
        let cap = self.interval();
        Some(now + self.backoff.fail(cap, &mut self.rng))
    }

    #[cfg(test)]
    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }
}

/// What the loop should do at a given time.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    /// A full cycle: check in and converge.
    Cycle,
    /// A check-in alone (a retry while the server was unavailable).
    Checkin,
    /// Nothing until this time.
    Wait(Duration),
}

/// The loop's state: when the next cycle and the next check-in retry are due. Convergence
/// keeps its own schedule whatever the check-ins do.
#[derive(Clone, Debug)]
pub struct Timetable {
    pub schedule: Schedule,
    next_cycle: Duration,
    next_checkin: Option<Duration>,
}

impl Timetable {
    /// The first cycle is due at once.
    pub fn new(schedule: Schedule) -> Timetable {
        Timetable {
            schedule,
            next_cycle: Duration::ZERO,
            next_checkin: None,
        }
    }

    pub fn due(&self, now: Duration) -> Due {
        if now >= self.next_cycle {
            return Due::Cycle;
        }
        match self.next_checkin {
            Some(at) if now >= at => Due::Checkin,
            Some(at) => Due::Wait(at.min(self.next_cycle)),
            None => Due::Wait(self.next_cycle),
        }
    }

    /// A cycle ended at `now`; `online` says whether its check-in worked.
    pub fn cycle_done(&mut self, now: Duration, online: bool) {
        self.next_cycle = self.schedule.next_converge(now);
        self.next_checkin = self.schedule.after_checkin(now, online);
    }

    /// A check-in retry ended at `now`.
    pub fn checkin_done(&mut self, now: Duration, ok: bool) {
        self.next_checkin = self.schedule.after_checkin(now, ok);
    }

    pub fn next_cycle(&self) -> Duration {
        self.next_cycle
    }

    pub fn next_checkin(&self) -> Option<Duration> {
        self.next_checkin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn jitter_stays_within_ten_percent_of_the_interval() {
        for seed in 0..200 {
            let mut s = Schedule::new(None, Some(600), Rng::new(seed));
            let mut lo = Duration::MAX;
            let mut hi = Duration::ZERO;
            for _ in 0..50 {
                let d = s.next_converge(S(1000)) - S(1000);
                assert!(d >= S(540) && d <= S(660), "{d:?}");
                lo = lo.min(d);
                hi = hi.max(d);
            }
            assert!(hi - lo > S(20), "jitter actually spreads: {lo:?}..{hi:?}");
        }
    }

    #[test]
    fn interval_comes_from_flag_then_server_then_default() {
        let mut s = Schedule::new(None, None, Rng::new(1));
        assert_eq!(s.interval(), DEFAULT_INTERVAL);
        s.set_server_interval(0);
        assert_eq!(s.interval(), DEFAULT_INTERVAL, "0 means not given");
        s.set_server_interval(300);
        assert_eq!(s.interval(), S(300));
        s.set_server_interval(1);
        assert_eq!(s.interval(), MIN_INTERVAL, "clamped");
        s.set_server_interval(10_000_000);
        assert_eq!(s.interval(), MAX_INTERVAL, "clamped");
        let mut fixed = Schedule::new(Some(S(60)), Some(300), Rng::new(1));
        assert_eq!(fixed.interval(), S(60));
        fixed.set_server_interval(900);
        assert_eq!(fixed.interval(), S(60), "--interval wins over the server");
        let restarted = Schedule::new(None, Some(120), Rng::new(1));
        assert_eq!(
            restarted.interval(),
            S(120),
            "the persisted interval is used"
        );
    }

    #[test]
    fn backoff_doubles_to_the_interval_and_resets_on_success() {
        for seed in 0..100 {
            let mut s = Schedule::new(None, Some(60), Rng::new(seed));
            let mut steps = Vec::new();
            for _ in 0..6 {
                let at = s.after_checkin(S(100), false).expect("a retry");
                let step = s.backoff().step().expect("failing");
                let delay = at - S(100);
                assert!(delay >= step / 2 && delay <= step, "{delay:?} for {step:?}");
                steps.push(step.as_secs());
            }
            assert_eq!(steps, [5, 10, 20, 40, 60, 60]);
            assert_eq!(s.after_checkin(S(200), true), None);
            assert_eq!(s.backoff().step(), None);
            s.after_checkin(S(300), false);
            assert_eq!(
                s.backoff().step(),
                Some(S(5)),
                "starts over after a success"
            );
        }
    }

    #[test]
    fn a_short_test_interval_caps_the_first_retry() {
        let mut s = Schedule::new(Some(Duration::from_millis(200)), None, Rng::new(7));
        let at = s.after_checkin(S(0), false).expect("a retry");
        assert!(at <= Duration::from_millis(200));
        assert_eq!(s.backoff().step(), Some(Duration::from_millis(200)));
    }

    /// Walks a simulated clock through an outage: cycles stay on the interval (±10%) while
    /// check-ins alone back off in between; when the server returns, retries stop.
    #[test]
    fn offline_cycles_keep_their_schedule_while_check_ins_back_off() {
        for seed in 0..50 {
            let mut t = Timetable::new(Schedule::new(None, Some(600), Rng::new(seed)));
            let mut now = Duration::ZERO;
            let mut cycles = Vec::new();
            let mut retries = 0;
            let online = |now: Duration| now > S(4000);
            while now < S(6000) {
                match t.due(now) {
                    Due::Cycle => {
                        cycles.push(now);
                        t.cycle_done(now, online(now));
                    }
                    Due::Checkin => {
                        retries += 1;
                        t.checkin_done(now, online(now));
                    }
                    Due::Wait(at) => {
                        assert!(at > now, "a wait always moves time forward");
                        now = at;
                    }
                }
            }
            for gap in cycles.windows(2).map(|w| w[1] - w[0]) {
                assert!(gap >= S(540) && gap <= S(660), "cycle gap {gap:?}");
            }
            assert!(retries >= 5, "check-ins retried between cycles: {retries}");
            assert_eq!(t.next_checkin(), None, "no retries once the server is back");
        }
    }

    #[test]
    fn rng_is_uniform_enough() {
        let mut r = Rng::new(0);
        let xs: Vec<f64> = (0..10_000).map(|_| r.unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
    }
}

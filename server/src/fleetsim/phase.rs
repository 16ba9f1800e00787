//! The check-in phases of a simulation: the nodes dealt among the workers, each worker
//! checking its nodes in one after the other (once, or round after round until the phase
//! ends), the counters they keep, and the check-ins signed ahead of a timed phase.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::node::{Outcome, Role, SimNode};
use super::window::Sample;
use super::{Ctx, add_counts, count, in_share, spawn};

/// Splits the nodes among `c` workers (worker w gets nodes w, w + c, ...).
pub fn deal(nodes: Vec<SimNode>, c: usize) -> Vec<Vec<SimNode>> {
    let mut hands: Vec<Vec<SimNode>> = (0..c).map(|_| Vec::new()).collect();
    for (i, n) in nodes.into_iter().enumerate() {
        hands[i % c].push(n);
    }
    hands
}

/// Opens every node's kept connection, `c` at a time, before a keep-alive phase; returns
/// the nodes and the failures by kind (a node that failed connects in the phase instead).
pub async fn connect_all(
    ctx: &Arc<Ctx>,
    nodes: Vec<SimNode>,
    c: usize,
) -> (Vec<SimNode>, BTreeMap<String, u64>) {
    let mut tasks = Vec::new();
    for hand in deal(nodes, c) {
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            let mut hand = hand;
            let mut errors = BTreeMap::new();
            for node in hand.iter_mut() {
                if let Err(e) = node.connect(&ctx.target).await {
                    count(&mut errors, e.kind, &e.detail);
                }
            }
            (hand, errors)
        }));
    }
    let mut nodes = Vec::new();
    let mut errors = BTreeMap::new();
    for task in tasks {
        match task.await {
            Ok((hand, e)) => {
                nodes.extend(hand);
                add_counts(&mut errors, e);
            }
            Err(_) => count(&mut errors, "task_panicked", "a worker panicked"),
        }
    }
    (nodes, errors)
}

/// What signing ahead of a phase cost.
pub struct Presign {
    pub signed: u64,
    pub secs: f64,
    pub cpu_secs: f64,
}

/// Signs check-ins ahead for the nodes of the coming phase: `rate` × the phase's seconds in
/// all, spread evenly. Signing is the largest cost of a kept-alive check-in to this client;
/// done here, before the timed phase, the phase measures the server rather than the client.
/// Check-ins signed ahead stay valid for the server's clock skew less a margin, so a phase
/// longer than that signs the rest as it goes.
pub fn presign(nodes: &mut [SimNode], rate: f64, duration: Duration) -> Presign {
    let started = Instant::now();
    let cpu_before = spawn::proc_stats(std::process::id()).cpu_secs;
    let usable_secs = duration
        .as_secs_f64()
        .min((vigo_shared::protocol::MAX_CLOCK_SKEW_SECS / 2) as f64);
    let total = (rate.max(0.0) * usable_secs).ceil();
    let per_node = (total / nodes.len().max(1) as f64).ceil() as usize;
    let mut signed = 0;
    if per_node > 0 {
        eprintln!(
            "vigo-fleetsim: signing up to {per_node} check-ins ahead for each of {} nodes",
            nodes.len()
        );
        for n in nodes.iter_mut() {
            signed += n.presign(per_node) as u64;
        }
    }
    Presign {
        signed,
        secs: started.elapsed().as_secs_f64(),
        cpu_secs: spawn::proc_stats(std::process::id()).cpu_secs - cpu_before,
    }
}

/// An open-loop schedule: check-in k of the phase is due at `start + k / rate`, whichever
/// worker is free to send it.
pub struct Pace {
    start: Instant,
    rate: f64,
    next: AtomicU64,
}

/// How far past its due time a check-in may start before it counts as late: the
/// runtime's timer fires on whole milliseconds.
const LATE: Duration = Duration::from_millis(1);

/// When the check-in a worker is about to send counts from.
enum Start {
    /// On time: the worker waited for the due time; latency counts from when it woke.
    Woke(Instant),
    /// Behind: every worker was busy past the due time; latency counts from that time, so
    /// that the wait for a free worker is in it as it would be for a real agent.
    Due(Instant),
}

impl Pace {
    pub fn new(rate: u32, start: Instant) -> Pace {
        Pace {
            start,
            rate: f64::from(rate),
            next: AtomicU64::new(0),
        }
    }

    /// The due time of the next check-in of the schedule, or `None` once that falls at or
    /// after `until`.
    fn take(&self, until: Instant) -> Option<Instant> {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        let due = self.start + Duration::from_secs_f64(k as f64 / self.rate);
        (due < until).then_some(due)
    }

    /// Waits for the next due time; `None` when the schedule has ended.
    async fn wait(&self, until: Instant) -> Option<Start> {
        let due = self.take(until)?;
        if Instant::now() < due {
            tokio::time::sleep_until(due.into()).await;
            Some(Start::Woke(Instant::now()))
        } else {
            Some(Start::Due(due))
        }
    }
}

/// How long a check-in phase goes on, and when its check-ins are sent.
#[derive(Clone)]
pub enum Rounds {
    /// Each node once; each worker sends its next check-in when the last is answered.
    Once,
    /// Round after round until then, the same way (closed loop).
    Until(Instant),
    /// Until then, each check-in at its due time on the schedule, by a free worker.
    Paced(Instant, Arc<Pace>),
}

impl Rounds {
    fn until(&self) -> Option<Instant> {
        match self {
            Rounds::Once => None,
            Rounds::Until(until) | Rounds::Paced(until, _) => Some(*until),
        }
    }
}

/// What the workers of a phase counted.
#[derive(Default)]
pub struct Tally {
    /// Check-ins completed in each second of the phase.
    pub per_second: Vec<u64>,
    pub checkins: u64,
    /// Every check-in's completion time and latency.
    pub samples: Vec<Sample>,
    pub errors: BTreeMap<String, u64>,
    pub bundles: u64,
    pub unchanged: u64,
    pub with_results: u64,
    pub full: u64,
    pub resumed: u64,
    /// Check-ins that went out signed ahead.
    pub presigned: u64,
    /// New bundles of changing nodes from check-ins started after the phase's publish
    /// began: compiles the fact flips caused, to tell apart from the publish's own.
    pub changing_bundles_after_publish: u64,
    /// Paced phases: check-ins that started more than [`LATE`] after their due time.
    pub late_starts: u64,
}

/// Check-ins by `c` workers, for as long and as often as `rounds` says. Latency counts from
/// the send, or for a paced check-in from its due time if it started late.
pub async fn checkin_phase(
    ctx: &Arc<Ctx>,
    nodes: Vec<SimNode>,
    c: usize,
    rounds: Rounds,
    reconnect: bool,
    results_share: f64,
    publishes_before: u64,
) -> (Vec<SimNode>, Tally) {
    let mut tasks = Vec::new();
    let phase_start = Instant::now();
    for hand in deal(nodes, c) {
        let ctx = ctx.clone();
        let rounds = rounds.clone();
        tasks.push(tokio::spawn(async move {
            let mut hand = hand;
            let mut t = Tally::default();
            let mut k: u64 = 0;
            let until = rounds.until();
            'rounds: loop {
                for node in hand.iter_mut() {
                    if until.is_some_and(|u| Instant::now() >= u) {
                        break 'rounds;
                    }
                    let start = match &rounds {
                        Rounds::Paced(until, pace) => match pace.wait(*until).await {
                            Some(start) => Some(start),
                            None => break 'rounds,
                        },
                        Rounds::Once | Rounds::Until(_) => None,
                    };
                    if let Some(Start::Due(due)) = start {
                        t.late_starts += u64::from(due.elapsed() > LATE);
                    }
                    let with_result = in_share(k, results_share);
                    k += 1;
                    let publishing = ctx
                        .publishes
                        .started
                        .load(std::sync::atomic::Ordering::SeqCst)
                        > publishes_before;
                    match node
                        .checkin(
                            &ctx.target,
                            &ctx.bundle_key,
                            reconnect,
                            with_result,
                            &ctx.publishes,
                        )
                        .await
                    {
                        Ok(done) => {
                            t.checkins += 1;
                            let into_phase = phase_start.elapsed();
                            let second = into_phase.as_secs() as usize;
                            if t.per_second.len() <= second {
                                t.per_second.resize(second + 1, 0);
                            }
                            t.per_second[second] += 1;
                            t.samples.push(Sample {
                                at_ms: into_phase.as_millis() as u32,
                                micros: match start {
                                    Some(Start::Woke(at) | Start::Due(at)) => {
                                        at.elapsed().as_micros() as u64
                                    }
                                    None => done.micros,
                                },
                            });
                            match done.outcome {
                                Outcome::Bundle => {
                                    t.bundles += 1;
                                    if publishing && node.role == Role::Changing {
                                        t.changing_bundles_after_publish += 1;
                                    }
                                }
                                Outcome::Unchanged => t.unchanged += 1,
                            }
                            t.with_results += u64::from(with_result);
                            t.presigned += u64::from(done.presigned);
                            match done.handshake {
                                Some(true) => t.resumed += 1,
                                Some(false) => t.full += 1,
                                None => {}
                            }
                        }
                        Err(e) => count(&mut t.errors, e.kind, &e.detail),
                    }
                }
                if until.is_none() {
                    break;
                }
            }
            (hand, t)
        }));
    }
    let mut nodes = Vec::new();
    let mut all = Tally::default();
    for task in tasks {
        let Ok((hand, t)) = task.await else {
            count(&mut all.errors, "task_panicked", "a worker panicked");
            continue;
        };
        nodes.extend(hand);
        if all.per_second.len() < t.per_second.len() {
            all.per_second.resize(t.per_second.len(), 0);
        }
        for (sum, n) in all.per_second.iter_mut().zip(&t.per_second) {
            *sum += n;
        }
        all.checkins += t.checkins;
        all.samples.extend(t.samples);
        add_counts(&mut all.errors, t.errors);
        all.bundles += t.bundles;
        all.unchanged += t.unchanged;
        all.with_results += t.with_results;
        all.full += t.full;
        all.resumed += t.resumed;
        all.presigned += t.presigned;
        all.changing_bundles_after_publish += t.changing_bundles_after_publish;
        all.late_starts += t.late_starts;
    }
    (nodes, all)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Pace;

    #[test]
    fn a_pace_spaces_its_due_times_evenly_until_the_end() {
        let t0 = Instant::now();
        for (rate, secs, want_ms) in [
            (4, 1.0, vec![0, 250, 500, 750]),
            (1, 2.5, vec![0, 1000, 2000]),
            (1000, 0.003, vec![0, 1, 2]),
            (3, 0.0, vec![]),
        ] {
            let pace = Pace::new(rate, t0);
            let until = t0 + Duration::from_secs_f64(secs);
            let mut got = Vec::new();
            while let Some(due) = pace.take(until) {
                got.push(((due - t0).as_secs_f64() * 1000.0).round() as u64);
                assert!(got.len() <= 1000, "rate {rate}: the schedule does not end");
            }
            assert_eq!(got, want_ms, "rate {rate} for {secs} s");
            // Once over, it stays over.
            assert_eq!(pace.take(until), None, "rate {rate}");
        }
    }
}

//! Micro-batched Ed25519 verification of check-in signatures.
//!
//! One Ed25519 verification costs ~95 µs on a core here, which alone caps a core at ~10,000
//! check-ins/s. Verifying many signatures at once (one multi-scalar multiplication for the
//! whole batch) costs about half that per signature. So check-in handlers hand their
//! (key, message, signature) to one verifier thread and await the answer; the thread takes
//! whatever has queued, waits at most [`BatchConfig::max_wait`] for more when the batch is
//! small, and verifies the batch.
//!
//! Semantics are those of single verification, for every request: both paths use
//! ed25519-zebra, whose single and batch verification implement the same ZIP-215 rules
//! (cofactored equation; canonical S required; A and R decoded as ZIP-215 says). When a batch
//! does not verify, every signature in it is verified on its own, so a bad request fails
//! alone and never takes good ones with it. When the queue is full, or the thread is gone,
//! the handler verifies its signature itself: the answer is the same, only slower.
//!
//! Cost of a failed batch: one extra single verification per request in it. A node sending
//! bad signatures therefore costs the server up to a batch's worth of work per request; each
//! such request is refused and logged like any other bad signature.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use ed25519_zebra::{Signature, VerificationKey, VerificationKeyBytes, batch};
use rand_core::OsRng;
use tokio::sync::oneshot;

/// How batches are formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// Most signatures in one batch.
    pub max_batch: usize,
    /// Longest a signature waits for others before its batch is verified.
    pub max_wait: Duration,
    /// A batch with at least this many signatures is verified without waiting.
    pub no_wait_at: usize,
    /// Signatures that may queue; beyond, handlers verify on their own.
    pub queue: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_batch: 128,
            max_wait: Duration::from_micros(500),
            no_wait_at: 32,
            queue: 4096,
        }
    }
}

/// One signature to check.
struct Job {
    key: [u8; 32],
    message: Vec<u8>,
    signature: [u8; 64],
    answer: oneshot::Sender<bool>,
}

/// Counters, for `/v1/admin/stats` and the benchmarks.
#[derive(Default, Debug)]
pub struct VerifyStats {
    /// Batches verified.
    pub batches: std::sync::atomic::AtomicU64,
    /// Signatures verified in batches.
    pub batched: std::sync::atomic::AtomicU64,
    /// Batches that failed and were re-verified one by one.
    pub fallbacks: std::sync::atomic::AtomicU64,
    /// Signatures verified by their handler (queue full or no thread).
    pub inline: std::sync::atomic::AtomicU64,
}

/// The handle check-in handlers use.
pub struct BatchVerifier {
    queue: Option<SyncSender<Job>>,
    /// Counters.
    pub stats: std::sync::Arc<VerifyStats>,
}

impl BatchVerifier {
    /// Starts the verifier thread.
    pub fn start(config: BatchConfig) -> std::io::Result<BatchVerifier> {
        let (tx, rx) = sync_channel(config.queue.max(1));
        let stats = std::sync::Arc::new(VerifyStats::default());
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name("vigo-verify".into())
            .spawn(move || run(rx, config, &thread_stats))?;
        Ok(BatchVerifier {
            queue: Some(tx),
            stats,
        })
    }

    /// A verifier without a thread: every signature is verified by its caller, with the same
    /// rules. For tools and tests that need no batching.
    pub fn inline() -> BatchVerifier {
        BatchVerifier {
            queue: None,
            stats: Default::default(),
        }
    }

    /// Whether `signature` is `key`'s signature of `message`, under the rules of
    /// [`verify_one`].
    pub async fn verify(&self, key: [u8; 32], message: Vec<u8>, signature: [u8; 64]) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(queue) = &self.queue else {
            self.stats.inline.fetch_add(1, Relaxed);
            return verify_one(&key, &message, &signature);
        };
        let (answer, wait) = oneshot::channel();
        let job = Job {
            key,
            message,
            signature,
            answer,
        };
        let job = match queue.try_send(job) {
            Ok(()) => match wait.await {
                Ok(ok) => return ok,
                // The thread dropped the job without answering (it cannot, short of a
                // panic): nothing to re-check, so refuse rather than guess.
                Err(_) => return false,
            },
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => job,
        };
        self.stats.inline.fetch_add(1, Relaxed);
        verify_one(&job.key, &job.message, &job.signature)
    }
}

/// Single verification: ZIP-215 rules, as in ed25519-zebra.
pub fn verify_one(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    match VerificationKey::try_from(*key) {
        Ok(key) => key.verify(&Signature::from(*signature), message).is_ok(),
        Err(_) => false,
    }
}

/// Verifies `jobs` together; `answers[i]` is what single verification says of `jobs[i]`.
/// Public for the benchmarks; the server reaches it through [`BatchVerifier::verify`].
pub fn verify_batch(jobs: &[(&[u8; 32], &[u8], &[u8; 64])], stats: &VerifyStats) -> Vec<bool> {
    use std::sync::atomic::Ordering::Relaxed;
    stats.batches.fetch_add(1, Relaxed);
    stats.batched.fetch_add(jobs.len() as u64, Relaxed);
    if jobs.len() > 1 {
        let mut verifier = batch::Verifier::new();
        for (key, message, signature) in jobs {
            verifier.queue((
                VerificationKeyBytes::from(**key),
                Signature::from(**signature),
                *message,
            ));
        }
        if verifier.verify(OsRng).is_ok() {
            return vec![true; jobs.len()];
        }
        stats.fallbacks.fetch_add(1, Relaxed);
    }
    jobs.iter()
        .map(|(key, message, signature)| verify_one(key, message, signature))
        .collect()
}

/// The verifier thread: forms batches until every handle is gone.
fn run(rx: Receiver<Job>, config: BatchConfig, stats: &VerifyStats) {
    let mut batch: Vec<Job> = Vec::with_capacity(config.max_batch);
    while let Ok(first) = rx.recv() {
        let deadline = Instant::now() + config.max_wait;
        batch.push(first);
        fill(&rx, &mut batch, config, deadline);
        let answers = {
            let jobs: Vec<(&[u8; 32], &[u8], &[u8; 64])> = batch
                .iter()
                .map(|j| (&j.key, j.message.as_slice(), &j.signature))
                .collect();
            verify_batch(&jobs, stats)
        };
        for (job, ok) in batch.drain(..).zip(answers) {
            // The handler may have gone (client disconnected); nothing to tell then.
            let _ = job.answer.send(ok);
        }
    }
}

/// Adds queued jobs to `batch`: all that are waiting; then, if the batch is still below
/// `no_wait_at`, sleeps until `deadline` and takes what came meanwhile. Sleeping rather than
/// waiting on the queue means senders wake nobody: on a single core, a wake-up per request
/// would cost more than batching saves.
fn fill(rx: &Receiver<Job>, batch: &mut Vec<Job>, config: BatchConfig, deadline: Instant) {
    drain(rx, batch, config.max_batch);
    if batch.len() >= config.no_wait_at || batch.len() >= config.max_batch {
        return;
    }
    let now = Instant::now();
    if now < deadline {
        std::thread::sleep(deadline - now);
    }
    drain(rx, batch, config.max_batch);
}

/// Moves waiting jobs into `batch` until it holds `max`.
fn drain(rx: &Receiver<Job>, batch: &mut Vec<Job>, max: usize) {
    while batch.len() < max {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigo_shared::sign::SigningKey;

    /// A key, a message and a signature.
    type Item = ([u8; 32], Vec<u8>, [u8; 64]);

    /// A signature by a fresh key over `message`.
    fn signed(seed: u8, message: &[u8]) -> Item {
        let key = SigningKey::from_seed([seed; 32]);
        (
            *key.public().as_bytes(),
            message.to_vec(),
            key.sign(message),
        )
    }

    /// The identity point, which has small order: ZIP-215 accepts R = identity, S = 0 under
    /// it for any message, as single and batch verification must agree.
    const IDENTITY: [u8; 32] = {
        let mut b = [0u8; 32];
        b[0] = 1;
        b
    };

    /// Signatures and what single verification must say of each.
    fn cases() -> Vec<(&'static str, Item, bool)> {
        let good = signed(1, b"check-in one");
        let mut flipped = signed(2, b"check-in two");
        flipped.2[10] ^= 1;
        let mut other_message = signed(3, b"check-in three");
        other_message.1.push(b'!');
        let mut wrong_key = signed(4, b"check-in four");
        wrong_key.0 = signed(5, b"").0;
        let mut small_order = ([0u8; 32], b"anything".to_vec(), [0u8; 64]);
        small_order.0 = IDENTITY;
        small_order.2[..32].copy_from_slice(&IDENTITY);
        let mut big_s = signed(6, b"check-in six");
        // S = 2^256 - 1 is not a canonical scalar: refused by ZIP-215 too.
        big_s.2[32..].fill(0xff);
        // A key whose y has no x on the curve: decompression fails, so single verification
        // refuses and a batch holding it must fall back without failing the others.
        let mut bad_key = signed(7, b"check-in seven");
        bad_key.0 = (2u8..)
            .map(|y| {
                let mut b = [0u8; 32];
                b[0] = y;
                b
            })
            .find(|b| VerificationKey::try_from(*b).is_err())
            .expect("half of all y values have no point; one below 256 does");
        vec![
            ("good", good, true),
            ("flipped signature bit", flipped, false),
            ("message changed", other_message, false),
            ("another key", wrong_key, false),
            ("small-order key, ZIP-215", small_order, true),
            ("non-canonical S", big_s, false),
            ("undecodable key", bad_key, false),
        ]
    }

    #[test]
    fn single_verification_follows_zip215() {
        for (name, (key, message, signature), want) in cases() {
            assert_eq!(verify_one(&key, &message, &signature), want, "{name}");
        }
    }

    #[test]
    fn a_batch_answers_each_signature_as_single_verification_does() {
        let stats = VerifyStats::default();
        let mut all: Vec<Item> = Vec::new();
        let mut want = Vec::new();
        for i in 0..20u8 {
            let msg = [i; 100];
            all.push(signed(10 + i, &msg));
            want.push(true);
        }
        for (_, case, expected) in cases() {
            all.push(case);
            want.push(expected);
        }
        let jobs: Vec<(&[u8; 32], &[u8], &[u8; 64])> =
            all.iter().map(|(k, m, s)| (k, m.as_slice(), s)).collect();
        assert_eq!(verify_batch(&jobs, &stats), want);
        assert_eq!(
            stats.fallbacks.load(std::sync::atomic::Ordering::Relaxed),
            1
        );

        // Each case alone in a batch of good ones.
        for (name, case, expected) in cases() {
            let mut batch: Vec<Item> = (0..5u8).map(|i| signed(40 + i, &[i; 7])).collect();
            batch.insert(2, case);
            let jobs: Vec<(&[u8; 32], &[u8], &[u8; 64])> =
                batch.iter().map(|(k, m, s)| (k, m.as_slice(), s)).collect();
            let got = verify_batch(&jobs, &stats);
            assert_eq!(got, vec![true, true, expected, true, true, true], "{name}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_are_batched_and_answered_each() {
        let verifier = std::sync::Arc::new(
            BatchVerifier::start(BatchConfig {
                max_batch: 16,
                max_wait: Duration::from_millis(1),
                no_wait_at: 16,
                queue: 64,
            })
            .unwrap(),
        );
        let mut tasks = Vec::new();
        for i in 0..100u8 {
            let verifier = verifier.clone();
            tasks.push(tokio::spawn(async move {
                let (key, message, mut signature) = signed(i, &[i; 64]);
                let good = i % 7 != 3;
                if !good {
                    signature[0] ^= 0x80;
                }
                (good, verifier.verify(key, message, signature).await)
            }));
        }
        for t in tasks {
            let (want, got) = t.await.unwrap();
            assert_eq!(got, want);
        }
        let s = &verifier.stats;
        use std::sync::atomic::Ordering::Relaxed;
        let batched = s.batched.load(Relaxed);
        let inline = s.inline.load(Relaxed);
        assert_eq!(batched + inline, 100);
        assert!(
            s.batches.load(Relaxed) < batched,
            "some batch held more than one signature"
        );
        assert!(
            s.fallbacks.load(Relaxed) >= 1,
            "bad signatures were re-checked"
        );
    }

    #[tokio::test]
    async fn inline_verifier_gives_the_same_answers() {
        let verifier = BatchVerifier::inline();
        for (name, (key, message, signature), want) in cases() {
            assert_eq!(
                verifier.verify(key, message, signature).await,
                want,
                "{name}"
            );
        }
    }
}

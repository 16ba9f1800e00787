//! Micro-batched Ed25519 verification of check-in signatures.
//!
//! One Ed25519 verification costs ~95 µs on a core here, which alone caps a core at ~10,000
//! check-ins/s. Verifying many signatures at once (one multi-scalar multiplication for the
//! whole batch) costs about half that per signature. So check-in handlers hand their
//! (key, message, signature) to one verifier thread and await the answer; the thread takes
//! whatever has queued and, when the batch is small, yields the CPU for as long as others
//! keep adding signatures (at most [`BatchConfig::max_wait`]), then verifies the batch.
//!
//! Semantics are those of single verification, for every request: ZIP-215, as ed25519-zebra
//! implements it (cofactored equation; canonical S required; A and R decoded as ZIP-215
//! says). Handlers that verify on their own call ed25519-zebra ([`verify_one`]); the thread
//! uses the same equations restated on curve25519-dalek (`zip215`), which lets it keep every
//! node key decompressed between check-ins. A signature whose key, R or S does not decode is
//! refused before the batch equation, as single verification refuses it. When the batch
//! equation fails, every signature in it is verified on its own, so a bad request fails
//! alone and never takes good ones with it. When the queue is full, or the thread is gone,
//! the handler verifies its signature itself: the answer is the same, only slower.
//!
//! Cost of a failed batch: one single equation per request in it (the points and hashes
//! decoded for the batch are reused). A node sending bad signatures therefore costs the
//! server up to a batch's worth of work per request; each such request is refused and
//! logged like any other bad signature.
//!
//! Memory: the thread's key cache takes 220–441 bytes per enrolled node that checks in, at
//! most ≈50.6 MB (see `zip215`).

mod zip215;

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use ed25519_zebra::{Signature, VerificationKey};
use tokio::sync::oneshot;

pub use curve25519_dalek::edwards::EdwardsPoint;
pub use zip215::KeyCache;

/// How batches are formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// Most signatures in one batch.
    pub max_batch: usize,
    /// Longest a small batch keeps yielding for more signatures before it is verified.
    pub max_wait: Duration,
    /// A batch with at least this many signatures is verified without yielding.
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
    /// The key's point, when the caller has it decompressed already.
    point: Option<EdwardsPoint>,
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
    /// [`verify_one`]. `point` is `key` decompressed ([`decompress`]), when the caller keeps
    /// it; without it the verifier thread decompresses the key (and caches it).
    pub async fn verify(
        &self,
        key: [u8; 32],
        point: Option<EdwardsPoint>,
        message: Vec<u8>,
        signature: [u8; 64],
    ) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(queue) = &self.queue else {
            self.stats.inline.fetch_add(1, Relaxed);
            return verify_one(&key, &message, &signature);
        };
        let (answer, wait) = oneshot::channel();
        let job = Job {
            key,
            point,
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

/// `key` decompressed as ZIP-215 decodes public keys (non-canonical encodings and points of
/// any order accepted); `None` when it is no point, and then no signature verifies under it.
pub fn decompress(key: &[u8; 32]) -> Option<EdwardsPoint> {
    curve25519_dalek::edwards::CompressedEdwardsY(*key).decompress()
}

/// Single verification: ZIP-215 rules, as in ed25519-zebra.
pub fn verify_one(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    match VerificationKey::try_from(*key) {
        Ok(key) => key.verify(&Signature::from(*signature), message).is_ok(),
        Err(_) => false,
    }
}

/// Verifies `jobs` together, with `keys` holding decompressed keys from batch to batch;
/// `answers[i]` is what single verification says of `jobs[i]`. Public for the benchmarks;
/// the server reaches it through [`BatchVerifier::verify`].
pub fn verify_batch(
    keys: &mut KeyCache,
    jobs: &[(&[u8; 32], &[u8], &[u8; 64])],
    stats: &VerifyStats,
) -> Vec<bool> {
    let decoded: Vec<Option<zip215::Decoded>> = jobs
        .iter()
        .map(|(key, message, signature)| zip215::decode(keys, None, key, message, signature))
        .collect();
    verify_decoded(&decoded, stats)
}

/// The answers for decoded signatures (`None`: refused before any equation).
fn verify_decoded(decoded: &[Option<zip215::Decoded>], stats: &VerifyStats) -> Vec<bool> {
    use std::sync::atomic::Ordering::Relaxed;
    stats.batches.fetch_add(1, Relaxed);
    stats.batched.fetch_add(decoded.len() as u64, Relaxed);
    let items: Vec<&zip215::Decoded> = decoded.iter().flatten().collect();
    if items.len() > 1 {
        if zip215::batch_holds(&items) {
            return decoded.iter().map(Option::is_some).collect();
        }
        stats.fallbacks.fetch_add(1, Relaxed);
    }
    decoded
        .iter()
        .map(|d| d.as_ref().is_some_and(zip215::Decoded::holds))
        .collect()
}

/// The verifier thread: forms batches until every handle is gone.
fn run(rx: Receiver<Job>, config: BatchConfig, stats: &VerifyStats) {
    let mut batch: Vec<Job> = Vec::with_capacity(config.max_batch);
    // Owned by this thread alone: no lock on the hot path.
    let mut keys = KeyCache::default();
    while let Ok(first) = rx.recv() {
        let deadline = Instant::now() + config.max_wait;
        batch.push(first);
        fill(&rx, &mut batch, config, deadline);
        let decoded: Vec<Option<zip215::Decoded>> = batch
            .iter()
            .map(|j| {
                zip215::decode(
                    &mut keys,
                    j.point.as_ref(),
                    &j.key,
                    &j.message,
                    &j.signature,
                )
            })
            .collect();
        let answers = verify_decoded(&decoded, stats);
        for (job, ok) in batch.drain(..).zip(answers) {
            // The handler may have gone (client disconnected); nothing to tell then.
            let _ = job.answer.send(ok);
        }
    }
}

/// Adds queued jobs to `batch`: all that are waiting; then, while the batch is below
/// `no_wait_at` and `deadline` has not passed, yields the CPU and takes what came meanwhile,
/// until a yield brings nothing new.
///
/// On a single core the one producing signatures is the tokio worker with requests in hand:
/// a yield lets it finish them, and when it has nothing left the batch goes at once. A fixed
/// sleep (what this did until session 7) made every batch wait out `max_wait` even with
/// nobody left to add to it: at 9,600 check-ins/s, p50 1.5–2.7 ms and p99 5.0–8.0 ms against
/// 0.9–1.2 ms and 2.5–4.9 ms yielding (docs/performance.md). Yielding rather than waiting on
/// the queue still means senders wake nobody: on a single core, a wake-up per request would
/// cost more than batching saves.
fn fill(rx: &Receiver<Job>, batch: &mut Vec<Job>, config: BatchConfig, deadline: Instant) {
    drain(rx, batch, config.max_batch);
    if batch.len() >= config.no_wait_at || batch.len() >= config.max_batch {
        return;
    }
    while Instant::now() < deadline && batch.len() < config.no_wait_at {
        let before = batch.len();
        std::thread::yield_now();
        drain(rx, batch, config.max_batch);
        if batch.len() == before {
            break;
        }
    }
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
    use super::zip215::fixtures::{ELL, add_le, p_plus, s_for, sign_bit, signature, t4};
    use super::*;
    use curve25519_dalek::edwards::EdwardsPoint;
    use curve25519_dalek::scalar::Scalar;
    use std::sync::atomic::Ordering::Relaxed;
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

    /// A signature under the key `a`·B + `torsion`, whose commitment R is encoded as
    /// `r_bytes` (a point whose prime-order part is `r`·B), with S honest over the hash of
    /// `hashed_r` rather than `r_bytes` when given.
    fn made(
        a: u64,
        torsion: Option<EdwardsPoint>,
        r: Scalar,
        r_bytes: [u8; 32],
        hashed_r: Option<[u8; 32]>,
    ) -> Item {
        let a = Scalar::from(a);
        let point = EdwardsPoint::mul_base(&a) + torsion.unwrap_or_default();
        let key = point.compress().to_bytes();
        let message = b"check-in from a made key".to_vec();
        let s = s_for(r, a, &hashed_r.unwrap_or(r_bytes), &key, &message);
        (key, message, signature(&r_bytes, &s.to_bytes()))
    }

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
        // The same S plus ℓ: the equation would hold, but S is not canonical.
        let mut s_plus_ell = signed(8, b"check-in eight");
        let s: [u8; 32] = s_plus_ell.2[32..].try_into().expect("32 bytes");
        s_plus_ell.2[32..].copy_from_slice(&add_le(s, ELL));
        // A y with no x on the curve: decompression fails, so single verification refuses,
        // as key or as R; a batch refuses it without failing the others.
        let no_point = (2u8..)
            .map(|y| {
                let mut b = [0u8; 32];
                b[0] = y;
                b
            })
            .find(|b| VerificationKey::try_from(*b).is_err())
            .expect("half of all y values have no point; one below 256 does");
        let mut bad_key = signed(7, b"check-in seven");
        bad_key.0 = no_point;
        let mut bad_r = signed(9, b"check-in nine");
        bad_r.2[..32].copy_from_slice(&no_point);
        // Non-canonical encodings of small-order points, decoded as ZIP-215 requires.
        let identity_y_p1 = (
            p_plus(1),
            b"anything".to_vec(),
            signature(&IDENTITY, &[0; 32]),
        );
        let identity_sign = (
            sign_bit(IDENTITY),
            b"any".to_vec(),
            signature(&p_plus(1), &[0; 32]),
        );
        // R of order 4 under a real key: [8]R = 0, so S = k·a satisfies the cofactored
        // equation (and not the cofactorless one); k is over R's bytes as sent.
        let r4_noncanonical = made(0x5eed, None, Scalar::ZERO, p_plus(0), None);
        let r4_other_hash = made(0x5eed, None, Scalar::ZERO, p_plus(0), Some([0; 32]));
        // A key of mixed order, a·B + T4: an honest signature passes the cofactored equation.
        let r = Scalar::from(0x1234_5678_u64);
        let r_bytes = EdwardsPoint::mul_base(&r).compress().to_bytes();
        let mixed_key = made(0xfeed, Some(t4()), r, r_bytes, None);
        vec![
            ("good", good, true),
            ("flipped signature bit", flipped, false),
            ("message changed", other_message, false),
            ("another key", wrong_key, false),
            ("small-order key, ZIP-215", small_order, true),
            ("non-canonical S", big_s, false),
            ("S + ℓ, not canonical", s_plus_ell, false),
            ("undecodable key", bad_key, false),
            ("undecodable R", bad_r, false),
            ("identity key as y = p + 1", identity_y_p1, true),
            (
                "identity key with the sign bit, R as y = p + 1",
                identity_sign,
                true,
            ),
            ("R of order 4 as y = p", r4_noncanonical, true),
            (
                "R as y = p, k over its canonical bytes",
                r4_other_hash,
                false,
            ),
            ("mixed-order key", mixed_key, true),
        ]
    }

    /// ed25519-zebra's own answer, without our code in between.
    fn zebra(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
        ed25519_zebra::VerificationKey::try_from(*key)
            .is_ok_and(|key| key.verify(&Signature::from(*signature), message).is_ok())
    }

    /// Verifies `items` as the thread does.
    fn batch(keys: &mut KeyCache, items: &[Item], stats: &VerifyStats) -> Vec<bool> {
        let jobs: Vec<(&[u8; 32], &[u8], &[u8; 64])> =
            items.iter().map(|(k, m, s)| (k, m.as_slice(), s)).collect();
        verify_batch(keys, &jobs, stats)
    }

    #[test]
    fn single_verification_follows_zip215() {
        let mut keys = KeyCache::default();
        let stats = VerifyStats::default();
        for (name, item, want) in cases() {
            let (key, message, signature) = &item;
            assert_eq!(
                zebra(key, message, signature),
                want,
                "{name}: ed25519-zebra"
            );
            assert_eq!(verify_one(key, message, signature), want, "{name}: inline");
            let alone = batch(&mut keys, std::slice::from_ref(&item), &stats);
            assert_eq!(alone, [want], "{name}: batch of one, own equation");
        }
    }

    #[test]
    fn a_batch_answers_each_signature_as_single_verification_does() {
        let stats = VerifyStats::default();
        let mut keys = KeyCache::default();
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
        assert_eq!(batch(&mut keys, &all, &stats), want);
        assert_eq!(stats.fallbacks.load(Relaxed), 1);

        // Each case alone in a batch of good ones.
        for (name, case, expected) in cases() {
            let mut items: Vec<Item> = (0..5u8).map(|i| signed(40 + i, &[i; 7])).collect();
            items.insert(2, case);
            let before = stats.fallbacks.load(Relaxed);
            let got = batch(&mut keys, &items, &stats);
            assert_eq!(got, [true, true, expected, true, true, true], "{name}");
            if expected {
                let fallbacks = stats.fallbacks.load(Relaxed) - before;
                assert_eq!(fallbacks, 0, "{name}: the batch equation held");
            }
        }

        // Only the cases that pass, all together: one batch equation, no fallback.
        let passing: Vec<Item> = cases().into_iter().filter(|c| c.2).map(|c| c.1).collect();
        let before = stats.fallbacks.load(Relaxed);
        assert!(batch(&mut keys, &passing, &stats).iter().all(|ok| *ok));
        assert_eq!(
            stats.fallbacks.load(Relaxed),
            before,
            "the batch equation held"
        );
    }

    #[test]
    fn repeated_keys_are_decompressed_once_and_a_bad_signature_still_fails_alone() {
        let stats = VerifyStats::default();
        let mut keys = KeyCache::default();
        let node = SigningKey::from_seed([77; 32]);
        let mut items: Vec<Item> = (0..40u32)
            .map(|seq| {
                let m = format!("check-in {seq}").into_bytes();
                (*node.public().as_bytes(), m.clone(), node.sign(&m))
            })
            .collect();
        let mut want = vec![true; items.len()];
        items[17].2[40] ^= 4;
        want[17] = false;
        for round in 0..2 {
            assert_eq!(batch(&mut keys, &items, &stats), want, "round {round}");
            assert_eq!(keys.len(), 1, "one key, cached once");
        }
        assert_eq!(stats.fallbacks.load(Relaxed), 2);
        items[17] = signed(78, b"another node");
        assert!(batch(&mut keys, &items, &stats).iter().all(|ok| *ok));
        assert_eq!(keys.len(), 2);
    }

    #[test]
    fn the_key_cache_keeps_only_points_and_stays_bounded() {
        let stats = VerifyStats::default();
        let mut keys = KeyCache::with_limit(3);
        let items: Vec<Item> = (0..5u8).map(|i| signed(90 + i, &[i; 9])).collect();
        assert!(batch(&mut keys, &items, &stats).iter().all(|ok| *ok));
        // Emptied at three, then two more keys.
        assert_eq!(keys.len(), 2);

        let mut keys = KeyCache::default();
        let undecodable = cases()
            .into_iter()
            .find(|c| c.0 == "undecodable key")
            .expect("listed above")
            .1;
        for _ in 0..2 {
            assert_eq!(
                batch(&mut keys, std::slice::from_ref(&undecodable), &stats),
                [false]
            );
            assert!(keys.is_empty(), "a key that is no point is not cached");
        }
        let good = signed(99, b"good");
        let mut forged = good.clone();
        forged.2[0] ^= 1;
        // A key that decodes is cached even when its signature fails, and it still answers
        // each signature afresh.
        assert_eq!(batch(&mut keys, &[forged], &stats), [false]);
        assert_eq!(batch(&mut keys, &[good], &stats), [true]);
        assert_eq!(keys.len(), 1);
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
                    // S changes by one and stays canonical: the batch equation fails.
                    signature[32] ^= 1;
                }
                // Half the callers pass the decompressed key, as check-ins do; the others
                // leave it to the thread's cache.
                let point = (i % 2 == 0).then(|| decompress(&key)).flatten();
                (good, verifier.verify(key, point, message, signature).await)
            }));
        }
        for t in tasks {
            let (want, got) = t.await.unwrap();
            assert_eq!(got, want);
        }
        let s = &verifier.stats;
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
                verifier
                    .verify(key, decompress(&key), message, signature)
                    .await,
                want,
                "{name}"
            );
        }
    }
}

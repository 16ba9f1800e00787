//! Micro-benchmarks of the check-in hot path: one signature check (single, and per signature
//! in the server's micro-batches, next to ed25519-zebra's batch verifier for reference), a
//! FleetIndex lookup among 100,000 nodes, and the key exchange of a resumed TLS handshake.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use vigo_server::daemon::verify::{KeyCache, VerifyStats, verify_batch, verify_one};
use vigo_server::fleet::index::FleetIndex;
use vigo_shared::sign::SigningKey;

/// A check-in-sized message (the signed request text with a small body).
fn message(i: usize) -> Vec<u8> {
    let mut m = format!("POST\n/v1/checkin\nnode-sim-{i:06}.prod\n1796000000\n{i}\n").into_bytes();
    m.extend_from_slice(&[b'x'; 400]);
    m
}

fn signed(n: usize) -> Vec<([u8; 32], Vec<u8>, [u8; 64])> {
    (0..n)
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let key = SigningKey::from_seed(seed);
            let m = message(i);
            let sig = key.sign(&m);
            (*key.public().as_bytes(), m, sig)
        })
        .collect()
}

fn signatures(c: &mut Criterion) {
    let items = signed(256);
    let mut g = c.benchmark_group("signature");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify_single_ring", |b| {
        let (k, m, s) = &items[0];
        let key = vigo_shared::sign::PublicKey::from_bytes(*k);
        b.iter(|| assert!(key.verify(m, s)))
    });
    g.bench_function("verify_single_zip215", |b| {
        let (k, m, s) = &items[0];
        b.iter(|| assert!(verify_one(k, m, s)))
    });
    let stats = VerifyStats::default();
    for size in [8usize, 32, 64, 128] {
        let jobs: Vec<(&[u8; 32], &[u8], &[u8; 64])> = items[..size]
            .iter()
            .map(|(k, m, s)| (k, m.as_slice(), s))
            .collect();
        g.throughput(Throughput::Elements(size as u64));
        // The server's path, every node key already in the cache: each node has checked in
        // before.
        g.bench_function(format!("verify_batch_{size}"), |b| {
            let mut keys = KeyCache::default();
            b.iter(|| assert!(verify_batch(&mut keys, &jobs, &stats).iter().all(|ok| *ok)))
        });
        // The same with an empty cache: every key is new.
        g.bench_function(format!("verify_batch_{size}_cold"), |b| {
            b.iter_batched(
                KeyCache::default,
                |mut keys| assert!(verify_batch(&mut keys, &jobs, &stats).iter().all(|ok| *ok)),
                BatchSize::SmallInput,
            )
        });
        // ed25519-zebra's batch verifier, which the server used before: the reference.
        g.bench_function(format!("zebra_batch_{size}"), |b| {
            b.iter(|| {
                let mut verifier = ed25519_zebra::batch::Verifier::new();
                for (k, m, s) in &jobs {
                    verifier.queue((
                        ed25519_zebra::VerificationKeyBytes::from(**k),
                        ed25519_zebra::Signature::from(**s),
                        *m,
                    ));
                }
                assert!(verifier.verify(rand_core::OsRng).is_ok())
            })
        });
    }
    g.finish();
}

fn index_lookup(c: &mut Criterion) {
    const NODES: usize = 100_000;
    let index = FleetIndex::default();
    let key = SigningKey::from_seed([3; 32]).public();
    let names: Vec<String> = (0..NODES)
        .map(|i| format!("node-sim-{i:06}.prod"))
        .collect();
    for (i, n) in names.iter().enumerate() {
        index.enroll(n, key, i as u64);
    }
    let mut g = c.benchmark_group("fleet_index");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("lookup_and_bump_seq_100k_nodes", |b| {
        b.iter_batched(
            || {
                i = (i + 7919) % NODES;
                &names[i]
            },
            |name| {
                let mut nodes = index.nodes();
                let e = nodes.get_mut(name.as_str()).expect("enrolled above");
                e.last_seq += 1;
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// What every resumed TLS 1.3 handshake costs the server before any request: rustls resumes
/// only with a fresh (EC)DHE exchange, so each reconnecting agent costs one ephemeral key
/// and one shared secret (ring, as the server's rustls provider). P-256 for comparison.
fn key_exchange(c: &mut Criterion) {
    use ring::agreement::{
        ECDH_P256, EphemeralPrivateKey, UnparsedPublicKey, X25519, agree_ephemeral,
    };
    let rng = ring::rand::SystemRandom::new();
    let mut g = c.benchmark_group("tls_key_exchange");
    g.throughput(Throughput::Elements(1));
    for (name, alg) in [("x25519", &X25519), ("p256", &ECDH_P256)] {
        let peer = EphemeralPrivateKey::generate(alg, &rng).unwrap();
        let peer_public = peer.compute_public_key().unwrap();
        g.bench_function(format!("{name}_keygen_and_agree"), |b| {
            b.iter(|| {
                let key = EphemeralPrivateKey::generate(alg, &rng).unwrap();
                let public = key.compute_public_key().unwrap();
                let peer = UnparsedPublicKey::new(alg, peer_public.as_ref());
                let len = agree_ephemeral(key, &peer, |secret| secret.len()).unwrap();
                (public.as_ref().len(), len)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, signatures, index_lookup, key_exchange);
criterion_main!(benches);

//! Benchmark of the database flush at fleet scale: one flush of node progress (last
//! sequence number and check-in time) for 1,000 nodes picked at random among 10,000 and
//! 100,000 enrolled ones, each with ~600 bytes of stored facts — what a keep-alive fleet
//! writes every flush interval (docs/performance.md, "What bounds us").

use std::path::PathBuf;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use vigo_server::store::{Batch, Db};

/// Nodes written per flush.
const PER_FLUSH: usize = 1_000;

fn name(i: usize) -> String {
    format!("node-sim-{i}.prod")
}

/// A database of `nodes` enrolled nodes with facts, as the server leaves it after every
/// node's first check-in.
fn fleet_db(nodes: usize) -> (PathBuf, Db) {
    let dir = std::env::temp_dir().join(format!("vigo-bench-store-{}-{nodes}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut db = Db::open(&dir.join("vigo.db")).unwrap();
    let facts = format!(
        "{{\"os_family\":\"debian\",\"kernel\":\"6.1.0-28-amd64\",\"cpus\":4,\"memory_mb\":8192,\
         \"addresses\":[\"10.1.2.3\",\"fe80::1\"],\"padding\":\"{}\"}}",
        "x".repeat(450)
    );
    for i in 0..nodes {
        let token = format!("t{i}");
        db.insert_token(&token, "h", "*", u64::MAX >> 1, 0).unwrap();
        assert!(
            db.enroll(&token, &name(i), &"k".repeat(64), 1 + i as u64)
                .unwrap()
        );
    }
    for chunk in (0..nodes).collect::<Vec<_>>().chunks(5_000) {
        let batch = Batch {
            facts: chunk.iter().map(|&i| (name(i), facts.clone())).collect(),
            nodes: chunk
                .iter()
                .map(|&i| (name(i), 1 + i as u64, 1, 0, 1))
                .collect(),
            ..Batch::default()
        };
        db.flush(&batch, 1).unwrap();
    }
    (dir, db)
}

fn flush(c: &mut Criterion) {
    let mut g = c.benchmark_group("store_flush");
    g.sample_size(20);
    g.throughput(Throughput::Elements(PER_FLUSH as u64));
    for nodes in [10_000usize, 100_000] {
        let (dir, mut db) = fleet_db(nodes);
        // A fixed pseudo-random walk over the fleet (no rand dependency needed).
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut seq = 2u64;
        g.bench_function(format!("progress_of_1000_among_{nodes}"), |b| {
            b.iter_batched(
                || {
                    seq += 1;
                    let nodes_part = (0..PER_FLUSH)
                        .map(|_| {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            let i = (x % nodes as u64) as usize;
                            (name(i), 1 + i as u64, seq, 0, seq)
                        })
                        .collect();
                    (
                        Batch {
                            nodes: nodes_part,
                            ..Batch::default()
                        },
                        seq,
                    )
                },
                |(batch, now)| db.flush(&batch, now).unwrap(),
                BatchSize::LargeInput,
            )
        });
        drop(db);
        let _ = std::fs::remove_dir_all(dir);
    }
    g.finish();
}

criterion_group!(benches, flush);
criterion_main!(benches);

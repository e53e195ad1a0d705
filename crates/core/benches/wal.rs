//! The write-ahead log: appending one single-vector insert, and replaying a
//! log of 10,000 of them.
//!
//! `cargo bench -p annvault-core --bench wal`
//!
//! Every record is an `Insert` of one 384-dim point with a small JSON
//! payload (~1.6 KB encoded). Files go to a real temporary directory.
//!
//! - `wal_append/encode`: `wal::encode_record` + `Op::encode_body` into a
//!   reused buffer (no I/O).
//! - `wal_append/write`: `CollectionDir::append`, i.e. encode + one `write(2)`
//!   to the log file, no fsync (what `Durability::Flush` waits for).
//! - `wal_append/write_fsync`: the same plus `fdatasync` (`Durability::Fsync`).
//! - `wal_append/store_insert_flush`: `Store::insert` of one point on a
//!   persistent flat store opened with `Durability::Flush`: batch
//!   validation, the commit queue, the WAL write and the in-memory apply.
//! - `wal_replay/*` over a log of 10,000 records: `scan` (framing + CRC
//!   only), `scan_decode` (+ decoding every operation), `dir_open`
//!   (`CollectionDir::open`: read, scan, decode, apply to a `Collection`),
//!   `store_open` (`Store::open` of the same directory, flat index).

#[macro_use]
mod common;

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use annvault_core::op::{self, Op};
use annvault_core::storage::directory::{CollectionDir, DirOptions, Durability};
use annvault_core::storage::fs::OsStorage;
use annvault_core::storage::wal;
use annvault_core::testing;
use annvault_core::{AnnConfig, CollectionConfig, Payload, PointBatch, PointId, Store};
use common::{cosine_config, criterion_config, Rng};
use criterion::{BenchmarkId, Criterion, Throughput};
use serde_json::json;

const DIM: usize = 384;
const REPLAY_RECORDS: usize = 10_000;

fn payload(i: usize) -> Payload {
    common::payload(json!({ "doc": i, "source": "sympy" }))
}

/// One point with id `id` and its payload.
fn one_point(id: usize, vector: Vec<f32>) -> PointBatch {
    common::batch(
        DIM,
        vec![PointId::Int(id as i64)],
        vector,
        vec![payload(id)],
    )
}

fn insert_one(id: usize, vector: Vec<f32>) -> Op {
    Op::Insert(one_point(id, vector))
}

fn config() -> CollectionConfig {
    cosine_config(DIM)
}

/// No background checkpoint: every bench measures the log alone.
fn dir_options(durability: Durability) -> DirOptions {
    testing::no_auto_checkpoint(durability)
}

fn open_dir(path: &Path, durability: Durability) -> CollectionDir {
    let (dir, _, _) =
        CollectionDir::open(Arc::new(OsStorage), path, config(), dir_options(durability))
            .expect("open collection directory");
    dir
}

fn open_store(root: &Path, durability: Durability) -> Store {
    let persistence = testing::persistence(Arc::new(OsStorage), root, dir_options(durability));
    Store::open(testing::store_options(
        "bench",
        config(),
        AnnConfig::flat(),
        Some(persistence),
    ))
    .expect("open store")
}

fn append(c: &mut Criterion) {
    let mut rng = Rng(3);
    let ops: Vec<Op> = (0..256)
        .map(|i| insert_one(i, rng.unit_vector(DIM)))
        .collect();
    let mut buf = Vec::new();
    wal::encode_record(&mut buf, 7, 1, ops[0].code(), |out| ops[0].encode_body(out));
    let record_len = buf.len() as u64;
    eprintln!("one single-vector insert record: {record_len} bytes");

    let mut group = c.benchmark_group("wal_append");
    group.throughput(Throughput::Bytes(record_len));
    let mut seq = 0u64;
    group.bench_function("encode", |b| {
        b.iter(|| {
            seq += 1;
            let op = &ops[seq as usize % ops.len()];
            buf.clear();
            wal::encode_record(&mut buf, 7, seq, op.code(), |out| op.encode_body(out));
            black_box(buf.len())
        })
    });
    // A fresh log per sample so the file stays small.
    for (name, fsync) in [("write", false), ("write_fsync", true)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let tmp = tempfile::tempdir().expect("temp dir");
                let mut dir = open_dir(&tmp.path().join("c"), Durability::Flush);
                let start = Instant::now();
                for i in 0..iters {
                    dir.append(&[&ops[i as usize % ops.len()]]).expect("append");
                    if fsync {
                        dir.sync().expect("fsync");
                    }
                }
                start.elapsed()
            })
        });
    }
    let vectors: Vec<Vec<f32>> = (0..256).map(|_| rng.unit_vector(DIM)).collect();
    group.bench_function("store_insert_flush", |b| {
        b.iter_custom(|iters| {
            let tmp = tempfile::tempdir().expect("temp dir");
            let store = open_store(tmp.path(), Durability::Flush);
            let start = Instant::now();
            for i in 0..iters as usize {
                let batch = one_point(i, vectors[i % vectors.len()].clone());
                store.insert(store.ticket(), batch).expect("insert");
            }
            let elapsed = start.elapsed();
            // Dropped, not closed: `close` would write a checkpoint.
            drop(store);
            elapsed
        })
    });
    group.finish();
}

fn replay(c: &mut Criterion) {
    let mut rng = Rng(4);
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    // `Store` keeps the collection in `root/<name>`: build the log there.
    let path = root.join("bench");
    {
        let mut dir = open_dir(&path, Durability::Flush);
        for i in 0..REPLAY_RECORDS {
            dir.append(&[&insert_one(i, rng.unit_vector(DIM))])
                .expect("append");
        }
        dir.sync().expect("fsync");
    }
    let wal_path = path.join(wal::file_name(1));
    let bytes = std::fs::read(&wal_path).expect("read the log");
    eprintln!(
        "replay log: {REPLAY_RECORDS} records, {:.1} MiB",
        bytes.len() as f64 / (1 << 20) as f64
    );

    let mut group = c.benchmark_group("wal_replay");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function(BenchmarkId::new("scan", REPLAY_RECORDS), |b| {
        b.iter(|| {
            let scan = wal::scan(black_box(&bytes)).expect("scan");
            assert_eq!(scan.records.len(), REPLAY_RECORDS);
            scan
        })
    });
    group.throughput(Throughput::Elements(REPLAY_RECORDS as u64));
    group.bench_function(BenchmarkId::new("scan_decode", REPLAY_RECORDS), |b| {
        b.iter(|| {
            let scan = wal::scan(black_box(&bytes)).expect("scan");
            let mut ops = 0;
            for record in &scan.records {
                ops += op::decode_record(record.op, &bytes[record.body.clone()])
                    .expect("decode")
                    .len();
            }
            assert_eq!(ops, REPLAY_RECORDS);
        })
    });
    group.bench_function(BenchmarkId::new("dir_open", REPLAY_RECORDS), |b| {
        b.iter(|| {
            let (dir, collection, report) = CollectionDir::open(
                Arc::new(OsStorage),
                &path,
                config(),
                dir_options(Durability::Flush),
            )
            .expect("open");
            assert_eq!(report.replayed_records, REPLAY_RECORDS as u64);
            assert_eq!(collection.len(), REPLAY_RECORDS);
            drop(dir);
            collection
        })
    });
    group.bench_function(BenchmarkId::new("store_open", REPLAY_RECORDS), |b| {
        b.iter(|| {
            let store = open_store(root, Durability::Flush);
            assert_eq!(store.len().expect("len"), REPLAY_RECORDS);
            // Dropped, not closed: `close` would checkpoint the log away.
            store
        })
    });
    group.finish();
}

criterion_benches!(criterion_config(20, Duration::from_secs(2)); append, replay);

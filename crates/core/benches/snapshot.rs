//! Snapshot (checkpoint) encode and decode of a 20,000 × 384 collection with
//! small JSON payloads.
//!
//! `cargo bench -p annvault-core --bench snapshot`
//!
//! - `snapshot/encode{,_gzip}`: `storage::snapshot::encode` of the whole
//!   collection into memory (vectors, ids, payload JSON, CRC; `_gzip` with
//!   the store's `gzip: true` option).
//! - `snapshot/decode{,_gzip}`: `snapshot::decode` + `into_collection`, i.e.
//!   parse and check the bytes and rebuild the collection (id map, payloads,
//!   per-vector norms).
//! - `snapshot/dir_open`: `CollectionDir::open` of a directory holding that
//!   snapshot and an empty log: the real load path (file read from the page
//!   cache, decode, rebuild).
//!
//! Throughput is in bytes of the uncompressed snapshot.

#[macro_use]
mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use annvault_core::op::Op;
use annvault_core::storage::directory::{CollectionDir, DirOptions};
use annvault_core::storage::fs::OsStorage;
use annvault_core::storage::snapshot;
use annvault_core::{Collection, CollectionConfig, PointBatch, PointId};
use common::{cosine_config, criterion_config, payload, Rng};
use criterion::{Criterion, Throughput};
use serde_json::json;

const POINTS: usize = 20_000;
const DIM: usize = 384;

const SOURCES: [&str; 4] = ["sympy", "torch", "scikit-learn", "scipy"];

fn config() -> CollectionConfig {
    cosine_config(DIM)
}

fn batch() -> PointBatch {
    let vectors = Rng(5).unit_vectors(POINTS, DIM);
    let ids = (0..POINTS)
        .map(|i| PointId::Str(format!("doc-{i:06}").into_boxed_str()))
        .collect();
    let payloads = (0..POINTS)
        .map(|i| {
            payload(json!({
                "source": SOURCES[i % SOURCES.len()],
                "line": i * 7 % 1000,
                "public": i % 3 != 0,
            }))
        })
        .collect();
    common::batch(DIM, ids, vectors, payloads)
}

fn bench(c: &mut Criterion) {
    let batch = batch();
    let mut collection = Collection::new(config());
    collection.insert(batch.clone()).expect("insert");
    let plain = snapshot::encode(&collection, 1, false);
    let gzipped = snapshot::encode(&collection, 1, true);
    eprintln!(
        "snapshot of {POINTS} × {DIM}: {:.1} MiB, {:.1} MiB gzipped",
        plain.len() as f64 / (1 << 20) as f64,
        gzipped.len() as f64 / (1 << 20) as f64
    );

    // A collection directory holding that snapshot (checkpoint protocol).
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join("c");
    let storage = Arc::new(OsStorage);
    {
        let (mut dir, _, _) =
            CollectionDir::open(storage.clone(), &path, config(), DirOptions::default())
                .expect("open");
        dir.append(&[&Op::Insert(batch)]).expect("append");
        let job = dir.rotate(collection.clone()).expect("rotate");
        let manifest = CollectionDir::publish(
            storage.as_ref(),
            &path,
            &job,
            snapshot::Compression::None,
            dir.manifest(),
        )
        .expect("publish");
        dir.set_manifest(manifest);
    }

    let mut group = c.benchmark_group("snapshot");
    group.throughput(Throughput::Bytes(plain.len() as u64));
    group.bench_function("encode", |b| {
        b.iter(|| snapshot::encode(black_box(&collection), 1, false))
    });
    group.bench_function("decode", |b| b.iter(|| decode(black_box(&plain))));
    group.bench_function("dir_open", |b| {
        b.iter(|| {
            let (dir, loaded, report) =
                CollectionDir::open(storage.clone(), &path, config(), DirOptions::default())
                    .expect("open");
            assert_eq!(report.snapshot_points, POINTS);
            drop(dir);
            loaded
        })
    });
    group.bench_function("encode_gzip", |b| {
        b.iter(|| snapshot::encode(black_box(&collection), 1, true))
    });
    group.bench_function("decode_gzip", |b| b.iter(|| decode(black_box(&gzipped))));
    group.finish();
}

/// Parse and check a snapshot, then rebuild the collection it holds.
fn decode(bytes: &[u8]) -> Collection {
    snapshot::decode(bytes)
        .expect("decode")
        .into_collection(None)
        .expect("collection")
}

criterion_benches!(criterion_config(10, Duration::from_secs(3)); bench);

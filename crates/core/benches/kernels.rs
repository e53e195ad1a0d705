//! Distance kernels and the exact (flat) top-k scan.
//!
//! `cargo bench -p annvault-core --bench kernels`
//!
//! - `distance/{dot,l2_squared,inverse_norm}/{384,1536}`: one call on one
//!   pair of vectors; throughput in f32 elements (dimensions) per second.
//! - `flat_scan/*`: exact top-10 over 20,000 × 384 unit vectors, one query
//!   per iteration; throughput in vectors scanned per second.
//!   `flat::search` is the raw scan, `Collection::search` adds the id and
//!   payload lookup of the hits, `flat::rank_256` is the exact re-rank of 256
//!   candidate slots (what a graph search hands back).

#[macro_use]
mod common;

use std::hint::black_box;
use std::time::Duration;

use annvault_core::flat::{self, VectorArena};
use annvault_core::{distance, Collection, Distance, Filter, PointId};
use common::{batch, cosine_config, criterion_config, payload, Rng};
use criterion::{BenchmarkId, Criterion, Throughput};
use serde_json::json;

const SCAN_POINTS: usize = 20_000;
const SCAN_DIM: usize = 384;
const K: usize = 10;

fn kernels(c: &mut Criterion) {
    let mut rng = Rng(1);
    let mut group = c.benchmark_group("distance");
    for dim in [384usize, 1536] {
        let a = rng.unit_vector(dim);
        let b = rng.unit_vector(dim);
        group.throughput(Throughput::Elements(dim as u64));
        group.bench_with_input(BenchmarkId::new("dot", dim), &dim, |bench, _| {
            bench.iter(|| distance::dot(black_box(&a), black_box(&b)))
        });
        group.bench_with_input(BenchmarkId::new("l2_squared", dim), &dim, |bench, _| {
            bench.iter(|| distance::l2_squared(black_box(&a), black_box(&b)))
        });
        group.bench_with_input(BenchmarkId::new("inverse_norm", dim), &dim, |bench, _| {
            bench.iter(|| distance::inverse_norm(black_box(&a)))
        });
    }
    group.finish();
}

fn flat_scan(c: &mut Criterion) {
    let mut rng = Rng(2);
    let vectors = rng.unit_vectors(SCAN_POINTS, SCAN_DIM);
    let mut arena = VectorArena::new(SCAN_DIM);
    arena.reserve(SCAN_POINTS);
    for v in vectors.chunks_exact(SCAN_DIM) {
        arena.push(v);
    }
    let queries: Vec<Vec<f32>> = (0..64).map(|_| rng.unit_vector(SCAN_DIM)).collect();

    let mut collection = Collection::new(cosine_config(SCAN_DIM));
    let ids = (0..SCAN_POINTS as i64).map(PointId::Int).collect();
    let payloads = (0..SCAN_POINTS)
        .map(|i| payload(json!({ "doc": i })))
        .collect();
    collection
        .insert(batch(SCAN_DIM, ids, vectors, payloads))
        .expect("insert");
    let no_filter = Filter::default();

    let mut group = c.benchmark_group("flat_scan");
    group.throughput(Throughput::Elements(SCAN_POINTS as u64));
    for (name, metric) in [
        ("search_cosine", Distance::Cosine),
        ("search_dot", Distance::Dot),
        ("search_euclidean", Distance::Euclidean),
    ] {
        let mut q = 0;
        group.bench_function(BenchmarkId::new(name, "20000x384"), |bench| {
            bench.iter(|| {
                q = (q + 1) % queries.len();
                flat::search(&arena, metric, black_box(&queries[q]), K, |_| true)
            })
        });
    }
    let mut q = 0;
    group.bench_function(
        BenchmarkId::new("collection_search", "20000x384"),
        |bench| {
            bench.iter(|| {
                q = (q + 1) % queries.len();
                collection
                    .search(black_box(&queries[q]), K, &no_filter)
                    .expect("search")
            })
        },
    );
    // Exact re-rank of 256 candidates spread over the arena.
    let candidates: Vec<u32> = (0..256u32).map(|i| i * 78 + (i % 7)).collect();
    group.throughput(Throughput::Elements(candidates.len() as u64));
    let mut q = 0;
    group.bench_function(BenchmarkId::new("rank_256", "384"), |bench| {
        bench.iter(|| {
            q = (q + 1) % queries.len();
            flat::rank(
                &arena,
                Distance::Cosine,
                black_box(&queries[q]),
                K,
                candidates.iter().copied(),
            )
        })
    });
    group.finish();
}

criterion_benches!(criterion_config(20, Duration::from_secs(2)); kernels, flat_scan);

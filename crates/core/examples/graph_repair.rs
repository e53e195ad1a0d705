//! What reduces the points a usearch graph leaves unreachable by their own
//! vector (issue 21; figures in BENCHMARKS.md, "Findability: repairing the
//! graph"). usearch alone, no store: builds a graph over the rows of an f32
//! file (every core), audits every point (efSearch 16, then 64 for the rest:
//! missed when not among the first 32 results, the candidates a store search
//! ranks exactly), then inserts the missed again under new keys `ROUNDS`
//! times (default 2) at expansion `EXP` and audits again.
//!
//! ```text
//! Q=i8|f16|f32|own EXP=100 ROUNDS=1 cargo run --release --example graph_repair -p annvault-core -- \
//!     /tmp/clustered-100000x384.f32 100000 16:100 24:100
//! ```
//! (`own`: 8-bit codes scaled per vector by its largest component and
//! rounded, cosine metric; the default is usearch's own i8 cast.)
use rayon::prelude::*;
use std::collections::HashSet;
use std::time::Instant;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

const DIM: usize = 384;

fn quant(v: &[f32]) -> Vec<i8> {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-30);
    v.iter().map(|x| (x * 127.0 / max).round() as i8).collect()
}

fn own() -> bool {
    std::env::var("Q").as_deref() == Ok("own")
}

fn add(index: &Index, key: u64, v: &[f32]) {
    if own() {
        index.add(key, &quant(v)).unwrap()
    } else {
        index.add(key, v).unwrap()
    }
}

fn find(index: &Index, v: &[f32], ef: usize) -> usearch::ffi::Matches {
    if own() {
        index.search(&quant(v), ef).unwrap()
    } else {
        index.search(v, ef).unwrap()
    }
}

fn build(data: &[f32], n: usize, m: usize, efc: usize) -> (Index, f64) {
    let q = std::env::var("Q").unwrap_or_default();
    let index = Index::new(&IndexOptions {
        dimensions: DIM,
        metric: if q == "own" {
            MetricKind::Cos
        } else {
            MetricKind::IP
        },
        quantization: match q.as_str() {
            "f16" => ScalarKind::F16,
            "f32" => ScalarKind::F32,
            _ => ScalarKind::I8,
        },
        connectivity: m,
        expansion_add: efc,
        expansion_search: 1,
        multi: false,
    })
    .unwrap();
    index.reserve_capacity_and_threads(n * 2, 32).unwrap();
    let t = Instant::now();
    (0..n).into_par_iter().for_each(|i| {
        add(&index, i as u64, &data[i * DIM..(i + 1) * DIM]);
    });
    (index, t.elapsed().as_secs_f64())
}

/// Points whose current key is not among the first `take` live results of a search at `ef`.
fn audit(
    index: &Index,
    data: &[f32],
    keys: &[u64],
    dead: &HashSet<u64>,
    ef: usize,
    take: usize,
    points: &[usize],
) -> (Vec<usize>, f64) {
    let t = Instant::now();
    let missed: Vec<usize> = points
        .par_iter()
        .filter(|&&i| {
            let found = find(index, &data[i * DIM..(i + 1) * DIM], ef);
            !found
                .keys
                .iter()
                .filter(|k| !dead.contains(k))
                .take(take)
                .any(|&k| k == keys[i])
        })
        .copied()
        .collect();
    (missed, t.elapsed().as_secs_f64())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let file = &args[1];
    let n: usize = args[2].parse().unwrap();
    let bytes = std::fs::read(file).unwrap();
    let data: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let n = n.min(data.len() / DIM);
    let all: Vec<usize> = (0..n).collect();
    let configs: Vec<(usize, usize)> = args[3..]
        .iter()
        .map(|s| {
            let mut p = s.split(':');
            (
                p.next().unwrap().parse().unwrap(),
                p.next().unwrap().parse().unwrap(),
            )
        })
        .collect();
    for (m, efc) in configs {
        let (index, secs) = build(&data, n, m, efc);
        let mut keys: Vec<u64> = (0..n as u64).collect();
        let mut dead = HashSet::new();
        println!(
            "M {m} efc {efc}: build {secs:.1} s, memory {} MB",
            index.memory_usage() >> 20
        );
        let (m16, t16) = audit(&index, &data, &keys, &dead, 16, 16, &all);
        let t = Instant::now();
        let (m64a, _) = audit(&index, &data, &keys, &dead, 64, 32, &m16);
        let t64a = t.elapsed().as_secs_f64();
        println!("  audit ef16 take16: {} missed in {t16:.1} s; then ef64 take32 on those: {} in {t64a:.1} s", m16.len(), m64a.len());
        // Repair rounds: re-insert the missed under new keys at an expansion.
        for &(expansion, rounds) in &[(efc, 2usize), (4 * efc, 2)] {
            // Work on a copy: rebuild is too slow, so repair in place and report cumulative; only for the first strategy.
            let _ = rounds;
            let _ = expansion;
        }
        let strategy: usize = std::env::var("EXP")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(efc);
        let rounds: usize = std::env::var("ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2);
        let mut missed = m64a;
        let mut next = n as u64;
        for round in 0..rounds {
            index.change_expansion_add(strategy);
            let t = Instant::now();
            let batch: Vec<(usize, u64)> = missed
                .iter()
                .map(|&i| {
                    let k = next;
                    next += 1;
                    (i, k)
                })
                .collect();
            batch.par_iter().for_each(|&(i, k)| {
                add(&index, k, &data[i * DIM..(i + 1) * DIM]);
            });
            for &(i, k) in &batch {
                dead.insert(keys[i]);
                keys[i] = k;
            }
            let tr = t.elapsed().as_secs_f64();
            index.change_expansion_add(efc);
            let (after, ta) = audit(&index, &data, &keys, &dead, 64, 32, &all);
            let (again, _) = audit(&index, &data, &keys, &dead, 64, 32, &missed);
            println!("  round {round} expansion {strategy}: re-inserted {} in {tr:.2} s; now missed {} (of the re-inserted: {}) audit {ta:.1} s", batch.len(), after.len(), again.len());
            missed = after;
        }
    }
}

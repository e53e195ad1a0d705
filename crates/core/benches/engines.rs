//! Graph engines side by side on a real-text embedding set: `hnsw_rs` and
//! `usearch` (f32, f16, i8), same graph parameters (M 16, efConstruction 100).
//!
//! `cargo bench -p annvault-core --bench engines`
//!
//! Data: `docs-384.f32` (points) and `queries-384.f32` from the folder in
//! `ANNVAULT_DATASET`, else `shared/data` beside the clone, else
//! `/work/shared/data` (`annvault_core::testing::real_text_folder`, as the
//! tests find it); without them, a clustered synthetic set from a fixed seed. Per engine: build time with 2
//! threads, self-find misses (each point's own vector, k = 1, ef 64),
//! recall@10 against exact ground truth and µs/query on one thread at each
//! search width. The i8 and f16 graphs are also measured the way annvault
//! uses them: `ef` candidates re-ranked exactly on the f32 vectors.
//!
//! Build times are medians of `ANNVAULT_BENCH_RUNS` builds (default 3);
//! µs/query are medians of at least 5 passes over the queries (searching
//! is cheap, and this machine is noisy). The Markdown table goes to stdout,
//! progress to stderr.

mod common;

use std::time::{Duration, Instant};

use annvault_core::distance;
use annvault_core::flat::{self, VectorArena};
use annvault_core::testing::{self, Vectors};
use annvault_core::Distance as Metric;
use common::{Clusters, Rng};
use hnsw_rs::anndists::dist::Distance;
use hnsw_rs::hnsw::Hnsw;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

const M: usize = 16;
const EF_CONSTRUCTION: usize = 100;
const THREADS: usize = 2;
const K: usize = 10;
const SELF_FIND_EF: usize = 64;
const EFS: [usize; 7] = [16, 24, 32, 48, 64, 96, 128];
const DIM: usize = 384;

// ---------------------------------------------------------------- data

/// The vectors, and where they come from.
struct Dataset {
    description: String,
    vectors: Vectors,
}

fn synthetic(points: usize, queries: usize, clusters: usize) -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng(42);
    // Noise of norm ~0.75 around a unit centre: neighbours within a cluster
    // are close but not trivially so.
    let clusters = Clusters::new(&mut rng, clusters, DIM, 0.75);
    let mut sample = |count: usize| -> Vec<f32> {
        let mut out = Vec::with_capacity(count * DIM);
        for _ in 0..count {
            let centre = rng.below(clusters.len());
            out.extend(clusters.point(&mut rng, centre));
        }
        out
    };
    let points = sample(points);
    let queries = sample(queries);
    (points, queries)
}

fn load() -> Dataset {
    let folder = testing::real_text_folder();
    match folder.as_deref().map(testing::read_real_text) {
        Some(Ok(vectors)) if !vectors.is_empty() && vectors.queries().next().is_some() => Dataset {
            description: format!("real text, {}", folder.unwrap_or_default().display()),
            vectors,
        },
        other => {
            let why = match other {
                Some(Err(e)) => e.to_string(),
                Some(Ok(_)) => "empty file".to_owned(),
                None => "not found".to_owned(),
            };
            eprintln!(
                "real-text dataset not usable ({why}): using a SYNTHETIC clustered set instead"
            );
            let (docs, queries) = synthetic(20_000, 500, 64);
            Dataset {
                description: "SYNTHETIC: 64 Gaussian clusters, seed 42".into(),
                vectors: Vectors {
                    dim: DIM,
                    docs,
                    queries,
                },
            }
        }
    }
}

// ---------------------------------------------------------------- engines

/// Cosine distance of unit vectors, clamped at 0: `hnsw_rs`'s own `DistDot`
/// asserts `dot >= 0` after `1 - dot` and panics when a dot rounds above 1.
#[derive(Default, Clone, Copy)]
struct CosineDistance;

impl Distance<f32> for CosineDistance {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - distance::dot(a, b)).max(0.0)
    }
}

enum Graph {
    HnswRs(Hnsw<'static, f32, CosineDistance>),
    Usearch(Index),
}

/// How a search turns a width `ef` into the 10 results.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The engine's own top-k at width `ef`.
    Native,
    /// `ef` candidates from the graph, re-ranked exactly on f32 vectors.
    Rerank,
}

struct Engine<'a> {
    graph: &'a Graph,
    mode: Mode,
    arena: &'a VectorArena,
}

impl Engine<'_> {
    /// The ids of the best `k` at width `ef`, best first.
    fn search(&self, query: &[f32], k: usize, ef: usize) -> Vec<u64> {
        match (self.graph, self.mode) {
            (Graph::HnswRs(h), _) => h
                .search(query, k, ef.max(k))
                .into_iter()
                .map(|n| n.d_id as u64)
                .collect(),
            (Graph::Usearch(index), Mode::Native) => {
                index.change_expansion_search(ef);
                match index.search(query, k) {
                    Ok(found) => found.keys,
                    Err(e) => panic!("usearch search failed: {e}"),
                }
            }
            (Graph::Usearch(index), Mode::Rerank) => {
                index.change_expansion_search(1);
                let candidates = match index.search(query, ef.max(k)) {
                    Ok(found) => found.keys,
                    Err(e) => panic!("usearch search failed: {e}"),
                };
                flat::rank(
                    self.arena,
                    Metric::Dot,
                    query,
                    k,
                    candidates.into_iter().map(|key| key as u32),
                )
                .into_iter()
                .map(|(slot, _)| slot as u64)
                .collect()
            }
        }
    }
}

fn build_hnsw_rs(data: &Vectors) -> Graph {
    let n = data.len();
    let hnsw = Hnsw::new(M, n, 16, EF_CONSTRUCTION, CosineDistance);
    let items: Vec<(&[f32], usize)> = (0..n).map(|i| (data.doc(i), i)).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(THREADS)
        .build()
        .expect("rayon pool");
    pool.install(|| hnsw.parallel_insert_slice(&items));
    let mut hnsw = hnsw;
    hnsw.set_searching_mode(true);
    Graph::HnswRs(hnsw)
}

fn build_usearch(data: &Vectors, quantization: ScalarKind) -> Graph {
    let n = data.len();
    let options = IndexOptions {
        dimensions: data.dim,
        metric: MetricKind::IP,
        quantization,
        connectivity: M,
        expansion_add: EF_CONSTRUCTION,
        expansion_search: SELF_FIND_EF,
        multi: false,
    };
    let index = Index::new(&options).expect("usearch index");
    index
        .reserve_capacity_and_threads(n, THREADS)
        .expect("usearch reserve");
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let index = &index;
            scope.spawn(move || {
                for i in (t..n).step_by(THREADS) {
                    index.add(i as u64, data.doc(i)).expect("usearch add");
                }
            });
        }
    });
    assert_eq!(index.size(), n, "usearch lost points");
    Graph::Usearch(index)
}

// ---------------------------------------------------------------- measures

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn runs() -> usize {
    std::env::var("ANNVAULT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(3)
}

/// Exact top-k of every query (dot product of unit vectors = cosine).
fn ground_truth(arena: &VectorArena, data: &Vectors) -> Vec<Vec<u64>> {
    let queries: Vec<&[f32]> = data.queries().collect();
    let half = queries.len().div_ceil(THREADS);
    std::thread::scope(|scope| {
        let parts: Vec<_> = queries
            .chunks(half.max(1))
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|q| {
                            flat::search(arena, Metric::Dot, q, K, |_| true)
                                .into_iter()
                                .map(|(slot, _)| slot as u64)
                                .collect::<Vec<u64>>()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().expect("ground truth thread"))
            .collect()
    })
}

/// Points whose own vector does not come back first (k = 1 at `ef`);
/// a different point exactly as close (a duplicate) counts as found.
/// Returns (misses, ties).
fn self_find(engine: &Engine, data: &Vectors, ef: usize) -> (usize, usize) {
    let n = data.len();
    let counts: Vec<(usize, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || {
                    let (mut misses, mut ties) = (0, 0);
                    for i in (t..n).step_by(THREADS) {
                        let q = data.doc(i);
                        match engine.search(q, 1, ef).first() {
                            Some(&top) if top == i as u64 => {}
                            Some(&top) if (top as usize) < n => {
                                let other = data.doc(top as usize);
                                if other == q || distance::dot(q, other) >= distance::dot(q, q) {
                                    ties += 1;
                                } else {
                                    misses += 1;
                                }
                            }
                            _ => misses += 1,
                        }
                    }
                    (misses, ties)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("self-find thread"))
            .collect()
    });
    counts
        .into_iter()
        .fold((0, 0), |(m, t), (a, b)| (m + a, t + b))
}

/// Recall@k and the median µs/query at each width in `efs`, over `runs`
/// passes of all queries one at a time. The passes go round the widths in
/// turn, so a burst of load elsewhere on the machine hits one pass of
/// several widths rather than every pass of one.
fn recall_and_latency(
    engine: &Engine,
    data: &Vectors,
    truth: &[Vec<u64>],
    efs: &[usize],
    runs: usize,
) -> Vec<(f64, f64)> {
    let queries: Vec<&[f32]> = data.queries().collect();
    let mut recalls = vec![0.0; efs.len()];
    let mut times = vec![Vec::with_capacity(runs); efs.len()];
    for run in 0..runs {
        for (i, &ef) in efs.iter().enumerate() {
            let mut out = Vec::with_capacity(queries.len());
            let start = Instant::now();
            for q in &queries {
                out.push(engine.search(q, K, ef));
            }
            times[i].push(start.elapsed().as_secs_f64() * 1e6 / queries.len() as f64);
            if run == 0 {
                let found: usize = out
                    .iter()
                    .zip(truth)
                    .map(|(got, want)| got.iter().filter(|id| want.contains(id)).count())
                    .sum();
                recalls[i] = found as f64 / (truth.len() * K) as f64;
            }
        }
    }
    recalls
        .into_iter()
        .zip(times.into_iter().map(median))
        .collect()
}

struct Row {
    engine: String,
    ef: usize,
    recall: f64,
    us_per_query: f64,
}

struct Summary {
    engine: String,
    build: Duration,
    fastest_build: Duration,
    rate: f64,
    misses: usize,
    ties: usize,
    at: Vec<(usize, f64, f64)>,
}

fn main() {
    // `cargo bench` passes `--bench`; accept and ignore harness flags.
    let runs = runs();
    let Dataset {
        description,
        vectors: data,
    } = load();
    let n = data.len();
    let norms: f64 = (0..n)
        .map(|i| distance::dot(data.doc(i), data.doc(i)).sqrt() as f64)
        .sum::<f64>()
        / n as f64;
    eprintln!(
        "dataset: {} — {n} points × {}, {} queries, mean norm {norms:.4}; {runs} builds per engine, {} search passes",
        description,
        data.dim,
        data.queries().count(),
        runs.max(5)
    );

    let mut arena = VectorArena::new(data.dim);
    arena.reserve(n);
    for i in 0..n {
        arena.push(data.doc(i));
    }
    let t = Instant::now();
    let truth = ground_truth(&arena, &data);
    eprintln!("ground truth: {:.2} s", t.elapsed().as_secs_f64());

    type Builder<'a> = Box<dyn Fn() -> Graph + 'a>;
    let builders: Vec<(&str, Builder<'_>, &[Mode])> = vec![
        (
            "hnsw_rs f32",
            Box::new(|| build_hnsw_rs(&data)),
            &[Mode::Native],
        ),
        (
            "usearch f32",
            Box::new(|| build_usearch(&data, ScalarKind::F32)),
            &[Mode::Native],
        ),
        (
            "usearch f16",
            Box::new(|| build_usearch(&data, ScalarKind::F16)),
            &[Mode::Native, Mode::Rerank],
        ),
        (
            "usearch i8",
            Box::new(|| build_usearch(&data, ScalarKind::I8)),
            &[Mode::Native, Mode::Rerank],
        ),
    ];

    let mut rows = Vec::new();
    let mut summaries = Vec::new();
    for (name, build, modes) in &builders {
        let mut times = Vec::with_capacity(runs);
        let mut graph = None;
        for run in 0..runs {
            // The previous graph goes first: one in memory at a time.
            drop(graph.take());
            let start = Instant::now();
            graph = Some(build());
            let elapsed = start.elapsed().as_secs_f64();
            eprintln!("{name}: build {} of {runs}: {elapsed:.2} s", run + 1);
            times.push(elapsed);
        }
        let Some(graph) = graph else { continue };
        if let Graph::Usearch(index) = &graph {
            eprintln!(
                "{name}: usearch kernels {}, memory {:.1} MiB",
                index.hardware_acceleration(),
                index.memory_usage() as f64 / (1 << 20) as f64
            );
        }
        let fastest = times.iter().copied().fold(f64::INFINITY, f64::min);
        let build_secs = median(times);
        for &mode in *modes {
            let label = match mode {
                Mode::Native => (*name).to_owned(),
                Mode::Rerank => format!("{name} + f32 re-rank"),
            };
            let engine = Engine {
                graph: &graph,
                mode,
                arena: &arena,
            };
            let (misses, ties) = self_find(&engine, &data, SELF_FIND_EF);
            eprintln!("{label}: self-find misses {misses} (ties ignored: {ties})");
            let mut at = Vec::new();
            let measured = recall_and_latency(&engine, &data, &truth, &EFS, runs.max(5));
            for (ef, (recall, us)) in EFS.into_iter().zip(measured) {
                eprintln!("{label}: ef {ef}: recall@{K} {recall:.4}, {us:.1} µs/query");
                rows.push(Row {
                    engine: label.clone(),
                    ef,
                    recall,
                    us_per_query: us,
                });
                at.push((ef, recall, us));
            }
            summaries.push(Summary {
                engine: label,
                build: Duration::from_secs_f64(build_secs),
                fastest_build: Duration::from_secs_f64(fastest),
                rate: n as f64 / build_secs,
                misses,
                ties,
                at,
            });
        }
    }

    println!(
        "## Graph engines: {} ({n} × {}, {} queries)\n",
        description,
        data.dim,
        truth.len()
    );
    println!(
        "M {M}, efConstruction {EF_CONSTRUCTION}, build on {THREADS} threads, search on 1 thread \
         one query at a time, k = {K}; build times are medians of {runs} builds, µs/query \
         medians of {} passes over the queries.\n",
        runs.max(5)
    );
    println!("| engine | ef | recall@{K} | µs/query |");
    println!("|---|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.4} | {:.1} |",
            r.engine, r.ef, r.recall, r.us_per_query
        );
    }
    println!();
    for s in &summaries {
        let at = |ef: usize| {
            s.at.iter()
                .find(|(e, _, _)| *e == ef)
                .map_or_else(String::new, |(_, r, us)| {
                    format!("ef {ef}: recall {r:.4} at {us:.1} µs")
                })
        };
        println!(
            "- **{}**: build {:.2} s ({:.0} points/s; fastest run {:.2} s), self-find misses {} of {n} \
             (ties {}), {}; {}",
            s.engine,
            s.build.as_secs_f64(),
            s.rate,
            s.fastest_build.as_secs_f64(),
            s.misses,
            s.ties,
            at(32),
            at(64)
        );
    }
}

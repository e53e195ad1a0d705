//! What "every stored point is findable" costs (issue 21): a point counts as
//! found when a search for its own vector ranks it exactly (it is among the
//! graph candidates a search re-ranks), or when duplicates of it, tied with
//! it, take its place. Pinning is for the rest, and must stay rare.

use std::sync::Arc;
use std::time::Duration;

use annvault_core::storage::fs::OsStorage;
use annvault_core::testing::{self, Clusters, Rng};
use annvault_core::{
    Algorithm, AnnConfig, CollectionConfig, Distance, Filter, Payload, PointBatch, PointId, Store,
};

const DIM: usize = 384;

fn store(dir: &std::path::Path) -> Store {
    store_in_pieces(dir, annvault_core::ann::DEFAULT_AUDIT_PIECE)
}

/// A store whose audits search `audit_piece` labels per step.
fn store_in_pieces(dir: &std::path::Path, audit_piece: usize) -> Store {
    let ann = AnnConfig {
        algorithm: Algorithm::Hnsw,
        audit_piece,
        ..AnnConfig::default()
    };
    open(dir, "f", DIM, ann)
}

/// A persistent Cosine collection of `dim` in `dir` (no automatic checkpoints).
fn open(dir: &std::path::Path, name: &str, dim: usize, ann: AnnConfig) -> Store {
    let config = CollectionConfig::new(dim, Distance::Cosine, None).unwrap();
    Store::open(testing::store_options(
        name,
        config,
        ann,
        Some(testing::persistence(
            Arc::new(OsStorage),
            dir,
            testing::no_auto_checkpoint(annvault_core::storage::directory::Durability::Flush),
        )),
    ))
    .unwrap()
}

fn insert(store: &Store, vectors: &[f32]) {
    let n = vectors.len() / DIM;
    let batch = PointBatch::new(
        DIM,
        (0..n as i64).map(PointId::Int).collect(),
        vectors.to_vec(),
        &vec![DIM as u32; n],
        vec![Payload::new(); n],
    )
    .unwrap();
    store.insert(store.ticket(), batch).unwrap();
    assert!(store.wait_for_index(Duration::from_secs(600)).unwrap());
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn exact_duplicates_pin_nothing_and_are_found_with_their_score() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let mut rng = Rng(21);
    // 400 distinct vectors, each stored 8 times: more copies than the
    // narrow search's window, as repeated boilerplate chunks are.
    let distinct: Vec<Vec<f32>> = (0..400).map(|_| rng.unit_vector(DIM)).collect();
    let vectors: Vec<f32> = (0..3200).flat_map(|i| distinct[i % 400].clone()).collect();
    insert(&store, &vectors);
    let index = store.stats().unwrap().index;
    assert_eq!(index.pinned, 0, "{index:?}");
    for i in 0..3200 {
        let query = &vectors[i * DIM..(i + 1) * DIM];
        let hit = &store.search(query, 1, &Filter::default()).unwrap()[0];
        let PointId::Int(j) = hit.id else {
            panic!("int ids")
        };
        // This point or one of its copies: the same vector, the same score.
        assert_eq!(j as usize % 400, i % 400, "point {i}");
        assert!(hit.score >= dot(query, query) - 1e-5);
    }
}

#[test]
fn clustered_points_pin_under_half_a_percent_and_every_one_is_found() {
    clustered_points_are_found(annvault_core::ann::DEFAULT_AUDIT_PIECE);
}

/// The same audited 1,500 labels at a time: the pieces reach every label.
#[test]
fn clustered_points_audited_in_pieces_are_every_one_found() {
    clustered_points_are_found(1500);
}

fn clustered_points_are_found(audit_piece: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in_pieces(dir.path(), audit_piece);
    let mut rng = Rng(2021);
    let n = 12_000;
    let clusters = Clusters::new(&mut rng, 32, DIM, 0.6);
    let vectors = clusters.points(&mut rng, n, |i| i);
    insert(&store, &vectors);
    let index = store.stats().unwrap().index;
    assert!(
        index.pinned * 200 <= n,
        "{} pinned of {n}: {index:?}",
        index.pinned
    );
    for i in 0..n {
        let query = &vectors[i * DIM..(i + 1) * DIM];
        let hit = &store.search(query, 1, &Filter::default()).unwrap()[0];
        assert!(
            hit.id == PointId::Int(i as i64) || hit.score >= dot(query, query) - 1e-6,
            "point {i} not found by its own vector: {hit:?}"
        );
    }
}

/// Noisy clusters in 64 dimensions and a graph of 4 links per node: a
/// graph far too sparse for its data, weak everywhere rather than in a few
/// places, as `m` 16 is on 300,000 noisy 384-dimension points.
#[test]
fn a_weak_graph_is_rebuilt_with_more_links_and_leaves_fewer_points_unreachable() {
    weak_graph(annvault_core::ann::DEFAULT_AUDIT_PIECE);
}

/// The same audited a piece of 1,000 labels at a time: the full audits of
/// the weak graph go on over many steps, and their pins replace the
/// pinned set only when the last piece ends.
#[test]
fn audits_in_pieces_repair_a_weak_graph_as_whole_audits_do() {
    weak_graph(1000);
}

fn weak_graph(audit_piece: usize) {
    use annvault_core::ann::{self, Graph, HnswParams};
    let dim = 64;
    let n = 16_000;
    let m = 4;
    let mut rng = Rng(4221);
    let clusters = Clusters::new(&mut rng, 16, dim, 1.2);
    let vectors = clusters.points(&mut rng, n, |i| i);
    let hnsw = HnswParams {
        m,
        ef_construction: 40,
        ..HnswParams::default()
    };
    let ann_config = AnnConfig {
        algorithm: Algorithm::Hnsw,
        hnsw,
        audit_piece,
        ..AnnConfig::default()
    };

    // Plain insertion: the same points, the same parameters, one graph.
    let engine = ann::new_engine(&ann_config, Distance::Cosine, dim, n).unwrap();
    let graph = Graph::new(engine, 0, 0, Vec::new());
    let prepared: Vec<(usize, Vec<f32>)> = (0..n)
        .map(|i| {
            let v = &vectors[i * dim..(i + 1) * dim];
            let norm = dot(v, v).sqrt();
            (i, v.iter().map(|x| x / norm).collect())
        })
        .collect();
    graph.insert(&prepared, &|| false).unwrap();
    let plain = graph
        .unreachable(&prepared, hnsw.ef_search, &|| true)
        .unwrap()
        .len();

    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), "weak", dim, ann_config);
    for from in (0..n).step_by(2000) {
        let batch = PointBatch::new(
            dim,
            (from..from + 2000)
                .map(|i| PointId::Int(i as i64))
                .collect(),
            vectors[from * dim..(from + 2000) * dim].to_vec(),
            &vec![dim as u32; 2000],
            vec![Payload::new(); 2000],
        )
        .unwrap();
        store.insert(store.ticket(), batch).unwrap();
    }
    assert!(store.wait_for_index(Duration::from_secs(600)).unwrap());
    let index = store.stats().unwrap().index;
    // Points the graph still does not reach, pinned or past the budget.
    let left = index.pinned + index.unfindable;
    eprintln!("plain insertion: {plain} of {n} unreachable; repaired: {left} ({index:?})");
    assert!(
        plain * 1000 > 3 * n,
        "the data should make m {m} weak: {plain} unreachable"
    );
    assert!(index.connectivity.unwrap() > m, "{index:?}");
    assert!(index.full_audits + index.rechecks > 0, "{index:?}");
    assert!(
        index.pinned * 200 <= n.max(12_800),
        "over the budget: {index:?}"
    );
    // Re-inserting alone reaches about a third of the points (measured).
    assert!(
        left * 5 < plain,
        "{left} still unreachable, plain insertion leaves {plain}"
    );
    // What a search misses after the repair: the points past the pin budget,
    // and points cut off after their audit that no sampled recheck caught.
    let missed = (0..n)
        .filter(|&i| {
            let query = &vectors[i * dim..(i + 1) * dim];
            let hit = &store.search(query, 1, &Filter::default()).unwrap()[0];
            hit.id != PointId::Int(i as i64) && hit.score < dot(query, query) - 1e-5
        })
        .count();
    eprintln!("a search for their own vector misses {missed} of {n}");
    assert!(
        missed * 10 < plain,
        "{missed} missed, plain insertion leaves {plain}"
    );
}

/// Points a graph misses in their thousands (3-d points on a curve, i8
/// codes): the audit reissues them, which leaves tombstones. Those must not
/// start another rebuild, whose audit would reissue them again, forever
/// (before the fix: 14 builds in 20 s and never settled). Rebuilds with
/// more links, which the audits ask for on such a graph, are bounded.
#[test]
fn repairs_do_not_start_rebuilds_so_a_hard_graph_settles() {
    hard_graph_settles(annvault_core::ann::DEFAULT_AUDIT_PIECE);
}

/// The same audited 2,500 labels at a time.
#[test]
fn a_hard_graph_audited_in_pieces_settles() {
    hard_graph_settles(2500);
}

fn hard_graph_settles(audit_piece: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut ann = AnnConfig {
        algorithm: Algorithm::Hnsw,
        audit_piece,
        ..AnnConfig::default()
    };
    // i8 codes, asked for: 'auto' keeps f32 at 3 dimensions, where a graph misses nothing.
    ann.hnsw.quantization = annvault_core::Quantization::I8;
    let store = open(dir.path(), "curve", 3, ann);
    let n = 20_000;
    let vectors: Vec<f32> = (0..n)
        .flat_map(|i| {
            let t = i as f32;
            [t.sin(), (1.3 * t).cos(), (0.7 * t).sin()]
        })
        .collect();
    let batch = PointBatch::new(
        3,
        (0..n as i64).map(PointId::Int).collect(),
        vectors,
        &vec![3; n],
        vec![Payload::new(); n],
    )
    .unwrap();
    store.insert(store.ticket(), batch).unwrap();
    assert!(
        store.wait_for_index(Duration::from_secs(300)).unwrap(),
        "{:?}",
        store.stats().unwrap().index
    );
    let index = store.stats().unwrap().index;
    assert!(
        index.reinserted > 0,
        "the data should need repairs: {index:?}"
    );
    assert!(index.builds <= 4, "{index:?}");
    assert!(index.tombstones <= index.reinserted, "{index:?}");
}

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
    let config = CollectionConfig::new(DIM, Distance::Cosine, None).unwrap();
    let ann = AnnConfig {
        algorithm: Algorithm::Hnsw,
        ..AnnConfig::default()
    };
    Store::open(testing::store_options(
        "f",
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
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
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

//! A clean close (and an explicit checkpoint) leaves a graph that covers
//! every point, so the next open searches the whole graph from its first
//! query instead of scanning a tail the indexer had not reached (issue 13).

mod common;

use std::sync::Arc;
use std::time::Duration;

use annvault_core::storage::fs::OsStorage;
use annvault_core::{
    AnnConfig, CollectionConfig, Distance, Filter, Payload, PointBatch, PointId, Store,
};
use common::*;

const DIM: usize = 32;

fn store_options(root: &std::path::Path) -> annvault_core::StoreOptions {
    let mut o = options(Arc::new(OsStorage), root, durable());
    o.config = CollectionConfig::new(DIM, Distance::Cosine, None).unwrap();
    o.ann = AnnConfig {
        min_dataset_size: 1000,
        ..AnnConfig::default()
    };
    o
}

fn open(root: &std::path::Path) -> Store {
    Store::open(store_options(root)).unwrap()
}

/// [`open`], waiting (up to a minute) for a dropped store's threads to let
/// go of the directory's lock.
fn open_when_free(root: &std::path::Path) -> Store {
    let o = store_options(root);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match Store::open(o.clone()) {
            Err(annvault_core::Error::InUse { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other.unwrap(),
        }
    }
}

fn point(i: usize) -> Vec<f32> {
    (0..DIM)
        .map(|d| ((i * DIM + d) as f32 * 0.618).sin() + ((i * 7 + d * 3) as f32 * 0.1).cos())
        .collect()
}

fn insert(store: &Store, range: std::ops::Range<usize>) {
    for chunk in range.collect::<Vec<_>>().chunks(1000) {
        let batch = PointBatch::new(
            DIM,
            chunk.iter().map(|&i| PointId::Int(i as i64)).collect(),
            chunk.iter().flat_map(|&i| point(i)).collect(),
            &vec![DIM as u32; chunk.len()],
            vec![Payload::new(); chunk.len()],
        )
        .unwrap();
        store.insert(store.ticket(), batch).unwrap();
    }
}

/// The reopened store's graph was loaded, not rebuilt, and holds every
/// point: no tail to scan, and each point is found by its own vector.
fn assert_complete_from_the_first_query(store: &Store, live: &[usize]) {
    let stats = store.stats().unwrap();
    assert!(stats.index.loaded_from_disk, "{:?}", stats.index);
    assert_eq!(stats.index.algorithm, "hnsw");
    assert_eq!(stats.index.unindexed, 0, "{:?}", stats.index);
    assert_eq!(stats.count, live.len());
    for &i in live.iter().step_by(97) {
        let hits = store.search(&point(i), 1, &Filter::default()).unwrap();
        assert_eq!(hits[0].id, PointId::Int(i as i64));
    }
}

#[test]
fn a_close_right_after_an_ingest_saves_a_graph_of_every_point() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    insert(&store, 0..12_000);
    // No wait_for_index: the indexer is still taking the points in.
    store.close(store.ticket()).unwrap();
    drop(store);
    let store = open(dir.path());
    assert_complete_from_the_first_query(&store, &(0..12_000).collect::<Vec<_>>());
}

#[test]
fn a_close_during_a_rebuild_saves_the_rebuilt_graph_complete() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    insert(&store, 0..6_000);
    assert!(store.wait_for_index(Duration::from_secs(600)).unwrap());
    let delete = |range: std::ops::Range<usize>| {
        for i in range {
            store
                .delete(store.ticket(), &PointId::Int(i as i64))
                .unwrap();
        }
    };
    // 1,000 tombstones of 6,000: under the rebuild fraction (a fifth)...
    delete(0..1_000);
    assert!(store.wait_for_index(Duration::from_secs(600)).unwrap());
    // (Plus the old labels of the few points an audit inserted again.)
    let tombstones = store.stats().unwrap().index.tombstones;
    assert!((1_000..1_200).contains(&tombstones), "{tombstones}");
    // ...then past it, and a close at once, while the indexer rebuilds.
    delete(1_000..1_300);
    store.close(store.ticket()).unwrap();
    store.reopen(store.ticket()).unwrap();
    let live: Vec<usize> = (1_300..6_000).collect();
    assert_complete_from_the_first_query(&store, &live);
    let index = store.stats().unwrap().index;
    // The graph saved is the rebuilt one: at most the deletes that came
    // after the rebuild began are tombstones in it.
    assert!(index.tombstones < 300, "{index:?}");
    assert_eq!(index.graph_size, live.len() + index.tombstones);
}

#[test]
fn an_explicit_checkpoint_saves_a_complete_graph_that_a_crash_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    insert(&store, 0..8_000);
    store.checkpoint(store.ticket()).unwrap();
    // A crash: no close, so only the checkpoint's graph is on disk. (The
    // wait lets the indexer finish its audits and let go of the store, so
    // that the drop unlocks it; it saves nothing.)
    assert!(store.wait_for_index(Duration::from_secs(600)).unwrap());
    drop(store);
    let store = open(dir.path());
    assert_complete_from_the_first_query(&store, &(0..8_000).collect::<Vec<_>>());
}

#[test]
fn a_close_with_no_new_writes_still_saves_what_the_indexer_added() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(Arc::new(OsStorage), dir.path(), durable());
    o.config = CollectionConfig::new(DIM, Distance::Cosine, None).unwrap();
    // A checkpoint that does not wait for the indexer (a background one
    // behaves so): its graph may miss the newest points...
    o.ann.close_wait = Duration::ZERO;
    let store = Store::open(o).unwrap();
    insert(&store, 0..10_000);
    store.checkpoint(store.ticket()).unwrap();
    // Only the checkpoint's graph is on disk; the one in memory completes
    // (and the indexer lets go of the store, so the drop unlocks it).
    assert!(store.wait_for_index(Duration::from_secs(600)).unwrap());
    drop(store);
    // ...which the next process indexes, then closes without writing:
    // nothing for a new snapshot, but the graph is saved again. (The
    // indexer's thread may still be on its way out of its last step: the
    // lock is free once it is.)
    let store = open_when_free(dir.path());
    store.close(store.ticket()).unwrap();
    store.reopen(store.ticket()).unwrap();
    assert_complete_from_the_first_query(&store, &(0..10_000).collect::<Vec<_>>());
}

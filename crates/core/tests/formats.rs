//! The on-disk formats against committed fixtures and arbitrary bytes.
//!
//! `fixtures/v1/` holds a collection written by format version 1 (a
//! snapshot, a manifest and a WAL with records after the snapshot). It must
//! keep opening with the same contents in every later version. The readers
//! must turn any input — random, or the fixtures mutated — into `Ok` or a
//! corruption error: never a panic, never a huge allocation.
//!
//! `fixtures/minimal/` holds the smallest valid points (one-byte ids, empty
//! payloads, dimensions 1 and 4) as the code at 327ce93 wrote them: its
//! readers refused them (issue 12), and these files prove nothing written
//! before the fix is lost.
//!
//! `fixtures/v2-brotli/` is the `v1` steps written with brotli snapshots
//! (format version 2, flag bit 1).
//!
//! Fixtures are written by a tool, never by a test, and never rewritten:
//! `cargo run -p annvault-core --example write_fixtures -- <set>`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use annvault_core::op::decode_record;
use annvault_core::storage::fs::OsStorage;
use annvault_core::storage::manifest::Manifest;
use annvault_core::storage::{snapshot, wal};
use annvault_core::{AnnConfig, CollectionConfig, Distance, Payload, PointBatch, PointId, Store};
use common::*;
use proptest::prelude::*;
use serde_json::json;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture_dir() -> PathBuf {
    fixtures().join("v1")
}

/// What `write_fixtures v1` did (see `examples/write_fixtures.rs`).
fn fixture_steps() -> Vec<Step> {
    vec![
        Step::Insert(vec![1, 2, 3, 4], 11),
        Step::Delete(2),
        Step::Checkpoint,
        Step::Update(3, 33),
        Step::Insert(vec![5, 6], 55),
        Step::Delete(6),
    ]
}

/// A copy of fixture set `set` (every collection in it), to open and change.
fn copy_set(set: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for collection in fs::read_dir(fixtures().join(set)).unwrap() {
        let collection = collection.unwrap();
        let target = dir.path().join(collection.file_name());
        fs::create_dir_all(&target).unwrap();
        for entry in fs::read_dir(collection.path()).unwrap() {
            let entry = entry.unwrap();
            fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
        }
    }
    dir
}

fn copy_fixture() -> tempfile::TempDir {
    copy_set("v1")
}

fn fixture_file(prefix: &str) -> Vec<u8> {
    let dir = fixture_dir().join("c");
    let name = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} fixture"));
    fs::read(dir.join(name)).unwrap()
}

#[test]
fn version_1_fixture_opens_with_its_contents() {
    let dir = copy_fixture();
    let store = Store::open(options(Arc::new(OsStorage), dir.path(), durable())).unwrap();
    let mut model = Contents::new();
    for step in fixture_steps() {
        step.model(&mut model);
    }
    assert_eq!(contents(&store), model);
    let stats = store.stats().unwrap();
    assert_eq!(stats.recovered_snapshot_points, 3);
    assert_eq!(stats.replayed_records, 3);
    assert_eq!(
        store
            .get(&PointId::Int(3))
            .unwrap()
            .unwrap()
            .payload
            .as_ref(),
        &payload(json!({ "updated": 33 }))
    );
}

#[test]
fn brotli_fixture_of_version_2_opens_with_the_same_contents() {
    let dir = copy_set("v2-brotli");
    let snapshot_name = fs::read_dir(dir.path().join("c"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.starts_with("snapshot-"))
        .unwrap();
    let bytes = fs::read(dir.path().join("c").join(&snapshot_name)).unwrap();
    assert_eq!(
        &bytes[8..16],
        &[2, 0, 0, 0, 2, 0, 0, 0],
        "version 2, brotli flag"
    );
    let store = Store::open(options(Arc::new(OsStorage), dir.path(), durable())).unwrap();
    let mut model = Contents::new();
    for step in fixture_steps() {
        step.model(&mut model);
    }
    assert_eq!(contents(&store), model);
    assert_eq!(store.stats().unwrap().recovered_snapshot_points, 3);
}

#[test]
fn a_corrupt_copy_of_the_fixture_is_refused_not_emptied() {
    let dir = copy_fixture();
    let wal_name = fs::read_dir(dir.path().join("c"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.starts_with("wal-"))
        .unwrap();
    let path = dir.path().join("c").join(&wal_name);
    let mut bytes = fs::read(&path).unwrap();
    let first = wal::scan(&bytes).unwrap().records[0].clone();
    bytes[first.body.start] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    let err = Store::open(options(Arc::new(OsStorage), dir.path(), durable())).unwrap_err();
    assert_eq!(err.kind(), "CORRUPT");
    let details = err.details();
    assert_eq!(details["offset"], first.offset);
    assert!(details["file"].as_str().unwrap().ends_with(&wal_name));
}

fn readers_accept_or_refuse(bytes: &[u8]) {
    if let Ok(scan) = wal::scan(bytes) {
        for record in &scan.records {
            assert!(record.body.end <= bytes.len());
            let _ = decode_record(record.op, &bytes[record.body.clone()]);
        }
    }
    let _ = snapshot::decode(bytes);
    let _ = Manifest::decode(bytes);
    for code in 0..=6 {
        let _ = decode_record(code, bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_a_reader(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        readers_accept_or_refuse(&bytes);
    }

    #[test]
    fn mutated_fixtures_never_panic_a_reader(
        which in 0usize..3,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = fixture_file(["wal-", "snapshot-", "MANIFEST"][which]);
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let len = cut.index(bytes.len() + 1);
        readers_accept_or_refuse(&bytes[..len]);
    }
}

#[test]
fn huge_counts_in_headers_are_refused_before_allocating() {
    let mut bytes = fixture_file("snapshot-");
    // count := u64::MAX, then fix the header checksum so only the count is wrong.
    bytes[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[0..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    let (offset, reason) = snapshot::decode(&bytes).unwrap_err();
    assert_eq!(offset, 32, "{reason}");

    let mut record = Vec::new();
    record.extend_from_slice(&u32::MAX.to_le_bytes()); // count
    record.extend_from_slice(&4u32.to_le_bytes()); // dim
    assert!(decode_record(1, &record).is_err());
}

fn open_collection(root: &Path, name: &str, dimension: usize, distance: Distance) -> Store {
    let mut o = options(Arc::new(OsStorage), root, durable());
    o.name = name.into();
    o.config = CollectionConfig::new(dimension, distance, None).unwrap();
    Store::open(o).unwrap()
}

#[test]
fn minimal_points_written_before_the_fix_open_with_every_point() {
    let dir = copy_set("minimal");
    for (name, dimension, distance) in [("d1", 1, Distance::Cosine), ("d4", 4, Distance::Euclidean)]
    {
        let point = |value: f32| -> Vec<f32> { (0..dimension).map(|d| value + d as f32).collect() };
        let expected: Contents = [("a", 5.0), ("c", 3.0), ("d", 4.0)]
            .into_iter()
            .map(|(id, value)| (PointId::Str(id.into()), (point(value), json!({}))))
            .collect();
        let store = open_collection(dir.path(), name, dimension, distance);
        assert_eq!(contents(&store), expected, "{name}");
        let stats = store.stats().unwrap();
        // From the snapshot (a, b, c) and the WAL after it (insert, update, delete).
        assert_eq!(stats.recovered_snapshot_points, 3, "{name}");
        assert_eq!(stats.replayed_records, 3, "{name}");
        // And again from the snapshot this version writes on close.
        store.close(store.ticket()).unwrap();
        store.reopen(store.ticket()).unwrap();
        assert_eq!(contents(&store), expected, "{name} after a checkpoint");
    }
}

fn edge_point(dim: usize) -> impl Strategy<Value = (PointId, Vec<f32>, serde_json::Value)> {
    let id = prop_oneof![
        "[a-zé]{1,3}".prop_map(|s| PointId::Str(s.into())),
        (1usize..=annvault_core::MAX_ID_BYTES).prop_map(|n| PointId::Str("q".repeat(n).into())),
        any::<i32>().prop_map(|n| PointId::Int(n.into())),
    ];
    let payload = prop_oneof![
        4 => Just(json!({})),
        1 => ".{0,40}".prop_map(|s| json!({ "s": s })),
        1 => (0usize..70_000).prop_map(|n| json!({ "big": "b".repeat(n) })),
    ];
    let vector = prop::collection::vec(any::<f32>().prop_filter("finite", |x| x.is_finite()), dim);
    (id, vector, payload)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Whatever the snapshot writer writes, its reader reads back identical:
    /// the smallest points and the largest, every id kind, both compressions.
    #[test]
    fn snapshots_read_back_what_was_written(
        (dim, points) in prop_oneof![3 => 1usize..5, 1 => 5usize..600].prop_flat_map(|dim| {
            (Just(dim), prop::collection::vec(edge_point(dim), 0..12))
        }),
        compression in 0..3u8,
        seq in any::<u64>(),
    ) {
        let config = CollectionConfig::new(dim, Distance::Dot, None).unwrap();
        let mut collection = annvault_core::Collection::new(config);
        let mut seen = std::collections::HashSet::new();
        let points: Vec<_> = points.into_iter().filter(|p| seen.insert(p.0.clone())).collect();
        if !points.is_empty() {
            let batch = PointBatch::new(
                dim,
                points.iter().map(|p| p.0.clone()).collect(),
                points.iter().flat_map(|p| p.1.clone()).collect(),
                &vec![dim as u32; points.len()],
                points.iter().map(|p| payload(p.2.clone())).collect(),
            ).unwrap();
            collection.insert(batch).unwrap();
        }
        let compression = [
            snapshot::Compression::None,
            snapshot::Compression::Gzip,
            snapshot::Compression::Brotli,
        ][compression as usize];
        let bytes = snapshot::encode_with(&collection, seq, compression);
        let decoded = snapshot::decode(&bytes).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(decoded.seq, seq);
        prop_assert_eq!(decoded.dimension, dim);
        let read: Vec<(PointId, Vec<u32>, serde_json::Value)> = decoded
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let start = decoded.vectors_start + i * dim;
                (
                    id.clone(),
                    decoded.vectors[start..start + dim].iter().map(|x| x.to_bits()).collect(),
                    serde_json::Value::Object(decoded.payloads[i].clone()),
                )
            })
            .collect();
        let written: Vec<(PointId, Vec<u32>, serde_json::Value)> = collection
            .points()
            .map(|(id, v, p)| {
                (id.clone(), v.iter().map(|x| x.to_bits()).collect(), serde_json::Value::Object(p.as_ref().clone()))
            })
            .collect();
        prop_assert_eq!(read, written);
    }
}

/// The graph map stores an id per label: a graph over the smallest ids is
/// saved and loaded back (not rebuilt), and finds every point.
#[test]
fn a_graph_over_one_byte_ids_is_saved_and_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 8;
    let open = || {
        let mut o = options(Arc::new(OsStorage), dir.path(), durable());
        o.config = CollectionConfig::new(dim, Distance::Cosine, None).unwrap();
        o.ann = AnnConfig {
            algorithm: annvault_core::Algorithm::Hnsw,
            min_dataset_size: 1,
            ..AnnConfig::default()
        };
        Store::open(o).unwrap()
    };
    // 200 one-byte (and a few two-byte) ids, empty payloads.
    let ids: Vec<PointId> = (0u32..200)
        .map(|i| {
            let c = char::from_u32(0x21 + i % 94).unwrap();
            let id = if i < 94 {
                c.to_string()
            } else {
                format!("{c}{}", i / 94)
            };
            PointId::Str(id.into())
        })
        .collect();
    let vectors: Vec<f32> = (0..ids.len() * dim)
        .map(|k| ((k as f32) * 0.7).sin() + ((k * k) as f32 * 0.013).cos())
        .collect();
    let store = open();
    let batch = PointBatch::new(
        dim,
        ids.clone(),
        vectors.clone(),
        &vec![dim as u32; ids.len()],
        vec![Payload::new(); ids.len()],
    )
    .unwrap();
    store.insert(store.ticket(), batch).unwrap();
    assert!(store
        .wait_for_index(std::time::Duration::from_secs(600))
        .unwrap());
    store.close(store.ticket()).unwrap();
    drop(store);
    let store = open();
    let index = store.stats().unwrap().index;
    assert!(index.loaded_from_disk, "{index:?}");
    assert_eq!(index.warning, None);
    assert_eq!(index.graph_size - index.tombstones, ids.len());
    for (i, id) in ids.iter().enumerate() {
        let hits = store
            .search(&vectors[i * dim..(i + 1) * dim], 1, &Default::default())
            .unwrap();
        assert_eq!(&hits[0].id, id);
    }
}

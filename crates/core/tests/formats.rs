//! The on-disk formats against committed fixtures and arbitrary bytes.
//!
//! `fixtures/v1/` holds a collection written by format version 1 (a
//! snapshot, a manifest and a WAL with records after the snapshot). It must
//! keep opening with the same contents in every later version. The readers
//! must turn any input — random, or the fixtures mutated — into `Ok` or a
//! corruption error: never a panic, never a huge allocation.
//!
//! Regenerate the fixtures (only when the format version changes):
//! `ANNVAULT_WRITE_FIXTURES=1 cargo test -p annvault-core --test formats write_fixtures`

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use annvault_core::op::decode_record;
use annvault_core::storage::fs::{OsStorage, Storage};
use annvault_core::storage::manifest::Manifest;
use annvault_core::storage::{snapshot, wal};
use annvault_core::{PointId, Store};
use common::*;
use proptest::prelude::*;
use serde_json::json;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
}

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

#[test]
fn write_fixtures() {
    if std::env::var_os("ANNVAULT_WRITE_FIXTURES").is_none() {
        return;
    }
    let root = fixture_dir();
    let _ = fs::remove_dir_all(&root);
    let storage: Arc<dyn Storage> = Arc::new(OsStorage);
    let store = Store::open(options(storage, &root, durable())).unwrap();
    for step in fixture_steps() {
        step.run(&store).unwrap();
    }
    // No close: keep the WAL records after the snapshot.
    drop(store);
    fs::remove_file(root.join("c/LOCK")).unwrap();
}

fn copy_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("c")).unwrap();
    for entry in fs::read_dir(fixture_dir().join("c")).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), dir.path().join("c").join(entry.file_name())).unwrap();
    }
    dir
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
    let crc = crc32c_of(&bytes[0..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    let (offset, reason) = snapshot::decode(&bytes).unwrap_err();
    assert_eq!(offset, 32, "{reason}");

    let mut record = Vec::new();
    record.extend_from_slice(&u32::MAX.to_le_bytes()); // count
    record.extend_from_slice(&4u32.to_le_bytes()); // dim
    assert!(decode_record(1, &record).is_err());
}

fn crc32c_of(bytes: &[u8]) -> u32 {
    // The same checksum the formats use (crc32c, Castagnoli), bit by bit.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

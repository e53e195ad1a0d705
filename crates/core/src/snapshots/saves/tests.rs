use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::collection::PointBatch;
use crate::distance::Distance;
use crate::storage::fs::OsStorage;
use crate::storage::sim::SimStorage;
use crate::testing::{payload, Rng};

const DIM: usize = 16;

fn config() -> CollectionConfig {
    CollectionConfig::new(DIM, Distance::Cosine, None).unwrap()
}

fn vector(rng: &mut Rng) -> Vec<f32> {
    (0..DIM)
        .map(|_| rng.below(1000) as f32 / 100.0 - 5.0)
        .collect()
}

fn filled(n: usize, rng: &mut Rng) -> Collection {
    let mut c = Collection::new(config());
    let ids: Vec<PointId> = (0..n as i64)
        .map(|i| {
            if i % 3 == 0 {
                PointId::Str(format!("s{i}").into())
            } else {
                PointId::Int(i)
            }
        })
        .collect();
    let vectors: Vec<f32> = (0..n).flat_map(|_| vector(rng)).collect();
    let payloads = (0..n)
        .map(|i| payload(json!({ "i": i, "t": "x" })))
        .collect();
    c.insert(PointBatch::new(DIM, ids, vectors, &vec![DIM as u32; n], payloads).unwrap())
        .unwrap();
    c
}

/// The collection's points as a sorted map, for exact comparison.
fn model(c: &Collection) -> BTreeMap<String, (Vec<u32>, String)> {
    c.points()
        .map(|(id, v, p)| {
            (
                format!("{id:?}"),
                (
                    v.iter().map(|x| x.to_bits()).collect(),
                    serde_json::to_string(p.as_ref()).unwrap(),
                ),
            )
        })
        .collect()
}

/// Inserts, updates and deletes about `percent` % of the points.
fn churn(c: &mut Collection, percent: usize, rng: &mut Rng, next: &mut i64) {
    let n = (c.len() * percent / 100).max(3);
    let ids: Vec<PointId> = c.points().map(|(id, _, _)| id.clone()).collect();
    for k in 0..n {
        match k % 3 {
            0 => {
                let id = &ids[rng.below(ids.len())];
                if c.slot_of(id).is_some() {
                    c.update(id, &vector(rng), payload(json!({ "updated": k })))
                        .unwrap();
                }
            }
            1 => {
                c.delete(&ids[rng.below(ids.len())]);
            }
            _ => {
                *next += 1;
                let batch = PointBatch::new(
                    DIM,
                    vec![PointId::Int(*next)],
                    vector(rng),
                    &[DIM as u32],
                    vec![payload(json!({ "new": *next }))],
                )
                .unwrap();
                c.insert(batch).unwrap();
            }
        }
    }
}

fn open(dir: &Path, format: Format, compression: Compression) -> SaveDir {
    SaveDir::open(Arc::new(OsStorage), dir, format, compression).unwrap()
}

fn silent() -> Reporter {
    Reporter::silent("save")
}

#[test]
fn incremental_saves_reproduce_the_state_under_inserts_updates_and_deletes() {
    for (format, compression) in [
        (Format::Msgpack, Compression::None),
        (Format::Json, Compression::Gzip),
        (Format::Sqlite, Compression::Brotli),
        (Format::Annvault, Compression::None),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let saves = open(tmp.path(), format, compression);
        let mut rng = Rng(7);
        let mut c = filled(600, &mut rng);
        let mut next = 10_000;
        assert_eq!(saves.save(&c, &mut silent()).unwrap().kind, "full");
        for round in 0..4 {
            churn(&mut c, 2, &mut rng, &mut next);
            let s = saves.save_incremental(&c, &mut silent()).unwrap();
            assert_eq!(
                s.kind, "incremental",
                "{format:?} round {round}: {:?}",
                s.reason
            );
            assert_eq!(s.chain_files, round + 2);
        }
        assert_eq!(
            saves.save_incremental(&c, &mut silent()).unwrap().kind,
            "unchanged"
        );
        let (loaded, _) = saves.load(&config(), &mut silent()).unwrap();
        assert_eq!(model(&loaded), model(&c), "{format:?}");
        // And from a fresh process's point of view (a new SaveDir): the same.
        drop(saves);
        let again = open(tmp.path(), format, compression);
        let (loaded, _) = again.load(&config(), &mut silent()).unwrap();
        assert_eq!(model(&loaded), model(&c), "{format:?}");
    }
}

#[test]
fn a_delta_after_one_percent_of_changes_is_under_five_percent_of_a_full_save() {
    let tmp = tempfile::tempdir().unwrap();
    let saves = open(tmp.path(), Format::Msgpack, Compression::None);
    let mut rng = Rng(11);
    let mut c = filled(5000, &mut rng);
    let full = saves.save(&c, &mut silent()).unwrap();
    let mut next = 100_000;
    churn(&mut c, 1, &mut rng, &mut next);
    let delta = saves.save_incremental(&c, &mut silent()).unwrap();
    assert_eq!(delta.kind, "incremental");
    assert!(delta.upserts > 0 && delta.deletes > 0, "{delta:?}");
    let ratio = delta.bytes as f64 / full.bytes as f64;
    assert!(
        ratio <= 0.05,
        "delta {} bytes, full {} ({ratio})",
        delta.bytes,
        full.bytes
    );
    let written = std::fs::metadata(tmp.path().join(delta.file.unwrap()))
        .unwrap()
        .len();
    assert_eq!(written, delta.bytes);
}

#[test]
fn a_clear_or_a_restored_history_makes_the_next_incremental_save_full() {
    let tmp = tempfile::tempdir().unwrap();
    let saves = open(tmp.path(), Format::Json, Compression::None);
    let mut rng = Rng(3);
    let mut c = filled(100, &mut rng);
    let first = saves.save_incremental(&c, &mut silent()).unwrap();
    assert_eq!(first.kind, "full");
    assert!(first.reason.is_some());
    c.clear();
    let s = saves.save_incremental(&c, &mut silent()).unwrap();
    assert_eq!(s.kind, "full");
    let (loaded, _) = saves.load(&config(), &mut silent()).unwrap();
    assert!(loaded.is_empty());
    // A collection with another history (as after a reopen) cannot be diffed.
    let other = filled(50, &mut rng);
    let s = saves.save_incremental(&other, &mut silent()).unwrap();
    assert_eq!(s.kind, "full");
    assert!(s.reason.unwrap().contains("history"));
}

#[test]
fn a_damaged_missing_or_foreign_delta_is_corrupt_and_loads_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let saves = open(tmp.path(), Format::Msgpack, Compression::None);
    let mut rng = Rng(5);
    let mut c = filled(300, &mut rng);
    let mut next = 1000;
    saves.save(&c, &mut silent()).unwrap();
    churn(&mut c, 3, &mut rng, &mut next);
    let d1 = saves
        .save_incremental(&c, &mut silent())
        .unwrap()
        .file
        .unwrap();
    churn(&mut c, 3, &mut rng, &mut next);
    let d2 = saves
        .save_incremental(&c, &mut silent())
        .unwrap()
        .file
        .unwrap();
    let p1 = tmp.path().join(&d1);
    let good = std::fs::read(&p1).unwrap();
    // A flipped byte.
    let mut bad = good.clone();
    bad[HEADER_LEN_FOR_TEST + 3] ^= 1;
    std::fs::write(&p1, &bad).unwrap();
    let err = saves.load(&config(), &mut silent()).unwrap_err();
    assert_eq!(err.kind(), "CORRUPT", "{err}");
    // Missing.
    std::fs::remove_file(&p1).unwrap();
    let err = saves.load(&config(), &mut silent()).unwrap_err();
    assert_eq!(err.kind(), "CORRUPT", "{err}");
    assert!(err.to_string().contains("missing"), "{err}");
    // Swapped order, with the manifest's checksums made to agree: the
    // delta's own header refuses its place.
    std::fs::write(&p1, &good).unwrap();
    let path = tmp.path().join(MANIFEST);
    let mut m: Manifest = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    m.files.swap(1, 2);
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    let err = saves.load(&config(), &mut silent()).unwrap_err();
    assert_eq!(err.kind(), "CORRUPT", "{err}");
    assert!(
        err.to_string().contains(&d2) || err.to_string().contains(&d1),
        "{err}"
    );
}

const HEADER_LEN_FOR_TEST: usize = delta::HEADER_LEN;

#[test]
fn another_dimension_is_a_config_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let saves = open(tmp.path(), Format::Json, Compression::None);
    let c = filled(10, &mut Rng(1));
    saves.save(&c, &mut silent()).unwrap();
    let other = CollectionConfig::new(DIM + 1, Distance::Cosine, None).unwrap();
    let err = saves.load(&other, &mut silent()).unwrap_err();
    assert_eq!(err.kind(), "CONFIG_MISMATCH");
}

#[test]
fn a_second_open_of_the_directory_is_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let _first = open(tmp.path(), Format::Json, Compression::None);
    let err = SaveDir::open(
        Arc::new(OsStorage),
        tmp.path(),
        Format::Json,
        Compression::None,
    )
    .unwrap_err();
    assert_eq!(err.kind(), "IN_USE");
}

#[test]
fn snapshots_are_created_listed_restored_and_deleted_with_retention() {
    let tmp = tempfile::tempdir().unwrap();
    let saves = open(tmp.path(), Format::Msgpack, Compression::Gzip);
    let mut rng = Rng(9);
    let mut c = filled(200, &mut rng);
    let mut next = 5000;
    let a = saves
        .create_snapshot(
            &c,
            "before",
            Some(json!({ "why": "test" })),
            Some(2),
            &mut silent(),
        )
        .unwrap();
    let state_a = model(&c);
    churn(&mut c, 10, &mut rng, &mut next);
    let b = saves
        .create_snapshot(&c, "after", None, Some(2), &mut silent())
        .unwrap();
    assert_eq!(b.count, c.len() as u64);
    let list = saves.list_snapshots().unwrap();
    assert_eq!(
        list.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        vec![a.id.clone(), b.id.clone()]
    );
    assert_eq!(list[0].metadata, Some(json!({ "why": "test" })));
    let (restored, info) = saves
        .read_snapshot(&a.id, &config(), &mut silent())
        .unwrap();
    assert_eq!(model(&restored), state_a);
    assert_eq!(info.checksum, a.checksum);
    // By name too; a later save chain does not disturb a snapshot's files.
    churn(&mut c, 60, &mut rng, &mut next);
    saves.save(&c, &mut silent()).unwrap();
    let (restored, _) = saves
        .read_snapshot("before", &config(), &mut silent())
        .unwrap();
    assert_eq!(model(&restored), state_a);
    // Retention: a third drops the oldest.
    saves
        .create_snapshot(&c, "third", None, Some(2), &mut silent())
        .unwrap();
    let names: Vec<String> = saves
        .list_snapshots()
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, vec!["after", "third"]);
    assert_eq!(saves.delete_snapshot("after").unwrap().id, b.id);
    assert_eq!(
        saves.delete_snapshot("after").unwrap_err().kind(),
        "NOT_FOUND"
    );
    assert_eq!(
        saves
            .read_snapshot("nope", &config(), &mut silent())
            .unwrap_err()
            .kind(),
        "NOT_FOUND"
    );
    for bad in ["../x", "a/b", "", &"n".repeat(300)] {
        assert_eq!(
            saves.delete_snapshot(bad).unwrap_err().kind(),
            "INVALID_NAME",
            "{bad:?}"
        );
        assert_eq!(
            saves
                .create_snapshot(&c, bad, None, None, &mut silent())
                .unwrap_err()
                .kind(),
            "INVALID_NAME"
        );
    }
}

#[test]
fn a_damaged_snapshot_is_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let saves = open(tmp.path(), Format::Json, Compression::None);
    let c = filled(50, &mut Rng(2));
    let s = saves
        .create_snapshot(&c, "s", None, None, &mut silent())
        .unwrap();
    let dir = tmp.path().join(SNAPSHOTS).join(&s.id);
    let base = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("base-")
        })
        .unwrap();
    // Hard links share bytes with the main chain: replace the file, as damage to one copy.
    let mut bytes = std::fs::read(&base).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::remove_file(&base).unwrap();
    std::fs::write(&base, &bytes).unwrap();
    let err = saves
        .read_snapshot(&s.id, &config(), &mut silent())
        .unwrap_err();
    assert_eq!(err.kind(), "CORRUPT", "{err}");
}

/// Copies the chain the simulated disk's manifest names into a real
/// directory and loads it there.
fn load_from_sim(sim: &SimStorage, dir: &Path) -> Option<Collection> {
    let manifest = sim.contents(&dir.join(MANIFEST))?;
    let m: Manifest = serde_json::from_slice(&manifest).expect("a whole manifest");
    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(scratch.path().join(MANIFEST), &manifest).unwrap();
    for f in &m.files {
        let bytes = sim
            .contents(&dir.join(&f.file))
            .expect("every file the manifest names");
        std::fs::write(scratch.path().join(&f.file), bytes).unwrap();
    }
    Some(load_chain(&OsStorage, scratch.path(), &m, &config(), &mut silent()).unwrap())
}

#[test]
fn a_crash_at_any_step_of_a_save_leaves_the_previous_or_the_new_state() {
    let dir = Path::new("/sim/saves");
    let mut rng = Rng(21);
    let c = filled(400, &mut rng);
    let before = model(&c);
    let mut next = 9000;
    let mut c2 = c.clone();
    churn(&mut c2, 3, &mut rng, &mut next);
    let after = model(&c2);
    let mut c3 = c.clone();
    churn(&mut c3, 90, &mut rng, &mut next);
    let full_after = model(&c3);
    for (label, target, incremental) in [("incremental", &c2, true), ("full", &c3, false)] {
        let expected_new = if incremental { &after } else { &full_after };
        let mut n = 0;
        loop {
            let sim = SimStorage::new(n + 1);
            let saves = SaveDir::open(
                Arc::new(sim.clone()),
                dir,
                Format::Msgpack,
                Compression::None,
            )
            .unwrap();
            saves.save(&c, &mut silent()).unwrap();
            sim.crash_at(n);
            let outcome = if incremental {
                saves.save_incremental(target, &mut silent())
            } else {
                saves.save(target, &mut silent())
            };
            let crashed = sim.has_crashed() || outcome.is_err();
            drop(saves);
            sim.crash();
            let loaded = load_from_sim(&sim, dir).expect("a manifest survives");
            let state = model(&loaded);
            assert!(
                state == before || &state == expected_new,
                "{label}: crash at op {n} left a mixed state"
            );
            if !crashed {
                assert_eq!(&state, expected_new, "{label}");
                break;
            }
            n += 1;
            assert!(n < 200, "{label}: the save never finished");
        }
        assert!(n > 5, "{label}: only {n} steps were crashed");
    }
}

//! Writes the format fixtures that `tests/formats.rs` opens.
//!
//! ```text
//! cargo run -p annvault-core --example write_fixtures -- <set> [<dir>]
//! ```
//!
//! `<set>` is `v1` (integer ids, a snapshot and a WAL after it), `v2-brotli`
//! (the same steps with a brotli snapshot, format version 2) or `minimal`
//! (the smallest valid points: one-byte string ids, empty payloads, dimension
//! 1 and 4, single-point batches). `<dir>` defaults to
//! `crates/core/tests/fixtures/<set>`. Fixtures are committed and never
//! rewritten by a later version: they are what that version wrote, and every
//! later reader must open them with the same contents. Write a new set when a
//! format changes; keep the old ones.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use annvault_core::storage::directory::{DirOptions, Durability};
use annvault_core::storage::fs::{OsStorage, Storage};
use annvault_core::store::Persistence;
use annvault_core::{
    AnnConfig, CollectionConfig, Distance, Payload, PointBatch, PointId, Store, StoreOptions,
};
use serde_json::json;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn open(root: &Path, name: &str, dimension: usize, distance: Distance) -> Result<Store> {
    open_with(root, name, dimension, distance, false)
}

fn open_with(
    root: &Path,
    name: &str,
    dimension: usize,
    distance: Distance,
    brotli: bool,
) -> Result<Store> {
    let storage: Arc<dyn Storage> = Arc::new(OsStorage);
    Ok(Store::open(StoreOptions {
        name: name.into(),
        config: CollectionConfig::new(dimension, distance, None)?,
        persistence: Some(Persistence {
            root: root.to_path_buf(),
            storage,
            options: DirOptions {
                durability: Durability::Fsync,
                checkpoint_wal_bytes: u64::MAX,
                brotli,
                ..DirOptions::default()
            },
        }),
        ann: AnnConfig::default(),
    })?)
}

fn payload(value: serde_json::Value) -> Payload {
    match value {
        serde_json::Value::Object(map) => map,
        _ => Payload::new(),
    }
}

fn batch(dimension: usize, points: &[(PointId, Vec<f32>, Payload)]) -> Result<PointBatch> {
    Ok(PointBatch::new(
        dimension,
        points.iter().map(|p| p.0.clone()).collect(),
        points.iter().flat_map(|p| p.1.clone()).collect(),
        &vec![dimension as u32; points.len()],
        points.iter().map(|p| p.2.clone()).collect(),
    )?)
}

/// Leaves the store as a crash would (no final checkpoint), so the WAL
/// records after the snapshot stay on disk; the lock file is removed so the
/// fixture is a plain directory.
fn abandon(store: Store, root: &Path, name: &str) -> Result<()> {
    drop(store);
    std::fs::remove_file(root.join(name).join("LOCK"))?;
    Ok(())
}

/// Integer ids, 4 dimensions: the set of format version 1 (with `brotli`,
/// set `v2-brotli`: the same steps, the snapshot brotli-compressed, version 2).
fn write_v1(root: &Path, brotli: bool) -> Result<()> {
    let store = open_with(root, "c", 4, Distance::Cosine, brotli)?;
    let vector = |seed: u64| -> Vec<f32> {
        (0..4u64)
            .map(|d| {
                ((seed.wrapping_mul(2654435761).wrapping_add(d * 97)) % 1000) as f32 / 100.0 - 5.0
            })
            .collect()
    };
    let ints = |ids: &[i64], seed: u64| -> Vec<(PointId, Vec<f32>, Payload)> {
        ids.iter()
            .map(|&i| {
                (
                    PointId::Int(i),
                    vector(seed + i as u64),
                    payload(json!({ "i": i, "seed": seed })),
                )
            })
            .collect()
    };
    store.insert(store.ticket(), batch(4, &ints(&[1, 2, 3, 4], 11))?)?;
    store.delete(store.ticket(), &PointId::Int(2))?;
    store.checkpoint(store.ticket())?;
    store.update(
        store.ticket(),
        &PointId::Int(3),
        &vector(33),
        payload(json!({ "updated": 33 })),
    )?;
    store.insert(store.ticket(), batch(4, &ints(&[5, 6], 55))?)?;
    store.delete(store.ticket(), &PointId::Int(6))?;
    abandon(store, root, "c")
}

/// The smallest valid points, in a snapshot and in WAL records after it:
/// collections `d1` (dimension 1, Cosine) and `d4` (dimension 4, Euclidean).
/// Written by the code at 327ce93, whose readers refused them (issue 12).
fn write_minimal(root: &Path) -> Result<()> {
    for (name, dimension, distance) in [("d1", 1, Distance::Cosine), ("d4", 4, Distance::Euclidean)]
    {
        let store = open(root, name, dimension, distance)?;
        let point = |id: &str, value: f32| -> (PointId, Vec<f32>, Payload) {
            (
                PointId::Str(id.into()),
                (0..dimension).map(|d| value + d as f32).collect(),
                Payload::new(),
            )
        };
        // In the snapshot: a single-point batch, then a two-point one.
        store.insert(store.ticket(), batch(dimension, &[point("a", 1.0)])?)?;
        store.insert(
            store.ticket(),
            batch(dimension, &[point("b", 2.0), point("c", 3.0)])?,
        )?;
        store.checkpoint(store.ticket())?;
        // In the WAL after it: an insert, an update, a delete.
        store.insert(store.ticket(), batch(dimension, &[point("d", 4.0)])?)?;
        let (_, vector, empty) = point("a", 5.0);
        store.update(store.ticket(), &PointId::Str("a".into()), &vector, empty)?;
        store.delete(store.ticket(), &PointId::Str("b".into()))?;
        abandon(store, root, name)?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let set = args
        .next()
        .ok_or("usage: write_fixtures <v1|v2-brotli|minimal> [<dir>]")?;
    let dir = match args.next() {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(&set),
    };
    if dir.exists() {
        return Err(format!(
            "{} exists: fixtures are never rewritten in place",
            dir.display()
        )
        .into());
    }
    std::fs::create_dir_all(&dir)?;
    match set.as_str() {
        "v1" => write_v1(&dir, false)?,
        "v2-brotli" => write_v1(&dir, true)?,
        "minimal" => write_minimal(&dir)?,
        other => return Err(format!("unknown fixture set {other:?}").into()),
    }
    println!("wrote {}", dir.display());
    Ok(())
}

//! The layout of the older in-memory backend, written straight into the
//! persistence path:
//!
//! - `ann_metadata.json`: `{ dimension, algorithm, vectorCount, faissAvailable,
//!   vectors: [[id, [f, …]], …] }`
//! - `payloads.json`: `[[id, payload], …]`
//! - `ann_index.faiss` (written in builds with the `faiss` feature): a faiss
//!   `IDMap2,Flat` index whose id `i` is row `i` of `ann_metadata.json`'s
//!   `vectors`; Cosine collections hold unit vectors under the inner product
//!   (normalise the query too), Dot the vectors under the inner product,
//!   Euclidean the vectors under L2. Python's `faiss.read_index` opens it.
//!   annvault does not read it back (the JSON files hold the data).
//!
//! annvault imports it on first open of a collection that has no data of its
//! own (the originals are left untouched) and can write it back out.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Value};

use crate::collection::{Collection, Payload, PointBatch};
use crate::error::{BatchIndex, Error, Result};
use crate::id::PointId;
use crate::storage::directory::write_atomically;
use crate::storage::fs::Storage;

pub const METADATA_FILE: &str = "ann_metadata.json";
pub const PAYLOADS_FILE: &str = "payloads.json";
pub const FAISS_FILE: &str = "ann_index.faiss";

fn legacy_error(file: &Path, reason: impl Into<String>) -> Error {
    Error::LegacyFormat {
        file: file.display().to_string(),
        reason: reason.into(),
    }
}

fn id_from_json(value: &Value, file: &Path, index: usize) -> Result<PointId> {
    let at = BatchIndex(Some(index));
    match value {
        Value::String(s) => PointId::from_string(s.clone(), at),
        Value::Number(n) => PointId::from_number(n.as_f64().unwrap_or(f64::NAN), at),
        other => Err(Error::InvalidId {
            index: at,
            reason: format!("an id must be a string or a number, got {other}"),
        }),
    }
    .map_err(|e| legacy_error(file, e.to_string()))
}

/// Whether `root` holds the legacy layout.
pub fn present(storage: &dyn Storage, root: &Path) -> bool {
    storage.exists(&root.join(METADATA_FILE))
}

/// Reads the legacy layout in `root` as one batch for a collection of `dimension`.
pub fn read(storage: &dyn Storage, root: &Path, dimension: usize) -> Result<PointBatch> {
    let metadata_path = root.join(METADATA_FILE);
    let bytes = storage
        .read(&metadata_path)
        .map_err(|e| Error::io("read", &metadata_path, e))?;
    let metadata: Value = serde_json::from_slice(&bytes)
        .map_err(|e| legacy_error(&metadata_path, format!("not JSON: {e}")))?;
    let stored_dimension = metadata
        .get("dimension")
        .and_then(Value::as_u64)
        .ok_or_else(|| legacy_error(&metadata_path, "no numeric 'dimension'"))?;
    if stored_dimension as usize != dimension {
        return Err(Error::ConfigMismatch {
            reason: format!(
                "{} has dimension {stored_dimension}, the store was opened with {dimension}",
                metadata_path.display()
            ),
        });
    }
    let entries = metadata
        .get("vectors")
        .and_then(Value::as_array)
        .ok_or_else(|| legacy_error(&metadata_path, "no 'vectors' array"))?;

    let payloads_path = root.join(PAYLOADS_FILE);
    let mut payload_of: HashMap<PointId, Payload> = HashMap::new();
    if storage.exists(&payloads_path) {
        let bytes = storage
            .read(&payloads_path)
            .map_err(|e| Error::io("read", &payloads_path, e))?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| legacy_error(&payloads_path, format!("not JSON: {e}")))?;
        let pairs = value
            .as_array()
            .ok_or_else(|| legacy_error(&payloads_path, "not an array of [id, payload] pairs"))?;
        for (i, pair) in pairs.iter().enumerate() {
            let (id, payload) = match pair.as_array().map(Vec::as_slice) {
                Some([id, Value::Object(payload)]) => (id, payload),
                _ => {
                    return Err(legacy_error(
                        &payloads_path,
                        format!("entry {i} is not [id, object]"),
                    ))
                }
            };
            payload_of.insert(id_from_json(id, &payloads_path, i)?, payload.clone());
        }
    }

    let mut ids = Vec::with_capacity(entries.len());
    let mut vectors = Vec::with_capacity(entries.len() * dimension);
    let mut lengths = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let (id, values) = match entry.as_array().map(Vec::as_slice) {
            Some([id, Value::Array(values)]) => (id, values),
            _ => {
                return Err(legacy_error(
                    &metadata_path,
                    format!("vectors[{i}] is not [id, [numbers]]"),
                ))
            }
        };
        ids.push(id_from_json(id, &metadata_path, i)?);
        lengths.push(values.len() as u32);
        for v in values {
            let x = v.as_f64().ok_or_else(|| {
                legacy_error(&metadata_path, format!("vectors[{i}] holds a non-number"))
            })?;
            vectors.push(x as f32);
        }
    }
    let payloads = ids
        .iter()
        .map(|id| payload_of.remove(id).unwrap_or_default())
        .collect();
    PointBatch::new(dimension, ids, vectors, &lengths, payloads)
        .map_err(|e| legacy_error(&metadata_path, e.to_string()))
}

/// Writes `collection` in the legacy layout into `dir`, each file atomically.
pub fn write(storage: &dyn Storage, dir: &Path, collection: &Collection) -> Result<()> {
    storage
        .create_dir_all(dir)
        .map_err(|e| Error::io("create directory", dir, e))?;
    let config = collection.config();
    let vectors: Vec<Value> = collection
        .points()
        .map(|(id, v, _)| json!([id, v]))
        .collect();
    let faiss = cfg!(feature = "faiss");
    let metadata = json!({
        "dimension": config.dimension,
        "algorithm": if faiss { "faiss:IDMap2,Flat" } else { "brute-force" },
        "vectorCount": vectors.len(),
        "faissAvailable": faiss,
        "distance": config.distance.name(),
        "vectors": vectors,
    });
    #[cfg(feature = "faiss")]
    {
        let mut rows = Vec::with_capacity(collection.len() * config.dimension);
        for (_, v, _) in collection.points() {
            match config.distance {
                crate::distance::Distance::Cosine => {
                    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                    let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
                    rows.extend(v.iter().map(|x| x * scale));
                }
                _ => rows.extend_from_slice(v),
            }
        }
        let bytes = crate::faiss_index::write_plain_index(
            "Flat",
            config.distance,
            config.dimension,
            &rows,
        )?;
        write_atomically(storage, dir, FAISS_FILE, &bytes)?;
    }
    let payloads: Vec<Value> = collection
        .points()
        .map(|(id, _, p)| json!([id, p.as_ref()]))
        .collect();
    let encode = |value: &Value| serde_json::to_vec(value).unwrap_or_default();
    write_atomically(storage, dir, METADATA_FILE, &encode(&metadata))?;
    write_atomically(
        storage,
        dir,
        PAYLOADS_FILE,
        &encode(&Value::Array(payloads)),
    )
}

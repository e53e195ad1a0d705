//! What the tests and benches share: payloads from JSON literals, seeded
//! data (splitmix64, clustered vectors), batches and store options. One
//! place for the unit tests (`crate::testing`), the integration tests and
//! the benches (`annvault_core::testing`). Not part of the API: hidden
//! from the docs, free to change.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::ann::AnnConfig;
use crate::collection::{CollectionConfig, Payload, PointBatch};
use crate::distance;
use crate::id::PointId;
use crate::storage::directory::{DirOptions, Durability};
use crate::storage::fs::Storage;
use crate::store::{Persistence, StoreOptions};

/// The object of a `json!({ .. })` literal, as a payload.
///
/// # Panics
/// When `value` is not an object.
pub fn payload(value: Value) -> Payload {
    match value {
        Value::Object(map) => map,
        other => panic!("a payload is a JSON object, not {other}"),
    }
}

/// splitmix64: deterministic data without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in [-1, 1).
    pub fn signed(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// Uniform in (0, 1].
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn gaussian(&mut self) -> f32 {
        let (u, v) = (self.unit(), self.unit());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }

    /// `dim` values uniform in [-1, 1), scaled to unit length.
    pub fn unit_vector(&mut self, dim: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dim).map(|_| self.signed()).collect();
        normalize(&mut v);
        v
    }

    /// `count` unit vectors back to back (row-major, `count × dim`).
    pub fn unit_vectors(&mut self, count: usize, dim: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(count * dim);
        for _ in 0..count {
            out.extend_from_slice(&self.unit_vector(dim));
        }
        out
    }
}

/// Scales `v` to unit length (a zero vector stays as it is).
pub fn normalize(v: &mut [f32]) {
    let inv = distance::inverse_norm(v);
    v.iter_mut().for_each(|x| *x *= inv);
}

/// Unit vectors around a few random unit centres, as embeddings are: many
/// close neighbours, so that an index has real work to do.
#[derive(Debug, Clone)]
pub struct Clusters {
    dim: usize,
    centres: Vec<Vec<f32>>,
    /// Standard deviation of the noise per component.
    sigma: f32,
}

impl Clusters {
    /// `count` centres in `dim` dimensions; a point's noise has a norm of
    /// about `spread` before the point is scaled to unit length.
    pub fn new(rng: &mut Rng, count: usize, dim: usize, spread: f32) -> Self {
        let centres = (0..count)
            .map(|_| {
                let mut c: Vec<f32> = (0..dim).map(|_| rng.gaussian()).collect();
                normalize(&mut c);
                c
            })
            .collect();
        Clusters {
            dim,
            centres,
            sigma: spread / (dim as f32).sqrt(),
        }
    }

    pub fn len(&self) -> usize {
        self.centres.len()
    }

    pub fn is_empty(&self) -> bool {
        self.centres.is_empty()
    }

    /// A point around centre `c`.
    pub fn point(&self, rng: &mut Rng, c: usize) -> Vec<f32> {
        let mut v: Vec<f32> = self.centres[c]
            .iter()
            .map(|x| x + self.sigma * rng.gaussian())
            .collect();
        normalize(&mut v);
        v
    }

    /// `count` points back to back (`count × dim`), the i-th around centre
    /// `centre(i)`.
    pub fn points(&self, rng: &mut Rng, count: usize, centre: impl Fn(usize) -> usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(count * self.dim);
        for i in 0..count {
            out.extend(self.point(rng, centre(i) % self.centres.len()));
        }
        out
    }
}

/// Documents and queries of one dimension, each set row-major.
#[derive(Debug, Clone)]
pub struct Vectors {
    pub dim: usize,
    pub docs: Vec<f32>,
    pub queries: Vec<f32>,
}

impl Vectors {
    /// How many documents.
    pub fn len(&self) -> usize {
        self.docs.len() / self.dim
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    pub fn doc(&self, i: usize) -> &[f32] {
        &self.docs[i * self.dim..(i + 1) * self.dim]
    }

    pub fn query(&self, i: usize) -> &[f32] {
        &self.queries[i * self.dim..(i + 1) * self.dim]
    }

    pub fn queries(&self) -> impl Iterator<Item = &[f32]> {
        self.queries.chunks_exact(self.dim)
    }
}

/// Dimension of the real-text dataset (MiniLM sentence embeddings).
pub const REAL_TEXT_DIM: usize = 384;

/// The folder of the real-text dataset (`docs-384.f32`, 20,000 unit
/// vectors, and `queries-384.f32`, little-endian): the first of
/// `$ANNVAULT_DATASET`, `shared/data` beside the clone (where CI puts it)
/// and `/work/shared/data` that holds it.
pub fn real_text_folder() -> Option<PathBuf> {
    let beside_the_clone = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    [
        std::env::var_os("ANNVAULT_DATASET").map(PathBuf::from),
        Some(beside_the_clone),
        Some(PathBuf::from("/work/shared/data")),
    ]
    .into_iter()
    .flatten()
    .find(|folder| folder.join("docs-384.f32").exists())
}

/// The real-text dataset read from `folder`.
pub fn read_real_text(folder: &Path) -> io::Result<Vectors> {
    Ok(Vectors {
        dim: REAL_TEXT_DIM,
        docs: read_f32_rows(&folder.join("docs-384.f32"), REAL_TEXT_DIM)?,
        queries: read_f32_rows(&folder.join("queries-384.f32"), REAL_TEXT_DIM)?,
    })
}

/// A file of little-endian f32 rows of `dim` values each.
pub fn read_f32_rows(path: &Path, dim: usize) -> io::Result<Vec<f32>> {
    let bytes = std::fs::read(path)?;
    if bytes.len() % (4 * dim) != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is not a whole number of {dim}-dim f32 rows",
                path.display()
            ),
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// A batch of `ids.len()` points of `dim` dimensions, `vectors` back to back.
///
/// # Panics
/// When the batch is invalid.
pub fn batch(
    dim: usize,
    ids: Vec<PointId>,
    vectors: Vec<f32>,
    payloads: Vec<Payload>,
) -> PointBatch {
    let lengths = vec![dim as u32; ids.len()];
    PointBatch::new(dim, ids, vectors, &lengths, payloads).expect("a valid batch")
}

/// Options of store `name`; in memory only when `persistence` is `None`.
pub fn store_options(
    name: &str,
    config: CollectionConfig,
    ann: AnnConfig,
    persistence: Option<Persistence>,
) -> StoreOptions {
    StoreOptions {
        name: name.into(),
        config,
        persistence,
        ann,
    }
}

/// Persistence under `root` through `storage`.
pub fn persistence(storage: Arc<dyn Storage>, root: &Path, options: DirOptions) -> Persistence {
    Persistence {
        root: root.to_path_buf(),
        storage,
        options,
    }
}

/// Directory options with `durability` and no background checkpoint: the
/// tests and benches that want checkpoints ask for them.
pub fn no_auto_checkpoint(durability: Durability) -> DirOptions {
    DirOptions {
        durability,
        checkpoint_wal_bytes: u64::MAX,
        ..DirOptions::default()
    }
}

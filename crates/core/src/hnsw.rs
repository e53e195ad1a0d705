//! The HNSW graph engine: `hnsw_rs` behind [`GraphEngine`].
//!
//! What we do around the crate, and why:
//! - its distances must be non-negative (it asserts so) and cosine is
//!   computed on vectors normalised once at insert, so the graph gets its own
//!   metric ([`GraphMetric`]) built on our SIMD kernels;
//! - `load_hnsw_with_dist` returns a graph that borrows its `HnswIo`; without
//!   a memory map the loaded data is owned, so the (small) `HnswIo` is leaked
//!   to make the graph `'static` and storable in the store;
//! - its dump writes through `BufWriter` without fsync and can panic on I/O
//!   errors: [`HnswGraph::save`] catches panics and fsyncs the files itself;
//!   [`HnswGraph::load`] is only called on files whose checksums the index
//!   map (see [`crate::ann`]) has verified, and catches panics too;
//! - `max_nb_connection > 256` makes it call `process::exit`: `m` is capped by
//!   [`crate::ann::HnswParams::new`].

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use hnsw_rs::api::AnnT;
use hnsw_rs::hnswio::HnswIo;
use hnsw_rs::prelude::{Distance as HnswDistance, Hnsw};

use crate::ann::{GraphEngine, HnswParams};
use crate::distance::{self, Distance};
use crate::error::{Error, Result};

/// Layers the graph may use (`hnsw_rs` caps it at 16).
const MAX_LAYERS: usize = 16;

/// Graph distance: smaller is closer and never negative. Cosine expects
/// vectors normalised at insert; Dot maps the dot product monotonically onto
/// `[0, ∞)` (`1/(1+x)` above 0, `1−x` below) so that ranking is preserved.
#[derive(Debug, Clone, Copy)]
pub struct GraphMetric {
    kind: Distance,
}

impl HnswDistance<f32> for GraphMetric {
    #[inline]
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        let d = match self.kind {
            Distance::Cosine => 1.0 - distance::dot(a, b),
            Distance::Dot => {
                let x = distance::dot(a, b);
                if x >= 0.0 {
                    1.0 / (1.0 + x)
                } else {
                    1.0 - x
                }
            }
            Distance::Euclidean => distance::l2_squared(a, b),
        };
        // `hnsw_rs` panics on NaN and asserts distances are >= 0.
        if d.is_nan() {
            f32::MAX
        } else {
            d.max(0.0)
        }
    }
}

pub struct HnswGraph {
    hnsw: Hnsw<'static, f32, GraphMetric>,
}

impl HnswGraph {
    pub fn new(params: &HnswParams, kind: Distance, capacity: usize) -> Self {
        let hnsw = Hnsw::new(
            params.m,
            capacity.max(1024),
            MAX_LAYERS,
            params.ef_construction,
            GraphMetric { kind },
        );
        HnswGraph { hnsw }
    }

    /// Loads a graph that [`HnswGraph::save`] wrote as `dir/basename.*`.
    pub fn load(dir: &Path, basename: &str, kind: Distance) -> Result<Self> {
        let failed = |reason: String| Error::Internal {
            reason: format!("loading the HNSW graph {basename} failed: {reason}"),
        };
        catch_unwind(AssertUnwindSafe(|| {
            // Leaked on purpose: the graph borrows it for its whole life
            // (a few hundred bytes per load, no vector data: no memory map).
            let io: &'static HnswIo = Box::leak(Box::new(HnswIo::new(dir, basename)));
            io.load_hnsw_with_dist::<f32, GraphMetric>(GraphMetric { kind })
        }))
        .map_err(|_| failed("the reader panicked".into()))?
        .map(|mut hnsw| {
            // As a freshly built graph has it: inserts after a load stay cheap.
            hnsw.set_extend_candidates(false);
            HnswGraph { hnsw }
        })
        .map_err(|e| failed(e.to_string()))
    }
}

impl GraphEngine for HnswGraph {
    fn len(&self) -> usize {
        self.hnsw.get_nb_point()
    }

    fn insert(&self, points: &[(&[f32], usize)]) {
        if points.len() >= 32 {
            // Both cores: `parallel_insert` runs on rayon's pool.
            self.hnsw.parallel_insert_slice(&points.to_vec());
        } else {
            for &(vector, label) in points {
                self.hnsw.insert_slice((vector, label));
            }
        }
    }

    fn search(&self, query: &[f32], ef: usize) -> Vec<(usize, f32)> {
        self.hnsw
            .search(query, ef, ef)
            .into_iter()
            .map(|n| (n.d_id, n.distance))
            .collect()
    }

    fn save(&self, dir: &Path, basename: &str) -> Result<String> {
        let written = catch_unwind(AssertUnwindSafe(|| self.hnsw.file_dump(dir, basename)))
            .map_err(|_| Error::Internal {
                reason: "the HNSW graph writer panicked".into(),
            })?
            .map_err(|e| Error::Internal {
                reason: format!("writing the HNSW graph failed: {e}"),
            })?;
        for suffix in GRAPH_FILE_SUFFIXES {
            let path = dir.join(format!("{written}{suffix}"));
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io("fsync", &path, e))?;
        }
        Ok(written)
    }

    fn files(&self, basename: &str) -> Vec<String> {
        GRAPH_FILE_SUFFIXES
            .iter()
            .map(|s| format!("{basename}{s}"))
            .collect()
    }
}

/// The files `hnsw_rs` writes for one dump.
pub const GRAPH_FILE_SUFFIXES: [&str; 2] = [".hnsw.graph", ".hnsw.data"];

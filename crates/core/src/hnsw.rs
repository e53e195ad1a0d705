//! The HNSW graph engine: `usearch` behind [`GraphEngine`].
//!
//! Why usearch and not `hnsw_rs` (the engine the design first named): on the
//! real-text dataset it builds 3–5× faster on the same two cores, searches
//! 3–5× faster at equal recall, stores its graph vectors in half precision,
//! and saves and loads a flat buffer instead of a graph of small
//! allocations. `hnsw_rs` also asserted on dot products a hair above 1 and
//! left points its own vector could not reach. The comparison is rerun by
//! `cargo bench -p annvault-core --bench engines` (BENCHMARKS.md).
//!
//! What we do around the crate, and why:
//! - labels are usearch keys; the collection keeps the truth and ranks the
//!   graph's candidates exactly, so the graph may store its vectors in half
//!   precision (cosine: vectors normalised once at insert, every component
//!   in [-1, 1], where f16 keeps three significant digits). Dot and
//!   Euclidean keep f32: their values may not fit an f16;
//! - usearch serves a fixed number of concurrent callers (thread contexts
//!   reserved up front) and fails a call beyond it, so every call takes a
//!   slot from [`Slots`] first;
//! - `reserve` reallocates the graph: it runs under the write side of a
//!   lock whose read side every add and search holds;
//! - the graph is saved as one buffer written through the storage trait
//!   (fsynced, checksummed in the index map), and loaded from a verified
//!   buffer: usearch never reads a file that has not passed its checksum.

use std::path::Path;
use std::sync::{Condvar, Mutex, PoisonError, RwLock, RwLockReadGuard};

use rayon::prelude::*;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use crate::ann::{GraphEngine, HnswParams, Quantization, SavedFile};
use crate::distance::Distance;
use crate::error::{Error, Result};
use crate::storage::directory::write_atomically;
use crate::storage::fs::Storage;

/// Concurrent calls the graph serves; more wait for a free slot.
const SLOTS: usize = 32;

/// Points an insert must bring to be spread over every core.
const PARALLEL_INSERT_MIN: usize = 512;

/// Suffix of the one file a saved graph consists of.
const FILE_SUFFIX: &str = ".usearch";

/// A counting semaphore over usearch's thread contexts.
struct Slots {
    free: Mutex<usize>,
    released: Condvar,
}

struct SlotGuard<'a>(&'a Slots);

impl Slots {
    fn new(count: usize) -> Self {
        Slots {
            free: Mutex::new(count),
            released: Condvar::new(),
        }
    }

    fn take(&self) -> SlotGuard<'_> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            free = self
                .released
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        SlotGuard(self)
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(PoisonError::into_inner);
        *free += 1;
        self.0.released.notify_one();
    }
}

pub struct HnswIndex {
    index: RwLock<Index>,
    slots: Slots,
    quantization: Quantization,
}

/// usearch's matches as `(label, distance)` pairs, best first.
fn labelled(found: usearch::ffi::Matches) -> Vec<(usize, f32)> {
    found
        .keys
        .into_iter()
        .zip(found.distances)
        .map(|(key, distance)| (key as usize, distance))
        .collect()
}

fn failed(what: &str, error: impl std::fmt::Display) -> Error {
    Error::Internal {
        reason: format!("the HNSW graph failed to {what}: {error}"),
    }
}

fn options(
    params: &HnswParams,
    kind: Distance,
    dimension: usize,
) -> Result<(IndexOptions, Quantization)> {
    let resolved = params.quantization.resolve(kind, dimension)?;
    let quantization = match resolved {
        Quantization::I8 => ScalarKind::I8,
        Quantization::F16 => ScalarKind::F16,
        Quantization::F32 | Quantization::Auto => ScalarKind::F32,
    };
    let metric = match kind {
        // Cosine vectors are normalised before they reach the graph (and
        // usearch's i8 cast normalises again): the inner product ranks them.
        Distance::Cosine | Distance::Dot => MetricKind::IP,
        Distance::Euclidean => MetricKind::L2sq,
    };
    let options = IndexOptions {
        dimensions: dimension,
        metric,
        quantization,
        connectivity: params.m,
        expansion_add: params.ef_construction,
        // A search asks for `ef` results, and usearch explores
        // max(expansion_search, count): the count alone sets the width.
        expansion_search: 1,
        multi: false,
    };
    Ok((options, resolved))
}

impl HnswIndex {
    pub fn new(
        params: &HnswParams,
        kind: Distance,
        dimension: usize,
        capacity: usize,
    ) -> Result<Self> {
        let (options, quantization) = options(params, kind, dimension)?;
        let index = Index::new(&options).map_err(|e| failed("start", e))?;
        index
            .reserve_capacity_and_threads(capacity.max(1024), SLOTS)
            .map_err(|e| failed("reserve memory", e))?;
        Ok(HnswIndex {
            index: RwLock::new(index),
            slots: Slots::new(SLOTS),
            quantization,
        })
    }

    /// Loads a graph from a buffer [`HnswIndex::save`] wrote (its checksum
    /// already verified by the caller).
    pub fn load(
        params: &HnswParams,
        kind: Distance,
        dimension: usize,
        bytes: &[u8],
    ) -> Result<Self> {
        let (options, quantization) = options(params, kind, dimension)?;
        let index = Index::new(&options).map_err(|e| failed("start", e))?;
        index
            .load_from_buffer(bytes)
            .map_err(|e| failed("load", e))?;
        if index.dimensions() != dimension || index.scalar_kind() != options.quantization {
            return Err(failed("load", "the saved graph has another dimension"));
        }
        index.change_expansion_add(params.ef_construction);
        index.change_expansion_search(1);
        let capacity = index.size().max(1024);
        index
            .reserve_capacity_and_threads(capacity, SLOTS)
            .map_err(|e| failed("reserve memory", e))?;
        Ok(HnswIndex {
            index: RwLock::new(index),
            slots: Slots::new(SLOTS),
            quantization,
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Grows the capacity (geometrically) so that `more` points fit.
    fn make_room(&self, more: usize) -> Result<()> {
        {
            let index = self.read();
            if index.size() + more <= index.capacity() {
                return Ok(());
            }
        }
        let index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        let needed = index.size() + more;
        if needed > index.capacity() {
            let target = needed.max(index.capacity().saturating_mul(3) / 2);
            index
                .reserve_capacity_and_threads(target, SLOTS)
                .map_err(|e| failed("reserve memory", e))?;
        }
        Ok(())
    }
}

impl GraphEngine for HnswIndex {
    fn len(&self) -> usize {
        self.read().size()
    }

    fn quantization(&self) -> Quantization {
        self.quantization
    }

    fn connectivity(&self) -> Option<usize> {
        Some(self.read().connectivity())
    }

    fn insert(&self, points: &[(&[f32], usize)], parallel: bool) -> Result<()> {
        self.make_room(points.len())?;
        let index = self.read();
        let add = |&(vector, label): &(&[f32], usize)| {
            let _slot = self.slots.take();
            index
                .add(label as u64, vector)
                .map_err(|e| failed("insert a point", e))
        };
        // Every core for a build or a bulk load, unless the caller keeps
        // them for searches and writes; one for the trickle of single
        // writes, leaving the other to the writers themselves.
        if parallel && points.len() >= PARALLEL_INSERT_MIN {
            points.par_iter().try_for_each(add)
        } else {
            points.iter().try_for_each(add)
        }
    }

    fn search(&self, query: &[f32], ef: usize) -> Result<Vec<(usize, f32)>> {
        let index = self.read();
        let _slot = self.slots.take();
        index
            .search(query, ef)
            .map(labelled)
            .map_err(|e| failed("search", e))
    }

    fn filtered_search(
        &self,
        query: &[f32],
        ef: usize,
        accept: &(dyn Fn(usize) -> bool + Sync),
    ) -> Result<Vec<(usize, f32)>> {
        let index = self.read();
        let _slot = self.slots.take();
        index
            .filtered_search(query, ef, |key| accept(key as usize))
            .map(labelled)
            .map_err(|e| failed("search", e))
    }

    fn save(&self, storage: &dyn Storage, dir: &Path, basename: &str) -> Result<Vec<SavedFile>> {
        let bytes = {
            let index = self.read();
            let mut bytes = vec![0u8; index.serialized_length()];
            index
                .save_to_buffer(&mut bytes)
                .map_err(|e| failed("serialise", e))?;
            bytes
        };
        let name = format!("{basename}{FILE_SUFFIX}");
        write_atomically(storage, dir, &name, &bytes)?;
        Ok(vec![SavedFile {
            size: bytes.len() as u64,
            crc: crc32c::crc32c(&bytes),
            name,
        }])
    }
}

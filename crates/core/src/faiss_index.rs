//! The faiss engine behind [`GraphEngine`] (cargo feature `faiss`):
//! `annAlgorithm: 'faiss'` with any faiss index factory string.
//!
//! What we do around the crate, and why:
//! - the index is wrapped in `IDMap` (unless the factory string already
//!   starts with one), so its ids are our labels whatever the inner index;
//! - faiss never removes here: like the usearch graph, it holds labels, the
//!   collection ranks its candidates on the exact f32 vectors, and replaced
//!   or deleted points are tombstones the regular rebuild clears (HNSW
//!   cannot remove in faiss either);
//! - indexes that need training (IVF, PQ, …) are trained on the first
//!   [`FaissParams::train_points`] points that reach them (doubling and
//!   trying again while faiss finds them too few); until then the points
//!   wait in a small exact buffer that every search also scans, so no point
//!   is ever unreachable. A rebuild retrains on the collection as it is then;
//! - `efSearch` per query: an HNSW index explores max(its efSearch, k) and
//!   a search asks for `ef` results, so its own efSearch is set to 16 once;
//!   IVF indexes use `nprobe` (set once from the config);
//! - a filtered search asks faiss for more neighbours, by how few points
//!   the filter accepts, and keeps the accepted ones (faiss's HNSW with an
//!   id selector ends its walk by efSearch whatever the selector rejects);
//!   the store searches exactly when too few come back;
//! - the saved file is `AVFAISS1`, the factory string, then faiss's own
//!   serialisation, written through the storage trait and checksummed in the
//!   index map like the usearch graph; another factory string in the config
//!   makes the saved index unusable (rebuilt, with a warning).
//!
//! ```text
//! saved file (index-<gen>.faiss), little-endian
//!   0  magic     b"AVFAISS1"
//!   8  len       u32   bytes of the factory string
//!  12  factory   UTF-8 as configured
//!   …  waiting   u64 count, count × u64 label, count × dimension × f32:
//!                points not yet in faiss (waiting for training)
//!   …  faiss     faiss::write_index bytes
//! ```

use std::os::raw::c_void;
use std::path::Path;
use std::ptr;
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use faiss::index::autotune::ParameterSpace;
use faiss::index::{FromInnerPtr, IndexImpl};
use faiss::{index_factory, Idx, Index, MetricType};

use crate::ann::{
    FaissParams, GraphEngine, Quantization, SavedFile, ENGINE_FAISS, MAX_FAISS_FACTORY_LEN,
};
use crate::distance::Distance;
use crate::error::{Error, Result};
use crate::storage::directory::write_atomically;
use crate::storage::fs::Storage;

/// Suffix of the one file a saved faiss index consists of.
const FILE_SUFFIX: &str = ".faiss";

const MAGIC: &[u8; 8] = b"AVFAISS1";

/// Most neighbours a filtered search asks faiss for.
const MAX_FILTERED_BEAM: usize = 4096;

fn failed(what: &str, error: impl std::fmt::Display) -> Error {
    Error::Internal {
        reason: format!("the faiss index failed to {what}: {error}"),
    }
}

fn metric(kind: Distance) -> MetricType {
    match kind {
        // Cosine vectors reach the engine normalised: the inner product ranks them.
        Distance::Cosine | Distance::Dot => MetricType::InnerProduct,
        Distance::Euclidean => MetricType::L2,
    }
}

/// The factory string faiss builds: ours always maps ids, and its PQ codes
/// skip polysemous training.
fn full_factory(factory: &str) -> String {
    let factory = without_polysemous_training(factory);
    if factory.starts_with("IDMap") {
        factory
    } else {
        format!("IDMap2,{factory}")
    }
}

/// `factory` with `np` after every `PQ<m>[x<bits>]` code. faiss trains PQ
/// codes for polysemous search unless told `np`: a simulated annealing
/// that took ~95 % of the 12 minutes `IVF256,PQ48` spent indexing 20,000
/// × 384 (perf: `ReproduceWithHammingObjective::cost_update`), for a
/// Hamming filter the store never turns on (`polysemous_ht` stays 0). The
/// codes come out the same quality for the distances it does use.
fn without_polysemous_training(factory: &str) -> String {
    let mut out = String::with_capacity(factory.len() + 8);
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        out.push_str(token);
        if is_plain_pq(token) {
            out.push_str("np");
        }
        token.clear();
    };
    for c in factory.chars() {
        if c == ',' || c == '_' {
            flush(&mut token, &mut out);
            out.push(c);
        } else {
            token.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

/// `PQ<m>` or `PQ<m>x<bits>`, digits only: the PQ codes faiss would train
/// for polysemous search.
fn is_plain_pq(token: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    token
        .strip_prefix("PQ")
        .is_some_and(|rest| match rest.split_once('x') {
            Some((m, bits)) => digits(m) && digits(bits),
            None => digits(rest),
        })
}

/// Whether an index built from `factory` ranks by exact distances: its
/// vectors are stored `Flat` and no transform (PCA, OPQ, …) comes first.
/// Anything not recognised counts as approximate, which only costs a
/// deeper exact re-rank.
pub fn stores_exact_vectors(factory: &str) -> bool {
    fn numbered(part: &str, prefix: &str) -> bool {
        part.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }
    factory.split(',').all(|part| {
        let coarse = part.split_once('_').map_or(part, |(ivf, _)| ivf);
        matches!(part, "Flat" | "IDMap" | "IDMap2" | "L2norm")
            || numbered(part, "HNSW")
            || (numbered(coarse, "IVF")
                && part
                    .split_once('_')
                    .is_none_or(|(_, quantizer)| numbered(quantizer, "HNSW")))
    })
}

/// Checks a factory string the way the engine will use it: faiss builds it
/// for `dimension` (malformed or unknown strings fail here, at open).
pub fn check_factory(
    factory: &str,
    nprobe: Option<usize>,
    kind: Distance,
    dimension: usize,
) -> Result<()> {
    let invalid = |reason: String| Error::InvalidArgument {
        name: "faiss.index",
        reason,
    };
    if factory.is_empty() || factory.len() > MAX_FAISS_FACTORY_LEN || factory.contains('\0') {
        return Err(invalid(format!(
            "must be a faiss index factory string of 1 to {MAX_FAISS_FACTORY_LEN} bytes without NUL"
        )));
    }
    let index = index_factory(dimension as u32, full_factory(factory), metric(kind))
        .map_err(|e| invalid(format!("faiss does not build {factory:?}: {e}")))?;
    if let Some(nprobe) = nprobe {
        set_nprobe(&index, factory, nprobe)?;
    }
    Ok(())
}

fn set_nprobe(index: &IndexImpl, factory: &str, nprobe: usize) -> Result<()> {
    let space = ParameterSpace::new().map_err(|e| failed("start", e))?;
    space
        .set_index_parameter(index, "nprobe", nprobe as f64)
        .map_err(|_| Error::InvalidArgument {
            name: "faiss.nprobe",
            reason: format!("{factory:?} is not an IVF index: it has no nprobe"),
        })
}

struct State {
    index: IndexImpl,
    /// Labels added to faiss (the trained part) plus waiting ones.
    len: usize,
    /// Points waiting for training (prepared vectors back to back).
    waiting: Vec<f32>,
    waiting_labels: Vec<usize>,
    /// Waiting points that trigger the next training attempt.
    train_at: usize,
}

pub struct FaissIndex {
    state: RwLock<State>,
    /// The HNSW beam (`efSearch`) the index is set to between searches.
    default_ef: usize,
    kind: Distance,
    dimension: usize,
    factory: String,
}

// faiss's const searches are thread-safe; adds take the write lock.
unsafe impl Send for FaissIndex {}
unsafe impl Sync for FaissIndex {}

extern "C" {
    fn omp_set_num_threads(n: i32);
    fn omp_get_num_procs() -> i32;
}

impl FaissIndex {
    pub fn new(params: &FaissParams, kind: Distance, dimension: usize, ef: usize) -> Result<Self> {
        let index = index_factory(
            dimension as u32,
            full_factory(&params.factory),
            metric(kind),
        )
        .map_err(|e| failed("start", e))?;
        Self::from_index(index, params, kind, dimension, 0, ef)
    }

    fn from_index(
        index: IndexImpl,
        params: &FaissParams,
        kind: Distance,
        dimension: usize,
        len: usize,
        ef: usize,
    ) -> Result<Self> {
        if index.d() as usize != dimension {
            return Err(failed("load", "the saved index has another dimension"));
        }
        let space = ParameterSpace::new().map_err(|e| failed("start", e))?;
        // faiss's HNSW widens its beam to efSearch only (asking for k > efSearch results does
        // not): the configured efSearch is set here, a query's own by `search_with`. Indexes
        // without the parameter (IVF, Flat) refuse it, which is fine.
        let _ = space.set_index_parameter(&index, "efSearch", ef as f64);
        if let Some(nprobe) = params.nprobe {
            set_nprobe(&index, &params.factory, nprobe)?;
        }
        Ok(FaissIndex {
            state: RwLock::new(State {
                index,
                len,
                waiting: Vec::new(),
                waiting_labels: Vec::new(),
                train_at: params.train_points.max(1),
            }),
            default_ef: ef,
            kind,
            dimension,
            factory: params.factory.clone(),
        })
    }

    /// Loads an index from a buffer [`FaissIndex::save`] wrote (its checksum
    /// already verified by the caller).
    pub fn load(
        params: &FaissParams,
        kind: Distance,
        dimension: usize,
        ef: usize,
        bytes: &[u8],
    ) -> Result<Self> {
        let truncated = || failed("load", "the saved index is truncated");
        let mut rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| failed("load", "not a saved faiss index"))?;
        let mut take = |n: usize| -> Result<&[u8]> {
            let (head, tail) = rest.split_at_checked(n).ok_or_else(truncated)?;
            rest = tail;
            Ok(head)
        };
        let len = u32::from_le_bytes(take(4)?.try_into().map_err(|_| truncated())?) as usize;
        let factory = std::str::from_utf8(take(len)?)
            .map_err(|_| failed("load", "factory string is not UTF-8"))?;
        if factory != params.factory {
            return Err(failed(
                "load",
                format!(
                    "it was built by {factory:?}, the config asks for {:?}",
                    params.factory
                ),
            ));
        }
        let count = u64::from_le_bytes(take(8)?.try_into().map_err(|_| truncated())?) as usize;
        let label_bytes = count.checked_mul(8).ok_or_else(truncated)?;
        let labels: Vec<usize> = take(label_bytes)?
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as usize)
            .collect();
        let vector_bytes = count
            .checked_mul(dimension)
            .and_then(|n| n.checked_mul(4))
            .ok_or_else(truncated)?;
        let waiting: Vec<f32> = take(vector_bytes)?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let index = read_index_bytes(rest)?;
        let added = index.ntotal() as usize;
        let engine = Self::from_index(index, params, kind, dimension, added + count, ef)?;
        {
            let mut state = engine.state.write().unwrap_or_else(PoisonError::into_inner);
            state.waiting = waiting;
            state.waiting_labels = labels;
        }
        Ok(engine)
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The best `ef` waiting points for `query` (exact), as graph distances.
    fn scan_waiting(
        &self,
        state: &State,
        query: &[f32],
        accept: Option<&(dyn Fn(usize) -> bool + Sync)>,
    ) -> Vec<(usize, f32)> {
        let d = self.dimension;
        state
            .waiting_labels
            .iter()
            .enumerate()
            .filter(|&(_, &label)| accept.is_none_or(|a| a(label)))
            .map(|(i, &label)| {
                let v = &state.waiting[i * d..(i + 1) * d];
                (label, self.graph_distance(query, v))
            })
            .collect()
    }

    fn graph_distance(&self, a: &[f32], b: &[f32]) -> f32 {
        match self.kind {
            Distance::Cosine | Distance::Dot => {
                1.0 - a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>()
            }
            Distance::Euclidean => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum(),
        }
    }

    /// faiss's results as `(label, graph distance)`, smaller is closer.
    fn convert(&self, labels: &[Idx], distances: &[f32]) -> Vec<(usize, f32)> {
        labels
            .iter()
            .zip(distances)
            .filter_map(|(label, &d)| {
                let label = label.get()? as usize;
                Some(match self.kind {
                    Distance::Cosine | Distance::Dot => (label, 1.0 - d),
                    Distance::Euclidean => (label, d),
                })
            })
            .collect()
    }

    fn search_with(
        &self,
        query: &[f32],
        ef: usize,
        accept: Option<&(dyn Fn(usize) -> bool + Sync)>,
    ) -> Result<Vec<(usize, f32)>> {
        // A filtered walk counts only the accepted points toward its beam's
        // worth of results: widen the beam by how few the filter accepts.
        let beam = match accept {
            Some(accept) => {
                let len = self.read().len.max(1);
                let accepted = (0..len).filter(|&label| accept(label)).count().max(1);
                (ef.saturating_mul(len) / accepted).clamp(ef, MAX_FILTERED_BEAM.max(ef))
            }
            None => ef,
        };
        if beam != self.default_ef {
            // faiss's C API has no per-search HNSW parameters: the index's
            // efSearch is changed for this search alone, under the write lock.
            let state = self.state.write().unwrap_or_else(PoisonError::into_inner);
            let space = ParameterSpace::new().map_err(|e| failed("search", e))?;
            let set = space
                .set_index_parameter(&state.index, "efSearch", beam as f64)
                .is_ok();
            let found = self.search_in(&state, query, beam, ef, accept);
            if set {
                let _ = space.set_index_parameter(&state.index, "efSearch", self.default_ef as f64);
            }
            return found;
        }
        let state = self.read();
        self.search_in(&state, query, beam, ef, accept)
    }

    /// The `want` best accepted labels among the `k` nearest faiss finds
    /// (plus the waiting points). Filtering after the walk rather than with
    /// a faiss selector: faiss's HNSW stops its walk by efSearch whatever a
    /// selector rejects, which lost matches (recall 0.77–0.93 on a 25 %
    /// filter in `tests/faiss.rs`); the caller widens `k` by the filter's
    /// selectivity, and the store searches exactly when too few come back.
    fn search_in(
        &self,
        state: &State,
        query: &[f32],
        k: usize,
        want: usize,
        accept: Option<&(dyn Fn(usize) -> bool + Sync)>,
    ) -> Result<Vec<(usize, f32)>> {
        let mut found = Vec::new();
        let added = state.index.ntotal() as usize;
        if added > 0 {
            let k = k.max(1);
            let mut distances = vec![0f32; k];
            let mut labels = vec![Idx::none(); k];
            // SAFETY: a const search on an index no one mutates (a read lock,
            // or the write lock of a search with its own beam), into buffers
            // of k results.
            let code = unsafe {
                faiss_sys::faiss_Index_search(
                    state.index.inner_ptr(),
                    1,
                    query.as_ptr(),
                    k as faiss_sys::idx_t,
                    distances.as_mut_ptr(),
                    labels.as_mut_ptr() as *mut faiss_sys::idx_t,
                )
            };
            if code != 0 {
                return Err(failed("search", last_error()));
            }
            found = self.convert(&labels, &distances);
            if let Some(accept) = accept {
                found.retain(|&(label, _)| accept(label));
            }
        }
        let want = want.max(1);
        if !state.waiting_labels.is_empty() {
            found.extend(self.scan_waiting(state, query, accept));
            if found.len() > want {
                found.select_nth_unstable_by(want - 1, |a, b| a.1.total_cmp(&b.1));
            }
            found.truncate(want);
            found.sort_by(|a, b| a.1.total_cmp(&b.1));
        }
        found.truncate(want);
        Ok(found)
    }

    /// Trains on the waiting points when there are enough, then adds them.
    fn train_waiting(&self, state: &mut State) -> Result<()> {
        if state.waiting_labels.len() < state.train_at {
            return Ok(());
        }
        if let Err(error) = state.index.train(&state.waiting) {
            // Too few points for this factory (faiss says so): wait for twice as many.
            state.train_at = state.waiting_labels.len().saturating_mul(2);
            let _ = error;
            return Ok(());
        }
        let ids: Vec<Idx> = state
            .waiting_labels
            .iter()
            .map(|&l| Idx::new(l as u64))
            .collect();
        let waiting = std::mem::take(&mut state.waiting);
        state
            .index
            .add_with_ids(&waiting, &ids)
            .map_err(|e| failed("insert points", e))?;
        state.waiting_labels.clear();
        Ok(())
    }
}

fn last_error() -> String {
    // SAFETY: faiss keeps the last error per thread; the pointer is valid until the next call.
    unsafe {
        let message = faiss_sys::faiss_get_last_error();
        if message.is_null() {
            "unknown error".into()
        } else {
            std::ffi::CStr::from_ptr(message)
                .to_string_lossy()
                .into_owned()
        }
    }
}

/// faiss's serialisation of `index`, through an in-memory stream.
fn write_index_bytes(index: &IndexImpl) -> Result<Vec<u8>> {
    let mut buffer: *mut libc::c_char = ptr::null_mut();
    let mut size: libc::size_t = 0;
    // SAFETY: open_memstream owns `buffer` until fclose, after which we copy and free it.
    unsafe {
        let stream = libc::open_memstream(&mut buffer, &mut size);
        if stream.is_null() {
            return Err(failed("serialise", std::io::Error::last_os_error()));
        }
        let code = faiss_sys::faiss_write_index(index.inner_ptr(), stream as *mut faiss_sys::FILE);
        let closed = libc::fclose(stream);
        let bytes = if buffer.is_null() {
            Vec::new()
        } else {
            std::slice::from_raw_parts(buffer as *const u8, size).to_vec()
        };
        libc::free(buffer as *mut c_void);
        if code != 0 {
            return Err(failed("serialise", last_error()));
        }
        if closed != 0 {
            return Err(failed("serialise", std::io::Error::last_os_error()));
        }
        Ok(bytes)
    }
}

/// An index from faiss's serialisation.
fn read_index_bytes(bytes: &[u8]) -> Result<IndexImpl> {
    if bytes.is_empty() {
        return Err(failed("load", "no index bytes"));
    }
    // SAFETY: fmemopen reads `bytes`, which outlive the stream (closed below).
    unsafe {
        let stream = libc::fmemopen(bytes.as_ptr() as *mut c_void, bytes.len(), c"rb".as_ptr());
        if stream.is_null() {
            return Err(failed("load", std::io::Error::last_os_error()));
        }
        let mut out = ptr::null_mut();
        let code = faiss_sys::faiss_read_index(stream as *mut faiss_sys::FILE, 0, &mut out);
        libc::fclose(stream);
        if code != 0 || out.is_null() {
            return Err(failed("load", last_error()));
        }
        Ok(IndexImpl::from_inner_ptr(out))
    }
}

impl GraphEngine for FaissIndex {
    fn len(&self) -> usize {
        self.read().len
    }

    fn quantization(&self) -> Quantization {
        Quantization::F32
    }

    fn engine_code(&self) -> u8 {
        ENGINE_FAISS
    }

    fn awaits_training(&self) -> bool {
        !self.read().waiting_labels.is_empty()
    }

    fn orders_exactly(&self) -> bool {
        stores_exact_vectors(&self.factory)
    }

    fn insert(&self, points: &[(&[f32], usize)], parallel: bool) -> Result<()> {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let threads = if parallel {
            // SAFETY: plain OpenMP runtime calls, per calling thread.
            unsafe { omp_get_num_procs() }
        } else {
            1
        };
        // SAFETY: sets this thread's OpenMP team size for faiss's parallel adds.
        unsafe { omp_set_num_threads(threads.max(1)) };
        let mut flat = Vec::with_capacity(points.len() * self.dimension);
        for (vector, _) in points {
            flat.extend_from_slice(vector);
        }
        state.len += points.len();
        if !state.index.is_trained() {
            state.waiting.extend_from_slice(&flat);
            state.waiting_labels.extend(points.iter().map(|&(_, l)| l));
            return self.train_waiting(&mut state);
        }
        let ids: Vec<Idx> = points.iter().map(|&(_, l)| Idx::new(l as u64)).collect();
        state
            .index
            .add_with_ids(&flat, &ids)
            .map_err(|e| failed("insert points", e))
    }

    fn search(&self, query: &[f32], ef: usize) -> Result<Vec<(usize, f32)>> {
        self.search_with(query, ef, None)
    }

    fn filtered_search(
        &self,
        query: &[f32],
        ef: usize,
        accept: &(dyn Fn(usize) -> bool + Sync),
    ) -> Result<Vec<(usize, f32)>> {
        self.search_with(query, ef, Some(accept))
    }

    fn save(&self, storage: &dyn Storage, dir: &Path, basename: &str) -> Result<Vec<SavedFile>> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&(self.factory.len() as u32).to_le_bytes());
        bytes.extend_from_slice(self.factory.as_bytes());
        {
            let state = self.read();
            bytes.extend_from_slice(&(state.waiting_labels.len() as u64).to_le_bytes());
            for &label in &state.waiting_labels {
                bytes.extend_from_slice(&(label as u64).to_le_bytes());
            }
            for x in &state.waiting {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
            bytes.extend(write_index_bytes(&state.index)?);
        }
        let name = format!("{basename}{FILE_SUFFIX}");
        write_atomically(storage, dir, &name, &bytes)?;
        Ok(vec![SavedFile {
            size: bytes.len() as u64,
            crc: crc32c::crc32c(&bytes),
            name,
        }])
    }
}

/// Writes `vectors` (row `i` gets id `i`) as a plain faiss index file at
/// `path`, which Python's `faiss.read_index` opens: the older layout's
/// `ann_index.faiss`.
pub fn write_plain_index(
    factory: &str,
    kind: Distance,
    dimension: usize,
    vectors: &[f32],
) -> Result<Vec<u8>> {
    let mut index = index_factory(dimension as u32, full_factory(factory), metric(kind))
        .map_err(|e| failed("start", e))?;
    if !index.is_trained() {
        index.train(vectors).map_err(|e| failed("train", e))?;
    }
    let count = vectors.len() / dimension.max(1);
    let ids: Vec<Idx> = (0..count as u64).map(Idx::new).collect();
    index
        .add_with_ids(vectors, &ids)
        .map_err(|e| failed("insert points", e))?;
    write_index_bytes(&index)
}

#[cfg(test)]
mod tests {
    use super::{full_factory, stores_exact_vectors};

    #[test]
    fn pq_codes_skip_polysemous_training() {
        assert_eq!(full_factory("IVF256,PQ48"), "IDMap2,IVF256,PQ48np");
        assert_eq!(
            full_factory("OPQ16,IVF256,PQ16x8"),
            "IDMap2,OPQ16,IVF256,PQ16x8np"
        );
        assert_eq!(full_factory("HNSW32_PQ48"), "IDMap2,HNSW32_PQ48np");
        assert_eq!(full_factory("PQ48np"), "IDMap2,PQ48np");
        assert_eq!(full_factory("IVF256,PQ48x4fs"), "IDMap2,IVF256,PQ48x4fs");
        assert_eq!(full_factory("HNSW32,Flat"), "IDMap2,HNSW32,Flat");
        assert_eq!(full_factory("IDMap,IVF64,PQ8"), "IDMap,IVF64,PQ8np");
    }

    #[test]
    fn flat_storage_ranks_exactly_and_codes_or_transforms_do_not() {
        for exact in [
            "HNSW32,Flat",
            "HNSW32",
            "Flat",
            "IVF256,Flat",
            "IVF1024_HNSW32,Flat",
            "IDMap2,Flat",
        ] {
            assert!(stores_exact_vectors(exact), "{exact}");
        }
        for approximate in [
            "IVF256,PQ48",
            "HNSW32,PQ16",
            "IVF256,SQ8",
            "OPQ16,IVF256,PQ16",
            "PCA64,HNSW32,Flat",
            "HNSW32_SQ8",
            "LSH",
            "IVF256,PQ48x4fs",
        ] {
            assert!(!stores_exact_vectors(approximate), "{approximate}");
        }
    }
}

//! Approximate nearest-neighbour search over a collection: the graph, the
//! unindexed tail, tombstones, and the graph's files.
//!
//! The collection stays the source of truth. The graph stores *labels*
//! (see [`crate::collection::Labels`]): one per version of a point's vector.
//! A search asks the graph for `ef` labels, drops the ones that are retired
//! (tombstones: deleted or replaced points) or fail the filter, adds the
//! live labels the background indexer has not reached yet (the tail), and
//! ranks all of them exactly on the collection's vectors. So a result never
//! holds a deleted id or a stale vector, and its scores are the exact ones.
//!
//! # The index map file: `index-<generation>.map`
//! Written atomically after the graph files, it says which graph label is
//! which point, so a reopened store can trust a saved graph:
//! ```text
//! u32  magic "AVIX"          u32 version (2)
//! u8   distance (0 Cosine, 1 Dot, 2 Euclidean)   u32 dimension
//! u8   engine (1: usearch; version 1 maps, from the hnsw_rs engine, had none)
//! u8   graph vector quantization (1 i8, 2 f16, 3 f32)
//! u32  file count, then per file: u32 name length, name bytes, u64 size, u32 crc32c
//! u64  labels audited, u64 labels fully audited (see `Graph::wants_full_audit`)
//! u64  label count, then per label: u8 0 (tombstone)
//!                                   | u8 1 (2: pinned), u32 crc32c of the f32 LE vector, point id
//! u32  crc32c of everything above
//! ```
//! A label is matched to the reopened collection by id *and* vector
//! checksum, so points changed after the checkpoint (replayed from the WAL)
//! are simply indexed again. A map of another version or engine is not an
//! error: the graph is a cache of the snapshot's vectors, and is rebuilt.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};

use rayon::prelude::*;

use serde::Serialize;

use crate::collection::{check_vector, Collection, CollectionConfig, Hit};
use crate::distance::{self, Distance};
use crate::error::{BatchIndex, Error, Result};
use crate::filter::Filter;
use crate::flat;
use crate::hnsw::HnswIndex;
use crate::id::PointId;
use crate::storage::codec::{check_fits, put_point_id, put_u32, put_u64, ByteReader};
use crate::storage::directory::write_atomically;
use crate::storage::fs::Storage;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// Always exact.
    Flat,
    /// A graph as soon as there is data.
    Hnsw,
    /// Exact below `min_dataset_size` points, a graph from there on.
    #[default]
    Auto,
    /// A faiss index (any factory string, see [`FaissParams`]) as soon as
    /// there is data; builds without the `faiss` feature refuse it.
    Faiss,
}

impl Algorithm {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "flat" => Ok(Algorithm::Flat),
            "hnsw" => Ok(Algorithm::Hnsw),
            "auto" => Ok(Algorithm::Auto),
            "faiss" if cfg!(feature = "faiss") => Ok(Algorithm::Faiss),
            "faiss" => Err(Error::InvalidArgument {
                name: "annAlgorithm",
                reason: "this build of annvault has no faiss engine: build it with the `faiss` \
                         cargo feature (README: \"faiss\")"
                    .into(),
            }),
            other => Err(Error::InvalidArgument {
                name: "annAlgorithm",
                reason: format!("expected 'flat', 'hnsw', 'auto' or 'faiss', got {other:?}"),
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Flat => "flat",
            Algorithm::Hnsw => "hnsw",
            Algorithm::Auto => "auto",
            Algorithm::Faiss => "faiss",
        }
    }
}

/// The faiss engine's settings (`annAlgorithm: 'faiss'`).
#[derive(Debug, Clone, PartialEq)]
pub struct FaissParams {
    /// A faiss index factory string: `'HNSW32,Flat'` (the default),
    /// `'IVF1024,Flat'`, `'IVF256,PQ32'`, … (wrapped in `IDMap2` unless it
    /// starts with an `IDMap`).
    pub factory: String,
    /// IVF cells visited per search (`None`: faiss's default, 1).
    pub nprobe: Option<usize>,
    /// Points an index that needs training (IVF, PQ) is first trained on;
    /// until then they are searched exactly.
    pub train_points: usize,
}

/// The default faiss index: HNSW, 32 links per node, f32 vectors.
pub const DEFAULT_FAISS_FACTORY: &str = "HNSW32,Flat";

/// Longest faiss factory string accepted.
pub const MAX_FAISS_FACTORY_LEN: usize = 256;

impl Default for FaissParams {
    fn default() -> Self {
        FaissParams {
            factory: DEFAULT_FAISS_FACTORY.to_owned(),
            nprobe: None,
            train_points: 10_000,
        }
    }
}

/// The fewest dimensions for which `Quantization::Auto` takes i8 codes
/// (Cosine): see [`Quantization::resolve`].
pub const AUTO_I8_MIN_DIMENSION: usize = 64;

/// How the graph stores its own copy of the vectors. The collection keeps
/// the exact f32 vectors and ranks the graph's candidates on them, so this
/// trades only the graph's navigation precision (recall at a given
/// `efSearch`) for memory and speed, never the scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quantization {
    /// `I8` for Cosine, `F32` for Dot and Euclidean.
    #[default]
    Auto,
    /// Each vector scaled to unit length, then to 8-bit integers: a
    /// quarter of the memory, about twice the search speed at equal recall
    /// on the real-text dataset. Cosine only: it discards the length.
    I8,
    /// Half precision: Cosine only (other vectors may not fit an f16).
    F16,
    F32,
}

impl Quantization {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "auto" => Ok(Quantization::Auto),
            "i8" => Ok(Quantization::I8),
            "f16" => Ok(Quantization::F16),
            "f32" => Ok(Quantization::F32),
            other => Err(Error::InvalidArgument {
                name: "hnsw.quantization",
                reason: format!("expected 'auto', 'i8', 'f16' or 'f32', got {other:?}"),
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Quantization::Auto => "auto",
            Quantization::I8 => "i8",
            Quantization::F16 => "f16",
            Quantization::F32 => "f32",
        }
    }

    /// What the graph of a `kind` collection of `dimension` uses; an error
    /// when the choice cannot represent its vectors. `Auto` takes i8 codes
    /// for Cosine only from [`AUTO_I8_MIN_DIMENSION`] dimensions: below, a
    /// code's 1/127 steps merge distinct points (20,000 3-d points on a
    /// curve left a third of them unfindable with i8, none with f32), and
    /// the memory i8 saves is small beside the node's links.
    pub fn resolve(self, kind: Distance, dimension: usize) -> Result<Self> {
        match (self, kind) {
            (Quantization::Auto, Distance::Cosine) if dimension >= AUTO_I8_MIN_DIMENSION => {
                Ok(Quantization::I8)
            }
            (Quantization::Auto, _) => Ok(Quantization::F32),
            (Quantization::I8 | Quantization::F16, Distance::Dot | Distance::Euclidean) => {
                Err(Error::InvalidArgument {
                    name: "hnsw.quantization",
                    reason: format!(
                        "'{}' is for Cosine collections only ({} needs the vectors' length and range): use 'f32'",
                        self.name(),
                        kind.name()
                    ),
                })
            }
            (chosen, _) => Ok(chosen),
        }
    }
}

/// Graph parameters. Defaults measured on the real-text dataset
/// (20,000 × 384, see BENCHMARKS.md): `m` 16, `efConstruction` 100 and
/// 8-bit graph vectors give recall@10 ≈ 0.985 at `efSearch` 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    pub m: usize,
    pub ef_construction: usize,
    pub ef_search: usize,
    pub quantization: Quantization,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 100,
            ef_search: 64,
            quantization: Quantization::Auto,
        }
    }
}

/// Points the indexer inserts between two looks at the foreground (see
/// [`Graph::insert`]): a few milliseconds of both cores.
const INSERT_SLICE: usize = 512;

/// Points an audit checks between two looks at the foreground.
const AUDIT_SLICE: usize = 2048;

/// Exact scores this close (relative) count as equal when an audit confirms
/// a miss: f32 sums of the same products in another order.
const TIE: f32 = 1e-6;

pub const MAX_M: usize = 128;
pub const MAX_EF: usize = 65_536;

/// Checks a per-query `efSearch` given as a JS number: an integer from 1 to
/// [`MAX_EF`], the same bounds as the configured `hnsw.efSearch`.
pub fn parse_ef_search(value: f64) -> Result<usize> {
    if !(value.is_finite() && value.fract() == 0.0 && value >= 1.0 && value <= MAX_EF as f64) {
        return Err(Error::InvalidArgument {
            name: "efSearch",
            reason: format!("must be an integer from 1 to {MAX_EF}, got {value}"),
        });
    }
    Ok(value as usize)
}

impl HnswParams {
    pub fn new(m: usize, ef_construction: usize, ef_search: usize) -> Result<Self> {
        let check = |name: &'static str, value: usize, min: usize, max: usize| {
            if value < min || value > max {
                return Err(Error::InvalidArgument {
                    name,
                    reason: format!("must be an integer from {min} to {max}, got {value}"),
                });
            }
            Ok(())
        };
        check("hnsw.m", m, 2, MAX_M)?;
        check("hnsw.efConstruction", ef_construction, 1, MAX_EF)?;
        check("hnsw.efSearch", ef_search, 1, MAX_EF)?;
        Ok(HnswParams {
            m,
            ef_construction,
            ef_search,
            quantization: Quantization::Auto,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AnnConfig {
    pub algorithm: Algorithm,
    pub min_dataset_size: usize,
    pub hnsw: HnswParams,
    pub faiss: FaissParams,
    /// Rebuild the graph when this fraction of its labels are tombstones.
    pub rebuild_fraction: f64,
    /// How long a clean close waits for the indexer to take in every point
    /// before it saves the graph, so the next open searches the whole graph
    /// from its first query. Zero: save whatever is indexed.
    pub close_wait: std::time::Duration,
    /// Labels one audit step searches for by their own vector (see
    /// [`DEFAULT_AUDIT_PIECE`]); tests lower it to audit small graphs in
    /// pieces.
    pub audit_piece: usize,
}

impl Default for AnnConfig {
    fn default() -> Self {
        AnnConfig {
            algorithm: Algorithm::Auto,
            min_dataset_size: 1000,
            hnsw: HnswParams::default(),
            faiss: FaissParams::default(),
            rebuild_fraction: 0.2,
            close_wait: DEFAULT_CLOSE_WAIT,
            audit_piece: DEFAULT_AUDIT_PIECE,
        }
    }
}

/// Labels one audit step searches for by their own vector. An audit of a
/// large graph goes a piece at a time, each recorded when it ends: the
/// prepared vectors it copies stay bounded (65,536 × 384 f32 is 96 MiB,
/// where one step over 1,000,000 labels copied 1.4 GiB), writes and
/// rebuild decisions come between pieces, and a process that stops early
/// keeps (and saves with its graph) how far its audits got.
pub const DEFAULT_AUDIT_PIECE: usize = 65_536;

/// The default of [`AnnConfig::close_wait`]: about what indexing 200,000
/// points takes on two cores.
pub const DEFAULT_CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

impl AnnConfig {
    pub fn flat() -> Self {
        AnnConfig {
            algorithm: Algorithm::Flat,
            ..AnnConfig::default()
        }
    }

    /// Checks what an open must refuse: a quantization the distance cannot
    /// take, a faiss factory string faiss does not build.
    pub fn validate(&self, kind: Distance, dimension: usize) -> Result<()> {
        self.hnsw.quantization.resolve(kind, dimension)?;
        #[cfg(feature = "faiss")]
        if self.algorithm == Algorithm::Faiss {
            crate::faiss_index::check_factory(
                &self.faiss.factory,
                self.faiss.nprobe,
                kind,
                dimension,
            )?;
        }
        let _ = dimension;
        Ok(())
    }

    /// Whether a collection of `live` points should be searched through a graph.
    pub fn wants_graph(&self, live: usize) -> bool {
        match self.algorithm {
            Algorithm::Flat => false,
            Algorithm::Hnsw | Algorithm::Faiss => live > 0,
            Algorithm::Auto => live >= self.min_dataset_size.max(1),
        }
    }
}

/// The graph engine behind the index: one trait, so the engine stays cheap
/// to change. Labels are `usize`; inserts and searches take `&self` and may
/// run concurrently.
pub trait GraphEngine: Send + Sync {
    /// Points in the graph (tombstones included).
    fn len(&self) -> usize;
    /// How the graph stores its vectors (resolved: never `Auto`).
    fn quantization(&self) -> Quantization;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Adds `(vector, label)` pairs, vectors already prepared by
    /// [`prepare`]. Large batches use every core when `parallel`.
    fn insert(&self, points: &[(&[f32], usize)], parallel: bool) -> Result<()>;
    /// Up to `ef` labels near `query` (prepared), best first, with their
    /// graph distances.
    fn search(&self, query: &[f32], ef: usize) -> Result<Vec<(usize, f32)>>;
    /// Up to `ef` labels near `query` that `accept`, best first. The graph
    /// is walked through rejected labels too, so that the accepted ones
    /// beyond them are reached.
    fn filtered_search(
        &self,
        query: &[f32],
        ef: usize,
        accept: &(dyn Fn(usize) -> bool + Sync),
    ) -> Result<Vec<(usize, f32)>>;
    /// Writes the graph as `dir/<basename>.*` through `storage`, durably;
    /// returns the files written.
    fn save(&self, storage: &dyn Storage, dir: &Path, basename: &str) -> Result<Vec<SavedFile>>;
    /// The engine's code in the index map (`ENGINE_*`).
    fn engine_code(&self) -> u8 {
        ENGINE_USEARCH
    }
    /// Whether points wait, unplaced, for the engine to be trained (faiss's
    /// IVF and PQ): searches scan them exactly, and an audit of them would
    /// check nothing (and cost a scan of all of them per point).
    fn awaits_training(&self) -> bool {
        false
    }
    /// Whether the engine's own distances order candidates as the exact
    /// f32 ones do (up to rounding): then only the best few need an exact
    /// re-rank (see [`rerank_count`]).
    fn orders_exactly(&self) -> bool {
        self.quantization() == Quantization::F32
    }
    /// Links per node, for engines that have such a setting.
    fn connectivity(&self) -> Option<usize> {
        None
    }
}

/// One file of a saved graph, as the index map records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedFile {
    pub name: String,
    pub size: u64,
    pub crc: u32,
}

/// The vector the graph stores for `vector`: unit length for cosine (so the
/// graph compares with one dot product), unchanged otherwise.
pub fn prepare(kind: Distance, vector: &[f32], inverse_norm: f32) -> Vec<f32> {
    match kind {
        Distance::Cosine => vector.iter().map(|x| x * inverse_norm).collect(),
        _ => vector.to_vec(),
    }
}

/// Pinned labels (ascending) and 8-bit codes of their prepared vectors,
/// back to back: a search scans them in one contiguous pass (a quarter of
/// the memory of the vectors) and ranks the few closest exactly afterwards.
#[derive(Default)]
struct Pinned {
    labels: Vec<usize>,
    codes: Vec<i8>,
    /// Per vector: the scale of its codes, and `‖v‖²` (for Euclidean).
    scales: Vec<f32>,
    squared_norms: Vec<f32>,
}

impl From<Vec<(usize, Vec<f32>)>> for Pinned {
    fn from(mut points: Vec<(usize, Vec<f32>)>) -> Self {
        points.sort_unstable_by_key(|(label, _)| *label);
        points.dedup_by_key(|(label, _)| *label);
        let mut pinned = Pinned::default();
        for (label, vector) in &points {
            pinned.labels.push(*label);
            pinned
                .scales
                .push(distance::quantize_i8(vector, &mut pinned.codes));
            pinned.squared_norms.push(distance::dot(vector, vector));
        }
        pinned
    }
}

impl Pinned {
    fn dim(&self) -> usize {
        self.codes.len().checked_div(self.labels.len()).unwrap_or(0)
    }

    /// Appends entry `i` of `from`.
    fn push_entry(&mut self, from: &Pinned, i: usize) {
        let dim = from.dim();
        self.labels.push(from.labels[i]);
        self.codes
            .extend_from_slice(&from.codes[i * dim..(i + 1) * dim]);
        self.scales.push(from.scales[i]);
        self.squared_norms.push(from.squared_norms[i]);
    }

    /// Adds `more`, merged by label (a label already pinned keeps its entry).
    fn extend(&mut self, more: Vec<(usize, Vec<f32>)>) {
        if more.is_empty() {
            return;
        }
        let (old, new) = (std::mem::take(self), Pinned::from(more));
        let (mut i, mut j) = (0, 0);
        loop {
            match (old.labels.get(i), new.labels.get(j)) {
                (None, None) => break,
                (Some(a), Some(b)) if b < a => {
                    self.push_entry(&new, j);
                    j += 1;
                }
                (Some(a), b) => {
                    if b == Some(a) {
                        j += 1;
                    }
                    self.push_entry(&old, i);
                    i += 1;
                }
                (None, Some(_)) => {
                    self.push_entry(&new, j);
                    j += 1;
                }
            }
        }
    }
}

/// Appends to `chosen` the labels of `scored` (closest first) that
/// `accept`, until it holds `keep`.
fn accept_in_order(
    pinned: &Pinned,
    scored: &[(f32, usize)],
    keep: usize,
    chosen: &mut Vec<usize>,
    accept: &impl Fn(usize) -> bool,
) {
    for &(_, i) in scored {
        if chosen.len() >= keep {
            return;
        }
        let label = pinned.labels[i];
        if accept(label) {
            chosen.push(label);
        }
    }
}

/// `labels` with their prepared vectors, from `collection` (labels no
/// longer live are left out).
pub fn prepared_points(
    collection: &Collection,
    labels: impl IntoIterator<Item = usize>,
) -> Vec<(usize, Vec<f32>)> {
    let arena = collection.arena();
    let kind = collection.config().distance;
    labels
        .into_iter()
        .filter_map(|label| {
            let slot = collection.labels().slot(label)?;
            Some((
                label,
                prepare(kind, arena.get(slot), arena.inverse_norm(slot)),
            ))
        })
        .collect()
}

/// A graph and how far it has indexed the label space it was built for.
pub struct Graph {
    pub engine: Box<dyn GraphEngine>,
    /// The label epoch of the collection this graph belongs to.
    pub epoch: u64,
    /// Labels below this are in the graph (or were tombstones when reached).
    indexed: AtomicUsize,
    /// Labels whose own vector did not find them first at an audit: every
    /// search ranks them exactly, so each stored point stays findable even
    /// where the graph's greedy search cannot reach it (a few points per
    /// 10,000 on real data). Sorted.
    pinned: RwLock<Pinned>,
    /// `indexed` as of the last audit.
    audited: AtomicUsize,
    /// `indexed` as of the last audit of every label (see
    /// [`Graph::wants_full_audit`]).
    fully_audited: AtomicUsize,
    /// Labels given to points an audit found unreachable, so that the graph
    /// takes them in again (see [`Graph::triage`]); not yet audited.
    repaired: Mutex<BTreeSet<usize>>,
    /// See [`Graph::retire`].
    retired: AtomicBool,
    /// Points audits found unreachable past the pin budget (see
    /// [`pin_budget`]): counted, not pinned.
    unfindable: AtomicUsize,
    /// The last full audit inserted points again.
    full_repairs: AtomicBool,
    /// Points audits inserted again (see [`Graph::triage`]), rechecks whose
    /// sample was clean, and audits of every label, since this graph was
    /// built or opened: what `stats()` reports of the audits.
    reinserted: AtomicUsize,
    rechecks: AtomicUsize,
    full_audits: AtomicUsize,
    /// Labels audited for the first time (not inserted again), and how many
    /// of them a search missed: the graph's own miss rate, which decides
    /// whether it is rebuilt with more links (see [`Graph::wants_more_links`]).
    first_audits: AtomicUsize,
    first_misses: AtomicUsize,
    /// An audit of every label under way, a piece at a time (see
    /// [`FullPass`]).
    full_pass: Mutex<Option<FullPass>>,
}

/// An audit of every label below `upto`, done a piece of labels at a time
/// so that the vectors it copies stay bounded and writes and searches run
/// between its pieces. What it found is recorded when its last piece ends
/// (its pins replace the pinned set then); a rebuild or a close drops it
/// with its graph.
#[derive(Debug)]
pub struct FullPass {
    /// The graph's `indexed` when the pass began: the labels it audits.
    pub upto: usize,
    /// The first label its next piece audits.
    pub next: usize,
    /// Labels its pieces found unreachable and will pin (ascending).
    pub pins: Vec<usize>,
    /// Whether it only pins (the last full audit inserted points again).
    pub pin_only: bool,
    /// Whether it inserted points again.
    pub reissued: bool,
    /// Whether its pieces may use every core (see `unreachable`).
    pub parallel: bool,
    /// Time spent in its pieces so far.
    pub spent: std::time::Duration,
}

/// How many points may be pinned in a graph over `live` points: 0.5 % of
/// them, and at least [`MIN_PIN_BUDGET`]. Every search scores every pinned
/// point (8-bit codes, one pass), so the budget bounds what findability
/// costs a search: at 1,000,000 points, 5,000 codes, under a fifth of a
/// millisecond at 384 dimensions.
pub fn pin_budget(live: usize) -> usize {
    (live / 200).max(MIN_PIN_BUDGET)
}

/// The pin budget of small collections.
pub const MIN_PIN_BUDGET: usize = 64;

/// Audited points a graph's miss rate is judged on (see
/// [`Graph::wants_more_links`]).
pub const WEAK_GRAPH_MIN_AUDITS: usize = 10_000;

/// The fraction of audited points a graph may leave unreachable before it
/// is rebuilt with more links: past it, the pin budget (0.5 %) would not
/// hold them once the graph grows.
pub const WEAK_GRAPH_MISS_RATE: f64 = 0.003;

/// Neighbours of each point inserted again that its audit checks too
/// (see [`Graph::neighbourhood`]).
pub const REPAIR_NEIGHBOURHOOD: usize = 32;

/// Labels a recheck searches (see [`Graph::wants_full_audit`]): enough
/// that points cut off at a rate of 0.2 % show up in three rechecks of four.
pub const RECHECK_SAMPLE: usize = 1000;

/// Of the sampled labels, how many must turn out cut off for a recheck to
/// audit every label: one could be chance, and pinning it costs nothing.
pub const RECHECK_ESCALATE: usize = 2;

/// `count` labels spread evenly over `0..below`, leaving out `skip`
/// (ascending: the pinned ones, which a search finds anyway).
pub fn recheck_sample(below: usize, count: usize, skip: &[usize]) -> Vec<usize> {
    if below == 0 || count == 0 {
        return Vec::new();
    }
    let step = (below as f64 / count as f64).max(1.0);
    let mut sample: Vec<usize> = (0..count.min(below))
        .map(|i| ((i as f64 + 0.5) * step) as usize)
        .filter(|&label| label < below && skip.binary_search(&label).is_err())
        .collect();
    sample.dedup();
    sample
}

impl Graph {
    pub fn new(
        engine: Box<dyn GraphEngine>,
        epoch: u64,
        indexed: usize,
        pinned: Vec<(usize, Vec<f32>)>,
    ) -> Self {
        Graph {
            engine,
            epoch,
            indexed: AtomicUsize::new(indexed),
            pinned: RwLock::new(Pinned::from(pinned)),
            audited: AtomicUsize::new(indexed),
            fully_audited: AtomicUsize::new(indexed),
            repaired: Mutex::new(BTreeSet::new()),
            retired: AtomicBool::new(false),
            unfindable: AtomicUsize::new(0),
            full_repairs: AtomicBool::new(false),
            reinserted: AtomicUsize::new(0),
            rechecks: AtomicUsize::new(0),
            full_audits: AtomicUsize::new(0),
            first_audits: AtomicUsize::new(0),
            first_misses: AtomicUsize::new(0),
            full_pass: Mutex::new(None),
        }
    }

    /// The audit of every label under way, if any (taken: the caller puts
    /// it back with [`Graph::resume_full_pass`] while pieces remain).
    pub fn take_full_pass(&self) -> Option<FullPass> {
        self.full_pass
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Keeps `pass` for the next audit step.
    pub fn resume_full_pass(&self, pass: FullPass) {
        *self
            .full_pass
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(pass);
    }

    /// Whether an audit of every label is under way.
    pub fn in_full_pass(&self) -> bool {
        self.full_pass
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Splits the labels an audit found unreachable into those to insert
    /// again under new labels (a point inserted later gets links from its
    /// neighbours then, and its own search usually reaches it; tried once)
    /// and those to pin: the ones already inserted again.
    pub fn triage(&self, missed: Vec<usize>) -> (Vec<usize>, Vec<usize>) {
        let repaired = self.repaired.lock().unwrap_or_else(PoisonError::into_inner);
        missed
            .into_iter()
            .partition(|label| !repaired.contains(label))
    }

    /// How many labels in `range` points were reissued under after an audit
    /// (not yet audited again).
    pub fn repaired_in(&self, range: std::ops::Range<usize>) -> usize {
        self.repaired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .range(range)
            .count()
    }

    /// The labels in `range` points were reissued under after an audit.
    pub fn repaired_labels_in(&self, range: std::ops::Range<usize>) -> Vec<usize> {
        self.repaired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .range(range)
            .copied()
            .collect()
    }

    /// Labels below `below` near `points` in the graph (the first `width`
    /// a search for each returns), pinned ones left out, ascending. Inserting
    /// a point links its neighbours to it, and a neighbour whose list is
    /// full drops a link to make room: the points cut off that way lie
    /// here, so an audit of the points inserted again checks these too.
    pub fn neighbourhood(
        &self,
        points: &[(usize, Vec<f32>)],
        below: usize,
        width: usize,
    ) -> Result<Vec<usize>> {
        let found: Result<Vec<Vec<(usize, f32)>>> = points
            .par_iter()
            .map(|(_, vector)| self.engine.search(vector, width))
            .collect();
        let pinned = self.pinned();
        let mut near: Vec<usize> = found?
            .into_iter()
            .flatten()
            .map(|(label, _)| label)
            .filter(|&label| label < below && pinned.binary_search(&label).is_err())
            .collect();
        near.sort_unstable();
        near.dedup();
        Ok(near)
    }

    /// Records the labels points were reissued under after an audit.
    pub fn note_repairs(&self, labels: Vec<usize>) {
        self.reinserted.fetch_add(labels.len(), Ordering::AcqRel);
        self.repaired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(labels);
    }

    pub fn audited(&self) -> usize {
        self.audited.load(Ordering::Acquire)
    }

    pub fn fully_audited(&self) -> usize {
        self.fully_audited.load(Ordering::Acquire)
    }

    /// Sets how far the graph had been audited, incrementally and fully, as
    /// its saved map records it.
    pub fn restore_audits(&self, audited: usize, fully_audited: usize) {
        let indexed = self.indexed();
        self.audited.store(audited.min(indexed), Ordering::Release);
        self.fully_audited
            .store(fully_audited.min(indexed), Ordering::Release);
    }

    /// Whether the next audit should look again at labels audited before,
    /// rather than only at the ones indexed since the last audit: once the
    /// graph has grown by a quarter since the last such *recheck*. Inserting
    /// points can leave an older point unreachable (its last in-link
    /// pruned). A recheck searches a sample of the older labels
    /// ([`recheck_sample`]) and audits every label only when the sample
    /// finds such points, so that audits stay near one narrow search per
    /// inserted point instead of one per label at every recheck.
    pub fn wants_full_audit(&self) -> bool {
        let fully = self.fully_audited.load(Ordering::Acquire);
        self.indexed() * 4 >= fully * 5 && self.indexed() > fully
    }

    /// Records a recheck whose sample found no point cut off since its
    /// audit: the labels below `upto` count as fully audited, the pins stay.
    pub fn record_recheck(&self, upto: usize) {
        self.fully_audited.fetch_max(upto, Ordering::AcqRel);
        self.rechecks.fetch_add(1, Ordering::AcqRel);
    }

    /// Records an audit of the labels below `upto`. A full audit's `missed`
    /// (labels and prepared vectors) replace the pinned set; an incremental
    /// one's join it.
    pub fn record_audit(&self, upto: usize, missed: Vec<(usize, Vec<f32>)>, full: bool) {
        if let Ok(mut pinned) = self.pinned.write() {
            if full {
                *pinned = Pinned::from(missed);
            } else {
                pinned.extend(missed);
            }
        }
        if full {
            self.fully_audited.store(upto, Ordering::Release);
            self.full_audits.fetch_add(1, Ordering::AcqRel);
        }
        self.repaired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|&label| label >= upto);
        self.audited.store(upto, Ordering::Release);
    }

    /// Keeps of `missed` (labels an audit would pin, ascending) what fits
    /// the pin budget of a graph over `live` points, and counts the rest as
    /// unfindable. A full audit's pins replace the pinned set; an
    /// incremental one's add to it.
    pub fn within_budget(&self, mut missed: Vec<usize>, live: usize, full: bool) -> Vec<usize> {
        let room = pin_budget(live).saturating_sub(if full { 0 } else { self.pinned_len() });
        let over = missed.len().saturating_sub(room);
        missed.truncate(room);
        if full {
            self.unfindable.store(over, Ordering::Release);
        } else {
            self.unfindable.fetch_add(over, Ordering::AcqRel);
        }
        missed
    }

    /// Points past the pin budget at the audits so far (see [`pin_budget`]).
    pub fn unfindable(&self) -> usize {
        self.unfindable.load(Ordering::Acquire)
    }

    /// Records an audit of `audited` labels never audited before, `missed`
    /// of which a search for their own vector missed.
    pub fn note_first_audit(&self, audited: usize, missed: usize) {
        self.first_audits.fetch_add(audited, Ordering::AcqRel);
        self.first_misses.fetch_add(missed, Ordering::AcqRel);
    }

    /// The links per node a rebuild should give this graph, when it has
    /// `links` now and `configured` was asked for: more (half as many
    /// again, up to twice the configured count) once audits of at least
    /// [`WEAK_GRAPH_MIN_AUDITS`] points found more than
    /// [`WEAK_GRAPH_MISS_RATE`] of them unreachable. Such a graph is weak
    /// everywhere, not in a few places: on the clustered benchmark set
    /// (100,000 × 384) `m` 16 leaves 0.5–0.7 % of the points unreachable by
    /// their own vector and inserting them again reaches only a third of
    /// those, at any expansion; `m` 24 leaves 0.2 %, `m` 32 0.13 %.
    pub fn wants_more_links(&self, links: usize, configured: usize) -> Option<usize> {
        let audited = self.first_audits.load(Ordering::Acquire);
        let missed = self.first_misses.load(Ordering::Acquire);
        let most = (2 * configured).min(MAX_M);
        let weak = audited >= WEAK_GRAPH_MIN_AUDITS
            && missed as f64 > WEAK_GRAPH_MISS_RATE * audited as f64;
        (weak && links < most).then(|| (links + links / 2).clamp(links + 1, most))
    }

    /// Starts the graph's miss rate afresh once it has been judged on at
    /// least [`WEAK_GRAPH_MIN_AUDITS`] points and found sound: the rate
    /// grows with the graph (on the clustered benchmark set, `m` 16 misses
    /// 0.5 % of 100,000 points and 5 % of 300,000), so audits that keep pace
    /// with a growing graph judge it on its latest points, not on an
    /// average that its small beginnings dilute.
    pub fn end_miss_window(&self) {
        if self.first_audits.load(Ordering::Acquire) >= WEAK_GRAPH_MIN_AUDITS {
            self.first_audits.store(0, Ordering::Release);
            self.first_misses.store(0, Ordering::Release);
        }
    }

    /// Points audits inserted again, clean sampled rechecks, and audits of
    /// every label, since this graph was built or opened.
    pub fn audit_counts(&self) -> (usize, usize, usize) {
        (
            self.reinserted.load(Ordering::Acquire),
            self.rechecks.load(Ordering::Acquire),
            self.full_audits.load(Ordering::Acquire),
        )
    }

    /// Records that a full audit inserted points again: the next full
    /// audit only pins (see [`Graph::take_full_repairs`]).
    pub fn note_full_repairs(&self) {
        self.full_repairs.store(true, Ordering::Release);
    }

    /// Whether the last full audit inserted points again (and clears it).
    pub fn take_full_repairs(&self) -> bool {
        self.full_repairs.swap(false, Ordering::AcqRel)
    }

    pub fn pinned_len(&self) -> usize {
        self.pinned
            .read()
            .map(|p| p.labels.len())
            .unwrap_or_default()
    }

    /// The pinned labels, ascending.
    pub fn pinned(&self) -> Vec<usize> {
        self.pinned
            .read()
            .map(|p| p.labels.clone())
            .unwrap_or_default()
    }

    /// Pinned labels that `accept`, at least the `limit` closest to
    /// `query` (prepared) among them: the closest by their 8-bit codes,
    /// with a margin for the codes' rounding, to be ranked exactly by the
    /// caller. `accept` is asked only of labels close enough to be kept.
    fn closest_pinned(
        &self,
        kind: Distance,
        query: &[f32],
        limit: usize,
        accept: impl Fn(usize) -> bool,
    ) -> Vec<usize> {
        let Ok(pinned) = self.pinned.read() else {
            return Vec::new();
        };
        if pinned.labels.is_empty() || limit == 0 {
            return Vec::new();
        }
        let dim = query.len().max(1);
        let keep = limit + PINNED_MARGIN;
        let mut query_codes = Vec::with_capacity(dim);
        let query_scale = distance::quantize_i8(query, &mut query_codes);
        let mut scored: Vec<(f32, usize)> = pinned
            .codes
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, codes)| {
                let dot =
                    query_scale * pinned.scales[i] * distance::dot_i8(&query_codes, codes) as f32;
                let closeness = match kind {
                    Distance::Cosine | Distance::Dot => dot,
                    // −‖q − v‖² without the query's own (constant) term.
                    Distance::Euclidean => 2.0 * dot - pinned.squared_norms[i],
                };
                (closeness, i)
            })
            .collect();
        // `accept` (a label lookup, maybe a filter) is asked in order of
        // closeness, only until `keep` pass: the best `2 × keep` are put in
        // order first, the rest only if too many of those are refused.
        let by_closeness = |a: &(f32, usize), b: &(f32, usize)| b.0.total_cmp(&a.0);
        let first = (2 * keep).min(scored.len());
        if first < scored.len() {
            scored.select_nth_unstable_by(first, by_closeness);
        }
        scored[..first].sort_unstable_by(by_closeness);
        let mut chosen = Vec::with_capacity(keep);
        accept_in_order(&pinned, &scored[..first], keep, &mut chosen, &accept);
        if chosen.len() < keep && first < scored.len() {
            scored[first..].sort_unstable_by(by_closeness);
            accept_in_order(&pinned, &scored[first..], keep, &mut chosen, &accept);
        }
        chosen
    }

    /// Inserts `points` a slice at a time, each on every core unless
    /// `foreground()` says searches or writes are waiting for the CPU: then
    /// on this thread alone, leaving the other cores to them.
    pub fn insert(
        &self,
        points: &[(usize, Vec<f32>)],
        foreground: &dyn Fn() -> bool,
    ) -> Result<()> {
        self.insert_counting(points, foreground, &mut |_| {})
    }

    /// [`Graph::insert`], telling `done` how many points are in after each slice.
    pub fn insert_counting(
        &self,
        points: &[(usize, Vec<f32>)],
        foreground: &dyn Fn() -> bool,
        done: &mut dyn FnMut(usize),
    ) -> Result<()> {
        let mut inserted = 0;
        for slice in points.chunks(INSERT_SLICE) {
            let refs: Vec<(&[f32], usize)> =
                slice.iter().map(|(l, v)| (v.as_slice(), *l)).collect();
            self.engine.insert(&refs, !foreground())?;
            inserted += slice.len();
            done(inserted);
        }
        Ok(())
    }

    /// Searches each point's own vector and returns the labels a search
    /// could miss: those the graph puts neither among the candidates a
    /// search ranks exactly (see [`rerank_count`]) nor level with its first.
    /// Whether a search really misses one is for the caller to confirm
    /// ([`confirm_missed`]): duplicates take a missed copy's place. A narrow
    /// search (`efSearch` 16) clears most points first, at about a quarter
    /// of the cost of one at 64.
    pub fn unreachable(
        &self,
        points: &[(usize, Vec<f32>)],
        ef_search: usize,
        parallel: &dyn Fn() -> bool,
    ) -> Result<Vec<usize>> {
        // An engine with coarse distances (faiss's PQ) re-ranks all `ef`
        // candidates, so being among them is being found.
        let engine = self.engine.as_ref();
        let found_near = |label: usize, vector: &[f32], ef: usize| -> Result<bool> {
            let found = self.engine.search(vector, ef)?;
            let first = found.first().map_or(f32::INFINITY, |f| f.1);
            let window = rerank_count(engine, 1, ef);
            Ok(found
                .iter()
                .enumerate()
                .any(|(i, (l, d))| *l == label && (i < window || *d <= first)))
        };
        let narrow = ef_search.min(16);
        let check = |(label, vector): &(usize, Vec<f32>)| -> Result<Option<usize>> {
            if self.is_retired() {
                // Nobody will read the answer: stop early (the caller checks).
                return Ok(None);
            }
            let found = found_near(*label, vector, narrow)?
                || (ef_search > narrow && found_near(*label, vector, ef_search)?);
            Ok((!found).then_some(*label))
        };
        // A slice at a time, each on every core only while `parallel()`.
        let mut missed = Vec::new();
        for slice in points.chunks(AUDIT_SLICE) {
            let found: Result<Vec<Option<usize>>> = if parallel() {
                slice.par_iter().map(check).collect()
            } else {
                slice.iter().map(check).collect()
            };
            missed.extend(found?.into_iter().flatten());
        }
        missed.sort_unstable();
        Ok(missed)
    }

    /// Marks the graph as no longer the store's (closed, or replaced by a
    /// rebuild): work on it stops early.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    pub fn indexed(&self) -> usize {
        self.indexed.load(Ordering::Acquire)
    }

    pub fn set_indexed(&self, upto: usize) {
        self.indexed.fetch_max(upto, Ordering::AcqRel);
    }
}

/// Builds an empty graph engine for `config`.
pub fn new_engine(
    config: &AnnConfig,
    kind: Distance,
    dimension: usize,
    capacity: usize,
) -> Result<Box<dyn GraphEngine>> {
    if config.algorithm == Algorithm::Faiss {
        return faiss_engine(config, kind, dimension, None);
    }
    Ok(Box::new(HnswIndex::new(
        &config.hnsw,
        kind,
        dimension,
        capacity,
    )?))
}

/// A faiss engine: new, or loaded from a saved file's bytes.
#[cfg(feature = "faiss")]
fn faiss_engine(
    config: &AnnConfig,
    kind: Distance,
    dimension: usize,
    saved: Option<&[u8]>,
) -> Result<Box<dyn GraphEngine>> {
    use crate::faiss_index::FaissIndex;
    Ok(Box::new(match saved {
        Some(bytes) => {
            FaissIndex::load(&config.faiss, kind, dimension, config.hnsw.ef_search, bytes)?
        }
        None => FaissIndex::new(&config.faiss, kind, dimension, config.hnsw.ef_search)?,
    }))
}

#[cfg(not(feature = "faiss"))]
fn faiss_engine(
    _config: &AnnConfig,
    _kind: Distance,
    _dimension: usize,
    _saved: Option<&[u8]>,
) -> Result<Box<dyn GraphEngine>> {
    Err(Error::InvalidArgument {
        name: "annAlgorithm",
        reason: "this build of annvault has no faiss engine".into(),
    })
}

/// How the configured engine stores its vectors (what a saved graph must match).
fn engine_quantization(
    config: &AnnConfig,
    kind: Distance,
    dimension: usize,
) -> Result<Quantization> {
    match config.algorithm {
        Algorithm::Faiss => Ok(Quantization::F32),
        _ => config.hnsw.quantization.resolve(kind, dimension),
    }
}

/// What `stats()` reports about the index.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexStats {
    /// "flat" or "hnsw": what a search uses right now.
    pub algorithm: &'static str,
    pub configured: &'static str,
    pub graph_size: usize,
    /// How the graph stores its vectors ("i8", "f16", "f32").
    pub quantization: Option<&'static str>,
    /// Points a search for their own vector does not reach through the
    /// graph, ranked exactly by every search instead (at most
    /// [`pin_budget`]).
    pub pinned: usize,
    /// Points like the pinned ones past the pin budget, found by the
    /// audits since this process opened the graph: a search for their own
    /// vector may not return them.
    pub unfindable: usize,
    /// Why the pinned points are few: points audits found unreachable and
    /// inserted again under a new label (a point is pinned only when its
    /// own vector misses it again after that), since this graph was built
    /// or opened.
    pub reinserted: usize,
    /// Rechecks of older points that searched a sample and found the graph
    /// sound, and audits of every label (a recheck whose sample found
    /// points cut off), since this graph was built or opened.
    pub rechecks: usize,
    pub full_audits: usize,
    /// Links per node of the graph in use (`hnsw.m`, or more after a
    /// rebuild for a graph that left too many points unreachable).
    pub connectivity: Option<usize>,
    /// Milliseconds the indexer spent since the open growing the graph
    /// (inserts and re-inserts), building it from scratch (first builds and
    /// rebuilds), and auditing it: where the time to a complete graph goes.
    pub insert_ms: f64,
    pub build_ms: f64,
    pub audit_ms: f64,
    pub tombstones: usize,
    pub unindexed: usize,
    pub builds: u64,
    pub last_build_ms: Option<f64>,
    pub loaded_from_disk: bool,
    pub warning: Option<String>,
}

/// Labels, tail and filter fraction decide how a search runs; the result is
/// always ranked exactly.
pub fn search(
    collection: &Collection,
    graph: &Graph,
    query: &[f32],
    limit: usize,
    filter: &Filter,
    ef_search: usize,
) -> Result<Vec<Hit>> {
    let config = collection.config();
    check_vector(query, config.dimension, BatchIndex(None))?;
    let live = collection.len();
    if live == 0 {
        return Ok(Vec::new());
    }
    // No more than `live` results exist: a huge `limit` must not size the
    // walk or the buffers (`limit` may be up to 2^32 - 1).
    let limit = limit.min(live);
    let ef = ef_search.max(limit);
    // A filter in use again has a bitmap of its matches: a bit to test per
    // point instead of a payload to read, and an exact count.
    let matching = collection.matching(filter);
    let matching = matching.as_deref();
    let matches = |slot: u32| match matching {
        _ if filter.is_empty() => true,
        Some(matching) => matching.contains(slot),
        None => collection
            .point(slot)
            .is_some_and(|(_, payload)| filter.matches(payload)),
    };
    if !filter.is_empty() {
        let fraction = match matching {
            Some(matching) => matching.count() as f64 / live as f64,
            None => estimate_fraction(collection, filter),
        };
        // Few matches: scanning them exactly is cheaper than widening the
        // graph search until enough of them turn up, and exact.
        if fraction < 0.05 || fraction * (live as f64) < (4 * ef) as f64 {
            return collection.search_matching(query, limit, filter, matching);
        }
    }
    let labels = collection.labels();
    let arena = collection.arena();
    let prepared = prepare(config.distance, query, distance::inverse_norm(query));
    let live_match = |label: usize| labels.slot(label).filter(|&slot| matches(slot));
    let tail: Vec<u32> = (graph.indexed()..labels.count())
        .filter_map(live_match)
        .chain(
            graph
                .closest_pinned(config.distance, &prepared, limit, |l| {
                    live_match(l).is_some()
                })
                .into_iter()
                .filter_map(live_match),
        )
        .collect();
    let rerank = rerank_count(graph.engine.as_ref(), limit, ef);
    let mut candidates: Vec<u32> = if filter.is_empty() {
        // Tombstones are dropped after the walk: they stay few (a rebuild
        // clears them past `rebuild_fraction`), and an unfiltered walk with
        // no predicate to call is the fastest there is.
        graph
            .engine
            .search(&prepared, ef)?
            .into_iter()
            .filter_map(|(label, _)| labels.slot(label))
            .take(rerank)
            .collect()
    } else {
        // The filter is applied inside the walk: the graph keeps going
        // until it holds `ef` matching points, however far they lie.
        let accept = |label: usize| labels.slot(label).is_some_and(matches);
        let found = graph.engine.filtered_search(&prepared, ef, &accept)?;
        if found.len() + tail.len() < limit {
            // The graph ran out before `limit` matches: exact is the only
            // way to be sure none is missed.
            return collection.search_matching(query, limit, filter, matching);
        }
        found
            .into_iter()
            .filter_map(|(label, _)| labels.slot(label))
            .take(rerank)
            .collect()
    };
    candidates.extend_from_slice(&tail);
    let ranked = flat::rank(arena, config.distance, query, limit, candidates);
    Ok(ranked
        .into_iter()
        .filter_map(|(slot, score)| {
            let (id, payload) = collection.point(slot)?;
            Some(Hit {
                id: id.clone(),
                score,
                payload: std::sync::Arc::clone(payload),
            })
        })
        .collect())
}

/// Of the labels an audit found unreachable, the ones a search for their
/// own vector (as users run it, ranked exactly) really misses: its best hit
/// scores lower than the point itself. A duplicate, or any point scoring as
/// high, is a tie and not a miss: the graph may leave some copies of a
/// repeated vector unreachable while a search returns another copy.
pub fn confirm_missed(
    collection: &Collection,
    graph: &Graph,
    missed: Vec<usize>,
    ef_search: usize,
) -> Result<Vec<usize>> {
    let labels = collection.labels();
    let arena = collection.arena();
    let kind = collection.config().distance;
    let mut confirmed = Vec::with_capacity(missed.len());
    for label in missed {
        let Some(slot) = labels.slot(label) else {
            continue;
        };
        let query = arena.get(slot);
        let Some(&(_, own)) = flat::rank(arena, kind, query, 1, [slot]).first() else {
            continue;
        };
        let best = search(collection, graph, query, 1, &Filter::default(), ef_search)?
            .first()
            .map_or(f32::NEG_INFINITY, |hit| hit.score);
        if best < own - TIE * (1.0 + own.abs()) {
            confirmed.push(label);
        }
    }
    Ok(confirmed)
}

/// How many of the graph's `ef` candidates, taken in the graph's own order,
/// are ranked exactly. An engine that orders them exactly already needs
/// twice the limit (room for rounding at the boundary). An 8-bit or f16
/// graph orders them nearly: the best half (at least `3 × limit`) is read
/// again in f32: on the 100,000 × 384 clustered set at ef 64, re-ranking 32
/// of 64 keeps recall@10 within 0.002 of re-ranking all of them and makes
/// the search ~5 % faster (every candidate is a random 1.5 KB row). Coarser
/// codes (faiss's PQ, SQ, transforms) rank so roughly that every candidate
/// is re-ranked: with `IVF256,PQ48` on the real-text set, re-ranking 2 × k
/// of 64 held recall@10 at 0.81 whatever the ef.
fn rerank_count(engine: &dyn GraphEngine, limit: usize, ef: usize) -> usize {
    if engine.orders_exactly() {
        2 * limit
    } else if ranks_roughly(engine) {
        ef.max(limit)
    } else {
        (ef / 2).max(3 * limit)
    }
}

/// Whether the engine's distances are too coarse for its order to mean
/// much (not exact, nor an 8-bit or f16 copy of the vectors).
fn ranks_roughly(engine: &dyn GraphEngine) -> bool {
    !engine.orders_exactly()
        && !matches!(engine.quantization(), Quantization::I8 | Quantization::F16)
}

/// The fraction of live points matching `filter`, from an even sample.
fn estimate_fraction(collection: &Collection, filter: &Filter) -> f64 {
    const SAMPLE: usize = 512;
    let labels = collection.labels();
    let count = labels.count();
    let step = (count / SAMPLE).max(1);
    let (mut seen, mut hits) = (0usize, 0usize);
    let mut label = 0;
    while label < count {
        if let Some((_, payload)) = labels.slot(label).and_then(|s| collection.point(s)) {
            seen += 1;
            if filter.matches(payload) {
                hits += 1;
            }
        }
        label += step;
    }
    if seen == 0 {
        return 0.0;
    }
    hits as f64 / seen as f64
}

/// Pinned candidates ranked exactly beyond `limit`: their 8-bit closeness
/// is close to exact, so a few spare places cover its error.
const PINNED_MARGIN: usize = 8;

const MAP_MAGIC: u32 = u32::from_le_bytes(*b"AVIX");
const MAP_VERSION: u32 = 2;
/// The engine byte of a version 2 map.
const ENGINE_USEARCH: u8 = 1;
pub(crate) const ENGINE_FAISS: u8 = 2;

pub fn map_file_name(generation: u64) -> String {
    format!("index-{generation:020}.map")
}

pub fn graph_basename(generation: u64) -> String {
    format!("index-{generation:020}")
}

/// The generation of an `index-*` file name.
pub fn parse_index_file_name(name: &str) -> Option<u64> {
    let rest = name.strip_prefix("index-")?;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.len() != 20 {
        return None;
    }
    digits.parse().ok()
}

fn distance_code(kind: Distance) -> u8 {
    match kind {
        Distance::Cosine => 0,
        Distance::Dot => 1,
        Distance::Euclidean => 2,
    }
}

fn quantization_code(quantization: Quantization) -> u8 {
    match quantization {
        Quantization::Auto => 0,
        Quantization::I8 => 1,
        Quantization::F16 => 2,
        Quantization::F32 => 3,
    }
}

fn vector_crc(vector: &[f32]) -> u32 {
    crc32c::crc32c(bytemuck::cast_slice(vector))
}

/// Saves `graph` beside snapshot `generation`, whose contents `collection`
/// is: the engine's files first (durably), then the map, atomically, then
/// the files of other generations are removed.
pub fn save(
    storage: &dyn Storage,
    dir: &Path,
    generation: u64,
    collection: &Collection,
    graph: &Graph,
) -> Result<()> {
    let labels = collection.labels();
    // Labels the graph holds: the ones indexed when it was dumped (the
    // caller keeps the indexer out meanwhile). Those the collection copy
    // does not know (indexed after it was taken) are tombstones here; the
    // reopened store indexes their points again.
    let count = graph.indexed();
    let pinned = graph.pinned();
    let files = graph
        .engine
        .save(storage, dir, &graph_basename(generation))?;
    let mut out = Vec::new();
    put_u32(&mut out, MAP_MAGIC);
    put_u32(&mut out, MAP_VERSION);
    out.push(distance_code(collection.config().distance));
    put_u32(&mut out, collection.config().dimension as u32);
    out.push(graph.engine.engine_code());
    out.push(quantization_code(graph.engine.quantization()));
    put_u32(&mut out, files.len() as u32);
    for file in &files {
        put_u32(&mut out, file.name.len() as u32);
        out.extend_from_slice(file.name.as_bytes());
        put_u64(&mut out, file.size);
        put_u32(&mut out, file.crc);
    }
    put_u64(&mut out, graph.audited().min(count) as u64);
    put_u64(&mut out, graph.fully_audited().min(count) as u64);
    put_u64(&mut out, count as u64);
    for label in 0..count {
        match labels
            .slot(label)
            .and_then(|s| collection.point(s).map(|p| (s, p)))
        {
            Some((slot, (id, _))) => {
                out.push(if pinned.binary_search(&label).is_ok() {
                    2
                } else {
                    1
                });
                put_u32(&mut out, vector_crc(collection.arena().get(slot)));
                put_point_id(&mut out, id);
            }
            _ => out.push(0),
        }
    }
    let crc = crc32c::crc32c(&out);
    put_u32(&mut out, crc);
    write_atomically(storage, dir, &map_file_name(generation), &out)?;
    let keep: Vec<String> = files
        .into_iter()
        .map(|f| f.name)
        .chain([map_file_name(generation)])
        .collect();
    let names = storage.list(dir).map_err(|e| Error::io("list", dir, e))?;
    for name in names {
        if parse_index_file_name(&name).is_some() && !keep.contains(&name) {
            let path = dir.join(&name);
            storage
                .remove(&path)
                .map_err(|e| Error::io("remove", &path, e))?;
        }
    }
    Ok(())
}

/// A saved graph matched to a reopened collection: the engine, and for each
/// graph label the label it has in the collection now (`None`: tombstone).
pub struct Loaded {
    pub engine: Box<dyn GraphEngine>,
    pub order: Vec<Option<u32>>,
    /// Graph labels to pin (see [`Graph::pinned`]).
    pub pinned: Vec<usize>,
    /// Labels below these had been audited (fully) when the graph was saved.
    pub audited: usize,
    pub fully_audited: usize,
}

/// A saved graph read and verified, not yet matched to a collection: it
/// can be read while the snapshot is (see `Store::open`).
pub struct SavedGraph {
    /// The snapshot generation it was saved with.
    pub generation: u64,
    engine: Box<dyn GraphEngine>,
    /// Per graph label: the point id and the checksum of the vector it was
    /// saved for; `None`: a tombstone.
    labels: Vec<Option<(PointId, u32)>>,
    pinned: Vec<usize>,
    audited: usize,
    fully_audited: usize,
}

impl SavedGraph {
    /// Matches the graph's labels to `collection` by id *and* vector
    /// checksum: points changed since the checkpoint are indexed again.
    pub fn attach(self, collection: &Collection) -> Loaded {
        let labels = collection.labels();
        let order = self
            .labels
            .into_iter()
            .map(|saved| {
                let (id, crc) = saved?;
                collection
                    .slot_of(&id)
                    .filter(|&slot| vector_crc(collection.arena().get(slot)) == crc)
                    .map(|slot| labels.label_of(slot))
            })
            .collect();
        Loaded {
            engine: self.engine,
            order,
            pinned: self.pinned,
            audited: self.audited,
            fully_audited: self.fully_audited,
        }
    }
}

impl SavedGraph {
    /// The labels that disagree with `collection` (the snapshot with the WAL
    /// replayed): a saved label must name a point that exists with the
    /// vector it was indexed for, unless `changed` says a later write
    /// touched that id. For `verify`; one line per disagreement.
    pub fn disagreements(
        &self,
        collection: &Collection,
        changed: &dyn Fn(&PointId) -> bool,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for (label, saved) in self.labels.iter().enumerate() {
            let Some((id, crc)) = saved else { continue };
            if changed(id) {
                continue;
            }
            match collection.slot_of(id) {
                None => out.push(format!("graph label {label} names point {id}, which does not exist")),
                Some(slot) if vector_crc(collection.arena().get(slot)) != *crc => out.push(format!(
                    "graph label {label}: point {id}'s vector differs from the one the graph indexed"
                )),
                Some(_) => {}
            }
        }
        out
    }
}

/// Reads and verifies the graph saved with snapshot `generation`.
pub fn read_saved(
    storage: &dyn Storage,
    dir: &Path,
    generation: u64,
    collection_config: &CollectionConfig,
    config: &AnnConfig,
) -> Result<Option<SavedGraph>> {
    let map_path = dir.join(map_file_name(generation));
    if !storage.exists(&map_path) {
        return Ok(None);
    }
    let bytes = storage
        .read(&map_path)
        .map_err(|e| Error::io("read", &map_path, e))?;
    let corrupt = |offset: usize, reason: String| Error::corrupt(&map_path, offset as u64, reason);
    if bytes.len() < 4 {
        return Err(corrupt(0, "shorter than its checksum".into()));
    }
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    if crc32c::crc32c(body) != stored {
        return Err(corrupt(body.len(), "checksum mismatch".into()));
    }
    let mut r = ByteReader::new(body);
    let at = |r: &ByteReader, e: String| corrupt(r.position(), e);
    let magic = r.u32().map_err(|e| at(&r, e))?;
    let version = r.u32().map_err(|e| at(&r, e))?;
    if magic != MAP_MAGIC {
        return Err(corrupt(0, "not an index map".into()));
    }
    if version == 1 {
        return Err(corrupt(
            4,
            "saved by the earlier hnsw_rs engine, which this version no longer reads".into(),
        ));
    }
    if version != MAP_VERSION {
        return Err(corrupt(4, format!("unknown format version {version}")));
    }
    let kind = r.u8().map_err(|e| at(&r, e))?;
    let dimension = r.u32().map_err(|e| at(&r, e))? as usize;
    if kind != distance_code(collection_config.distance) || dimension != collection_config.dimension
    {
        return Err(corrupt(8, "saved for another distance or dimension".into()));
    }
    let engine_code = r.u8().map_err(|e| at(&r, e))?;
    let expected_engine = if config.algorithm == Algorithm::Faiss {
        ENGINE_FAISS
    } else {
        ENGINE_USEARCH
    };
    if engine_code != expected_engine {
        return Err(at(
            &r,
            format!("saved by graph engine {engine_code}, the config asks for {expected_engine}"),
        ));
    }
    let quantization = r.u8().map_err(|e| at(&r, e))?;
    let wanted = engine_quantization(
        config,
        collection_config.distance,
        collection_config.dimension,
    )?;
    if quantization != quantization_code(wanted) {
        return Err(at(
            &r,
            format!("saved with another quantization than '{}'", wanted.name()),
        ));
    }
    let files = r.u32().map_err(|e| at(&r, e))? as usize;
    if files != 1 {
        return Err(at(&r, format!("expected one graph file, found {files}")));
    }
    let name = r.bytes_u32().map_err(|e| at(&r, e))?;
    let name = String::from_utf8_lossy(name).into_owned();
    if name.contains(['/', '\\']) || name.contains("..") || parse_index_file_name(&name).is_none() {
        return Err(at(&r, format!("unsafe file name {name:?}")));
    }
    let size = r.u64().map_err(|e| at(&r, e))?;
    let crc = r.u32().map_err(|e| at(&r, e))?;
    let audited = r.u64().map_err(|e| at(&r, e))? as usize;
    let fully_audited = r.u64().map_err(|e| at(&r, e))? as usize;
    let count = r.u64().map_err(|e| at(&r, e))? as usize;
    // A tombstone label is one byte, the fewest a label takes.
    check_fits(count as u64, 1, r.remaining() as u64, "labels").map_err(|e| at(&r, e))?;
    let mut labels = Vec::with_capacity(count);
    let mut pinned = Vec::new();
    for label in 0..count {
        let present = r.u8().map_err(|e| at(&r, e))?;
        if present == 0 {
            labels.push(None);
            continue;
        }
        if present == 2 {
            pinned.push(label);
        }
        let crc = r.u32().map_err(|e| at(&r, e))?;
        let id = r.point_id().map_err(|e| at(&r, e))?;
        labels.push(Some((id, crc)));
    }
    r.finish().map_err(|e| at(&r, e))?;
    let path = dir.join(&name);
    let data = storage
        .read(&path)
        .map_err(|e| Error::io("read", &path, e))?;
    if data.len() as u64 != size || crc32c::crc32c(&data) != crc {
        return Err(Error::corrupt(&path, 0, "size or checksum mismatch"));
    }
    let engine: Box<dyn GraphEngine> = if engine_code == ENGINE_FAISS {
        faiss_engine(
            config,
            collection_config.distance,
            collection_config.dimension,
            Some(&data),
        )?
    } else {
        Box::new(HnswIndex::load(
            &config.hnsw,
            collection_config.distance,
            collection_config.dimension,
            &data,
        )?)
    };
    drop(data);
    if engine.len() > count {
        return Err(corrupt(
            0,
            "the graph holds more points than the map".into(),
        ));
    }
    Ok(Some(SavedGraph {
        generation,
        engine,
        labels,
        pinned,
        audited,
        fully_audited,
    }))
}

/// Removes every saved graph (the collection has none worth keeping).
pub fn remove_saved(storage: &dyn Storage, dir: &Path) -> Result<()> {
    let names = storage.list(dir).map_err(|e| Error::io("list", dir, e))?;
    for name in names {
        if parse_index_file_name(&name).is_some() {
            let path = dir.join(&name);
            storage
                .remove(&path)
                .map_err(|e| Error::io("remove", &path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_i8_codes_for_cosine_only_from_64_dimensions() {
        let cases = [
            (Quantization::Auto, Distance::Cosine, 384, Quantization::I8),
            (Quantization::Auto, Distance::Cosine, 64, Quantization::I8),
            (Quantization::Auto, Distance::Cosine, 63, Quantization::F32),
            (Quantization::Auto, Distance::Cosine, 3, Quantization::F32),
            (Quantization::Auto, Distance::Dot, 384, Quantization::F32),
            (Quantization::I8, Distance::Cosine, 3, Quantization::I8),
        ];
        for (asked, kind, dimension, resolved) in cases {
            assert_eq!(
                asked.resolve(kind, dimension).unwrap(),
                resolved,
                "{asked:?} {kind:?} {dimension}"
            );
        }
    }

    /// Deterministic vectors around a few shared directions, so that many
    /// are close to each other (as pinned points tend to be).
    fn clustered(count: usize, dim: usize, seed: u32) -> Vec<Vec<f32>> {
        let mut state = seed.wrapping_mul(2654435761).wrapping_add(1);
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as f32 / u32::MAX as f32 - 0.5
        };
        let centres: Vec<Vec<f32>> = (0..4).map(|_| (0..dim).map(|_| next()).collect()).collect();
        (0..count)
            .map(|i| centres[i % 4].iter().map(|c| c + 0.05 * next()).collect())
            .collect()
    }

    #[test]
    fn pins_stay_within_the_budget_and_the_rest_are_counted() {
        let dim = 8;
        let engine = new_engine(&AnnConfig::default(), Distance::Cosine, dim, 16).unwrap();
        let vectors = clustered(10, dim, 5);
        let pinned: Vec<(usize, Vec<f32>)> = (0..10).map(|l| (l, vectors[l].clone())).collect();
        let graph = Graph::new(engine, 0, 0, pinned);
        // 1,000 live points: the budget is the floor, 64; 10 are pinned.
        let missed: Vec<usize> = (100..200).collect();
        let kept = graph.within_budget(missed.clone(), 1000, false);
        assert_eq!(kept, (100..154).collect::<Vec<_>>());
        assert_eq!(graph.unfindable(), 46);
        // A full audit's pins replace the set: the whole budget, and the
        // count of the rest starts again.
        assert_eq!(graph.within_budget(missed.clone(), 1000, true).len(), 64);
        assert_eq!(graph.unfindable(), 36);
        // 0.5 % of 100,000.
        assert_eq!(graph.within_budget(missed, 100_000, true).len(), 100);
        assert_eq!(graph.unfindable(), 0);
        assert_eq!(pin_budget(1_000_000), 5_000);
    }

    #[test]
    fn a_graph_gets_more_links_only_when_enough_audits_find_it_weak() {
        let engine = new_engine(&AnnConfig::default(), Distance::Cosine, 8, 16).unwrap();
        let graph = Graph::new(engine, 0, 0, Vec::new());
        // A high miss rate on too few points is not yet evidence.
        graph.note_first_audit(WEAK_GRAPH_MIN_AUDITS - 1, 1000);
        assert_eq!(graph.wants_more_links(16, 16), None);
        // 1,001 misses of 10,000 + 9,999... still over 0.3 %: half as many
        // links again, up to twice the configured count.
        graph.note_first_audit(10_000, 1);
        assert_eq!(graph.wants_more_links(16, 16), Some(24));
        assert_eq!(graph.wants_more_links(24, 16), Some(32));
        assert_eq!(graph.wants_more_links(32, 16), None);
        assert_eq!(graph.wants_more_links(5, 4), Some(7));
        assert_eq!(graph.wants_more_links(7, 4), Some(8));
        // A sound graph keeps its links.
        let engine = new_engine(&AnnConfig::default(), Distance::Cosine, 8, 16).unwrap();
        let sound = Graph::new(engine, 0, 0, Vec::new());
        sound.note_first_audit(100_000, 300);
        assert_eq!(sound.wants_more_links(16, 16), None);
        // Judged sound, it is judged afresh on the next points: a rate
        // that grew past the threshold shows, undiluted by the first.
        sound.end_miss_window();
        sound.note_first_audit(20_000, 100);
        assert_eq!(sound.wants_more_links(16, 16), Some(24));
        // Too few points since the last judgement: the window goes on.
        let engine = new_engine(&AnnConfig::default(), Distance::Cosine, 8, 16).unwrap();
        let young = Graph::new(engine, 0, 0, Vec::new());
        young.note_first_audit(5_000, 0);
        young.end_miss_window();
        young.note_first_audit(5_000, 40);
        assert_eq!(young.wants_more_links(16, 16), Some(24));
    }

    #[test]
    fn a_recheck_samples_evenly_and_leaves_the_pinned_out() {
        let sample = recheck_sample(100_000, 1000, &[50, 150, 250]);
        assert_eq!(sample.len(), 997);
        assert_eq!(&sample[..3], &[350, 450, 550]);
        assert!(sample.windows(2).all(|w| w[0] < w[1]));
        assert!(sample.iter().all(|&l| l < 100_000));
        // Fewer labels than the sample: each once.
        assert_eq!(recheck_sample(5, 1000, &[2]), vec![0, 1, 3, 4]);
        assert!(recheck_sample(0, 1000, &[]).is_empty());
    }

    #[test]
    fn pinned_points_merge_by_label_and_keep_their_codes() {
        let dim = 8;
        let vectors = clustered(6, dim, 3);
        let point = |label: usize| (label, vectors[label].clone());
        let mut pinned = Pinned::from(vec![point(4), point(1)]);
        pinned.extend(vec![point(5), point(1), point(0), point(2)]);
        let expected = Pinned::from(vec![point(0), point(1), point(2), point(4), point(5)]);
        assert_eq!(pinned.labels, [0, 1, 2, 4, 5]);
        assert_eq!(pinned.codes, expected.codes);
        assert_eq!(pinned.scales, expected.scales);
        assert_eq!(pinned.squared_norms, expected.squared_norms);
    }

    #[test]
    fn pinned_candidates_hold_the_exact_closest_for_every_distance() {
        let dim = 96;
        for kind in [Distance::Cosine, Distance::Dot, Distance::Euclidean] {
            let config = AnnConfig::default();
            let engine = new_engine(&config, kind, dim, 16).unwrap();
            let points: Vec<(usize, Vec<f32>)> = clustered(600, dim, 7)
                .into_iter()
                .enumerate()
                .map(|(label, v)| (label * 3, prepare(kind, &v, distance::inverse_norm(&v))))
                .collect();
            let graph = Graph::new(engine, 0, 0, points.clone());
            for (q, query) in clustered(40, dim, 99).iter().enumerate() {
                let query = prepare(kind, query, distance::inverse_norm(query));
                let accept = |label: usize| q.is_multiple_of(2) || label.is_multiple_of(2);
                let exact_score = |v: &[f32]| match kind {
                    Distance::Euclidean => -distance::l2_squared(&query, v),
                    _ => distance::dot(&query, v),
                };
                let mut exact: Vec<(f32, usize)> = points
                    .iter()
                    .filter(|(label, _)| accept(*label))
                    .map(|(label, v)| (exact_score(v), *label))
                    .collect();
                exact.sort_by(|a, b| b.0.total_cmp(&a.0));
                let got = graph.closest_pinned(kind, &query, 10, accept);
                assert_eq!(got.len(), 10 + PINNED_MARGIN, "{kind:?}");
                assert!(got.iter().all(|&label| accept(label)));
                for (_, label) in &exact[..10] {
                    assert!(got.contains(label), "{kind:?} query {q}: {label} missing");
                }
            }
        }
    }
}

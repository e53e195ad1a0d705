//! A collection's in-memory state: ids ↔ slots, the vector arena, payloads.
//!
//! Every mutation validates all of its input first and only then changes
//! anything, so a rejected call leaves the collection exactly as it was.
//! `Collection` is single-threaded; [`crate::Store`] puts it behind a lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::distance::Distance;
use crate::error::{BatchIndex, Error, Result};
use crate::filter::Filter;
use crate::flat::{self, MappedVectors, VectorArena};
use crate::id::PointId;
use crate::journal::{ChangeJournal, Changes, JournalMark};
use crate::matches::{MatchCache, Matches};
use crate::op::Op;

pub type Payload = Map<String, Value>;

/// Largest accepted vector dimension.
pub const MAX_DIMENSION: usize = 65_536;

/// Deepest accepted nesting of objects and arrays in a payload; the payload
/// object itself is level 1. Well under serde_json's own recursion limit
/// (127 levels), so a payload keeps fitting when a file format wraps it in
/// another level or two (a batch array, the older backend's `[[id, payload]]`).
/// The JS façade checks the same limit (`MAX_JSON_DEPTH` in `index.js`).
pub const MAX_JSON_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectionConfig {
    pub dimension: usize,
    pub distance: Distance,
    pub max_vectors: Option<usize>,
    /// Serve the vectors from memory maps of the checkpoint files
    /// (`storage.vectors: 'disk'`) rather than from the process's memory.
    pub vectors_on_disk: bool,
}

impl CollectionConfig {
    pub fn new(dimension: usize, distance: Distance, max_vectors: Option<usize>) -> Result<Self> {
        if dimension == 0 || dimension > MAX_DIMENSION {
            return Err(Error::InvalidArgument {
                name: "dimension",
                reason: format!("must be an integer from 1 to {MAX_DIMENSION}, got {dimension}"),
            });
        }
        if max_vectors == Some(0) {
            return Err(Error::InvalidArgument {
                name: "maxVectors",
                reason: "must be a positive integer".into(),
            });
        }
        Ok(CollectionConfig {
            dimension,
            distance,
            max_vectors,
            vectors_on_disk: false,
        })
    }

    /// The same configuration with the vectors served from disk or not.
    pub fn with_vectors_on_disk(self, on_disk: bool) -> Self {
        CollectionConfig {
            vectors_on_disk: on_disk,
            ..self
        }
    }
}

/// Checks that `vector` has the collection's dimension and only finite values.
pub fn check_vector(vector: &[f32], dimension: usize, index: BatchIndex) -> Result<()> {
    if vector.len() != dimension {
        return Err(Error::DimensionMismatch {
            expected: dimension,
            actual: vector.len(),
            index,
        });
    }
    if let Some(position) = vector.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFiniteValue {
            index,
            position,
            value: vector[position],
        });
    }
    Ok(())
}

/// Parses the payloads of a batch from JSON: an array of plain objects.
pub fn parse_payloads(text: &str) -> Result<Vec<Payload>> {
    let value: Value = serde_json::from_str(text).map_err(|e| Error::InvalidPayload {
        index: BatchIndex(None),
        reason: format!("not valid JSON: {e}"),
    })?;
    let Value::Array(items) = value else {
        return Err(Error::InvalidPayload {
            index: BatchIndex(None),
            reason: "payloads must be an array of objects".into(),
        });
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| payload_object(item, BatchIndex(Some(i))))
        .collect()
}

/// Parses one payload from JSON: a plain object.
pub fn parse_payload(text: &str) -> Result<Payload> {
    let value: Value = serde_json::from_str(text).map_err(|e| Error::InvalidPayload {
        index: BatchIndex(None),
        reason: format!("not valid JSON: {e}"),
    })?;
    payload_object(value, BatchIndex(None))
}

/// Whether `value` nests objects and arrays more than `levels` deep.
fn deeper_than(value: &Value, levels: usize) -> bool {
    match value {
        Value::Array(items) => levels == 0 || items.iter().any(|v| deeper_than(v, levels - 1)),
        Value::Object(map) => levels == 0 || map.values().any(|v| deeper_than(v, levels - 1)),
        _ => false,
    }
}

fn payload_object(value: Value, index: BatchIndex) -> Result<Payload> {
    match value {
        Value::Object(_) if deeper_than(&value, MAX_JSON_DEPTH) => Err(Error::InvalidPayload {
            index,
            reason: format!(
                "a payload may nest objects and arrays at most {MAX_JSON_DEPTH} levels deep"
            ),
        }),
        Value::Object(map) => Ok(map),
        other => Err(Error::InvalidPayload {
            index,
            reason: format!(
                "a payload must be a plain object, got {}",
                match other {
                    Value::Null => "null",
                    Value::Array(_) => "an array",
                    Value::String(_) => "a string",
                    Value::Number(_) => "a number",
                    Value::Bool(_) => "a boolean",
                    Value::Object(_) => "an object",
                }
            ),
        }),
    }
}

/// What an operation would do to the collection (see [`Collection::dry_run`]).
#[derive(Debug)]
pub enum Verdict {
    /// It changes the collection: log it, then apply it.
    Apply,
    /// It changes nothing and succeeds (a delete of a missing id).
    Unchanged,
    /// [`Collection::apply`] would refuse it with this error.
    Refuse(Error),
}

/// A validated batch of points, ready to apply.
#[derive(Debug, Clone)]
pub struct PointBatch {
    pub(crate) ids: Vec<PointId>,
    pub(crate) vectors: Vec<f32>,
    pub(crate) payloads: Vec<Payload>,
    pub(crate) dimension: usize,
}

impl PointBatch {
    /// Validates a batch: `vectors` holds the batch's vectors back to back,
    /// `lengths[i]` the length of vector `i`.
    pub fn new(
        dimension: usize,
        ids: Vec<PointId>,
        vectors: Vec<f32>,
        lengths: &[u32],
        payloads: Vec<Payload>,
    ) -> Result<Self> {
        if lengths.len() != ids.len() || lengths.len() != payloads.len() {
            return Err(Error::LengthMismatch {
                vectors: lengths.len(),
                ids: ids.len(),
                payloads: payloads.len(),
            });
        }
        let total: usize = lengths.iter().map(|&l| l as usize).sum();
        if total != vectors.len() {
            return Err(Error::InvalidArgument {
                name: "vectors",
                reason: format!(
                    "lengths add up to {total} values but {} were given",
                    vectors.len()
                ),
            });
        }
        let mut start = 0;
        for (i, &len) in lengths.iter().enumerate() {
            let end = start + len as usize;
            check_vector(&vectors[start..end], dimension, BatchIndex(Some(i)))?;
            start = end;
        }
        let mut seen: HashMap<&PointId, usize> = HashMap::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            if let Some(first) = seen.insert(id, i) {
                return Err(Error::DuplicateId {
                    id: id.to_string(),
                    first,
                    second: i,
                });
            }
        }
        Ok(PointBatch {
            ids,
            vectors,
            payloads,
            dimension,
        })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// One search hit.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub id: PointId,
    pub score: f32,
    pub payload: Arc<Payload>,
}

/// One stored point, as `get` and `list` return it.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub id: PointId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    pub payload: Arc<Payload>,
}

/// A page of `list`: the first `limit` matching records in id order, and how
/// many records match in all.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub records: Vec<Record>,
    pub total: usize,
}

#[derive(Debug, Clone)]
struct Point {
    id: PointId,
    payload: Arc<Payload>,
}

/// Marks a label whose vector is gone (deleted or replaced).
pub const DEAD: u32 = u32::MAX;

/// Labels name one version of one point's vector: every insert or update
/// takes a fresh label and retires the point's old one. The ANN graph stores
/// labels, so a graph entry whose label is retired is a tombstone, and a live
/// label always means "this slot, with the vector it has now".
#[derive(Debug, Clone, Default)]
pub struct Labels {
    /// Label → slot, or [`DEAD`].
    slot_of_label: Vec<u32>,
    /// Slot → its current label (meaningless for a free slot).
    label_of_slot: Vec<u32>,
    dead: usize,
    /// Changes whenever labels are renumbered: a graph built for another
    /// epoch cannot be used.
    epoch: u64,
}

impl Labels {
    /// Labels handed out so far in this epoch (live and retired).
    pub fn count(&self) -> usize {
        self.slot_of_label.len()
    }

    pub fn dead(&self) -> usize {
        self.dead
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The slot whose current vector carries `label`, if any.
    #[inline]
    pub fn slot(&self, label: usize) -> Option<u32> {
        match self.slot_of_label.get(label) {
            Some(&slot) if slot != DEAD => Some(slot),
            _ => None,
        }
    }

    pub fn label_of(&self, slot: u32) -> u32 {
        self.label_of_slot[slot as usize]
    }

    fn assign(&mut self, slot: u32, fresh_slot: bool) -> u32 {
        let label = self.slot_of_label.len() as u32;
        self.slot_of_label.push(slot);
        if fresh_slot {
            debug_assert_eq!(self.label_of_slot.len(), slot as usize);
            self.label_of_slot.push(label);
        } else {
            self.label_of_slot[slot as usize] = label;
        }
        label
    }

    fn retire(&mut self, slot: u32) {
        let old = self.label_of_slot[slot as usize] as usize;
        if let Some(entry) = self.slot_of_label.get_mut(old) {
            if *entry != DEAD {
                *entry = DEAD;
                self.dead += 1;
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Collection {
    config: CollectionConfig,
    slot_of: BTreeMap<PointId, u32>,
    points: Vec<Option<Point>>,
    arena: VectorArena,
    free_slots: Vec<u32>,
    labels: Labels,
    /// Bitmaps of the filters searches keep using, kept exact by every write.
    matches: MatchCache,
    /// What changed when, for incremental saves.
    journal: ChangeJournal,
}

impl Collection {
    pub fn new(config: CollectionConfig) -> Self {
        Collection {
            config,
            slot_of: BTreeMap::new(),
            points: Vec::new(),
            arena: VectorArena::new(config.dimension),
            free_slots: Vec::new(),
            labels: Labels::default(),
            matches: MatchCache::default(),
            journal: ChangeJournal::new(),
        }
    }

    /// Where the collection's history stands (see [`ChangeJournal`]).
    pub fn journal_mark(&self) -> JournalMark {
        self.journal.mark()
    }

    /// What changed after `mark`, or `None` when the journal cannot say.
    pub fn changes_since(&self, mark: JournalMark) -> Option<Changes> {
        self.journal.since(mark, |slot| {
            matches!(self.points.get(slot as usize), Some(Some(_)))
        })
    }

    /// The id, vector and payload of the live point in `slot`.
    pub fn point_at(&self, slot: u32) -> Option<(&PointId, &[f32], &Arc<Payload>)> {
        let point = self.points.get(slot as usize)?.as_ref()?;
        Some((&point.id, self.arena.get(slot), &point.payload))
    }

    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    pub fn arena(&self) -> &VectorArena {
        &self.arena
    }

    /// The id and payload of the point in `slot`, if it is live.
    pub fn point(&self, slot: u32) -> Option<(&PointId, &Arc<Payload>)> {
        self.points
            .get(slot as usize)?
            .as_ref()
            .map(|p| (&p.id, &p.payload))
    }

    /// The slot of `id`, if stored.
    pub fn slot_of(&self, id: &PointId) -> Option<u32> {
        self.slot_of.get(id).copied()
    }

    /// Gives the points carrying `labels` new labels (their vectors are
    /// unchanged): the old labels become tombstones and the new ones join
    /// the unindexed tail, so the graph takes the points in afresh. Returns
    /// the new labels; labels no longer live are skipped.
    pub fn reissue_labels(&mut self, labels: &[usize]) -> Vec<usize> {
        let mut fresh = Vec::with_capacity(labels.len());
        for &label in labels {
            if let Some(slot) = self.labels.slot(label) {
                self.labels.retire(slot);
                fresh.push(self.labels.assign(slot, false) as usize);
            }
        }
        fresh
    }

    /// Renumbers labels: `order[i]` (a label of the current epoch) becomes
    /// label `i` when it is still live; every other live point gets a label
    /// after them. Starts a new epoch. Returns how many of `order` were kept
    /// (the rest of `0..order.len()` are tombstones).
    pub fn relabel(&mut self, order: &[Option<u32>]) -> usize {
        let mut labels = Labels {
            slot_of_label: Vec::with_capacity(self.len() + order.len() / 8),
            label_of_slot: vec![DEAD; self.points.len()],
            dead: 0,
            epoch: self.labels.epoch + 1,
        };
        let mut kept = 0;
        for old in order {
            match old.and_then(|l| self.labels.slot(l as usize)) {
                Some(slot) if labels.label_of_slot[slot as usize] == DEAD => {
                    labels.label_of_slot[slot as usize] = labels.slot_of_label.len() as u32;
                    labels.slot_of_label.push(slot);
                    kept += 1;
                }
                _ => {
                    labels.slot_of_label.push(DEAD);
                    labels.dead += 1;
                }
            }
        }
        for &slot in self.slot_of.values() {
            if labels.label_of_slot[slot as usize] == DEAD {
                labels.label_of_slot[slot as usize] = labels.slot_of_label.len() as u32;
                labels.slot_of_label.push(slot);
            }
        }
        self.labels = labels;
        kept
    }

    pub fn config(&self) -> &CollectionConfig {
        &self.config
    }

    pub fn len(&self) -> usize {
        self.slot_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slot_of.is_empty()
    }

    /// Executes one logged operation. Returns whether a `Delete` found its id
    /// (false for the others). Deterministic: the same state and operation
    /// give the same outcome, on the live path and on replay.
    pub fn apply(&mut self, op: Op) -> Result<bool> {
        match op {
            Op::Insert(batch) => self.insert(batch).map(|()| false),
            Op::Update {
                id,
                vector,
                payload,
            } => self.update(&id, &vector, payload).map(|()| false),
            Op::Delete(id) => Ok(self.delete(&id)),
            Op::Clear => {
                self.clear();
                Ok(false)
            }
        }
    }

    /// What applying `ops` in this order would do, without changing
    /// anything: the commit path logs only the operations that change the
    /// collection, so a refused write (an update of a missing id, an insert
    /// past `maxVectors`) leaves the log, like memory, untouched. The refusals
    /// are the ones [`Collection::apply`] would return.
    pub fn dry_run(&self, ops: &[&Op]) -> Vec<Verdict> {
        // Presence of the ids earlier operations of `ops` touched.
        let mut touched: HashMap<&PointId, bool> = HashMap::new();
        let mut cleared = false;
        let mut len = self.len();
        let present = |touched: &HashMap<&PointId, bool>, cleared: bool, id: &PointId| {
            touched
                .get(id)
                .copied()
                .unwrap_or_else(|| !cleared && self.slot_of.contains_key(id))
        };
        ops.iter()
            .map(|op| match op {
                Op::Insert(batch) => {
                    let adding =
                        match self.check_insert(batch, len, |id| present(&touched, cleared, id)) {
                            Ok(adding) => adding,
                            Err(error) => return Verdict::Refuse(error),
                        };
                    len += adding;
                    touched.extend(batch.ids.iter().map(|id| (id, true)));
                    Verdict::Apply
                }
                Op::Update { id, vector, .. } => {
                    if let Err(error) =
                        check_vector(vector, self.config.dimension, BatchIndex(None))
                    {
                        return Verdict::Refuse(error);
                    }
                    if !present(&touched, cleared, id) {
                        return Verdict::Refuse(Error::NotFound { id: id.to_string() });
                    }
                    Verdict::Apply
                }
                Op::Delete(id) => {
                    if !present(&touched, cleared, id) {
                        return Verdict::Unchanged;
                    }
                    touched.insert(id, false);
                    len -= 1;
                    Verdict::Apply
                }
                Op::Clear => {
                    touched.clear();
                    cleared = true;
                    len = 0;
                    Verdict::Apply
                }
            })
            .collect()
    }

    /// Live points in slot order: `(id, vector, payload)`.
    pub fn points(&self) -> impl Iterator<Item = (&PointId, &[f32], &Arc<Payload>)> {
        self.points.iter().enumerate().filter_map(|(slot, point)| {
            point
                .as_ref()
                .map(|p| (&p.id, self.arena.get(slot as u32), &p.payload))
        })
    }

    /// Builds a collection from points stored back to back (a snapshot),
    /// taking the vectors without copying them.
    /// `vectors[start..]` holds the points' vectors.
    pub fn from_points(
        config: CollectionConfig,
        ids: Vec<PointId>,
        vectors: Vec<f32>,
        start: usize,
        payloads: Vec<Payload>,
    ) -> Result<Self> {
        let count = ids.len();
        if vectors.len() < start + count * config.dimension {
            return Err(Error::Internal {
                reason: "snapshot columns differ in length".into(),
            });
        }
        let arena = VectorArena::from_vec(config.dimension, vectors, start, count);
        Collection::from_arena(config, ids, arena, payloads)
    }

    /// Builds a collection whose vectors stay in `vectors`, a memory map of
    /// its snapshot file (vectors on disk).
    pub fn from_mapped(
        config: CollectionConfig,
        ids: Vec<PointId>,
        vectors: MappedVectors,
        payloads: Vec<Payload>,
    ) -> Result<Self> {
        if vectors.count() != ids.len() || vectors.dim() != config.dimension {
            return Err(Error::Internal {
                reason: "snapshot columns differ in length".into(),
            });
        }
        Collection::from_arena(config, ids, VectorArena::from_mapped(vectors), payloads)
    }

    fn from_arena(
        config: CollectionConfig,
        ids: Vec<PointId>,
        arena: VectorArena,
        payloads: Vec<Payload>,
    ) -> Result<Self> {
        let count = ids.len();
        if count != payloads.len() || arena.slots() != count {
            return Err(Error::Internal {
                reason: "snapshot columns differ in length".into(),
            });
        }
        let mut slot_of = BTreeMap::new();
        let mut points = Vec::with_capacity(ids.len());
        for (slot, (id, payload)) in ids.into_iter().zip(payloads).enumerate() {
            if slot_of.insert(id.clone(), slot as u32).is_some() {
                return Err(Error::Internal {
                    reason: format!("id {id} appears twice"),
                });
            }
            points.push(Some(Point {
                id,
                payload: Arc::new(payload),
            }));
        }
        Ok(Collection {
            config,
            slot_of,
            points,
            arena,
            free_slots: Vec::new(),
            labels: Labels {
                slot_of_label: (0..count as u32).collect(),
                label_of_slot: (0..count as u32).collect(),
                dead: 0,
                epoch: 0,
            },
            matches: MatchCache::default(),
            journal: ChangeJournal::with_slots(count),
        })
    }

    /// Serves the vectors from `vectors`, the checkpoint file just written
    /// from `copy` (this collection as it was when the checkpoint began;
    /// the file holds its live points in slot order). Vectors written since
    /// stay in memory. Returns `false`, changing nothing, when this
    /// collection's history since `copy` cannot be told (a clear, or
    /// another history): its vectors then stay where they are.
    pub fn rebase_vectors(&mut self, copy: &Collection, vectors: MappedVectors) -> bool {
        let mark = copy.journal_mark();
        if !self.journal.wrote_only_since(mark) {
            return false;
        }
        if vectors.count() != copy.len() || vectors.dim() != self.config.dimension {
            return false;
        }
        let mut next_row = 0u32;
        let rows: Vec<Option<u32>> = copy
            .points
            .iter()
            .map(|point| {
                point.as_ref().map(|_| {
                    next_row += 1;
                    next_row - 1
                })
            })
            .collect();
        let points = &self.points;
        let journal = &self.journal;
        self.arena.rebase(vectors, &rows, |slot| {
            matches!(points.get(slot as usize), Some(Some(_)))
                && (rows[slot as usize].is_none() || journal.written_after(slot, mark))
        });
        true
    }

    /// Whether `batch` may be inserted into `len` points of which `present`
    /// says which exist: its dimension, and the capacity. Returns how many
    /// points it adds.
    fn check_insert(
        &self,
        batch: &PointBatch,
        len: usize,
        present: impl Fn(&PointId) -> bool,
    ) -> Result<usize> {
        if batch.dimension != self.config.dimension {
            return Err(Error::DimensionMismatch {
                expected: self.config.dimension,
                actual: batch.dimension,
                index: BatchIndex(None),
            });
        }
        let adding = batch.ids.iter().filter(|id| !present(id)).count();
        if let Some(max) = self.config.max_vectors {
            if len + adding > max {
                return Err(Error::CapacityExceeded {
                    max,
                    current: len,
                    adding,
                });
            }
        }
        Ok(adding)
    }

    /// Inserts a batch; an id that already exists is overwritten (upsert).
    /// All or nothing: the only check left after validation is capacity.
    pub fn insert(&mut self, batch: PointBatch) -> Result<()> {
        let adding = self.check_insert(&batch, self.len(), |id| self.slot_of.contains_key(id))?;
        self.arena
            .reserve(adding.saturating_sub(self.free_slots.len()));
        let dim = self.config.dimension;
        let vectors = batch.vectors.chunks_exact(dim);
        for ((id, vector), payload) in batch.ids.into_iter().zip(vectors).zip(batch.payloads) {
            self.put(id, vector, Arc::new(payload));
        }
        Ok(())
    }

    fn put(&mut self, id: PointId, vector: &[f32], payload: Arc<Payload>) {
        if let Some(&slot) = self.slot_of.get(&id) {
            self.journal.wrote(slot, &id);
            self.arena.set(slot, vector);
            self.labels.retire(slot);
            self.labels.assign(slot, false);
            if let Some(point) = self.points[slot as usize].as_mut() {
                point.payload = payload;
            }
            self.refresh_matches(slot);
            return;
        }
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.arena.set(slot, vector);
                self.labels.assign(slot, false);
                slot
            }
            None => {
                let slot = self.arena.push(vector);
                self.points.push(None);
                self.labels.assign(slot, true);
                slot
            }
        };
        self.journal.wrote(slot, &id);
        self.points[slot as usize] = Some(Point {
            id: id.clone(),
            payload,
        });
        self.slot_of.insert(id, slot);
        self.refresh_matches(slot);
    }

    /// Brings the filter bitmaps up to date with what `slot` holds now.
    fn refresh_matches(&mut self, slot: u32) {
        match self.points[slot as usize].as_ref() {
            Some(point) => {
                let payload = Arc::clone(&point.payload);
                self.matches
                    .update(slot, Some(&|filter: &Filter| filter.matches(&payload)));
            }
            None => self.matches.update(slot, None),
        }
    }

    /// The bitmap of the slots matching `filter`, if the collection keeps
    /// one (see [`MatchCache`]): built on the filter's second use.
    pub fn matching(&self, filter: &Filter) -> Option<Arc<Matches>> {
        self.matches.get_or_build(filter, || {
            self.points
                .iter()
                .enumerate()
                .filter_map(|(slot, point)| {
                    point
                        .as_ref()
                        .filter(|p| filter.matches(&p.payload))
                        .map(|_| slot as u32)
                })
                .collect()
        })
    }

    /// Replaces the vector and payload of an existing point.
    pub fn update(&mut self, id: &PointId, vector: &[f32], payload: Payload) -> Result<()> {
        check_vector(vector, self.config.dimension, BatchIndex(None))?;
        let Some(&slot) = self.slot_of.get(id) else {
            return Err(Error::NotFound { id: id.to_string() });
        };
        self.journal.wrote(slot, id);
        self.arena.set(slot, vector);
        self.labels.retire(slot);
        self.labels.assign(slot, false);
        if let Some(point) = self.points[slot as usize].as_mut() {
            point.payload = Arc::new(payload);
        }
        self.refresh_matches(slot);
        Ok(())
    }

    /// Removes a point; returns whether it existed.
    pub fn delete(&mut self, id: &PointId) -> bool {
        let Some(slot) = self.slot_of.remove(id) else {
            return false;
        };
        self.journal.deleted(id, self.slot_of.len());
        self.points[slot as usize] = None;
        self.labels.retire(slot);
        self.free_slots.push(slot);
        self.refresh_matches(slot);
        true
    }

    /// Removes every point.
    pub fn clear(&mut self) {
        let epoch = self.labels.epoch + 1;
        let mut journal = std::mem::take(&mut self.journal);
        journal.cleared();
        *self = Collection::new(self.config);
        self.labels.epoch = epoch;
        self.journal = journal;
    }

    pub fn get(&self, id: &PointId) -> Option<Record> {
        let &slot = self.slot_of.get(id)?;
        let point = self.points[slot as usize].as_ref()?;
        Some(Record {
            id: point.id.clone(),
            vector: Some(self.arena.get(slot).to_vec()),
            payload: Arc::clone(&point.payload),
        })
    }

    /// The exact top-`limit` points matching `filter`, best first.
    pub fn search(&self, query: &[f32], limit: usize, filter: &Filter) -> Result<Vec<Hit>> {
        let matching = self.matching(filter);
        self.search_matching(query, limit, filter, matching.as_deref())
    }

    /// [`Collection::search`] with the bitmap of `filter`'s matches, if the
    /// caller has it: then only the matching slots are scored.
    pub fn search_matching(
        &self,
        query: &[f32],
        limit: usize,
        filter: &Filter,
        matching: Option<&Matches>,
    ) -> Result<Vec<Hit>> {
        check_vector(query, self.config.dimension, BatchIndex(None))?;
        let (arena, distance) = (&self.arena, self.config.distance);
        let hits = match matching {
            Some(matching) => flat::rank(arena, distance, query, limit, matching.slots()),
            None => {
                let points = &self.points;
                let accept = |slot: u32| match &points[slot as usize] {
                    Some(point) => filter.is_empty() || filter.matches(&point.payload),
                    None => false,
                };
                flat::search(arena, distance, query, limit, accept)
            }
        };
        Ok(hits
            .into_iter()
            .filter_map(|(slot, score)| {
                let point = self.points[slot as usize].as_ref()?;
                Some(Hit {
                    id: point.id.clone(),
                    score,
                    payload: Arc::clone(&point.payload),
                })
            })
            .collect())
    }

    /// Points matching `filter` in id order: the first `limit`, and the count.
    pub fn list(&self, filter: &Filter, limit: usize) -> Page {
        let mut records = Vec::new();
        let mut total = 0;
        for &slot in self.slot_of.values() {
            let Some(point) = self.points[slot as usize].as_ref() else {
                continue;
            };
            if !filter.is_empty() && !filter.matches(&point.payload) {
                continue;
            }
            total += 1;
            if records.len() < limit {
                records.push(Record {
                    id: point.id.clone(),
                    vector: None,
                    payload: Arc::clone(&point.payload),
                });
            }
        }
        Page { records, total }
    }
}

/// Checks an argument given as a JS number: an integer from 1 to 2^32 − 1.
pub fn positive_integer(name: &'static str, value: f64) -> Result<usize> {
    if !(value.is_finite() && value.fract() == 0.0 && value >= 1.0 && value <= u32::MAX as f64) {
        return Err(Error::InvalidArgument {
            name,
            reason: format!("must be a positive integer, got {value}"),
        });
    }
    Ok(value as usize)
}

/// Checks a `limit` argument given as a JS number: a positive integer.
pub fn parse_limit(value: f64) -> Result<usize> {
    positive_integer("limit", value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance;
    use crate::testing::{payload, Rng};
    use serde_json::json;

    const DIM: usize = 3;

    fn config() -> CollectionConfig {
        CollectionConfig::new(DIM, Distance::Cosine, None).unwrap()
    }

    fn id(n: i64) -> PointId {
        PointId::Int(n)
    }

    fn batch(points: &[(i64, [f32; DIM], Value)]) -> Result<PointBatch> {
        PointBatch::new(
            DIM,
            points.iter().map(|p| id(p.0)).collect(),
            points.iter().flat_map(|p| p.1).collect(),
            &vec![DIM as u32; points.len()],
            points.iter().map(|p| payload(p.2.clone())).collect(),
        )
    }

    /// `{"a":{"a":…{"a":1}…}}` with `levels` objects, or arrays when `array`.
    fn nested(levels: usize, array: bool) -> String {
        let (open, close) = if array { ("[", "]") } else { ("{\"a\":", "}") };
        format!(
            "{{\"x\":{}1{}}}",
            open.repeat(levels - 1),
            close.repeat(levels - 1)
        )
    }

    #[test]
    fn payloads_nest_at_most_max_json_depth_levels() {
        for array in [false, true] {
            let ok = nested(MAX_JSON_DEPTH, array);
            assert!(parse_payload(&ok).is_ok(), "{array}");
            assert!(parse_payloads(&format!("[{ok}]")).is_ok(), "{array}");
            let deep = nested(MAX_JSON_DEPTH + 1, array);
            assert_eq!(parse_payload(&deep).unwrap_err().code(), 1006, "{array}");
            let err = parse_payloads(&format!("[{{}},{deep}]")).unwrap_err();
            assert_eq!(err.details()["index"], 1);
        }
        // Past serde_json's own limit: still a typed payload error, no overflow.
        let deeper = nested(10_000, true);
        assert_eq!(parse_payload(&deeper).unwrap_err().code(), 1006);
    }

    #[test]
    fn filtered_search_stays_exact_while_writes_change_a_cached_filter() {
        // Seeded, so the writes are many and varied but repeatable.
        let mut rng = Rng(0x9e37_79b9);
        let mut next = move |n: usize| rng.below(n);
        let mut c = Collection::new(config());
        let mut model: BTreeMap<i64, ([f32; DIM], i64)> = BTreeMap::new();
        let filter = Filter::parse(r#"{"k": 2}"#).unwrap();
        let query = [0.3, -0.5, 0.8];
        for round in 0..400 {
            let n = next(60) as i64;
            let v = [
                next(100) as f32 - 50.0,
                next(100) as f32 - 50.0,
                1.0 + next(9) as f32,
            ];
            let k = next(4) as i64;
            match next(4) {
                0 | 1 => {
                    c.insert(batch(&[(n, v, json!({ "k": k }))]).unwrap())
                        .unwrap();
                    model.insert(n, (v, k));
                }
                2 => {
                    if c.update(&id(n), &v, payload(json!({ "k": k }))).is_ok() {
                        model.insert(n, (v, k));
                    }
                }
                _ => {
                    assert_eq!(c.delete(&id(n)), model.remove(&n).is_some());
                }
            }
            let got: Vec<PointId> = c
                .search(&query, 5, &filter)
                .unwrap()
                .into_iter()
                .map(|hit| hit.id)
                .collect();
            let mut expected: Vec<(f32, i64)> = model
                .iter()
                .filter(|(_, (_, k))| *k == 2)
                .map(|(&n, (v, _))| (distance::dot(&query, v) * distance::inverse_norm(v), n))
                .collect();
            expected.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let expected: Vec<PointId> = expected.iter().take(5).map(|e| id(e.1)).collect();
            assert_eq!(got, expected, "round {round}");
            if round > 1 {
                let matching = c.matching(&filter).expect("a bitmap after the second use");
                assert_eq!(
                    matching.count(),
                    model.values().filter(|(_, k)| *k == 2).count()
                );
            }
        }
    }

    #[test]
    fn insert_get_update_delete_round_trip() {
        let mut c = Collection::new(config());
        c.insert(batch(&[(1, [1.0, 0.0, 0.0], json!({"a": 1}))]).unwrap())
            .unwrap();
        let r = c.get(&id(1)).unwrap();
        assert_eq!(r.vector.unwrap(), vec![1.0, 0.0, 0.0]);
        assert_eq!(r.payload["a"], 1);
        c.update(&id(1), &[0.0, 1.0, 0.0], payload(json!({"a": 2})))
            .unwrap();
        let r = c.get(&id(1)).unwrap();
        assert_eq!(r.vector.unwrap(), vec![0.0, 1.0, 0.0]);
        assert_eq!(r.payload["a"], 2);
        assert!(c.delete(&id(1)));
        assert!(!c.delete(&id(1)));
        assert!(c.get(&id(1)).is_none());
        assert!(c.is_empty());
    }

    #[test]
    fn a_bad_vector_anywhere_in_a_batch_rejects_the_whole_batch() {
        let good = [1.0, 2.0, 3.0];
        let err = PointBatch::new(
            DIM,
            vec![id(1), id(2)],
            [good, [1.0, f32::NAN, 0.0]].concat(),
            &[3, 3],
            vec![Payload::new(), Payload::new()],
        )
        .unwrap_err();
        assert_eq!(err.code(), 1002);
        assert!(err.to_string().contains("batch index 1"), "{err}");

        let err = PointBatch::new(
            DIM,
            vec![id(1), id(2)],
            [&good[..], &[1.0, 2.0]].concat(),
            &[3, 2],
            vec![Payload::new(), Payload::new()],
        )
        .unwrap_err();
        assert_eq!(err.code(), 1001);
        assert_eq!(err.details()["actualDimension"], 2);
    }

    #[test]
    fn batches_with_mismatched_lengths_or_duplicate_ids_are_rejected() {
        let err = PointBatch::new(
            DIM,
            vec![id(1)],
            vec![0.0; 6],
            &[3, 3],
            vec![Payload::new()],
        )
        .unwrap_err();
        assert_eq!(err.code(), 1003);
        let err = batch(&[(7, [1.0; 3], json!({})), (7, [2.0; 3], json!({}))]).unwrap_err();
        assert_eq!(err.code(), 1005);
    }

    #[test]
    fn capacity_counts_only_new_ids_and_rejects_the_whole_batch() {
        let mut c = Collection::new(CollectionConfig::new(DIM, Distance::Dot, Some(2)).unwrap());
        c.insert(batch(&[(1, [1.0; 3], json!({})), (2, [1.0; 3], json!({}))]).unwrap())
            .unwrap();
        // Overwriting existing ids needs no room.
        c.insert(batch(&[(1, [2.0; 3], json!({"v": 2}))]).unwrap())
            .unwrap();
        let err = c
            .insert(batch(&[(2, [3.0; 3], json!({})), (3, [3.0; 3], json!({}))]).unwrap())
            .unwrap_err();
        assert_eq!(err.code(), 1009);
        assert_eq!(c.get(&id(2)).unwrap().vector.unwrap(), vec![1.0; 3]);
        assert!(c.get(&id(3)).is_none());
    }

    #[test]
    fn update_of_a_missing_id_is_not_found_and_changes_nothing() {
        let mut c = Collection::new(config());
        let err = c.update(&id(9), &[1.0; 3], Payload::new()).unwrap_err();
        assert_eq!(err.code(), 1011);
        assert!(c.is_empty());
    }

    #[test]
    fn filtered_search_returns_the_true_top_k_among_matches() {
        let mut c = Collection::new(config());
        let mut points = Vec::new();
        for i in 0..200 {
            let v = [1.0, i as f32 / 200.0, 0.0];
            points.push((i, v, json!({"even": i % 2 == 0})));
        }
        c.insert(batch(&points).unwrap()).unwrap();
        let filter = Filter::from_json(&json!({"even": false})).unwrap();
        let hits = c.search(&[1.0, 0.0, 0.0], 5, &filter).unwrap();
        let ids: Vec<PointId> = hits.iter().map(|h| h.id.clone()).collect();
        assert_eq!(ids, [1, 3, 5, 7, 9].map(id));
    }

    #[test]
    fn deleted_slots_are_reused_and_never_returned() {
        let mut c = Collection::new(config());
        c.insert(
            batch(&[
                (1, [1.0, 0.0, 0.0], json!({})),
                (2, [0.0, 1.0, 0.0], json!({})),
            ])
            .unwrap(),
        )
        .unwrap();
        c.delete(&id(1));
        let hits = c.search(&[1.0, 0.0, 0.0], 10, &Filter::default()).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].id, id(2));
        c.insert(batch(&[(3, [0.0, 0.0, 1.0], json!({}))]).unwrap())
            .unwrap();
        assert_eq!(c.points.len(), 2, "slot of id 1 reused");
        assert_eq!(c.get(&id(3)).unwrap().vector.unwrap(), vec![0.0, 0.0, 1.0]);
    }

    #[test]
    fn list_pages_in_id_order_and_counts_all_matches() {
        let mut c = Collection::new(config());
        let points: Vec<_> = (0..10)
            .rev()
            .map(|i| (i, [1.0; 3], json!({"big": i >= 5})))
            .collect();
        c.insert(batch(&points).unwrap()).unwrap();
        let page = c.list(&Filter::from_json(&json!({"big": true})).unwrap(), 3);
        assert_eq!(page.total, 5);
        let ids: Vec<PointId> = page.records.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids, [5, 6, 7].map(id));
    }

    #[test]
    fn limits_must_be_positive_integers() {
        assert_eq!(parse_limit(10.0).unwrap(), 10);
        for bad in [0.0, -1.0, 2.5, f64::NAN, f64::INFINITY] {
            assert_eq!(parse_limit(bad).unwrap_err().code(), 1008);
        }
    }

    #[test]
    fn payloads_must_be_objects() {
        assert_eq!(parse_payloads(r#"[{"a":1},{}]"#).unwrap().len(), 2);
        assert_eq!(parse_payloads(r#"[{"a":1},[]]"#).unwrap_err().code(), 1006);
        assert_eq!(parse_payloads(r#"{"a":1}"#).unwrap_err().code(), 1006);
        assert_eq!(parse_payload("null").unwrap_err().code(), 1006);
    }

    /// Vectors on disk: a collection served from the checkpoint files it
    /// wrote answers like a twin that kept every vector in memory, through
    /// upserts, updates, deletes and slot reuse before and after each
    /// checkpoint's copy was taken.
    #[test]
    fn vectors_served_from_checkpoint_files_match_a_twin_in_memory() {
        use crate::storage::snapshot;
        const D: usize = 8;
        let dir = tempfile::tempdir().unwrap();
        let config = CollectionConfig::new(D, Distance::Cosine, None).unwrap();
        let mut rng = Rng(0x5eed_d15c);
        let mut disk = Collection::new(config.with_vectors_on_disk(true));
        let mut twin = Collection::new(config);
        let step = |disk: &mut Collection, twin: &mut Collection, rng: &mut Rng| {
            let n = rng.below(400) as i64;
            let vector: Vec<f32> = (0..D).map(|_| rng.signed()).collect();
            match rng.below(10) {
                0..=5 => {
                    let b = || {
                        crate::testing::batch(
                            D,
                            vec![id(n)],
                            vector.clone(),
                            vec![payload(json!({"n": n}))],
                        )
                    };
                    disk.insert(b()).unwrap();
                    twin.insert(b()).unwrap();
                }
                6 => {
                    let p = || payload(json!({"u": n}));
                    assert_eq!(
                        disk.update(&id(n), &vector, p()).is_ok(),
                        twin.update(&id(n), &vector, p()).is_ok()
                    );
                }
                _ => assert_eq!(disk.delete(&id(n)), twin.delete(&id(n))),
            }
        };
        let check = |disk: &Collection, twin: &Collection, rng: &mut Rng| {
            assert_eq!(disk.len(), twin.len());
            for (id, vector, payload) in twin.points() {
                let got = disk.get(id).expect("stored");
                assert_eq!(got.vector.as_deref(), Some(vector), "{id}");
                assert_eq!(&got.payload, payload);
            }
            let query: Vec<f32> = (0..D).map(|_| rng.signed()).collect();
            let live = |c: &Collection| {
                let slots: Vec<bool> = (0..c.arena().slots() as u32)
                    .map(|s| c.point(s).is_some())
                    .collect();
                move |slot: u32| slots[slot as usize]
            };
            assert_eq!(
                flat::search(disk.arena(), Distance::Cosine, &query, 20, live(disk)),
                flat::search(twin.arena(), Distance::Cosine, &query, 20, live(twin))
            );
        };
        for round in 0..6u64 {
            for _ in 0..300 {
                step(&mut disk, &mut twin, &mut rng);
            }
            // The checkpoint's copy; writes go on while its file is written.
            let copy = disk.clone();
            let file = dir.path().join(snapshot::file_name(round + 1));
            std::fs::write(&file, snapshot::encode(&copy, round, false)).unwrap();
            for _ in 0..150 {
                step(&mut disk, &mut twin, &mut rng);
            }
            let map = unsafe { memmap2::Mmap::map(&std::fs::File::open(&file).unwrap()) }.unwrap();
            let vectors = snapshot::map_vectors(map).expect("an uncompressed snapshot maps");
            assert!(disk.rebase_vectors(&copy, vectors), "round {round}");
            assert!(disk.arena().is_mapped());
            assert!(disk.arena().slots_in_memory() < disk.arena().slots());
            check(&disk, &twin, &mut rng);
            for _ in 0..100 {
                step(&mut disk, &mut twin, &mut rng);
                check(&disk, &twin, &mut rng);
            }
        }
        // Reopened from the last file alone, the collection is that copy.
        let copy = disk.clone();
        let file = dir.path().join("last.avs");
        std::fs::write(&file, snapshot::encode(&copy, 99, false)).unwrap();
        let map = unsafe { memmap2::Mmap::map(&std::fs::File::open(&file).unwrap()) }.unwrap();
        let reopened = snapshot::decode_mapped(map)
            .unwrap()
            .expect("uncompressed")
            .into_collection(None)
            .unwrap();
        assert!(reopened.arena().is_mapped());
        assert_eq!(reopened.arena().slots_in_memory(), 0);
        let mut ids = 0;
        for (id, vector, payload) in copy.points() {
            let got = reopened.get(id).unwrap();
            assert_eq!(got.vector.as_deref(), Some(vector));
            assert_eq!(&got.payload, payload);
            ids += 1;
        }
        assert_eq!(reopened.len(), ids);
        // A clear after the copy: the history cannot be told, nothing moves.
        let copy = disk.clone();
        std::fs::write(&file, snapshot::encode(&copy, 100, false)).unwrap();
        disk.clear();
        step(&mut disk, &mut twin, &mut rng);
        let map = unsafe { memmap2::Mmap::map(&std::fs::File::open(&file).unwrap()) }.unwrap();
        assert!(!disk.rebase_vectors(&copy, snapshot::map_vectors(map).unwrap()));
        assert!(!disk.arena().is_mapped());
        // A compressed snapshot is not mapped.
        std::fs::write(&file, snapshot::encode(&copy, 100, true)).unwrap();
        let map = unsafe { memmap2::Mmap::map(&std::fs::File::open(&file).unwrap()) }.unwrap();
        assert!(snapshot::map_vectors(map).is_none());
        let map = unsafe { memmap2::Mmap::map(&std::fs::File::open(&file).unwrap()) }.unwrap();
        assert!(snapshot::decode_mapped(map).unwrap().is_err());
    }
}

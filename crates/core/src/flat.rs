//! The vector arena and exact (flat) search over it.
//!
//! Vectors live back to back in a few large blocks: the vectors of the
//! snapshot the collection was opened from, where they were read, then
//! fixed-size chunks for everything inserted since. Within a block slot
//! `s` follows slot `s - 1`, so a full scan is a few linear passes over
//! memory that the distance kernels vectorise. Growing never moves a vector
//! (no reallocation that copies the whole arena under the writers' lock,
//! as one `Vec` would when it doubles), and a copy of the arena (taken for
//! a checkpoint) shares every block until one of the two writes to it.
//! Vectors are stored as given; for cosine the arena keeps `1 / ‖v‖` per
//! slot so nothing is normalised per query.
//!
//! With vectors on disk (`storage.vectors = 'disk'`) the base is instead a
//! memory map of the checkpoint file ([`MappedVectors`]): the page cache
//! holds what searches touched, and the process keeps only the chunks
//! written since the checkpoint. A mapped file is never written, so a
//! vector overwritten in the base goes to a small `overrides` map, and
//! after a checkpoint that skipped dead slots (the file holds live points
//! only) `row_of_slot` says which row of the file holds a slot.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;

use crate::distance::{self, Distance};

/// Growth chunks hold about this many floats (1 MiB), rounded down to a
/// power of two of slots.
const CHUNK_FLOATS: usize = 1 << 18;
/// The largest chunk, in slots (for tiny dimensions).
const MAX_CHUNK_SHIFT: u32 = 16;
/// `row_of_slot` of a slot the mapped file holds no row for (it was dead
/// when the checkpoint was written, and is dead or overridden now).
const NO_ROW: u32 = u32::MAX;

/// A read-only memory map of a checkpoint file whose vectors the arena
/// serves in place: `count` rows of `dim` floats from float `start`.
pub struct MappedVectors {
    map: memmap2::Mmap,
    start: usize,
    count: usize,
    dim: usize,
}

impl std::fmt::Debug for MappedVectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedVectors")
            .field("bytes", &self.map.len())
            .field("count", &self.count)
            .finish()
    }
}

impl MappedVectors {
    /// Takes `count` rows of `dim` floats at float offset `start` of `map`;
    /// `None` when the map is too short for them.
    pub fn new(map: memmap2::Mmap, start: usize, count: usize, dim: usize) -> Option<Self> {
        let end = count.checked_mul(dim)?.checked_add(start)?;
        (end.checked_mul(4)? <= map.len()).then_some(MappedVectors {
            map,
            start,
            count,
            dim,
        })
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The mapped rows, back to back.
    fn floats(&self) -> &[f32] {
        let end = self.start + self.count * self.dim;
        // SAFETY: a map starts on a page boundary, so its bytes are aligned
        // for f32; `new` checked that `end` floats fit in it, and every bit
        // pattern is an f32. The file is never written while mapped
        // (checkpoint files are written once, under another name, then
        // renamed), so the bytes do not change under the slice.
        let all = unsafe { std::slice::from_raw_parts(self.map.as_ptr().cast::<f32>(), end) };
        &all[self.start..]
    }

    /// Tells the kernel the rows are read at random (no read-ahead) and
    /// drops them from this process's resident set: they stay in the page
    /// cache, and a search maps back in only the rows it reads.
    fn release(&self) {
        let _ = self.map.advise(memmap2::Advice::Random);
        // SAFETY: the map is read-only and file-backed: dropped pages are
        // read back from the file on the next access, unchanged.
        #[cfg(unix)]
        let _ = unsafe {
            self.map
                .unchecked_advise(memmap2::UncheckedAdvice::DontNeed)
        };
    }
}

#[derive(Debug, Clone)]
enum Base {
    Owned(Arc<Vec<f32>>),
    Mapped(Arc<MappedVectors>),
}

impl Default for Base {
    fn default() -> Self {
        Base::Owned(Arc::default())
    }
}

impl Base {
    #[inline(always)]
    fn floats(&self) -> &[f32] {
        match self {
            Base::Owned(data) => data,
            Base::Mapped(map) => map.floats(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct VectorArena {
    dim: usize,
    /// Slots per chunk: `1 << chunk_shift`.
    chunk_shift: u32,
    /// The first `base_slots` slots, slot 0 at `base[base_start]`: a
    /// snapshot's vectors are used where they were read (or mapped), after
    /// its header.
    base: Base,
    base_start: usize,
    base_slots: usize,
    /// Mapped base only: the row of each base slot (`NO_ROW`: none), or
    /// empty when slot `s` is row `s`.
    row_of_slot: Arc<Vec<u32>>,
    /// Mapped base only: base slots whose vector changed since the map.
    overrides: Arc<BTreeMap<u32, Box<[f32]>>>,
    /// `dim` zeros: what a base slot without a row holds.
    zeros: Arc<[f32]>,
    /// The slots after the base, `1 << chunk_shift` per chunk; only the last
    /// one is partly filled.
    chunks: Vec<Arc<Vec<f32>>>,
    inverse_norms: Vec<f32>,
}

/// `1 / ‖v‖` of each of `rows` (of `dim` floats), on both cores when there
/// are enough of them (a load is waiting on this).
fn inverse_norms_of(rows: &[f32], dim: usize, count: usize) -> Vec<f32> {
    let norms = |part: &[f32]| -> Vec<f32> {
        part.chunks_exact(dim.max(1))
            .map(distance::inverse_norm)
            .collect()
    };
    if count < 8192 {
        return norms(rows);
    }
    let (first, second) = rows.split_at((count / 2) * dim);
    let (mut a, b) = std::thread::scope(|scope| {
        let other = scope.spawn(|| norms(second));
        (norms(first), other.join())
    });
    match b {
        Ok(b) => {
            a.extend(b);
            a
        }
        Err(_) => norms(rows),
    }
}

impl VectorArena {
    pub fn new(dim: usize) -> Self {
        let slots_per_chunk = (CHUNK_FLOATS / dim.max(1)).max(1);
        VectorArena {
            dim,
            chunk_shift: slots_per_chunk.ilog2().min(MAX_CHUNK_SHIFT),
            zeros: vec![0.0; dim].into(),
            ..VectorArena::default()
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of slots, live or not.
    pub fn slots(&self) -> usize {
        self.inverse_norms.len()
    }

    /// Whether the base is a memory-mapped file.
    pub fn is_mapped(&self) -> bool {
        matches!(self.base, Base::Mapped(_))
    }

    /// A mapped base: drops its pages from the process's resident set
    /// (they stay in the page cache), after a pass that read every row.
    pub fn release_pages(&self) {
        if let Base::Mapped(mapped) = &self.base {
            mapped.release();
        }
    }

    /// Slots whose vector the process holds in its own memory: all of them
    /// unless the base is mapped, else the ones written since the map.
    pub fn slots_in_memory(&self) -> usize {
        match self.base {
            Base::Owned(_) => self.slots(),
            Base::Mapped(_) => self.slots() - self.base_slots + self.overrides.len(),
        }
    }

    /// Takes `count` vectors stored back to back from `data[start..]`
    /// (e.g. a snapshot as read from disk) without copying them.
    pub fn from_vec(dim: usize, mut data: Vec<f32>, start: usize, count: usize) -> Self {
        data.truncate(start + count * dim);
        data.shrink_to_fit();
        let inverse_norms = inverse_norms_of(&data[start..], dim, count);
        VectorArena {
            base: Base::Owned(Arc::new(data)),
            base_start: start,
            base_slots: count,
            inverse_norms,
            ..VectorArena::new(dim)
        }
    }

    /// Serves the rows of `mapped` in place, slot `s` from row `s`; reads
    /// each row once (for its norm), then releases them from memory.
    pub fn from_mapped(mapped: MappedVectors) -> Self {
        let (dim, count) = (mapped.dim, mapped.count);
        let inverse_norms = inverse_norms_of(mapped.floats(), dim, count);
        mapped.release();
        VectorArena {
            base_start: 0,
            base_slots: count,
            base: Base::Mapped(Arc::new(mapped)),
            inverse_norms,
            ..VectorArena::new(dim)
        }
    }

    /// Moves the vectors of slots `0..rows.len()` to `mapped` (a checkpoint
    /// just written): slot `s` is row `rows[s]` of it, or `None` when the
    /// file has no row for it. `own(s)` says which of those slots hold a
    /// vector the file does not (written after the checkpoint's copy was
    /// taken, or given a row-less slot): those keep their vector in memory.
    /// The slots after `rows.len()` move to fresh chunks.
    pub fn rebase(
        &mut self,
        mapped: MappedVectors,
        rows: &[Option<u32>],
        own: impl Fn(u32) -> bool,
    ) {
        let dim = self.dim;
        let copied = rows.len().min(self.slots());
        let identity = rows.iter().enumerate().all(|(s, r)| *r == Some(s as u32));
        let mut overrides = BTreeMap::new();
        for slot in 0..copied as u32 {
            if own(slot) {
                overrides.insert(slot, Box::from(self.get(slot)));
            }
        }
        mapped.release();
        let mut next = VectorArena {
            base: Base::Mapped(Arc::new(mapped)),
            base_start: 0,
            base_slots: copied,
            row_of_slot: Arc::new(if identity {
                Vec::new()
            } else {
                rows[..copied].iter().map(|r| r.unwrap_or(NO_ROW)).collect()
            }),
            overrides: Arc::new(overrides),
            ..VectorArena::new(dim)
        };
        for slot in copied..self.slots() {
            next.push_row(slot, self.get(slot as u32));
        }
        next.inverse_norms = std::mem::take(&mut self.inverse_norms);
        *self = next;
    }

    /// Puts `vector` in `slot`, the next slot after the chunks' last one,
    /// without its norm.
    fn push_row(&mut self, slot: usize, vector: &[f32]) {
        let chunk = (slot - self.base_slots) >> self.chunk_shift;
        if chunk == self.chunks.len() {
            let floats = (1usize << self.chunk_shift) * self.dim;
            self.chunks.push(Arc::new(Vec::with_capacity(floats)));
        }
        // A chunk a checkpoint's copy still holds is copied first (only the
        // last chunk can be partly filled, so only it is ever pushed to).
        Arc::make_mut(&mut self.chunks[chunk]).extend_from_slice(vector);
    }

    pub fn push(&mut self, vector: &[f32]) -> u32 {
        debug_assert_eq!(vector.len(), self.dim);
        let slot = self.slots();
        self.push_row(slot, vector);
        self.inverse_norms.push(distance::inverse_norm(vector));
        slot as u32
    }

    /// Overwrites the vector in `slot`. If a copy of the arena still shares
    /// the block holding it, that block is copied first (for the base, while
    /// a checkpoint is being written: once, then it is this arena's own).
    /// A mapped base is never written: the vector goes to `overrides`.
    pub fn set(&mut self, slot: u32, vector: &[f32]) {
        let dim = self.dim;
        let index = slot as usize;
        if index < self.base_slots {
            match &mut self.base {
                Base::Owned(data) => {
                    let start = self.base_start + index * dim;
                    Arc::make_mut(data)[start..start + dim].copy_from_slice(vector);
                }
                Base::Mapped(_) => {
                    Arc::make_mut(&mut self.overrides).insert(slot, Box::from(vector));
                }
            }
        } else {
            let offset = index - self.base_slots;
            let within = offset & ((1 << self.chunk_shift) - 1);
            let start = within * dim;
            Arc::make_mut(&mut self.chunks[offset >> self.chunk_shift])[start..start + dim]
                .copy_from_slice(vector);
        }
        self.inverse_norms[index] = distance::inverse_norm(vector);
    }

    #[inline]
    pub fn get(&self, slot: u32) -> &[f32] {
        let (dim, index) = (self.dim, slot as usize);
        if index < self.base_slots {
            let row = if self.row_of_slot.is_empty() && self.overrides.is_empty() {
                index
            } else {
                match self.mapped_row(slot) {
                    Ok(row) => row,
                    Err(vector) => return vector,
                }
            };
            let start = self.base_start + row * dim;
            &self.base.floats()[start..start + dim]
        } else {
            let offset = index - self.base_slots;
            let start = (offset & ((1 << self.chunk_shift) - 1)) * dim;
            &self.chunks[offset >> self.chunk_shift][start..start + dim]
        }
    }

    /// A mapped base slot's row, or the vector it holds instead.
    #[cold]
    fn mapped_row(&self, slot: u32) -> Result<usize, &[f32]> {
        if let Some(vector) = self.overrides.get(&slot) {
            return Err(vector);
        }
        match self.row_of_slot.get(slot as usize) {
            None => Ok(slot as usize),
            Some(&NO_ROW) => Err(&self.zeros),
            Some(&row) => Ok(row as usize),
        }
    }

    /// The arena as runs of consecutive slots: `(first slot, its vectors
    /// back to back)`, in slot order.
    pub fn segments(&self) -> Vec<(usize, &[f32])> {
        let dim = self.dim;
        let floats = self.base.floats();
        let mut out = Vec::with_capacity(1 + self.chunks.len());
        if self.row_of_slot.is_empty() && self.overrides.is_empty() {
            let base = &floats[self.base_start..self.base_start + self.base_slots * dim];
            out.push((0, base));
        } else {
            // Runs of slots whose rows follow each other in the file.
            let mut run: Option<(usize, usize, usize)> = None; // first slot, first row, rows
            for slot in 0..self.base_slots {
                match self.mapped_row(slot as u32) {
                    Ok(row) => match &mut run {
                        Some((first, first_row, n))
                            if *first + *n == slot && *first_row + *n == row =>
                        {
                            *n += 1;
                        }
                        _ => {
                            if let Some((first, first_row, n)) = run.take() {
                                let start = self.base_start + first_row * dim;
                                out.push((first, &floats[start..start + n * dim]));
                            }
                            run = Some((slot, row, 1));
                        }
                    },
                    Err(vector) => {
                        if let Some((first, first_row, n)) = run.take() {
                            let start = self.base_start + first_row * dim;
                            out.push((first, &floats[start..start + n * dim]));
                        }
                        out.push((slot, vector));
                    }
                }
            }
            if let Some((first, first_row, n)) = run {
                let start = self.base_start + first_row * dim;
                out.push((first, &floats[start..start + n * dim]));
            }
        }
        let per_chunk = 1usize << self.chunk_shift;
        for (i, chunk) in self.chunks.iter().enumerate() {
            out.push((self.base_slots + i * per_chunk, chunk.as_slice()));
        }
        out.retain(|(_, rows)| !rows.is_empty());
        out
    }

    pub fn clear(&mut self) {
        *self = VectorArena::new(self.dim);
    }

    pub fn reserve(&mut self, additional: usize) {
        self.inverse_norms.reserve(additional);
    }
}

/// A candidate in the top-k heap. Greater is better: higher key, then the
/// lower slot (so ties resolve to the older point, deterministically).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    key: f32,
    slot: u32,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key
            .total_cmp(&other.key)
            .then_with(|| other.slot.cmp(&self.slot))
    }
}

/// Keeps the best `k` candidates seen; the worst sits on top of a min-heap.
struct TopK {
    k: usize,
    heap: BinaryHeap<Reverse<Candidate>>,
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.saturating_add(1).min(1 << 16)),
        }
    }

    #[inline]
    fn offer(&mut self, candidate: Candidate) {
        if self.heap.len() < self.k {
            self.heap.push(Reverse(candidate));
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if candidate > worst.0 {
                *worst = Reverse(candidate);
            }
        }
    }

    fn into_sorted(self) -> Vec<Candidate> {
        // `into_sorted_vec` of `Reverse` is ascending in `Reverse`, i.e. best first.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.0)
            .collect()
    }
}

/// Exact top-`k` over the slots `accept` lets through, best first, as
/// `(slot, score)` with the score of [`Distance`]'s convention.
pub fn search(
    arena: &VectorArena,
    distance: Distance,
    query: &[f32],
    k: usize,
    mut accept: impl FnMut(u32) -> bool,
) -> Vec<(u32, f32)> {
    if k == 0 {
        return Vec::new();
    }
    let dim = arena.dim;
    let mut top = TopK::new(k);
    for (first, rows) in arena.segments() {
        let norms = &arena.inverse_norms[first..];
        for (i, (row, &inverse_norm)) in rows.chunks_exact(dim.max(1)).zip(norms).enumerate() {
            let slot = (first + i) as u32;
            if !accept(slot) {
                continue;
            }
            let key = key(distance, query, row, inverse_norm);
            top.offer(Candidate { key, slot });
        }
    }
    scores(distance, query, top)
}

/// Exact top-`k` among the given slots (an ANN index's candidates, an
/// unindexed tail), best first, scored like [`search`]. A slot given twice
/// counts once.
pub fn rank(
    arena: &VectorArena,
    distance: Distance,
    query: &[f32],
    k: usize,
    slots: impl IntoIterator<Item = u32>,
) -> Vec<(u32, f32)> {
    if k == 0 {
        return Vec::new();
    }
    let mut slots: Vec<u32> = slots.into_iter().collect();
    slots.sort_unstable();
    slots.dedup();
    let mut top = TopK::new(k);
    // The rows lie anywhere in the arena: ask for the next rows' cache
    // lines while this one is scored, so their misses overlap.
    let prefetch = |slot: u32| {
        prefetch_row(arena.get(slot));
        prefetch_row(std::slice::from_ref(&arena.inverse_norms[slot as usize]));
    };
    for &slot in slots.iter().take(PREFETCH_AHEAD) {
        prefetch(slot);
    }
    for (i, &slot) in slots.iter().enumerate() {
        if let Some(&ahead) = slots.get(i + PREFETCH_AHEAD) {
            prefetch(ahead);
        }
        let row = arena.get(slot);
        let key = key(distance, query, row, arena.inverse_norms[slot as usize]);
        top.offer(Candidate { key, slot });
    }
    scores(distance, query, top)
}

/// How many rows ahead [`rank`] prefetches.
const PREFETCH_AHEAD: usize = 4;

/// Hints the CPU to load `row` into the cache (a no-op off x86_64). The
/// slice index above is the only access that is not a hint.
#[inline(always)]
fn prefetch_row(row: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        const FLOATS_PER_LINE: usize = 16;
        for line in row.chunks(FLOATS_PER_LINE) {
            // SAFETY: a prefetch is a hint; it reads nothing and cannot
            // fault, and the pointer is inside `row`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

/// Greater is closer; the score is derived from it once per hit.
#[inline(always)]
fn key(distance: Distance, query: &[f32], row: &[f32], inverse_norm: f32) -> f32 {
    match distance {
        Distance::Dot => distance::dot(query, row),
        Distance::Cosine => distance::dot(query, row) * inverse_norm,
        Distance::Euclidean => -distance::l2_squared(query, row),
    }
}

fn scores(distance: Distance, query: &[f32], top: TopK) -> Vec<(u32, f32)> {
    let query_inverse_norm = distance::inverse_norm(query);
    top.into_sorted()
        .into_iter()
        .map(|c| {
            let score = match distance {
                Distance::Dot => c.key,
                Distance::Cosine => (c.key * query_inverse_norm).clamp(-1.0, 1.0),
                Distance::Euclidean => 1.0 / (1.0 + (-c.key).max(0.0).sqrt()),
            };
            (c.slot, score)
        })
        .collect()
}

impl VectorArena {
    /// `1 / ‖v‖` of the vector in `slot` (0 for an all-zero vector).
    pub fn inverse_norm(&self, slot: u32) -> f32 {
        self.inverse_norms[slot as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arena(rows: &[[f32; 2]]) -> VectorArena {
        let mut a = VectorArena::new(2);
        for r in rows {
            a.push(r);
        }
        a
    }

    #[test]
    fn cosine_ranks_by_angle_not_length() {
        let a = arena(&[[10.0, 0.0], [0.0, 1.0], [1.0, 1.0]]);
        let hits = search(&a, Distance::Cosine, &[1.0, 0.1], 3, |_| true);
        let slots: Vec<u32> = hits.iter().map(|h| h.0).collect();
        assert_eq!(slots, [0, 2, 1]);
        assert!((hits[0].1 - 0.995_037_2).abs() < 1e-5);
    }

    #[test]
    fn dot_and_euclidean_scores_follow_their_conventions() {
        let a = arena(&[[1.0, 0.0], [3.0, 4.0]]);
        let dot = search(&a, Distance::Dot, &[1.0, 1.0], 2, |_| true);
        assert_eq!(dot, vec![(1, 7.0), (0, 1.0)]);
        let l2 = search(&a, Distance::Euclidean, &[3.0, 0.0], 2, |_| true);
        assert_eq!(l2[0].0, 0);
        assert!((l2[0].1 - 1.0 / 3.0).abs() < 1e-6);
        assert!((l2[1].1 - 1.0 / 5.0).abs() < 1e-6);
    }

    #[test]
    fn top_k_matches_a_full_sort_and_respects_accept() {
        let mut a = VectorArena::new(3);
        let mut expected = Vec::new();
        for i in 0..500u32 {
            let v = [
                (i % 7) as f32,
                (i % 11) as f32 - 5.0,
                ((i * 31) % 13) as f32,
            ];
            a.push(&v);
            if i % 3 != 0 {
                expected.push((i, distance::dot(&v, &[0.3, -0.2, 0.9])));
            }
        }
        expected.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
        expected.truncate(25);
        let got = search(&a, Distance::Dot, &[0.3, -0.2, 0.9], 25, |s| s % 3 != 0);
        assert_eq!(got, expected);
    }

    #[test]
    fn an_arena_taken_from_a_buffer_matches_one_built_by_pushing() {
        let dim = 3;
        let count = 9000; // large enough for the two-thread norm pass
        let data: Vec<f32> = (0..count * dim)
            .map(|i| ((i * 37) % 101) as f32 - 50.0)
            .collect();
        let mut pushed = VectorArena::new(dim);
        for row in data.chunks_exact(dim) {
            pushed.push(row);
        }
        let mut buffer = vec![7.0; 5];
        buffer.extend_from_slice(&data);
        buffer.extend_from_slice(&[1.0; 11]);
        let taken = VectorArena::from_vec(dim, buffer, 5, count);
        assert_eq!(taken.slots(), count);
        assert_eq!(taken.inverse_norms, pushed.inverse_norms);
        assert_eq!(taken.get(8999), pushed.get(8999));
        let query = [0.3, -1.0, 2.0];
        assert_eq!(
            search(&taken, Distance::Cosine, &query, 7, |_| true),
            search(&pushed, Distance::Cosine, &query, 7, |_| true)
        );
    }

    /// `count` vectors of `dim` floats, all different.
    fn rows(dim: usize, count: usize, salt: usize) -> Vec<Vec<f32>> {
        (0..count)
            .map(|r| {
                (0..dim)
                    .map(|c| (((r + salt) * 131 + c * 17) % 997) as f32 - 498.0)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn an_arena_spans_chunks_and_a_base_and_scans_them_in_slot_order() {
        let dim = 4096; // 64 slots per chunk
        let data = rows(dim, 300, 0);
        let base: Vec<f32> = data[..70].concat();
        let mut arena = VectorArena::from_vec(dim, base, 0, 70);
        for row in &data[70..] {
            arena.push(row);
        }
        assert_eq!(arena.slots(), 300);
        assert!(arena.chunks.len() >= 4, "{} chunks", arena.chunks.len());
        for (slot, row) in data.iter().enumerate() {
            assert_eq!(arena.get(slot as u32), row.as_slice(), "slot {slot}");
        }
        let firsts: Vec<usize> = arena
            .segments()
            .into_iter()
            .map(|(first, _)| first)
            .collect();
        assert_eq!(firsts, [0, 70, 134, 198, 262]);
        let mut pushed = VectorArena::new(dim);
        for row in &data {
            pushed.push(row);
        }
        let query = &data[123];
        assert_eq!(
            search(&arena, Distance::Euclidean, query, 300, |_| true),
            search(&pushed, Distance::Euclidean, query, 300, |_| true)
        );
        assert_eq!(
            search(&arena, Distance::Cosine, query, 1, |_| true)[0].0,
            123
        );
    }

    #[test]
    fn a_copy_keeps_its_vectors_while_the_original_changes() {
        let dim = 4096;
        let data = rows(dim, 150, 0);
        let other = rows(dim, 150, 1000);
        let mut arena = VectorArena::from_vec(dim, data[..40].concat(), 0, 40);
        for row in &data[40..100] {
            arena.push(row);
        }
        let copy = arena.clone();
        // Into the base, a full chunk, the partly filled last chunk; then growth.
        for slot in [3u32, 50, 99] {
            arena.set(slot, &other[slot as usize]);
        }
        for row in &data[100..] {
            arena.push(row);
        }
        assert_eq!(copy.slots(), 100);
        for slot in 0..100u32 {
            assert_eq!(
                copy.get(slot),
                data[slot as usize].as_slice(),
                "copy, slot {slot}"
            );
        }
        for slot in [3u32, 50, 99] {
            assert_eq!(arena.get(slot), other[slot as usize].as_slice());
        }
        assert_eq!(arena.get(4), data[4].as_slice());
        assert_eq!(arena.get(149), data[149].as_slice());
        assert_eq!(arena.inverse_norm(50), distance::inverse_norm(&other[50]));
        assert_eq!(copy.inverse_norm(50), distance::inverse_norm(&data[50]));
    }

    #[test]
    fn k_larger_than_the_arena_returns_everything() {
        let a = arena(&[[1.0, 0.0], [0.0, 1.0]]);
        assert_eq!(
            search(&a, Distance::Dot, &[1.0, 0.0], 10, |_| true).len(),
            2
        );
        assert!(search(&a, Distance::Dot, &[1.0, 0.0], 0, |_| true).is_empty());
    }
}

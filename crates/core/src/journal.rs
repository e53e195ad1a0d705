//! Which points changed since a moment of a collection's history, so an
//! incremental save writes only those (see `snapshots::saves`).
//!
//! Every change to a collection ticks its journal's clock: a point written
//! (insert, upsert, update) records the tick in its slot, a delete records
//! the id with its tick, a clear records its tick. "What changed since tick
//! `t`" is then the slots written after `t`, the ids deleted after `t` and not
//! written again, and whether a clear came after `t`.
//!
//! The journal lives in memory only: its `id` is drawn afresh whenever a
//! collection is built from files (open, restore), so a tick of one history
//! is never read against another; the caller then writes everything. The
//! deleted ids are bounded: past [`MAX_REMEMBERED_DELETES`] (or the live
//! count, if larger) they are dropped and `floor` moves to the current tick,
//! below which the journal answers "unknown".

use std::collections::HashMap;

use crate::id::PointId;

/// Deleted ids the journal keeps at least before it forgets them all.
pub const MAX_REMEMBERED_DELETES: usize = 65_536;

#[derive(Debug, Clone)]
pub struct ChangeJournal {
    id: u64,
    clock: u64,
    /// Slot → tick of its last write.
    written: Vec<u64>,
    /// Deleted id → tick of its delete (removed when the id is written again).
    deleted: HashMap<PointId, u64>,
    cleared_at: u64,
    /// Ticks before this cannot be answered (deleted ids were forgotten).
    floor: u64,
}

/// Where a collection's history stands: the journal's id and clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalMark {
    pub id: u64,
    pub clock: u64,
}

/// What changed after a [`JournalMark`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// A clear came after the mark: start from nothing.
    pub cleared: bool,
    /// Ids deleted after the mark (and not written since).
    pub deleted: Vec<PointId>,
    /// Slots written after the mark.
    pub written: Vec<u32>,
}

impl Default for ChangeJournal {
    fn default() -> Self {
        ChangeJournal::new()
    }
}

impl ChangeJournal {
    /// A journal with a fresh id: nothing before now can be asked about.
    pub fn new() -> Self {
        ChangeJournal {
            id: crate::storage::codec::random_salt(),
            clock: 0,
            written: Vec::new(),
            deleted: HashMap::new(),
            cleared_at: 0,
            floor: 0,
        }
    }

    /// A fresh journal for `slots` points already there.
    pub fn with_slots(slots: usize) -> Self {
        ChangeJournal {
            written: vec![0; slots],
            ..ChangeJournal::new()
        }
    }

    pub fn mark(&self) -> JournalMark {
        JournalMark {
            id: self.id,
            clock: self.clock,
        }
    }

    pub(crate) fn wrote(&mut self, slot: u32, id: &PointId) {
        self.clock += 1;
        let slot = slot as usize;
        if self.written.len() <= slot {
            self.written.resize(slot + 1, 0);
        }
        self.written[slot] = self.clock;
        if !self.deleted.is_empty() {
            self.deleted.remove(id);
        }
    }

    pub(crate) fn deleted(&mut self, id: &PointId, live: usize) {
        self.clock += 1;
        if self.deleted.len() >= MAX_REMEMBERED_DELETES.max(live) {
            self.deleted.clear();
            self.floor = self.clock;
        }
        self.deleted.insert(id.clone(), self.clock);
    }

    pub(crate) fn cleared(&mut self) {
        self.clock += 1;
        self.cleared_at = self.clock;
        self.written.clear();
        self.deleted.clear();
    }

    /// Whether `mark` is a moment of this history with no clear after it:
    /// then [`ChangeJournal::written_after`] tells every slot written since.
    pub fn wrote_only_since(&self, mark: JournalMark) -> bool {
        mark.id == self.id && mark.clock <= self.clock && self.cleared_at <= mark.clock
    }

    /// Whether `slot` was written after `mark` (see
    /// [`ChangeJournal::wrote_only_since`]).
    pub fn written_after(&self, slot: u32, mark: JournalMark) -> bool {
        self.written
            .get(slot as usize)
            .is_some_and(|&at| at > mark.clock)
    }

    /// What changed after `mark`, or `None` when this journal cannot say
    /// (another history, or a tick older than what it remembers).
    /// `live(slot)` says whether a slot holds a point now.
    pub fn since(&self, mark: JournalMark, live: impl Fn(u32) -> bool) -> Option<Changes> {
        if mark.id != self.id || mark.clock > self.clock || mark.clock < self.floor {
            return None;
        }
        let t = mark.clock;
        let mut deleted: Vec<(u64, PointId)> = self
            .deleted
            .iter()
            .filter(|(_, &at)| at > t)
            .map(|(id, &at)| (at, id.clone()))
            .collect();
        deleted.sort();
        let written = self
            .written
            .iter()
            .enumerate()
            .filter(|&(slot, &at)| at > t && live(slot as u32))
            .map(|(slot, _)| slot as u32)
            .collect();
        Some(Changes {
            cleared: self.cleared_at > t,
            deleted: deleted.into_iter().map(|(_, id)| id).collect(),
            written,
        })
    }
}

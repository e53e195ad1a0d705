//! The key-value table as a [`StateMachine`]: its operations, their WAL
//! encoding, and how they apply.
//!
//! Every operation carries the clock reading (`now`, Unix ms) it was made
//! with, so replay computes the same `created_at`, `updated_at` and expiry
//! decisions as the first run. Record bodies (little-endian; `str` = `u32`
//! length + UTF-8; `value` as [`super::put_value`] writes it; `opt_i64` =
//! `u8` 0, or `u8` 1 + `i64`):
//!
//! ```text
//! Set    (16): i64 now, u32 count, count × (str key, value, str metadata, opt_i64 expires_at)
//! Delete (17): i64 now, u32 count, count × str key
//! Clear  (18): (empty)
//! Sweep  (19): i64 now                       removes every entry expired at `now`
//! Group   (5): shared with collections, see `storage::engine`
//! ```
//!
//! The codes differ from a collection's (1–4), so a log of one kind can
//! never replay as the other.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::kv::{
    checkpoint, put_opt_i64, put_str, put_value, read_key, read_opt_i64, read_str, read_value,
    Glob, KvEntry, KvWrite,
};
use crate::storage::codec::{check_fits, put_u32, ByteReader, DecodeError};
use crate::storage::engine::{self, LogOp, StateMachine};
use crate::storage::fs::Storage;
use crate::storage::manifest::Manifest;

/// The manifest's `kind` for a key-value directory.
pub const KIND: &str = "key-value";

pub const OP_SET: u8 = 16;
pub const OP_DELETE: u8 = 17;
pub const OP_CLEAR: u8 = 18;
pub const OP_SWEEP: u8 = 19;

/// Smallest encoded write: key length, value tag and length, metadata length, option tag.
const MIN_WRITE_LEN: usize = 4 + 1 + 4 + 4 + 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOp {
    Set { now: i64, writes: Vec<KvWrite> },
    Delete { now: i64, keys: Vec<String> },
    Clear,
    Sweep { now: i64 },
}

/// What applying an operation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Set,
    /// Per key, whether a live entry existed.
    Deleted(Vec<bool>),
    Cleared,
    /// How many expired entries were removed.
    Swept(usize),
}

impl LogOp for KvOp {
    fn code(&self) -> u8 {
        match self {
            KvOp::Set { .. } => OP_SET,
            KvOp::Delete { .. } => OP_DELETE,
            KvOp::Clear => OP_CLEAR,
            KvOp::Sweep { .. } => OP_SWEEP,
        }
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            KvOp::Set { now, writes } => {
                out.extend_from_slice(&now.to_le_bytes());
                put_u32(out, writes.len() as u32);
                for w in writes {
                    put_str(out, &w.key);
                    put_value(out, &w.value);
                    put_str(out, &w.metadata);
                    put_opt_i64(out, w.expires_at);
                }
            }
            KvOp::Delete { now, keys } => {
                out.extend_from_slice(&now.to_le_bytes());
                put_u32(out, keys.len() as u32);
                for key in keys {
                    put_str(out, key);
                }
            }
            KvOp::Clear => {}
            KvOp::Sweep { now } => out.extend_from_slice(&now.to_le_bytes()),
        }
    }
}

impl KvOp {
    pub fn decode(code: u8, body: &[u8]) -> Result<KvOp, DecodeError> {
        let mut r = ByteReader::new(body);
        let op = match code {
            OP_SET => {
                let now = r.i64()?;
                let count = r.u32()? as usize;
                check_fits(count as u64, MIN_WRITE_LEN, r.remaining() as u64, "writes")?;
                let mut writes = Vec::with_capacity(count);
                for _ in 0..count {
                    writes.push(KvWrite {
                        key: read_key(&mut r)?,
                        value: read_value(&mut r)?,
                        metadata: read_str(&mut r, "metadata")?,
                        expires_at: read_opt_i64(&mut r)?,
                    });
                }
                KvOp::Set { now, writes }
            }
            OP_DELETE => {
                let now = r.i64()?;
                let count = r.u32()? as usize;
                check_fits(count as u64, 4, r.remaining() as u64, "keys")?;
                let keys = (0..count)
                    .map(|_| read_key(&mut r))
                    .collect::<Result<_, _>>()?;
                KvOp::Delete { now, keys }
            }
            OP_CLEAR => KvOp::Clear,
            OP_SWEEP => KvOp::Sweep { now: r.i64()? },
            other => return Err(format!("unknown key-value operation code {other}")),
        };
        r.finish()?;
        Ok(op)
    }
}

/// Sorted keys to shared entries (a checkpoint's copy shares them), plus
/// an index of expiry times so that counting and sweeping expired entries
/// touches only those.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvTable {
    entries: BTreeMap<String, Arc<KvEntry>>,
    expiries: BTreeSet<(i64, String)>,
}

impl KvTable {
    pub fn new() -> KvTable {
        KvTable::default()
    }

    /// Every entry, expired ones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries live at `now`.
    pub fn live_count(&self, now: i64) -> usize {
        let expired = self
            .expiries
            .range(..(now.saturating_add(1), String::new()))
            .count();
        self.entries.len() - expired
    }

    /// Every entry in key order, expired ones included (for checkpoints).
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<KvEntry>)> {
        self.entries.iter()
    }

    pub fn get(&self, key: &str, now: i64) -> Option<&Arc<KvEntry>> {
        self.entries.get(key).filter(|e| e.is_live(now))
    }

    /// Live entries matching `pattern`, in key order, and how many keys the
    /// walk visited: only those that start with the pattern's literal prefix.
    pub fn find_counting(
        &self,
        pattern: &Glob,
        now: i64,
    ) -> (Vec<(&String, &Arc<KvEntry>)>, usize) {
        let prefix = pattern.literal_prefix();
        let mut visited = 0;
        let mut found = Vec::new();
        if pattern.is_literal() {
            if let Some((key, entry)) = self.entries.get_key_value(prefix) {
                visited = 1;
                if entry.is_live(now) {
                    found.push((key, entry));
                }
            }
            return (found, visited);
        }
        for (key, entry) in self
            .entries
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
        {
            if !key.starts_with(prefix) {
                break;
            }
            visited += 1;
            if entry.is_live(now) && pattern.matches(key) {
                found.push((key, entry));
            }
        }
        (found, visited)
    }

    pub fn find(&self, pattern: &Glob, now: i64) -> Vec<(&String, &Arc<KvEntry>)> {
        self.find_counting(pattern, now).0
    }

    /// Inserts an entry as it was stored (a checkpoint's reader); `false`
    /// when the key is already there.
    pub(crate) fn restore(&mut self, key: String, entry: KvEntry) -> bool {
        if self.entries.contains_key(&key) {
            return false;
        }
        if let Some(at) = entry.expires_at {
            self.expiries.insert((at, key.clone()));
        }
        self.entries.insert(key, Arc::new(entry));
        true
    }

    fn remove(&mut self, key: &str) -> Option<Arc<KvEntry>> {
        let old = self.entries.remove(key)?;
        if let Some(at) = old.expires_at {
            self.expiries.remove(&(at, key.to_owned()));
        }
        Some(old)
    }

    /// Applies one operation. Deterministic: the same operations on the same
    /// table give the same table, which is what replay relies on.
    pub fn apply(&mut self, op: KvOp) -> Applied {
        match op {
            KvOp::Set { now, writes } => {
                for w in writes {
                    let created_at = match self.remove(&w.key) {
                        Some(old) if old.is_live(now) => old.created_at,
                        _ => now,
                    };
                    let entry = KvEntry {
                        value: w.value,
                        metadata: w.metadata,
                        created_at,
                        updated_at: now,
                        expires_at: w.expires_at,
                    };
                    self.restore(w.key, entry);
                }
                Applied::Set
            }
            KvOp::Delete { now, keys } => Applied::Deleted(
                keys.iter()
                    .map(|key| self.remove(key).is_some_and(|old| old.is_live(now)))
                    .collect(),
            ),
            KvOp::Clear => {
                self.entries.clear();
                self.expiries.clear();
                Applied::Cleared
            }
            KvOp::Sweep { now } => {
                let expired: Vec<String> = self
                    .expiries
                    .range(..(now.saturating_add(1), String::new()))
                    .map(|(_, key)| key.clone())
                    .collect();
                for key in &expired {
                    self.remove(key);
                }
                Applied::Swept(expired.len())
            }
        }
    }

    /// Whether `op` would change the table: an operation that would not is
    /// not logged (a sweep with nothing expired, a delete of absent keys).
    pub fn changes(&self, op: &KvOp) -> bool {
        match op {
            KvOp::Set { writes, .. } => !writes.is_empty(),
            KvOp::Delete { keys, .. } => keys.iter().any(|k| self.entries.contains_key(k)),
            KvOp::Clear => !self.entries.is_empty(),
            KvOp::Sweep { now } => self.expiries.first().is_some_and(|(at, _)| *at <= *now),
        }
    }
}

impl StateMachine for KvTable {
    type Config = ();
    type Op = KvOp;

    fn empty(_: &()) -> Self {
        KvTable::new()
    }

    fn fresh_manifest(_: &()) -> Manifest {
        Manifest {
            dimension: 0,
            distance: String::new(),
            kind: Some(KIND.into()),
            snapshot: 0,
            snapshot_seq: 0,
            wal_start: 1,
            checkpointed_at_ms: 0,
        }
    }

    fn check_manifest(manifest: &Manifest, _: &()) -> Result<()> {
        match manifest.kind.as_deref() {
            Some(KIND) => Ok(()),
            Some(other) => Err(Error::ConfigMismatch {
                reason: format!("the directory holds a {other} table, not a key-value table"),
            }),
            None => Err(Error::ConfigMismatch {
                reason: "the directory holds a vector collection, not a key-value table".into(),
            }),
        }
    }

    fn read_checkpoint(storage: &dyn Storage, path: &Path, _: &()) -> Result<(Self, u64)> {
        let bytes = storage.read(path).map_err(|e| Error::io("read", path, e))?;
        checkpoint::decode(&bytes).map_err(|(offset, reason)| Error::corrupt(path, offset, reason))
    }

    fn write_checkpoint(
        &self,
        seq: u64,
        _compression: crate::storage::snapshot::Compression,
    ) -> Vec<u8> {
        checkpoint::encode(self, seq)
    }

    fn replay(&mut self, code: u8, body: &[u8]) -> Result<(), DecodeError> {
        for op in engine::decode_record(code, body, KvOp::decode)? {
            self.apply(op);
        }
        Ok(())
    }

    fn entry_count(&self) -> usize {
        self.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KvValue;

    fn set(now: i64, key: &str, value: &str, expires_at: Option<i64>) -> KvOp {
        KvOp::Set {
            now,
            writes: vec![KvWrite {
                key: key.into(),
                value: KvValue::Json(value.into()),
                metadata: "{}".into(),
                expires_at,
            }],
        }
    }

    #[test]
    fn created_at_survives_overwrites_but_not_expiry() {
        let mut t = KvTable::new();
        t.apply(set(10, "a", "1", None));
        t.apply(set(20, "a", "2", Some(30)));
        let e = t.get("a", 25).unwrap();
        assert_eq!((e.created_at, e.updated_at), (10, 20));
        assert!(t.get("a", 30).is_none());
        assert_eq!(t.live_count(29), 1);
        assert_eq!(t.live_count(30), 0);
        // Expired, so a new write starts it afresh.
        t.apply(set(40, "a", "3", None));
        let e = t.get("a", 40).unwrap();
        assert_eq!((e.created_at, e.updated_at), (40, 40));
    }

    #[test]
    fn delete_reports_live_entries_only_and_sweep_removes_the_expired() {
        let mut t = KvTable::new();
        t.apply(set(1, "live", "1", None));
        t.apply(set(1, "gone", "1", Some(5)));
        t.apply(set(1, "later", "1", Some(50)));
        assert!(t.changes(&KvOp::Sweep { now: 5 }));
        assert!(!t.changes(&KvOp::Sweep { now: 4 }));
        assert_eq!(t.apply(KvOp::Sweep { now: 10 }), Applied::Swept(1));
        assert_eq!(t.len(), 2);
        let deleted = t.apply(KvOp::Delete {
            now: 60,
            keys: vec!["live".into(), "later".into(), "none".into()],
        });
        assert_eq!(deleted, Applied::Deleted(vec![true, false, false]));
        assert!(t.is_empty());
    }

    #[test]
    fn every_op_reads_back_as_written() {
        let ops = vec![
            set(7, "k", "{\"a\":[1,2]}", Some(99)),
            KvOp::Set {
                now: -3,
                writes: vec![KvWrite {
                    key: "bin".into(),
                    value: KvValue::Binary(vec![0, 1, 255]),
                    metadata: "{\"m\":true}".into(),
                    expires_at: None,
                }],
            },
            KvOp::Delete {
                now: 8,
                keys: vec!["k".into(), "é".into()],
            },
            KvOp::Clear,
            KvOp::Sweep { now: 12 },
        ];
        for op in &ops {
            let mut body = Vec::new();
            op.encode_body(&mut body);
            assert_eq!(&KvOp::decode(op.code(), &body).unwrap(), op);
            for cut in 0..body.len() {
                assert!(KvOp::decode(op.code(), &body[..cut]).is_err(), "cut {cut}");
            }
        }
        let refs: Vec<&KvOp> = ops.iter().collect();
        let mut group = Vec::new();
        engine::encode_group(&refs, &mut group);
        let back = engine::decode_record(engine::OP_GROUP, &group, KvOp::decode).unwrap();
        assert_eq!(back, ops);
    }

    #[test]
    fn a_prefix_pattern_visits_only_its_prefix() {
        let mut t = KvTable::new();
        for i in 0..1000 {
            t.apply(set(1, &format!("item:{i:04}"), "1", None));
        }
        for i in 0..10 {
            t.apply(set(1, &format!("user:{i}"), "1", None));
        }
        t.apply(set(1, "user", "1", None));
        t.apply(set(1, "users", "1", None));
        let (found, visited) = t.find_counting(&Glob::new("user:*"), 1);
        assert_eq!(found.len(), 10);
        assert_eq!(visited, 10);
        let (found, visited) = t.find_counting(&Glob::new("user:[0-4]"), 1);
        assert_eq!(found.len(), 5);
        assert_eq!(visited, 10);
        let (found, visited) = t.find_counting(&Glob::new("users"), 1);
        assert_eq!((found.len(), visited), (1, 1));
        // No literal prefix: every key is visited.
        let (found, visited) = t.find_counting(&Glob::new("*:0001"), 1);
        assert_eq!((found.len(), visited), (1, 1012));
    }
}

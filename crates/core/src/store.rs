//! `Store`: the thread-safe handle to one collection, the one type the
//! binding holds.
//!
//! Reads run concurrently under a read lock. Writes are applied in the order
//! their tickets were taken ([`Store::ticket`], called on the caller's thread
//! when the call is made), even though they run on a thread pool: a JS caller
//! that fires `insert` and then `delete` without awaiting gets them in that
//! order. The storage engine will sit under this type; its API stays.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};

use crate::collection::{Collection, CollectionConfig, Hit, Page, Payload, PointBatch, Record};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::id::PointId;

/// Longest accepted collection name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

/// Checks that a collection name is safe to use as one directory name on
/// every platform: no separators, no `..`, no reserved characters.
pub fn validate_collection_name(name: &str) -> Result<()> {
    let invalid = |reason: &'static str| Error::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(invalid("is longer than 128 bytes"));
    }
    if name.contains("..") {
        return Err(invalid("must not contain '..'"));
    }
    if name == "." {
        return Err(invalid("must not be '.'"));
    }
    if name.contains(['/', '\\']) {
        return Err(invalid("must not contain a path separator"));
    }
    if name
        .chars()
        .any(|c| c.is_control() || matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|'))
    {
        return Err(invalid(
            "must not contain control characters or any of : * ? \" < > |",
        ));
    }
    if name.ends_with([' ', '.']) || name.starts_with(' ') {
        return Err(invalid(
            "must not start with a space or end with a space or '.'",
        ));
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub name: String,
    pub config: CollectionConfig,
}

/// A place in the write order. Taking one reserves a turn; using it in a
/// write, or dropping it unused, gives the turn back.
#[derive(Debug)]
pub struct WriteTicket {
    number: u64,
    gate: Arc<WriteGate>,
}

impl Drop for WriteTicket {
    fn drop(&mut self) {
        self.gate.finish(self.number);
    }
}

#[derive(Debug, Default)]
struct GateState {
    next: u64,
    issued: u64,
    finished_early: BTreeSet<u64>,
}

#[derive(Debug, Default)]
struct WriteGate {
    state: Mutex<GateState>,
    turn_changed: Condvar,
}

impl WriteGate {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        // The gate's state is a few counters updated atomically under the
        // lock, so a panic elsewhere cannot leave it half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn issue(self: &Arc<Self>) -> WriteTicket {
        let mut state = self.lock();
        let number = state.issued;
        state.issued += 1;
        WriteTicket {
            number,
            gate: Arc::clone(self),
        }
    }

    fn wait_for_turn(&self, number: u64) {
        let mut state = self.lock();
        while state.next != number {
            state = self
                .turn_changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn finish(&self, number: u64) {
        let mut state = self.lock();
        if state.next == number {
            state.next += 1;
            loop {
                let next = state.next;
                if !state.finished_early.remove(&next) {
                    break;
                }
                state.next += 1;
            }
        } else {
            state.finished_early.insert(number);
        }
        drop(state);
        self.turn_changed.notify_all();
    }
}

#[derive(Debug)]
struct State {
    collection: Collection,
    open: bool,
}

#[derive(Debug)]
pub struct Store {
    name: String,
    config: CollectionConfig,
    state: RwLock<State>,
    /// Mirrors `State::open` so `is_open` never waits behind a writer.
    open: AtomicBool,
    gate: Arc<WriteGate>,
}

impl Store {
    pub fn open(options: StoreOptions) -> Result<Self> {
        validate_collection_name(&options.name)?;
        Ok(Store {
            name: options.name,
            config: options.config,
            state: RwLock::new(State {
                collection: Collection::new(options.config),
                open: true,
            }),
            open: AtomicBool::new(true),
            gate: Arc::new(WriteGate::default()),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &CollectionConfig {
        &self.config
    }

    /// Reserves the next place in the write order. Call it where the
    /// operation is requested, before handing the work to another thread.
    pub fn ticket(&self) -> WriteTicket {
        self.gate.issue()
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, State>> {
        let state = self.state.read().map_err(|_| Error::Poisoned)?;
        if !state.open {
            return Err(Error::Closed);
        }
        Ok(state)
    }

    /// Runs `apply` on the collection in ticket order.
    fn write<T>(
        &self,
        ticket: WriteTicket,
        apply: impl FnOnce(&mut State) -> Result<T>,
    ) -> Result<T> {
        self.gate.wait_for_turn(ticket.number);
        let result = {
            let mut state = self.state.write().map_err(|_| Error::Poisoned)?;
            apply(&mut state)
        };
        drop(ticket);
        result
    }

    fn write_open<T>(
        &self,
        ticket: WriteTicket,
        apply: impl FnOnce(&mut Collection) -> Result<T>,
    ) -> Result<T> {
        self.write(ticket, |state| {
            if !state.open {
                return Err(Error::Closed);
            }
            apply(&mut state.collection)
        })
    }

    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    pub fn insert(&self, ticket: WriteTicket, batch: PointBatch) -> Result<()> {
        self.write_open(ticket, |c| c.insert(batch))
    }

    pub fn update(
        &self,
        ticket: WriteTicket,
        id: &PointId,
        vector: &[f32],
        payload: Payload,
    ) -> Result<()> {
        self.write_open(ticket, |c| c.update(id, vector, payload))
    }

    pub fn delete(&self, ticket: WriteTicket, id: &PointId) -> Result<bool> {
        self.write_open(ticket, |c| Ok(c.delete(id)))
    }

    pub fn clear(&self, ticket: WriteTicket) -> Result<()> {
        self.write_open(ticket, |c| {
            c.clear();
            Ok(())
        })
    }

    /// Closes the store: every later call fails with [`Error::Closed`] until
    /// [`Store::reopen`]. Closing a closed store is a no-op.
    pub fn close(&self, ticket: WriteTicket) -> Result<()> {
        self.write(ticket, |state| {
            state.open = false;
            self.open.store(false, Ordering::Release);
            Ok(())
        })
    }

    /// Opens a closed store again with the data it held.
    pub fn reopen(&self, ticket: WriteTicket) -> Result<()> {
        self.write(ticket, |state| {
            state.open = true;
            self.open.store(true, Ordering::Release);
            Ok(())
        })
    }

    pub fn len(&self) -> Result<usize> {
        Ok(self.read()?.collection.len())
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    pub fn get(&self, id: &PointId) -> Result<Option<Record>> {
        Ok(self.read()?.collection.get(id))
    }

    pub fn search(&self, query: &[f32], limit: usize, filter: &Filter) -> Result<Vec<Hit>> {
        self.read()?.collection.search(query, limit, filter)
    }

    pub fn list(&self, filter: &Filter, limit: usize) -> Result<Page> {
        Ok(self.read()?.collection.list(filter, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::Distance;
    use serde_json::json;
    use std::thread;

    fn store() -> Arc<Store> {
        Arc::new(
            Store::open(StoreOptions {
                name: "test".into(),
                config: CollectionConfig::new(2, Distance::Dot, None).unwrap(),
            })
            .unwrap(),
        )
    }

    fn one(id: i64, x: f32) -> PointBatch {
        let payload = match json!({ "x": x }) {
            serde_json::Value::Object(o) => o,
            _ => unreachable!("literal object"),
        };
        PointBatch::new(2, vec![PointId::Int(id)], vec![x, 0.0], &[2], vec![payload]).unwrap()
    }

    #[test]
    fn names_that_could_escape_the_directory_are_rejected() {
        for ok in ["docs", "my-collection_2", "memórias", "a.b"] {
            validate_collection_name(ok).unwrap();
        }
        let long = "x".repeat(129);
        for bad in [
            "",
            "..",
            ".",
            "../etc",
            "a/b",
            "a\\b",
            "a..b",
            "nul\0",
            "a:b",
            " lead",
            "trail.",
            long.as_str(),
        ] {
            assert_eq!(
                validate_collection_name(bad).unwrap_err().code(),
                1010,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn writes_apply_in_ticket_order_whatever_thread_runs_them() {
        let s = store();
        // Take tickets in order, run the writes on threads in reverse order.
        let tickets: Vec<_> = (0..8).map(|_| s.ticket()).collect();
        let handles: Vec<_> = tickets
            .into_iter()
            .enumerate()
            .rev()
            .map(|(i, t)| {
                let s = Arc::clone(&s);
                thread::spawn(move || s.insert(t, one(1, i as f32)).unwrap())
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let last = s.get(&PointId::Int(1)).unwrap().unwrap();
        assert_eq!(last.payload["x"], 7.0);
    }

    #[test]
    fn an_unused_ticket_does_not_block_later_writes() {
        let s = store();
        let unused = s.ticket();
        let t = s.ticket();
        drop(unused);
        s.insert(t, one(1, 1.0)).unwrap();
        assert_eq!(s.len().unwrap(), 1);
    }

    #[test]
    fn a_closed_store_refuses_every_call_and_reopens_with_its_data() {
        let s = store();
        s.insert(s.ticket(), one(1, 1.0)).unwrap();
        s.close(s.ticket()).unwrap();
        assert!(!s.is_open());
        assert!(matches!(s.get(&PointId::Int(1)), Err(Error::Closed)));
        assert!(matches!(
            s.insert(s.ticket(), one(2, 1.0)),
            Err(Error::Closed)
        ));
        assert!(matches!(
            s.search(&[1.0, 0.0], 1, &Filter::default()),
            Err(Error::Closed)
        ));
        s.reopen(s.ticket()).unwrap();
        assert_eq!(s.len().unwrap(), 1);
    }
}

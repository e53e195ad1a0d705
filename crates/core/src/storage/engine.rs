//! The log-and-checkpoint engine shared by everything annvault persists.
//!
//! A vector collection ([`crate::Collection`]) and a key-value table
//! ([`crate::kv::KvTable`]) are two [`StateMachine`]s over the same machinery:
//! the WAL format and its scan ([`super::wal`]), the manifest, atomic
//! publication, the directory lock, recovery policy and the checkpoint
//! protocol ([`super::directory::LogDir`]) and the write order
//! ([`WriteGate`]). What differs is only what an operation does, how it is
//! encoded, and what a checkpoint file holds — and how writes are grouped:
//! a collection's callers lead commits in turn ([`CommitQueue`]), a
//! key-value table has a commit thread of its own that callers queue to
//! without waiting (`crate::kv::store`), because its Node callers are many
//! small writes that must not each hold a libuv pool thread.

use std::collections::{BTreeSet, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::error::{Error, Result};
use crate::progress::Reporter;
use crate::storage::codec::{self, ByteReader, DecodeError};
use crate::storage::fs::Storage;
use crate::storage::manifest::Manifest;

/// Record code of a group: several operations committed by one write.
pub const OP_GROUP: u8 = 5;

/// The fewest bytes a group member takes: its code and a `u32` body length.
pub const MIN_GROUP_MEMBER_LEN: usize = 1 + 4;

/// An operation as the WAL records it: a one-byte code and a body.
pub trait LogOp {
    fn code(&self) -> u8;
    fn encode_body(&self, out: &mut Vec<u8>);
}

/// Encodes several operations as the body of one `Group` record:
/// `u32 count`, then `count × (u8 code, u32 len, body)`.
pub fn encode_group<O: LogOp>(ops: &[&O], out: &mut Vec<u8>) {
    codec::put_u32(out, ops.len() as u32);
    for op in ops {
        out.push(op.code());
        let len_at = out.len();
        codec::put_u32(out, 0);
        op.encode_body(out);
        let len = (out.len() - len_at - 4) as u32;
        out[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
    }
}

/// Decodes the operations of one WAL record (a single one, or a group),
/// each with `decode(code, body)`.
pub fn decode_record<O>(
    code: u8,
    body: &[u8],
    decode: impl Fn(u8, &[u8]) -> Result<O, DecodeError>,
) -> Result<Vec<O>, DecodeError> {
    if code != OP_GROUP {
        return Ok(vec![decode(code, body)?]);
    }
    let mut r = ByteReader::new(body);
    let count = r.u32()? as usize;
    codec::check_fits(
        count as u64,
        MIN_GROUP_MEMBER_LEN,
        r.remaining() as u64,
        "grouped operations",
    )?;
    let mut ops = Vec::with_capacity(count);
    for _ in 0..count {
        let member = r.u8()?;
        if member == OP_GROUP {
            return Err("a group inside a group".into());
        }
        ops.push(decode(member, r.bytes_u32()?)?);
    }
    r.finish()?;
    Ok(ops)
}

/// What a [`super::directory::LogDir`] persists: a deterministic state
/// machine whose operations the WAL records and whose whole state a
/// checkpoint file holds.
pub trait StateMachine: Sized + Clone + Send + Sync + 'static {
    /// What the caller opens the directory with (and the manifest must match).
    type Config: Clone + Send + Sync;
    type Op: LogOp;

    fn empty(config: &Self::Config) -> Self;

    /// The manifest of a new directory, naming no checkpoint and `walStart = 1`.
    fn fresh_manifest(config: &Self::Config) -> Manifest;

    /// Refuses a directory written for another kind of state or configuration.
    fn check_manifest(manifest: &Manifest, config: &Self::Config) -> Result<()>;

    /// Reads and decodes checkpoint file `path`: the state and the last WAL
    /// sequence number it holds. A damaged file is `Error::Corrupt` naming it.
    fn read_checkpoint(
        storage: &dyn Storage,
        path: &Path,
        config: &Self::Config,
    ) -> Result<(Self, u64)>;

    /// The checkpoint file's bytes for this state as of sequence `seq`.
    /// `compression`: what the directory was opened asking checkpoints to be.
    fn write_checkpoint(
        &self,
        seq: u64,
        compression: crate::storage::snapshot::Compression,
    ) -> Vec<u8>;

    /// Tells `out` the checkpoint file's length, then hands it the bytes in
    /// order, in as many pieces as suits the state (by default, all of
    /// [`StateMachine::write_checkpoint`] at once); an error from `out`
    /// stops it and is returned.
    fn write_checkpoint_to(
        &self,
        seq: u64,
        compression: crate::storage::snapshot::Compression,
        out: &mut CheckpointOut<'_>,
    ) -> std::io::Result<()> {
        let bytes = self.write_checkpoint(seq, compression);
        out.begin(bytes.len() as u64);
        out.write(&bytes)
    }

    /// Replays one WAL record. A record that does not decode is an error;
    /// an operation the state refuses was refused when first applied too,
    /// so the implementation ignores the refusal.
    fn replay(&mut self, code: u8, body: &[u8]) -> Result<(), DecodeError>;

    /// Entries (points, keys) the state holds, for the recovery report.
    fn entry_count(&self) -> usize;
}

/// Bytes of a checkpoint file handed on, and reported, at a time.
pub const CHECKPOINT_PIECE: usize = 1 << 20;

/// Where a checkpoint file's bytes go: [`CheckpointOut::begin`] with the
/// file's length, then [`CheckpointOut::write`] with the bytes in order.
/// The progress phase `write` counts them: it starts at `begin` (total:
/// the file's bytes) and ticks after each piece of at most
/// [`CHECKPOINT_PIECE`] bytes (the reporter bounds the rate); the caller
/// finishes it once the file is durable.
pub struct CheckpointOut<'a> {
    sink: &'a mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    progress: &'a mut Reporter,
    message: String,
    written: u64,
}

impl<'a> CheckpointOut<'a> {
    /// `message`: what the `write` phase's first event says.
    pub fn new(
        sink: &'a mut dyn FnMut(&[u8]) -> std::io::Result<()>,
        progress: &'a mut Reporter,
        message: String,
    ) -> Self {
        CheckpointOut {
            sink,
            progress,
            message,
            written: 0,
        }
    }

    /// Starts the `write` phase: the file will be `len` bytes.
    pub fn begin(&mut self, len: u64) {
        let message = std::mem::take(&mut self.message);
        self.progress.start("write", len, message);
    }

    /// Hands `bytes` on, a piece at a time, reporting each.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        for piece in bytes.chunks(CHECKPOINT_PIECE) {
            (self.sink)(piece)?;
            self.written += piece.len() as u64;
            self.progress.tick(self.written);
        }
        Ok(())
    }

    /// Bytes handed on so far.
    pub fn written(&self) -> u64 {
        self.written
    }
}

/// A place in the write order. Taking one reserves a turn; using it in a
/// write, or dropping it unused, gives the turn back.
#[derive(Debug)]
pub struct WriteTicket {
    pub(crate) number: u64,
    gate: Arc<WriteGate>,
}

impl WriteTicket {
    /// Its place in the order.
    pub fn number(&self) -> u64 {
        self.number
    }
}

impl Drop for WriteTicket {
    fn drop(&mut self) {
        self.gate.finish(self.number);
    }
}

#[derive(Debug, Default)]
struct GateState {
    next: u64,
    /// Threads blocked in `wait_for_turn`: nobody to wake when 0.
    waiters: usize,
    issued: u64,
    finished_early: BTreeSet<u64>,
}

/// Hands out [`WriteTicket`]s and lets their holders through in order, so
/// that writes requested on one thread apply in that order even when
/// threads of a pool carry them out.
#[derive(Debug, Default)]
pub struct WriteGate {
    state: Mutex<GateState>,
    turn_changed: Condvar,
}

impl WriteGate {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        // The gate's state is a few counters updated atomically under the
        // lock, so a panic elsewhere cannot leave it half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn issue(self: &Arc<Self>) -> WriteTicket {
        let mut state = self.lock();
        let number = state.issued;
        state.issued += 1;
        WriteTicket {
            number,
            gate: Arc::clone(self),
        }
    }

    pub fn is_turn(&self, number: u64) -> bool {
        self.lock().next == number
    }

    pub fn wait_for_turn(&self, number: u64) {
        let mut state = self.lock();
        while state.next != number {
            state.waiters += 1;
            state = self
                .turn_changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.waiters -= 1;
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
        let wake = state.waiters > 0;
        drop(state);
        if wake {
            self.turn_changed.notify_all();
        }
    }
}

/// Runs a batch of queued requests (ticket number, request) in order and
/// returns each one's outcome.
pub type Commit<'a, R, O> = dyn Fn(Vec<(u64, R)>) -> Vec<(u64, Result<O>)> + 'a;

struct QueueState<R, O> {
    pending: Vec<(u64, R)>,
    leader: bool,
    /// Writers blocked waiting for their outcome: nobody to wake when 0.
    waiters: usize,
    results: HashMap<u64, Result<O>>,
}

/// Group commit: requests queue in ticket order; whoever finds no commit
/// running becomes the leader and commits everything queued at once (one
/// WAL write, one fsync), then hands each waiter its outcome.
pub struct CommitQueue<R, O> {
    state: Mutex<QueueState<R, O>>,
    changed: Condvar,
}

impl<R, O> Default for CommitQueue<R, O> {
    fn default() -> Self {
        CommitQueue {
            state: Mutex::new(QueueState {
                pending: Vec::new(),
                leader: false,
                waiters: 0,
                results: HashMap::new(),
            }),
            changed: Condvar::new(),
        }
    }
}

impl<R, O> CommitQueue<R, O> {
    fn lock(&self) -> MutexGuard<'_, QueueState<R, O>> {
        // Each critical section leaves the queue consistent at every statement.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for `ticket`'s turn, queues `request` and waits for its outcome,
    /// leading a commit (`commit` runs the queued requests in order) when
    /// none is running.
    pub fn submit(
        &self,
        gate: &WriteGate,
        ticket: WriteTicket,
        request: R,
        commit: &Commit<'_, R, O>,
    ) -> Result<O> {
        gate.wait_for_turn(ticket.number);
        let id = ticket.number;
        let mut queue = self.lock();
        queue.pending.push((id, request));
        drop(ticket);
        loop {
            if let Some(result) = queue.results.remove(&id) {
                return result;
            }
            if !queue.leader {
                queue.leader = true;
                let batch = std::mem::take(&mut queue.pending);
                drop(queue);
                let results =
                    catch_unwind(AssertUnwindSafe(|| commit(batch))).unwrap_or_else(|_| Vec::new());
                queue = self.lock();
                queue.results.extend(results);
                queue.leader = false;
                if queue.waiters > 0 {
                    self.changed.notify_all();
                }
                if !queue.results.contains_key(&id) && !queue.pending.iter().any(|(t, _)| *t == id)
                {
                    // The commit panicked before reaching this request.
                    return Err(Error::Poisoned);
                }
                continue;
            }
            queue.waiters += 1;
            queue = self
                .changed
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
            queue.waiters -= 1;
        }
    }

    /// Becomes the leader if no commit is running or queued (for a write
    /// applied on the caller's thread); `false` otherwise.
    pub fn try_lead(&self) -> bool {
        match self.state.try_lock() {
            Ok(mut queue) if !queue.leader && queue.pending.is_empty() => {
                queue.leader = true;
                true
            }
            _ => false,
        }
    }

    /// Ends a lead taken with [`CommitQueue::try_lead`].
    pub fn end_lead(&self) {
        let mut queue = self.lock();
        queue.leader = false;
        if queue.waiters > 0 {
            self.changed.notify_all();
        }
    }
}

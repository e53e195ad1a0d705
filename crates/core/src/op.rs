//! Mutations as values: what the write-ahead log records and what
//! [`Collection::apply`](crate::Collection::apply) executes, on the live
//! path and on replay alike. Applying is deterministic, so an operation that
//! was logged and then refused (e.g. `update` of a missing id) is refused
//! again on replay: a refused operation is a no-op in the log.
//!
//! Body encodings (little-endian; `id` = `u8` tag, then `i64` for tag 0 or
//! `u32` length + UTF-8 bytes for tag 1; `json` = `u32` length + bytes):
//!
//! ```text
//! Insert (1): u32 count, u32 dim, id × count, f32 × (count·dim), json × count
//! Update (2): id, u32 dim, f32 × dim, json
//! Delete (3): id
//! Clear  (4): (empty)
//! Group  (5): u32 count, then count × (u8 code, u32 len, body)
//! ```
//!
//! A group is what one commit wrote with one fsync: as a single record it
//! is all there after a crash or not at all, even when the crash garbles the
//! unsynced tail of the log out of order.

use crate::collection::{Payload, PointBatch};
use crate::id::PointId;
use crate::storage::codec::{self, ByteReader, DecodeError};

#[derive(Debug, Clone)]
pub enum Op {
    Insert(PointBatch),
    Update {
        id: PointId,
        vector: Vec<f32>,
        payload: Payload,
    },
    Delete(PointId),
    Clear,
}

pub const OP_INSERT: u8 = 1;
pub const OP_UPDATE: u8 = 2;
pub const OP_DELETE: u8 = 3;
pub const OP_CLEAR: u8 = 4;
pub const OP_GROUP: u8 = 5;

/// Encodes several operations as the body of one `Group` record.
pub fn encode_group(ops: &[&Op], out: &mut Vec<u8>) {
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

/// Decodes the operations of one WAL record (a single one, or a group).
pub fn decode_record(code: u8, body: &[u8]) -> Result<Vec<Op>, DecodeError> {
    if code != OP_GROUP {
        return Ok(vec![Op::decode(code, body)?]);
    }
    let mut r = ByteReader::new(body);
    let count = r.u32()? as usize;
    // Each member takes at least 5 bytes.
    if count.saturating_mul(5) > r.remaining() {
        return Err(format!("group of {count} operations exceeds the record"));
    }
    let mut ops = Vec::with_capacity(count);
    for _ in 0..count {
        let member = r.u8()?;
        if member == OP_GROUP {
            return Err("a group inside a group".into());
        }
        ops.push(Op::decode(member, r.bytes_u32()?)?);
    }
    r.finish()?;
    Ok(ops)
}

fn payload_json(payload: &Payload) -> Vec<u8> {
    // A map of JSON values always serialises.
    serde_json::to_vec(payload).unwrap_or_else(|_| b"{}".to_vec())
}

fn parse_payload(bytes: &[u8]) -> Result<Payload, DecodeError> {
    serde_json::from_slice(bytes).map_err(|e| format!("payload is not a JSON object: {e}"))
}

impl Op {
    pub fn code(&self) -> u8 {
        match self {
            Op::Insert(_) => OP_INSERT,
            Op::Update { .. } => OP_UPDATE,
            Op::Delete(_) => OP_DELETE,
            Op::Clear => OP_CLEAR,
        }
    }

    /// Appends the body encoding to `out`.
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Op::Insert(batch) => {
                codec::put_u32(out, batch.ids.len() as u32);
                codec::put_u32(out, batch.dimension as u32);
                for id in &batch.ids {
                    codec::put_point_id(out, id);
                }
                codec::put_f32s(out, &batch.vectors);
                for payload in &batch.payloads {
                    codec::put_bytes_u32(out, &payload_json(payload));
                }
            }
            Op::Update {
                id,
                vector,
                payload,
            } => {
                codec::put_point_id(out, id);
                codec::put_u32(out, vector.len() as u32);
                codec::put_f32s(out, vector);
                codec::put_bytes_u32(out, &payload_json(payload));
            }
            Op::Delete(id) => codec::put_point_id(out, id),
            Op::Clear => {}
        }
    }

    /// Decodes a body. Every count is checked against the bytes present
    /// before anything is allocated.
    pub fn decode(code: u8, body: &[u8]) -> Result<Op, DecodeError> {
        let mut r = ByteReader::new(body);
        let op = match code {
            OP_INSERT => {
                let count = r.u32()? as usize;
                let dim = r.u32()? as usize;
                // Each point needs at least 9 bytes of id, 4·dim of vector, 4 of json length.
                let per_point = 9usize
                    .saturating_add(dim.saturating_mul(4))
                    .saturating_add(4);
                if count.saturating_mul(per_point) > r.remaining() {
                    return Err(format!(
                        "insert of {count} points × {dim} dims exceeds the record"
                    ));
                }
                let ids = (0..count)
                    .map(|_| r.point_id())
                    .collect::<Result<Vec<_>, _>>()?;
                let vectors = r.f32s(count * dim)?;
                let payloads = (0..count)
                    .map(|_| parse_payload(r.bytes_u32()?))
                    .collect::<Result<Vec<_>, _>>()?;
                let lengths = vec![dim as u32; count];
                let batch = PointBatch::new(dim, ids, vectors, &lengths, payloads)
                    .map_err(|e| format!("invalid insert: {e}"))?;
                Op::Insert(batch)
            }
            OP_UPDATE => {
                let id = r.point_id()?;
                let dim = r.u32()? as usize;
                let vector = r.f32s(dim)?;
                let payload = parse_payload(r.bytes_u32()?)?;
                Op::Update {
                    id,
                    vector,
                    payload,
                }
            }
            OP_DELETE => Op::Delete(r.point_id()?),
            OP_CLEAR => Op::Clear,
            other => return Err(format!("unknown operation code {other}")),
        };
        r.finish()?;
        Ok(op)
    }
}

//! Mutations as values: what the write-ahead log records and what
//! [`Collection::apply`](crate::Collection::apply) executes, on the live
//! path and on replay alike. Only operations that change the collection are
//! logged ([`Collection::dry_run`](crate::Collection::dry_run) decides before
//! the record is written). Applying is deterministic, so an operation that
//! an older version logged and then refused (e.g. `update` of a missing id)
//! is refused again on replay: a no-op in the log.
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
use crate::storage::engine::{self, LogOp};

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
/// Shared with every state machine's log: see [`crate::storage::engine`].
pub use crate::storage::engine::{MIN_GROUP_MEMBER_LEN, OP_GROUP};

/// The fewest bytes one point of dimension `dim` takes in an insert body or
/// a snapshot: the smallest id, its vector, and an empty JSON text's length.
/// Both formats' readers bound their counts with it.
pub fn min_point_len(dim: usize) -> usize {
    codec::MIN_POINT_ID_LEN
        .saturating_add(dim.saturating_mul(4))
        .saturating_add(codec::MIN_BYTES_U32_LEN)
}

/// Encodes several operations as the body of one `Group` record.
pub fn encode_group(ops: &[&Op], out: &mut Vec<u8>) {
    engine::encode_group(ops, out)
}

/// Decodes the operations of one WAL record (a single one, or a group).
pub fn decode_record(code: u8, body: &[u8]) -> Result<Vec<Op>, DecodeError> {
    engine::decode_record(code, body, Op::decode)
}

impl LogOp for Op {
    fn code(&self) -> u8 {
        Op::code(self)
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        Op::encode_body(self, out)
    }
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
                codec::check_fits(
                    count as u64,
                    min_point_len(dim),
                    r.remaining() as u64,
                    "inserted points",
                )?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::MAX_ID_BYTES;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn id() -> impl Strategy<Value = PointId> {
        prop_oneof![
            any::<i64>().prop_map(PointId::Int),
            // 1 to 512 bytes of UTF-8 (multi-byte characters included).
            "[a-zé\u{10FFFF}]{1,128}"
                .prop_filter("at most 512 bytes", |s| s.len() <= MAX_ID_BYTES)
                .prop_map(|s| PointId::Str(s.into())),
            (1usize..=MAX_ID_BYTES).prop_map(|n| PointId::Str("z".repeat(n).into())),
        ]
    }

    fn payload() -> impl Strategy<Value = Payload> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e300f64..1e300).prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ];
        let value = leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(".{0,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        prop_oneof![
            3 => Just(Payload::new()),
            4 => prop::collection::btree_map(".{0,8}", value, 0..5)
                .prop_map(|m| m.into_iter().collect()),
            1 => (0usize..200_000).prop_map(|n| {
                let mut p = Payload::new();
                p.insert("text".into(), json!("x".repeat(n)));
                p
            }),
        ]
    }

    fn vector(dim: usize) -> impl Strategy<Value = Vec<f32>> {
        prop::collection::vec(
            prop_oneof![
                any::<f32>().prop_filter("finite", |x| x.is_finite()),
                Just(-0.0f32)
            ],
            dim,
        )
    }

    fn op() -> impl Strategy<Value = Op> {
        let dim = prop_oneof![4 => 1usize..9, 1 => 9usize..1025];
        prop_oneof![
            3 => (dim.clone(), 1usize..5).prop_flat_map(|(dim, n)| {
                prop::collection::vec((id(), vector(dim), payload()), n).prop_map(move |points| {
                    let mut seen = std::collections::HashSet::new();
                    let points: Vec<_> =
                        points.into_iter().filter(|p| seen.insert(p.0.clone())).collect();
                    let batch = PointBatch::new(
                        dim,
                        points.iter().map(|p| p.0.clone()).collect(),
                        points.iter().flat_map(|p| p.1.clone()).collect(),
                        &vec![dim as u32; points.len()],
                        points.into_iter().map(|p| p.2).collect(),
                    )
                    .expect("a valid batch");
                    Op::Insert(batch)
                })
            }),
            2 => dim.prop_flat_map(|dim| (id(), vector(dim), payload()))
                .prop_map(|(id, vector, payload)| Op::Update { id, vector, payload }),
            2 => id().prop_map(Op::Delete),
            1 => Just(Op::Clear),
        ]
    }

    /// Everything an op holds, bit for bit (floats by their bits: -0.0 and
    /// NaN payload bits must survive too).
    fn parts(op: &Op) -> (u8, Vec<PointId>, Vec<u32>, Vec<Payload>) {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        match op {
            Op::Insert(b) => (
                OP_INSERT,
                b.ids.clone(),
                bits(&b.vectors),
                b.payloads.clone(),
            ),
            Op::Update {
                id,
                vector,
                payload,
            } => (
                OP_UPDATE,
                vec![id.clone()],
                bits(vector),
                vec![payload.clone()],
            ),
            Op::Delete(id) => (OP_DELETE, vec![id.clone()], vec![], vec![]),
            Op::Clear => (OP_CLEAR, vec![], vec![], vec![]),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn every_op_reads_back_as_written(op in op()) {
            let mut body = Vec::new();
            op.encode_body(&mut body);
            let decoded = decode_record(op.code(), &body).expect("what the writer wrote");
            prop_assert_eq!(decoded.len(), 1);
            prop_assert_eq!(parts(&decoded[0]), parts(&op));
        }

        #[test]
        fn every_group_reads_back_as_written(ops in prop::collection::vec(op(), 0..6)) {
            let mut body = Vec::new();
            encode_group(&ops.iter().collect::<Vec<_>>(), &mut body);
            let decoded = decode_record(OP_GROUP, &body).expect("what the writer wrote");
            prop_assert_eq!(
                decoded.iter().map(parts).collect::<Vec<_>>(),
                ops.iter().map(parts).collect::<Vec<_>>()
            );
        }
    }

    /// The bounds the readers use are the encodings' true minimums: each is
    /// reached by a real encoding, and nothing encodes shorter.
    #[test]
    fn reader_bounds_are_the_writers_minimums() {
        let mut empty_id = Vec::new();
        codec::put_point_id(&mut empty_id, &PointId::Str("".into()));
        assert_eq!(empty_id.len(), codec::MIN_POINT_ID_LEN);
        let mut int_id = Vec::new();
        codec::put_point_id(&mut int_id, &PointId::Int(0));
        assert!(int_id.len() >= codec::MIN_POINT_ID_LEN);
        let mut nothing = Vec::new();
        codec::put_bytes_u32(&mut nothing, b"");
        assert_eq!(nothing.len(), codec::MIN_BYTES_U32_LEN);

        let mut clear = Vec::new();
        encode_group(&[&Op::Clear], &mut clear);
        assert_eq!(clear.len(), 4 + MIN_GROUP_MEMBER_LEN);

        // The smallest insert the input rules allow (a one-byte id, `{}`)
        // is at least the bound, at every dimension.
        for dim in [1, 2, 3, 384, 4096] {
            let batch = PointBatch::new(
                dim,
                vec![PointId::Str("a".into())],
                vec![0.5; dim],
                &[dim as u32],
                vec![Payload::new()],
            )
            .unwrap();
            let mut body = Vec::new();
            Op::Insert(batch).encode_body(&mut body);
            assert!(body.len() - 8 >= min_point_len(dim), "dim {dim}");
            assert!(decode_record(OP_INSERT, &body).is_ok(), "dim {dim}");
        }
    }

    #[test]
    fn counts_past_the_bytes_present_are_refused_before_allocating() {
        let mut body = Vec::new();
        codec::put_u32(&mut body, u32::MAX); // count
        codec::put_u32(&mut body, 4); // dim
        assert!(Op::decode(OP_INSERT, &body).is_err());
        let mut group = Vec::new();
        codec::put_u32(&mut group, u32::MAX);
        assert!(decode_record(OP_GROUP, &group).is_err());
    }
}

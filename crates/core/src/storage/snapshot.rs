//! A checkpoint of a whole collection: `snapshot-<gen:020>.avs`.
//!
//! ```text
//! header (64 bytes)
//!   0  magic       b"AVSNAP\0\0"
//!   8  version     u32 = 1
//!  12  flags       u32   bit 0: body is gzip-compressed
//!  16  dimension   u32
//!  20  distance    u8    0 Cosine, 1 Dot, 2 Euclidean
//!  21  reserved    [u8; 3]
//!  24  seq         u64   last WAL sequence number the snapshot includes
//!  32  count       u64   number of points
//!  40  stored_len  u64   bytes of body as stored (after compression)
//!  48  raw_len     u64   bytes of body before compression
//!  56  body_crc    u32   crc32c of the stored body
//!  60  header_crc  u32   crc32c of bytes 0..60
//! body (raw_len bytes, stored gzip-compressed when flag 0 is set)
//!   vectors   f32 × (count · dimension), little-endian, point after point
//!   ids       count × (u8 tag, i64 | u32 len + UTF-8)
//!   payloads  count × (u32 len + JSON object)
//! ```
//!
//! The vectors come first and raw so that loading is one bulk copy.

use std::io::{Read, Write};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use crate::collection::{Collection, CollectionConfig, Payload};
use crate::distance::Distance;
use crate::id::PointId;
use crate::storage::codec::{put_bytes_u32, put_f32s, put_point_id, put_u32, put_u64, ByteReader};

pub const MAGIC: &[u8; 8] = b"AVSNAP\0\0";
pub const VERSION: u32 = 1;
pub const HEADER_LEN: usize = 64;
const FLAG_GZIP: u32 = 1;

pub fn file_name(generation: u64) -> String {
    format!("snapshot-{generation:020}.avs")
}

pub fn parse_file_name(name: &str) -> Option<u64> {
    name.strip_prefix("snapshot-")?
        .strip_suffix(".avs")?
        .parse()
        .ok()
}

fn distance_code(distance: Distance) -> u8 {
    match distance {
        Distance::Cosine => 0,
        Distance::Dot => 1,
        Distance::Euclidean => 2,
    }
}

fn distance_from_code(code: u8) -> Option<Distance> {
    match code {
        0 => Some(Distance::Cosine),
        1 => Some(Distance::Dot),
        2 => Some(Distance::Euclidean),
        _ => None,
    }
}

/// Encodes `collection` as of WAL sequence number `seq`.
pub fn encode(collection: &Collection, seq: u64, gzip: bool) -> Vec<u8> {
    let config = collection.config();
    let count = collection.len();
    let mut body = Vec::with_capacity(count * (config.dimension * 4 + 64));
    for (_, vector, _) in collection.points() {
        put_f32s(&mut body, vector);
    }
    for (id, _, _) in collection.points() {
        put_point_id(&mut body, id);
    }
    for (_, _, payload) in collection.points() {
        // A map of JSON values always serialises.
        let json = serde_json::to_vec(payload.as_ref()).unwrap_or_else(|_| b"{}".to_vec());
        put_bytes_u32(&mut body, &json);
    }
    let raw_len = body.len() as u64;
    let stored = if gzip {
        let mut encoder = GzEncoder::new(
            Vec::with_capacity(body.len() / 2),
            flate2::Compression::fast(),
        );
        // Writing into a Vec cannot fail.
        let _ = encoder.write_all(&body);
        encoder.finish().unwrap_or_default()
    } else {
        body
    };
    let mut out = Vec::with_capacity(HEADER_LEN + stored.len());
    out.extend_from_slice(MAGIC);
    put_u32(&mut out, VERSION);
    put_u32(&mut out, if gzip { FLAG_GZIP } else { 0 });
    put_u32(&mut out, config.dimension as u32);
    out.extend_from_slice(&[distance_code(config.distance), 0, 0, 0]);
    put_u64(&mut out, seq);
    put_u64(&mut out, count as u64);
    put_u64(&mut out, stored.len() as u64);
    put_u64(&mut out, raw_len);
    put_u32(&mut out, crc32c::crc32c(&stored));
    let header_crc = crc32c::crc32c(&out);
    put_u32(&mut out, header_crc);
    out.extend_from_slice(&stored);
    out
}

/// What a snapshot file holds.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub dimension: usize,
    pub distance: Distance,
    pub seq: u64,
    pub ids: Vec<PointId>,
    pub vectors: Vec<f32>,
    pub payloads: Vec<Payload>,
}

impl Decoded {
    pub fn into_collection(self, max_vectors: Option<usize>) -> crate::Result<Collection> {
        let config = CollectionConfig::new(self.dimension, self.distance, max_vectors)?;
        Collection::from_points(config, self.ids, &self.vectors, self.payloads)
    }
}

/// Decodes a snapshot; `Err((offset, reason))` for anything wrong.
pub fn decode(bytes: &[u8]) -> Result<Decoded, (u64, String)> {
    if bytes.len() < HEADER_LEN {
        return Err((
            0,
            format!("file is {} bytes, shorter than the header", bytes.len()),
        ));
    }
    if &bytes[0..8] != MAGIC {
        return Err((0, "not a snapshot file (bad magic)".into()));
    }
    let header_crc = u32::from_le_bytes([bytes[60], bytes[61], bytes[62], bytes[63]]);
    if header_crc != crc32c::crc32c(&bytes[0..60]) {
        return Err((60, "header checksum mismatch".into()));
    }
    let mut h = ByteReader::new(&bytes[8..60]);
    let field = |r: Result<u64, String>, at: u64| r.map_err(|e| (at, e));
    let version = field(h.u32().map(u64::from), 8)?;
    if version != VERSION as u64 {
        return Err((8, format!("unknown snapshot format version {version}")));
    }
    let flags = field(h.u32().map(u64::from), 12)?;
    let dimension = field(h.u32().map(u64::from), 16)? as usize;
    let distance_byte = field(h.take(4).map(|b| u64::from(b[0])), 20)? as u8;
    let distance = distance_from_code(distance_byte)
        .ok_or((20, format!("unknown distance code {distance_byte}")))?;
    let seq = field(h.u64(), 24)?;
    let count = field(h.u64(), 32)?;
    let stored_len = field(h.u64(), 40)?;
    let raw_len = field(h.u64(), 48)?;
    let body_crc = field(h.u32().map(u64::from), 56)? as u32;
    if dimension == 0 || dimension > crate::collection::MAX_DIMENSION {
        return Err((16, format!("dimension {dimension} is out of range")));
    }
    let stored = &bytes[HEADER_LEN..];
    if stored.len() as u64 != stored_len {
        return Err((
            HEADER_LEN as u64,
            format!(
                "body is {} bytes, the header says {stored_len}",
                stored.len()
            ),
        ));
    }
    if crc32c::crc32c(stored) != body_crc {
        return Err((HEADER_LEN as u64, "body checksum mismatch".into()));
    }
    // Every point needs its vector, a 9-byte id at least and a 4-byte length.
    let min_point = (dimension as u64) * 4 + 13;
    if count.saturating_mul(min_point) > raw_len {
        return Err((
            32,
            format!("{count} points cannot fit in a {raw_len}-byte body"),
        ));
    }
    let inflated;
    let body: &[u8] = if flags & u64::from(FLAG_GZIP) != 0 {
        let mut out = Vec::with_capacity(raw_len.min(stored_len.saturating_mul(64)) as usize);
        GzDecoder::new(stored)
            .take(raw_len + 1)
            .read_to_end(&mut out)
            .map_err(|e| {
                (
                    HEADER_LEN as u64,
                    format!("gzip body does not decompress: {e}"),
                )
            })?;
        inflated = out;
        &inflated
    } else {
        stored
    };
    if body.len() as u64 != raw_len {
        return Err((
            HEADER_LEN as u64,
            format!("body is {} bytes, the header says {raw_len}", body.len()),
        ));
    }
    let count = count as usize;
    let at = |r: &ByteReader<'_>| HEADER_LEN as u64 + r.position() as u64;
    let mut r = ByteReader::new(body);
    let vectors = r.f32s(count * dimension).map_err(|e| (at(&r), e))?;
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        ids.push(r.point_id().map_err(|e| (at(&r), e))?);
    }
    let mut payloads = Vec::with_capacity(count);
    for _ in 0..count {
        let json = r.bytes_u32().map_err(|e| (at(&r), e))?;
        let payload: Payload = serde_json::from_slice(json)
            .map_err(|e| (at(&r), format!("payload is not a JSON object: {e}")))?;
        payloads.push(payload);
    }
    r.finish().map_err(|e| (at(&r), e))?;
    Ok(Decoded {
        dimension,
        distance,
        seq,
        ids,
        vectors,
        payloads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collection::PointBatch;
    use serde_json::json;

    fn sample() -> Collection {
        let config = CollectionConfig::new(3, Distance::Dot, None).unwrap();
        let mut c = Collection::new(config);
        let payload = |v: serde_json::Value| match v {
            serde_json::Value::Object(o) => o,
            _ => unreachable!("object literal"),
        };
        c.insert(
            PointBatch::new(
                3,
                vec![PointId::Int(-4), PointId::Str("é".into()), PointId::Int(9)],
                vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -1.0, 0.5, 1e-30],
                &[3, 3, 3],
                vec![
                    payload(json!({"a": 1})),
                    payload(json!({})),
                    payload(json!({"z": [1, "x"]})),
                ],
            )
            .unwrap(),
        )
        .unwrap();
        c.delete(&PointId::Str("é".into()));
        c
    }

    #[test]
    fn round_trip_raw_and_gzip() {
        let c = sample();
        for gzip in [false, true] {
            let bytes = encode(&c, 77, gzip);
            let d = decode(&bytes).unwrap();
            assert_eq!(d.seq, 77);
            assert_eq!((d.dimension, d.distance), (3, Distance::Dot));
            let back = d.into_collection(None).unwrap();
            assert_eq!(back.len(), 2);
            let r = back.get(&PointId::Int(9)).unwrap();
            assert_eq!(r.vector.unwrap(), vec![-1.0, 0.5, 1e-30]);
            assert_eq!(r.payload["z"], json!([1, "x"]));
        }
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let bytes = encode(&sample(), 1, false);
        for byte in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[byte] ^= 0x10;
            assert!(decode(&bad).is_err(), "flip at {byte} went unnoticed");
        }
    }

    #[test]
    fn truncation_is_detected() {
        let bytes = encode(&sample(), 1, true);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}

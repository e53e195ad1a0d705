//! A checkpoint of a whole collection: `snapshot-<gen:020>.avs`.
//!
//! ```text
//! header (64 bytes)
//!   0  magic       b"AVSNAP\0\0"
//!   8  version     u32 = 1, or 2 when the body is brotli-compressed
//!  12  flags       u32   bit 0: body is gzip-compressed; bit 1 (version 2
//!                        only): body is brotli-compressed; no other bit, and
//!                        never both
//!  16  dimension   u32
//!  20  distance    u8    0 Cosine, 1 Dot, 2 Euclidean
//!  21  reserved    [u8; 3]
//!  24  seq         u64   last WAL sequence number the snapshot includes
//!  32  count       u64   number of points
//!  40  stored_len  u64   bytes of body as stored (after compression)
//!  48  raw_len     u64   bytes of body before compression
//!  56  body_crc    u32   crc32c of the stored body
//!  60  header_crc  u32   crc32c of bytes 0..60
//! body (raw_len bytes, stored gzip- or brotli-compressed as the flags say)
//!   vectors   f32 × (count · dimension), little-endian, point after point
//!   ids       count × (u8 tag, i64 | u32 len + UTF-8)
//!   payloads  count × (u32 len + JSON object)
//! ```
//!
//! The vectors come first and raw so that loading is one bulk copy.
//!
//! Versions: a file without brotli is written exactly as version 1 wrote
//! it, so every reader since version 1 opens it; a brotli file says version
//! 2, so a reader from before brotli refuses it by its version ("unknown
//! snapshot format version 2") instead of misreading the body. This reader
//! opens both.

use std::io::{Read, Write};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use crate::collection::{Collection, CollectionConfig, Payload};
use crate::distance::Distance;
use crate::flat::MappedVectors;
use crate::id::PointId;
use crate::op::min_point_len;
use crate::storage::codec::{
    check_fits, put_bytes_u32, put_f32s, put_point_id, put_u32, put_u64, ByteReader,
};
use crate::storage::engine::CheckpointOut;

pub const MAGIC: &[u8; 8] = b"AVSNAP\0\0";
pub const VERSION: u32 = 1;
/// The version of snapshots with a brotli body.
pub const VERSION_BROTLI: u32 = 2;
pub const HEADER_LEN: usize = 64;
const FLAG_GZIP: u32 = 1;
const FLAG_BROTLI: u32 = 2;

/// How a snapshot's body is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Brotli,
}

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

/// Encodes `collection` as of WAL sequence number `seq`, gzip-compressed or raw.
pub fn encode(collection: &Collection, seq: u64, gzip: bool) -> Vec<u8> {
    let compression = if gzip {
        Compression::Gzip
    } else {
        Compression::None
    };
    encode_with(collection, seq, compression)
}

/// Bytes a streamed body is handed on in, at most (plus one record).
const STREAM_CHUNK: usize = 8 << 20;

/// Hands the body of an uncompressed snapshot of `collection` to `out` in
/// chunks of about [`STREAM_CHUNK`] bytes, in order.
fn stream_body(
    collection: &Collection,
    out: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(STREAM_CHUNK + (1 << 16));
    let mut flush = |buf: &mut Vec<u8>, force: bool| -> std::io::Result<()> {
        if !buf.is_empty() && (force || buf.len() >= STREAM_CHUNK) {
            out(buf)?;
            buf.clear();
        }
        Ok(())
    };
    for (_, vector, _) in collection.points() {
        put_f32s(&mut buf, vector);
        flush(&mut buf, false)?;
    }
    for (id, _, _) in collection.points() {
        put_point_id(&mut buf, id);
        flush(&mut buf, false)?;
    }
    let mut json = Vec::new();
    for (_, _, payload) in collection.points() {
        json.clear();
        // A map of JSON values always serialises.
        if serde_json::to_writer(&mut json, payload.as_ref()).is_err() {
            json = b"{}".to_vec();
        }
        put_bytes_u32(&mut buf, &json);
        flush(&mut buf, false)?;
    }
    flush(&mut buf, true)
}

/// Writes an uncompressed snapshot of `collection` as of `seq` to `out`
/// without holding the file in memory: a first pass over the points finds
/// the body's length and checksum for the header (and tells `out` the
/// file's length), the second hands the header and then the body to
/// `out`, a chunk at a time. The bytes are exactly those of
/// [`encode_with`] with [`Compression::None`].
pub fn encode_streaming(
    collection: &Collection,
    seq: u64,
    out: &mut CheckpointOut<'_>,
) -> std::io::Result<()> {
    let (mut raw_len, mut crc) = (0u64, 0u32);
    stream_body(collection, &mut |chunk| {
        raw_len += chunk.len() as u64;
        crc = crc32c::crc32c_append(crc, chunk);
        Ok(())
    })?;
    out.begin(HEADER_LEN as u64 + raw_len);
    out.write(&header(
        collection,
        seq,
        Compression::None,
        raw_len,
        raw_len,
        crc,
    ))?;
    stream_body(collection, &mut |chunk| out.write(chunk))
}

/// The 64-byte header of a snapshot of `collection`.
fn header(
    collection: &Collection,
    seq: u64,
    compression: Compression,
    stored_len: u64,
    raw_len: u64,
    body_crc: u32,
) -> Vec<u8> {
    let config = collection.config();
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    let (version, flags) = match compression {
        Compression::None => (VERSION, 0),
        Compression::Gzip => (VERSION, FLAG_GZIP),
        Compression::Brotli => (VERSION_BROTLI, FLAG_BROTLI),
    };
    put_u32(&mut header, version);
    put_u32(&mut header, flags);
    put_u32(&mut header, config.dimension as u32);
    header.extend_from_slice(&[distance_code(config.distance), 0, 0, 0]);
    put_u64(&mut header, seq);
    put_u64(&mut header, collection.len() as u64);
    put_u64(&mut header, stored_len);
    put_u64(&mut header, raw_len);
    put_u32(&mut header, body_crc);
    let header_crc = crc32c::crc32c(&header);
    put_u32(&mut header, header_crc);
    header
}

/// Encodes `collection` as of WAL sequence number `seq`.
pub fn encode_with(collection: &Collection, seq: u64, compression: Compression) -> Vec<u8> {
    let config = collection.config();
    let count = collection.len();
    // The body goes straight after a header placeholder, filled in at the end.
    let mut out = Vec::with_capacity(HEADER_LEN + count * (config.dimension * 4 + 64));
    out.resize(HEADER_LEN, 0);
    // Appending to a Vec cannot fail.
    let _ = stream_body(collection, &mut |chunk| {
        out.extend_from_slice(chunk);
        Ok(())
    });
    let raw_len = (out.len() - HEADER_LEN) as u64;
    match compression {
        Compression::None => {}
        Compression::Gzip => {
            let mut encoder = GzEncoder::new(
                Vec::with_capacity(out.len() / 2),
                flate2::Compression::fast(),
            );
            // Writing into a Vec cannot fail.
            let _ = encoder.write_all(&out[HEADER_LEN..]);
            let stored = encoder.finish().unwrap_or_default();
            out.truncate(HEADER_LEN);
            out.extend_from_slice(&stored);
        }
        Compression::Brotli => {
            let mut stored = Vec::with_capacity(out.len() / 2);
            {
                // Quality 5, 4 MiB window: most of brotli's gain at a few
                // times gzip-fast's time. Writing into a Vec cannot fail.
                let mut encoder = brotli::CompressorWriter::new(&mut stored, 1 << 16, 5, 22);
                let _ = encoder.write_all(&out[HEADER_LEN..]);
            }
            out.truncate(HEADER_LEN);
            out.extend_from_slice(&stored);
        }
    }
    let stored_len = (out.len() - HEADER_LEN) as u64;
    let body_crc = crc32c::crc32c(&out[HEADER_LEN..]);
    let header = header(collection, seq, compression, stored_len, raw_len, body_crc);
    out[..HEADER_LEN].copy_from_slice(&header);
    out
}

/// What a snapshot file holds.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub dimension: usize,
    pub distance: Distance,
    pub seq: u64,
    pub ids: Vec<PointId>,
    /// The vectors, back to back, from `vectors[vectors_start..]`.
    pub vectors: Vec<f32>,
    pub vectors_start: usize,
    pub payloads: Vec<Payload>,
}

impl Decoded {
    pub fn into_collection(self, max_vectors: Option<usize>) -> crate::Result<Collection> {
        let config = CollectionConfig::new(self.dimension, self.distance, max_vectors)?;
        Collection::from_points(
            config,
            self.ids,
            self.vectors,
            self.vectors_start,
            self.payloads,
        )
    }
}

struct Header {
    compression: Compression,
    dimension: usize,
    distance: Distance,
    seq: u64,
    count: usize,
    raw_len: u64,
}

/// Checks the header and the stored body's length and checksum.
fn check(bytes: &[u8]) -> Result<Header, (u64, String)> {
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
    if version != u64::from(VERSION) && version != u64::from(VERSION_BROTLI) {
        return Err((8, format!("unknown snapshot format version {version}")));
    }
    let flags = field(h.u32().map(u64::from), 12)?;
    let compression = match (version as u32, flags as u32) {
        (_, 0) => Compression::None,
        (_, FLAG_GZIP) => Compression::Gzip,
        (VERSION_BROTLI, FLAG_BROTLI) => Compression::Brotli,
        _ => {
            return Err((
                12,
                format!("flags {flags:#x} are not valid in a version {version} snapshot"),
            ))
        }
    };
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
    check_fits(count, min_point_len(dimension), raw_len, "points").map_err(|e| (32, e))?;
    Ok(Header {
        compression,
        dimension,
        distance,
        seq,
        count: count as usize,
        raw_len,
    })
}

/// Reads the ids and payloads that follow the vectors in `body`.
fn ids_and_payloads(
    body: &[u8],
    h: &Header,
) -> Result<(Vec<PointId>, Vec<Payload>), (u64, String)> {
    let at = |r: &ByteReader<'_>| HEADER_LEN as u64 + r.position() as u64;
    let mut r = ByteReader::new(body);
    r.take(h.count * h.dimension * 4).map_err(|e| (at(&r), e))?;
    let mut ids = Vec::with_capacity(h.count);
    for _ in 0..h.count {
        ids.push(r.point_id().map_err(|e| (at(&r), e))?);
    }
    let mut texts = Vec::with_capacity(h.count);
    for _ in 0..h.count {
        let offset = at(&r);
        texts.push((offset, r.bytes_u32().map_err(|e| (at(&r), e))?));
    }
    r.finish().map_err(|e| (at(&r), e))?;
    let parse = |part: &[(u64, &[u8])]| -> Result<Vec<Payload>, (u64, String)> {
        part.iter()
            .map(|(offset, json)| {
                serde_json::from_slice(json)
                    .map_err(|e| (*offset, format!("payload is not a JSON object: {e}")))
            })
            .collect()
    };
    // Payload JSON is the costliest part of a load: parse it on two threads.
    let payloads = if texts.len() >= 4096 {
        let (first, second) = texts.split_at(texts.len() / 2);
        let (a, b) = std::thread::scope(|scope| {
            let other = scope.spawn(|| parse(second));
            (parse(first), other.join())
        });
        let b = b.map_err(|_| (HEADER_LEN as u64, "payload parser panicked".to_string()))?;
        let mut all = a?;
        all.extend(b?);
        all
    } else {
        parse(&texts)?
    };
    Ok((ids, payloads))
}

fn inflate(
    stored: &[u8],
    raw_len: u64,
    compression: Compression,
) -> Result<Vec<u8>, (u64, String)> {
    let mut out = Vec::with_capacity(raw_len.min(stored.len() as u64 * 64) as usize);
    let (name, outcome) = match compression {
        Compression::Brotli => (
            "brotli",
            brotli::Decompressor::new(stored, 1 << 16)
                .take(raw_len + 1)
                .read_to_end(&mut out),
        ),
        _ => (
            "gzip",
            GzDecoder::new(stored)
                .take(raw_len + 1)
                .read_to_end(&mut out),
        ),
    };
    outcome.map_err(|e| {
        (
            HEADER_LEN as u64,
            format!("{name} body does not decompress: {e}"),
        )
    })?;
    if out.len() as u64 != raw_len {
        return Err((
            HEADER_LEN as u64,
            format!("body is {} bytes, the header says {raw_len}", out.len()),
        ));
    }
    Ok(out)
}

fn vectors_of(body: &[u8], h: &Header) -> Result<Vec<f32>, (u64, String)> {
    ByteReader::new(body)
        .f32s(h.count * h.dimension)
        .map_err(|e| (HEADER_LEN as u64, e))
}

/// Decodes a snapshot; `Err((offset, reason))` for anything wrong.
pub fn decode(bytes: &[u8]) -> Result<Decoded, (u64, String)> {
    let mut words = vec![0f32; bytes.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<f32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
    decode_words(words, bytes.len())
}

/// Decodes a snapshot read into `words` (its first `len` bytes). An
/// uncompressed snapshot's vectors are used in place on little-endian
/// machines: loading copies them once, from the file into memory.
pub fn decode_words(words: Vec<f32>, len: usize) -> Result<Decoded, (u64, String)> {
    let bytes = &bytemuck::cast_slice::<f32, u8>(&words)[..len];
    let h = check(bytes)?;
    let (ids, payloads, vectors, vectors_start) = if h.compression != Compression::None {
        let body = inflate(&bytes[HEADER_LEN..], h.raw_len, h.compression)?;
        let (ids, payloads) = ids_and_payloads(&body, &h)?;
        (ids, payloads, vectors_of(&body, &h)?, 0)
    } else {
        if h.raw_len != (len - HEADER_LEN) as u64 {
            return Err((
                48,
                format!("raw length {} differs from the stored body", h.raw_len),
            ));
        }
        let (ids, payloads) = ids_and_payloads(&bytes[HEADER_LEN..], &h)?;
        if cfg!(target_endian = "little") {
            (ids, payloads, words, HEADER_LEN / 4)
        } else {
            let vectors = vectors_of(&bytes[HEADER_LEN..], &h)?;
            (ids, payloads, vectors, 0)
        }
    };
    Ok(Decoded {
        dimension: h.dimension,
        distance: h.distance,
        seq: h.seq,
        ids,
        vectors,
        vectors_start,
        payloads,
    })
}

/// An uncompressed snapshot whose vectors stay in a memory map of its file.
#[derive(Debug)]
pub struct Mapped {
    pub dimension: usize,
    pub distance: Distance,
    pub seq: u64,
    pub ids: Vec<PointId>,
    pub payloads: Vec<Payload>,
    pub vectors: MappedVectors,
}

impl Mapped {
    /// The collection, with the file's dimension and distance.
    pub fn into_collection(self, max_vectors: Option<usize>) -> crate::Result<Collection> {
        let config = CollectionConfig::new(self.dimension, self.distance, max_vectors)?
            .with_vectors_on_disk(true);
        Collection::from_mapped(config, self.ids, self.vectors, self.payloads)
    }
}

/// Decodes the snapshot mapped in `map` (its whole file), checking it as
/// [`decode`] does, with its vectors served from the map. `Ok(Err(map))`
/// when they cannot be (a compressed body, a big-endian machine): the
/// caller reads the file instead.
#[allow(clippy::type_complexity)]
pub fn decode_mapped(map: memmap2::Mmap) -> Result<Result<Mapped, memmap2::Mmap>, (u64, String)> {
    let h = check(&map)?;
    if h.compression != Compression::None || cfg!(target_endian = "big") {
        return Ok(Err(map));
    }
    if h.raw_len != (map.len() - HEADER_LEN) as u64 {
        return Err((
            48,
            format!("raw length {} differs from the stored body", h.raw_len),
        ));
    }
    let (ids, payloads) = ids_and_payloads(&map[HEADER_LEN..], &h)?;
    let vectors = MappedVectors::new(map, HEADER_LEN / 4, h.count, h.dimension).ok_or((
        HEADER_LEN as u64,
        "vectors do not fit in the file".to_string(),
    ))?;
    Ok(Ok(Mapped {
        dimension: h.dimension,
        distance: h.distance,
        seq: h.seq,
        ids,
        payloads,
        vectors,
    }))
}

/// Maps the vectors of the uncompressed snapshot `map` that this process
/// just wrote (after checking its header, not its body): `None` when they
/// cannot be served from it.
pub fn map_vectors(map: memmap2::Mmap) -> Option<MappedVectors> {
    if map.len() < HEADER_LEN || &map[0..8] != MAGIC || cfg!(target_endian = "big") {
        return None;
    }
    let word = |at: usize| u32::from_le_bytes([map[at], map[at + 1], map[at + 2], map[at + 3]]);
    let flags = word(12);
    let dimension = word(16) as usize;
    let count = u64::from_le_bytes(map[32..40].try_into().ok()?) as usize;
    if flags != 0 || dimension == 0 {
        return None;
    }
    MappedVectors::new(map, HEADER_LEN / 4, count, dimension)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Reporter;
    use crate::testing::{batch, payload};
    use serde_json::json;

    fn sample() -> Collection {
        let config = CollectionConfig::new(3, Distance::Dot, None).unwrap();
        let mut c = Collection::new(config);
        c.insert(batch(
            3,
            vec![PointId::Int(-4), PointId::Str("é".into()), PointId::Int(9)],
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -1.0, 0.5, 1e-30],
            vec![
                payload(json!({"a": 1})),
                payload(json!({})),
                payload(json!({"z": [1, "x"]})),
            ],
        ))
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
    fn round_trip_brotli_as_version_2() {
        let c = sample();
        let bytes = encode_with(&c, 5, Compression::Brotli);
        assert_eq!(&bytes[8..12], &VERSION_BROTLI.to_le_bytes());
        let back = decode(&bytes).unwrap().into_collection(None).unwrap();
        assert_eq!(
            back.get(&PointId::Int(9)).unwrap().vector.unwrap(),
            vec![-1.0, 0.5, 1e-30]
        );
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for byte in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[byte] ^= 0x10;
            assert!(decode(&bad).is_err(), "flip at {byte} went unnoticed");
        }
    }

    #[test]
    fn uncompressed_and_gzip_snapshots_are_still_written_as_version_1() {
        for compression in [Compression::None, Compression::Gzip] {
            let bytes = encode_with(&sample(), 5, compression);
            assert_eq!(&bytes[8..12], &VERSION.to_le_bytes());
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

    #[test]
    fn a_streamed_snapshot_is_byte_for_byte_the_encoded_one_and_stops_at_a_failed_write() {
        // 12 MiB of vectors: the stream hands them on in more than one chunk.
        let dim = 1024;
        let config = CollectionConfig::new(dim, Distance::Cosine, None).unwrap();
        let mut c = Collection::new(config);
        let count = 3000;
        c.insert(batch(
            dim,
            (0..count).map(|i| PointId::Int(i as i64)).collect(),
            (0..count * dim).map(|i| (i % 977) as f32 - 400.0).collect(),
            (0..count).map(|i| payload(json!({"i": i}))).collect(),
        ))
        .unwrap();
        c.delete(&PointId::Int(7));
        for collection in [sample(), c] {
            let mut streamed = Vec::new();
            let mut chunks = 0;
            let mut sink = |chunk: &[u8]| {
                chunks += 1;
                streamed.extend_from_slice(chunk);
                Ok(())
            };
            let mut silent = Reporter::silent("checkpoint");
            let mut out = CheckpointOut::new(&mut sink, &mut silent, String::new());
            encode_streaming(&collection, 42, &mut out).unwrap();
            assert_eq!(out.written(), streamed.len() as u64);
            assert_eq!(streamed, encode_with(&collection, 42, Compression::None));
            assert!(chunks >= 2);
            let mut calls = 0;
            let mut full = |_: &[u8]| {
                calls += 1;
                Err(std::io::Error::other("disk full"))
            };
            let failed = encode_streaming(
                &collection,
                42,
                &mut CheckpointOut::new(&mut full, &mut silent, String::new()),
            );
            assert_eq!(failed.unwrap_err().to_string(), "disk full");
            assert_eq!(calls, 1);
        }
    }
}

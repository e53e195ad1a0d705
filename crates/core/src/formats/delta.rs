//! The delta file of an incremental save (`snapshots::saves`): what changed
//! in a collection between two saves. Little-endian throughout; the whole
//! file may be gzip- or brotli-compressed (as the save chain's other files).
//!
//! ```text
//! header (72 bytes)
//!   0  magic       b"AVDELTA\0"
//!   8  version     u32 = 1
//!  12  dimension   u32
//!  16  distance    u8        0 Cosine, 1 Dot, 2 Euclidean
//!  17  flags       u8        bit 0: clear the collection before applying
//!  18  reserved    [u8; 2] = 0
//!  20  index       u32       position in the chain: 1 for the first delta after the base
//!  24  base        [u8; 32]  SHA-256 of the chain's base file (as stored)
//!  56  deletes     u64       ids deleted
//!  64  upserts     u64       points written (inserted or replaced)
//! deletes × id               u8 0, i64 | u8 1, u32 len, UTF-8
//! upserts × point            id, f32 × dimension, u32 len + payload JSON object
//! trailer (40 bytes)
//!   0  digest      [u8; 32]  SHA-256 of every byte before the trailer
//!  32  magic       b"AVDELEND"
//! ```
//!
//! Applying it: clear if flagged, delete every listed id (a missing one is
//! no change), then upsert every point, in file order. The base digest and
//! the index tie a delta to one place in one chain: a delta from another
//! chain, or moved in it, is refused as corrupt.

use std::io::{self, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::collection::{check_vector, Collection, Payload, PointBatch};
use crate::distance::Distance;
use crate::error::{BatchIndex, Error, Result};
use crate::formats::{distance_code, distance_from_code, Compression};
use crate::id::PointId;
use crate::journal::Changes;
use crate::storage::codec::{put_bytes_u32, put_point_id, put_u32, put_u64, ByteReader};

pub const MAGIC: &[u8; 8] = b"AVDELTA\0";
pub const END_MAGIC: &[u8; 8] = b"AVDELEND";
pub const VERSION: u32 = 1;
pub const HEADER_LEN: usize = 72;
pub const TRAILER_LEN: usize = 40;
const FLAG_CLEAR: u8 = 1;

/// What a delta's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaHeader {
    pub dimension: usize,
    pub distance: Distance,
    pub cleared: bool,
    pub index: u32,
    pub base: [u8; 32],
    pub deletes: u64,
    pub upserts: u64,
}

/// Hashes what goes through it.
struct Hashing<'a> {
    inner: &'a mut dyn Write,
    hasher: Sha256,
}

impl Write for Hashing<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the changes of `collection` (`changes`, from its journal) as a
/// delta; returns `(deletes, upserts)`.
pub fn write(
    w: &mut dyn Write,
    collection: &Collection,
    changes: &Changes,
    index: u32,
    base: &[u8; 32],
) -> io::Result<(u64, u64)> {
    let config = collection.config();
    let mut out = Hashing {
        inner: w,
        hasher: Sha256::new(),
    };
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    put_u32(&mut header, VERSION);
    put_u32(&mut header, config.dimension as u32);
    header.push(distance_code(config.distance));
    header.push(if changes.cleared { FLAG_CLEAR } else { 0 });
    header.extend_from_slice(&[0, 0]);
    put_u32(&mut header, index);
    header.extend_from_slice(base);
    put_u64(&mut header, changes.deleted.len() as u64);
    let points: Vec<_> = changes
        .written
        .iter()
        .filter_map(|&slot| collection.point_at(slot))
        .collect();
    put_u64(&mut header, points.len() as u64);
    debug_assert_eq!(header.len(), HEADER_LEN);
    out.write_all(&header)?;
    let mut buf = Vec::with_capacity(1 << 16);
    for id in &changes.deleted {
        put_point_id(&mut buf, id);
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    for (id, vector, payload) in &points {
        put_point_id(&mut buf, id);
        for x in vector.iter() {
            buf.extend_from_slice(&x.to_le_bytes());
        }
        let json = serde_json::to_vec(payload.as_ref())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        put_bytes_u32(&mut buf, &json);
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    let digest = out.hasher.finalize();
    let w = out.inner;
    w.write_all(digest.as_slice())?;
    w.write_all(END_MAGIC)?;
    Ok((changes.deleted.len() as u64, points.len() as u64))
}

/// The decompressed bytes of a stored delta (compression as the chain says).
pub fn decompress(path: &Path, stored: &[u8], compression: Compression) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let outcome = match compression {
        Compression::None => return Ok(stored.to_vec()),
        Compression::Gzip => {
            io::copy(&mut flate2::read::GzDecoder::new(stored), &mut out).map(|_| ())
        }
        Compression::Brotli => {
            io::copy(&mut brotli::Decompressor::new(stored, 1 << 16), &mut out).map(|_| ())
        }
    };
    outcome.map_err(|e| Error::corrupt(path, 0, format!("cannot decompress: {e}")))?;
    Ok(out)
}

/// Checks a decompressed delta (magic, version, digest) and returns its
/// header; `expect` is the chain position and base it must carry.
pub fn check(path: &Path, bytes: &[u8], index: u32, base: &[u8; 32]) -> Result<DeltaHeader> {
    let bad = |offset: usize, reason: String| Error::corrupt(path, offset as u64, reason);
    if bytes.len() < HEADER_LEN + TRAILER_LEN {
        return Err(bad(
            0,
            format!("{} bytes is too short for a delta", bytes.len()),
        ));
    }
    if &bytes[..8] != MAGIC {
        return Err(bad(0, "not a delta file (bad magic)".into()));
    }
    let body_end = bytes.len() - TRAILER_LEN;
    if &bytes[body_end + 32..] != END_MAGIC {
        return Err(bad(body_end + 32, "truncated (no end magic)".into()));
    }
    let digest = Sha256::digest(&bytes[..body_end]);
    if digest.as_slice() != &bytes[body_end..body_end + 32] {
        return Err(bad(body_end, "checksum mismatch".into()));
    }
    let mut r = ByteReader::new(&bytes[8..HEADER_LEN]);
    let header = (|| -> std::result::Result<DeltaHeader, String> {
        let version = r.u32()?;
        if version != VERSION {
            return Err(format!("unknown delta version {version}"));
        }
        let dimension = r.u32()? as usize;
        let distance =
            distance_from_code(r.u8()?).ok_or_else(|| "unknown distance code".to_string())?;
        let flags = r.u8()?;
        if flags & !FLAG_CLEAR != 0 {
            return Err(format!("unknown flags {flags:#x}"));
        }
        r.take(2)?;
        let index = r.u32()?;
        let mut base = [0u8; 32];
        base.copy_from_slice(r.take(32)?);
        Ok(DeltaHeader {
            dimension,
            distance,
            cleared: flags & FLAG_CLEAR != 0,
            index,
            base,
            deletes: r.u64()?,
            upserts: r.u64()?,
        })
    })()
    .map_err(|reason| bad(8, reason))?;
    if header.index != index || &header.base != base {
        return Err(bad(
            20,
            format!(
                "delta {} of another chain (expected delta {index} of this one)",
                header.index
            ),
        ));
    }
    Ok(header)
}

/// Applies a checked delta to `collection`.
pub fn apply(
    path: &Path,
    bytes: &[u8],
    header: &DeltaHeader,
    collection: &mut Collection,
) -> Result<()> {
    let dimension = collection.config().dimension;
    if header.dimension != dimension || header.distance != collection.config().distance {
        return Err(Error::ConfigMismatch {
            reason: format!(
                "{} holds {} vectors of dimension {}, the store is {} of dimension {dimension}",
                path.display(),
                header.distance.name(),
                header.dimension,
                collection.config().distance.name()
            ),
        });
    }
    let body = &bytes[HEADER_LEN..bytes.len() - TRAILER_LEN];
    let mut r = ByteReader::new(body);
    let at = |r: &ByteReader, reason: String| {
        Error::corrupt(path, (HEADER_LEN + r.position()) as u64, reason)
    };
    if header.cleared {
        collection.clear();
    }
    for _ in 0..header.deletes {
        let id = r.point_id().map_err(|e| at(&r, e))?;
        collection.delete(&id);
    }
    let mut ids: Vec<PointId> = Vec::new();
    let mut vectors = Vec::new();
    let mut payloads: Vec<Payload> = Vec::new();
    for i in 0..header.upserts {
        let id = r.point_id().map_err(|e| at(&r, e))?;
        let vector = r.f32s(dimension).map_err(|e| at(&r, e))?;
        check_vector(&vector, dimension, BatchIndex(None))
            .map_err(|e| at(&r, format!("point {i}: {e}")))?;
        let json = r.bytes_u32().map_err(|e| at(&r, e))?;
        let payload: Payload = serde_json::from_slice(json)
            .map_err(|e| at(&r, format!("point {i}: payload is not a JSON object: {e}")))?;
        ids.push(id);
        vectors.extend_from_slice(&vector);
        payloads.push(payload);
    }
    r.finish().map_err(|e| at(&r, e))?;
    if !ids.is_empty() {
        let lengths = vec![dimension as u32; ids.len()];
        let batch = PointBatch::new(dimension, ids, vectors, &lengths, payloads)
            .map_err(|e| Error::corrupt(path, 0, e.to_string()))?;
        collection.insert(batch)?;
    }
    Ok(())
}

//! The `annvault` bundle: one self-describing binary file, the fastest
//! export. Little-endian throughout.
//!
//! ```text
//! header (40 bytes)
//!   0  magic       b"AVBUNDLE"
//!   8  version     u32 = 1
//!  12  flags       u32 = 0   (no flag is defined in version 1; a reader refuses unknown bits)
//!  16  dimension   u32
//!  20  distance    u8        0 Cosine, 1 Dot, 2 Euclidean
//!  21  reserved    [u8; 3] = 0
//!  24  count       u64       number of points
//!  32  header_crc  u32       crc32c of bytes 0..32
//!  36  reserved    u32 = 0
//! blocks, until one with n = 0
//!   0  n           u32       points in the block, 1..=4096
//!   4  body_len    u32
//!   8  body_crc    u32       crc32c of the body
//!  12  body
//!        vectors   f32 × (n · dimension), point after point
//!        ids       n × (u8 0, i64 | u8 1, u32 len, UTF-8)
//!        payloads  n × (u32 len, JSON object)
//! trailer (20 bytes, after the n = 0 block's 4 bytes)
//!   0  count       u64       points in all blocks (= the header's)
//!   8  file_crc    u32       crc32c of every byte before the trailer
//!  12  magic       b"AVBUNEND"
//! ```
//!
//! Blocks keep the vectors raw and together (one copy per block each way)
//! while bounding what a reader holds to one block: a block carries at most
//! 4096 points and about 1 MiB of vectors. The saved graph is not part of
//! version 1; an import indexes the points again.

use std::io::{self, BufRead, Read, Write};

use crate::collection::Payload;
use crate::formats::{
    check_point, distance_code, distance_from_code, Counting, Header, Point, Points, ReadError,
    Visit,
};
use crate::progress::Reporter;
use crate::storage::codec::{put_bytes_u32, put_point_id, put_u32, put_u64, ByteReader};

pub const MAGIC: &[u8; 8] = b"AVBUNDLE";
pub const END_MAGIC: &[u8; 8] = b"AVBUNEND";
pub const VERSION: u32 = 1;
pub const HEADER_LEN: usize = 40;
const BLOCK_PREFIX_LEN: usize = 12;
const TRAILER_LEN: usize = 20;
pub const MAX_BLOCK_POINTS: usize = 4096;
const BLOCK_VECTOR_BYTES: usize = 1 << 20;
/// Largest block body a reader accepts (vectors plus the longest ids and payloads).
const MAX_BODY_LEN: usize = 1 << 30;

/// Points per block for vectors of `dimension`.
fn block_points(dimension: usize) -> usize {
    (BLOCK_VECTOR_BYTES / (dimension * 4)).clamp(1, MAX_BLOCK_POINTS)
}

/// Writes through `w` and keeps the running crc32c of everything written.
struct Hashing<'a> {
    inner: &'a mut dyn Write,
    crc: u32,
}

impl Hashing<'_> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        self.inner.write_all(bytes)
    }
}

pub fn write(w: &mut dyn Write, points: &Points<'_>, progress: &mut Reporter) -> io::Result<()> {
    let header = &points.header;
    let mut out = Hashing { inner: w, crc: 0 };
    let mut head = Vec::with_capacity(HEADER_LEN);
    head.extend_from_slice(MAGIC);
    put_u32(&mut head, VERSION);
    put_u32(&mut head, 0);
    put_u32(&mut head, header.dimension as u32);
    head.extend_from_slice(&[distance_code(header.distance), 0, 0, 0]);
    put_u64(&mut head, header.count);
    let crc = crc32c::crc32c(&head);
    put_u32(&mut head, crc);
    put_u32(&mut head, 0);
    out.put(&head)?;
    let mut body = Vec::new();
    let mut json = Vec::new();
    let mut done = 0u64;
    for block in points.points.chunks(block_points(header.dimension)) {
        body.clear();
        for (_, vector, _) in block {
            if cfg!(target_endian = "little") {
                body.extend_from_slice(bytemuck::cast_slice(vector));
            } else {
                crate::storage::codec::put_f32s(&mut body, vector);
            }
        }
        for (id, _, _) in block {
            put_point_id(&mut body, id);
        }
        for (_, _, payload) in block {
            json.clear();
            serde_json::to_writer(&mut json, payload).map_err(io::Error::other)?;
            put_bytes_u32(&mut body, &json);
        }
        let mut prefix = Vec::with_capacity(BLOCK_PREFIX_LEN);
        put_u32(&mut prefix, block.len() as u32);
        put_u32(&mut prefix, body.len() as u32);
        put_u32(&mut prefix, crc32c::crc32c(&body));
        out.put(&prefix)?;
        out.put(&body)?;
        done += block.len() as u64;
        progress.tick(done);
    }
    out.put(&0u32.to_le_bytes())?;
    let mut trailer = Vec::with_capacity(TRAILER_LEN);
    put_u64(&mut trailer, done);
    put_u32(&mut trailer, out.crc);
    trailer.extend_from_slice(END_MAGIC);
    out.inner.write_all(&trailer)
}

/// Reads exactly `buf.len()` bytes; a short file is a [`ReadError`].
fn fill<R: Read>(
    r: &mut Counting<R>,
    buf: &mut [u8],
    record: Option<u64>,
    what: &str,
) -> Result<(), ReadError> {
    let at = r.count;
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            ReadError::new(record, at, format!("file ends inside {what}"))
        }
        _ => ReadError::new(record, at, format!("cannot read {what}: {e}")),
    })
}

pub fn read(
    stream: &mut dyn BufRead,
    on_header: &mut dyn FnMut(&Header) -> Result<(), ReadError>,
    visit: &mut Visit<'_>,
) -> Result<Header, ReadError> {
    let mut r = Counting {
        inner: stream,
        count: 0,
    };
    let mut crc = 0u32;
    let mut head = [0u8; HEADER_LEN];
    fill(&mut r, &mut head, None, "the header")?;
    crc = crc32c::crc32c_append(crc, &head);
    if &head[0..8] != MAGIC {
        return Err(ReadError::new(
            None,
            0,
            "not an annvault bundle (bad magic)",
        ));
    }
    let word = |at: usize| u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    if word(32) != crc32c::crc32c(&head[0..32]) {
        return Err(ReadError::new(None, 32, "header checksum mismatch"));
    }
    if word(8) != VERSION {
        return Err(ReadError::new(
            None,
            8,
            format!("unknown bundle version {}", word(8)),
        ));
    }
    if word(12) != 0 {
        return Err(ReadError::new(
            None,
            12,
            format!("unknown flags {:#x}", word(12)),
        ));
    }
    let dimension = word(16) as usize;
    if dimension == 0 || dimension > crate::collection::MAX_DIMENSION {
        return Err(ReadError::new(
            None,
            16,
            format!("dimension {dimension} is out of range"),
        ));
    }
    let distance = distance_from_code(head[20])
        .ok_or_else(|| ReadError::new(None, 20, format!("unknown distance code {}", head[20])))?;
    let count = u64::from_le_bytes(head[24..32].try_into().unwrap_or_default());
    let header = Header {
        dimension,
        distance,
        count,
    };
    on_header(&header)?;
    let mut index = 0u64;
    let mut body = Vec::new();
    loop {
        let block_at = r.count;
        let mut n = [0u8; 4];
        fill(&mut r, &mut n, Some(index), "a block header")?;
        crc = crc32c::crc32c_append(crc, &n);
        let n = u32::from_le_bytes(n) as usize;
        if n == 0 {
            break;
        }
        let mut rest = [0u8; BLOCK_PREFIX_LEN - 4];
        fill(&mut r, &mut rest, Some(index), "a block header")?;
        crc = crc32c::crc32c_append(crc, &rest);
        let body_len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let body_crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        let least = n * (dimension * 4 + 1 + 4 + 4);
        if n > MAX_BLOCK_POINTS || body_len > MAX_BODY_LEN || body_len < least {
            return Err(ReadError::new(
                Some(index),
                block_at,
                format!("block of {n} points claims {body_len} bytes"),
            ));
        }
        body.resize(body_len, 0);
        fill(&mut r, &mut body, Some(index), "a block")?;
        // One pass over the body for both checksums: the file's running one
        // is the block's combined onto it.
        let block_crc = crc32c::crc32c(&body);
        crc = crc32c::crc32c_combine(crc, block_crc, body.len());
        if block_crc != body_crc {
            return Err(ReadError::new(
                Some(index),
                block_at,
                "block checksum mismatch",
            ));
        }
        let body_at = block_at + BLOCK_PREFIX_LEN as u64;
        let mut b = ByteReader::new(&body);
        let at = |b: &ByteReader<'_>| body_at + b.position() as u64;
        let vectors = b
            .f32s(n * dimension)
            .map_err(|e| ReadError::new(Some(index), at(&b), e))?;
        let mut ids = Vec::with_capacity(n);
        for i in 0..n as u64 {
            ids.push(
                b.point_id()
                    .map_err(|e| ReadError::new(Some(index + i), at(&b), e))?,
            );
        }
        for (i, (id, vector)) in ids
            .into_iter()
            .zip(vectors.chunks_exact(dimension))
            .enumerate()
        {
            let record = index + i as u64;
            let offset = at(&b);
            let json = b
                .bytes_u32()
                .map_err(|e| ReadError::new(Some(record), offset, e))?;
            let payload: Payload = serde_json::from_slice(json).map_err(|e| {
                ReadError::new(
                    Some(record),
                    offset,
                    format!("payload is not a JSON object: {e}"),
                )
            })?;
            let point = Point {
                id,
                vector: vector.to_vec(),
                payload,
            };
            check_point(&header, record, offset, &point)?;
            visit(record, point)?;
        }
        b.finish()
            .map_err(|e| ReadError::new(Some(index), at(&b), e))?;
        index += n as u64;
    }
    let trailer_at = r.count;
    let mut trailer = [0u8; TRAILER_LEN];
    fill(&mut r, &mut trailer, None, "the trailer")?;
    let total = u64::from_le_bytes(trailer[0..8].try_into().unwrap_or_default());
    let file_crc = u32::from_le_bytes([trailer[8], trailer[9], trailer[10], trailer[11]]);
    if &trailer[12..20] != END_MAGIC {
        return Err(ReadError::new(None, trailer_at + 12, "bad trailer magic"));
    }
    if file_crc != crc {
        return Err(ReadError::new(
            None,
            trailer_at + 8,
            "file checksum mismatch",
        ));
    }
    if total != index || total != count {
        return Err(ReadError::new(
            None,
            trailer_at,
            format!("header says {count} points, trailer {total}, blocks hold {index}"),
        ));
    }
    let mut extra = [0u8; 1];
    if r.read(&mut extra)
        .map_err(|e| ReadError::new(None, r.count, e.to_string()))?
        != 0
    {
        return Err(ReadError::new(None, r.count, "bytes after the trailer"));
    }
    Ok(header)
}

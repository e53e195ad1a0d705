//! The key-value checkpoint file (`snapshot-<generation>.avs` in a
//! key-value directory): the whole table as of one WAL sequence number.
//!
//! ```text
//!   0  magic       b"AVKVCKP\0"
//!   8  version     u32 = 1
//!  12  flags       u32 = 0 (reserved; a reader refuses any other value)
//!  16  seq         u64   last WAL sequence number the checkpoint holds
//!  24  count       u64   entries
//!  32  body_len    u64   bytes after the header
//!  40  body_crc    u32   crc32c of the body
//!  44  header_crc  u32   crc32c of bytes 0..44
//!  48  body        count × entry, keys strictly increasing in UTF-8 byte order
//!
//! entry:
//!      u32 key_len, key (UTF-8, 1–1,024 bytes, no NUL)
//!      value       u8 tag (0 JSON text, 1 raw bytes; | 0x80 deflated, then
//!                  u32 inflated length), u32 len, len bytes
//!      u32 meta_len, metadata (UTF-8 JSON object text)
//!      i64 created_at, i64 updated_at           Unix ms
//!      u8 has_expiry (0 | 1), then i64 expires_at when 1
//! ```
//!
//! Little-endian throughout. Expired entries a sweep has not removed yet
//! are kept: whether they count is decided by the clock of each read.

use crate::kv::{put_opt_i64, put_str, put_value, read_key, read_opt_i64, read_str, read_value};
use crate::kv::{KvEntry, KvTable};
use crate::storage::codec::{check_fits, put_u32, put_u64, ByteReader};

pub const MAGIC: &[u8; 8] = b"AVKVCKP\0";
pub const VERSION: u32 = 1;
pub const HEADER_LEN: usize = 48;
/// Smallest encoded entry: key length and one byte, value tag and length,
/// metadata length, two times and the expiry tag.
const MIN_ENTRY_LEN: usize = 4 + 1 + 1 + 4 + 4 + 8 + 8 + 1;

pub fn encode(table: &KvTable, seq: u64) -> Vec<u8> {
    let mut body = Vec::new();
    for (key, entry) in table.iter() {
        put_str(&mut body, key);
        put_value(&mut body, &entry.value);
        put_str(&mut body, &entry.metadata);
        body.extend_from_slice(&entry.created_at.to_le_bytes());
        body.extend_from_slice(&entry.updated_at.to_le_bytes());
        put_opt_i64(&mut body, entry.expires_at);
    }
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(MAGIC);
    put_u32(&mut out, VERSION);
    put_u32(&mut out, 0);
    put_u64(&mut out, seq);
    put_u64(&mut out, table.len() as u64);
    put_u64(&mut out, body.len() as u64);
    put_u32(&mut out, crc32c::crc32c(&body));
    let header_crc = crc32c::crc32c(&out);
    put_u32(&mut out, header_crc);
    out.extend_from_slice(&body);
    out
}

/// The table and its sequence number; `Err((offset, reason))` on any damage.
pub fn decode(bytes: &[u8]) -> Result<(KvTable, u64), (u64, String)> {
    if bytes.len() < HEADER_LEN {
        return Err((
            0,
            format!("file is {} bytes, shorter than the header", bytes.len()),
        ));
    }
    if &bytes[0..8] != MAGIC {
        return Err((0, "not a key-value checkpoint (bad magic)".into()));
    }
    let mut h = ByteReader::new(&bytes[8..HEADER_LEN]);
    let field = |e: String| (8, e);
    let version = h.u32().map_err(field)?;
    let flags = h.u32().map_err(field)?;
    let seq = h.u64().map_err(field)?;
    let count = h.u64().map_err(field)?;
    let body_len = h.u64().map_err(field)?;
    let body_crc = h.u32().map_err(field)?;
    let header_crc = h.u32().map_err(field)?;
    if header_crc != crc32c::crc32c(&bytes[0..44]) {
        return Err((44, "header checksum mismatch".into()));
    }
    if version != VERSION {
        return Err((8, format!("unknown checkpoint format version {version}")));
    }
    if flags != 0 {
        return Err((12, format!("unknown flags {flags:#x}")));
    }
    let body = &bytes[HEADER_LEN..];
    if body_len != body.len() as u64 {
        return Err((
            32,
            format!("body is {} bytes, the header says {body_len}", body.len()),
        ));
    }
    if crc32c::crc32c(body) != body_crc {
        return Err((40, "body checksum mismatch".into()));
    }
    let at = |r: &ByteReader<'_>| (HEADER_LEN + r.position()) as u64;
    let mut r = ByteReader::new(body);
    check_fits(count, MIN_ENTRY_LEN, body.len() as u64, "entries").map_err(|e| (24, e))?;
    let mut table = KvTable::new();
    let mut previous: Option<String> = None;
    for _ in 0..count {
        let start = at(&r);
        let entry = (|| {
            let key = read_key(&mut r)?;
            let value = read_value(&mut r)?;
            let metadata = read_str(&mut r, "metadata")?;
            let created_at = r.i64()?;
            let updated_at = r.i64()?;
            let expires_at = read_opt_i64(&mut r)?;
            Ok::<_, String>((
                key,
                KvEntry {
                    value,
                    metadata,
                    created_at,
                    updated_at,
                    expires_at,
                },
            ))
        })()
        .map_err(|e| (start, e))?;
        let (key, entry) = entry;
        if previous.as_deref().is_some_and(|p| p >= key.as_str()) {
            return Err((start, format!("key {key:?} is out of order")));
        }
        previous = Some(key.clone());
        table.restore(key, entry);
    }
    r.finish().map_err(|e| (at(&r), e))?;
    Ok((table, seq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{KvOp, KvValue, KvWrite};

    fn sample() -> KvTable {
        let mut t = KvTable::new();
        t.apply(KvOp::Set {
            now: 5,
            writes: vec![
                KvWrite {
                    key: "b".into(),
                    value: KvValue::Binary(vec![1, 2, 3]),
                    metadata: "{}".into(),
                    expires_at: Some(77),
                },
                KvWrite {
                    key: "a".into(),
                    value: KvValue::Json("\"x\"".into()),
                    metadata: "{\"t\":1}".into(),
                    expires_at: None,
                },
            ],
        });
        t
    }

    #[test]
    fn round_trip() {
        let bytes = encode(&sample(), 42);
        let (table, seq) = decode(&bytes).unwrap();
        assert_eq!(seq, 42);
        assert_eq!(table, sample());
    }

    #[test]
    fn every_flipped_bit_and_every_cut_is_detected() {
        let bytes = encode(&sample(), 3);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(decode(&bad).is_err(), "flip at {i}");
            assert!(decode(&bytes[..i]).is_err(), "cut at {i}");
        }
    }
}

//! The write-ahead log: one file per generation, `wal-<gen:020>.log`.
//!
//! ```text
//! file header (40 bytes)
//!   0  magic       b"AVWAL\0\0\0"
//!   8  version     u32 = 1
//!  12  reserved    u32 = 0
//!  16  salt        u64   random per file
//!  24  first_seq   u64   sequence number of the file's first record
//!  32  header_crc  u32   crc32c of bytes 0..32
//!  36  reserved    u32 = 0
//! record
//!   0  len         u32   bytes after the crc: 8 (seq) + 1 (op) + body
//!   4  crc         u32   crc32c(salt as u64 LE ‖ bytes 8..8+len)
//!   8  seq         u64   first_seq, first_seq + 1, … without gaps
//!  16  op          u8    see `crate::op`
//!  17  body
//! ```
//!
//! Recovery policy: a record that fails its length, checksum or sequence
//! check ends the valid log. If it sits in the last file and no valid record
//! of this file follows it, it is a torn tail (the crash cut the append) and
//! is truncated away; otherwise the log is corrupt and open refuses, naming
//! the file and offset. The salt makes stale bytes from another file fail the
//! checksum; the sequence check rejects replays of older records.
//!
//! Reserved space: a writer may put zeros after its last record (see
//! `StorageFile::reserve`) so that appends overwrite them in place. Zeros
//! from the end of the last valid record to the end of the file are not a
//! record (a record's `len` is never 0): the scan ends there cleanly, and
//! `valid_len` says where the next record goes.

use std::ops::Range;

use crate::storage::codec::{put_u32, put_u64, ByteReader};

pub const MAGIC: &[u8; 8] = b"AVWAL\0\0\0";
pub const VERSION: u32 = 1;
pub const HEADER_LEN: usize = 40;
/// `len` + `crc`.
pub const RECORD_PREFIX_LEN: usize = 8;
/// `seq` + `op`.
const RECORD_FIXED_LEN: usize = 9;
/// Largest record accepted on read (a batch of ~100k × 1536-dim vectors fits).
pub const MAX_RECORD_LEN: usize = 1 << 30;

pub fn file_name(generation: u64) -> String {
    format!("wal-{generation:020}.log")
}

pub fn parse_file_name(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub salt: u64,
    pub first_seq: u64,
}

impl Header {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN);
        out.extend_from_slice(MAGIC);
        put_u32(&mut out, VERSION);
        put_u32(&mut out, 0);
        put_u64(&mut out, self.salt);
        put_u64(&mut out, self.first_seq);
        let crc = crc32c::crc32c(&out);
        put_u32(&mut out, crc);
        put_u32(&mut out, 0);
        out
    }

    /// Decodes a header; `Err((offset, reason))` on any mismatch.
    pub fn decode(bytes: &[u8]) -> Result<Header, (u64, String)> {
        if bytes.len() < HEADER_LEN {
            return Err((
                0,
                format!("file is {} bytes, shorter than the header", bytes.len()),
            ));
        }
        if &bytes[0..8] != MAGIC {
            return Err((0, "not a WAL file (bad magic)".into()));
        }
        let mut r = ByteReader::new(&bytes[8..HEADER_LEN]);
        let version = r.u32().map_err(|e| (8, e))?;
        if version != VERSION {
            return Err((8, format!("unknown WAL format version {version}")));
        }
        let _reserved = r.u32().map_err(|e| (12, e))?;
        let salt = r.u64().map_err(|e| (16, e))?;
        let first_seq = r.u64().map_err(|e| (24, e))?;
        let crc = r.u32().map_err(|e| (32, e))?;
        if crc != crc32c::crc32c(&bytes[0..32]) {
            return Err((32, "header checksum mismatch".into()));
        }
        Ok(Header { salt, first_seq })
    }
}

/// Appends one encoded record to `out`. `body` is written by `write_body`.
pub fn encode_record(
    out: &mut Vec<u8>,
    salt: u64,
    seq: u64,
    op: u8,
    write_body: impl FnOnce(&mut Vec<u8>),
) {
    let start = out.len();
    put_u32(out, 0);
    put_u32(out, 0);
    put_u64(out, seq);
    out.push(op);
    write_body(out);
    let len = (out.len() - start - RECORD_PREFIX_LEN) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    let crc = record_crc(salt, &out[start + RECORD_PREFIX_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn record_crc(salt: u64, bytes: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&salt.to_le_bytes()), bytes)
}

/// One valid record found by [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    pub seq: u64,
    pub op: u8,
    /// Range of the body within the scanned bytes.
    pub body: Range<usize>,
}

/// How a scan of one WAL file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Every byte belongs to a valid record, or is reserved space (zeros)
    /// after the last one.
    Clean,
    /// Invalid bytes from `offset` to the end, with no valid record after them.
    Torn { offset: u64, reason: String },
    /// An invalid record at `offset` with valid records after it.
    Corrupt { offset: u64, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub header: Header,
    pub records: Vec<Record>,
    pub end: End,
    /// Bytes up to the end of the last valid record.
    pub valid_len: u64,
}

/// Checks the record at `offset`, expecting sequence number `seq`.
fn record_at(bytes: &[u8], offset: usize, salt: u64, seq: u64) -> Result<Record, String> {
    let rest = &bytes[offset..];
    if rest.len() < RECORD_PREFIX_LEN {
        return Err(format!(
            "{} bytes left, shorter than a record prefix",
            rest.len()
        ));
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    if !(RECORD_FIXED_LEN..=MAX_RECORD_LEN).contains(&len) {
        return Err(format!("record length {len} is out of bounds"));
    }
    if len > rest.len() - RECORD_PREFIX_LEN {
        return Err(format!(
            "record length {len} runs past the end of the file ({} bytes left)",
            rest.len() - RECORD_PREFIX_LEN
        ));
    }
    let content = &rest[RECORD_PREFIX_LEN..RECORD_PREFIX_LEN + len];
    if record_crc(salt, content) != crc {
        return Err("record checksum mismatch".into());
    }
    let found_seq = u64::from_le_bytes([
        content[0], content[1], content[2], content[3], content[4], content[5], content[6],
        content[7],
    ]);
    if found_seq != seq {
        return Err(format!(
            "record has sequence number {found_seq}, expected {seq}"
        ));
    }
    let body_start = offset + RECORD_PREFIX_LEN + RECORD_FIXED_LEN;
    Ok(Record {
        offset: offset as u64,
        seq,
        op: content[8],
        body: body_start..offset + RECORD_PREFIX_LEN + len,
    })
}

/// Is there a record with a valid checksum anywhere after `from`? Only
/// positions whose sequence field is plausible are checksummed, so this is
/// cheap even over a long garbage tail.
fn valid_record_after(bytes: &[u8], from: usize, salt: u64, min_seq: u64) -> bool {
    let last = bytes
        .len()
        .saturating_sub(RECORD_PREFIX_LEN + RECORD_FIXED_LEN);
    (from..=last).any(|offset| {
        let seq_at = offset + RECORD_PREFIX_LEN;
        let mut seq_bytes = [0u8; 8];
        seq_bytes.copy_from_slice(&bytes[seq_at..seq_at + 8]);
        let seq = u64::from_le_bytes(seq_bytes);
        seq >= min_seq && seq - min_seq < (1 << 32) && record_at(bytes, offset, salt, seq).is_ok()
    })
}

/// Scans a whole WAL file. `Err((offset, reason))` when the header is bad.
pub fn scan(bytes: &[u8]) -> Result<Scan, (u64, String)> {
    let header = Header::decode(bytes)?;
    let mut records = Vec::new();
    let mut offset = HEADER_LEN;
    let mut seq = header.first_seq;
    let end = loop {
        if offset == bytes.len() {
            break End::Clean;
        }
        match record_at(bytes, offset, header.salt, seq) {
            Ok(record) => {
                offset = record.body.end;
                records.push(record);
                seq += 1;
            }
            Err(_) if bytes[offset..].iter().all(|&b| b == 0) => break End::Clean,
            Err(reason) => {
                break if valid_record_after(bytes, offset + 1, header.salt, seq) {
                    End::Corrupt {
                        offset: offset as u64,
                        reason,
                    }
                } else {
                    End::Torn {
                        offset: offset as u64,
                        reason,
                    }
                };
            }
        }
    };
    Ok(Scan {
        header,
        records,
        end,
        valid_len: offset as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(salt: u64, first_seq: u64, bodies: &[&[u8]]) -> Vec<u8> {
        let mut out = Header { salt, first_seq }.encode();
        for (i, body) in bodies.iter().enumerate() {
            encode_record(&mut out, salt, first_seq + i as u64, 7, |b| {
                b.extend_from_slice(body)
            });
        }
        out
    }

    fn bodies(bytes: &[u8], scan: &Scan) -> Vec<Vec<u8>> {
        scan.records
            .iter()
            .map(|r| bytes[r.body.clone()].to_vec())
            .collect()
    }

    #[test]
    fn round_trip_keeps_every_record_in_order() {
        let bytes = file(42, 10, &[b"one", b"", b"three"]);
        let scan = scan(&bytes).unwrap();
        assert_eq!(scan.end, End::Clean);
        assert_eq!(
            scan.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [10, 11, 12]
        );
        assert_eq!(
            bodies(&bytes, &scan),
            [b"one".to_vec(), vec![], b"three".to_vec()]
        );
        assert_eq!(scan.valid_len, bytes.len() as u64);
    }

    #[test]
    fn torn_tail_at_every_offset_recovers_previous_record() {
        let full = file(
            7,
            1,
            &[
                b"first record",
                b"second record",
                b"third, the one that tears",
            ],
        );
        let whole = scan(&full).unwrap();
        let last_start = whole.records[2].offset as usize;
        for cut in last_start..full.len() {
            let s = scan(&full[..cut]).unwrap();
            assert_eq!(s.records.len(), 2, "cut at {cut}");
            assert_eq!(s.valid_len as usize, last_start);
            if cut == last_start {
                assert_eq!(s.end, End::Clean);
            } else {
                assert!(
                    matches!(s.end, End::Torn { offset, .. } if offset as usize == last_start),
                    "cut at {cut}: {:?}",
                    s.end
                );
            }
        }
    }

    #[test]
    fn a_flipped_bit_in_any_record_is_detected() {
        let full = file(9, 1, &[b"alpha", b"beta", b"gamma"]);
        let records = scan(&full).unwrap().records;
        for byte in HEADER_LEN..full.len() {
            for bit in 0..8 {
                let mut bytes = full.clone();
                bytes[byte] ^= 1 << bit;
                let s = scan(&bytes).unwrap();
                let hit = records
                    .iter()
                    .position(|r| (r.offset as usize..r.body.end).contains(&byte))
                    .unwrap();
                assert_eq!(s.records.len(), hit, "flip at byte {byte} bit {bit}");
                if hit < records.len() - 1 {
                    assert!(
                        matches!(s.end, End::Corrupt { .. }),
                        "byte {byte} bit {bit}: {:?}",
                        s.end
                    );
                } else {
                    assert!(
                        matches!(s.end, End::Torn { .. }),
                        "byte {byte} bit {bit}: {:?}",
                        s.end
                    );
                }
            }
        }
    }

    #[test]
    fn records_from_a_file_with_another_salt_do_not_pass() {
        let a = file(1, 1, &[b"from a"]);
        let b = file(2, 1, &[b"from b"]);
        let mut spliced = a.clone();
        spliced.extend_from_slice(&b[HEADER_LEN..]);
        let s = scan(&spliced).unwrap();
        assert_eq!(s.records.len(), 1);
        assert!(matches!(s.end, End::Torn { .. }));
    }

    #[test]
    fn a_replayed_older_record_breaks_the_sequence() {
        let mut bytes = file(3, 5, &[b"five", b"six"]);
        let first = scan(&bytes).unwrap().records[0].clone();
        let again = bytes[first.offset as usize..first.body.end].to_vec();
        bytes.extend_from_slice(&again);
        let s = scan(&bytes).unwrap();
        assert_eq!(s.records.len(), 2);
        assert!(matches!(s.end, End::Torn { ref reason, .. } if reason.contains("sequence")));
    }

    #[test]
    fn bad_headers_are_rejected_with_an_offset() {
        let good = file(1, 1, &[]);
        assert_eq!(scan(&good[..10]).unwrap_err().0, 0);
        let mut bad_magic = good.clone();
        bad_magic[0] = b'X';
        assert_eq!(scan(&bad_magic).unwrap_err().0, 0);
        let mut bad_version = good.clone();
        bad_version[8] = 9;
        assert!(scan(&bad_version).unwrap_err().1.contains("version"));
        let mut bad_crc = good.clone();
        bad_crc[20] ^= 1;
        assert_eq!(scan(&bad_crc).unwrap_err().0, 32);
    }

    #[test]
    fn reserved_zeros_after_the_records_end_the_log_cleanly() {
        let records = file(5, 1, &[b"one", b"two"]);
        let mut bytes = records.clone();
        bytes.resize(records.len() + 4096, 0);
        let s = scan(&bytes).unwrap();
        assert_eq!(s.end, End::Clean);
        assert_eq!(s.records.len(), 2);
        assert_eq!(s.valid_len, records.len() as u64);
        // A record cut short inside reserved space (part written, the rest
        // still zeros) is a torn tail, not reserved space.
        let mut longer = file(5, 1, &[b"one", b"two", b"three, torn"]);
        let third = scan(&longer).unwrap().records[2].offset as usize;
        longer.truncate(third + 12);
        longer.resize(third + 4096, 0);
        let s = scan(&longer).unwrap();
        assert_eq!(s.records.len(), 2);
        assert!(matches!(s.end, End::Torn { offset, .. } if offset as usize == third));
        // Any nonzero byte in the reserved space is not reserved space.
        let mut stray = bytes.clone();
        stray[records.len() + 100] = 1;
        assert!(matches!(scan(&stray).unwrap().end, End::Torn { .. }));
    }

    #[test]
    fn file_names_round_trip() {
        assert_eq!(parse_file_name(&file_name(17)), Some(17));
        assert_eq!(parse_file_name("wal-x.log"), None);
    }
}

//! `MANIFEST`: which snapshot and which WAL files make up the collection.
//!
//! ```text
//!   0  magic     b"AVMANIF\0"
//!   8  version   u32 = 1
//!  12  json_len  u32
//!  16  json_crc  u32   crc32c of the JSON bytes
//!  20  json      { dimension, distance, kind?, snapshot, snapshotSeq, walStart, checkpointedAtMs }
//! ```
//!
//! `snapshot` is the generation of the snapshot file (0: none); WAL files of
//! generation `walStart` and later are replayed on top of it. The manifest
//! is replaced atomically (temp file, fsync, rename, fsync directory), so a
//! reader sees the old one or the new one, never a mix.

use serde::{Deserialize, Serialize};

use crate::storage::codec::{put_u32, ByteReader};

pub const FILE_NAME: &str = "MANIFEST";
pub const MAGIC: &[u8; 8] = b"AVMANIF\0";
pub const VERSION: u32 = 1;
const HEADER_LEN: usize = 20;
const MAX_JSON_LEN: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub dimension: usize,
    pub distance: String,
    /// What the directory holds when it is not a vector collection
    /// (`"key-value"`); absent for a collection, as in every older manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Generation of the snapshot file; 0 when there is none.
    pub snapshot: u64,
    /// Last WAL sequence number the snapshot holds.
    pub snapshot_seq: u64,
    /// First WAL generation to replay.
    pub wal_start: u64,
    /// When the snapshot was written (ms since the Unix epoch); 0 if never.
    pub checkpointed_at_ms: u64,
}

impl Manifest {
    pub fn encode(&self) -> Vec<u8> {
        // Plain data always serialises.
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mut out = Vec::with_capacity(HEADER_LEN + json.len());
        out.extend_from_slice(MAGIC);
        put_u32(&mut out, VERSION);
        put_u32(&mut out, json.len() as u32);
        put_u32(&mut out, crc32c::crc32c(&json));
        out.extend_from_slice(&json);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Manifest, (u64, String)> {
        if bytes.len() < HEADER_LEN {
            return Err((
                0,
                format!("file is {} bytes, shorter than the header", bytes.len()),
            ));
        }
        if &bytes[0..8] != MAGIC {
            return Err((0, "not a manifest (bad magic)".into()));
        }
        let mut r = ByteReader::new(&bytes[8..HEADER_LEN]);
        let version = r.u32().map_err(|e| (8, e))?;
        if version != VERSION {
            return Err((8, format!("unknown manifest format version {version}")));
        }
        let len = r.u32().map_err(|e| (12, e))? as usize;
        let crc = r.u32().map_err(|e| (16, e))?;
        if len > MAX_JSON_LEN || len != bytes.len() - HEADER_LEN {
            return Err((12, format!("length {len} does not match the file")));
        }
        let json = &bytes[HEADER_LEN..];
        if crc32c::crc32c(json) != crc {
            return Err((16, "checksum mismatch".into()));
        }
        serde_json::from_slice(json)
            .map_err(|e| (HEADER_LEN as u64, format!("bad manifest JSON: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            dimension: 384,
            distance: "Cosine".into(),
            kind: None,
            snapshot: 3,
            snapshot_seq: 1200,
            wal_start: 4,
            checkpointed_at_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn round_trip() {
        assert_eq!(Manifest::decode(&sample().encode()).unwrap(), sample());
    }

    #[test]
    fn every_flipped_bit_and_every_cut_is_detected() {
        let bytes = sample().encode();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x04;
            assert!(Manifest::decode(&bad).is_err(), "flip at {i}");
            assert!(Manifest::decode(&bytes[..i]).is_err(), "cut at {i}");
        }
    }
}

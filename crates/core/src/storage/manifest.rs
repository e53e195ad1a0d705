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

use crate::storage::codec::JsonFrame;

pub const FILE_NAME: &str = "MANIFEST";
pub const MAGIC: &[u8; 8] = b"AVMANIF\0";
pub const VERSION: u32 = 1;
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

const FRAME: JsonFrame = JsonFrame {
    magic: MAGIC,
    version: VERSION,
    max_len: MAX_JSON_LEN,
    what: "manifest",
};

impl Manifest {
    pub fn encode(&self) -> Vec<u8> {
        FRAME.encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Manifest, (u64, String)> {
        FRAME.decode(bytes)
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

//! The key-value engine: a [`KvTable`] (sorted keys, JSON or binary values,
//! JSON-object metadata, creation/update/expiry times) persisted by the
//! same log-and-checkpoint engine as vector collections
//! ([`crate::storage::directory::LogDir`]), behind a thread-safe
//! [`KvStore`] with group commit.
//!
//! Rules the engine enforces (`lib/persistence/adapter.ts` is the contract):
//! keys are 1–1,024 bytes of UTF-8 without NUL (else [`Error::InvalidKey`]);
//! a JSON value is valid JSON text and metadata the text of a JSON object
//! (else [`Error::Serialization`]); an entry whose `expires_at <= now` is
//! absent for every read and for the `created_at` a later write keeps.

pub mod checkpoint;
pub mod glob;
pub mod store;
pub mod table;

use std::io::{Read, Write};

use crate::error::{BatchIndex, Error, Result};
use crate::storage::codec::{put_u32, ByteReader, DecodeError};

pub use glob::Glob;
pub use store::{KvOptions, KvStats, KvStore};
pub use table::{KvOp, KvTable, KIND};

/// Longest key, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Values this long or longer are stored deflated when that is smaller.
pub const COMPRESS_MIN_BYTES: usize = 64 * 1024;

/// A stored value: JSON text, or raw bytes (a `Buffer` / `Uint8Array`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvValue {
    Json(String),
    Binary(Vec<u8>),
}

/// One live entry. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    pub value: KvValue,
    /// JSON text of an object.
    pub metadata: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: Option<i64>,
}

impl KvEntry {
    pub fn is_live(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }

    /// Bytes of value and metadata: what a read copies.
    pub fn size(&self) -> usize {
        let value = match &self.value {
            KvValue::Json(text) => text.len(),
            KvValue::Binary(bytes) => bytes.len(),
        };
        value + self.metadata.len()
    }
}

/// One write of a `set` batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvWrite {
    pub key: String,
    pub value: KvValue,
    pub metadata: String,
    pub expires_at: Option<i64>,
}

fn invalid_key(index: Option<usize>, reason: impl Into<String>) -> Error {
    Error::InvalidKey {
        index: BatchIndex(index),
        reason: reason.into(),
    }
}

/// Checks a key against the rules; `index` is its place in a batch, for the message.
pub fn validate_key(key: &str, index: Option<usize>) -> Result<()> {
    if key.is_empty() {
        return Err(invalid_key(index, "must not be empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(invalid_key(
            index,
            format!(
                "is {} bytes, longer than {MAX_KEY_BYTES} bytes of UTF-8",
                key.len()
            ),
        ));
    }
    if key.contains('\0') {
        return Err(invalid_key(index, "must not contain NUL"));
    }
    Ok(())
}

/// Checks a write: its key, that a JSON value is JSON text and that the
/// metadata is a JSON object's text.
pub fn validate_write(write: &KvWrite, index: Option<usize>) -> Result<()> {
    validate_key(&write.key, index)?;
    let at = BatchIndex(index);
    if let KvValue::Json(text) = &write.value {
        serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| Error::Serialization {
            reason: format!("value{at} of key {:?} is not JSON text: {e}", write.key),
        })?;
    }
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&write.metadata).map_err(
        |e| Error::Serialization {
            reason: format!(
                "metadata{at} of key {:?} is not a JSON object: {e}",
                write.key
            ),
        },
    )?;
    Ok(())
}

const TAG_JSON: u8 = 0;
const TAG_BINARY: u8 = 1;
const TAG_DEFLATED: u8 = 0x80;

/// Appends a value: `u8 tag` (0 JSON text, 1 raw bytes; `| 0x80` when
/// deflated, then `u32` inflated length), `u32 len`, `len` bytes.
pub(crate) fn put_value(out: &mut Vec<u8>, value: &KvValue) {
    let (tag, raw) = match value {
        KvValue::Json(text) => (TAG_JSON, text.as_bytes()),
        KvValue::Binary(bytes) => (TAG_BINARY, bytes.as_slice()),
    };
    if raw.len() >= COMPRESS_MIN_BYTES {
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        // Writing into a Vec cannot fail.
        if encoder.write_all(raw).is_ok() {
            if let Ok(deflated) = encoder.finish() {
                if deflated.len() < raw.len() {
                    out.push(tag | TAG_DEFLATED);
                    put_u32(out, raw.len() as u32);
                    put_u32(out, deflated.len() as u32);
                    out.extend_from_slice(&deflated);
                    return;
                }
            }
        }
    }
    out.push(tag);
    put_u32(out, raw.len() as u32);
    out.extend_from_slice(raw);
}

pub(crate) fn read_value(r: &mut ByteReader<'_>) -> Result<KvValue, DecodeError> {
    let tag = r.u8()?;
    let raw = if tag & TAG_DEFLATED != 0 {
        let inflated_len = r.u32()? as usize;
        let deflated = r.bytes_u32()?;
        let mut raw = Vec::new();
        // `take` bounds what a forged length can make us allocate.
        flate2::read::DeflateDecoder::new(deflated)
            .take(inflated_len as u64 + 1)
            .read_to_end(&mut raw)
            .map_err(|e| format!("deflated value does not inflate: {e}"))?;
        if raw.len() != inflated_len {
            return Err(format!(
                "deflated value inflates to {} bytes, its header says {inflated_len}",
                raw.len()
            ));
        }
        raw
    } else {
        r.bytes_u32()?.to_vec()
    };
    match tag & !TAG_DEFLATED {
        TAG_JSON => String::from_utf8(raw)
            .map(KvValue::Json)
            .map_err(|_| "JSON value is not UTF-8".into()),
        TAG_BINARY => Ok(KvValue::Binary(raw)),
        other => Err(format!("unknown value tag {other}")),
    }
}

pub(crate) fn put_str(out: &mut Vec<u8>, text: &str) {
    crate::storage::codec::put_bytes_u32(out, text.as_bytes());
}

pub(crate) fn read_str(r: &mut ByteReader<'_>, what: &str) -> Result<String, DecodeError> {
    let bytes = r.bytes_u32()?;
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| format!("{what} is not UTF-8"))
}

pub(crate) fn read_key(r: &mut ByteReader<'_>) -> Result<String, DecodeError> {
    let key = read_str(r, "key")?;
    validate_key(&key, None).map_err(|e| e.to_string())?;
    Ok(key)
}

pub(crate) fn put_opt_i64(out: &mut Vec<u8>, value: Option<i64>) {
    match value {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

pub(crate) fn read_opt_i64(r: &mut ByteReader<'_>) -> Result<Option<i64>, DecodeError> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(r.i64()?)),
        other => Err(format!("bad option tag {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: KvValue) -> (KvValue, usize) {
        let mut out = Vec::new();
        put_value(&mut out, &value);
        let len = out.len();
        let mut r = ByteReader::new(&out);
        let back = read_value(&mut r).unwrap();
        r.finish().unwrap();
        (back, len)
    }

    #[test]
    fn large_values_are_deflated_when_that_is_smaller() {
        let big = KvValue::Json(format!("\"{}\"", "abc".repeat(40_000)));
        let (back, len) = round_trip(big.clone());
        assert_eq!(back, big);
        assert!(len < 10_000, "{len}");
        // Random bytes do not shrink: stored raw.
        let mut state = 0x1234_5678_u64;
        let noise: Vec<u8> = (0..COMPRESS_MIN_BYTES)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let (back, len) = round_trip(KvValue::Binary(noise.clone()));
        assert_eq!(back, KvValue::Binary(noise));
        assert_eq!(len, 1 + 4 + COMPRESS_MIN_BYTES);
        // Small values never are.
        let small = KvValue::Json("\"x\"".repeat(10));
        assert_eq!(round_trip(small.clone()).1, 1 + 4 + 30);
    }

    #[test]
    fn keys_are_checked() {
        validate_key("a", None).unwrap();
        validate_key(&"é".repeat(512), None).unwrap();
        for bad in ["", "a\0b"] {
            assert_eq!(validate_key(bad, None).unwrap_err().code(), 5003);
        }
        let long = "x".repeat(MAX_KEY_BYTES + 1);
        assert_eq!(validate_key(&long, Some(2)).unwrap_err().code(), 5003);
    }

    #[test]
    fn values_and_metadata_are_checked() {
        let write = |value: KvValue, metadata: &str| KvWrite {
            key: "k".into(),
            value,
            metadata: metadata.into(),
            expires_at: None,
        };
        validate_write(&write(KvValue::Json("[1,2]".into()), "{}"), None).unwrap();
        validate_write(&write(KvValue::Binary(vec![0, 255]), "{\"a\":1}"), None).unwrap();
        for (value, meta) in [
            (KvValue::Json("{".into()), "{}"),
            (KvValue::Json("".into()), "{}"),
            (KvValue::Json("1".into()), "[]"),
            (KvValue::Json("1".into()), "null"),
        ] {
            let err = validate_write(&write(value, meta), Some(0)).unwrap_err();
            assert_eq!(err.code(), 5004);
        }
    }
}

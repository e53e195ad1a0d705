//! Little-endian encoding helpers shared by the on-disk formats. Reads are
//! bounds-checked and never allocate more than the input can hold.

use crate::id::PointId;

/// A cursor over bytes whose every read fails, rather than panics, past the end.
pub struct ByteReader<'a> {
    bytes: &'a [u8],
    position: usize,
}

/// Why a read failed: a short, fixed description for error messages.
pub type DecodeError = String;

/// The fewest bytes [`put_point_id`] writes: the string tag, a `u32`
/// length and no bytes (an integer id takes 9). Readers bound counts with
/// the *encoding's* minimum, never with what today's input rules allow
/// (non-empty ids): a reader stricter than its writer loses acknowledged
/// data (issue 12), a looser one only allocates a little less tightly.
pub const MIN_POINT_ID_LEN: usize = 1 + 4;

/// The fewest bytes [`put_bytes_u32`] writes: the length of nothing.
pub const MIN_BYTES_U32_LEN: usize = 4;

/// Refuses `count` items of at least `min_each` bytes in `available`
/// bytes, before anything is allocated for them.
pub fn check_fits(
    count: u64,
    min_each: usize,
    available: u64,
    what: &str,
) -> Result<(), DecodeError> {
    if count.saturating_mul(min_each as u64) > available {
        return Err(format!(
            "{count} {what} of at least {min_each} bytes each cannot fit in {available} bytes"
        ));
    }
    Ok(())
}

impl<'a> ByteReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        ByteReader { bytes, position: 0 }
    }

    pub fn position(&self) -> usize {
        self.position
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    pub fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.remaining() {
            return Err(format!(
                "needs {len} bytes at offset {}, only {} remain",
                self.position,
                self.remaining()
            ));
        }
        let slice = &self.bytes[self.position..self.position + len];
        self.position += len;
        Ok(slice)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(self.u64()? as i64)
    }

    /// `count` little-endian f32 values, checked against the input size first.
    pub fn f32s(&mut self, count: usize) -> Result<Vec<f32>, DecodeError> {
        let len = count
            .checked_mul(4)
            .ok_or_else(|| format!("{count} floats overflow"))?;
        let bytes = self.take(len)?;
        let mut out = vec![0f32; count];
        // Element-wise on equal-length slices: compiles to a straight copy on
        // little-endian targets.
        for (value, raw) in out.iter_mut().zip(bytes.chunks_exact(4)) {
            *value = f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
        }
        Ok(out)
    }

    /// A `u32` length followed by that many bytes.
    pub fn bytes_u32(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    pub fn point_id(&mut self) -> Result<PointId, DecodeError> {
        match self.u8()? {
            0 => Ok(PointId::Int(self.i64()?)),
            1 => {
                let bytes = self.bytes_u32()?;
                let text =
                    std::str::from_utf8(bytes).map_err(|e| format!("id is not UTF-8: {e}"))?;
                Ok(PointId::Str(text.into()))
            }
            tag => Err(format!("unknown id tag {tag}")),
        }
    }

    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() != 0 {
            return Err(format!("{} unexpected trailing bytes", self.remaining()));
        }
        Ok(())
    }
}

pub fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub fn put_f32s(out: &mut Vec<u8>, values: &[f32]) {
    let start = out.len();
    out.resize(start + values.len() * 4, 0);
    for (raw, value) in out[start..].chunks_exact_mut(4).zip(values) {
        raw.copy_from_slice(&value.to_le_bytes());
    }
}

pub fn put_bytes_u32(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len() as u32);
    out.extend_from_slice(bytes);
}

pub fn put_point_id(out: &mut Vec<u8>, id: &PointId) {
    match id {
        PointId::Int(n) => {
            out.push(0);
            put_u64(out, *n as u64);
        }
        PointId::Str(s) => {
            out.push(1);
            put_bytes_u32(out, s.as_bytes());
        }
    }
}

/// A per-file random value mixed into checksums, so that bytes from another
/// file or an older generation never pass as records of this one.
pub fn random_salt() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    hasher.write_u128(now);
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// A small JSON document in a checksummed frame, the shape of every
/// manifest (the collection's `MANIFEST`, a named snapshot's `SNAPSHOT`):
///
/// ```text
///   0  magic     8 bytes
///   8  version   u32
///  12  json_len  u32
///  16  json_crc  u32   crc32c of the JSON bytes
///  20  json
/// ```
pub struct JsonFrame {
    pub magic: &'static [u8; 8],
    pub version: u32,
    /// Longest JSON accepted on decode.
    pub max_len: usize,
    /// What the file is, for error messages ("manifest").
    pub what: &'static str,
}

impl JsonFrame {
    const HEADER_LEN: usize = 20;

    pub fn encode<T: serde::Serialize>(&self, value: &T) -> Vec<u8> {
        // Manifests are plain data: they always serialise.
        let json = serde_json::to_vec(value).unwrap_or_default();
        let mut out = Vec::with_capacity(Self::HEADER_LEN + json.len());
        out.extend_from_slice(self.magic);
        put_u32(&mut out, self.version);
        put_u32(&mut out, json.len() as u32);
        put_u32(&mut out, crc32c::crc32c(&json));
        out.extend_from_slice(&json);
        out
    }

    /// The document, or the byte offset of the first problem and what it is.
    pub fn decode<T: serde::de::DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, (u64, String)> {
        let what = self.what;
        if bytes.len() < Self::HEADER_LEN {
            return Err((
                0,
                format!("file is {} bytes, shorter than the header", bytes.len()),
            ));
        }
        if &bytes[0..8] != self.magic {
            return Err((0, format!("not a {what} (bad magic)")));
        }
        let mut r = ByteReader::new(&bytes[8..Self::HEADER_LEN]);
        let version = r.u32().map_err(|e| (8, e))?;
        if version != self.version {
            return Err((8, format!("unknown {what} format version {version}")));
        }
        let len = r.u32().map_err(|e| (12, e))? as usize;
        let crc = r.u32().map_err(|e| (16, e))?;
        if len > self.max_len || len != bytes.len() - Self::HEADER_LEN {
            return Err((12, format!("length {len} does not match the file")));
        }
        let json = &bytes[Self::HEADER_LEN..];
        if crc32c::crc32c(json) != crc {
            return Err((16, "checksum mismatch".into()));
        }
        serde_json::from_slice(json)
            .map_err(|e| (Self::HEADER_LEN as u64, format!("bad {what} JSON: {e}")))
    }
}

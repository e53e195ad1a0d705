//! Point ids: a string or an integer, kept as the type the caller used.
//!
//! `1` and `"1"` are different ids, as they are different keys of a JS `Map`.
//! Numbers must be safe integers (|n| ≤ 2^53 − 1) so they survive the trip
//! through a JS number exactly; strings must be 1 to [`MAX_ID_BYTES`] bytes of
//! UTF-8 without NUL.

use std::fmt;

use serde::ser::{Serialize, Serializer};

use crate::error::{BatchIndex, Error, Result};

/// Longest accepted string id, in UTF-8 bytes.
pub const MAX_ID_BYTES: usize = 512;

/// Largest integer a JS number holds exactly (`Number.MAX_SAFE_INTEGER`).
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Ordering: every integer id sorts before every string id; integers by value,
/// strings by bytes. `list()` returns points in this order.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum PointId {
    Int(i64),
    Str(Box<str>),
}

impl PointId {
    pub fn from_number(value: f64, index: BatchIndex) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidId { index, reason };
        if !value.is_finite() {
            return Err(invalid(format!("numeric id must be finite, got {value}")));
        }
        if value.fract() != 0.0 {
            return Err(invalid(format!(
                "numeric id must be an integer, got {value}"
            )));
        }
        if value.abs() > MAX_SAFE_INTEGER as f64 {
            return Err(invalid(format!(
                "numeric id must be a safe integer (|id| <= 2^53 - 1), got {value}"
            )));
        }
        // -0.0 and 0.0 are the same id.
        Ok(PointId::Int(value as i64))
    }

    pub fn from_string(value: String, index: BatchIndex) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidId { index, reason };
        if value.is_empty() {
            return Err(invalid("string id must not be empty".into()));
        }
        if value.len() > MAX_ID_BYTES {
            return Err(invalid(format!(
                "string id is {} bytes long, the limit is {MAX_ID_BYTES}",
                value.len()
            )));
        }
        if value.contains('\0') {
            return Err(invalid("string id must not contain NUL".into()));
        }
        Ok(PointId::Str(value.into_boxed_str()))
    }
}

impl fmt::Display for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointId::Int(n) => write!(f, "{n}"),
            PointId::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl Serialize for PointId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            PointId::Int(n) => serializer.serialize_i64(*n),
            PointId::Str(s) => serializer.serialize_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: BatchIndex = BatchIndex(None);

    #[test]
    fn numbers_must_be_safe_integers() {
        assert_eq!(PointId::from_number(42.0, AT).unwrap(), PointId::Int(42));
        assert_eq!(PointId::from_number(-0.0, AT).unwrap(), PointId::Int(0));
        assert_eq!(
            PointId::from_number(9007199254740991.0, AT).unwrap(),
            PointId::Int(MAX_SAFE_INTEGER)
        );
        for bad in [1.5, f64::NAN, f64::INFINITY, 9007199254740992.0] {
            let err = PointId::from_number(bad, AT).unwrap_err();
            assert_eq!(err.code(), 1004, "{bad}");
        }
    }

    #[test]
    fn strings_must_be_non_empty_and_bounded() {
        assert!(PointId::from_string("a".into(), AT).is_ok());
        assert!(PointId::from_string("é".repeat(MAX_ID_BYTES / 2), AT).is_ok());
        for bad in [String::new(), "x".repeat(MAX_ID_BYTES + 1), "a\0b".into()] {
            assert_eq!(PointId::from_string(bad, AT).unwrap_err().code(), 1004);
        }
    }

    #[test]
    fn integers_sort_before_strings_and_keep_their_type_in_json() {
        let mut ids = vec![
            PointId::Str("b".into()),
            PointId::Int(10),
            PointId::Str("a".into()),
            PointId::Int(-1),
        ];
        ids.sort();
        assert_eq!(serde_json::to_string(&ids).unwrap(), r#"[-1,10,"a","b"]"#);
    }
}

//! The one error type of the engine.
//!
//! Every variant has a stable numeric [`Error::code`] and a stable
//! [`Error::kind`] name. Both cross into JavaScript unchanged (the binding
//! puts them on `err.code` and `err.kind`), so they are part of the public
//! contract: never renumber a variant, only add new ones.
//!
//! Code ranges: 1000–1999 bad input or misuse of the store, 5000–5999
//! persistence (the storage engine).

use std::fmt;

/// Which JavaScript error class an [`Error`] becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    VectorStoreError,
    VectorDimensionError,
    PersistenceError,
}

impl ErrorClass {
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::VectorStoreError => "VectorStoreError",
            ErrorClass::VectorDimensionError => "VectorDimensionError",
            ErrorClass::PersistenceError => "PersistenceError",
        }
    }
}

/// Position of a vector, id or payload inside a batch, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchIndex(pub Option<usize>);

impl fmt::Display for BatchIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(i) => write!(f, " at batch index {i}"),
            None => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("vector{index} has dimension {actual}, expected {expected}")]
    DimensionMismatch {
        expected: usize,
        actual: usize,
        index: BatchIndex,
    },

    #[error("vector{index} has a non-finite value ({value}) at position {position}")]
    NonFiniteValue {
        index: BatchIndex,
        position: usize,
        value: f32,
    },

    #[error(
        "batch lengths differ: {vectors} vectors, {ids} ids, {payloads} payloads (they must be equal)"
    )]
    LengthMismatch {
        vectors: usize,
        ids: usize,
        payloads: usize,
    },

    #[error("invalid id{index}: {reason}")]
    InvalidId { index: BatchIndex, reason: String },

    #[error("duplicate id {id} in one batch (batch indexes {first} and {second})")]
    DuplicateId {
        id: String,
        first: usize,
        second: usize,
    },

    #[error("invalid payload{index}: {reason}")]
    InvalidPayload { index: BatchIndex, reason: String },

    #[error("invalid filter: {reason}")]
    InvalidFilter { reason: String },

    #[error("invalid {name}: {reason}")]
    InvalidArgument { name: &'static str, reason: String },

    #[error(
        "collection is full: maxVectors is {max}, it holds {current}, the batch adds {adding} new ids"
    )]
    CapacityExceeded {
        max: usize,
        current: usize,
        adding: usize,
    },

    #[error("invalid collection name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },

    #[error("no point with id {id}")]
    NotFound { id: String },

    #[error("the store is closed (disconnect() was called); connect() it again first")]
    Closed,

    #[error("the store stopped after an internal panic; reopen it")]
    Poisoned,

    #[error("internal error: {reason}")]
    Internal { reason: String },

    #[error(
        "collection directory {path} is in use by another open store (in this process or another)"
    )]
    InUse { path: String },

    #[error("{operation} {path} failed")]
    Io {
        operation: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{file} is corrupt at byte offset {offset}: {reason}")]
    Corrupt {
        file: String,
        offset: u64,
        reason: String,
    },

    #[error("the store refuses writes until it is reopened: {reason}")]
    WritesDisabled { reason: String },

    #[error("the stored collection does not match the configuration: {reason}")]
    ConfigMismatch { reason: String },

    #[error("legacy file {file} cannot be imported: {reason}")]
    LegacyFormat { file: String, reason: String },

    /// A SQLite database (the key-value SQLite table) failed or is not a database.
    #[error("database {file}: {reason}")]
    Database { file: String, reason: String },
    #[error("invalid key{index}: {reason}")]
    InvalidKey { index: BatchIndex, reason: String },

    #[error("value cannot be stored faithfully: {reason}")]
    Serialization { reason: String },

    /// A named snapshot that does not exist (code and kind of `NotFound`).
    #[error("no snapshot with id or name {snapshot:?}")]
    SnapshotNotFound { snapshot: String },

    /// An unsafe snapshot name (code and kind of `InvalidName`).
    #[error("invalid snapshot name {name:?}: {reason}")]
    InvalidSnapshotName { name: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every `(kind, code)` pair, for bindings that raise errors of their own
/// (the JS façade checks payloads for plain JSON before they cross).
pub fn all_codes() -> &'static [(&'static str, u32)] {
    &[
        ("DIMENSION_MISMATCH", 1001),
        ("NON_FINITE_VALUE", 1002),
        ("LENGTH_MISMATCH", 1003),
        ("INVALID_ID", 1004),
        ("DUPLICATE_ID", 1005),
        ("INVALID_PAYLOAD", 1006),
        ("INVALID_FILTER", 1007),
        ("INVALID_ARGUMENT", 1008),
        ("CAPACITY_EXCEEDED", 1009),
        ("INVALID_NAME", 1010),
        ("NOT_FOUND", 1011),
        ("CLOSED", 1012),
        ("POISONED", 1013),
        ("INTERNAL", 1014),
        ("IN_USE", 5001),
        ("IO", 5002),
        ("CORRUPT", 5006),
        ("WRITES_DISABLED", 5007),
        ("CONFIG_MISMATCH", 5008),
        ("LEGACY_FORMAT", 5009),
        ("DATABASE", 5005),
        ("INVALID_KEY", 5003),
        ("SERIALIZATION", 5004),
    ]
}

impl Error {
    /// Stable numeric code. Never renumber.
    pub fn code(&self) -> u32 {
        match self {
            Error::DimensionMismatch { .. } => 1001,
            Error::NonFiniteValue { .. } => 1002,
            Error::LengthMismatch { .. } => 1003,
            Error::InvalidId { .. } => 1004,
            Error::DuplicateId { .. } => 1005,
            Error::InvalidPayload { .. } => 1006,
            Error::InvalidFilter { .. } => 1007,
            Error::InvalidArgument { .. } => 1008,
            Error::CapacityExceeded { .. } => 1009,
            Error::InvalidName { .. } | Error::InvalidSnapshotName { .. } => 1010,
            Error::NotFound { .. } | Error::SnapshotNotFound { .. } => 1011,
            Error::Closed => 1012,
            Error::Poisoned => 1013,
            Error::Internal { .. } => 1014,
            Error::InUse { .. } => 5001,
            Error::Io { .. } => 5002,
            Error::Corrupt { .. } => 5006,
            Error::WritesDisabled { .. } => 5007,
            Error::ConfigMismatch { .. } => 5008,
            Error::LegacyFormat { .. } => 5009,
            Error::Database { .. } => 5005,
            Error::InvalidKey { .. } => 5003,
            Error::Serialization { .. } => 5004,
        }
    }

    /// Stable symbolic name of the code.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::DimensionMismatch { .. } => "DIMENSION_MISMATCH",
            Error::NonFiniteValue { .. } => "NON_FINITE_VALUE",
            Error::LengthMismatch { .. } => "LENGTH_MISMATCH",
            Error::InvalidId { .. } => "INVALID_ID",
            Error::DuplicateId { .. } => "DUPLICATE_ID",
            Error::InvalidPayload { .. } => "INVALID_PAYLOAD",
            Error::InvalidFilter { .. } => "INVALID_FILTER",
            Error::InvalidArgument { .. } => "INVALID_ARGUMENT",
            Error::CapacityExceeded { .. } => "CAPACITY_EXCEEDED",
            Error::InvalidName { .. } | Error::InvalidSnapshotName { .. } => "INVALID_NAME",
            Error::NotFound { .. } | Error::SnapshotNotFound { .. } => "NOT_FOUND",
            Error::Closed => "CLOSED",
            Error::Poisoned => "POISONED",
            Error::Internal { .. } => "INTERNAL",
            Error::InUse { .. } => "IN_USE",
            Error::Io { .. } => "IO",
            Error::Corrupt { .. } => "CORRUPT",
            Error::WritesDisabled { .. } => "WRITES_DISABLED",
            Error::ConfigMismatch { .. } => "CONFIG_MISMATCH",
            Error::LegacyFormat { .. } => "LEGACY_FORMAT",
            Error::Database { .. } => "DATABASE",
            Error::InvalidKey { .. } => "INVALID_KEY",
            Error::Serialization { .. } => "SERIALIZATION",
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            Error::DimensionMismatch { .. } => ErrorClass::VectorDimensionError,
            Error::InUse { .. }
            | Error::Io { .. }
            | Error::Corrupt { .. }
            | Error::WritesDisabled { .. }
            | Error::ConfigMismatch { .. }
            | Error::LegacyFormat { .. }
            | Error::Database { .. }
            | Error::InvalidKey { .. }
            | Error::Serialization { .. } => ErrorClass::PersistenceError,
            _ => ErrorClass::VectorStoreError,
        }
    }

    /// Structured fields the JavaScript error class exposes as properties.
    pub fn details(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Error::DimensionMismatch {
                expected,
                actual,
                index,
            } => json!({
                "expectedDimension": expected,
                "actualDimension": actual,
                "index": index.0,
            }),
            Error::NonFiniteValue {
                index, position, ..
            } => json!({ "index": index.0, "position": position }),
            Error::LengthMismatch {
                vectors,
                ids,
                payloads,
            } => json!({ "vectors": vectors, "ids": ids, "payloads": payloads }),
            Error::InvalidId { index, .. }
            | Error::InvalidPayload { index, .. }
            | Error::InvalidKey { index, .. } => {
                json!({ "index": index.0 })
            }
            Error::DuplicateId { first, second, .. } => {
                json!({ "first": first, "second": second })
            }
            Error::CapacityExceeded {
                max,
                current,
                adding,
            } => json!({ "maxVectors": max, "current": current, "adding": adding }),
            Error::InvalidArgument { name, .. } => json!({ "argument": name }),
            Error::InUse { path } => json!({ "path": path }),
            Error::SnapshotNotFound { snapshot } => json!({ "snapshot": snapshot }),
            Error::InvalidSnapshotName { name, .. } => json!({ "name": name }),
            Error::Io {
                operation,
                path,
                source,
            } => json!({
                "path": path,
                "ioOperation": operation,
                "osError": source.raw_os_error(),
                "ioKind": format!("{:?}", source.kind()),
            }),
            Error::Corrupt { file, offset, .. } => json!({ "file": file, "offset": offset }),
            Error::LegacyFormat { file, .. } | Error::Database { file, .. } => {
                json!({ "file": file })
            }
            _ => json!({}),
        }
    }

    /// The message with the whole `source()` chain folded in.
    pub fn full_message(&self) -> String {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        message
    }
}

impl Error {
    pub(crate) fn io(
        operation: &'static str,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            operation,
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn corrupt(file: &std::path::Path, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            file: file.display().to_string(),
            offset,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_stable() {
        let samples = [
            Error::DimensionMismatch {
                expected: 3,
                actual: 2,
                index: BatchIndex(None),
            },
            Error::NonFiniteValue {
                index: BatchIndex(Some(1)),
                position: 0,
                value: f32::NAN,
            },
            Error::LengthMismatch {
                vectors: 1,
                ids: 2,
                payloads: 3,
            },
            Error::InvalidId {
                index: BatchIndex(None),
                reason: String::new(),
            },
            Error::DuplicateId {
                id: "a".into(),
                first: 0,
                second: 1,
            },
            Error::InvalidPayload {
                index: BatchIndex(None),
                reason: String::new(),
            },
            Error::InvalidFilter {
                reason: String::new(),
            },
            Error::InvalidArgument {
                name: "limit",
                reason: String::new(),
            },
            Error::CapacityExceeded {
                max: 1,
                current: 1,
                adding: 1,
            },
            Error::InvalidName {
                name: String::new(),
                reason: "",
            },
            Error::NotFound { id: "1".into() },
            Error::Closed,
            Error::Poisoned,
            Error::Internal {
                reason: String::new(),
            },
            Error::InUse {
                path: String::new(),
            },
            Error::Io {
                operation: "write",
                path: String::new(),
                source: std::io::Error::other("x"),
            },
            Error::Corrupt {
                file: String::new(),
                offset: 0,
                reason: String::new(),
            },
            Error::WritesDisabled {
                reason: String::new(),
            },
            Error::ConfigMismatch {
                reason: String::new(),
            },
            Error::LegacyFormat {
                file: String::new(),
                reason: String::new(),
            },
            Error::Database {
                file: String::new(),
                reason: String::new(),
            },
            Error::InvalidKey {
                index: BatchIndex(None),
                reason: String::new(),
            },
            Error::Serialization {
                reason: String::new(),
            },
        ];
        let codes: Vec<u32> = samples.iter().map(Error::code).collect();
        assert_eq!(
            codes,
            [
                1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                5001, 5002, 5006, 5007, 5008, 5009, 5005, 5003, 5004
            ]
        );
        let table: Vec<(&str, u32)> = samples.iter().map(|e| (e.kind(), e.code())).collect();
        assert_eq!(table, all_codes());
        let mut kinds: Vec<&str> = samples.iter().map(Error::kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), samples.len());
    }

    #[test]
    fn dimension_error_names_both_dimensions() {
        let err = Error::DimensionMismatch {
            expected: 1536,
            actual: 3,
            index: BatchIndex(Some(4)),
        };
        assert_eq!(
            err.to_string(),
            "vector at batch index 4 has dimension 3, expected 1536"
        );
        assert_eq!(err.class(), ErrorClass::VectorDimensionError);
        assert_eq!(err.details()["expectedDimension"], 1536);
        assert_eq!(err.details()["actualDimension"], 3);
    }
}

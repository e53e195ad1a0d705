//! annvault's engine: collections of vectors with JSON payloads, exact
//! search, payload filters. No Node.js dependency: the napi binding at the
//! repository root is a thin layer over this crate.

pub mod ann;
pub mod collection;
pub mod distance;
pub mod error;
#[cfg(feature = "faiss")]
pub mod faiss_index;
pub mod filter;
pub mod flat;
pub mod formats;
pub mod hnsw;
pub mod id;
pub mod journal;
pub mod kv;
pub mod matches;
pub mod op;
pub mod progress;
pub mod snapshots;
pub mod sqlite_kv;
pub mod storage;
pub mod store;
#[doc(hidden)]
pub mod testing;

pub use ann::{
    parse_ef_search, Algorithm, AnnConfig, FaissParams, HnswParams, IndexStats, Quantization,
    MAX_EF,
};
pub use collection::{
    check_vector, parse_limit, parse_payload, parse_payloads, positive_integer, Collection,
    CollectionConfig, Hit, Page, Payload, PointBatch, Record, MAX_DIMENSION, MAX_JSON_DEPTH,
};
pub use distance::Distance;
pub use error::{BatchIndex, Error, ErrorClass, Result};
pub use filter::Filter;
pub use id::{PointId, MAX_ID_BYTES};
pub use store::{validate_collection_name, Store, StoreOptions, WriteTicket, MAX_NAME_BYTES};

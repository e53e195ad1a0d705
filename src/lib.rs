//! The Node.js binding of annvault: conversion and validation at the edge,
//! every call that may take more than a moment on the libuv pool. All logic
//! lives in `annvault-core`; the JS façade (`index.js`) wraps these classes.

#![deny(clippy::all)]

mod error;
mod job;
mod native_kv;
mod native_persistence;
mod native_snapshots;
mod native_store;
mod point_id;
mod sqlite_kv;
mod validation;

pub use error::error_codes;
pub use native_kv::{open_kv, KvConfig, KvEntryOut, KvStatsOut, KvWriteIn, NativeKv};
pub use native_persistence::NativeSaveDir;
pub use native_store::{open_store, NativeStore, StoreConfig};
pub use sqlite_kv::{open_sqlite_kv, SqliteKv};
pub use validation::{
    check_collection_name, check_filter, check_limits, check_payload, check_point_id, check_points,
    check_query,
};

/// Only the addon's own Rust allocations go through it; Node, V8 and the
/// C++ graph engine keep their allocators.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

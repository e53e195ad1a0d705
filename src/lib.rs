//! The Node.js binding of annvault: conversion and validation at the edge,
//! every call that may take more than a moment on the libuv pool. All logic
//! lives in `annvault-core`; the JS façade (`index.js`) wraps these classes.

#![deny(clippy::all)]

mod error;
mod job;
mod native_store;
mod point_id;

pub use error::error_codes;
pub use native_store::{open_store, NativeStore, StoreConfig};

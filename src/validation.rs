//! The collection's input rules, for backends that store points elsewhere
//! (the PostgreSQL + pgvector store in `lib/pgvector.ts`): the same checks,
//! in the same order, with the same errors as a write to a native store, so
//! both backends refuse the same input the same way.

use annvault_core::storage::directory::{DirOptions, Durability, RecoveryMode};
use annvault_core::{
    check_vector, parse_ef_search, parse_limit, parse_payload, parse_payloads, positive_integer,
    validate_collection_name, BatchIndex, Filter, PointBatch,
};
use napi::bindgen_prelude::{AsyncTask, Float32Array, Uint32Array};
use napi_derive::napi;

use crate::error::to_js_error;
use crate::job::Job;
use crate::point_id::{check_all, JsPointId};

/// Checks a batch as `insert` would (dimension, finite values, ids, duplicate
/// ids, payloads).
#[napi(
    catch_unwind,
    ts_args_type = "dimension: number, vectors: Float32Array, lengths: Uint32Array, ids: Array<string | number>, payloads: string",
    ts_return_type = "Promise<void>"
)]
pub fn check_points(
    dimension: u32,
    vectors: Float32Array,
    lengths: Uint32Array,
    ids: Vec<JsPointId>,
    payloads: String,
) -> AsyncTask<Job<()>> {
    AsyncTask::new(Job::new("insert", move || {
        let ids = check_all(ids)?;
        let payloads = parse_payloads(&payloads)?;
        PointBatch::new(
            dimension as usize,
            ids,
            vectors.to_vec(),
            &lengths,
            payloads,
        )
        .map(|_| ())
    }))
}

/// Checks a query vector as `search` would.
#[napi(catch_unwind)]
pub fn check_query(dimension: u32, vector: Float32Array, operation: String) -> napi::Result<()> {
    check_vector(&vector, dimension as usize, BatchIndex(None))
        .map_err(|e| to_js_error(e, &operation))
}

/// Checks one id as `get`, `update` and `delete` would.
#[napi(catch_unwind, ts_args_type = "id: string | number, operation: string")]
pub fn check_point_id(id: JsPointId, operation: String) -> napi::Result<()> {
    id.check(BatchIndex(None))
        .map(|_| ())
        .map_err(|e| to_js_error(e, &operation))
}

/// Checks one payload as `update` would.
#[napi(catch_unwind)]
pub fn check_payload(payload: String, operation: String) -> napi::Result<()> {
    parse_payload(&payload)
        .map(|_| ())
        .map_err(|e| to_js_error(e, &operation))
}

/// Checks a filter as `search` and `list` would.
#[napi(catch_unwind)]
pub fn check_filter(filter: String, operation: String) -> napi::Result<()> {
    Filter::parse(&filter)
        .map(|_| ())
        .map_err(|e| to_js_error(e, &operation))
}

/// Checks a search's or list's `limit` (and a search's `efSearch`) as a
/// native store would; returns the limit.
#[napi(catch_unwind)]
pub fn check_limits(limit: f64, ef_search: Option<f64>, operation: String) -> napi::Result<u32> {
    let checked = parse_limit(limit).and_then(|limit| {
        ef_search.map(parse_ef_search).transpose()?;
        Ok(limit)
    });
    checked
        .map(|limit| limit as u32)
        .map_err(|e| to_js_error(e, &operation))
}

/// Checks a collection name as opening a native store would.
#[napi(catch_unwind)]
pub fn check_collection_name(name: String, operation: String) -> napi::Result<()> {
    validate_collection_name(&name).map_err(|e| to_js_error(e, &operation))
}

/// One of a few named settings; absent: the first.
pub(crate) fn choice<T: Copy>(
    name: &'static str,
    value: Option<&str>,
    choices: &[(&str, T)],
) -> annvault_core::Result<T> {
    let Some(value) = value else {
        return Ok(choices[0].1);
    };
    choices
        .iter()
        .find(|(n, _)| *n == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| annvault_core::Error::InvalidArgument {
            name,
            reason: format!(
                "expected one of {}, got {value:?}",
                choices
                    .iter()
                    .map(|(n, _)| format!("'{n}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
}

/// The durability, recovery, compression and checkpoint settings of a
/// persisted directory, as vector stores and key-value tables take them.
pub(crate) fn dir_options(
    durability: Option<&str>,
    recovery: Option<&str>,
    compression: Option<&str>,
    checkpoint_wal_bytes: Option<f64>,
) -> annvault_core::Result<DirOptions> {
    let durability = choice(
        "durability",
        durability,
        &[("fsync", Durability::Fsync), ("flush", Durability::Flush)],
    )?;
    let recovery = choice(
        "recovery",
        recovery,
        &[
            ("strict", RecoveryMode::Strict),
            ("truncate", RecoveryMode::Truncate),
        ],
    )?;
    let (gzip, brotli) = choice(
        "compression",
        compression,
        &[
            ("none", (false, false)),
            ("gzip", (true, false)),
            ("brotli", (false, true)),
        ],
    )?;
    let checkpoint_wal_bytes = match checkpoint_wal_bytes {
        Some(bytes) => positive_integer("checkpointWalBytes", bytes)? as u64,
        None => DirOptions::default().checkpoint_wal_bytes,
    };
    Ok(DirOptions {
        durability,
        recovery,
        gzip,
        brotli,
        checkpoint_wal_bytes,
    })
}

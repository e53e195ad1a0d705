//! What the benches share: the criterion settings, and (from
//! `annvault_core::testing`, which the tests use too) deterministic data
//! (splitmix64, clusters), payload and batch builders. Each bench takes
//! it in with `mod common;` (`#[macro_use]` for `criterion_benches!`); as
//! `benches/common/mod.rs` it is no bench itself.

// Every bench uses its own part of it (`engines` no criterion, no batches).
#![allow(dead_code, unused_imports)]

use std::time::Duration;

use annvault_core::{CollectionConfig, Distance};
use criterion::Criterion;

/// Seeded data and builders shared with the tests.
pub use annvault_core::testing::{batch, payload, Clusters, Rng};

/// A cosine collection of `dim` dimensions, no size limit.
pub fn cosine_config(dim: usize) -> CollectionConfig {
    CollectionConfig::new(dim, Distance::Cosine, None).expect("config")
}

/// The criterion settings of the micro-benchmarks: half a second of warm-up,
/// then `sample_size` samples over `measurement`.
pub fn criterion_config(sample_size: usize, measurement: Duration) -> Criterion {
    Criterion::default()
        .sample_size(sample_size)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(measurement)
}

/// The `criterion_group!` + `criterion_main!` of a micro-benchmark file:
/// one group `benches` that runs `targets` with the settings `config`.
#[allow(unused_macros)] // `engines` is a plain program, no criterion bench
macro_rules! criterion_benches {
    ($config:expr; $($target:path),+ $(,)?) => {
        criterion::criterion_group! {
            name = benches;
            config = $config;
            targets = $($target),+
        }
        criterion::criterion_main!(benches);
    };
}

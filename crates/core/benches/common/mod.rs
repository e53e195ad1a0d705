//! What the benches share: deterministic data (splitmix64), collection,
//! payload and batch builders, and the criterion settings. Each bench takes
//! it in with `mod common;` (`#[macro_use]` for `criterion_benches!`); as
//! `benches/common/mod.rs` it is no bench itself.

// Every bench uses its own part of it (`engines` no criterion, no batches).
#![allow(dead_code)]

use std::time::Duration;

use annvault_core::{distance, CollectionConfig, Distance, Payload, PointBatch, PointId};
use criterion::Criterion;
use serde_json::Value;

/// splitmix64: deterministic data without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn signed(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// Uniform in (0, 1].
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn gaussian(&mut self) -> f32 {
        let (u, v) = (self.unit(), self.unit());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }

    /// `dim` values uniform in [-1, 1), scaled to unit length.
    pub fn unit_vector(&mut self, dim: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dim).map(|_| self.signed()).collect();
        normalize(&mut v);
        v
    }

    /// `count` unit vectors back to back (row-major, `count × dim`).
    pub fn unit_vectors(&mut self, count: usize, dim: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(count * dim);
        for _ in 0..count {
            out.extend_from_slice(&self.unit_vector(dim));
        }
        out
    }
}

/// Scales `v` to unit length (a zero vector stays as it is).
pub fn normalize(v: &mut [f32]) {
    let inv = distance::inverse_norm(v);
    v.iter_mut().for_each(|x| *x *= inv);
}

/// A cosine collection of `dim` dimensions, no size limit.
pub fn cosine_config(dim: usize) -> CollectionConfig {
    CollectionConfig::new(dim, Distance::Cosine, None).expect("config")
}

/// A payload holding `fields` in that order.
pub fn payload<const N: usize>(fields: [(&str, Value); N]) -> Payload {
    fields
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
}

/// A batch of `ids.len()` points of `dim` dimensions each, `vectors` back to
/// back.
pub fn batch(
    dim: usize,
    ids: Vec<PointId>,
    vectors: Vec<f32>,
    payloads: Vec<Payload>,
) -> PointBatch {
    let lengths = vec![dim as u32; ids.len()];
    PointBatch::new(dim, ids, vectors, &lengths, payloads).expect("valid batch")
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

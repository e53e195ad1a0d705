//! Distance functions and the f32 kernels behind them.
//!
//! Scores are "higher is closer" for every metric:
//! - `Cosine`: cosine similarity in [-1, 1] (0 when either vector is all zeros);
//! - `Dot`: the dot product;
//! - `Euclidean`: `1 / (1 + d)` with `d` the Euclidean distance, in (0, 1].
//!
//! The kernels keep 16 independent accumulators so that the loop vectorises
//! without reassociation from the compiler. On x86_64 the same loop is also
//! compiled with AVX2 + FMA and picked at run time when the CPU has them.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Distance {
    #[default]
    Cosine,
    Dot,
    Euclidean,
}

impl Distance {
    /// Parses a distance name. Names are matched ignoring ASCII case
    /// (`"cosine"`, `"COSINE"` and `"Cosine"` are the same); [`Distance::name`]
    /// gives the canonical spelling.
    pub fn parse(name: &str) -> Result<Self> {
        [Distance::Cosine, Distance::Dot, Distance::Euclidean]
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::InvalidArgument {
                name: "distance",
                reason: format!(
                    "expected 'Cosine', 'Dot' or 'Euclidean' (any letter case), got {name:?}"
                ),
            })
    }

    pub fn name(self) -> &'static str {
        match self {
            Distance::Cosine => "Cosine",
            Distance::Dot => "Dot",
            Distance::Euclidean => "Euclidean",
        }
    }
}

const LANES: usize = 16;

#[inline(always)]
fn dot_lanes<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let (a_chunks, a_rest) = a.as_chunks::<LANES>();
    let (b_chunks, b_rest) = b.as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for i in 0..LANES {
            acc[i] = if FMA {
                x[i].mul_add(y[i], acc[i])
            } else {
                acc[i] + x[i] * y[i]
            };
        }
    }
    let mut sum = reduce(acc);
    for (x, y) in a_rest.iter().zip(b_rest) {
        sum += x * y;
    }
    sum
}

#[inline(always)]
fn l2_squared_lanes<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let (a_chunks, a_rest) = a.as_chunks::<LANES>();
    let (b_chunks, b_rest) = b.as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] = if FMA {
                d.mul_add(d, acc[i])
            } else {
                acc[i] + d * d
            };
        }
    }
    let mut sum = reduce(acc);
    for (x, y) in a_rest.iter().zip(b_rest) {
        let d = x - y;
        sum += d * d;
    }
    sum
}

#[inline(always)]
fn reduce(acc: [f32; LANES]) -> f32 {
    // Pairwise, so the tree matches what the SIMD lanes hold.
    let mut width = LANES;
    let mut acc = acc;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] += acc[i + width];
        }
    }
    acc[0]
}

/// The AVX2 + FMA kernels: four independent 8-wide accumulators, so that
/// consecutive FMAs do not wait on each other's latency (one accumulator
/// chain left the loop latency-bound, at about a third of the FMA
/// throughput), then one 8-wide step at a time, then the scalar rest.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    fn sum(v: __m256) -> f32 {
        let pair = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let pair = _mm_add_ps(pair, _mm_movehl_ps(pair, pair));
        let one = _mm_add_ss(pair, _mm_shuffle_ps::<0b01>(pair, pair));
        _mm_cvtss_f32(one)
    }

    /// `Σ f(a[i], b[i])` for a lane-wise `f` that accumulates into its
    /// third argument.
    #[target_feature(enable = "avx2,fma")]
    fn accumulate(
        a: &[f32],
        b: &[f32],
        step: impl Fn(__m256, __m256, __m256) -> __m256,
        scalar: impl Fn(f32, f32) -> f32,
    ) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY: every load reads 8 floats at an offset below `n - 7`.
        unsafe {
            while i + 32 <= n {
                for (k, lane) in acc.iter_mut().enumerate() {
                    let x = _mm256_loadu_ps(pa.add(i + 8 * k));
                    let y = _mm256_loadu_ps(pb.add(i + 8 * k));
                    *lane = step(x, y, *lane);
                }
                i += 32;
            }
            while i + 8 <= n {
                let x = _mm256_loadu_ps(pa.add(i));
                let y = _mm256_loadu_ps(pb.add(i));
                acc[0] = step(x, y, acc[0]);
                i += 8;
            }
        }
        let total = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut result = sum(total);
        for j in i..n {
            result += scalar(a[j], b[j]);
        }
        result
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
        accumulate(a, b, |x, y, acc| _mm256_fmadd_ps(x, y, acc), |x, y| x * y)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
        accumulate(
            a,
            b,
            |x, y, acc| {
                let d = _mm256_sub_ps(x, y);
                _mm256_fmadd_ps(d, d, acc)
            },
            |x, y| (x - y) * (x - y),
        )
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    use std::sync::OnceLock;
    static DETECTED: OnceLock<bool> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    })
}

/// Dot product of two equal-length slices.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports avx2 and fma (checked above).
        return unsafe { avx2::dot(a, b) };
    }
    dot_lanes::<false>(a, b)
}

/// Squared Euclidean distance of two equal-length slices.
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports avx2 and fma (checked above).
        return unsafe { avx2::l2_squared(a, b) };
    }
    l2_squared_lanes::<false>(a, b)
}

#[inline(always)]
fn dot_i8_lanes(a: &[i8], b: &[i8]) -> i32 {
    debug_assert_eq!(a.len(), b.len());
    let (a_chunks, a_rest) = a.as_chunks::<32>();
    let (b_chunks, b_rest) = b.as_chunks::<32>();
    let mut acc = [0i32; 32];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for i in 0..32 {
            acc[i] += x[i] as i32 * y[i] as i32;
        }
    }
    let mut sum: i32 = acc.iter().sum();
    for (x, y) in a_rest.iter().zip(b_rest) {
        sum += *x as i32 * *y as i32;
    }
    sum
}

/// The same loop, vectorised with AVX2 by the compiler.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_i8_avx2(a: &[i8], b: &[i8]) -> i32 {
    dot_i8_lanes(a, b)
}

/// Dot product of two equal-length 8-bit code vectors (exact: at most
/// 127² per component, so no overflow below 130,000 dimensions).
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports avx2 (checked above).
        return unsafe { dot_i8_avx2(a, b) };
    }
    dot_i8_lanes(a, b)
}

/// `v` as 8-bit codes and the scale that maps them back (`v[i] ≈
/// scale * code[i]`), appended to `codes`; the scale is 0 for the zero
/// vector.
pub fn quantize_i8(v: &[f32], codes: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        codes.extend(std::iter::repeat_n(0, v.len()));
        return 0.0;
    }
    let scale = max / 127.0;
    codes.extend(
        v.iter()
            .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8),
    );
    scale
}

/// `1 / ‖v‖`, or 0 for the zero vector (so its cosine with anything is 0).
#[inline]
pub fn inverse_norm(v: &[f32]) -> f32 {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 && norm.is_finite() {
        1.0 / norm
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_ignoring_ascii_case_only() {
        for (name, expected) in [
            ("Cosine", Distance::Cosine),
            ("cosine", Distance::Cosine),
            ("COSINE", Distance::Cosine),
            ("dOt", Distance::Dot),
            ("euclidean", Distance::Euclidean),
        ] {
            assert_eq!(Distance::parse(name).unwrap(), expected, "{name}");
        }
        for bad in ["", "Cos", "Cosine ", "Euclid", "L2", "\u{212A}osine"] {
            assert_eq!(Distance::parse(bad).unwrap_err().code(), 1008, "{bad:?}");
        }
    }

    fn naive_dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    fn sample(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 500.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn kernels_match_naive_sums_at_every_length_around_the_lane_width() {
        for len in 0..70 {
            let a = sample(len, 1);
            let b = sample(len, 7);
            let expected = naive_dot(&a, &b);
            assert!(
                (dot(&a, &b) as f64 - expected).abs() < 1e-3,
                "dot len {len}"
            );
            assert!((dot_lanes::<false>(&a, &b) as f64 - expected).abs() < 1e-3);
            let l2: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
                .sum();
            assert!(
                (l2_squared(&a, &b) as f64 - l2).abs() < 1e-3,
                "l2 len {len}"
            );
            assert!((l2_squared_lanes::<false>(&a, &b) as f64 - l2).abs() < 1e-3);
        }
    }

    #[test]
    fn the_8_bit_dot_is_exact_and_quantized_vectors_keep_their_dot() {
        for len in [0, 1, 31, 32, 33, 384, 1000] {
            let a: Vec<i8> = (0..len).map(|i| (i * 37 % 255 - 127) as i8).collect();
            let b: Vec<i8> = (0..len).map(|i| (i * 91 % 255 - 127) as i8).collect();
            let exact: i32 = a.iter().zip(&b).map(|(x, y)| *x as i32 * *y as i32).sum();
            assert_eq!(dot_i8(&a, &b), exact, "len {len}");
            assert_eq!(dot_i8_lanes(&a, &b), exact);
        }
        let (x, y) = (sample(384, 3), sample(384, 11));
        let (mut cx, mut cy) = (Vec::new(), Vec::new());
        let (sx, sy) = (quantize_i8(&x, &mut cx), quantize_i8(&y, &mut cy));
        let approx = sx * sy * dot_i8(&cx, &cy) as f32;
        let exact = dot(&x, &y);
        let bound = 384.0 * (sx * sy / 4.0 + sx / 2.0 + sy / 2.0);
        assert!((approx - exact).abs() <= bound, "{approx} vs {exact}");
        let mut zero = Vec::new();
        assert_eq!(quantize_i8(&[0.0; 4], &mut zero), 0.0);
        assert_eq!(zero, [0; 4]);
    }

    #[test]
    fn zero_vector_has_zero_inverse_norm() {
        assert_eq!(inverse_norm(&[0.0; 8]), 0.0);
        assert!((inverse_norm(&[3.0, 4.0]) - 0.2).abs() < 1e-7);
    }

    #[test]
    fn distance_names_parse() {
        assert_eq!(Distance::parse("Cosine").unwrap(), Distance::Cosine);
        assert_eq!(Distance::parse("euclidean").unwrap(), Distance::Euclidean);
        assert_eq!(Distance::parse("Manhattan").unwrap_err().code(), 1008);
    }
}

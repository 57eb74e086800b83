//! Distance metrics and their kernels.
//!
//! Every kernel has a scalar reference ([`Kernels::scalar`]) and, where the CPU has it, a SIMD
//! version chosen once at run time ([`Kernels::detected`]): AVX2 with FMA on x86-64. The
//! workspace builds with `target-cpu=native`, but the choice is still made by run-time
//! detection, so a binary copied to an older CPU falls back to the scalar kernels.
//!
//! Distances are "lower is closer" everywhere inside the index: cosine is `1 - dot` of
//! vectors normalized at insert, dot is `-dot`, and l2 is the squared Euclidean distance.

use std::sync::OnceLock;

/// How closeness between two vectors is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Cosine similarity: vectors are normalized at insert and compared by dot product.
    Cosine,
    /// Inner product, unnormalized.
    Dot,
    /// Euclidean distance (compared squared).
    L2,
}

impl Metric {
    /// The distance from `a` to `b` (lower is closer), with the detected kernels. For cosine,
    /// both vectors must already be normalized.
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        self.distance_with(Kernels::detected(), a, b)
    }

    /// The distance from `a` to `b` computed with the given kernels.
    pub fn distance_with(self, kernels: &Kernels, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::Cosine => 1.0 - (kernels.dot)(a, b),
            Metric::Dot => -(kernels.dot)(a, b),
            Metric::L2 => (kernels.l2_squared)(a, b),
        }
    }

    /// Turns an index distance into the score users see (higher is closer): cosine
    /// similarity, the inner product, or the (unsquared) Euclidean distance negated.
    pub fn score(self, distance: f32) -> f32 {
        match self {
            Metric::Cosine => 1.0 - distance,
            Metric::Dot => -distance,
            Metric::L2 => -distance.max(0.0).sqrt(),
        }
    }

    /// The metric's name as the API spells it.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Dot => "dot",
            Metric::L2 => "l2",
        }
    }

    /// Parses the API spelling of a metric.
    pub fn from_name(name: &str) -> Option<Metric> {
        match name {
            "cosine" => Some(Metric::Cosine),
            "dot" => Some(Metric::Dot),
            "l2" => Some(Metric::L2),
            _ => None,
        }
    }
}

/// Scales `vector` to unit length in place; returns false (and leaves it) when it is zero.
pub fn normalize(vector: &mut [f32]) -> bool {
    let norm = scalar::dot(vector, vector).sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return false;
    }
    let inverse = 1.0 / norm;
    vector.iter_mut().for_each(|value| *value *= inverse);
    true
}

/// One set of distance kernels. The slices passed in must have equal lengths; a longer one is
/// read only up to the shorter one's length.
#[derive(Debug)]
pub struct Kernels {
    /// Which instruction set these kernels use: "scalar" or "avx2+fma".
    pub name: &'static str,
    /// Inner product of two f32 vectors.
    pub dot: fn(&[f32], &[f32]) -> f32,
    /// Squared Euclidean distance of two f32 vectors.
    pub l2_squared: fn(&[f32], &[f32]) -> f32,
    /// Inner product of f32 weights with u8 codes (the int8 quantizer's asymmetric distance).
    pub dot_u8: fn(&[f32], &[u8]) -> f32,
    /// Inner products of one query with four vectors at once: the query is loaded once, and
    /// four memory streams are in flight together.
    pub dot4: fn(&[f32], [&[f32]; 4]) -> [f32; 4],
    /// Squared Euclidean distances of one query to four vectors at once.
    pub l2_squared4: fn(&[f32], [&[f32]; 4]) -> [f32; 4],
    /// [`Kernels::dot_u8`] of one set of weights with four code vectors at once.
    pub dot_u8x4: fn(&[f32], [&[u8]; 4]) -> [f32; 4],
}

static SCALAR: Kernels = Kernels {
    name: "scalar",
    dot: scalar::dot,
    l2_squared: scalar::l2_squared,
    dot_u8: scalar::dot_u8,
    dot4: scalar::dot4,
    l2_squared4: scalar::l2_squared4,
    dot_u8x4: scalar::dot_u8x4,
};

impl Kernels {
    /// The portable reference kernels.
    pub fn scalar() -> &'static Kernels {
        &SCALAR
    }

    /// The fastest kernels this CPU supports, detected once.
    pub fn detected() -> &'static Kernels {
        static DETECTED: OnceLock<&'static Kernels> = OnceLock::new();
        DETECTED.get_or_init(detect)
    }
}

#[cfg(target_arch = "x86_64")]
fn detect() -> &'static Kernels {
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        &x86::AVX2
    } else {
        &SCALAR
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> &'static Kernels {
    &SCALAR
}

/// The scalar reference kernels, written so the compiler can vectorize them for the baseline
/// target, and kept simple enough to trust.
pub mod scalar {
    /// Inner product.
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        // Eight partial sums break the dependency chain, as the SIMD kernels do.
        let mut sums = [0.0f32; 8];
        let chunks_a = a.chunks_exact(8);
        let chunks_b = b.chunks_exact(8);
        let (tail_a, tail_b) = (chunks_a.remainder(), chunks_b.remainder());
        for (x, y) in chunks_a.zip(chunks_b) {
            for lane in 0..8 {
                sums[lane] += x[lane] * y[lane];
            }
        }
        let mut total: f32 = sums.iter().sum();
        for (x, y) in tail_a.iter().zip(tail_b) {
            total += x * y;
        }
        total
    }

    /// Squared Euclidean distance.
    pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
        let mut sums = [0.0f32; 8];
        let chunks_a = a.chunks_exact(8);
        let chunks_b = b.chunks_exact(8);
        let (tail_a, tail_b) = (chunks_a.remainder(), chunks_b.remainder());
        for (x, y) in chunks_a.zip(chunks_b) {
            for lane in 0..8 {
                let difference = x[lane] - y[lane];
                sums[lane] += difference * difference;
            }
        }
        let mut total: f32 = sums.iter().sum();
        for (x, y) in tail_a.iter().zip(tail_b) {
            let difference = x - y;
            total += difference * difference;
        }
        total
    }

    /// Inner products of one query with four vectors.
    pub fn dot4(query: &[f32], vectors: [&[f32]; 4]) -> [f32; 4] {
        vectors.map(|vector| dot(query, vector))
    }

    /// Squared Euclidean distances of one query to four vectors.
    pub fn l2_squared4(query: &[f32], vectors: [&[f32]; 4]) -> [f32; 4] {
        vectors.map(|vector| l2_squared(query, vector))
    }

    /// Inner products of f32 weights with four code vectors.
    pub fn dot_u8x4(weights: &[f32], codes: [&[u8]; 4]) -> [f32; 4] {
        codes.map(|codes| dot_u8(weights, codes))
    }

    /// Inner product of f32 weights with u8 codes.
    pub fn dot_u8(weights: &[f32], codes: &[u8]) -> f32 {
        let mut sums = [0.0f32; 8];
        let chunks_a = weights.chunks_exact(8);
        let chunks_b = codes.chunks_exact(8);
        let (tail_a, tail_b) = (chunks_a.remainder(), chunks_b.remainder());
        for (x, y) in chunks_a.zip(chunks_b) {
            for lane in 0..8 {
                sums[lane] += x[lane] * f32::from(y[lane]);
            }
        }
        let mut total: f32 = sums.iter().sum();
        for (x, y) in tail_a.iter().zip(tail_b) {
            total += x * f32::from(*y);
        }
        total
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! AVX2 + FMA kernels: four 8-lane accumulators (32 floats per step), scalar tail.

    use std::arch::x86_64::*;

    use super::Kernels;

    pub(super) static AVX2: Kernels = Kernels {
        name: "avx2+fma",
        dot: dot_entry,
        l2_squared: l2_entry,
        dot_u8: dot_u8_entry,
        dot4: dot4_entry,
        l2_squared4: l2_squared4_entry,
        dot_u8x4: dot_u8x4_entry,
    };

    fn dot_entry(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: `AVX2` is only handed out by `detect` after checking avx2 and fma.
        unsafe { dot(a, b) }
    }

    fn l2_entry(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: as in `dot_entry`.
        unsafe { l2_squared(a, b) }
    }

    fn dot4_entry(query: &[f32], vectors: [&[f32]; 4]) -> [f32; 4] {
        // SAFETY: as in `dot_entry`.
        unsafe { dot4(query, vectors) }
    }

    fn l2_squared4_entry(query: &[f32], vectors: [&[f32]; 4]) -> [f32; 4] {
        // SAFETY: as in `dot_entry`.
        unsafe { l2_squared4(query, vectors) }
    }

    fn dot_u8x4_entry(weights: &[f32], codes: [&[u8]; 4]) -> [f32; 4] {
        // SAFETY: as in `dot_entry`.
        unsafe { dot_u8x4(weights, codes) }
    }

    fn dot_u8_entry(weights: &[f32], codes: &[u8]) -> f32 {
        // SAFETY: as in `dot_entry`.
        unsafe { dot_u8(weights, codes) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn horizontal_sum(v: __m256) -> f32 {
        let low = _mm256_castps256_ps128(v);
        let high = _mm256_extractf128_ps::<1>(v);
        let sum = _mm_add_ps(low, high);
        let sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
        let sum = _mm_add_ss(sum, _mm_shuffle_ps::<1>(sum, sum));
        _mm_cvtss_f32(sum)
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // SAFETY: every load reads 8 floats at offset i with i + 8 <= n, inside both slices.
        unsafe {
            let mut acc = [_mm256_setzero_ps(); 4];
            while i + 32 <= n {
                for (lane, sum) in acc.iter_mut().enumerate() {
                    let offset = i + lane * 8;
                    *sum = _mm256_fmadd_ps(
                        _mm256_loadu_ps(pa.add(offset)),
                        _mm256_loadu_ps(pb.add(offset)),
                        *sum,
                    );
                }
                i += 32;
            }
            while i + 8 <= n {
                acc[0] = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i)),
                    _mm256_loadu_ps(pb.add(i)),
                    acc[0],
                );
                i += 8;
            }
            let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
            let mut total = horizontal_sum(sum);
            while i < n {
                total += *pa.add(i) * *pb.add(i);
                i += 1;
            }
            total
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot4(query: &[f32], vectors: [&[f32]; 4]) -> [f32; 4] {
        let n = vectors
            .iter()
            .fold(query.len(), |n, vector| n.min(vector.len()));
        let pq = query.as_ptr();
        let pointers = vectors.map(<[f32]>::as_ptr);
        let mut i = 0;
        // SAFETY: every load reads 8 floats at offset i with i + 8 <= n, inside the query and
        // all four vectors; the tail reads single floats below n.
        unsafe {
            let mut acc = [_mm256_setzero_ps(); 4];
            while i + 8 <= n {
                let q = _mm256_loadu_ps(pq.add(i));
                for (sum, pointer) in acc.iter_mut().zip(pointers) {
                    *sum = _mm256_fmadd_ps(q, _mm256_loadu_ps(pointer.add(i)), *sum);
                }
                i += 8;
            }
            let mut totals = acc.map(|sum| horizontal_sum(sum));
            while i < n {
                for (total, pointer) in totals.iter_mut().zip(pointers) {
                    *total += *pq.add(i) * *pointer.add(i);
                }
                i += 1;
            }
            totals
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn l2_squared4(query: &[f32], vectors: [&[f32]; 4]) -> [f32; 4] {
        let n = vectors
            .iter()
            .fold(query.len(), |n, vector| n.min(vector.len()));
        let pq = query.as_ptr();
        let pointers = vectors.map(<[f32]>::as_ptr);
        let mut i = 0;
        // SAFETY: as in `dot4`: every load stays below n in the query and all four vectors.
        unsafe {
            let mut acc = [_mm256_setzero_ps(); 4];
            while i + 8 <= n {
                let q = _mm256_loadu_ps(pq.add(i));
                for (sum, pointer) in acc.iter_mut().zip(pointers) {
                    let difference = _mm256_sub_ps(q, _mm256_loadu_ps(pointer.add(i)));
                    *sum = _mm256_fmadd_ps(difference, difference, *sum);
                }
                i += 8;
            }
            let mut totals = acc.map(|sum| horizontal_sum(sum));
            while i < n {
                for (total, pointer) in totals.iter_mut().zip(pointers) {
                    let difference = *pq.add(i) - *pointer.add(i);
                    *total += difference * difference;
                }
                i += 1;
            }
            totals
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // SAFETY: every load reads 8 floats at offset i with i + 8 <= n, inside both slices.
        unsafe {
            let mut acc = [_mm256_setzero_ps(); 4];
            while i + 32 <= n {
                for (lane, sum) in acc.iter_mut().enumerate() {
                    let offset = i + lane * 8;
                    let difference = _mm256_sub_ps(
                        _mm256_loadu_ps(pa.add(offset)),
                        _mm256_loadu_ps(pb.add(offset)),
                    );
                    *sum = _mm256_fmadd_ps(difference, difference, *sum);
                }
                i += 32;
            }
            while i + 8 <= n {
                let difference =
                    _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                acc[0] = _mm256_fmadd_ps(difference, difference, acc[0]);
                i += 8;
            }
            let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
            let mut total = horizontal_sum(sum);
            while i < n {
                let difference = *pa.add(i) - *pb.add(i);
                total += difference * difference;
                i += 1;
            }
            total
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_u8x4(weights: &[f32], codes: [&[u8]; 4]) -> [f32; 4] {
        let n = codes
            .iter()
            .fold(weights.len(), |n, codes| n.min(codes.len()));
        let pw = weights.as_ptr();
        let pointers = codes.map(<[u8]>::as_ptr);
        let mut i = 0;
        // SAFETY: every step reads 8 floats and, per code vector, 8 bytes at offset i with
        // i + 8 <= n; the tail reads single values below n.
        unsafe {
            let mut acc = [_mm256_setzero_ps(); 4];
            while i + 8 <= n {
                let w = _mm256_loadu_ps(pw.add(i));
                for (sum, pointer) in acc.iter_mut().zip(pointers) {
                    let bytes = _mm_loadl_epi64(pointer.add(i).cast::<__m128i>());
                    let values = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
                    *sum = _mm256_fmadd_ps(w, values, *sum);
                }
                i += 8;
            }
            let mut totals = acc.map(|sum| horizontal_sum(sum));
            while i < n {
                for (total, pointer) in totals.iter_mut().zip(pointers) {
                    *total += *pw.add(i) * f32::from(*pointer.add(i));
                }
                i += 1;
            }
            totals
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_u8(weights: &[f32], codes: &[u8]) -> f32 {
        let n = weights.len().min(codes.len());
        let (pw, pc) = (weights.as_ptr(), codes.as_ptr());
        let mut i = 0;
        // SAFETY: every step reads 8 floats and 8 bytes at offset i with i + 8 <= n, inside
        // both slices; `_mm_loadl_epi64` reads exactly 8 bytes and has no alignment needs.
        unsafe {
            let mut acc = [_mm256_setzero_ps(); 4];
            while i + 32 <= n {
                for (lane, sum) in acc.iter_mut().enumerate() {
                    let offset = i + lane * 8;
                    let bytes = _mm_loadl_epi64(pc.add(offset).cast::<__m128i>());
                    let values = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
                    *sum = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(offset)), values, *sum);
                }
                i += 32;
            }
            while i + 8 <= n {
                let bytes = _mm_loadl_epi64(pc.add(i).cast::<__m128i>());
                let values = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
                acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(i)), values, acc[0]);
                i += 8;
            }
            let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
            let mut total = horizontal_sum(sum);
            while i < n {
                total += *pw.add(i) * f32::from(*pc.add(i));
                i += 1;
            }
            total
        }
    }
}

/// Prefetches the cache lines of `bytes` bytes starting at `pointer` into L1. A hint only:
/// it never faults, whatever the address.
#[inline(always)]
pub(crate) fn prefetch(pointer: *const u8, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let mut offset = 0;
        while offset < bytes {
            // SAFETY: prefetch is a hint that never faults, even on an invalid address; the
            // address arithmetic uses wrapping_add, so no pointer is formed out of bounds UB-wise.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(pointer.wrapping_add(offset).cast::<i8>()) };
            offset += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (pointer, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator, so the tests need no RNG crate.
    fn values(seed: u64, n: usize) -> Vec<f32> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn detected_kernels_agree_with_the_scalar_reference_on_odd_lengths() {
        let detected = Kernels::detected();
        let scalar = Kernels::scalar();
        for n in [
            0usize, 1, 3, 7, 8, 9, 15, 31, 33, 63, 100, 129, 383, 384, 385, 1001,
        ] {
            let a = values(n as u64 + 1, n);
            let b = values(n as u64 + 1000, n);
            let codes: Vec<u8> = values(n as u64 + 7, n)
                .iter()
                .map(|v| ((v + 1.0) * 127.0) as u8)
                .collect();
            let tolerance = 1e-4 * (n as f32 + 1.0);
            let c = values(n as u64 + 2000, n);
            let d = values(n as u64 + 3000, n);
            let mut fast4 = (detected.dot4)(&a, [&b, &c, &d, &a]).to_vec();
            fast4.extend((detected.l2_squared4)(&a, [&b, &c, &d, &a]));
            let mut reference4 = [&b, &c, &d, &a]
                .map(|vector| (scalar.dot)(&a, vector))
                .to_vec();
            reference4.extend([&b, &c, &d, &a].map(|vector| (scalar.l2_squared)(&a, vector)));
            let codes4: [&[u8]; 4] = [&codes, &codes[..], &codes, &codes];
            fast4.extend((detected.dot_u8x4)(&b, codes4));
            reference4.extend(codes4.map(|codes| (scalar.dot_u8)(&b, codes)));
            for (fast, reference) in fast4.iter().zip(reference4) {
                assert!(
                    (fast - reference).abs() <= tolerance * reference.abs().max(1.0),
                    "the four-at-once kernels on {n} dims"
                );
            }
            let pairs = [
                ((detected.dot)(&a, &b), (scalar.dot)(&a, &b)),
                ((detected.l2_squared)(&a, &b), (scalar.l2_squared)(&a, &b)),
                ((detected.dot_u8)(&a, &codes), (scalar.dot_u8)(&a, &codes)),
            ];
            for (kernel, (fast, reference)) in ["dot", "l2", "dot_u8"].iter().zip(pairs) {
                let scale = reference.abs().max(1.0);
                assert!(
                    (fast - reference).abs() <= tolerance * scale,
                    "{kernel} on {n} dims: {} gives {fast}, scalar {reference}",
                    detected.name
                );
            }
            // The scalar kernels against the plain definition.
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!(((scalar.dot)(&a, &b) - naive).abs() <= tolerance);
        }
    }

    #[test]
    fn metrics_order_as_lower_is_closer() {
        let mut a = vec![1.0, 0.0, 0.0];
        let mut near = vec![0.9, 0.1, 0.0];
        let mut far = vec![-1.0, 0.5, 0.0];
        for vector in [&mut a, &mut near, &mut far] {
            assert!(normalize(vector));
        }
        for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
            assert!(
                metric.distance(&a, &near) < metric.distance(&a, &far),
                "{}",
                metric.name()
            );
            assert_eq!(Metric::from_name(metric.name()), Some(metric));
        }
        assert!((Metric::Cosine.score(Metric::Cosine.distance(&a, &a)) - 1.0).abs() < 1e-6);
        assert!(!normalize(&mut [0.0, 0.0]));
    }
}

//! int8 scalar quantization: each dimension's range, trained from the data, is split into
//! 256 steps, so a vector takes one byte per dimension instead of four.
//!
//! Distances are asymmetric: the query stays f32 and is folded into per-dimension weights, so
//! `dot(q, x̂) = offset + Σ weight[d] * code[d]` costs one pass over the codes
//! ([`crate::Kernels::dot_u8`]). The index oversamples with these approximate distances and
//! rescores the candidates on the full f32 vectors.

/// Per-dimension affine ranges: `x ≈ min[d] + step[d] * code[d]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Quantizer {
    mins: Vec<f32>,
    steps: Vec<f32>,
}

/// A query prepared for distances against codes.
#[derive(Debug, Clone)]
pub(crate) struct QuantizedQuery {
    pub(crate) weights: Vec<f32>,
    pub(crate) offset: f32,
    pub(crate) squared_norm: f32,
}

impl Int8Quantizer {
    /// Learns each dimension's minimum and maximum from `vectors` (rows of `dim` floats).
    /// With no rows, every dimension gets the range [-1, 1].
    pub fn train(vectors: &[f32], dim: usize) -> Int8Quantizer {
        Int8Quantizer::train_rows(vectors.chunks_exact(dim.max(1)), dim)
    }

    /// Learns each dimension's range from rows of `dim` floats.
    pub fn train_rows<R: AsRef<[f32]>>(rows: impl Iterator<Item = R>, dim: usize) -> Int8Quantizer {
        let mut mins = vec![f32::INFINITY; dim];
        let mut maxs = vec![f32::NEG_INFINITY; dim];
        for row in rows {
            let row = row.as_ref();
            for ((value, min), max) in row.iter().zip(&mut mins).zip(&mut maxs) {
                *min = min.min(*value);
                *max = max.max(*value);
            }
        }
        let mut steps = vec![0.0; dim];
        for ((min, max), step) in mins.iter_mut().zip(&maxs).zip(&mut steps) {
            if !min.is_finite() || !max.is_finite() {
                (*min, *step) = (-1.0, 2.0 / 255.0);
            } else if *max > *min {
                *step = (*max - *min) / 255.0;
            } else {
                // A constant dimension: any positive step decodes it exactly (code 0).
                *step = 1.0;
            }
        }
        Int8Quantizer { mins, steps }
    }

    /// Builds a quantizer from stored ranges (a snapshot); `None` when the lengths differ or a
    /// step is not positive and finite.
    pub fn from_parts(mins: Vec<f32>, steps: Vec<f32>) -> Option<Int8Quantizer> {
        let valid = mins.len() == steps.len()
            && mins.iter().all(|min| min.is_finite())
            && steps.iter().all(|step| step.is_finite() && *step > 0.0);
        valid.then_some(Int8Quantizer { mins, steps })
    }

    /// The number of dimensions.
    pub fn dim(&self) -> usize {
        self.mins.len()
    }

    /// Each dimension's minimum.
    pub fn mins(&self) -> &[f32] {
        &self.mins
    }

    /// Each dimension's step between codes.
    pub fn steps(&self) -> &[f32] {
        &self.steps
    }

    /// Writes `vector`'s codes into `codes`, clamping values outside the trained range; returns
    /// the squared norm of the decoded vector (what l2 distances need).
    pub fn encode(&self, vector: &[f32], codes: &mut [u8]) -> f32 {
        let mut squared_norm = 0.0;
        for (((value, min), step), code) in
            vector.iter().zip(&self.mins).zip(&self.steps).zip(codes)
        {
            let level = ((value - min) / step).round().clamp(0.0, 255.0);
            *code = level as u8;
            let decoded = min + step * level;
            squared_norm += decoded * decoded;
        }
        squared_norm
    }

    /// Decodes codes back into approximate values.
    pub fn decode(&self, codes: &[u8]) -> Vec<f32> {
        codes
            .iter()
            .zip(&self.mins)
            .zip(&self.steps)
            .map(|((code, min), step)| min + step * f32::from(*code))
            .collect()
    }

    /// Folds a query into weights for [`crate::Kernels::dot_u8`].
    pub(crate) fn prepare(&self, query: &[f32]) -> QuantizedQuery {
        let weights = query
            .iter()
            .zip(&self.steps)
            .map(|(q, step)| q * step)
            .collect();
        let offset = query.iter().zip(&self.mins).map(|(q, min)| q * min).sum();
        let squared_norm = query.iter().map(|q| q * q).sum();
        QuantizedQuery {
            weights,
            offset,
            squared_norm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kernels;

    #[test]
    fn codes_decode_within_half_a_step_and_distances_follow() {
        let dim = 5;
        let data: Vec<f32> = (0..200)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect();
        let quantizer = Int8Quantizer::train(&data, dim);
        let mut codes = vec![0u8; dim];
        for row in data.chunks_exact(dim) {
            let squared_norm = quantizer.encode(row, &mut codes);
            let decoded = quantizer.decode(&codes);
            for ((value, approx), step) in row.iter().zip(&decoded).zip(quantizer.steps()) {
                assert!((value - approx).abs() <= step * 0.5 + 1e-6);
            }
            let exact_norm: f32 = decoded.iter().map(|v| v * v).sum();
            assert!((squared_norm - exact_norm).abs() < 1e-4);
            let query = [0.3, -0.2, 0.9, 0.0, -1.0];
            let prepared = quantizer.prepare(&query);
            let approx_dot =
                prepared.offset + (Kernels::scalar().dot_u8)(&prepared.weights, &codes);
            let decoded_dot: f32 = query.iter().zip(&decoded).map(|(q, x)| q * x).sum();
            assert!((approx_dot - decoded_dot).abs() < 1e-4);
        }
        // Values outside the trained range clamp instead of wrapping.
        let squared_norm = quantizer.encode(&[100.0; 5], &mut codes);
        assert!(codes.iter().all(|code| *code == 255) && squared_norm > 0.0);
        assert_eq!(
            Int8Quantizer::from_parts(quantizer.mins().to_vec(), quantizer.steps().to_vec()),
            Some(quantizer)
        );
        assert_eq!(Int8Quantizer::from_parts(vec![0.0], vec![0.0]), None);
    }
}

//! Shared test data: seeded clustered vectors, exact ground truth with the scalar kernels, and
//! recall.

use std::sync::OnceLock;

use hearth_memory::{Hit, Hnsw, HnswParams, Kernels, Metric, normalize};

/// splitmix64: a small seeded generator, so the tests need no RNG crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// Roughly normal (a sum of four uniforms), unit variance.
    pub fn normal(&mut self) -> f32 {
        (self.uniform() + self.uniform() + self.uniform() + self.uniform()) * 0.866
    }
}

/// `n` base vectors and `n_queries` query vectors of `dim` floats around the same `clusters`
/// random centres.
pub fn clustered(
    n: usize,
    n_queries: usize,
    dim: usize,
    clusters: usize,
    seed: u64,
) -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(seed);
    let centres: Vec<f32> = (0..clusters * dim).map(|_| rng.uniform()).collect();
    let mut data = Vec::with_capacity((n + n_queries) * dim);
    for _ in 0..n + n_queries {
        let cluster = (rng.next_u64() % clusters as u64) as usize;
        let centre = &centres[cluster * dim..(cluster + 1) * dim];
        data.extend(centre.iter().map(|c| c + 0.35 * rng.normal()));
    }
    let queries = data.split_off(n * dim);
    (data, queries)
}

/// The exact `k` nearest among `ids` (all rows when `None`), by the scalar reference kernels.
pub fn ground_truth(
    metric: Metric,
    data: &[f32],
    dim: usize,
    query: &[f32],
    k: usize,
    allowed: impl Fn(usize) -> bool,
) -> Vec<usize> {
    let mut query = query.to_vec();
    if metric == Metric::Cosine {
        normalize(&mut query);
    }
    let mut scored: Vec<(f32, usize)> = data
        .chunks_exact(dim)
        .enumerate()
        .filter(|(row, _)| allowed(*row))
        .map(|(row, vector)| {
            let mut vector = vector.to_vec();
            if metric == Metric::Cosine {
                normalize(&mut vector);
            }
            (
                metric.distance_with(Kernels::scalar(), &query, &vector),
                row,
            )
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|(_, row)| row).collect()
}

/// The share of `truth` found among `hits` (keys are row numbers).
pub fn recall(hits: &[Hit], truth: &[usize]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    let found = truth
        .iter()
        .filter(|row| hits.iter().any(|hit| hit.key == **row as u64))
        .count();
    found as f64 / truth.len() as f64
}

pub const DIM: usize = 64;
pub const N: usize = 20_000;
pub const N_QUERIES: usize = 100;

/// The shared 20k × 64 cosine collection (built once, on two threads), its data and queries.
pub struct Shared {
    pub index: Hnsw,
    pub data: Vec<f32>,
    pub queries: Vec<f32>,
}

pub fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let (data, queries) = clustered(N, N_QUERIES, DIM, 50, 1);
        let keys: Vec<u64> = (0..N as u64).collect();
        let index = Hnsw::build(HnswParams::new(DIM, Metric::Cosine), &keys, &data, 2, false)
            .expect("build");
        Shared {
            index,
            data,
            queries,
        }
    })
}

//! int8 quantization: traversal on codes, rescoring on f32 vectors.

use hearth_memory::{Hnsw, HnswParams, Metric, SearchOptions};

use crate::support::{DIM, N, ground_truth, recall, shared};

#[test]
fn int8_recall_after_rescoring_stays_high() {
    let shared = shared();
    let keys: Vec<u64> = (0..N as u64).collect();
    for metric in [Metric::Cosine, Metric::L2] {
        // The l2 collection is the cosine one's data, shifted so that norms differ.
        let data: Vec<f32> = if metric == Metric::Cosine {
            shared.data.clone()
        } else {
            shared.data.iter().map(|v| v + 0.5).collect()
        };
        let queries: Vec<f32> = if metric == Metric::Cosine {
            shared.queries.clone()
        } else {
            shared.queries.iter().map(|v| v + 0.5).collect()
        };
        let index = Hnsw::build(HnswParams::new(DIM, metric), &keys, &data, 2, true).unwrap();
        assert!(index.quantizer().is_some());
        let mut total = 0.0;
        for query in queries.chunks_exact(DIM) {
            let hits = index.search(query, &SearchOptions::new(10)).unwrap();
            assert_eq!(hits.len(), 10);
            total += recall(
                &hits,
                &ground_truth(metric, &data, DIM, query, 10, |_| true),
            );
        }
        let mean = total / (shared.queries.len() / DIM) as f64;
        assert!(
            mean >= 0.95,
            "{}: int8 recall@10 after rescoring {mean}",
            metric.name()
        );
    }
}

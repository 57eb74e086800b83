//! int8 quantization: traversal on codes, rescoring on f32 vectors.

use hearth_memory::{Allowed, Hnsw, HnswParams, IdSet, Metric, SearchOptions, normalize};

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
        // A 5% filter scanned on the codes, and no filter through the graph.
        let set: IdSet = (0..N as u32).filter(|id| id % 20 == 3).collect();
        for (name, allowed) in [("graph", Allowed::All), ("scan", Allowed::Set(&set))] {
            let mut total = 0.0;
            for query in queries.chunks_exact(DIM) {
                let options = SearchOptions {
                    allowed,
                    ..SearchOptions::new(10)
                };
                let hits = index.search(query, &options).unwrap();
                assert_eq!(hits.len(), 10);
                let truth = ground_truth(metric, &data, DIM, query, 10, |row| {
                    allowed_row(allowed, row)
                });
                total += recall(&hits, &truth);
                // Rescored distances are the exact f32 ones.
                let mut prepared = query.to_vec();
                if metric == Metric::Cosine {
                    normalize(&mut prepared);
                }
                for hit in &hits {
                    let exact = metric.distance(&prepared, index.vector_of(hit.id).unwrap());
                    assert!((hit.distance - exact).abs() <= 1e-4 * exact.abs().max(1.0));
                }
            }
            let mean = total / (shared.queries.len() / DIM) as f64;
            assert!(
                mean >= 0.95,
                "{} {name}: int8 recall@10 after rescoring {mean}",
                metric.name()
            );
        }
    }
}

fn allowed_row(allowed: Allowed<'_>, row: usize) -> bool {
    match allowed {
        Allowed::Set(set) => set.contains(row as u32),
        _ => true,
    }
}

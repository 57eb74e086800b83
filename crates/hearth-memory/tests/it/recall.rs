//! Recall@10 against exact search, for every metric, single- and multi-threaded builds.

use hearth_memory::{Hnsw, HnswParams, Metric, SearchOptions};

use crate::support::{DIM, N_QUERIES, clustered, ground_truth, recall, shared};

fn mean_recall(
    index: &Hnsw,
    metric: Metric,
    data: &[f32],
    queries: &[f32],
    dim: usize,
    ef: usize,
) -> f64 {
    let mut total = 0.0;
    for query in queries.chunks_exact(dim) {
        let hits = index
            .search(
                query,
                &SearchOptions {
                    ef,
                    ..SearchOptions::new(10)
                },
            )
            .unwrap();
        assert_eq!(hits.len(), 10);
        assert!(
            hits.windows(2)
                .all(|pair| pair[0].distance <= pair[1].distance),
            "hits sorted by distance"
        );
        total += recall(&hits, &ground_truth(metric, data, dim, query, 10, |_| true));
    }
    total / (queries.len() / dim) as f64
}

#[test]
fn recall_at_10_of_a_parallel_build_is_high_at_ef_64() {
    let shared = shared();
    let at_64 = mean_recall(
        &shared.index,
        Metric::Cosine,
        &shared.data,
        &shared.queries,
        DIM,
        64,
    );
    let at_16 = mean_recall(
        &shared.index,
        Metric::Cosine,
        &shared.data,
        &shared.queries,
        DIM,
        16,
    );
    assert!(at_64 >= 0.95, "recall@10 at ef 64 was {at_64}");
    assert!(
        at_64 >= at_16,
        "a larger ef does not lose recall: {at_16} -> {at_64}"
    );
    assert_eq!(shared.index.live_len(), crate::support::N);
    let _ = N_QUERIES;
}

#[test]
fn every_metric_reaches_high_recall() {
    let dim = 32;
    let (data, queries) = clustered(5_000, 50, dim, 20, 11);
    let keys: Vec<u64> = (0..5_000).collect();
    for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
        let index = Hnsw::build(HnswParams::new(dim, metric), &keys, &data, 1, false).unwrap();
        let value = mean_recall(&index, metric, &data, &queries, dim, 64);
        assert!(value >= 0.95, "{}: recall@10 {value}", metric.name());
    }
}

#[test]
fn a_single_threaded_build_is_deterministic() {
    let dim = 16;
    let (data, queries) = clustered(2_000, 20, dim, 10, 21);
    let keys: Vec<u64> = (0..2_000).collect();
    let params = HnswParams::new(dim, Metric::L2);
    let first = Hnsw::build(params.clone(), &keys, &data, 1, false).unwrap();
    let second = Hnsw::build(params, &keys, &data, 1, false).unwrap();
    for query in queries.chunks_exact(dim) {
        let options = SearchOptions {
            ef: 16,
            ..SearchOptions::new(10)
        };
        assert_eq!(
            first.search(query, &options).unwrap(),
            second.search(query, &options).unwrap()
        );
    }
}

#[test]
fn bad_vectors_are_refused_before_anything_is_inserted() {
    let index = Hnsw::new(HnswParams::new(3, Metric::Cosine), 10, None).unwrap();
    let cases: [(&[f32], &str); 3] = [
        (&[1.0, 2.0], "dimensions"),
        (&[1.0, f32::NAN, 0.0], "not finite"),
        (&[0.0, 0.0, 0.0], "zero vector"),
    ];
    for (vector, words) in cases {
        let error = index.insert(1, vector).unwrap_err().to_string();
        assert!(error.contains(words), "{error}");
    }
    let batch = [1.0, 0.0, 0.0, 0.0, 0.0, f32::INFINITY];
    assert!(index.insert_batch(&[1, 2], &batch, 1).is_err());
    assert!(index.is_empty());
    assert!(
        index
            .search(&[1.0, 0.0, 0.0], &SearchOptions::new(5))
            .unwrap()
            .is_empty()
    );
    assert!(index.search(&[1.0, 0.0], &SearchOptions::new(5)).is_err());
    let full = Hnsw::new(HnswParams::new(1, Metric::L2), 1, None).unwrap();
    full.insert(1, &[1.0]).unwrap();
    assert!(
        full.insert(2, &[2.0])
            .unwrap_err()
            .to_string()
            .contains("full")
    );
}

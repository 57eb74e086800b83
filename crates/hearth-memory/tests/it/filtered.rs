//! Filtered search keeps recall at 1%, 10% and 50% selectivity, through the in-traversal
//! predicate and through the planner's exact scan, and returns k hits whenever k match.

use hearth_memory::{Allowed, Filter, IdSet, Plan, SearchOptions};
use serde_json::{Value, json};

use crate::support::{DIM, N, ground_truth, recall, shared};

fn metadata(row: usize) -> Value {
    json!({"bucket": row % 100, "parity": if row.is_multiple_of(2) { "even" } else { "odd" }})
}

#[test]
fn filtered_recall_holds_at_every_selectivity() {
    let shared = shared();
    let metadata: Vec<Value> = (0..N).map(metadata).collect();
    // (filter, share of rows it allows). The graph walks 1% with the plain traversal and the
    // others with two-hop edges through rejected nodes.
    let cases = [
        (json!({"key": "bucket", "type": "lt", "value": 1}), 0.01),
        (
            json!({"type": "and", "filters": [
                {"key": "bucket", "type": "gte", "value": 40},
                {"key": "bucket", "type": "lt", "value": 45},
            ]}),
            0.05,
        ),
        (
            json!({"key": "bucket", "type": "in", "value": [3, 14, 15, 92, 65, 35, 89, 79, 32, 38]}),
            0.10,
        ),
        (
            json!({"type": "or", "filters": [
                {"key": "parity", "type": "eq", "value": "even"},
                {"key": "missing", "type": "eq", "value": 1},
            ]}),
            0.50,
        ),
    ];
    for (raw, share) in cases {
        let filter = Filter::parse(&raw).unwrap();
        // Ids are rows: the shared index was built from one batch in order.
        let matches = |row: usize| filter.matches(&metadata[row]);
        let predicate = |id: u32| matches(id as usize);
        let set: IdSet = (0..N as u32).filter(|&id| predicate(id)).collect();
        assert!((set.len() as f64 / N as f64 - share).abs() < 0.01);
        // The graph plan evaluates the predicate while traversing; auto may scan instead.
        for (name, allowed, plan) in [
            (
                "predicate, graph",
                Allowed::Predicate(&predicate),
                Plan::Graph,
            ),
            (
                "predicate, auto",
                Allowed::Predicate(&predicate),
                Plan::Auto,
            ),
            ("set, graph", Allowed::Set(&set), Plan::Graph),
            ("set, auto", Allowed::Set(&set), Plan::Auto),
            ("set, scan", Allowed::Set(&set), Plan::Scan),
        ] {
            let mut total = 0.0;
            let n_queries = shared.queries.len() / DIM;
            for query in shared.queries.chunks_exact(DIM) {
                let hits = shared
                    .index
                    .search(
                        query,
                        &SearchOptions {
                            allowed,
                            plan,
                            ..SearchOptions::new(10)
                        },
                    )
                    .unwrap();
                assert_eq!(
                    hits.len(),
                    10,
                    "{name} at {share}: always k hits when k match"
                );
                assert!(
                    hits.iter().all(|hit| matches(hit.key as usize)),
                    "{name} at {share}: only matching hits"
                );
                total += recall(
                    &hits,
                    &ground_truth(
                        hearth_memory::Metric::Cosine,
                        &shared.data,
                        DIM,
                        query,
                        10,
                        matches,
                    ),
                );
            }
            let mean = total / n_queries as f64;
            assert!(mean >= 0.95, "{name} at {share}: recall@10 {mean}");
        }
    }
}

#[test]
fn fewer_matches_than_k_returns_every_match() {
    let shared = shared();
    let allowed_ids = [7u32, 7_777, 19_999];
    let predicate = |id: u32| allowed_ids.contains(&id);
    let set: IdSet = allowed_ids.into_iter().collect();
    let query = &shared.queries[..DIM];
    for allowed in [Allowed::Predicate(&predicate), Allowed::Set(&set)] {
        for plan in [Plan::Auto, Plan::Graph, Plan::Scan] {
            let options = SearchOptions {
                allowed,
                plan,
                ..SearchOptions::new(10)
            };
            let hits = shared.index.search(query, &options).unwrap();
            let mut ids: Vec<u32> = hits.iter().map(|hit| hit.id).collect();
            ids.sort_unstable();
            assert_eq!(ids, allowed_ids, "{plan:?}");
        }
    }
    let nothing = |_: u32| false;
    let hits = shared
        .index
        .search(
            query,
            &SearchOptions {
                allowed: Allowed::Predicate(&nothing),
                ..SearchOptions::new(10)
            },
        )
        .unwrap();
    assert!(hits.is_empty());
}

//! Deletes, replacement by key, compaction, growth, and searches running while another
//! thread inserts.

use std::sync::atomic::{AtomicBool, Ordering};

use hearth_memory::{Hnsw, HnswParams, Metric, SearchOptions};

use crate::support::{clustered, ground_truth, recall};

const DIM: usize = 32;

#[test]
fn deleted_nodes_are_never_returned_and_recall_of_the_rest_holds() {
    let n = 5_000;
    let (data, queries) = clustered(n, 50, DIM, 20, 31);
    let keys: Vec<u64> = (0..n as u64).collect();
    let index = Hnsw::build(HnswParams::new(DIM, Metric::L2), &keys, &data, 2, false).unwrap();
    // Delete every third row, and the nearest neighbours of the first query, so deletes hit
    // the nodes a search walks through.
    let deleted = |row: usize| row.is_multiple_of(3);
    for row in (0..n).filter(|&row| deleted(row)) {
        assert!(index.delete(row as u64));
    }
    let near_first = ground_truth(Metric::L2, &data, DIM, &queries[..DIM], 20, |_| true);
    for &row in &near_first {
        index.delete(row as u64);
    }
    let gone = |row: usize| deleted(row) || near_first.contains(&row);
    assert!(!index.delete(0), "a second delete finds nothing");
    assert_eq!(index.live_len(), (0..n).filter(|&row| !gone(row)).count());

    let check = |index: &Hnsw| {
        let mut total = 0.0;
        for query in queries.chunks_exact(DIM) {
            let hits = index.search(query, &SearchOptions::new(10)).unwrap();
            assert_eq!(hits.len(), 10);
            assert!(
                hits.iter().all(|hit| !gone(hit.key as usize)),
                "a deleted node was returned"
            );
            total += recall(
                &hits,
                &ground_truth(Metric::L2, &data, DIM, query, 10, |row| !gone(row)),
            );
        }
        total / 50.0
    };
    let before = check(&index);
    assert!(before >= 0.95, "recall@10 with tombstones {before}");

    let compacted = index.compacted(2).unwrap();
    assert_eq!(compacted.len(), index.live_len());
    assert_eq!(compacted.deleted_len(), 0);
    let after = check(&compacted);
    assert!(after >= 0.95, "recall@10 after compaction {after}");
}

#[test]
fn inserting_a_key_again_replaces_its_vector() {
    let mut index = Hnsw::new(HnswParams::new(2, Metric::L2), 2, None).unwrap();
    index.insert(7, &[0.0, 0.0]).unwrap();
    index.insert(8, &[5.0, 5.0]).unwrap();
    index.reserve(4).unwrap();
    let replaced = index.insert(7, &[10.0, 10.0]).unwrap();
    assert_eq!(index.id_of(7), Some(replaced));
    assert_eq!((index.len(), index.live_len()), (3, 2));
    let hits = index.search(&[0.0, 0.0], &SearchOptions::new(3)).unwrap();
    let keys: Vec<u64> = hits.iter().map(|hit| hit.key).collect();
    assert_eq!(keys, [8, 7]);
    assert_eq!(hits[1].distance, 200.0);
    assert_eq!(index.vector_of(replaced), Some(&[10.0, 10.0][..]));
}

#[test]
fn searches_run_while_another_thread_inserts() {
    let n = 6_000;
    let (data, queries) = clustered(n, 20, DIM, 20, 41);
    let index = Hnsw::new(HnswParams::new(DIM, Metric::Cosine), n, None).unwrap();
    let first: Vec<u64> = (0..1_000).collect();
    index.insert_batch(&first, &data[..1_000 * DIM], 1).unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for row in 1_000..n {
                index
                    .insert(row as u64, &data[row * DIM..(row + 1) * DIM])
                    .unwrap();
            }
            done.store(true, Ordering::Release);
        });
        for _ in 0..2 {
            scope.spawn(|| {
                let mut rounds = 0;
                while !done.load(Ordering::Acquire) || rounds < 3 {
                    for query in queries.chunks_exact(DIM) {
                        let hits = index.search(query, &SearchOptions::new(10)).unwrap();
                        assert_eq!(hits.len(), 10);
                        assert!(
                            hits.windows(2)
                                .all(|pair| pair[0].distance <= pair[1].distance)
                        );
                        for hit in &hits {
                            assert_eq!(index.key_of(hit.id), Some(hit.key));
                            assert!((hit.key as usize) < n);
                        }
                    }
                    rounds += 1;
                }
            });
        }
    });
    assert_eq!(index.live_len(), n);
    let mut total = 0.0;
    for query in queries.chunks_exact(DIM) {
        let hits = index.search(query, &SearchOptions::new(10)).unwrap();
        total += recall(
            &hits,
            &ground_truth(Metric::Cosine, &data, DIM, query, 10, |_| true),
        );
    }
    assert!(
        total / 20.0 >= 0.95,
        "recall@10 after concurrent inserts {}",
        total / 20.0
    );
}

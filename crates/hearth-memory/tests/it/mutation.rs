//! Deletes, replacement by key, compaction, growth, and searches running while other threads
//! insert and delete.

use std::sync::atomic::{AtomicUsize, Ordering};

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
fn searches_run_while_other_threads_insert_and_delete() {
    let n = 6_000;
    let (data, queries) = clustered(n, 20, DIM, 20, 41);
    let index = Hnsw::new(HnswParams::new(DIM, Metric::Cosine), n, None).unwrap();
    let first: Vec<u64> = (0..1_000).collect();
    index.insert_batch(&first, &data[..1_000 * DIM], 1).unwrap();
    let deleted = |row: usize| row < 1_000 && row.is_multiple_of(2);
    let writers_left = AtomicUsize::new(3);
    std::thread::scope(|scope| {
        // One thread inserts one vector at a time, another in parallel batches, a third
        // deletes, while two others search.
        scope.spawn(|| {
            for row in 1_000..3_500 {
                let vector = &data[row * DIM..(row + 1) * DIM];
                index.insert(row as u64, vector).unwrap();
            }
            writers_left.fetch_sub(1, Ordering::AcqRel);
        });
        scope.spawn(|| {
            for start in (3_500..n).step_by(100) {
                let keys: Vec<u64> = (start as u64..start as u64 + 100).collect();
                let vectors = &data[start * DIM..(start + 100) * DIM];
                index.insert_batch(&keys, vectors, 2).unwrap();
            }
            writers_left.fetch_sub(1, Ordering::AcqRel);
        });
        scope.spawn(|| {
            for row in (0..1_000).filter(|&row| deleted(row)) {
                assert!(index.delete(row as u64));
            }
            writers_left.fetch_sub(1, Ordering::AcqRel);
        });
        for _ in 0..2 {
            scope.spawn(|| {
                let mut rounds = 0;
                while writers_left.load(Ordering::Acquire) > 0 || rounds < 3 {
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
    assert_eq!(index.live_len(), n - 500);
    let mut total = 0.0;
    for query in queries.chunks_exact(DIM) {
        let hits = index.search(query, &SearchOptions::new(10)).unwrap();
        assert!(hits.iter().all(|hit| !deleted(hit.key as usize)));
        total += recall(
            &hits,
            &ground_truth(Metric::Cosine, &data, DIM, query, 10, |row| !deleted(row)),
        );
    }
    assert!(
        total / 20.0 >= 0.95,
        "recall@10 after concurrent writes {}",
        total / 20.0
    );
}

//! Snapshots: a round trip gives back an equal index, and a damaged file is refused.

use hearth_memory::{Allowed, Hnsw, HnswParams, MemoryError, Metric, SearchOptions};

use crate::support::clustered;

const DIM: usize = 24;

fn index(metric: Metric, quantize: bool) -> (Hnsw, Vec<f32>) {
    let (data, queries) = clustered(3_000, 30, DIM, 10, 51);
    let keys: Vec<u64> = (0..3_000u64).map(|row| row * 7 + 1).collect();
    let index = Hnsw::build(
        HnswParams {
            m: 8,
            ..HnswParams::new(DIM, metric)
        },
        &keys,
        &data,
        2,
        quantize,
    )
    .unwrap();
    for row in (0..3_000u64).step_by(5) {
        index.delete(row * 7 + 1);
    }
    (index, queries)
}

#[test]
fn a_snapshot_round_trip_gives_back_an_equal_index() {
    let directory = tempfile::tempdir().unwrap();
    for (metric, quantize) in [
        (Metric::Cosine, false),
        (Metric::L2, true),
        (Metric::Dot, false),
    ] {
        let (original, queries) = index(metric, quantize);
        let path = directory
            .path()
            .join(format!("{}-{quantize}.hnsw", metric.name()));
        original.save(&path, 41).unwrap();
        // Saving again over the first file works and leaves no temporary file behind.
        original.save(&path, 42).unwrap();
        let leftovers = std::fs::read_dir(directory.path())
            .unwrap()
            .filter(|entry| {
                entry
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp-")
            })
            .count();
        assert_eq!(leftovers, 0);

        let (mut loaded, applied_sequence) = Hnsw::load(&path).unwrap();
        assert_eq!(applied_sequence, 42);
        assert_eq!(loaded.params(), original.params());
        assert_eq!(loaded.quantizer(), original.quantizer());
        assert_eq!(
            (loaded.len(), loaded.deleted_len()),
            (original.len(), original.deleted_len())
        );
        for id in 0..original.len() as u32 {
            assert_eq!(loaded.key_of(id), original.key_of(id));
            assert_eq!(loaded.is_live(id), original.is_live(id));
            assert_eq!(loaded.vector_of(id), original.vector_of(id));
        }
        assert_eq!(loaded.id_of(8), original.id_of(8));
        assert_eq!(loaded.id_of(1), None, "a deleted key stays deleted");
        for query in queries.chunks_exact(DIM) {
            let options = SearchOptions::new(10);
            assert_eq!(
                loaded.search(query, &options).unwrap(),
                original.search(query, &options).unwrap()
            );
        }
        // A loaded index takes new inserts once it has room.
        loaded.reserve(loaded.len() + 1).unwrap();
        let id = loaded.insert(99_999, &queries[..DIM]).unwrap();
        assert_eq!(loaded.id_of(99_999), Some(id));
        let exact = loaded
            .exact_search(&queries[..DIM], 1, Allowed::All)
            .unwrap();
        let found = loaded
            .search(&queries[..DIM], &SearchOptions::new(1))
            .unwrap();
        assert_eq!(found, exact);
        if metric != Metric::Dot {
            assert_eq!(
                found[0].id, id,
                "the new vector is its own nearest neighbour"
            );
        }
    }
}

#[test]
fn a_damaged_snapshot_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("index.hnsw");
    let (original, _) = index(Metric::Cosine, true);
    original.save(&path, 7).unwrap();
    let good = std::fs::read(&path).unwrap();

    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x10;
    let mut bad_version = good.clone();
    bad_version[8] = 9;
    // (name, damaged bytes, a word the reason contains)
    let cases = [
        ("a flipped bit", flipped, "checksum"),
        (
            "a truncated file",
            good[..good.len() - 100].to_vec(),
            "checksum",
        ),
        ("a cut header", good[..10].to_vec(), "snapshot"),
        (
            "another format",
            b"not an index at all".to_vec(),
            "snapshot",
        ),
        ("a newer version", bad_version, "version"),
        ("an empty file", Vec::new(), "snapshot"),
    ];
    for (name, bytes, word) in cases {
        std::fs::write(&path, &bytes).unwrap();
        match Hnsw::load(&path) {
            Err(MemoryError::SnapshotCorrupt { reason, .. }) => {
                assert!(reason.contains(word), "{name}: {reason}")
            }
            other => panic!("{name}: expected a corrupt snapshot error, got {other:?}"),
        }
    }
    let missing = Hnsw::load(&directory.path().join("missing.hnsw")).unwrap_err();
    assert!(matches!(missing, MemoryError::SnapshotIo { .. }));
}

#[test]
fn an_empty_index_round_trips() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("empty.hnsw");
    Hnsw::new(HnswParams::new(4, Metric::L2), 10, None)
        .unwrap()
        .save(&path, 0)
        .unwrap();
    let (loaded, _) = Hnsw::load(&path).unwrap();
    assert!(loaded.is_empty());
    assert!(
        loaded
            .search(&[0.0; 4], &SearchOptions::new(3))
            .unwrap()
            .is_empty()
    );
}

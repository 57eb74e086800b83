//! The collections service against a real SQLite file in a temporary directory: tenancy,
//! upsert and (filtered) search, deletes, input errors that write nothing, restarts from a
//! snapshot plus replay, a damaged snapshot rebuilt, and pagination.

use std::path::Path;

use hearth_memory::{
    CollectionUpdate, DocumentSelector, Filter, Hnsw, Memory, MemoryError, MemoryOptions, Metric,
    NewCollection, NewDocument, PageRequest, SearchRequest,
};
use hearth_store::{IntegrityCheck, OpenOptions, Store};
use serde_json::json;

use crate::support::Rng;

const DIM: usize = 16;
const TENANT: &str = "tenant-a";

async fn open_with(dir: &Path, options: MemoryOptions) -> (Memory, Store) {
    let store = Store::open(
        dir,
        OpenOptions {
            integrity_check: IntegrityCheck::Quick,
            run_migrations: true,
        },
    )
    .await
    .expect("open store");
    let memory = Memory::new(
        store.clone(),
        dir,
        MemoryOptions {
            index_threads: 1,
            ..options
        },
    );
    (memory, store)
}

async fn open(dir: &Path) -> (Memory, Store) {
    open_with(dir, MemoryOptions::default()).await
}

fn vector(seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed.wrapping_mul(7919) + 1);
    (0..DIM).map(|_| rng.normal()).collect()
}

fn doc(i: u64) -> NewDocument {
    NewDocument {
        id: Some(format!("doc-{i:03}")),
        text: format!("text of document {i}"),
        metadata: json!({"bucket": i % 10, "even": i.is_multiple_of(2)}),
        embedding: Some(vector(i)),
    }
}

fn docs(range: std::ops::Range<u64>) -> Vec<NewDocument> {
    range.map(doc).collect()
}

fn filter(value: serde_json::Value) -> Filter {
    Filter::parse(&value).expect("filter")
}

async fn create(memory: &Memory, tenant: &str, name: &str) {
    memory
        .create_collection(tenant, NewCollection::new(name, DIM))
        .await
        .expect("create collection");
}

async fn top_ids(memory: &Memory, request: &SearchRequest) -> Vec<String> {
    memory
        .search(TENANT, "docs", request)
        .await
        .expect("search")
        .hits
        .into_iter()
        .map(|hit| hit.document.id)
        .collect()
}

#[tokio::test]
async fn another_tenants_collection_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let (memory, _store) = open(dir.path()).await;
    create(&memory, TENANT, "docs").await;
    memory
        .upsert_documents(TENANT, "docs", docs(0..10))
        .await
        .unwrap();

    let other = "tenant-b";
    let not_found = |result: Result<_, MemoryError>| {
        assert!(
            matches!(result, Err(MemoryError::NotFound { .. })),
            "{result:?}"
        )
    };
    not_found(memory.collection(other, "docs").await.map(|_| ()));
    not_found(
        memory
            .upsert_documents(other, "docs", docs(0..1))
            .await
            .map(|_| ()),
    );
    not_found(
        memory
            .search(other, "docs", &SearchRequest::new(vector(1), 3))
            .await
            .map(|_| ()),
    );
    not_found(
        memory
            .count_documents(other, "docs", None)
            .await
            .map(|_| ()),
    );
    not_found(memory.delete_collection(other, "docs").await);
    let listed = memory
        .list_collections(other, &PageRequest::first(10))
        .await
        .unwrap();
    assert!(listed.items.is_empty());

    // The other tenant may use the same name for a collection of its own.
    memory
        .create_collection(other, NewCollection::new("docs", 4))
        .await
        .unwrap();
    assert_eq!(
        memory.count_documents(other, "docs", None).await.unwrap(),
        0
    );
    assert_eq!(
        memory.count_documents(TENANT, "docs", None).await.unwrap(),
        10
    );
    let taken = memory
        .create_collection(TENANT, NewCollection::new("docs", DIM))
        .await;
    assert!(matches!(taken, Err(MemoryError::Conflict(_))), "{taken:?}");
}

#[tokio::test]
async fn upserted_documents_are_found_by_plain_and_filtered_search() {
    let dir = tempfile::tempdir().unwrap();
    let (memory, _store) = open(dir.path()).await;
    create(&memory, TENANT, "docs").await;
    let ids = memory
        .upsert_documents(TENANT, "docs", docs(0..200))
        .await
        .unwrap()
        .ids;
    assert_eq!(ids.len(), 200);

    let hits = memory
        .search(TENANT, "docs", &SearchRequest::new(vector(17), 5))
        .await
        .unwrap()
        .hits;
    assert_eq!(hits.len(), 5);
    assert_eq!(hits[0].document.id, "doc-017");
    assert!((hits[0].score - 1.0).abs() < 1e-4, "{}", hits[0].score);
    assert_eq!(hits[0].document.text, "text of document 17");
    assert_eq!(hits[0].document.metadata["bucket"], json!(7));

    // A filter is applied during the search: every hit matches, and top_k come back.
    let request = SearchRequest {
        filter: Some(filter(json!({"key": "bucket", "type": "eq", "value": 3}))),
        ..SearchRequest::new(vector(17), 5)
    };
    let hits = memory.search(TENANT, "docs", &request).await.unwrap().hits;
    assert_eq!(hits.len(), 5);
    assert!(
        hits.iter()
            .all(|hit| hit.document.metadata["bucket"] == json!(3))
    );
    let bucket = filter(json!({"key": "bucket", "type": "eq", "value": 3}));
    assert_eq!(
        memory
            .count_documents(TENANT, "docs", Some(&bucket))
            .await
            .unwrap(),
        20
    );

    // Get by id, with the embedding as stored.
    let got = memory
        .get_documents(
            TENANT,
            "docs",
            &["doc-005".to_string(), "missing".to_string()],
            true,
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].embedding.as_deref(), Some(vector(5).as_slice()));

    // An upsert of an existing id replaces the document, in the store and the index.
    let replacement = NewDocument {
        text: "replaced".to_string(),
        embedding: Some(vector(1_000)),
        ..doc(17)
    };
    memory
        .upsert_documents(TENANT, "docs", vec![replacement])
        .await
        .unwrap();
    assert_eq!(
        memory.count_documents(TENANT, "docs", None).await.unwrap(),
        200
    );
    let top = top_ids(&memory, &SearchRequest::new(vector(1_000), 1)).await;
    assert_eq!(top, ["doc-017"]);
    let top = top_ids(&memory, &SearchRequest::new(vector(17), 200)).await;
    assert_eq!(top.iter().filter(|id| *id == "doc-017").count(), 1);
    assert_ne!(top[0], "doc-017");

    // An int8 collection searches through its codes and rescoring.
    memory
        .create_collection(
            TENANT,
            NewCollection {
                int8: true,
                metric: Metric::L2,
                ..NewCollection::new("quantized", DIM)
            },
        )
        .await
        .unwrap();
    memory
        .upsert_documents(TENANT, "quantized", docs(0..100))
        .await
        .unwrap();
    memory
        .upsert_documents(TENANT, "quantized", docs(100..150))
        .await
        .unwrap();
    let hits = memory
        .search(TENANT, "quantized", &SearchRequest::new(vector(120), 3))
        .await
        .unwrap()
        .hits;
    assert_eq!(hits[0].document.id, "doc-120");
}

#[tokio::test]
async fn deletes_by_filter_and_by_ids_leave_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (memory, _store) = open(dir.path()).await;
    create(&memory, TENANT, "docs").await;
    memory
        .upsert_documents(TENANT, "docs", docs(0..100))
        .await
        .unwrap();

    let bucket = filter(json!({"key": "bucket", "type": "eq", "value": 3}));
    let deleted = memory
        .delete_documents(TENANT, "docs", &DocumentSelector::Filter(bucket.clone()))
        .await
        .unwrap();
    assert_eq!(deleted, 10);
    assert_eq!(
        memory.count_documents(TENANT, "docs", None).await.unwrap(),
        90
    );
    let request = SearchRequest {
        filter: Some(bucket.clone()),
        ..SearchRequest::new(vector(3), 5)
    };
    assert!(top_ids(&memory, &request).await.is_empty());
    assert!(
        !top_ids(&memory, &SearchRequest::new(vector(3), 100))
            .await
            .contains(&"doc-003".to_string())
    );

    let ids = vec!["doc-000".to_string(), "not-there".to_string()];
    let deleted = memory
        .delete_documents(TENANT, "docs", &DocumentSelector::Ids(ids.clone()))
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert!(
        memory
            .get_documents(TENANT, "docs", &ids, false)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        memory.count_documents(TENANT, "docs", None).await.unwrap(),
        89
    );
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let options = MemoryOptions {
        max_documents_per_upsert: 10,
        max_text_bytes: 100,
        ..MemoryOptions::default()
    };
    let (memory, _store) = open_with(dir.path(), options).await;
    create(&memory, TENANT, "docs").await;

    let mut wrong_dimensions = docs(0..5);
    wrong_dimensions[3].embedding = Some(vec![1.0; DIM + 1]);
    let mut not_a_number = docs(0..5);
    not_a_number[2].embedding.as_mut().unwrap()[4] = f32::NAN;
    let mut not_an_object = docs(0..5);
    not_an_object[1].metadata = json!(["a", "list"]);
    let mut duplicate = docs(0..5);
    duplicate[4].id = Some("doc-000".to_string());
    let mut long_text = docs(0..5);
    long_text[0].text = "x".repeat(101);
    let mut no_embedding = docs(0..5);
    no_embedding[2].embedding = None;
    let mut zero = docs(0..5);
    zero[1].embedding = Some(vec![0.0; DIM]);
    let cases = [
        (wrong_dimensions, "documents[3].embedding"),
        (not_a_number, "documents[2].embedding"),
        (not_an_object, "documents[1].metadata"),
        (duplicate, "documents[4].id"),
        (long_text, "documents[0].text"),
        (no_embedding, "documents[2].embedding"),
        (zero, "documents[1].embedding"),
        (docs(0..11), "documents"),
    ];
    for (documents, field) in cases {
        let error = memory
            .upsert_documents(TENANT, "docs", documents)
            .await
            .unwrap_err();
        match &error {
            MemoryError::Invalid { field: named, .. }
            | MemoryError::TooLarge { field: named, .. } => {
                assert_eq!(named, field, "{error}")
            }
            other => panic!("{field}: {other:?}"),
        }
        assert_eq!(
            memory.count_documents(TENANT, "docs", None).await.unwrap(),
            0
        );
    }

    let error = memory
        .search(TENANT, "docs", &SearchRequest::new(vec![1.0; 3], 5))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("`vector`"), "{error}");
    let error = memory
        .create_collection(
            TENANT,
            NewCollection {
                metadata: json!("text"),
                ..NewCollection::new("other", DIM)
            },
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("`metadata`"), "{error}");
    let error = memory
        .create_collection(TENANT, NewCollection::new("bad name", DIM))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("`name`"), "{error}");
}

#[tokio::test]
async fn a_restart_finds_every_acknowledged_document() {
    let dir = tempfile::tempdir().unwrap();
    // A snapshot every 100 writes: the restart loads one and replays the writes after it.
    let options = MemoryOptions {
        snapshot_after_writes: 100,
        ..MemoryOptions::default()
    };
    let (memory, store) = open_with(dir.path(), options.clone()).await;
    create(&memory, TENANT, "docs").await;
    for start in (0..300).step_by(40) {
        memory
            .upsert_documents(TENANT, "docs", docs(start..(start + 40).min(300)))
            .await
            .unwrap();
    }
    // Writes after the last snapshot: a replacement and deletes.
    let replacement = NewDocument {
        embedding: Some(vector(5_000)),
        ..doc(10)
    };
    memory
        .upsert_documents(TENANT, "docs", vec![replacement])
        .await
        .unwrap();
    let removed: Vec<String> = (290..300).map(|i| format!("doc-{i:03}")).collect();
    memory
        .delete_documents(TENANT, "docs", &DocumentSelector::Ids(removed.clone()))
        .await
        .unwrap();
    let collection = memory.collection(TENANT, "docs").await.unwrap();
    let snapshot = memory.snapshot_path(&collection);
    let (_, snapshot_sequence) = Hnsw::load(&snapshot).expect("a snapshot was saved");
    assert!(
        snapshot_sequence > 0 && snapshot_sequence < 302,
        "{snapshot_sequence}"
    );
    drop(memory);
    store.close().await;

    let (memory, store) = open_with(dir.path(), options).await;
    assert_eq!(
        memory.count_documents(TENANT, "docs", None).await.unwrap(),
        290
    );
    for i in (0..290).step_by(7).filter(|i| *i != 10) {
        let top = top_ids(&memory, &SearchRequest::new(vector(i), 1)).await;
        assert_eq!(top, [format!("doc-{i:03}")]);
    }
    assert_eq!(
        top_ids(&memory, &SearchRequest::new(vector(5_000), 1)).await,
        ["doc-010"]
    );
    let everything = top_ids(&memory, &SearchRequest::new(vector(295), 300)).await;
    assert_eq!(everything.len(), 290);
    assert!(removed.iter().all(|id| !everything.contains(id)));
    // The index came from the snapshot plus replay, not a rebuild (which would save anew).
    assert_eq!(Hnsw::load(&snapshot).unwrap().1, snapshot_sequence);

    // Saving at shutdown makes the next start replay nothing.
    memory.save_snapshots().await.unwrap();
    assert_eq!(Hnsw::load(&snapshot).unwrap().1, 302);
    drop(memory);
    store.close().await;
}

#[tokio::test]
async fn a_damaged_snapshot_is_rebuilt_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let (memory, store) = open(dir.path()).await;
    create(&memory, TENANT, "docs").await;
    memory
        .upsert_documents(TENANT, "docs", docs(0..120))
        .await
        .unwrap();
    memory.save_snapshots().await.unwrap();
    let snapshot = memory.snapshot_path(&memory.collection(TENANT, "docs").await.unwrap());
    drop(memory);
    store.close().await;

    let mut bytes = std::fs::read(&snapshot).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&snapshot, &bytes).unwrap();
    assert!(Hnsw::load(&snapshot).is_err());

    let (memory, store) = open(dir.path()).await;
    for i in (0..120).step_by(11) {
        let top = top_ids(&memory, &SearchRequest::new(vector(i), 1)).await;
        assert_eq!(top, [format!("doc-{i:03}")]);
    }
    // The rebuilt index was saved over the damaged file.
    assert_eq!(Hnsw::load(&snapshot).unwrap().1, 120);
    drop(memory);
    store.close().await;
}

#[tokio::test]
async fn cursors_page_through_documents_and_collections() {
    let dir = tempfile::tempdir().unwrap();
    let (memory, _store) = open(dir.path()).await;
    create(&memory, TENANT, "docs").await;
    memory
        .upsert_documents(TENANT, "docs", docs(0..25))
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut page = PageRequest::first(10);
    let mut sizes = Vec::new();
    loop {
        let listed = memory
            .list_documents(TENANT, "docs", &page, None, false)
            .await
            .unwrap();
        sizes.push(listed.items.len());
        seen.extend(listed.items.into_iter().map(|document| document.id));
        match listed.next_cursor {
            Some(cursor) => page.after = Some(cursor),
            None => break,
        }
    }
    assert_eq!(sizes, [10, 10, 5]);
    let expected: Vec<String> = (0..25).map(|i| format!("doc-{i:03}")).collect();
    assert_eq!(seen, expected);

    // With a filter, pages hold only matches.
    let even = filter(json!({"key": "even", "type": "eq", "value": true}));
    let mut seen = Vec::new();
    let mut page = PageRequest::first(5);
    loop {
        let listed = memory
            .list_documents(TENANT, "docs", &page, Some(&even), false)
            .await
            .unwrap();
        assert!(listed.items.len() <= 5);
        seen.extend(listed.items.into_iter().map(|document| document.id));
        match listed.next_cursor {
            Some(cursor) => page.after = Some(cursor),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).step_by(2).map(|i| format!("doc-{i:03}")).collect();
    assert_eq!(seen, expected);

    for name in ["b-docs", "c-docs"] {
        create(&memory, TENANT, name).await;
    }
    let first = memory
        .list_collections(TENANT, &PageRequest::first(2))
        .await
        .unwrap();
    let names: Vec<&str> = first.items.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["b-docs", "c-docs"]);
    let second = memory
        .list_collections(
            TENANT,
            &PageRequest {
                after: first.next_cursor,
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(second.items[0].name, "docs");
    assert_eq!(second.next_cursor, None);
}

#[tokio::test]
async fn a_deleted_collection_takes_its_rows_index_and_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (memory, _store) = open(dir.path()).await;
    create(&memory, TENANT, "docs").await;
    memory
        .upsert_documents(TENANT, "docs", docs(0..30))
        .await
        .unwrap();
    memory.save_snapshots().await.unwrap();
    let collection = memory.collection(TENANT, "docs").await.unwrap();
    let snapshot = memory.snapshot_path(&collection);
    assert!(snapshot.exists());

    // Updates keep the index; a rename moves the name.
    let renamed = memory
        .update_collection(
            TENANT,
            "docs",
            CollectionUpdate {
                name: Some("notes".to_string()),
                metadata: Some(json!({"owner": "me"})),
                ef: Some(100),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (renamed.id.as_str(), renamed.ef),
        (collection.id.as_str(), 100)
    );
    assert_eq!(top_ids_in(&memory, "notes", 4).await, ["doc-004"]);

    memory.delete_collection(TENANT, "notes").await.unwrap();
    assert!(!snapshot.exists());
    assert!(matches!(
        memory.collection(TENANT, "notes").await,
        Err(MemoryError::NotFound { .. })
    ));
    create(&memory, TENANT, "notes").await;
    assert_eq!(
        memory.count_documents(TENANT, "notes", None).await.unwrap(),
        0
    );
    assert!(
        memory
            .search(TENANT, "notes", &SearchRequest::new(vector(4), 3))
            .await
            .unwrap()
            .hits
            .is_empty()
    );
}

async fn top_ids_in(memory: &Memory, collection: &str, seed: u64) -> Vec<String> {
    memory
        .search(TENANT, collection, &SearchRequest::new(vector(seed), 1))
        .await
        .unwrap()
        .hits
        .into_iter()
        .map(|hit| hit.document.id)
        .collect()
}

#[tokio::test]
async fn a_tenant_at_its_collection_limit_makes_no_more_and_others_are_not_held_back() {
    let dir = tempfile::tempdir().unwrap();
    let (memory, _store) = open_with(
        dir.path(),
        MemoryOptions {
            max_collections_per_tenant: 2,
            ..MemoryOptions::default()
        },
    )
    .await;
    create(&memory, TENANT, "one").await;
    create(&memory, TENANT, "two").await;
    let refused = memory
        .create_collection(TENANT, NewCollection::new("three", DIM))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, MemoryError::LimitReached { .. }),
        "{refused:?}"
    );
    create(&memory, "tenant-b", "three").await;
    memory.delete_collection(TENANT, "one").await.unwrap();
    create(&memory, TENANT, "three").await;
}

#[tokio::test]
async fn a_tenant_at_its_chunk_limit_stores_no_more_until_it_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let (memory, _store) = open_with(
        dir.path(),
        MemoryOptions {
            max_chunks_per_tenant: 3,
            ..MemoryOptions::default()
        },
    )
    .await;
    create(&memory, TENANT, "docs").await;
    create(&memory, "tenant-b", "docs").await;
    memory
        .upsert_documents(TENANT, "docs", vec![doc(1), doc(2)])
        .await
        .unwrap();
    let refused = memory
        .upsert_documents(TENANT, "docs", vec![doc(3), doc(4)])
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, MemoryError::LimitReached { field, .. } if field == "documents"),
        "{refused:?}"
    );
    // Nothing of the refused write was stored; another tenant has its own room.
    assert_eq!(
        memory.count_documents(TENANT, "docs", None).await.unwrap(),
        2
    );
    memory
        .upsert_documents("tenant-b", "docs", vec![doc(1), doc(2), doc(3)])
        .await
        .unwrap();
    memory
        .delete_documents(
            TENANT,
            "docs",
            &DocumentSelector::Ids(vec![doc(1).id.unwrap()]),
        )
        .await
        .unwrap();
    memory
        .upsert_documents(TENANT, "docs", vec![doc(3), doc(4)])
        .await
        .unwrap();
}

//! Vector stores over real files, a real store and the real local embedding model: attached
//! files are read in the background into passages found by meaning and keywords, filtered by
//! their attributes; detached, cancelled and unreadable files leave nothing searchable; a
//! restart resumes files left in progress; expired stores refuse use and lose their passages;
//! and one tenant never sees another's stores.

use std::sync::Arc;
use std::time::Duration;

use hearth_memory::{
    Chunking, FileStatus, FileToAttach, Files, Filter, ListRequest, MemoryError, NewVectorStore,
    StoreSearch, VectorStoreStatus, VectorStoreUpdate, VectorStores,
};
use hearth_store::{Store, VectorStoreFileRow};
use serde_json::json;

use crate::embedded::open_with_store;

const TENANT: &str = "tenant-a";

const CATS: &str = "# Cats\n\nThe cat slept all afternoon on the warm windowsill, purring softly. \
Kittens nap in sunny spots and chase each other around the garden.";
const SOUP: &str = "Simmer the tomatoes with garlic and basil for twenty minutes, then blend \
them into a smooth soup and season with salt and pepper.";
const FOOTBALL: &str = "<html><head><style>p {color: red}</style></head><body>\
<h1>Final</h1><p>The football team won the championship in extra time.</p></body></html>";

async fn open(dir: &std::path::Path) -> (Store, VectorStores, Files) {
    let (store, memory) = open_with_store(dir).await;
    let files = Files::new(store.clone(), dir, 1 << 20);
    let service = VectorStores::start(store.clone(), Arc::new(memory), files.clone(), None)
        .await
        .expect("start vector stores");
    (store, service, files)
}

/// Waits until the store has no file in progress (the worker reads them one at a time).
async fn settled(service: &VectorStores, id: &str) -> hearth_memory::VectorStore {
    for _ in 0..600 {
        let store = service.get(TENANT, id).await.expect("get store");
        if store.status != VectorStoreStatus::InProgress {
            return store;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("vector store {id} still has files in progress after 30 s");
}

fn search(query: &str) -> StoreSearch {
    StoreSearch::new(query)
}

#[tokio::test]
async fn attached_files_become_passages_found_by_meaning_and_filtered_by_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, service, files) = open(dir.path()).await;
    let cats = files
        .create(TENANT, "cats.md", "assistants", CATS.as_bytes().to_vec())
        .await
        .unwrap();
    let soup = files
        .create(TENANT, "soup.txt", "assistants", SOUP.as_bytes().to_vec())
        .await
        .unwrap();
    let football = files
        .create(
            TENANT,
            "final.html",
            "assistants",
            FOOTBALL.as_bytes().to_vec(),
        )
        .await
        .unwrap();
    let scan = files
        .create(
            TENANT,
            "scan.pdf",
            "assistants",
            b"%PDF-1.4 binary".to_vec(),
        )
        .await
        .unwrap();

    let created = service
        .create(
            TENANT,
            NewVectorStore {
                name: Some("handbook".to_string()),
                files: vec![FileToAttach::new(&cats.id), FileToAttach::new(&soup.id)],
                chunking: Some(Chunking::Static {
                    max_tokens: 100,
                    overlap_tokens: 20,
                }),
                metadata: Some(json!({"team": "docs"})),
                expires_after_days: Some(7),
            },
        )
        .await
        .unwrap();
    assert!(created.id.starts_with("vs_"), "{}", created.id);
    assert_eq!(created.file_counts.total(), 2);
    assert!(created.expires_at_ms.is_some());

    let attached = service
        .attach_file(
            TENANT,
            &created.id,
            FileToAttach {
                attributes: Some(json!({"sport": true, "year": 2024})),
                ..FileToAttach::new(&football.id)
            },
        )
        .await
        .unwrap();
    assert_eq!(attached.chunking, Chunking::Auto);
    let batch = service
        .create_batch(TENANT, &created.id, vec![FileToAttach::new(&scan.id)], None)
        .await
        .unwrap();
    assert!(batch.id.starts_with("vsfb_"));

    let done = settled(&service, &created.id).await;
    assert_eq!(done.status, VectorStoreStatus::Completed);
    assert_eq!(
        (done.file_counts.completed, done.file_counts.failed),
        (3, 1)
    );
    assert!(done.file_counts.usage_bytes > 0);
    let failed = service.file(TENANT, &created.id, &scan.id).await.unwrap();
    assert_eq!(failed.status, FileStatus::Failed);
    assert_eq!(
        failed.last_error.as_ref().map(|error| error.code.as_str()),
        Some("unsupported_file")
    );
    let batch = service.batch(TENANT, &created.id, &batch.id).await.unwrap();
    assert_eq!(batch.status, FileStatus::Completed);
    assert_eq!(batch.file_counts.failed, 1);

    // Found by meaning: no word of the query is in the file.
    let results = service
        .search(
            TENANT,
            &created.id,
            &search("a kitten dozing in the sunshine"),
        )
        .await
        .unwrap();
    let best = &results.hits[0];
    assert_eq!(
        (best.file_id.as_str(), best.filename.as_str()),
        (cats.id.as_str(), "cats.md")
    );
    assert!(best.score > 0.0 && best.score <= 1.0, "{}", best.score);
    assert!(results.embedding_tokens > 0);

    // Attributes filter; HTML was read as its visible text.
    let mut sport = search("who won the match");
    sport.filter =
        Some(Filter::parse(&json!({"key": "sport", "type": "eq", "value": true})).unwrap());
    let results = service.search(TENANT, &created.id, &sport).await.unwrap();
    assert_eq!(results.hits.len(), 1);
    assert_eq!(results.hits[0].file_id, football.id);
    assert_eq!(results.hits[0].attributes["year"], json!(2024));
    assert!(results.hits[0].text.contains("won the championship"));
    assert!(
        !results.hits[0].text.contains("color"),
        "{}",
        results.hits[0].text
    );

    // A threshold of 1 keeps only a passage first on both rankings, if any.
    let mut strict = search("tomatoes garlic basil soup");
    strict.score_threshold = 1.0;
    let results = service.search(TENANT, &created.id, &strict).await.unwrap();
    assert!(results.hits.iter().all(|hit| hit.file_id == soup.id));

    let passages = service
        .file_content(TENANT, &created.id, &cats.id)
        .await
        .unwrap();
    assert!(passages.concat().contains("purring softly"), "{passages:?}");

    // Detached: its passages go with it, the file stays.
    service
        .detach_file(TENANT, &created.id, &soup.id)
        .await
        .unwrap();
    let results = service
        .search(TENANT, &created.id, &search("tomato soup with basil"))
        .await
        .unwrap();
    assert!(results.hits.iter().all(|hit| hit.file_id != soup.id));
    assert!(files.get(TENANT, &soup.id).await.is_ok());

    // Completed files page in attach order.
    let page = service
        .list_files(
            TENANT,
            &created.id,
            None,
            Some(FileStatus::Completed),
            &ListRequest {
                descending: false,
                ..ListRequest::newest(1)
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(page.has_more);
    assert_eq!(page.items[0].file_id, cats.id);

    // Another tenant sees nothing of it.
    assert!(matches!(
        service.get("tenant-b", &created.id).await,
        Err(MemoryError::NotFound { .. })
    ));
    assert!(matches!(
        service
            .search("tenant-b", &created.id, &search("cat"))
            .await,
        Err(MemoryError::NotFound { .. })
    ));

    let renamed = service
        .update(
            TENANT,
            &created.id,
            VectorStoreUpdate {
                name: Some("renamed".to_string()),
                expires_after_days: Some(None),
                ..VectorStoreUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "renamed");
    assert_eq!(renamed.expires_at_ms, None);

    service.delete(TENANT, &created.id).await.unwrap();
    assert!(matches!(
        service.get(TENANT, &created.id).await,
        Err(MemoryError::NotFound { .. })
    ));
    let listed = service
        .list(TENANT, &ListRequest::newest(10))
        .await
        .unwrap();
    assert!(listed.items.is_empty());
}

#[tokio::test]
async fn bad_requests_make_nothing_and_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, service, files) = open(dir.path()).await;
    let other = files
        .create("tenant-b", "b.txt", "assistants", b"theirs".to_vec())
        .await
        .unwrap();
    let error = service
        .create(
            TENANT,
            NewVectorStore {
                files: vec![FileToAttach::new(&other.id)],
                ..NewVectorStore::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, MemoryError::Invalid { field, .. } if field == "file_ids[0]"),
        "{error:?}"
    );
    let error = service
        .create(
            TENANT,
            NewVectorStore {
                chunking: Some(Chunking::Static {
                    max_tokens: 200,
                    overlap_tokens: 150,
                }),
                ..NewVectorStore::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, MemoryError::Invalid { field, .. }
            if field == "chunking_strategy.static.chunk_overlap_tokens"),
        "{error:?}"
    );
    let error = service
        .create(
            TENANT,
            NewVectorStore {
                metadata: Some(json!({"nested": {"no": 1}})),
                ..NewVectorStore::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, MemoryError::Invalid { field, .. } if field == "metadata.nested"),
        "{error:?}"
    );
    assert!(
        service
            .list(TENANT, &ListRequest::newest(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn a_restart_reads_the_files_left_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let (store, service, files) = open(dir.path()).await;
    let cats = files
        .create(TENANT, "cats.md", "assistants", CATS.as_bytes().to_vec())
        .await
        .unwrap();
    let created = service
        .create(TENANT, NewVectorStore::default())
        .await
        .unwrap();
    drop(service);
    // What a crash after the attach committed and before the file was read leaves.
    let row = VectorStoreFileRow {
        vector_store_id: created.id.clone(),
        file_id: cats.id.clone(),
        batch_id: None,
        filename: "cats.md".to_string(),
        status: "in_progress".to_string(),
        error_code: None,
        error_message: None,
        attributes: "{}".to_string(),
        chunking_auto: true,
        max_chunk_tokens: 800,
        chunk_overlap_tokens: 400,
        usage_bytes: 0,
        attempt: "left-by-a-crash".to_string(),
        created_at_ms: 1,
    };
    assert!(
        store
            .attach_vector_store_files(None, &[row], 1)
            .await
            .unwrap()
    );

    let (_store, service, _files) = open(dir.path()).await;
    let done = settled(&service, &created.id).await;
    assert_eq!(done.file_counts.completed, 1);
    let results = service
        .search(TENANT, &created.id, &search("sleeping cat"))
        .await
        .unwrap();
    assert_eq!(results.hits[0].file_id, cats.id);
}

#[tokio::test]
async fn an_expired_store_refuses_use_and_its_passages_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (store, service, _files) = open(dir.path()).await;
    let created = service
        .create(
            TENANT,
            NewVectorStore {
                expires_after_days: Some(1),
                ..NewVectorStore::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(service.sweep_expired().await.unwrap(), 0);
    // Unused for two days.
    let mut row = store
        .vector_store(TENANT, &created.id)
        .await
        .unwrap()
        .unwrap();
    row.last_active_at_ms -= 2 * 86_400_000;
    assert!(store.update_vector_store(&row).await.unwrap());

    let expired = service.get(TENANT, &created.id).await.unwrap();
    assert_eq!(expired.status, VectorStoreStatus::Expired);
    assert!(matches!(
        service
            .search(TENANT, &created.id, &search("anything"))
            .await,
        Err(MemoryError::Invalid { .. })
    ));
    assert_eq!(service.sweep_expired().await.unwrap(), 1);
    assert!(
        store
            .memory_collection(TENANT, &created.id)
            .await
            .unwrap()
            .is_none(),
        "the expired store's collection is deleted"
    );
    assert_eq!(service.sweep_expired().await.unwrap(), 0);
    assert_eq!(
        service.get(TENANT, &created.id).await.unwrap().status,
        VectorStoreStatus::Expired
    );
    // Deleting it still works.
    service.delete(TENANT, &created.id).await.unwrap();
}

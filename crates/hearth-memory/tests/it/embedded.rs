//! Collections that embed their own text, with the real all-MiniLM-L6-v2 behind the service's
//! `Embedder`: documents sent without vectors are found by meaning, and what cannot be
//! embedded is refused before anything is written.

use std::path::PathBuf;
use std::sync::Arc;

use hearth_embed::EmbeddingModel;
use hearth_memory::{
    ChunkSize, EmbedFailure, EmbedFailureKind, EmbedFuture, Embedded, Embedder, Memory,
    MemoryError, MemoryOptions, NewCollection, NewDocument, PageRequest, SearchRequest,
};
use hearth_store::{IntegrityCheck, OpenOptions, Store};
use serde_json::json;

/// The name the tests give the model.
const MODEL: &str = "minilm";

fn model_dir() -> PathBuf {
    let cache = std::env::var_os("HEARTH_MODEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/hearth/models")
        });
    let dir = cache.join("all-minilm-l6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "sample models missing in {}; run scripts/fetch-sample-models",
        cache.display()
    );
    dir
}

/// The local model, answering to [`MODEL`] only.
struct MiniLm(EmbeddingModel);

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("MiniLm")
    }
}

impl MiniLm {
    fn check(model: &str) -> Result<(), EmbedFailure> {
        if model == MODEL {
            Ok(())
        } else {
            Err(EmbedFailure::new(
                EmbedFailureKind::UnknownModel,
                format!("model `{model}` not found"),
            ))
        }
    }
}

impl Embedder for MiniLm {
    fn dimensions<'a>(&'a self, model: &'a str) -> EmbedFuture<'a, usize> {
        Box::pin(async move {
            MiniLm::check(model)?;
            Ok(self.0.dimensions())
        })
    }

    fn embed<'a>(&'a self, model: &'a str, texts: Vec<String>) -> EmbedFuture<'a, Embedded> {
        Box::pin(async move {
            MiniLm::check(model)?;
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            let embeddings = self.0.embed(&texts).map_err(|error| {
                EmbedFailure::new(EmbedFailureKind::Unavailable, error.to_string())
            })?;
            Ok(Embedded {
                tokens: embeddings.total_tokens() as u64,
                vectors: embeddings
                    .items
                    .into_iter()
                    .map(|item| item.vector)
                    .collect(),
            })
        })
    }

    fn chunk<'a>(
        &'a self,
        model: &'a str,
        texts: &'a [&'a str],
        size: ChunkSize,
    ) -> EmbedFuture<'a, Vec<Vec<std::ops::Range<usize>>>> {
        Box::pin(async move {
            MiniLm::check(model)?;
            let chunker = self.0.chunker();
            let (max, overlap) = size.resolve(chunker.max_content_tokens());
            texts
                .iter()
                .map(|text| chunker.chunk(text, max, overlap))
                .collect::<Result<_, _>>()
                .map_err(|error| {
                    EmbedFailure::new(EmbedFailureKind::InvalidInput, error.to_string())
                })
        })
    }
}

async fn open(dir: &std::path::Path) -> Memory {
    open_with_store(dir).await.1
}

/// The store and a memory service over it that embeds with the real model under [`MODEL`]
/// (its default model).
pub(crate) async fn open_with_store(dir: &std::path::Path) -> (Store, Memory) {
    let store = Store::open(
        dir,
        OpenOptions {
            integrity_check: IntegrityCheck::Quick,
            run_migrations: true,
        },
    )
    .await
    .expect("open store");
    let model = EmbeddingModel::load(model_dir()).expect("load the model");
    let memory = Memory::new(
        store.clone(),
        dir,
        MemoryOptions {
            index_threads: 1,
            default_embedding_model: Some(MODEL.to_string()),
            ..MemoryOptions::default()
        },
    )
    .with_embedder(Arc::new(MiniLm(model)));
    (store, memory)
}

const TENANT: &str = "tenant-a";

#[tokio::test]
async fn text_is_embedded_with_the_collections_model_and_found_by_meaning() {
    let dir = tempfile::tempdir().unwrap();
    let memory = open(dir.path()).await;
    let collection = memory
        .create_collection(TENANT, NewCollection::embedded("notes", None))
        .await
        .unwrap();
    assert_eq!(collection.embedding_model.as_deref(), Some(MODEL));
    assert_eq!(collection.dimensions, 384);

    let texts = [
        "The cat slept all afternoon on the warm windowsill.",
        "Stock markets fell sharply after the interest rate announcement.",
        "Simmer the tomatoes with garlic and basil to make a soup.",
        "The football team won the championship in extra time.",
    ];
    let mut documents: Vec<NewDocument> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| NewDocument {
            id: Some(format!("note-{i}")),
            metadata: json!({"i": i}),
            ..NewDocument::text(*text)
        })
        .collect();
    // A document may still bring its own vector.
    let mut own = vec![0.0_f32; 384];
    own[0] = 1.0;
    documents.push(NewDocument {
        id: Some("own-vector".to_string()),
        ..NewDocument::with_embedding("no text embedded", own)
    });
    let upserted = memory
        .upsert_documents(TENANT, "notes", documents)
        .await
        .unwrap();
    assert_eq!(upserted.ids.len(), 5);
    assert!(upserted.embedding_tokens > 20, "{upserted:?}");
    assert_eq!(upserted.embedding_model.as_deref(), Some(MODEL));

    for (query, expected) in [
        ("a kitten napping in the sun", "note-0"),
        ("recipe for dinner", "note-2"),
        ("shares and investors", "note-1"),
        ("who won the match?", "note-3"),
    ] {
        let results = memory
            .search(TENANT, "notes", &SearchRequest::text(query, 2))
            .await
            .unwrap();
        assert_eq!(
            results.hits[0].document.id, expected,
            "{query}: {results:?}"
        );
        assert!(results.embedding_tokens > 0);
    }
}

#[tokio::test]
async fn what_cannot_be_embedded_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let memory = open(dir.path()).await;
    let unknown = memory
        .create_collection(
            TENANT,
            NewCollection::embedded("other", Some("no-such-model".to_string())),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&unknown, MemoryError::Embedding { field, failure }
            if field == "embedding_model" && failure.kind == EmbedFailureKind::UnknownModel),
        "{unknown:?}"
    );
    let mismatch = memory
        .create_collection(
            TENANT,
            NewCollection {
                dimensions: Some(768),
                ..NewCollection::embedded("wrong", Some(MODEL.to_string()))
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&mismatch, MemoryError::Invalid { field, .. } if field == "dimensions"),
        "{mismatch:?}"
    );

    memory
        .create_collection(TENANT, NewCollection::embedded("notes", None))
        .await
        .unwrap();
    let empty = memory
        .upsert_documents(
            TENANT,
            "notes",
            vec![NewDocument::text("fine"), NewDocument::text("  ")],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&empty, MemoryError::Invalid { field, .. } if field == "documents[1].text"),
        "{empty:?}"
    );
    assert_eq!(
        memory.count_documents(TENANT, "notes", None).await.unwrap(),
        0
    );
    let blank_query = memory
        .search(TENANT, "notes", &SearchRequest::text(" ", 3))
        .await
        .unwrap_err();
    assert!(
        matches!(&blank_query, MemoryError::Invalid { field, .. } if field == "query"),
        "{blank_query:?}"
    );
}

#[tokio::test]
async fn a_long_document_is_split_into_chunks_found_anywhere_and_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let memory = open(dir.path()).await;
    memory
        .create_collection(TENANT, NewCollection::embedded("books", None))
        .await
        .unwrap();
    // About 1,500 tokens: far past the 256 MiniLM reads, with its one mention of volcanoes
    // at the very end.
    let filler = "The committee reviewed the quarterly budget and approved the minutes. ";
    let long = format!(
        "{}Finally, the lava from the erupting volcano flowed down to the sea.",
        filler.repeat(110)
    );
    let short = "A recipe for tomato soup with basil.";
    let upserted = memory
        .upsert_documents(
            TENANT,
            "books",
            vec![
                NewDocument {
                    id: Some("long".to_string()),
                    ..NewDocument::text(long.clone())
                },
                NewDocument {
                    id: Some("short".to_string()),
                    ..NewDocument::text(short)
                },
            ],
        )
        .await
        .unwrap();
    assert!(upserted.embedding_tokens > 1000, "{upserted:?}");

    let found = memory
        .search(
            TENANT,
            "books",
            &SearchRequest::text("volcanic eruption", 1),
        )
        .await
        .unwrap();
    let hit = &found.hits[0];
    assert_eq!(hit.document.id, "long");
    assert!(
        hit.chunk_index > 0,
        "the end of the text is its own chunk: {hit:?}"
    );
    assert!(hit.document.text.contains("volcano") && hit.document.text.len() < long.len());
    let keyword = memory
        .search(TENANT, "books", &SearchRequest::keyword("lava", 3))
        .await
        .unwrap();
    assert_eq!(
        keyword.hits.len(),
        1,
        "one chunk mentions lava: {keyword:?}"
    );

    // The document reads back whole, and counts as one.
    let read = memory
        .get_documents(TENANT, "books", &["long".to_string()], false)
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].text, long);
    assert_eq!(
        memory.count_documents(TENANT, "books", None).await.unwrap(),
        2
    );
    let listed = memory
        .list_documents(TENANT, "books", &PageRequest::first(10), None, false)
        .await
        .unwrap();
    let texts: Vec<&str> = listed
        .items
        .iter()
        .map(|document| document.text.as_str())
        .collect();
    assert_eq!(texts, [long.as_str(), short]);

    // Replacing it replaces every chunk; deleting it deletes them all.
    memory
        .upsert_documents(
            TENANT,
            "books",
            vec![NewDocument {
                id: Some("long".to_string()),
                ..NewDocument::text("Now a short note about gardening.")
            }],
        )
        .await
        .unwrap();
    let gone = memory
        .search(TENANT, "books", &SearchRequest::keyword("lava", 3))
        .await
        .unwrap();
    assert!(gone.hits.is_empty(), "{gone:?}");
    let deleted = memory
        .delete_documents(
            TENANT,
            "books",
            &hearth_memory::DocumentSelector::Ids(vec!["long".to_string()]),
        )
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(
        memory.count_documents(TENANT, "books", None).await.unwrap(),
        1
    );
}

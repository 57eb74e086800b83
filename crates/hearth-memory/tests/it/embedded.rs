//! Collections that embed their own text, with the real all-MiniLM-L6-v2 behind the service's
//! `Embedder`: documents sent without vectors are found by meaning, and what cannot be
//! embedded is refused before anything is written.

use std::path::PathBuf;
use std::sync::Arc;

use hearth_embed::EmbeddingModel;
use hearth_memory::{
    EmbedFailure, EmbedFailureKind, EmbedFuture, Embedded, Embedder, Memory, MemoryError,
    MemoryOptions, NewCollection, NewDocument, SearchRequest,
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
}

async fn open(dir: &std::path::Path) -> Memory {
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
    Memory::new(
        store,
        dir,
        MemoryOptions {
            index_threads: 1,
            default_embedding_model: Some(MODEL.to_string()),
            ..MemoryOptions::default()
        },
    )
    .with_embedder(Arc::new(MiniLm(model)))
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

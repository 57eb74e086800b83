//! Collections of documents, durable in the store and searchable through a vector index per
//! collection: the [`Memory`] service.
//!
//! A collection belongs to a tenant (a scope string the caller resolves); every operation
//! names the tenant, and another tenant's collection is "not found", never "forbidden". The
//! rows in the store are the truth: a write is acknowledged only after its transaction
//! commits, and only then applied to the loaded index. Indexes load on first use: from the
//! snapshot in `<data_dir>/memory/` plus the writes after it, or rebuilt from the rows when
//! the snapshot is missing, damaged or stale (see `loaded.rs`).
//!
//! A collection either embeds text itself, with its embedding model through the service's
//! [`Embedder`], or takes the client's vectors; a document may bring its own vector either
//! way. Embedded text is split into chunks the model reads whole (each chunk its own row,
//! vector and keyword entry; chunk 0 keeps the whole text); a document that brings its vector
//! is one chunk.

mod loaded;
mod search;
mod types;
mod validate;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use hearth_store::{CollectionWrite, MemoryChunkRow, MemoryCollectionRow, NewMemoryChunk, Store};
use serde_json::Value;
use tokio::sync::{OnceCell, OwnedMutexGuard};

pub use types::{
    Collection, CollectionUpdate, Document, DocumentSelector, HybridWeights, NewCollection,
    NewDocument, Page, PageRequest, SearchHit, SearchMode, SearchRequest, SearchResults, Upserted,
};

use crate::{EmbedFailure, EmbedFailureKind, Embedded, Embedder, Filter, MemoryError, Metric};
pub(crate) use loaded::blocking;
use loaded::{Entry, LoadedIndex, Progress};
pub(crate) use validate::within;

/// The directory under the data directory that holds index snapshots.
pub const SNAPSHOT_DIRECTORY: &str = "memory";
/// The most items a list returns per page.
pub const MAX_PAGE_LIMIT: usize = 1000;
/// The most hits a search returns.
pub const MAX_TOP_K: usize = 1000;
/// The bounds of HNSW's effort parameters (`ef`, `ef_construction`).
const MAX_EF: usize = 10_000;
/// How many rows a filtered list reads from the store at a time.
const LIST_BATCH: i64 = 256;

/// Limits and tuning of the service.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryOptions {
    /// The most documents one upsert (or one delete by ids) may hold.
    pub max_documents_per_upsert: usize,
    /// The longest document text, in bytes.
    pub max_text_bytes: usize,
    /// A collection's index is snapshotted once this many write sequences (documents written
    /// or deletes) have been applied since its last snapshot, and on [`Memory::save_snapshots`].
    pub snapshot_after_writes: u64,
    /// Threads that build and insert into indexes (0: one per core).
    pub index_threads: usize,
    /// The model a collection created with neither dimensions nor a model embeds with.
    pub default_embedding_model: Option<String>,
    /// The most collections one tenant may have.
    pub max_collections_per_tenant: usize,
    /// The most chunks (documents, or their pieces when text is split) one tenant's
    /// collections may hold together.
    pub max_chunks_per_tenant: u64,
}

impl Default for MemoryOptions {
    fn default() -> MemoryOptions {
        MemoryOptions {
            max_documents_per_upsert: 1000,
            max_text_bytes: 1 << 20,
            snapshot_after_writes: 10_000,
            index_threads: 0,
            default_embedding_model: None,
            max_collections_per_tenant: 1000,
            max_chunks_per_tenant: 5_000_000,
        }
    }
}

/// The memory service: collections and documents over the store, with each collection's
/// index loaded on first use and kept in memory.
#[derive(Debug)]
pub struct Memory {
    store: Store,
    snapshot_directory: PathBuf,
    options: MemoryOptions,
    /// Embeds text for collections that have an embedding model; `None`: only vectors.
    embedder: Option<Arc<dyn Embedder>>,
    /// Loaded (or loading) indexes by collection id; a cell loads once however many wait.
    loaded: Mutex<Cells>,
    /// Each tenant's chunk count as last counted, moved by the upserts since; a delete drops
    /// the entry (counted again on the next upsert), and so does a count that says full.
    tenant_chunks: Mutex<HashMap<String, u64>>,
}

/// How an upsert chunks and bounds document text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TextShape {
    pub(crate) chunk: crate::ChunkSize,
    pub(crate) max_text_bytes: usize,
}

type Cells = HashMap<String, Arc<OnceCell<Arc<LoadedIndex>>>>;

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

fn collection_of(row: MemoryCollectionRow) -> Result<Collection, MemoryError> {
    let metric = Metric::from_name(&row.metric)
        .ok_or_else(|| MemoryError::StoredData(format!("unknown metric `{}`", row.metric)))?;
    Ok(Collection {
        metadata: validate::stored_metadata(&row.metadata)?,
        id: row.id,
        tenant_id: row.tenant_id,
        name: row.name,
        metric,
        dimensions: row.dimensions as usize,
        embedding_model: row.embedding_model,
        int8: row.int8,
        m: row.hnsw_m as usize,
        ef_construction: row.hnsw_ef_construction as usize,
        ef: row.hnsw_ef as usize,
        created_at_ms: row.created_at_ms,
    })
}

fn document_of(
    row: MemoryChunkRow,
    dimensions: usize,
    include_embedding: bool,
) -> Result<Document, MemoryError> {
    let embedding = if include_embedding {
        let mut vector = Vec::with_capacity(dimensions);
        validate::decode_embedding_into(&row.embedding, dimensions, &mut vector)?;
        Some(vector)
    } else {
        None
    };
    Ok(Document {
        metadata: validate::stored_metadata(&row.metadata)?,
        id: row.document_id,
        // Chunk 0 of a document split in several carries the whole text.
        text: row.document_text.unwrap_or(row.text),
        embedding,
    })
}

/// Turns an embedder's failure into the error naming what was being embedded.
fn embedding_failure(field: &str) -> impl FnOnce(EmbedFailure) -> MemoryError + '_ {
    move |failure| MemoryError::Embedding {
        field: field.to_string(),
        failure,
    }
}

fn not_found(name: &str) -> MemoryError {
    MemoryError::NotFound {
        what: format!("collection `{name}`"),
    }
}

impl Memory {
    /// The service over `store`, keeping index snapshots under `data_dir`.
    pub fn new(store: Store, data_dir: &Path, options: MemoryOptions) -> Memory {
        Memory {
            store,
            snapshot_directory: data_dir.join(SNAPSHOT_DIRECTORY),
            options,
            embedder: None,
            loaded: Mutex::new(HashMap::new()),
            tenant_chunks: Mutex::new(HashMap::new()),
        }
    }

    /// The service embedding text through `embedder`.
    pub fn with_embedder(mut self, embedder: Arc<dyn Embedder>) -> Memory {
        self.embedder = Some(embedder);
        self
    }

    fn embedder(&self, field: &str) -> Result<&dyn Embedder, MemoryError> {
        self.embedder
            .as_deref()
            .ok_or_else(|| MemoryError::Embedding {
                field: field.to_string(),
                failure: EmbedFailure::new(
                    EmbedFailureKind::Unavailable,
                    "this server has no embedding model; send embeddings with the documents",
                ),
            })
    }

    /// Embeds `texts` with `model`; a failure names `field`.
    async fn embed(
        &self,
        field: &str,
        model: &str,
        texts: Vec<String>,
    ) -> Result<Embedded, MemoryError> {
        let count = texts.len();
        let embedded = self
            .embedder(field)?
            .embed(model, texts)
            .await
            .map_err(embedding_failure(field))?;
        if embedded.vectors.len() != count {
            return Err(MemoryError::Embedding {
                field: field.to_string(),
                failure: EmbedFailure::new(
                    EmbedFailureKind::Unavailable,
                    format!(
                        "model `{model}` returned {} vectors for {count} texts",
                        embedded.vectors.len()
                    ),
                ),
            });
        }
        Ok(embedded)
    }

    /// Where a collection's index snapshot lives.
    pub fn snapshot_path(&self, collection: &Collection) -> PathBuf {
        self.snapshot_file(&collection.id)
    }

    fn snapshot_file(&self, collection_id: &str) -> PathBuf {
        // Collection ids are UUIDs made here, so they are safe as file names.
        self.snapshot_directory
            .join(format!("{collection_id}.hnsw"))
    }

    fn cells(&self) -> std::sync::MutexGuard<'_, Cells> {
        self.loaded.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The collection's loaded index, loading it on first use.
    async fn index_of(&self, row: &MemoryCollectionRow) -> Result<Arc<LoadedIndex>, MemoryError> {
        let cell = Arc::clone(self.cells().entry(row.id.clone()).or_default());
        let snapshot = self.snapshot_file(&row.id);
        let threads = self.options.index_threads;
        let loaded = cell
            .get_or_try_init(|| async {
                // Collections made before keyword search get their text index on first use,
                // before any write to them can need it.
                self.store.ensure_memory_text_index(&row.id).await?;
                LoadedIndex::load(&self.store, row, snapshot, threads).await
            })
            .await?;
        Ok(Arc::clone(loaded))
    }

    /// Loads every collection's index (at start, so that first searches do not wait for a
    /// load), telling `progress` how many of how many are done. A collection that fails to
    /// load is logged and left to load on first use. Returns how many loaded.
    pub async fn load_all(&self, progress: impl Fn(usize, usize)) -> Result<usize, MemoryError> {
        let rows = self.store.all_memory_collections().await?;
        let total = rows.len();
        let mut loaded = 0;
        for (done, row) in rows.iter().enumerate() {
            progress(done, total);
            match self.index_of(row).await {
                Ok(_) => loaded += 1,
                Err(error) => tracing::warn!(
                    collection = %row.id,
                    %error,
                    "a collection's index did not load; it is loaded again on first use"
                ),
            }
        }
        progress(total, total);
        Ok(loaded)
    }

    /// How many collection indexes are loaded in memory now.
    pub fn loaded_indexes(&self) -> usize {
        self.cells()
            .values()
            .filter(|cell| cell.initialized())
            .count()
    }

    /// Drops a collection's index from memory; the next use loads it again.
    fn forget(&self, collection_id: &str) {
        self.cells().remove(collection_id);
    }

    /// Forgets a collection found gone, and any snapshot a load made for it meanwhile.
    fn discard(&self, collection_id: &str) {
        self.forget(collection_id);
        // Ids are never reused, so the file cannot belong to anything else.
        let _ = std::fs::remove_file(self.snapshot_file(collection_id));
    }

    /// The collection's index with its write lock held. An index dropped while this waited
    /// for the lock (a failed apply, a deleted collection) is not written to: the next one is
    /// loaded from the store instead, so no committed write can miss the current index.
    async fn lock_for_write(
        &self,
        row: &MemoryCollectionRow,
    ) -> Result<(Arc<LoadedIndex>, OwnedMutexGuard<Progress>), MemoryError> {
        loop {
            let index = self.index_of(row).await?;
            let progress = Arc::clone(&index.write).lock_owned().await;
            let current = self
                .cells()
                .get(&row.id)
                .and_then(|cell| cell.get())
                .is_some_and(|current| Arc::ptr_eq(current, &index));
            if current {
                return Ok((index, progress));
            }
        }
    }

    async fn row(&self, tenant_id: &str, name: &str) -> Result<MemoryCollectionRow, MemoryError> {
        self.store
            .memory_collection(tenant_id, name)
            .await?
            .ok_or_else(|| not_found(name))
    }

    // ----- Collections. -----

    /// Creates a collection for `tenant_id`; a name the tenant already uses is a conflict.
    pub async fn create_collection(
        &self,
        tenant_id: &str,
        new: NewCollection,
    ) -> Result<Collection, MemoryError> {
        validate::collection_name("name", &new.name)?;
        let (embedding_model, dimensions) = self
            .resolve_embedding(new.embedding_model, new.dimensions)
            .await?;
        validate::within("m", new.m, 2..=128)?;
        validate::within("ef_construction", new.ef_construction, 1..=MAX_EF)?;
        validate::within("ef", new.ef, 1..=MAX_EF)?;
        let metadata = validate::metadata("metadata", new.metadata)?;
        let row = MemoryCollectionRow {
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id: tenant_id.to_string(),
            name: new.name,
            metric: new.metric.name().to_string(),
            dimensions: dimensions as i64,
            embedding_model,
            int8: new.int8,
            hnsw_m: new.m as i64,
            hnsw_ef_construction: new.ef_construction as i64,
            hnsw_ef: new.ef as i64,
            metadata: Value::Object(metadata).to_string(),
            created_at_ms: now_ms(),
            last_sequence: 0,
        };
        let max = self.options.max_collections_per_tenant;
        match self
            .store
            .insert_memory_collection(&row, i64::try_from(max).unwrap_or(i64::MAX))
            .await?
        {
            CollectionWrite::Written => collection_of(row),
            CollectionWrite::LimitReached => Err(MemoryError::LimitReached {
                field: "name".to_string(),
                reason: format!(
                    "this tenant has {max} collections, the most \
                     memory.max_collections_per_tenant allows; delete one first"
                ),
            }),
            CollectionWrite::NameTaken | CollectionWrite::NotFound => Err(MemoryError::Conflict(
                format!("a collection named `{}` already exists", row.name),
            )),
        }
    }

    /// The model and dimensions a new collection gets: a model's own dimensions (which given
    /// ones must equal), the default model's when neither is given, or the given dimensions
    /// alone for vectors the client supplies.
    async fn resolve_embedding(
        &self,
        model: Option<String>,
        dimensions: Option<usize>,
    ) -> Result<(Option<String>, usize), MemoryError> {
        if let Some(dimensions) = dimensions {
            validate::within("dimensions", dimensions, 1..=65_536)?;
        }
        let model = match (model, dimensions) {
            (Some(model), _) if model.trim().is_empty() => {
                return Err(MemoryError::invalid("embedding_model", "must not be empty"));
            }
            (Some(model), _) => model,
            (None, Some(dimensions)) => return Ok((None, dimensions)),
            (None, None) => self
                .options
                .default_embedding_model
                .clone()
                .ok_or_else(|| {
                    MemoryError::invalid(
                        "dimensions",
                        "give the dimensions of the vectors you will send, or an embedding_model \
                     (this server has no default embedding model)",
                    )
                })?,
        };
        let model_dimensions = self
            .embedder("embedding_model")?
            .dimensions(&model)
            .await
            .map_err(embedding_failure("embedding_model"))?;
        if let Some(dimensions) = dimensions
            && dimensions != model_dimensions
        {
            return Err(MemoryError::invalid(
                "dimensions",
                format!(
                    "model `{model}` makes {model_dimensions} dimensions, not {dimensions}; \
                     omit dimensions"
                ),
            ));
        }
        Ok((Some(model), model_dimensions))
    }

    /// A tenant's collection by name.
    pub async fn collection(&self, tenant_id: &str, name: &str) -> Result<Collection, MemoryError> {
        collection_of(self.row(tenant_id, name).await?)
    }

    /// A tenant's collections by name, a page at a time.
    pub async fn list_collections(
        &self,
        tenant_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Collection>, MemoryError> {
        validate::within("limit", page.limit, 1..=MAX_PAGE_LIMIT)?;
        let rows = self
            .store
            .memory_collections(tenant_id, page.after.as_deref(), page.limit as i64 + 1)
            .await?;
        let items = rows
            .into_iter()
            .map(collection_of)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetched(items, page.limit, |collection| {
            collection.name.clone()
        }))
    }

    /// Renames a collection or changes its metadata or default search effort.
    pub async fn update_collection(
        &self,
        tenant_id: &str,
        name: &str,
        update: CollectionUpdate,
    ) -> Result<Collection, MemoryError> {
        let row = self.row(tenant_id, name).await?;
        let new_name = update.name.unwrap_or_else(|| row.name.clone());
        validate::collection_name("name", &new_name)?;
        let ef = update.ef.unwrap_or(row.hnsw_ef as usize);
        validate::within("ef", ef, 1..=MAX_EF)?;
        let metadata = match update.metadata {
            Some(value) => Value::Object(validate::metadata("metadata", value)?).to_string(),
            None => row.metadata.clone(),
        };
        match self
            .store
            .update_memory_collection(tenant_id, &row.id, &new_name, &metadata, ef as i64)
            .await?
        {
            CollectionWrite::Written => self.collection(tenant_id, &new_name).await,
            CollectionWrite::NotFound => Err(not_found(name)),
            CollectionWrite::NameTaken | CollectionWrite::LimitReached => Err(
                MemoryError::Conflict(format!("a collection named `{new_name}` already exists")),
            ),
        }
    }

    /// Deletes a collection: its rows, its index in memory and its snapshot file.
    pub async fn delete_collection(&self, tenant_id: &str, name: &str) -> Result<(), MemoryError> {
        let row = self.row(tenant_id, name).await?;
        // Hold the collection's write lock, if loaded, so no write in flight saves a snapshot
        // after the file is removed; writes waiting on it find the collection gone.
        let cell = self.cells().get(&row.id).cloned();
        let loaded = cell.as_ref().and_then(|cell| cell.get()).cloned();
        let _writes = match &loaded {
            Some(loaded) => Some(loaded.write.lock().await),
            None => None,
        };
        if !self
            .store
            .delete_memory_collection(tenant_id, &row.id)
            .await?
        {
            return Err(not_found(name));
        }
        self.forget(&row.id);
        let path = self.snapshot_file(&row.id);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(MemoryError::SnapshotIo { path, source }),
        }
        tracing::info!(collection = %row.id, "collection deleted");
        Ok(())
    }

    // ----- Documents. -----

    /// Stores documents in one transaction (all or none), replacing documents with the same
    /// ids, and returns their ids in order (made for those without one). Documents without an
    /// embedding have their text embedded with the collection's model, in one batch. Every
    /// document is checked before anything is written; errors name the field, e.g.
    /// `documents[3].embedding`.
    pub async fn upsert_documents(
        &self,
        tenant_id: &str,
        collection: &str,
        documents: Vec<NewDocument>,
    ) -> Result<Upserted, MemoryError> {
        let shape = TextShape {
            chunk: crate::ChunkSize::default(),
            max_text_bytes: self.options.max_text_bytes,
        };
        self.upsert_shaped(tenant_id, collection, documents, shape)
            .await
    }

    /// [`Memory::upsert_documents`] with text chunked and bounded as `shape` says (a vector
    /// store's file: its chunking strategy, and the file size limit rather than a request's).
    pub(crate) async fn upsert_shaped(
        &self,
        tenant_id: &str,
        collection: &str,
        documents: Vec<NewDocument>,
        shape: TextShape,
    ) -> Result<Upserted, MemoryError> {
        let max = self.options.max_documents_per_upsert;
        if documents.len() > max {
            return Err(MemoryError::too_large(
                "documents",
                format!(
                    "at most {max} documents per request, got {}",
                    documents.len()
                ),
            ));
        }
        let row = self.row(tenant_id, collection).await?;
        if documents.is_empty() {
            return Ok(Upserted::default());
        }
        let params = loaded::params_of(&row)?;
        let mut checked = Vec::with_capacity(documents.len());
        let mut seen = HashSet::with_capacity(documents.len());
        let mut to_embed = Vec::new();
        for (position, document) in documents.into_iter().enumerate() {
            let field = |name: &str| format!("documents[{position}].{name}");
            let id = match document.id {
                Some(id) => {
                    validate::document_id(&field("id"), &id)?;
                    id
                }
                None => uuid::Uuid::now_v7().to_string(),
            };
            if !seen.insert(id.clone()) {
                return Err(MemoryError::invalid(
                    field("id"),
                    format!("`{id}` appears more than once in the request"),
                ));
            }
            if document.text.len() > shape.max_text_bytes {
                return Err(MemoryError::too_large(
                    field("text"),
                    format!(
                        "{} bytes, at most {} allowed",
                        document.text.len(),
                        shape.max_text_bytes
                    ),
                ));
            }
            let metadata = validate::metadata(&field("metadata"), document.metadata)?;
            match &document.embedding {
                Some(embedding) => {
                    validate::embedding(&field("embedding"), embedding, params.dim, params.metric)?
                }
                None if row.embedding_model.is_none() => {
                    return Err(MemoryError::invalid(
                        field("embedding"),
                        "is required: this collection has no embedding model (it was created \
                         with dimensions alone), so every document brings its vector",
                    ));
                }
                None if document.text.trim().is_empty() => {
                    return Err(MemoryError::invalid(
                        field("text"),
                        "is empty, and there is no embedding to store instead",
                    ));
                }
                None => to_embed.push(position),
            }
            checked.push((id, document.text, metadata, document.embedding));
        }

        // Text to embed is split into chunks the model reads whole; each chunk is embedded,
        // indexed and found on its own, and chunk 0 keeps the whole text.
        let mut spans: Vec<Vec<std::ops::Range<usize>>> = vec![Vec::new(); checked.len()];
        let mut embedding_tokens = 0;
        let mut embedding_model = None;
        let mut chunk_vectors: Vec<Vec<f32>> = Vec::new();
        if let Some(model) = row.embedding_model.as_deref()
            && !to_embed.is_empty()
        {
            embedding_model = Some(model.to_string());
            let field = match to_embed.as_slice() {
                [position] => format!("documents[{position}].text"),
                _ => "documents[].text".to_string(),
            };
            let to_split: Vec<&str> = to_embed
                .iter()
                .map(|&position| checked[position].1.as_str())
                .collect();
            let split = self
                .embedder(&field)?
                .chunk(model, &to_split, shape.chunk)
                .await
                .map_err(embedding_failure(&field))?;
            let mut texts = Vec::new();
            for (&position, ranges) in to_embed.iter().zip(split) {
                let text = &checked[position].1;
                texts.extend(ranges.iter().map(|range| text[range.clone()].to_string()));
                spans[position] = ranges;
            }
            let embedded = self.embed(&field, model, texts).await?;
            embedding_tokens = embedded.tokens;
            for vector in &embedded.vectors {
                validate::embedding(&field, vector, params.dim, params.metric)?;
            }
            chunk_vectors = embedded.vectors;
        }

        let mut ids = Vec::with_capacity(checked.len());
        let mut chunks = Vec::with_capacity(checked.len());
        let mut entries = Vec::with_capacity(checked.len());
        let mut vectors = Vec::with_capacity(checked.len() * params.dim);
        let mut embedded_chunks = chunk_vectors.into_iter();
        for (position, ((id, text, metadata, embedding), ranges)) in
            checked.into_iter().zip(spans).enumerate()
        {
            let metadata_text = serde_json::to_string(&metadata).map_err(|error| {
                MemoryError::invalid(format!("documents[{position}].metadata"), error.to_string())
            })?;
            // A document that brought its vector is one chunk; one whose text was embedded is
            // as many chunks as it was split into.
            let pieces: Vec<(String, Vec<f32>)> = match embedding {
                Some(embedding) => vec![(text.clone(), embedding)],
                None => ranges
                    .iter()
                    .map(|range| {
                        (
                            text[range.clone()].to_string(),
                            embedded_chunks.next().unwrap_or_default(),
                        )
                    })
                    .collect(),
            };
            let whole = (pieces.len() > 1).then_some(text);
            for (chunk_index, (chunk_text, vector)) in pieces.into_iter().enumerate() {
                chunks.push(NewMemoryChunk {
                    document_id: id.clone(),
                    chunk_index: chunk_index as i64,
                    text: chunk_text,
                    document_text: if chunk_index == 0 {
                        whole.clone()
                    } else {
                        None
                    },
                    metadata: metadata_text.clone(),
                    embedding: validate::encode_embedding(&vector),
                });
                entries.push(Entry {
                    document_id: id.clone(),
                    metadata: metadata.clone(),
                });
                vectors.extend_from_slice(&vector);
            }
            ids.push(id);
        }

        let chunk_count = chunks.len();
        self.check_tenant_room(tenant_id, chunk_count as u64)
            .await?;
        let (index, mut progress) = self.lock_for_write(&row).await?;
        let Some(write) = self.store.upsert_memory_chunks(&row.id, &chunks).await? else {
            self.discard(&row.id);
            return Err(not_found(collection));
        };
        drop(chunks);
        // Committed: from here the write is acknowledged whatever happens to the index.
        let keys: Vec<u64> = (write.first_sequence..=write.last_sequence)
            .map(|sequence| sequence as u64)
            .collect();
        let removed: Vec<u64> = write.removed.iter().map(|&key| key as u64).collect();
        if let Some(held) = self.tenant_chunks().get_mut(tenant_id) {
            *held = (*held + chunk_count as u64).saturating_sub(removed.len() as u64);
        }
        let applying = Arc::clone(&index);
        let applied = blocking(move || applying.apply(&keys, entries, &vectors, &removed)).await;
        self.finish_write(&row.id, &index, &mut progress, write.last_sequence, applied)
            .await;
        Ok(Upserted {
            ids,
            chunks: chunk_count,
            embedding_tokens,
            embedding_model,
        })
    }

    fn tenant_chunks(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.tenant_chunks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Refuses a write of `adding` chunks that would take the tenant past
    /// `max_chunks_per_tenant`. Replaced chunks are not subtracted (so a write at the cap may be
    /// refused though it would replace as many as it adds); a count that says full is made
    /// again from the store before anything is refused.
    async fn check_tenant_room(&self, tenant_id: &str, adding: u64) -> Result<(), MemoryError> {
        let max = self.options.max_chunks_per_tenant;
        let known = self.tenant_chunks().get(tenant_id).copied();
        let fits = |held: u64| held.saturating_add(adding) <= max;
        if known.is_some_and(fits) {
            return Ok(());
        }
        let held = self.store.memory_tenant_chunks(tenant_id).await?;
        self.tenant_chunks().insert(tenant_id.to_string(), held);
        if fits(held) {
            return Ok(());
        }
        Err(MemoryError::LimitReached {
            field: "documents".to_string(),
            reason: format!(
                "this tenant's collections hold {held} chunks and {adding} more would pass \
                 memory.max_chunks_per_tenant ({max}); delete documents or collections first"
            ),
        })
    }

    /// Records a committed write as applied, or drops an index that failed to apply it (it is
    /// rebuilt from the store on next use), then snapshots when due.
    async fn finish_write(
        &self,
        collection_id: &str,
        index: &Arc<LoadedIndex>,
        progress: &mut Progress,
        last_sequence: i64,
        applied: Result<(), MemoryError>,
    ) {
        if let Err(error) = applied {
            tracing::warn!(
                collection = %collection_id,
                %error,
                "the index could not apply a committed write; it is rebuilt on next use"
            );
            self.forget(collection_id);
            return;
        }
        progress.applied_sequence = last_sequence as u64;
        if progress.applied_sequence - progress.snapshot_sequence
            >= self.options.snapshot_after_writes
            && let Err(error) = self.save_snapshot(collection_id, index, progress).await
        {
            tracing::warn!(collection = %collection_id, %error, "index snapshot failed");
        }
    }

    async fn save_snapshot(
        &self,
        collection_id: &str,
        index: &Arc<LoadedIndex>,
        progress: &mut Progress,
    ) -> Result<(), MemoryError> {
        let sequence = progress.applied_sequence;
        index
            .save(self.snapshot_file(collection_id), sequence)
            .await?;
        progress.snapshot_sequence = sequence;
        self.store
            .prune_memory_deletions(collection_id, sequence as i64)
            .await?;
        Ok(())
    }

    /// Saves a snapshot of every loaded index that has writes its snapshot lacks (at
    /// shutdown, so the next start replays nothing).
    pub async fn save_snapshots(&self) -> Result<(), MemoryError> {
        let loaded: Vec<(String, Arc<LoadedIndex>)> = self
            .cells()
            .iter()
            .filter_map(|(id, cell)| cell.get().map(|index| (id.clone(), Arc::clone(index))))
            .collect();
        for (collection_id, index) in loaded {
            let mut progress = index.write.lock().await;
            if progress.applied_sequence > progress.snapshot_sequence {
                self.save_snapshot(&collection_id, &index, &mut progress)
                    .await?;
            }
        }
        Ok(())
    }

    /// The documents with these ids, in the order asked; ids not stored are left out.
    pub async fn get_documents(
        &self,
        tenant_id: &str,
        collection: &str,
        ids: &[String],
        include_embedding: bool,
    ) -> Result<Vec<Document>, MemoryError> {
        self.check_ids(ids)?;
        let row = self.row(tenant_id, collection).await?;
        let dimensions = row.dimensions as usize;
        self.store
            .memory_chunks_of_documents(&row.id, ids)
            .await?
            .into_iter()
            // A document's first chunk carries its whole text (and its embedding is the
            // first chunk's).
            .filter(|chunk| chunk.chunk_index == 0)
            .map(|chunk| document_of(chunk, dimensions, include_embedding))
            .collect()
    }

    fn check_ids(&self, ids: &[String]) -> Result<(), MemoryError> {
        let max = self.options.max_documents_per_upsert;
        if ids.len() > max {
            return Err(MemoryError::too_large(
                "ids",
                format!("at most {max} ids per request, got {}", ids.len()),
            ));
        }
        for (position, id) in ids.iter().enumerate() {
            validate::document_id(&format!("ids[{position}]"), id)?;
        }
        Ok(())
    }

    /// Deletes documents by id or by metadata filter, in one transaction; returns how many
    /// documents were deleted.
    pub async fn delete_documents(
        &self,
        tenant_id: &str,
        collection: &str,
        selector: &DocumentSelector,
    ) -> Result<usize, MemoryError> {
        if let DocumentSelector::Ids(ids) = selector {
            self.check_ids(ids)?;
        }
        let row = self.row(tenant_id, collection).await?;
        let (index, mut progress) = self.lock_for_write(&row).await?;
        // Under the write lock, so the matches cannot change before the delete commits.
        let ids = match selector {
            DocumentSelector::Ids(ids) => ids.clone(),
            DocumentSelector::Filter(filter) => index.matching_documents(filter),
        };
        if ids.is_empty() {
            return Ok(0);
        }
        let Some(write) = self.store.delete_memory_documents(&row.id, &ids).await? else {
            self.discard(&row.id);
            return Err(not_found(collection));
        };
        let removed: Vec<u64> = write.removed.iter().map(|&key| key as u64).collect();
        let deleted = index.document_count(&removed);
        let applying = Arc::clone(&index);
        let applied = blocking(move || applying.apply(&[], Vec::new(), &[], &removed)).await;
        self.finish_write(&row.id, &index, &mut progress, write.last_sequence, applied)
            .await;
        Ok(deleted)
    }

    /// Documents in id order, a page at a time; with a filter, only those whose metadata
    /// matches.
    pub async fn list_documents(
        &self,
        tenant_id: &str,
        collection: &str,
        page: &PageRequest,
        filter: Option<&Filter>,
        include_embedding: bool,
    ) -> Result<Page<Document>, MemoryError> {
        validate::within("limit", page.limit, 1..=MAX_PAGE_LIMIT)?;
        let row = self.row(tenant_id, collection).await?;
        let dimensions = row.dimensions as usize;
        let batch = match filter {
            None => page.limit as i64 + 1,
            Some(_) => LIST_BATCH.max(page.limit as i64 + 1),
        };
        let mut items = Vec::new();
        let mut after = page.after.clone();
        'pages: loop {
            let rows = self
                .store
                .memory_documents_page(&row.id, after.as_deref(), batch)
                .await?;
            let last_page = (rows.len() as i64) < batch;
            for chunk in rows {
                after = Some(chunk.document_id.clone());
                let document = document_of(chunk, dimensions, include_embedding)?;
                if filter.is_none_or(|filter| filter.matches_object(&document.metadata)) {
                    items.push(document);
                    if items.len() > page.limit {
                        break 'pages;
                    }
                }
            }
            if last_page {
                break;
            }
        }
        Ok(Page::from_overfetched(items, page.limit, |document| {
            document.id.clone()
        }))
    }

    /// How many documents the collection holds; with a filter, how many match.
    pub async fn count_documents(
        &self,
        tenant_id: &str,
        collection: &str,
        filter: Option<&Filter>,
    ) -> Result<usize, MemoryError> {
        let row = self.row(tenant_id, collection).await?;
        match filter {
            None => Ok(self.store.memory_document_count(&row.id).await? as usize),
            Some(filter) => Ok(self.index_of(&row).await?.matching_documents(filter).len()),
        }
    }
}

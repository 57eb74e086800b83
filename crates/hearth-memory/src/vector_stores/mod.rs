//! OpenAI's vector stores over Hearth's collections: the [`VectorStores`] service.
//!
//! A vector store is a collection underneath, named by the store's id, in the same tenant: one
//! index, one filter language, the same hybrid search. Each attached file becomes one document
//! of it (id: the file's id, metadata: the file's attributes), its text extracted, chunked by
//! the store's chunking strategy and embedded by the default model. Reading a file can take
//! long, so attaching answers at once with the file `in_progress`, and one background worker
//! reads files in the order they were attached (see `ingest.rs`); a restart resumes those
//! still in progress. The rows in the store say what is attached; the collection holds what
//! was read.

mod ingest;
mod types;

use std::sync::Arc;

use hearth_store::{
    ListWindow, Store, VectorStoreFileBatchRow, VectorStoreFileQuery, VectorStoreFileRow,
    VectorStoreRow,
};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

pub use types::{
    AttachedFile, Chunking, FileBatch, FileCounts, FileStatus, FileToAttach, IngestError,
    IngestReport, ListPage, ListRequest, NewVectorStore, StoreHit, StoreSearch, StoreSearchResults,
    VectorStore, VectorStoreStatus, VectorStoreUpdate,
};

use crate::collections::now_ms;
use crate::{
    DocumentSelector, Files, Memory, MemoryError, NewCollection, SearchMode, SearchRequest,
};

/// The most items one list returns.
pub const MAX_LIST_LIMIT: usize = 100;
/// The most results one search returns.
pub const MAX_SEARCH_RESULTS: usize = 50;
/// The most files one request attaches.
pub const MAX_FILES_PER_REQUEST: usize = 500;
/// The most files one store holds (OpenAI's limit).
pub const MAX_FILES_PER_STORE: usize = 10_000;
/// OpenAI's limits on metadata and attributes: keys, key length, string value length.
const MAX_PAIRS: usize = 16;
const MAX_KEY_CHARS: usize = 64;
const MAX_VALUE_CHARS: usize = 512;
const MAX_NAME_CHARS: usize = 256;
const DAY_MS: i64 = 86_400_000;
/// How often a store in use is marked active.
const TOUCH_INTERVAL_MS: i64 = 60_000;

/// Called after each ingestion ends, with what it did (for metrics and usage).
pub type IngestObserver = Arc<dyn Fn(&IngestReport) + Send + Sync>;

/// The vector stores service. Cheap to clone; clones share the worker.
#[derive(Clone)]
pub struct VectorStores {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    memory: Arc<Memory>,
    files: Files,
    queue: mpsc::UnboundedSender<ingest::Job>,
    observer: Option<IngestObserver>,
}

impl std::fmt::Debug for VectorStores {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("VectorStores")
            .finish_non_exhaustive()
    }
}

fn not_found(what: &str, id: &str) -> MemoryError {
    MemoryError::NotFound {
        what: format!("{what} `{id}`"),
    }
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::now_v7().simple())
}

/// Checks OpenAI's metadata/attributes rules: an object of at most 16 pairs, keys up to 64
/// characters, strings up to 512; `numbers_and_booleans` allows those too (attributes).
fn small_object(
    field: &str,
    value: Value,
    numbers_and_booleans: bool,
) -> Result<Map<String, Value>, MemoryError> {
    let Value::Object(object) = value else {
        return Err(MemoryError::invalid(field, "must be a JSON object"));
    };
    if object.len() > MAX_PAIRS {
        return Err(MemoryError::invalid(
            field,
            format!("at most {MAX_PAIRS} pairs, got {}", object.len()),
        ));
    }
    for (key, value) in &object {
        if key.chars().count() > MAX_KEY_CHARS {
            return Err(MemoryError::invalid(
                format!("{field}.{key}"),
                format!("keys are at most {MAX_KEY_CHARS} characters"),
            ));
        }
        let allowed = match value {
            Value::String(text) => text.chars().count() <= MAX_VALUE_CHARS,
            Value::Number(_) | Value::Bool(_) => numbers_and_booleans,
            _ => false,
        };
        if !allowed {
            let kinds = if numbers_and_booleans {
                "a string, a number or a boolean"
            } else {
                "a string"
            };
            return Err(MemoryError::invalid(
                format!("{field}.{key}"),
                format!("each value is {kinds}; strings are at most {MAX_VALUE_CHARS} characters"),
            ));
        }
    }
    Ok(object)
}

fn stored_object(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(object)) => object,
        _ => Map::new(),
    }
}

fn check_chunking(field: &str, chunking: Chunking) -> Result<(), MemoryError> {
    if let Chunking::Static {
        max_tokens,
        overlap_tokens,
    } = chunking
    {
        crate::collections::within(
            &format!("{field}.max_chunk_size_tokens"),
            max_tokens,
            100..=4096,
        )?;
        if overlap_tokens > max_tokens / 2 {
            return Err(MemoryError::invalid(
                format!("{field}.chunk_overlap_tokens"),
                format!("at most half of max_chunk_size_tokens ({})", max_tokens / 2),
            ));
        }
    }
    Ok(())
}

fn check_days(field: &str, days: Option<u32>) -> Result<(), MemoryError> {
    if let Some(days) = days {
        crate::collections::within(field, days as usize, 1..=365)?;
    }
    Ok(())
}

fn window<'a>(request: &'a ListRequest) -> Result<ListWindow<'a>, MemoryError> {
    crate::collections::within("limit", request.limit, 1..=MAX_LIST_LIMIT)?;
    if request.after.is_some() && request.before.is_some() {
        return Err(MemoryError::invalid(
            "before",
            "give `after` or `before`, not both",
        ));
    }
    Ok(ListWindow {
        after: request.after.as_deref(),
        before: request.before.as_deref(),
        // One more than asked tells whether more follow.
        limit: request.limit as i64 + 1,
        descending: request.descending,
    })
}

/// Trims an over-fetched page: one extra row means more follow (beyond the cursor's far side;
/// for a `before` page, the extra row is the first).
fn page_of<T>(mut rows: Vec<T>, request: &ListRequest) -> ListPage<T> {
    let has_more = rows.len() > request.limit;
    if has_more {
        if request.before.is_some() {
            rows.remove(0);
        } else {
            rows.truncate(request.limit);
        }
    }
    ListPage {
        items: rows,
        has_more,
    }
}

fn attached_of(row: VectorStoreFileRow) -> AttachedFile {
    let status = FileStatus::from_name(&row.status).unwrap_or(FileStatus::Failed);
    let last_error = match (row.error_code, row.error_message) {
        (Some(code), Some(message)) => Some(IngestError { code, message }),
        _ => None,
    };
    let chunking = if row.chunking_auto {
        Chunking::Auto
    } else {
        Chunking::Static {
            max_tokens: row.max_chunk_tokens.max(0) as usize,
            overlap_tokens: row.chunk_overlap_tokens.max(0) as usize,
        }
    };
    AttachedFile {
        attributes: stored_object(&row.attributes),
        file_id: row.file_id,
        vector_store_id: row.vector_store_id,
        batch_id: row.batch_id,
        filename: row.filename,
        status,
        last_error,
        chunking,
        usage_bytes: row.usage_bytes.max(0) as u64,
        created_at_ms: row.created_at_ms,
    }
}

impl VectorStores {
    /// The service over `memory`'s collections and `files`, with its ingestion worker running
    /// on the current Tokio runtime and every file left in progress by a restart queued again.
    pub async fn start(
        store: Store,
        memory: Arc<Memory>,
        files: Files,
        observer: Option<IngestObserver>,
    ) -> Result<VectorStores, MemoryError> {
        let (queue, jobs) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            store,
            memory,
            files,
            queue,
            observer,
        });
        tokio::spawn(ingest::run(Arc::downgrade(&inner), jobs));
        tokio::spawn(sweep_periodically(Arc::downgrade(&inner)));
        let service = VectorStores { inner };
        let pending = service.inner.store.pending_vector_store_files().await?;
        if !pending.is_empty() {
            tracing::info!(
                files = pending.len(),
                "resuming vector store files left in progress"
            );
        }
        for (vector_store_id, file_id, attempt) in pending {
            service.enqueue(vector_store_id, file_id, attempt);
        }
        Ok(service)
    }

    /// Deletes the passages (the collection) of stores past their expiry, keeping their rows
    /// so they still answer as `expired`. Returns how many it expired.
    pub async fn sweep_expired(&self) -> Result<usize, MemoryError> {
        let now = now_ms();
        let expired = self.inner.store.newly_expired_vector_stores(now).await?;
        for row in &expired {
            match self
                .inner
                .memory
                .delete_collection(&row.tenant_id, &row.id)
                .await
            {
                Ok(()) | Err(MemoryError::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
            self.inner
                .store
                .mark_vector_store_expired(&row.id, now)
                .await?;
            tracing::info!(vector_store = %row.id, "vector store expired; its passages are deleted");
        }
        Ok(expired.len())
    }

    fn enqueue(&self, vector_store_id: String, file_id: String, attempt: String) {
        // The worker lives as long as any clone of the service, so the queue is open.
        let _ = self.inner.queue.send(ingest::Job {
            vector_store_id,
            file_id,
            attempt,
        });
    }

    async fn row(&self, tenant_id: &str, id: &str) -> Result<VectorStoreRow, MemoryError> {
        self.inner
            .store
            .vector_store(tenant_id, id)
            .await?
            .ok_or_else(|| not_found("vector store", id))
    }

    /// A live (not expired) store, for operations that use or change it.
    async fn live_row(&self, tenant_id: &str, id: &str) -> Result<VectorStoreRow, MemoryError> {
        let row = self.row(tenant_id, id).await?;
        if row.expired_at_ms.is_some() || expires_at(&row).is_some_and(|at| at <= now_ms()) {
            return Err(MemoryError::invalid(
                "vector_store_id",
                format!(
                    "vector store `{id}` has expired (unused for {} days); make a new one",
                    row.expires_after_days.unwrap_or(0)
                ),
            ));
        }
        Ok(row)
    }

    async fn describe(&self, row: VectorStoreRow) -> Result<VectorStore, MemoryError> {
        let file_counts = self.inner.store.vector_store_file_counts(&row.id).await?;
        let expires_at_ms = expires_at(&row);
        let expired = row.expired_at_ms.is_some() || expires_at_ms.is_some_and(|at| at <= now_ms());
        let status = if expired {
            VectorStoreStatus::Expired
        } else if file_counts.in_progress > 0 {
            VectorStoreStatus::InProgress
        } else {
            VectorStoreStatus::Completed
        };
        Ok(VectorStore {
            metadata: stored_object(&row.metadata),
            id: row.id,
            name: row.name,
            created_at_ms: row.created_at_ms,
            last_active_at_ms: row.last_active_at_ms,
            expires_after_days: row.expires_after_days.map(|days| days as u32),
            expires_at_ms,
            status,
            file_counts,
        })
    }

    // ----- Stores. -----

    /// Makes a vector store (and its collection), attaching `new.files`.
    pub async fn create(
        &self,
        tenant_id: &str,
        new: NewVectorStore,
    ) -> Result<VectorStore, MemoryError> {
        let name = new.name.unwrap_or_default();
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(MemoryError::invalid(
                "name",
                format!("at most {MAX_NAME_CHARS} characters"),
            ));
        }
        let metadata = small_object(
            "metadata",
            new.metadata.unwrap_or_else(|| Value::Object(Map::new())),
            false,
        )?;
        check_days("expires_after.days", new.expires_after_days)?;
        let chunking = new.chunking.unwrap_or(Chunking::Auto);
        check_chunking("chunking_strategy.static", chunking)?;
        // Files are checked before anything is made, so a bad id makes nothing.
        let files = self
            .resolve_files(tenant_id, new.files, chunking, Some("file_ids"))
            .await?;

        let id = new_id("vs_");
        let mut collection = NewCollection::embedded(id.clone(), None);
        collection.metadata = serde_json::json!({"vector_store": true});
        let made = self
            .inner
            .memory
            .create_collection(tenant_id, collection)
            .await?;
        let now = now_ms();
        let row = VectorStoreRow {
            id: id.clone(),
            tenant_id: tenant_id.to_string(),
            name,
            collection_id: made.id,
            metadata: Value::Object(metadata).to_string(),
            expires_after_days: new.expires_after_days.map(i64::from),
            created_at_ms: now,
            last_active_at_ms: now,
            expired_at_ms: None,
        };
        if let Err(error) = self.inner.store.insert_vector_store(&row).await {
            let _ = self.inner.memory.delete_collection(tenant_id, &id).await;
            return Err(error.into());
        }
        self.attach_resolved(&id, None, files).await?;
        self.describe(row).await
    }

    /// Whether the tenant has vector store `id` (whose collection is named by it).
    pub async fn exists(&self, tenant_id: &str, id: &str) -> Result<bool, MemoryError> {
        Ok(self
            .inner
            .store
            .vector_store(tenant_id, id)
            .await?
            .is_some())
    }

    /// A tenant's vector store.
    pub async fn get(&self, tenant_id: &str, id: &str) -> Result<VectorStore, MemoryError> {
        let row = self.row(tenant_id, id).await?;
        self.describe(row).await
    }

    /// A page of a tenant's vector stores by creation time.
    pub async fn list(
        &self,
        tenant_id: &str,
        request: &ListRequest,
    ) -> Result<ListPage<VectorStore>, MemoryError> {
        let rows = self
            .inner
            .store
            .vector_stores(tenant_id, &window(request)?)
            .await?;
        let page = page_of(rows, request);
        let mut items = Vec::with_capacity(page.items.len());
        for row in page.items {
            items.push(self.describe(row).await?);
        }
        Ok(ListPage {
            items,
            has_more: page.has_more,
        })
    }

    /// Renames a store or changes its metadata or expiry (which also marks it active).
    pub async fn update(
        &self,
        tenant_id: &str,
        id: &str,
        update: VectorStoreUpdate,
    ) -> Result<VectorStore, MemoryError> {
        let mut row = self.live_row(tenant_id, id).await?;
        if let Some(name) = update.name {
            if name.chars().count() > MAX_NAME_CHARS {
                return Err(MemoryError::invalid(
                    "name",
                    format!("at most {MAX_NAME_CHARS} characters"),
                ));
            }
            row.name = name;
        }
        if let Some(metadata) = update.metadata {
            row.metadata = Value::Object(small_object("metadata", metadata, false)?).to_string();
        }
        if let Some(days) = update.expires_after_days {
            check_days("expires_after.days", days)?;
            row.expires_after_days = days.map(i64::from);
        }
        row.last_active_at_ms = now_ms();
        if !self.inner.store.update_vector_store(&row).await? {
            return Err(not_found("vector store", id));
        }
        self.describe(row).await
    }

    /// Deletes a store: its rows, then its collection (index, snapshot, chunks). A file being
    /// read meanwhile finds the store gone and leaves nothing behind.
    pub async fn delete(&self, tenant_id: &str, id: &str) -> Result<(), MemoryError> {
        self.row(tenant_id, id).await?;
        if !self.inner.store.delete_vector_store(tenant_id, id).await? {
            return Err(not_found("vector store", id));
        }
        match self.inner.memory.delete_collection(tenant_id, id).await {
            Ok(()) | Err(MemoryError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    // ----- Files. -----

    /// The rows for files to attach: each must be one of the tenant's files; attributes and
    /// chunking are checked. `field` names the list in errors (`None`: one file, the request
    /// itself).
    async fn resolve_files(
        &self,
        tenant_id: &str,
        files: Vec<FileToAttach>,
        default_chunking: Chunking,
        field: Option<&str>,
    ) -> Result<Vec<VectorStoreFileRow>, MemoryError> {
        if files.len() > MAX_FILES_PER_REQUEST {
            return Err(MemoryError::too_large(
                field.unwrap_or("file_id"),
                format!(
                    "at most {MAX_FILES_PER_REQUEST} files per request, got {}",
                    files.len()
                ),
            ));
        }
        let now = now_ms();
        let mut rows = Vec::with_capacity(files.len());
        let mut seen = std::collections::HashSet::new();
        for (position, file) in files.into_iter().enumerate() {
            // A list names its items (`file_ids[2].attributes.x`); a request that is one file
            // names its own fields (`file_id`, `attributes.x`).
            let at = |name: &str| match field {
                Some(field) => format!("{field}[{position}]{name}"),
                None if name.is_empty() => "file_id".to_string(),
                None => name.trim_start_matches('.').to_string(),
            };
            if !seen.insert(file.file_id.clone()) {
                return Err(MemoryError::invalid(
                    at(""),
                    format!("`{}` appears more than once", file.file_id),
                ));
            }
            let stored = match self.inner.files.get(tenant_id, &file.file_id).await {
                Ok(stored) => stored,
                Err(MemoryError::NotFound { what }) => {
                    return Err(MemoryError::invalid(at(""), format!("{what} not found")));
                }
                Err(error) => return Err(error),
            };
            let attributes = small_object(
                &at(".attributes"),
                file.attributes.unwrap_or_else(|| Value::Object(Map::new())),
                true,
            )?;
            let chunking = file.chunking.unwrap_or(default_chunking);
            check_chunking(&at(".chunking_strategy.static"), chunking)?;
            let (max_tokens, overlap_tokens) = chunking.sizes();
            rows.push(VectorStoreFileRow {
                vector_store_id: String::new(),
                file_id: stored.id,
                batch_id: None,
                filename: stored.filename,
                status: FileStatus::InProgress.name().to_string(),
                error_code: None,
                error_message: None,
                attributes: Value::Object(attributes).to_string(),
                chunking_auto: chunking == Chunking::Auto,
                max_chunk_tokens: max_tokens as i64,
                chunk_overlap_tokens: overlap_tokens as i64,
                usage_bytes: 0,
                attempt: uuid::Uuid::new_v4().simple().to_string(),
                // Files of one request keep their order.
                created_at_ms: now,
            });
        }
        Ok(rows)
    }

    /// Writes the rows of files to attach (in one transaction, with their batch) and queues
    /// their reading.
    async fn attach_resolved(
        &self,
        vector_store_id: &str,
        batch: Option<&VectorStoreFileBatchRow>,
        mut rows: Vec<VectorStoreFileRow>,
    ) -> Result<(), MemoryError> {
        // OpenAI's cap on a store's files. Attaches racing each other may pass it by what
        // they carry; it bounds a store, not billing.
        let attached = self
            .inner
            .store
            .vector_store_file_counts(vector_store_id)
            .await?
            .total();
        if attached as usize + rows.len() > MAX_FILES_PER_STORE {
            return Err(MemoryError::LimitReached {
                field: "file_ids".to_string(),
                reason: format!(
                    "a vector store holds at most {MAX_FILES_PER_STORE} files and this one has \
                     {attached}; detach some or use another store"
                ),
            });
        }
        for row in &mut rows {
            row.vector_store_id = vector_store_id.to_string();
            row.batch_id = batch.map(|batch| batch.id.clone());
        }
        if !self
            .inner
            .store
            .attach_vector_store_files(batch, &rows, now_ms())
            .await?
        {
            return Err(not_found("vector store", vector_store_id));
        }
        for row in rows {
            self.enqueue(row.vector_store_id, row.file_id, row.attempt);
        }
        Ok(())
    }

    /// Attaches one of the tenant's files; it is read in the background (`in_progress` until
    /// then). A file already attached is read again with the new attributes and chunking.
    pub async fn attach_file(
        &self,
        tenant_id: &str,
        vector_store_id: &str,
        file: FileToAttach,
    ) -> Result<AttachedFile, MemoryError> {
        self.live_row(tenant_id, vector_store_id).await?;
        let file_id = file.file_id.clone();
        let rows = self
            .resolve_files(tenant_id, vec![file], Chunking::Auto, None)
            .await?;
        self.attach_resolved(vector_store_id, None, rows).await?;
        self.file(tenant_id, vector_store_id, &file_id).await
    }

    /// One file of a store.
    pub async fn file(
        &self,
        tenant_id: &str,
        vector_store_id: &str,
        file_id: &str,
    ) -> Result<AttachedFile, MemoryError> {
        self.row(tenant_id, vector_store_id).await?;
        self.inner
            .store
            .vector_store_file(vector_store_id, file_id)
            .await?
            .map(attached_of)
            .ok_or_else(|| not_found("vector store file", file_id))
    }

    /// A page of a store's files (or of one of its batches), optionally of one status.
    pub async fn list_files(
        &self,
        tenant_id: &str,
        vector_store_id: &str,
        batch_id: Option<&str>,
        status: Option<FileStatus>,
        request: &ListRequest,
    ) -> Result<ListPage<AttachedFile>, MemoryError> {
        self.row(tenant_id, vector_store_id).await?;
        if let Some(batch_id) = batch_id {
            self.batch_row(vector_store_id, batch_id).await?;
        }
        let rows = self
            .inner
            .store
            .vector_store_files(&VectorStoreFileQuery {
                vector_store_id,
                batch_id,
                status: status.map(FileStatus::name),
                window: window(request)?,
            })
            .await?;
        let page = page_of(rows, request);
        Ok(ListPage {
            items: page.items.into_iter().map(attached_of).collect(),
            has_more: page.has_more,
        })
    }

    /// Detaches a file: its row, then its passages in the collection. The file itself stays
    /// in the Files API.
    pub async fn detach_file(
        &self,
        tenant_id: &str,
        vector_store_id: &str,
        file_id: &str,
    ) -> Result<(), MemoryError> {
        self.row(tenant_id, vector_store_id).await?;
        if !self
            .inner
            .store
            .detach_vector_store_file(vector_store_id, file_id)
            .await?
        {
            return Err(not_found("vector store file", file_id));
        }
        self.remove_document(tenant_id, vector_store_id, file_id)
            .await
    }

    async fn remove_document(
        &self,
        tenant_id: &str,
        vector_store_id: &str,
        file_id: &str,
    ) -> Result<(), MemoryError> {
        let selector = DocumentSelector::Ids(vec![file_id.to_string()]);
        match self
            .inner
            .memory
            .delete_documents(tenant_id, vector_store_id, &selector)
            .await
        {
            Ok(_) | Err(MemoryError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// The text a file was read into, passage by passage (its chunks in order).
    pub async fn file_content(
        &self,
        tenant_id: &str,
        vector_store_id: &str,
        file_id: &str,
    ) -> Result<Vec<String>, MemoryError> {
        self.file(tenant_id, vector_store_id, file_id).await?;
        let documents = self
            .inner
            .memory
            .get_documents(tenant_id, vector_store_id, &[file_id.to_string()], false)
            .await?;
        Ok(documents
            .into_iter()
            .map(|document| document.text)
            .collect())
    }

    // ----- Batches. -----

    async fn batch_row(
        &self,
        vector_store_id: &str,
        batch_id: &str,
    ) -> Result<VectorStoreFileBatchRow, MemoryError> {
        self.inner
            .store
            .vector_store_file_batch(vector_store_id, batch_id)
            .await?
            .ok_or_else(|| not_found("file batch", batch_id))
    }

    async fn describe_batch(&self, row: VectorStoreFileBatchRow) -> Result<FileBatch, MemoryError> {
        let file_counts = self.inner.store.vector_store_batch_counts(&row.id).await?;
        let status = if row.cancelled {
            FileStatus::Cancelled
        } else if file_counts.in_progress > 0 {
            FileStatus::InProgress
        } else {
            FileStatus::Completed
        };
        Ok(FileBatch {
            id: row.id,
            vector_store_id: row.vector_store_id,
            created_at_ms: row.created_at_ms,
            status,
            file_counts,
        })
    }

    /// Attaches several files as one batch, whose progress can be followed and which can be
    /// cancelled as a whole.
    pub async fn create_batch(
        &self,
        tenant_id: &str,
        vector_store_id: &str,
        files: Vec<FileToAttach>,
        chunking: Option<Chunking>,
    ) -> Result<FileBatch, MemoryError> {
        self.live_row(tenant_id, vector_store_id).await?;
        if files.is_empty() {
            return Err(MemoryError::invalid("file_ids", "name at least one file"));
        }
        let chunking = chunking.unwrap_or(Chunking::Auto);
        check_chunking("chunking_strategy.static", chunking)?;
        let rows = self
            .resolve_files(tenant_id, files, chunking, Some("file_ids"))
            .await?;
        let batch = VectorStoreFileBatchRow {
            id: new_id("vsfb_"),
            vector_store_id: vector_store_id.to_string(),
            cancelled: false,
            created_at_ms: now_ms(),
        };
        self.attach_resolved(vector_store_id, Some(&batch), rows)
            .await?;
        self.describe_batch(batch).await
    }

    pub async fn batch(
        &self,
        tenant_id: &str,
        vector_store_id: &str,
        batch_id: &str,
    ) -> Result<FileBatch, MemoryError> {
        self.row(tenant_id, vector_store_id).await?;
        let row = self.batch_row(vector_store_id, batch_id).await?;
        self.describe_batch(row).await
    }

    /// Cancels a batch: files not yet read are cancelled; one being read is dropped when it
    /// finishes. Files already read stay.
    pub async fn cancel_batch(
        &self,
        tenant_id: &str,
        vector_store_id: &str,
        batch_id: &str,
    ) -> Result<FileBatch, MemoryError> {
        self.row(tenant_id, vector_store_id).await?;
        if !self
            .inner
            .store
            .cancel_vector_store_file_batch(vector_store_id, batch_id)
            .await?
        {
            return Err(not_found("file batch", batch_id));
        }
        self.batch(tenant_id, vector_store_id, batch_id).await
    }

    // ----- Search. -----

    /// The passages of the store's files that best match the queries: hybrid search (vector
    /// and keyword rankings fused by reciprocal rank, as OpenAI ranks), optionally filtered
    /// by attributes, scores scaled to 0–1.
    pub async fn search(
        &self,
        tenant_id: &str,
        vector_store_id: &str,
        search: &StoreSearch,
    ) -> Result<StoreSearchResults, MemoryError> {
        crate::collections::within(
            "max_num_results",
            search.max_num_results,
            1..=MAX_SEARCH_RESULTS,
        )?;
        if !(0.0..=1.0).contains(&search.score_threshold) {
            return Err(MemoryError::invalid(
                "ranking_options.score_threshold",
                "must be between 0 and 1",
            ));
        }
        let text = search
            .queries
            .iter()
            .map(|query| query.trim())
            .filter(|query| !query.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if text.is_empty() {
            return Err(MemoryError::invalid("query", "give a non-empty query"));
        }
        let row = self.live_row(tenant_id, vector_store_id).await?;
        // Expiry counts in days, so a search marks the store active at most once a minute:
        // searches do not each take the write lock.
        let now = now_ms();
        if now - row.last_active_at_ms > TOUCH_INTERVAL_MS {
            self.inner.store.touch_vector_store(&row.id, now).await?;
        }
        let weights = search.weights;
        // Words in the query give a hybrid search; a query with none (only symbols) is
        // searched by meaning alone.
        let mode = if hearth_store::keyword_query(&text).is_some() {
            SearchMode::Hybrid(weights)
        } else {
            SearchMode::Vector
        };
        let request = SearchRequest {
            mode,
            filter: search.filter.clone(),
            ..SearchRequest::text(text, search.max_num_results)
        };
        let results = self
            .inner
            .memory
            .search(tenant_id, vector_store_id, &request)
            .await?;
        // The best fused score: first on both sides.
        let best = (weights.vector_weight + weights.keyword_weight) / (weights.k + 1.0);
        let file_ids: Vec<String> = results
            .hits
            .iter()
            .map(|hit| hit.document.id.clone())
            .collect();
        let names: std::collections::HashMap<String, String> = self
            .inner
            .store
            .vector_store_filenames(vector_store_id, &file_ids)
            .await?
            .into_iter()
            .collect();
        let hits = results
            .hits
            .into_iter()
            .map(|hit| {
                let score = match mode {
                    SearchMode::Hybrid(_) if best > 0.0 => (hit.score / best).clamp(0.0, 1.0),
                    // Cosine similarity, from -1 to 1.
                    _ => ((hit.score + 1.0) / 2.0).clamp(0.0, 1.0),
                };
                StoreHit {
                    filename: names.get(&hit.document.id).cloned().unwrap_or_default(),
                    file_id: hit.document.id,
                    score,
                    attributes: hit.document.metadata,
                    text: hit.document.text,
                }
            })
            .filter(|hit| hit.score >= search.score_threshold)
            .collect();
        Ok(StoreSearchResults {
            hits,
            embedding_tokens: results.embedding_tokens,
            embedding_model: results.embedding_model,
        })
    }
}

/// How often stores past their expiry are looked for.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Sweeps expired stores at start and every [`SWEEP_INTERVAL`], while the service lives.
async fn sweep_periodically(inner: std::sync::Weak<Inner>) {
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if let Err(error) = (VectorStores { inner }).sweep_expired().await {
            tracing::warn!(%error, "sweeping expired vector stores failed; tried again later");
        }
    }
}

fn expires_at(row: &VectorStoreRow) -> Option<i64> {
    row.expires_after_days.map(|days| {
        row.last_active_at_ms
            .saturating_add(days.saturating_mul(DAY_MS))
    })
}

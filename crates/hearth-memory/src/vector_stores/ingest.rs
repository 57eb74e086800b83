//! The background worker that reads attached files into their store's collection, one at a
//! time: in the order they were attached within a vector store, and taking the stores in turn
//! (round robin), so one store's thousand files do not hold up another's one.
//!
//! Each attachment has an `attempt` id. A job reads the file only if its row still carries
//! that attempt and is in progress, and records the outcome only under the same condition.
//! When it cannot (the file was detached, its batch cancelled or the store deleted while it
//! was read), it removes the document it wrote, so nothing detached stays searchable; a newer
//! attempt of the same file is queued behind it and overwrites it. A store's jobs run in
//! order, so an older attempt never finishes after a newer one.

use std::sync::Weak;

use hearth_store::IngestOutcome;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{FileStatus, IngestReport, Inner, VectorStores};
use crate::collections::TextShape;
use crate::{ChunkSize, MemoryError, NewDocument};

/// How long, and how many times, a read waits for a busy embedding model.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_millis(500);
const BUSY_WAITS: u32 = 120;

/// One file to read.
#[derive(Debug, Clone)]
pub(super) struct Job {
    pub(super) vector_store_id: String,
    pub(super) file_id: String,
    pub(super) attempt: String,
}

/// Jobs waiting, per vector store, the stores in turn.
#[derive(Debug, Default)]
struct FairQueue {
    stores: std::collections::VecDeque<(String, std::collections::VecDeque<Job>)>,
}

impl FairQueue {
    fn push(&mut self, job: Job) {
        match self
            .stores
            .iter_mut()
            .find(|(store, _)| *store == job.vector_store_id)
        {
            Some((_, queue)) => queue.push_back(job),
            None => self
                .stores
                .push_back((job.vector_store_id.clone(), [job].into())),
        }
    }

    /// The next store's oldest job; that store goes to the back of the turn.
    fn pop(&mut self) -> Option<Job> {
        let (store, mut queue) = self.stores.pop_front()?;
        let job = queue.pop_front();
        if !queue.is_empty() {
            self.stores.push_back((store, queue));
        }
        job
    }
}

/// Runs jobs until every handle on the service is gone.
pub(super) async fn run(inner: Weak<Inner>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut waiting = FairQueue::default();
    loop {
        if waiting.stores.is_empty() {
            match jobs.recv().await {
                Some(job) => waiting.push(job),
                None => return,
            }
        }
        while let Ok(job) = jobs.try_recv() {
            waiting.push(job);
        }
        let Some(job) = waiting.pop() else {
            continue;
        };
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let service = VectorStores { inner };
        if let Err(error) = service.ingest(&job).await {
            // The store itself failed (the database); the file stays in progress and is
            // read again at the next start.
            tracing::warn!(
                vector_store = %job.vector_store_id,
                file = %job.file_id,
                %error,
                "reading a file into its vector store failed; it is retried at the next start"
            );
        }
    }
}

/// A failure of the file (not of the server): recorded on the file, never retried.
fn failed(code: &str, message: impl Into<String>) -> IngestOutcome {
    IngestOutcome::Failed {
        code: code.to_string(),
        message: message.into(),
    }
}

impl VectorStores {
    async fn ingest(&self, job: &Job) -> Result<(), MemoryError> {
        let store = &self.inner.store;
        let Some(row) = store
            .vector_store_file(&job.vector_store_id, &job.file_id)
            .await?
        else {
            return Ok(());
        };
        if row.attempt != job.attempt || row.status != FileStatus::InProgress.name() {
            return Ok(());
        }
        let Some(owner) = store.vector_store_by_id(&job.vector_store_id).await? else {
            return Ok(());
        };
        let tenant_id = owner.tenant_id;
        let mut report = IngestReport {
            tenant_id: tenant_id.clone(),
            vector_store_id: job.vector_store_id.clone(),
            file_id: job.file_id.clone(),
            status: FileStatus::Failed,
            chunks: 0,
            embedding_tokens: 0,
            embedding_model: None,
        };
        let outcome = match self.read_file(&tenant_id, &row).await {
            Ok(Ok(upserted)) => {
                report.status = FileStatus::Completed;
                report.chunks = upserted.chunks;
                report.embedding_tokens = upserted.embedding_tokens;
                report.embedding_model = upserted.embedding_model;
                IngestOutcome::Completed {
                    usage_bytes: upserted.usage_bytes,
                }
            }
            Ok(Err(outcome)) => outcome,
            Err(error) => return Err(error),
        };
        let recorded = store
            .finish_vector_store_file(&job.vector_store_id, &job.file_id, &job.attempt, &outcome)
            .await?;
        let current = store
            .vector_store_file(&job.vector_store_id, &job.file_id)
            .await?;
        let superseded = current
            .as_ref()
            .is_some_and(|current| current.attempt != job.attempt);
        // A failed read leaves no passages of an earlier read of the file behind; a read that
        // was detached or cancelled meanwhile leaves none of its own. A newer attempt queued
        // behind this one writes the document itself.
        let remove = !superseded && (!recorded || matches!(outcome, IngestOutcome::Failed { .. }));
        if remove {
            self.remove_document(&tenant_id, &job.vector_store_id, &job.file_id)
                .await?;
        }
        if !recorded {
            report.status = FileStatus::Cancelled;
        }
        tracing::info!(
            vector_store = %job.vector_store_id,
            file = %job.file_id,
            status = report.status.name(),
            chunks = report.chunks,
            "vector store file read"
        );
        if let Some(observer) = &self.inner.observer {
            observer(&report);
        }
        Ok(())
    }

    /// Reads, extracts and stores one file. The outer error is the server's (the database);
    /// the inner one the file's, to record on it.
    async fn read_file(
        &self,
        tenant_id: &str,
        row: &hearth_store::VectorStoreFileRow,
    ) -> Result<Result<Stored, IngestOutcome>, MemoryError> {
        let bytes = match self.inner.files.content(tenant_id, &row.file_id).await {
            Ok((_, bytes)) => bytes,
            Err(MemoryError::NotFound { .. }) => {
                return Ok(Err(failed(
                    "invalid_file",
                    "the file was deleted before it could be read",
                )));
            }
            Err(MemoryError::FileIo { source, .. }) => {
                return Ok(Err(failed(
                    "server_error",
                    format!("the file's bytes could not be read: {source}"),
                )));
            }
            Err(error) => return Err(error),
        };
        let filename = row.filename.clone();
        let extracted =
            crate::collections::blocking(move || crate::extract_text(&filename, &bytes)).await;
        let text = match extracted {
            Ok(text) => text,
            Err(MemoryError::Invalid { reason, .. }) => {
                return Ok(Err(failed("unsupported_file", reason)));
            }
            Err(error) => return Ok(Err(failed("unsupported_file", error.to_string()))),
        };
        if text.trim().is_empty() {
            return Ok(Err(failed(
                "invalid_file",
                "the file has no text to search",
            )));
        }
        let attributes: Value = serde_json::from_str(&row.attributes)
            .map_err(|error| MemoryError::StoredData(error.to_string()))?;
        let shape = TextShape {
            chunk: ChunkSize {
                max_tokens: Some(row.max_chunk_tokens.max(1) as usize),
                overlap_tokens: Some(row.chunk_overlap_tokens.max(0) as usize),
            },
            max_text_bytes: usize::try_from(self.inner.files.max_bytes()).unwrap_or(usize::MAX),
        };
        let text_bytes = text.len() as i64;
        let document = NewDocument {
            id: Some(row.file_id.clone()),
            text,
            metadata: attributes,
            embedding: None,
        };
        // A busy model (its queue full of requests) is waited for, not counted against the
        // file: the worker has nothing else to do meanwhile.
        let mut waits = 0;
        let upserted = loop {
            let result = self
                .inner
                .memory
                .upsert_shaped(
                    tenant_id,
                    &row.vector_store_id,
                    vec![document.clone()],
                    shape,
                )
                .await;
            match result {
                Err(MemoryError::Embedding { failure, .. })
                    if failure.kind == crate::EmbedFailureKind::Busy && waits < BUSY_WAITS =>
                {
                    waits += 1;
                    tokio::time::sleep(BUSY_WAIT).await;
                }
                other => break other,
            }
        };
        match upserted {
            Ok(upserted) => {
                let dimensions = self
                    .inner
                    .memory
                    .collection(tenant_id, &row.vector_store_id)
                    .await
                    .map(|collection| collection.dimensions)
                    .unwrap_or(0);
                // What the passages take: their text (chunks overlap, so estimated from the
                // whole text once) and a vector each.
                let usage_bytes = text_bytes + (upserted.chunks * dimensions * 4) as i64;
                Ok(Ok(Stored {
                    usage_bytes,
                    chunks: upserted.chunks,
                    embedding_tokens: upserted.embedding_tokens,
                    embedding_model: upserted.embedding_model,
                }))
            }
            Err(MemoryError::Store(error)) => Err(MemoryError::Store(error)),
            Err(MemoryError::NotFound { .. }) => Ok(Err(failed(
                "server_error",
                "the vector store was deleted while the file was read",
            ))),
            Err(error @ MemoryError::Embedding { .. }) => {
                Ok(Err(failed("server_error", error.to_string())))
            }
            Err(error) => Ok(Err(failed("invalid_file", error.to_string()))),
        }
    }
}

/// What a completed read stored.
struct Stored {
    usage_bytes: i64,
    chunks: usize,
    embedding_tokens: u64,
    embedding_model: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(store: &str, file: &str) -> Job {
        Job {
            vector_store_id: store.to_string(),
            file_id: file.to_string(),
            attempt: "a".to_string(),
        }
    }

    #[test]
    fn stores_take_turns_and_each_keeps_its_order() {
        let mut waiting = FairQueue::default();
        for file in ["a1", "a2", "a3"] {
            waiting.push(job("big", file));
        }
        waiting.push(job("small", "b1"));
        let first = waiting.pop().unwrap();
        waiting.push(job("other", "c1"));
        let mut order = vec![first.file_id];
        while let Some(next) = waiting.pop() {
            order.push(next.file_id);
        }
        assert_eq!(order, ["a1", "b1", "a2", "c1", "a3"]);
    }
}

//! Rows of OpenAI's vector stores: the stores, the files attached to them with their ingestion
//! state, and the batches files were attached in. The text itself lives in the memory tables
//! (each store has a collection); this is the bookkeeping around it, scoped by tenant.

use crate::{Store, StoreError};

/// One vector store.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct VectorStoreRow {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub collection_id: String,
    /// A JSON object.
    pub metadata: String,
    /// Days after the last activity when the store expires; `None`: never.
    pub expires_after_days: Option<i64>,
    pub created_at_ms: i64,
    pub last_active_at_ms: i64,
    /// When it was found expired and its passages deleted.
    pub expired_at_ms: Option<i64>,
}

/// One file attached to a vector store.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct VectorStoreFileRow {
    pub vector_store_id: String,
    pub file_id: String,
    pub batch_id: Option<String>,
    pub filename: String,
    /// `in_progress`, `completed`, `failed` or `cancelled`.
    pub status: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// A JSON object.
    pub attributes: String,
    pub chunking_auto: bool,
    pub max_chunk_tokens: i64,
    pub chunk_overlap_tokens: i64,
    pub usage_bytes: i64,
    /// Names the current ingestion of the file.
    pub attempt: String,
    pub created_at_ms: i64,
}

/// One batch of attached files.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct VectorStoreFileBatchRow {
    pub id: String,
    pub vector_store_id: String,
    pub cancelled: bool,
    pub created_at_ms: i64,
}

/// How many files of a store (or batch) are in each state, and the bytes the completed ones
/// take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileCounts {
    pub in_progress: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub usage_bytes: i64,
}

impl FileCounts {
    pub fn total(&self) -> i64 {
        self.in_progress + self.completed + self.failed + self.cancelled
    }
}

/// How an ingestion ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    Completed { usage_bytes: i64 },
    Failed { code: String, message: String },
}

/// A page of a list ordered by creation time, then id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListWindow<'a> {
    /// Start after this item (in the list's order).
    pub after: Option<&'a str>,
    /// End before this item (in the list's order).
    pub before: Option<&'a str>,
    pub limit: i64,
    /// Newest first when true.
    pub descending: bool,
}

/// Which files of a store a list returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorStoreFileQuery<'a> {
    pub vector_store_id: &'a str,
    pub batch_id: Option<&'a str>,
    pub status: Option<&'a str>,
    pub window: ListWindow<'a>,
}

macro_rules! store_columns {
    () => {
        "id, tenant_id, name, collection_id, metadata, expires_after_days, created_at_ms, \
         last_active_at_ms, expired_at_ms"
    };
}

macro_rules! file_columns {
    () => {
        "vector_store_id, file_id, batch_id, filename, status, error_code, error_message, \
         attributes, chunking_auto, max_chunk_tokens, chunk_overlap_tokens, usage_bytes, attempt, \
         created_at_ms"
    };
}

/// The SQL that keeps rows after (or before) a cursor row in a list's order, the cursor's
/// time and id bound at `time` and `id` and the table's id column named `id_column`, with the
/// ORDER BY that reads them; and whether the rows come back reversed. `before` pages are read
/// in the opposite order (nearest the cursor first) and turned around by the caller.
fn window_sql(
    window: &ListWindow<'_>,
    time: &str,
    id: &str,
    id_column: &str,
) -> (String, String, bool) {
    let forward = window.before.is_none();
    // Reading forward in descending order, or backward in ascending order, goes down.
    let down = window.descending == forward;
    let (comparison, direction) = if down { ("<", "DESC") } else { (">", "ASC") };
    let condition = format!(
        "({time} IS NULL OR created_at_ms {comparison} {time} \
         OR (created_at_ms = {time} AND {id_column} {comparison} {id}))"
    );
    let order_by = format!("ORDER BY created_at_ms {direction}, {id_column} {direction}");
    (condition, order_by, !forward)
}

fn counts_of(rows: Vec<(String, i64, Option<i64>)>) -> FileCounts {
    let mut counts = FileCounts::default();
    for (status, count, bytes) in rows {
        match status.as_str() {
            "in_progress" => counts.in_progress = count,
            "completed" => {
                counts.completed = count;
                counts.usage_bytes = bytes.unwrap_or(0);
            }
            "failed" => counts.failed = count,
            _ => counts.cancelled += count,
        }
    }
    counts
}

impl Store {
    // ----- Stores. -----

    pub async fn insert_vector_store(&self, row: &VectorStoreRow) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO vector_stores (",
            store_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&row.id)
        .bind(&row.tenant_id)
        .bind(&row.name)
        .bind(&row.collection_id)
        .bind(&row.metadata)
        .bind(row.expires_after_days)
        .bind(row.created_at_ms)
        .bind(row.last_active_at_ms)
        .bind(row.expired_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores past their expiry whose passages are not yet deleted, as of `now_ms`.
    pub async fn newly_expired_vector_stores(
        &self,
        now_ms: i64,
    ) -> Result<Vec<VectorStoreRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            store_columns!(),
            " FROM vector_stores WHERE expires_after_days IS NOT NULL AND expired_at_ms IS NULL \
             AND last_active_at_ms + expires_after_days * 86400000 <= $1"
        ))
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records that an expired store's passages are deleted.
    pub async fn mark_vector_store_expired(&self, id: &str, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE vector_stores SET expired_at_ms = $2 WHERE id = $1")
            .bind(id)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A tenant's vector store by id.
    pub async fn vector_store(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<VectorStoreRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            store_columns!(),
            " FROM vector_stores WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A vector store by id alone, whoever owns it (for background work that has no caller).
    pub async fn vector_store_by_id(&self, id: &str) -> Result<Option<VectorStoreRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            store_columns!(),
            " FROM vector_stores WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A page of a tenant's vector stores by creation time. A cursor that names no store of
    /// the tenant is ignored.
    pub async fn vector_stores(
        &self,
        tenant_id: &str,
        window: &ListWindow<'_>,
    ) -> Result<Vec<VectorStoreRow>, StoreError> {
        let cursor = match window.after.or(window.before) {
            Some(cursor) => self.vector_store(tenant_id, cursor).await?,
            None => None,
        };
        let (time, id) = cursor
            .map(|row| (Some(row.created_at_ms), Some(row.id)))
            .unwrap_or((None, None));
        let (condition, order_by, reversed) = window_sql(window, "$2", "$3", "id");
        let statement = format!(
            concat!(
                "SELECT ",
                store_columns!(),
                " FROM vector_stores WHERE tenant_id = $1 AND {} {} LIMIT $4"
            ),
            condition, order_by
        );
        let mut rows: Vec<VectorStoreRow> = sqlx::query_as(&statement)
            .bind(tenant_id)
            .bind(time)
            .bind(id)
            .bind(window.limit)
            .fetch_all(&self.pool)
            .await?;
        if reversed {
            rows.reverse();
        }
        Ok(rows)
    }

    /// Changes a store's name, metadata and expiry, marking it active; false when it is gone.
    pub async fn update_vector_store(&self, row: &VectorStoreRow) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE vector_stores SET name = $3, metadata = $4, expires_after_days = $5, \
             last_active_at_ms = $6 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&row.tenant_id)
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.metadata)
        .bind(row.expires_after_days)
        .bind(row.last_active_at_ms)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0)
    }

    /// Marks a store active now (a search, an attached file), which pushes back its expiry.
    pub async fn touch_vector_store(&self, id: &str, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE vector_stores SET last_active_at_ms = $2 WHERE id = $1")
            .bind(id)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes a tenant's store with its file and batch rows; false when there is none.
    pub async fn delete_vector_store(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("DELETE FROM vector_stores WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0,
        )
    }

    /// The files of a store in each state.
    pub async fn vector_store_file_counts(
        &self,
        vector_store_id: &str,
    ) -> Result<FileCounts, StoreError> {
        self.file_counts_where("vector_store_id", vector_store_id)
            .await
    }

    /// The files whose `column` (a store or a batch) is `value`, in each state.
    async fn file_counts_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<FileCounts, StoreError> {
        let rows = sqlx::query_as(&format!(
            "SELECT status, COUNT(*), SUM(usage_bytes) FROM vector_store_files \
             WHERE {column} = $1 GROUP BY status"
        ))
        .bind(value)
        .fetch_all(&self.pool)
        .await?;
        Ok(counts_of(rows))
    }

    // ----- Files. -----

    /// Attaches files to a store in one transaction (with their batch, if any). A file already
    /// attached is attached again: its row is replaced and its ingestion starts over. False
    /// when the store is gone.
    pub async fn attach_vector_store_files(
        &self,
        batch: Option<&VectorStoreFileBatchRow>,
        files: &[VectorStoreFileRow],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let Some(store_id) = batch
            .map(|batch| batch.vector_store_id.as_str())
            .or_else(|| files.first().map(|file| file.vector_store_id.as_str()))
        else {
            return Ok(true);
        };
        let mut transaction = self.begin_write().await?;
        let touched = sqlx::query("UPDATE vector_stores SET last_active_at_ms = $2 WHERE id = $1")
            .bind(store_id)
            .bind(now_ms)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        if touched == 0 {
            return Ok(false);
        }
        if let Some(batch) = batch {
            sqlx::query(
                "INSERT INTO vector_store_file_batches (id, vector_store_id, cancelled, \
                 created_at_ms) VALUES ($1, $2, $3, $4)",
            )
            .bind(&batch.id)
            .bind(&batch.vector_store_id)
            .bind(batch.cancelled)
            .bind(batch.created_at_ms)
            .execute(&mut *transaction)
            .await?;
        }
        for file in files {
            sqlx::query(concat!(
                "INSERT INTO vector_store_files (",
                file_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                 ON CONFLICT (vector_store_id, file_id) DO UPDATE SET batch_id = $3, \
                 filename = $4, status = $5, error_code = $6, error_message = $7, \
                 attributes = $8, chunking_auto = $9, max_chunk_tokens = $10, \
                 chunk_overlap_tokens = $11, usage_bytes = $12, attempt = $13, \
                 created_at_ms = $14"
            ))
            .bind(&file.vector_store_id)
            .bind(&file.file_id)
            .bind(&file.batch_id)
            .bind(&file.filename)
            .bind(&file.status)
            .bind(&file.error_code)
            .bind(&file.error_message)
            .bind(&file.attributes)
            .bind(file.chunking_auto)
            .bind(file.max_chunk_tokens)
            .bind(file.chunk_overlap_tokens)
            .bind(file.usage_bytes)
            .bind(&file.attempt)
            .bind(file.created_at_ms)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(true)
    }

    /// One file of a store.
    pub async fn vector_store_file(
        &self,
        vector_store_id: &str,
        file_id: &str,
    ) -> Result<Option<VectorStoreFileRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            file_columns!(),
            " FROM vector_store_files WHERE vector_store_id = $1 AND file_id = $2"
        ))
        .bind(vector_store_id)
        .bind(file_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A page of a store's files (or a batch's) by the time they were attached, optionally
    /// of one status. A cursor that names no file of the store is ignored.
    pub async fn vector_store_files(
        &self,
        query: &VectorStoreFileQuery<'_>,
    ) -> Result<Vec<VectorStoreFileRow>, StoreError> {
        let window = &query.window;
        let cursor = match window.after.or(window.before) {
            Some(cursor) => {
                self.vector_store_file(query.vector_store_id, cursor)
                    .await?
            }
            None => None,
        };
        let (time, id) = cursor
            .map(|row| (Some(row.created_at_ms), Some(row.file_id)))
            .unwrap_or((None, None));
        let (condition, order_by, reversed) = window_sql(window, "$4", "$5", "file_id");
        let statement = format!(
            concat!(
                "SELECT ",
                file_columns!(),
                " FROM vector_store_files WHERE vector_store_id = $1 \
                 AND ($2 IS NULL OR batch_id = $2) AND ($3 IS NULL OR status = $3) \
                 AND {} {} LIMIT $6"
            ),
            condition, order_by
        );
        let mut rows: Vec<VectorStoreFileRow> = sqlx::query_as(&statement)
            .bind(query.vector_store_id)
            .bind(query.batch_id)
            .bind(query.status)
            .bind(time)
            .bind(id)
            .bind(window.limit)
            .fetch_all(&self.pool)
            .await?;
        if reversed {
            rows.reverse();
        }
        Ok(rows)
    }

    /// The names of a store's files among `file_ids`, as `(file_id, filename)`.
    pub async fn vector_store_filenames(
        &self,
        vector_store_id: &str,
        file_ids: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        if file_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..file_ids.len())
            .map(|position| format!("${}", position + 2))
            .collect();
        let statement = format!(
            "SELECT file_id, filename FROM vector_store_files WHERE vector_store_id = $1 \
             AND file_id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_as(&statement).bind(vector_store_id);
        for id in file_ids {
            query = query.bind(id);
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// Records how an ingestion ended, if it is still the file's current one and in progress
    /// (not detached, cancelled or attached again meanwhile). True when recorded.
    pub async fn finish_vector_store_file(
        &self,
        vector_store_id: &str,
        file_id: &str,
        attempt: &str,
        outcome: &IngestOutcome,
    ) -> Result<bool, StoreError> {
        let (status, usage_bytes, code, message) = match outcome {
            IngestOutcome::Completed { usage_bytes } => ("completed", *usage_bytes, None, None),
            IngestOutcome::Failed { code, message } => {
                ("failed", 0, Some(code.as_str()), Some(message.as_str()))
            }
        };
        Ok(sqlx::query(
            "UPDATE vector_store_files SET status = $4, usage_bytes = $5, error_code = $6, \
             error_message = $7 WHERE vector_store_id = $1 AND file_id = $2 AND attempt = $3 \
             AND status = 'in_progress'",
        )
        .bind(vector_store_id)
        .bind(file_id)
        .bind(attempt)
        .bind(status)
        .bind(usage_bytes)
        .bind(code)
        .bind(message)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0)
    }

    /// Detaches a file from a store; false when it was not attached.
    pub async fn detach_vector_store_file(
        &self,
        vector_store_id: &str,
        file_id: &str,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM vector_store_files WHERE vector_store_id = $1 AND file_id = $2",
        )
        .bind(vector_store_id)
        .bind(file_id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0)
    }

    /// Every ingestion still in progress, oldest first, as `(vector_store_id, file_id,
    /// attempt)`: what a restart resumes.
    pub async fn pending_vector_store_files(
        &self,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT vector_store_id, file_id, attempt FROM vector_store_files \
             WHERE status = 'in_progress' ORDER BY created_at_ms, file_id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    // ----- Batches. -----

    pub async fn vector_store_file_batch(
        &self,
        vector_store_id: &str,
        batch_id: &str,
    ) -> Result<Option<VectorStoreFileBatchRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, vector_store_id, cancelled, created_at_ms FROM vector_store_file_batches \
             WHERE vector_store_id = $1 AND id = $2",
        )
        .bind(vector_store_id)
        .bind(batch_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The files of a batch in each state.
    pub async fn vector_store_batch_counts(
        &self,
        batch_id: &str,
    ) -> Result<FileCounts, StoreError> {
        self.file_counts_where("batch_id", batch_id).await
    }

    /// Cancels a batch: its files still in progress become cancelled, in one transaction.
    /// False when the batch is gone.
    pub async fn cancel_vector_store_file_batch(
        &self,
        vector_store_id: &str,
        batch_id: &str,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let found = sqlx::query(
            "UPDATE vector_store_file_batches SET cancelled = 1 \
             WHERE vector_store_id = $1 AND id = $2",
        )
        .bind(vector_store_id)
        .bind(batch_id)
        .execute(&mut *transaction)
        .await?
        .rows_affected()
            > 0;
        if found {
            sqlx::query(
                "UPDATE vector_store_files SET status = 'cancelled' \
                 WHERE batch_id = $1 AND status = 'in_progress'",
            )
            .bind(batch_id)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(found)
    }
}

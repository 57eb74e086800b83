//! Memory's tables: collections, their documents' chunks with embeddings, and the deletions an
//! index snapshot replays. Rows are plain data; `hearth-memory` gives them meaning (metrics,
//! filters, the vector index).
//!
//! Every write to a collection's chunks takes sequence numbers from the collection's
//! `last_sequence` counter in the same transaction: a stored chunk's sequence is also its key
//! in the vector index, and a deletion (by a delete, or by an upsert replacing a document)
//! records the removed chunk's sequence with the sequence of the write that removed it. An
//! index that holds every write up to some sequence can therefore catch up by reading the
//! chunks and deletions after it.

use crate::error::StoreError;
use crate::store::Store;

/// A collection as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MemoryCollectionRow {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    /// `cosine`, `dot` or `l2`.
    pub metric: String,
    pub dimensions: i64,
    pub embedding_model: Option<String>,
    pub int8: bool,
    pub hnsw_m: i64,
    pub hnsw_ef_construction: i64,
    pub hnsw_ef: i64,
    /// A JSON object.
    pub metadata: String,
    pub created_at_ms: i64,
    /// The newest sequence handed out to a write of this collection (0 before any).
    pub last_sequence: i64,
}

/// A chunk of a document as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct MemoryChunkRow {
    pub document_id: String,
    pub chunk_index: i64,
    /// The chunk's text.
    pub text: String,
    /// On chunk 0 of a document split in several: the whole document's text.
    pub document_text: Option<String>,
    /// A JSON object.
    pub metadata: String,
    /// Little-endian f32 values.
    pub embedding: Vec<u8>,
    /// The write that stored the row; the chunk's key in the vector index.
    pub sequence: i64,
}

/// A chunk's identity and metadata without its text and embedding: what a loaded index keeps
/// in memory to filter and to map its keys back to documents.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MemoryChunkKey {
    pub document_id: String,
    pub chunk_index: i64,
    pub metadata: String,
    pub sequence: i64,
}

/// A chunk to store; its sequence is given by the store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMemoryChunk {
    pub document_id: String,
    pub chunk_index: i64,
    pub text: String,
    /// Set on chunk 0 of a document split in several: the whole document's text.
    pub document_text: Option<String>,
    pub metadata: String,
    pub embedding: Vec<u8>,
}

/// What a committed write to a collection's chunks did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryWrite {
    /// The first sequence the write took; the chunks stored get `first_sequence..` in order.
    pub first_sequence: i64,
    /// The last sequence the write took: the collection's `last_sequence` after it.
    pub last_sequence: i64,
    /// The sequences (index keys) of the chunks the write removed or replaced.
    pub removed: Vec<i64>,
}

/// The outcome of writing a collection's own row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionWrite {
    Written,
    NotFound,
    /// The tenant already has a collection of that name.
    NameTaken,
    /// The tenant already has as many collections as it may.
    LimitReached,
}

macro_rules! collection_columns {
    () => {
        "id, tenant_id, name, metric, dimensions, embedding_model, int8, hnsw_m, \
         hnsw_ef_construction, hnsw_ef, metadata, created_at_ms, last_sequence"
    };
}
macro_rules! chunk_columns {
    () => {
        "document_id, chunk_index, text, document_text, metadata, embedding, sequence"
    };
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database) if database.is_unique_violation())
}

/// Takes `count` sequences from the collection's counter; `None` when there is no such
/// collection. Returns the last sequence taken.
async fn take_sequences(
    transaction: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    collection_id: &str,
    count: i64,
) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "UPDATE memory_collections SET last_sequence = last_sequence + $2 WHERE id = $1 \
         RETURNING last_sequence",
    )
    .bind(collection_id)
    .bind(count)
    .fetch_optional(&mut **transaction)
    .await?)
}

/// Removes every chunk of a document, recording each removal at `sequence`; returns the
/// removed chunks' sequences.
async fn remove_document(
    transaction: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    collection_id: &str,
    document_id: &str,
    sequence: i64,
) -> Result<Vec<i64>, StoreError> {
    let old: Vec<i64> = sqlx::query_scalar(
        "SELECT sequence FROM memory_chunks WHERE collection_id = $1 AND document_id = $2",
    )
    .bind(collection_id)
    .bind(document_id)
    .fetch_all(&mut **transaction)
    .await?;
    if old.is_empty() {
        return Ok(old);
    }
    for &chunk_sequence in &old {
        sqlx::query(
            "INSERT INTO memory_deletions (collection_id, chunk_sequence, sequence) \
             VALUES ($1, $2, $3)",
        )
        .bind(collection_id)
        .bind(chunk_sequence)
        .bind(sequence)
        .execute(&mut **transaction)
        .await?;
    }
    sqlx::query("DELETE FROM memory_chunks WHERE collection_id = $1 AND document_id = $2")
        .bind(collection_id)
        .bind(document_id)
        .execute(&mut **transaction)
        .await?;
    crate::memory_text::unindex_text(transaction, collection_id, &old).await?;
    Ok(old)
}

impl Store {
    /// Stores a new collection; `NameTaken` when its tenant has one of that name,
    /// `LimitReached` when it has `max_per_tenant` already. One statement counts and inserts,
    /// so concurrent creates cannot pass the limit together.
    pub async fn insert_memory_collection(
        &self,
        row: &MemoryCollectionRow,
        max_per_tenant: i64,
    ) -> Result<CollectionWrite, StoreError> {
        let mut transaction = self.begin_write().await?;
        let result = sqlx::query(
            "INSERT INTO memory_collections (id, tenant_id, name, metric, dimensions, \
             embedding_model, int8, hnsw_m, hnsw_ef_construction, hnsw_ef, metadata, \
             created_at_ms, last_sequence) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 \
             WHERE (SELECT COUNT(*) FROM memory_collections WHERE tenant_id = $2) < $14",
        )
        .bind(&row.id)
        .bind(&row.tenant_id)
        .bind(&row.name)
        .bind(&row.metric)
        .bind(row.dimensions)
        .bind(&row.embedding_model)
        .bind(row.int8)
        .bind(row.hnsw_m)
        .bind(row.hnsw_ef_construction)
        .bind(row.hnsw_ef)
        .bind(&row.metadata)
        .bind(row.created_at_ms)
        .bind(row.last_sequence)
        .bind(max_per_tenant)
        .execute(&mut *transaction)
        .await;
        match result {
            Ok(done) if done.rows_affected() == 0 => Ok(CollectionWrite::LimitReached),
            Ok(_) => {
                crate::memory_text::create_text_index(&mut transaction, &row.id).await?;
                transaction.commit().await?;
                Ok(CollectionWrite::Written)
            }
            Err(error) if is_unique_violation(&error) => Ok(CollectionWrite::NameTaken),
            Err(error) => Err(error.into()),
        }
    }

    /// A tenant's collection by name.
    pub async fn memory_collection(
        &self,
        tenant_id: &str,
        name: &str,
    ) -> Result<Option<MemoryCollectionRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            collection_columns!(),
            " FROM memory_collections WHERE tenant_id = $1 AND name = $2"
        ))
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A tenant's collections by name, those after `after_name` when given, at most `limit`.
    /// Every collection of every tenant, oldest first (for loading indexes at start).
    pub async fn all_memory_collections(&self) -> Result<Vec<MemoryCollectionRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            collection_columns!(),
            " FROM memory_collections ORDER BY created_at_ms, id"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn memory_collections(
        &self,
        tenant_id: &str,
        after_name: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MemoryCollectionRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            collection_columns!(),
            " FROM memory_collections WHERE tenant_id = $1 AND ($2 IS NULL OR name > $2) \
             ORDER BY name LIMIT $3"
        ))
        .bind(tenant_id)
        .bind(after_name)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Renames a tenant's collection and replaces its metadata and default search effort.
    pub async fn update_memory_collection(
        &self,
        tenant_id: &str,
        id: &str,
        name: &str,
        metadata: &str,
        hnsw_ef: i64,
    ) -> Result<CollectionWrite, StoreError> {
        let result = sqlx::query(
            "UPDATE memory_collections SET name = $3, metadata = $4, hnsw_ef = $5 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(name)
        .bind(metadata)
        .bind(hnsw_ef)
        .execute(&self.pool)
        .await;
        match result {
            Ok(done) if done.rows_affected() == 0 => Ok(CollectionWrite::NotFound),
            Ok(_) => Ok(CollectionWrite::Written),
            Err(error) if is_unique_violation(&error) => Ok(CollectionWrite::NameTaken),
            Err(error) => Err(error.into()),
        }
    }

    /// How many chunks a tenant's collections hold together.
    pub async fn memory_tenant_chunks(&self, tenant_id: &str) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM memory_chunks WHERE collection_id IN \
             (SELECT id FROM memory_collections WHERE tenant_id = $1)",
        )
        .bind(tenant_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(count.max(0) as u64)
    }

    /// Deletes a tenant's collection with its chunks and deletions; false when there is none.
    pub async fn delete_memory_collection(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        // Children first, so the delete does not depend on the connection's foreign-key mode.
        for statement in [
            "DELETE FROM memory_deletions WHERE collection_id = $1 AND EXISTS \
             (SELECT 1 FROM memory_collections WHERE id = $1 AND tenant_id = $2)",
            "DELETE FROM memory_chunks WHERE collection_id = $1 AND EXISTS \
             (SELECT 1 FROM memory_collections WHERE id = $1 AND tenant_id = $2)",
        ] {
            sqlx::query(statement)
                .bind(id)
                .bind(tenant_id)
                .execute(&mut *transaction)
                .await?;
        }
        let deleted =
            sqlx::query("DELETE FROM memory_collections WHERE id = $1 AND tenant_id = $2")
                .bind(id)
                .bind(tenant_id)
                .execute(&mut *transaction)
                .await?
                .rows_affected()
                > 0;
        if deleted {
            crate::memory_text::drop_text_index(&mut transaction, id).await?;
        }
        transaction.commit().await?;
        Ok(deleted)
    }

    /// Stores chunks in one transaction, replacing every earlier chunk of their documents.
    /// `None` when the collection does not exist; nothing is written then, or on any error.
    pub async fn upsert_memory_chunks(
        &self,
        collection_id: &str,
        chunks: &[NewMemoryChunk],
    ) -> Result<Option<MemoryWrite>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let count = chunks.len() as i64;
        let Some(last_sequence) = take_sequences(&mut transaction, collection_id, count).await?
        else {
            return Ok(None);
        };
        let first_sequence = last_sequence - count + 1;
        let mut removed = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for chunk in chunks {
            if seen.insert(chunk.document_id.as_str()) {
                removed.extend(
                    remove_document(
                        &mut transaction,
                        collection_id,
                        &chunk.document_id,
                        last_sequence,
                    )
                    .await?,
                );
            }
        }
        for (offset, chunk) in chunks.iter().enumerate() {
            sqlx::query(
                "INSERT INTO memory_chunks (collection_id, document_id, chunk_index, text, \
                 document_text, metadata, embedding, sequence) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(collection_id)
            .bind(&chunk.document_id)
            .bind(chunk.chunk_index)
            .bind(&chunk.text)
            .bind(&chunk.document_text)
            .bind(&chunk.metadata)
            .bind(&chunk.embedding)
            .bind(first_sequence + offset as i64)
            .execute(&mut *transaction)
            .await?;
        }
        let texts: Vec<(i64, &str)> = chunks
            .iter()
            .enumerate()
            .map(|(offset, chunk)| (first_sequence + offset as i64, chunk.text.as_str()))
            .collect();
        crate::memory_text::index_text(&mut transaction, collection_id, &texts).await?;
        transaction.commit().await?;
        Ok(Some(MemoryWrite {
            first_sequence,
            last_sequence,
            removed,
        }))
    }

    /// Deletes every chunk of the given documents in one transaction, as one write. `None`
    /// when the collection does not exist.
    pub async fn delete_memory_documents(
        &self,
        collection_id: &str,
        document_ids: &[String],
    ) -> Result<Option<MemoryWrite>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let Some(sequence) = take_sequences(&mut transaction, collection_id, 1).await? else {
            return Ok(None);
        };
        let mut removed = Vec::new();
        for document_id in document_ids {
            removed.extend(
                remove_document(&mut transaction, collection_id, document_id, sequence).await?,
            );
        }
        transaction.commit().await?;
        Ok(Some(MemoryWrite {
            first_sequence: sequence,
            last_sequence: sequence,
            removed,
        }))
    }

    /// The chunks of the given documents, in the order asked, each document's by index.
    pub async fn memory_chunks_of_documents(
        &self,
        collection_id: &str,
        document_ids: &[String],
    ) -> Result<Vec<MemoryChunkRow>, StoreError> {
        let mut connection = self.pool.acquire().await?;
        let mut rows = Vec::new();
        for document_id in document_ids {
            let chunks: Vec<MemoryChunkRow> = sqlx::query_as(concat!(
                "SELECT ",
                chunk_columns!(),
                " FROM memory_chunks WHERE collection_id = $1 AND document_id = $2 \
                 ORDER BY chunk_index"
            ))
            .bind(collection_id)
            .bind(document_id)
            .fetch_all(&mut *connection)
            .await?;
            rows.extend(chunks);
        }
        Ok(rows)
    }

    /// The chunks with the given sequences (index keys), in the order asked; missing ones are
    /// left out.
    pub async fn memory_chunks_by_sequence(
        &self,
        collection_id: &str,
        sequences: &[i64],
    ) -> Result<Vec<MemoryChunkRow>, StoreError> {
        let mut connection = self.pool.acquire().await?;
        let mut rows = Vec::with_capacity(sequences.len());
        for sequence in sequences {
            let row: Option<MemoryChunkRow> = sqlx::query_as(concat!(
                "SELECT ",
                chunk_columns!(),
                " FROM memory_chunks WHERE collection_id = $1 AND sequence = $2"
            ))
            .bind(collection_id)
            .bind(sequence)
            .fetch_optional(&mut *connection)
            .await?;
            rows.extend(row);
        }
        Ok(rows)
    }

    /// How many chunks the collection holds.
    pub async fn memory_chunk_count(&self, collection_id: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM memory_chunks WHERE collection_id = $1")
                .bind(collection_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// How many documents the collection holds (every document has a chunk 0).
    pub async fn memory_document_count(&self, collection_id: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM memory_chunks WHERE collection_id = $1 AND chunk_index = 0",
        )
        .bind(collection_id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The first chunks (index 0, which carry the whole text) of documents in id order, after
    /// `after_document` when given, at most `limit`.
    pub async fn memory_documents_page(
        &self,
        collection_id: &str,
        after_document: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MemoryChunkRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            chunk_columns!(),
            " FROM memory_chunks WHERE collection_id = $1 AND chunk_index = 0 \
             AND ($2 IS NULL OR document_id > $2) ORDER BY document_id LIMIT $3"
        ))
        .bind(collection_id)
        .bind(after_document)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The chunks stored by writes after `after_sequence`, by sequence (all of them for 0).
    pub async fn memory_chunks_after(
        &self,
        collection_id: &str,
        after_sequence: i64,
    ) -> Result<Vec<MemoryChunkRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            chunk_columns!(),
            " FROM memory_chunks WHERE collection_id = $1 AND sequence > $2 ORDER BY sequence"
        ))
        .bind(collection_id)
        .bind(after_sequence)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every chunk's identity and metadata, by sequence.
    pub async fn memory_chunk_keys(
        &self,
        collection_id: &str,
    ) -> Result<Vec<MemoryChunkKey>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT document_id, chunk_index, metadata, sequence FROM memory_chunks \
             WHERE collection_id = $1 ORDER BY sequence",
        )
        .bind(collection_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The sequences (index keys) of chunks removed by writes after `after_sequence`.
    pub async fn memory_deletions_after(
        &self,
        collection_id: &str,
        after_sequence: i64,
    ) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT chunk_sequence FROM memory_deletions WHERE collection_id = $1 \
             AND sequence > $2 ORDER BY sequence",
        )
        .bind(collection_id)
        .bind(after_sequence)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Forgets deletions at or below `up_to_sequence`, which a saved snapshot already holds.
    /// Returns how many were forgotten.
    pub async fn prune_memory_deletions(
        &self,
        collection_id: &str,
        up_to_sequence: i64,
    ) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM memory_deletions WHERE collection_id = $1 AND sequence <= $2")
                .bind(collection_id)
                .bind(up_to_sequence)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IntegrityCheck, OpenOptions};

    fn collection(id: &str, tenant_id: &str, name: &str) -> MemoryCollectionRow {
        MemoryCollectionRow {
            id: id.to_string(),
            tenant_id: tenant_id.to_string(),
            name: name.to_string(),
            metric: "cosine".to_string(),
            dimensions: 2,
            embedding_model: None,
            int8: false,
            hnsw_m: 16,
            hnsw_ef_construction: 200,
            hnsw_ef: 64,
            metadata: "{}".to_string(),
            created_at_ms: 1,
            last_sequence: 0,
        }
    }

    fn chunk(document_id: &str, text: &str) -> NewMemoryChunk {
        NewMemoryChunk {
            document_id: document_id.to_string(),
            chunk_index: 0,
            text: text.to_string(),
            document_text: None,
            metadata: "{}".to_string(),
            embedding: [1.0f32, 0.0].iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    #[tokio::test]
    async fn writes_take_sequences_record_removals_and_roll_back_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = OpenOptions {
            integrity_check: IntegrityCheck::Quick,
            run_migrations: true,
        };
        let store = Store::open(dir.path(), options).await.expect("open");
        let row = collection("c1", "t1", "docs");
        assert_eq!(
            store.insert_memory_collection(&row, 10).await.unwrap(),
            CollectionWrite::Written
        );
        assert_eq!(
            store
                .insert_memory_collection(&collection("c2", "t1", "docs"), 10)
                .await
                .unwrap(),
            CollectionWrite::NameTaken
        );
        // Another tenant may use the same name.
        assert_eq!(
            store
                .insert_memory_collection(&collection("c3", "t2", "docs"), 10)
                .await
                .unwrap(),
            CollectionWrite::Written
        );
        // A tenant at its limit makes no more.
        assert_eq!(
            store
                .insert_memory_collection(&collection("c4", "t2", "more"), 1)
                .await
                .unwrap(),
            CollectionWrite::LimitReached
        );
        assert!(
            store
                .memory_collection("t2", "more")
                .await
                .unwrap()
                .is_none()
        );

        let first = store
            .upsert_memory_chunks("c1", &[chunk("a", "one"), chunk("b", "two")])
            .await
            .unwrap()
            .unwrap();
        assert_eq!((first.first_sequence, first.last_sequence), (1, 2));
        assert!(first.removed.is_empty());
        let second = store
            .upsert_memory_chunks("c1", &[chunk("a", "one again")])
            .await
            .unwrap()
            .unwrap();
        assert_eq!((second.first_sequence, second.removed), (3, vec![1]));
        assert_eq!(store.memory_deletions_after("c1", 2).await.unwrap(), [1]);
        assert!(
            store
                .memory_deletions_after("c1", 3)
                .await
                .unwrap()
                .is_empty()
        );

        // A batch with a duplicate chunk fails on its primary key: nothing of it stays.
        let failed = store
            .upsert_memory_chunks("c1", &[chunk("c", "new"), chunk("c", "duplicate")])
            .await;
        assert!(failed.is_err());
        assert_eq!(store.memory_chunk_count("c1").await.unwrap(), 2);
        let counter = store
            .memory_collection("t1", "docs")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counter.last_sequence, 3);

        let deleted = store
            .delete_memory_documents("c1", &["b".to_string(), "missing".to_string()])
            .await
            .unwrap()
            .unwrap();
        assert_eq!((deleted.last_sequence, deleted.removed), (4, vec![2]));
        let after: Vec<i64> = store
            .memory_chunks_after("c1", 0)
            .await
            .unwrap()
            .iter()
            .map(|row| row.sequence)
            .collect();
        assert_eq!(after, [3]);
        assert_eq!(store.prune_memory_deletions("c1", 4).await.unwrap(), 2);
        assert!(
            store
                .upsert_memory_chunks("nope", &[])
                .await
                .unwrap()
                .is_none()
        );

        // Keyword search sees the stored text, and a collection whose text index is missing
        // (made before keyword search) gets it back filled from its chunks.
        let query = crate::keyword_query("again").unwrap();
        let hits = store
            .memory_keyword_search("c1", &query, 10, 0)
            .await
            .unwrap();
        assert_eq!(hits.iter().map(|hit| hit.sequence).collect::<Vec<_>>(), [3]);
        assert!(hits[0].snippet.contains("<mark>again</mark>"), "{hits:?}");
        assert!(!store.ensure_memory_text_index("c1").await.unwrap());
        let mut transaction = store.begin_write().await.unwrap();
        crate::memory_text::drop_text_index(&mut transaction, "c1")
            .await
            .unwrap();
        transaction.commit().await.unwrap();
        assert!(store.ensure_memory_text_index("c1").await.unwrap());
        let hits = store
            .memory_keyword_search("c1", &query, 10, 0)
            .await
            .unwrap();
        assert_eq!(hits.len(), 1);

        // Deleting is scoped by tenant and takes the rows with it.
        assert!(!store.delete_memory_collection("t2", "c1").await.unwrap());
        assert!(store.delete_memory_collection("t1", "c1").await.unwrap());
        assert_eq!(store.memory_chunk_count("c1").await.unwrap(), 0);
        store.close().await;
    }
}

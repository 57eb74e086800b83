//! Rows of uploaded files (OpenAI's Files API). The bytes live in the data directory; this is
//! what describes them, scoped by tenant.

use crate::{Store, StoreError};

/// One stored file's description.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FileRow {
    pub id: String,
    pub tenant_id: String,
    pub filename: String,
    pub purpose: String,
    pub bytes: i64,
    pub sha256: String,
    pub created_at_ms: i64,
}

/// Which files a list returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileQuery<'a> {
    pub tenant_id: &'a str,
    pub purpose: Option<&'a str>,
    /// Start after this file (in the list's order); `None` for the first page.
    pub after: Option<&'a str>,
    pub limit: i64,
    /// Newest first when true.
    pub descending: bool,
}

macro_rules! file_columns {
    () => {
        "id, tenant_id, filename, purpose, bytes, sha256, created_at_ms"
    };
}

impl Store {
    pub async fn insert_file(&self, row: &FileRow) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO files (",
            file_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&row.id)
        .bind(&row.tenant_id)
        .bind(&row.filename)
        .bind(&row.purpose)
        .bind(row.bytes)
        .bind(&row.sha256)
        .bind(row.created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A tenant's file by id.
    pub async fn file(&self, tenant_id: &str, id: &str) -> Result<Option<FileRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            file_columns!(),
            " FROM files WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A page of a tenant's files by creation time (then id). A cursor that names no file of
    /// the tenant starts from the beginning.
    pub async fn files(&self, query: &FileQuery<'_>) -> Result<Vec<FileRow>, StoreError> {
        let cursor = match query.after {
            Some(after) => self.file(query.tenant_id, after).await?,
            None => None,
        };
        let (time, id) = cursor
            .map(|row| (Some(row.created_at_ms), Some(row.id)))
            .unwrap_or((None, None));
        let statement = if query.descending {
            concat!(
                "SELECT ",
                file_columns!(),
                " FROM files WHERE tenant_id = $1 AND ($2 IS NULL OR purpose = $2) \
                 AND ($3 IS NULL OR created_at_ms < $3 OR (created_at_ms = $3 AND id < $4)) \
                 ORDER BY created_at_ms DESC, id DESC LIMIT $5"
            )
        } else {
            concat!(
                "SELECT ",
                file_columns!(),
                " FROM files WHERE tenant_id = $1 AND ($2 IS NULL OR purpose = $2) \
                 AND ($3 IS NULL OR created_at_ms > $3 OR (created_at_ms = $3 AND id > $4)) \
                 ORDER BY created_at_ms, id LIMIT $5"
            )
        };
        Ok(sqlx::query_as(statement)
            .bind(query.tenant_id)
            .bind(query.purpose)
            .bind(time)
            .bind(id)
            .bind(query.limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// The bytes of all of a tenant's files together.
    pub async fn file_bytes_of_tenant(&self, tenant_id: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar::<_, Option<i64>>(
            "SELECT SUM(bytes) FROM files WHERE tenant_id = $1",
        )
        .bind(tenant_id)
        .fetch_one(&self.pool)
        .await?
        .unwrap_or(0))
    }

    /// The ids of every tenant's files.
    pub async fn file_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM files")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Deletes a tenant's file row; false when there is none.
    pub async fn delete_file(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("DELETE FROM files WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0,
        )
    }
}

//! Rows of feature flags: each tenant's definitions (JSON, which `hearth-flags` owns) and
//! where each came from.

use crate::{Store, StoreError};

/// One defined flag.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FlagRow {
    pub tenant_id: String,
    pub key: String,
    /// The definition, JSON.
    pub definition: String,
    /// `config` or `api`.
    pub source: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl Store {
    /// Every flag, by tenant and key.
    pub async fn flags(&self) -> Result<Vec<FlagRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT tenant_id, key, definition, source, created_at_ms, updated_at_ms FROM flags \
             ORDER BY tenant_id, key",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Inserts a flag or replaces the one of that tenant and key.
    pub async fn put_flag(&self, row: &FlagRow) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        upsert(&mut transaction, row).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Removes a flag. False when there was none.
    pub async fn delete_flag(&self, tenant_id: &str, key: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM flags WHERE tenant_id = $1 AND key = $2")
            .bind(tenant_id)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Makes configuration's flags exactly `rows`, in one transaction: the others of
    /// configuration go, and a row replaces the API's flag of the same key.
    pub async fn replace_config_flags(&self, rows: &[FlagRow]) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query("DELETE FROM flags WHERE source = 'config'")
            .execute(&mut *transaction)
            .await?;
        for row in rows {
            upsert(&mut transaction, row).await?;
        }
        transaction.commit().await?;
        Ok(())
    }
}

async fn upsert(
    transaction: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    row: &FlagRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO flags (tenant_id, key, definition, source, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, key) DO UPDATE SET \
         definition = excluded.definition, source = excluded.source, \
         updated_at_ms = excluded.updated_at_ms",
    )
    .bind(&row.tenant_id)
    .bind(&row.key)
    .bind(&row.definition)
    .bind(&row.source)
    .bind(row.created_at_ms)
    .bind(row.updated_at_ms)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

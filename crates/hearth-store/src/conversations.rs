//! Which memory collection holds each tenant's remembered conversation turns. The turns
//! themselves are documents of that collection (the memory tables); this is only the map.

use crate::{Store, StoreError};

impl Store {
    /// The collection of a tenant's conversation memory, if it has one.
    pub async fn conversation_collection(
        &self,
        tenant_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT collection FROM conversation_memories WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Records `collection` as the tenant's conversation memory unless it has one already;
    /// returns the one that stands.
    pub async fn claim_conversation_collection(
        &self,
        tenant_id: &str,
        collection: &str,
        now_ms: i64,
    ) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO conversation_memories (tenant_id, collection, created_at_ms) \
             VALUES ($1, $2, $3) ON CONFLICT (tenant_id) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(collection)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT collection FROM conversation_memories WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Every tenant's conversation memory, as (tenant, collection).
    pub async fn conversation_collections(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT tenant_id, collection FROM conversation_memories ORDER BY tenant_id",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}

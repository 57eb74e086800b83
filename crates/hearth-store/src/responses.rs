//! Stored responses of OpenAI's Responses API, scoped by tenant. The store keeps each
//! response's own turn as JSON text; what the items mean is the server's business.

use crate::{Store, StoreError};

/// One stored response.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ResponseRow {
    pub id: String,
    pub tenant_id: String,
    pub previous_response_id: Option<String>,
    /// This turn's input items, a JSON array.
    pub input_items: String,
    /// The response object, JSON.
    pub response: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// How far back a conversation is followed: a chain longer than this is cut at its oldest end.
pub const MAX_RESPONSE_CHAIN: i64 = 1000;

impl Store {
    pub async fn insert_response(&self, row: &ResponseRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO responses (id, tenant_id, previous_response_id, input_items, response, \
             created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&row.id)
        .bind(&row.tenant_id)
        .bind(&row.previous_response_id)
        .bind(&row.input_items)
        .bind(&row.response)
        .bind(row.created_at_ms)
        .bind(row.expires_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A tenant's response by id, unless it has expired by `now_ms`.
    pub async fn response(
        &self,
        tenant_id: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<ResponseRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, tenant_id, previous_response_id, input_items, response, created_at_ms, \
             expires_at_ms FROM responses WHERE tenant_id = $1 AND id = $2 AND expires_at_ms > $3",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The conversation that ends with response `id`: it and the responses before it, oldest
    /// first (at most [`MAX_RESPONSE_CHAIN`]); empty when `id` is not the tenant's or has
    /// expired. A link to a response deleted or expired since ends the chain there.
    pub async fn response_chain(
        &self,
        tenant_id: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<Vec<ResponseRow>, StoreError> {
        let mut chain: Vec<ResponseRow> = sqlx::query_as(
            "WITH RECURSIVE chain (id, previous_response_id, depth) AS ( \
                 SELECT id, previous_response_id, 0 FROM responses \
                 WHERE tenant_id = $1 AND id = $2 AND expires_at_ms > $3 \
               UNION ALL \
                 SELECT responses.id, responses.previous_response_id, chain.depth + 1 \
                 FROM responses JOIN chain ON responses.id = chain.previous_response_id \
                 WHERE responses.tenant_id = $1 AND responses.expires_at_ms > $3 \
                 AND chain.depth + 1 < $4) \
             SELECT responses.id, responses.tenant_id, responses.previous_response_id, \
             responses.input_items, responses.response, responses.created_at_ms, \
             responses.expires_at_ms FROM chain JOIN responses ON responses.id = chain.id \
             ORDER BY chain.depth DESC",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(now_ms)
        .bind(MAX_RESPONSE_CHAIN)
        .fetch_all(&self.pool)
        .await?;
        chain.shrink_to_fit();
        Ok(chain)
    }

    /// Deletes a tenant's response; false when there was none.
    pub async fn delete_response(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM responses WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted > 0)
    }

    /// Keeps a tenant's newest `keep` responses once it holds more than `keep` plus a tenth
    /// (so the deletes come in batches, not one per write); returns how many it deleted.
    pub async fn cap_responses(&self, tenant_id: &str, keep: i64) -> Result<u64, StoreError> {
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM responses WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_one(&self.pool)
            .await?;
        if held <= keep + keep / 10 {
            return Ok(0);
        }
        Ok(sqlx::query(
            "DELETE FROM responses WHERE tenant_id = $1 AND id IN (SELECT id FROM responses \
             WHERE tenant_id = $1 ORDER BY created_at_ms DESC, id DESC LIMIT -1 OFFSET $2)",
        )
        .bind(tenant_id)
        .bind(keep)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Deletes every response expired by `now_ms`; returns how many.
    pub async fn delete_expired_responses(&self, now_ms: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM responses WHERE expires_at_ms <= $1")
                .bind(now_ms)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, tenant: &str, previous: Option<&str>, expires: i64) -> ResponseRow {
        ResponseRow {
            id: id.to_string(),
            tenant_id: tenant.to_string(),
            previous_response_id: previous.map(str::to_string),
            input_items: format!(r#"[{{"id": "in_{id}"}}]"#),
            response: format!(r#"{{"id": "{id}"}}"#),
            created_at_ms: 1,
            expires_at_ms: expires,
        }
    }

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let options = crate::OpenOptions {
            integrity_check: crate::IntegrityCheck::Quick,
            run_migrations: true,
        };
        let store = Store::open(dir.path(), options).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn a_chain_is_walked_back_oldest_first_within_its_tenant() {
        let (_dir, store) = store().await;
        store
            .insert_response(&row("r1", "t1", None, 100))
            .await
            .unwrap();
        store
            .insert_response(&row("r2", "t1", Some("r1"), 100))
            .await
            .unwrap();
        store
            .insert_response(&row("r3", "t1", Some("r2"), 100))
            .await
            .unwrap();
        let chain = store.response_chain("t1", "r3", 10).await.unwrap();
        let ids: Vec<&str> = chain.iter().map(|row| row.id.as_str()).collect();
        assert_eq!(ids, ["r1", "r2", "r3"]);
        // Another tenant sees nothing of it.
        assert!(
            store
                .response_chain("t2", "r3", 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(store.response("t2", "r3", 10).await.unwrap().is_none());
        assert!(!store.delete_response("t2", "r3").await.unwrap());
        // A deleted middle ends the chain there.
        assert!(store.delete_response("t1", "r2").await.unwrap());
        let chain = store.response_chain("t1", "r3", 10).await.unwrap();
        assert_eq!(chain.len(), 1);
    }

    #[tokio::test]
    async fn an_expired_response_is_gone() {
        let (_dir, store) = store().await;
        store
            .insert_response(&row("r1", "t1", None, 50))
            .await
            .unwrap();
        store
            .insert_response(&row("r2", "t1", Some("r1"), 100))
            .await
            .unwrap();
        assert!(store.response("t1", "r1", 60).await.unwrap().is_none());
        let chain = store.response_chain("t1", "r2", 60).await.unwrap();
        assert_eq!(chain.len(), 1);
        assert_eq!(store.delete_expired_responses(60).await.unwrap(), 1);
        assert!(store.response("t1", "r2", 60).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_tenant_past_its_cap_keeps_its_newest_responses() {
        let (_dir, store) = store().await;
        for index in 0..12 {
            let mut response = row(&format!("r{index:02}"), "t1", None, 100);
            response.created_at_ms = index;
            store.insert_response(&response).await.unwrap();
        }
        store
            .insert_response(&row("other", "t2", None, 100))
            .await
            .unwrap();
        // 12 is within 11 and a tenth of it: nothing goes yet.
        assert_eq!(store.cap_responses("t1", 11).await.unwrap(), 0);
        assert_eq!(store.cap_responses("t1", 10).await.unwrap(), 2);
        assert!(store.response("t1", "r00", 10).await.unwrap().is_none());
        assert!(store.response("t1", "r01", 10).await.unwrap().is_none());
        assert!(store.response("t1", "r02", 10).await.unwrap().is_some());
        assert!(store.response("t2", "other", 10).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_cycle_cannot_loop_the_walk() {
        let (_dir, store) = store().await;
        // Ids are made by the server, so a cycle cannot happen through the API; the walk is
        // bounded all the same.
        store
            .insert_response(&row("a", "t1", Some("b"), 100))
            .await
            .unwrap();
        store
            .insert_response(&row("b", "t1", Some("a"), 100))
            .await
            .unwrap();
        let chain = store.response_chain("t1", "a", 10).await.unwrap();
        assert_eq!(chain.len() as i64, MAX_RESPONSE_CHAIN);
    }
}

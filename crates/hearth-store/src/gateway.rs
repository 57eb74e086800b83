//! The gateway's tables: tenants, their users, API keys and usage records, plus the revision counter that
//! tells running servers the key set changed. Rows are plain data; the gateway crate gives
//! them meaning (roles, limits, expiry).

use sqlx::{QueryBuilder, Sqlite};

use crate::error::StoreError;
use crate::store::Store;

/// Limits stored with a tenant or a key; `None` means no limit of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, sqlx::FromRow)]
pub struct LimitColumns {
    pub requests_per_minute: Option<i64>,
    pub tokens_per_minute: Option<i64>,
    pub max_concurrent: Option<i64>,
    pub tokens_per_day: Option<i64>,
    pub tokens_per_month: Option<i64>,
    pub budget_micro_usd_per_month: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TenantRow {
    pub id: String,
    pub name: String,
    pub created_at_ms: i64,
    #[sqlx(flatten)]
    pub limits: LimitColumns,
}

/// A user of a tenant: who keys are issued to.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub created_at_ms: i64,
    pub deleted_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct KeyRow {
    pub id: String,
    pub tenant_id: Option<String>,
    /// The user the key was issued to, if any (always of the key's tenant).
    pub user_id: Option<String>,
    pub name: Option<String>,
    pub prefix: String,
    pub secret_sha256: String,
    pub role: String,
    pub scopes: String,
    #[sqlx(flatten)]
    pub limits: LimitColumns,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    pub rotated_to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageRow {
    pub id: String,
    pub at_ms: i64,
    pub tenant_id: Option<String>,
    pub key_id: Option<String>,
    pub user_id: Option<String>,
    pub model: String,
    pub target: String,
    pub route: String,
    pub status: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub latency_ms: i64,
    pub time_to_first_token_ms: Option<i64>,
    pub cache_hit: bool,
    pub cost_micro_usd: i64,
    /// The prompt template the request rendered, and its version.
    pub prompt_id: Option<String>,
    pub prompt_version: Option<i64>,
}

/// One group of an aggregate usage query.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UsageGroup {
    /// Days since the Unix epoch (UTC) of the group, when grouped by day.
    pub day: Option<i64>,
    pub model: Option<String>,
    pub key_id: Option<String>,
    pub tenant_id: Option<String>,
    pub user_id: Option<String>,
    pub prompt_id: Option<String>,
    pub prompt_version: Option<i64>,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cache_hits: i64,
    pub errors: i64,
    pub cost_micro_usd: i64,
    pub mean_latency_ms: f64,
}

/// Which usage to aggregate and how to group it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageQuery {
    /// Only this tenant's usage (tenant admins always set it).
    pub tenant_id: Option<String>,
    pub key_id: Option<String>,
    pub user_id: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub by_day: bool,
    pub by_model: bool,
    pub by_key: bool,
    pub by_user: bool,
    /// Per prompt template and version (requests that used none form one group).
    pub by_prompt: bool,
}

// Column lists as macros so that every statement is one literal, built at compile time.
macro_rules! key_columns {
    () => {
        "id, tenant_id, user_id, name, prefix, secret_sha256, role, scopes, requests_per_minute, \
         tokens_per_minute, max_concurrent, tokens_per_day, tokens_per_month, \
         budget_micro_usd_per_month, created_at_ms, expires_at_ms, revoked_at_ms, rotated_to"
    };
}
macro_rules! user_columns {
    () => {
        "id, tenant_id, name, created_at_ms, deleted_at_ms"
    };
}
macro_rules! tenant_columns {
    () => {
        "id, name, created_at_ms, requests_per_minute, tokens_per_minute, max_concurrent, \
         tokens_per_day, tokens_per_month, budget_micro_usd_per_month"
    };
}
const MS_PER_DAY: i64 = 86_400_000;

async fn bump_revision(transaction: &mut sqlx::Transaction<'_, Sqlite>) -> Result<(), StoreError> {
    sqlx::query("UPDATE gateway_revision SET revision = revision + 1 WHERE id = 1")
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

impl Store {
    /// A number that grows with every change to tenants or keys.
    pub async fn gateway_revision(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT revision FROM gateway_revision WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn insert_tenant(&self, tenant: &TenantRow) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO tenants (id, name, created_at_ms, requests_per_minute, \
             tokens_per_minute, max_concurrent, tokens_per_day, tokens_per_month, \
             budget_micro_usd_per_month) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&tenant.id)
        .bind(&tenant.name)
        .bind(tenant.created_at_ms)
        .bind(tenant.limits.requests_per_minute)
        .bind(tenant.limits.tokens_per_minute)
        .bind(tenant.limits.max_concurrent)
        .bind(tenant.limits.tokens_per_day)
        .bind(tenant.limits.tokens_per_month)
        .bind(tenant.limits.budget_micro_usd_per_month)
        .execute(&mut *transaction)
        .await?;
        bump_revision(&mut transaction).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Replaces a tenant's limits; false when there is no such tenant.
    pub async fn update_tenant_limits(
        &self,
        tenant_id: &str,
        limits: &LimitColumns,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE tenants SET requests_per_minute = $2, tokens_per_minute = $3, \
             max_concurrent = $4, tokens_per_day = $5, tokens_per_month = $6, \
             budget_micro_usd_per_month = $7 WHERE id = $1",
        )
        .bind(tenant_id)
        .bind(limits.requests_per_minute)
        .bind(limits.tokens_per_minute)
        .bind(limits.max_concurrent)
        .bind(limits.tokens_per_day)
        .bind(limits.tokens_per_month)
        .bind(limits.budget_micro_usd_per_month)
        .execute(&mut *transaction)
        .await?
        .rows_affected()
            > 0;
        bump_revision(&mut transaction).await?;
        transaction.commit().await?;
        Ok(updated)
    }

    pub async fn tenants(&self) -> Result<Vec<TenantRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            tenant_columns!(),
            " FROM tenants ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn tenant_by_name(&self, name: &str) -> Result<Option<TenantRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            tenant_columns!(),
            " FROM tenants WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn tenant_by_id(&self, id: &str) -> Result<Option<TenantRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            tenant_columns!(),
            " FROM tenants WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn insert_user(&self, user: &UserRow) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO users (id, tenant_id, name, created_at_ms, deleted_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&user.id)
        .bind(&user.tenant_id)
        .bind(&user.name)
        .bind(user.created_at_ms)
        .bind(user.deleted_at_ms)
        .execute(&mut *transaction)
        .await?;
        bump_revision(&mut transaction).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Live users, of one tenant or (None) of all, by tenant then name.
    pub async fn users(&self, tenant_id: Option<&str>) -> Result<Vec<UserRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE deleted_at_ms IS NULL AND ($1 IS NULL OR tenant_id = $1) \
             ORDER BY tenant_id, name"
        ))
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A tenant's live user of that name.
    pub async fn user_by_name(
        &self,
        tenant_id: &str,
        name: &str,
    ) -> Result<Option<UserRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE tenant_id = $1 AND name = $2 AND deleted_at_ms IS NULL"
        ))
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A user by id, deleted ones included (usage history still points at them).
    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Marks a user deleted at `at_ms` and revokes its live keys, in one transaction.
    /// Returns how many keys were revoked, or None when there is no such live user.
    pub async fn delete_user(&self, id: &str, at_ms: i64) -> Result<Option<u64>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let deleted = sqlx::query(
            "UPDATE users SET deleted_at_ms = $2 WHERE id = $1 AND deleted_at_ms IS NULL",
        )
        .bind(id)
        .bind(at_ms)
        .execute(&mut *transaction)
        .await?
        .rows_affected()
            > 0;
        if !deleted {
            return Ok(None);
        }
        let revoked = sqlx::query(
            "UPDATE api_keys SET revoked_at_ms = $2 WHERE user_id = $1 AND revoked_at_ms IS NULL",
        )
        .bind(id)
        .bind(at_ms)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        bump_revision(&mut transaction).await?;
        transaction.commit().await?;
        Ok(Some(revoked))
    }

    pub async fn insert_key(&self, key: &KeyRow) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        insert_key_row(&mut transaction, key).await?;
        bump_revision(&mut transaction).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Every key, revoked and expired ones included (the server's authenticator filters).
    pub async fn keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys ORDER BY created_at_ms, id"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn key_by_id(&self, id: &str) -> Result<Option<KeyRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Keys whose visible prefix is `prefix` (normally one).
    pub async fn keys_by_prefix(&self, prefix: &str) -> Result<Vec<KeyRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE prefix = $1"
        ))
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Replaces a key's limits; false when there is no such key.
    pub async fn update_key_limits(
        &self,
        key_id: &str,
        limits: &LimitColumns,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE api_keys SET requests_per_minute = $2, tokens_per_minute = $3, \
             max_concurrent = $4, tokens_per_day = $5, tokens_per_month = $6, \
             budget_micro_usd_per_month = $7 WHERE id = $1",
        )
        .bind(key_id)
        .bind(limits.requests_per_minute)
        .bind(limits.tokens_per_minute)
        .bind(limits.max_concurrent)
        .bind(limits.tokens_per_day)
        .bind(limits.tokens_per_month)
        .bind(limits.budget_micro_usd_per_month)
        .execute(&mut *transaction)
        .await?
        .rows_affected()
            > 0;
        bump_revision(&mut transaction).await?;
        transaction.commit().await?;
        Ok(updated)
    }

    /// Marks a key revoked at `at_ms`; false when it does not exist or already was.
    pub async fn revoke_key(&self, id: &str, at_ms: i64) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let revoked = sqlx::query(
            "UPDATE api_keys SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL",
        )
        .bind(id)
        .bind(at_ms)
        .execute(&mut *transaction)
        .await?
        .rows_affected()
            > 0;
        bump_revision(&mut transaction).await?;
        transaction.commit().await?;
        Ok(revoked)
    }

    /// Rotation in one transaction: the new key is stored, and the old one expires at
    /// `old_expires_at_ms` (the grace period) and points at its replacement.
    pub async fn rotate_key(
        &self,
        old_id: &str,
        old_expires_at_ms: i64,
        new_key: &KeyRow,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        insert_key_row(&mut transaction, new_key).await?;
        sqlx::query(
            "UPDATE api_keys SET rotated_to = $2, \
             expires_at_ms = MIN(COALESCE(expires_at_ms, $3), $3) WHERE id = $1",
        )
        .bind(old_id)
        .bind(&new_key.id)
        .bind(old_expires_at_ms)
        .execute(&mut *transaction)
        .await?;
        bump_revision(&mut transaction).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Writes a batch of usage records in one transaction.
    pub async fn insert_usage(&self, records: &[UsageRow]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut transaction = self.begin_write().await?;
        // Rows go in fixed-size multi-row statements, the rest one by one: every distinct row
        // count is a distinct SQL text, and sqlx keeps each prepared statement (up to 100 per
        // connection, each hundreds of KiB at hundreds of rows), so batches of varying sizes
        // grew the server by ~500 bytes per request until the caches filled. Two shapes stay.
        let mut chunks = records.chunks_exact(USAGE_ROWS_PER_INSERT);
        for chunk in &mut chunks {
            insert_usage_rows(&mut transaction, chunk).await?;
        }
        for record in chunks.remainder() {
            insert_usage_rows(&mut transaction, std::slice::from_ref(record)).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Usage totals grouped as asked, newest day first.
    pub async fn usage_groups(&self, query: &UsageQuery) -> Result<Vec<UsageGroup>, StoreError> {
        let mut sql = QueryBuilder::<Sqlite>::new("SELECT ");
        let mut group_by = Vec::new();
        if query.by_day {
            sql.push("at_ms / ");
            sql.push_bind(MS_PER_DAY);
            sql.push(" AS day, ");
            group_by.push("day");
        } else {
            sql.push("NULL AS day, ");
        }
        sql.push(if query.by_model {
            group_by.push("model");
            "model, "
        } else {
            "NULL AS model, "
        });
        sql.push(if query.by_key {
            group_by.push("key_id");
            group_by.push("tenant_id");
            "key_id, tenant_id, "
        } else {
            "NULL AS key_id, NULL AS tenant_id, "
        });
        sql.push(if query.by_user {
            group_by.push("user_id");
            "user_id, "
        } else {
            "NULL AS user_id, "
        });
        sql.push(if query.by_prompt {
            group_by.push("prompt_id");
            group_by.push("prompt_version");
            "prompt_id, prompt_version, "
        } else {
            "NULL AS prompt_id, NULL AS prompt_version, "
        });
        sql.push(
            "COUNT(*) AS requests, COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens, \
             COALESCE(SUM(completion_tokens), 0) AS completion_tokens, \
             COALESCE(SUM(cache_hit), 0) AS cache_hits, \
             COALESCE(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), 0) AS errors, \
             COALESCE(SUM(cost_micro_usd), 0) AS cost_micro_usd, \
             COALESCE(AVG(latency_ms), 0.0) AS mean_latency_ms FROM usage_records WHERE 1 = 1",
        );
        if let Some(tenant_id) = &query.tenant_id {
            sql.push(" AND tenant_id = ").push_bind(tenant_id);
        }
        if let Some(key_id) = &query.key_id {
            sql.push(" AND key_id = ").push_bind(key_id);
        }
        if let Some(user_id) = &query.user_id {
            sql.push(" AND user_id = ").push_bind(user_id);
        }
        if let Some(since) = query.since_ms {
            sql.push(" AND at_ms >= ").push_bind(since);
        }
        if let Some(until) = query.until_ms {
            sql.push(" AND at_ms < ").push_bind(until);
        }
        if !group_by.is_empty() {
            // Column names only, from the fixed list above: nothing from the caller.
            sql.push(" GROUP BY ").push(group_by.join(", "));
        }
        sql.push(if query.by_day {
            " ORDER BY day DESC, requests DESC"
        } else {
            " ORDER BY requests DESC"
        });
        Ok(sql.build_query_as().fetch_all(&self.pool).await?)
    }

    /// Tokens (prompt + completion) used since `since_ms`, per tenant and per key, for the
    /// quota counters a starting server seeds itself with.
    pub async fn tokens_since(&self, since_ms: i64) -> Result<Vec<TokenTotal>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT tenant_id, key_id, COALESCE(SUM(prompt_tokens + completion_tokens), 0) \
             AS tokens, COALESCE(SUM(cost_micro_usd), 0) AS cost_micro_usd FROM usage_records \
             WHERE at_ms >= $1 GROUP BY tenant_id, key_id",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// Tokens used, and what they cost, by one key (of one tenant) over a period.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenTotal {
    pub tenant_id: Option<String>,
    pub key_id: Option<String>,
    pub tokens: i64,
    pub cost_micro_usd: i64,
}

async fn insert_key_row(
    transaction: &mut sqlx::Transaction<'_, Sqlite>,
    key: &KeyRow,
) -> Result<(), StoreError> {
    sqlx::query(concat!(
        "INSERT INTO api_keys (",
        key_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18)"
    ))
    .bind(&key.id)
    .bind(&key.tenant_id)
    .bind(&key.user_id)
    .bind(&key.name)
    .bind(&key.prefix)
    .bind(&key.secret_sha256)
    .bind(&key.role)
    .bind(&key.scopes)
    .bind(key.limits.requests_per_minute)
    .bind(key.limits.tokens_per_minute)
    .bind(key.limits.max_concurrent)
    .bind(key.limits.tokens_per_day)
    .bind(key.limits.tokens_per_month)
    .bind(key.limits.budget_micro_usd_per_month)
    .bind(key.created_at_ms)
    .bind(key.expires_at_ms)
    .bind(key.revoked_at_ms)
    .bind(&key.rotated_to)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Rows per multi-row usage insert (17 bound parameters each; SQLite allows 32766).
const USAGE_ROWS_PER_INSERT: usize = 64;

async fn insert_usage_rows(
    transaction: &mut sqlx::Transaction<'_, Sqlite>,
    rows: &[UsageRow],
) -> Result<(), StoreError> {
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO usage_records (id, at_ms, tenant_id, key_id, user_id, model, target, route, \
         status, prompt_tokens, completion_tokens, latency_ms, time_to_first_token_ms, \
         cache_hit, cost_micro_usd, prompt_id, prompt_version) ",
    );
    insert.push_values(rows, |mut row, record| {
        row.push_bind(&record.id)
            .push_bind(record.at_ms)
            .push_bind(&record.tenant_id)
            .push_bind(&record.key_id)
            .push_bind(&record.user_id)
            .push_bind(&record.model)
            .push_bind(&record.target)
            .push_bind(&record.route)
            .push_bind(record.status)
            .push_bind(record.prompt_tokens)
            .push_bind(record.completion_tokens)
            .push_bind(record.latency_ms)
            .push_bind(record.time_to_first_token_ms)
            .push_bind(record.cache_hit)
            .push_bind(record.cost_micro_usd)
            .push_bind(&record.prompt_id)
            .push_bind(record.prompt_version);
    });
    insert.build().execute(&mut **transaction).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use sqlx::Connection as _;

    use super::*;
    use crate::{IntegrityCheck, OpenOptions};

    fn usage_row(index: usize) -> UsageRow {
        UsageRow {
            id: format!("usage-{index}"),
            at_ms: 1_000 + index as i64,
            tenant_id: None,
            key_id: None,
            user_id: None,
            model: "m".to_string(),
            target: "local/m".to_string(),
            route: "/v1/chat/completions".to_string(),
            status: 200,
            prompt_tokens: 1,
            completion_tokens: 1,
            latency_ms: 1,
            time_to_first_token_ms: None,
            cache_hit: false,
            cost_micro_usd: 0,
            prompt_id: None,
            prompt_version: None,
        }
    }

    #[tokio::test]
    async fn usage_batches_of_every_size_are_stored_with_a_bounded_statement_cache() {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = OpenOptions {
            integrity_check: IntegrityCheck::Quick,
            run_migrations: true,
        };
        let store = Store::open(dir.path(), options).await.expect("open");
        let mut next = 0;
        for size in 1..=150 {
            let batch: Vec<UsageRow> = (next..next + size).map(usage_row).collect();
            next += size;
            store.insert_usage(&batch).await.expect("insert");
        }
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_records")
            .fetch_one(&store.pool)
            .await
            .expect("count");
        assert_eq!(stored, next as i64);
        let connection = store.pool.acquire().await.expect("connection");
        assert!(
            connection.cached_statements_size() <= 20,
            "{} statements cached after 150 batch sizes",
            connection.cached_statements_size()
        );
    }
}

//! Endpoints and the delivery log, in their own SQLite file (`webhooks.db` in the data
//! directory): one row per endpoint (its secrets included: they sign every delivery), one per
//! event delivered to an endpoint, and one per attempt.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

/// The store's file in the data directory.
pub const WEBHOOKS_FILE: &str = "webhooks.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL,
    url TEXT NOT NULL,
    -- A JSON array of topic patterns.
    topics TEXT NOT NULL,
    description TEXT,
    enabled BIGINT NOT NULL,
    disabled_reason TEXT,
    secret TEXT NOT NULL,
    -- The secret before the last rotation, still signed with until previous_until_ms.
    previous_secret TEXT,
    previous_until_ms BIGINT,
    -- When the current run of failed attempts began (NULL after a success).
    failing_since_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhooks_by_tenant ON webhooks (tenant_id, created_at_ms);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    webhook_id TEXT NOT NULL,
    event_seq BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    -- pending (retries to come), succeeded, failed (gave up).
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (webhook_id, event_seq)
);
CREATE INDEX IF NOT EXISTS deliveries_by_webhook ON webhook_deliveries (webhook_id, created_at_ms);
CREATE TABLE IF NOT EXISTS webhook_attempts (
    delivery_id TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    -- The HTTP status, or NULL when no answer came (the error says why).
    status_code BIGINT,
    latency_ms BIGINT NOT NULL,
    -- The answer's first bytes.
    response TEXT,
    error TEXT,
    -- scheduled or manual.
    trigger TEXT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
";

/// How long the delivery log keeps a delivery.
pub const LOG_KEPT: Duration = Duration::from_secs(30 * 86_400);

/// An endpoint as stored (its secrets stay inside this crate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `wh_` and 32 hex digits.
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    pub topics: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    /// Why it was disabled, when Hearth disabled it (410, failing for days).
    pub disabled_reason: Option<String>,
    pub failing_since_ms: Option<i64>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// An endpoint with the secrets deliveries are signed with.
#[derive(Debug, Clone)]
pub(crate) struct Signing {
    pub endpoint: Endpoint,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_until_ms: Option<i64>,
}

/// One attempt to deliver an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first.
    pub attempt: u32,
    pub at_ms: i64,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// The answer's first bytes (at most 1 KiB).
    pub response: Option<String>,
    /// Why no usable answer came (timeout, refused address, connection error).
    pub error: Option<String>,
    /// `scheduled` or `manual`.
    pub trigger: String,
}

/// One event delivered (or being delivered) to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// `whd_` and 32 hex digits.
    pub id: String,
    pub webhook_id: String,
    pub event_seq: u64,
    pub event_id: String,
    pub topic: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub attempts: Vec<Attempt>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[derive(Clone)]
pub(crate) struct Store {
    pool: SqlitePool,
}

const ENDPOINT_COLUMNS: &str = "id, tenant_id, url, topics, description, enabled, disabled_reason, \
     secret, previous_secret, previous_until_ms, failing_since_ms, created_at_ms, updated_at_ms";

fn signing_of(row: &sqlx::sqlite::SqliteRow) -> Signing {
    let topics: String = row.get("topics");
    Signing {
        endpoint: Endpoint {
            id: row.get("id"),
            tenant_id: row.get("tenant_id"),
            url: row.get("url"),
            topics: serde_json::from_str(&topics).unwrap_or_default(),
            description: row.get("description"),
            enabled: row.get::<i64, _>("enabled") != 0,
            disabled_reason: row.get("disabled_reason"),
            failing_since_ms: row.get("failing_since_ms"),
            created_at_ms: row.get("created_at_ms"),
            updated_at_ms: row.get("updated_at_ms"),
        },
        secret: row.get("secret"),
        previous_secret: row.get("previous_secret"),
        previous_until_ms: row.get("previous_until_ms"),
    }
}

/// What an attempt's outcome does to the delivery and the endpoint.
pub(crate) struct Recorded<'a> {
    pub webhook_id: &'a str,
    pub event_seq: u64,
    pub event_id: &'a str,
    pub topic: &'a str,
    pub status: &'a str,
    pub attempt: Attempt,
    pub succeeded: bool,
}

impl Store {
    pub async fn open(data_dir: &Path) -> Result<Store, sqlx::Error> {
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join(WEBHOOKS_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        Ok(Store { pool })
    }

    pub async fn insert(&self, signing: &Signing) -> Result<(), sqlx::Error> {
        let endpoint = &signing.endpoint;
        sqlx::query(
            "INSERT INTO webhooks (id, tenant_id, url, topics, description, enabled, secret, \
             created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(&endpoint.id)
        .bind(&endpoint.tenant_id)
        .bind(&endpoint.url)
        .bind(serde_json::json!(endpoint.topics).to_string())
        .bind(&endpoint.description)
        .bind(i64::from(endpoint.enabled))
        .bind(&signing.secret)
        .bind(endpoint.created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn count(&self, tenant_id: &str) -> Result<u64, sqlx::Error> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhooks WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(count.max(0) as u64)
    }

    /// An endpoint by id; with a tenant, only that tenant's.
    pub async fn get(
        &self,
        tenant_id: Option<&str>,
        id: &str,
    ) -> Result<Option<Signing>, sqlx::Error> {
        let row = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhooks WHERE id = $1 \
             AND ($2 IS NULL OR tenant_id = $2)"
        ))
        .bind(id)
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(signing_of))
    }

    pub async fn list(&self, tenant_id: &str) -> Result<Vec<Endpoint>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhooks WHERE tenant_id = $1 ORDER BY created_at_ms, id"
        ))
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|row| signing_of(row).endpoint).collect())
    }

    pub async fn enabled_ids(&self) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT id FROM webhooks WHERE enabled = 1")
            .fetch_all(&self.pool)
            .await
    }

    /// Writes an endpoint's changeable fields.
    pub async fn update(&self, endpoint: &Endpoint, now_ms: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE webhooks SET url = $2, topics = $3, description = $4, enabled = $5, \
             disabled_reason = $6, failing_since_ms = $7, updated_at_ms = $8 WHERE id = $1",
        )
        .bind(&endpoint.id)
        .bind(&endpoint.url)
        .bind(serde_json::json!(endpoint.topics).to_string())
        .bind(&endpoint.description)
        .bind(i64::from(endpoint.enabled))
        .bind(&endpoint.disabled_reason)
        .bind(endpoint.failing_since_ms)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A new secret; the old one still signs until `previous_until_ms`.
    pub async fn rotate(
        &self,
        id: &str,
        secret: &str,
        previous_until_ms: i64,
        now_ms: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE webhooks SET previous_secret = secret, previous_until_ms = $3, secret = $2, \
             updated_at_ms = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(secret)
        .bind(previous_until_ms)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete(&self, id: &str) -> Result<bool, sqlx::Error> {
        let mut transaction = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "DELETE FROM webhook_attempts WHERE delivery_id IN \
             (SELECT id FROM webhook_deliveries WHERE webhook_id = $1)",
        )
        .bind(id)
        .execute(&mut *transaction)
        .await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        let deleted = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        transaction.commit().await?;
        Ok(deleted > 0)
    }

    /// Records an attempt: the delivery row (made on the first attempt), the attempt, and the
    /// endpoint's run of failures. Returns the delivery's id and the endpoint's
    /// `failing_since_ms` after it.
    pub async fn record(
        &self,
        recorded: Recorded<'_>,
    ) -> Result<(String, Option<i64>), sqlx::Error> {
        let now = recorded.attempt.at_ms;
        let mut transaction = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let new_id = format!("whd_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, webhook_id, event_seq, event_id, topic, status, \
             attempts, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7) \
             ON CONFLICT (webhook_id, event_seq) DO NOTHING",
        )
        .bind(&new_id)
        .bind(recorded.webhook_id)
        .bind(recorded.event_seq as i64)
        .bind(recorded.event_id)
        .bind(recorded.topic)
        .bind(recorded.status)
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        let row = sqlx::query(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, status = $3, \
             updated_at_ms = $4 WHERE webhook_id = $1 AND event_seq = $2 RETURNING id, attempts",
        )
        .bind(recorded.webhook_id)
        .bind(recorded.event_seq as i64)
        .bind(recorded.status)
        .bind(now)
        .fetch_one(&mut *transaction)
        .await?;
        let delivery_id: String = row.get(0);
        let attempt: i64 = row.get(1);
        let outcome = &recorded.attempt;
        sqlx::query(
            "INSERT INTO webhook_attempts (delivery_id, attempt, at_ms, status_code, latency_ms, \
             response, error, trigger) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&delivery_id)
        .bind(attempt)
        .bind(now)
        .bind(outcome.status_code.map(i64::from))
        .bind(i64::try_from(outcome.latency_ms).unwrap_or(i64::MAX))
        .bind(&outcome.response)
        .bind(&outcome.error)
        .bind(&outcome.trigger)
        .execute(&mut *transaction)
        .await?;
        let failing_since: Option<i64> = if recorded.succeeded {
            sqlx::query("UPDATE webhooks SET failing_since_ms = NULL WHERE id = $1")
                .bind(recorded.webhook_id)
                .execute(&mut *transaction)
                .await?;
            None
        } else {
            sqlx::query_scalar(
                "UPDATE webhooks SET failing_since_ms = COALESCE(failing_since_ms, $2) \
                 WHERE id = $1 RETURNING failing_since_ms",
            )
            .bind(recorded.webhook_id)
            .bind(now)
            .fetch_optional(&mut *transaction)
            .await?
            .flatten()
        };
        transaction.commit().await?;
        Ok((delivery_id, failing_since))
    }

    /// The newest deliveries of an endpoint, each with its attempts.
    pub async fn deliveries(
        &self,
        webhook_id: &str,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, webhook_id, event_seq, event_id, topic, status, created_at_ms, \
             updated_at_ms FROM webhook_deliveries WHERE webhook_id = $1 \
             ORDER BY created_at_ms DESC, id DESC LIMIT $2",
        )
        .bind(webhook_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut deliveries = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.get(0);
            let attempts = self.attempts(&id).await?;
            deliveries.push(DeliveryRecord {
                id,
                webhook_id: row.get(1),
                event_seq: row.get::<i64, _>(2).max(0) as u64,
                event_id: row.get(3),
                topic: row.get(4),
                status: row.get(5),
                attempts,
                created_at_ms: row.get(6),
                updated_at_ms: row.get(7),
            });
        }
        Ok(deliveries)
    }

    /// One delivery of an endpoint.
    pub async fn delivery(
        &self,
        webhook_id: &str,
        delivery_id: &str,
    ) -> Result<Option<DeliveryRecord>, sqlx::Error> {
        let found = self
            .deliveries_where(webhook_id, delivery_id)
            .await?
            .into_iter()
            .next();
        Ok(found)
    }

    async fn deliveries_where(
        &self,
        webhook_id: &str,
        delivery_id: &str,
    ) -> Result<Vec<DeliveryRecord>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT id, webhook_id, event_seq, event_id, topic, status, created_at_ms, \
             updated_at_ms FROM webhook_deliveries WHERE webhook_id = $1 AND id = $2",
        )
        .bind(webhook_id)
        .bind(delivery_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(Vec::new());
        };
        Ok(vec![DeliveryRecord {
            id: row.get(0),
            webhook_id: row.get(1),
            event_seq: row.get::<i64, _>(2).max(0) as u64,
            event_id: row.get(3),
            topic: row.get(4),
            status: row.get(5),
            attempts: self.attempts(delivery_id).await?,
            created_at_ms: row.get(6),
            updated_at_ms: row.get(7),
        }])
    }

    async fn attempts(&self, delivery_id: &str) -> Result<Vec<Attempt>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT attempt, at_ms, status_code, latency_ms, response, error, trigger \
             FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt",
        )
        .bind(delivery_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| Attempt {
                attempt: row.get::<i64, _>(0).clamp(0, u32::MAX as i64) as u32,
                at_ms: row.get(1),
                status_code: row
                    .get::<Option<i64>, _>(2)
                    .map(|status| status.clamp(0, 999) as u16),
                latency_ms: row.get::<i64, _>(3).max(0) as u64,
                response: row.get(4),
                error: row.get(5),
                trigger: row.get(6),
            })
            .collect())
    }

    /// Forgets deliveries older than [`LOG_KEPT`].
    pub async fn trim_log(&self, now_ms: i64) -> Result<u64, sqlx::Error> {
        let before = now_ms - LOG_KEPT.as_millis() as i64;
        let mut transaction = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "DELETE FROM webhook_attempts WHERE delivery_id IN \
             (SELECT id FROM webhook_deliveries WHERE updated_at_ms < $1)",
        )
        .bind(before)
        .execute(&mut *transaction)
        .await?;
        let deleted = sqlx::query("DELETE FROM webhook_deliveries WHERE updated_at_ms < $1")
            .bind(before)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        transaction.commit().await?;
        Ok(deleted)
    }
}

//! Topic settings as stored: one row per (tenant, pattern) in the log's database, read into
//! each tenant's [`TopicRules`] at start and after every change.

use std::time::Duration;

use serde_json::Value;
use sqlx::Row;

use crate::{EventLog, EventSchema, LogError, Pattern, Retention, TopicRules, TopicSettings};

/// A topic pattern's settings as the API gives and shows them (the schema as JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    pub pattern: String,
    pub schema: Option<Value>,
    pub retention: Retention,
    pub durable: bool,
}

fn millis(duration: Option<Duration>) -> Option<i64> {
    duration.map(|duration| i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
}

fn config_of(row: &sqlx::sqlite::SqliteRow) -> TopicConfig {
    let schema: Option<String> = row.get("schema");
    let max_age_ms: Option<i64> = row.get("max_age_ms");
    let max_bytes: Option<i64> = row.get("max_bytes");
    let max_events: Option<i64> = row.get("max_events");
    TopicConfig {
        pattern: row.get("pattern"),
        schema: schema.and_then(|text| serde_json::from_str(&text).ok()),
        retention: Retention {
            max_age: max_age_ms.map(|ms| Duration::from_millis(ms.max(0) as u64)),
            max_bytes: max_bytes.map(|bytes| bytes.max(0) as u64),
            max_events: max_events.map(|events| events.max(0) as u64),
        },
        durable: row.get::<i64, _>("durable") != 0,
    }
}

const COLUMNS: &str = "pattern, schema, max_age_ms, max_bytes, max_events, durable";

impl EventLog {
    pub(crate) async fn save_topic(
        &self,
        tenant_id: &str,
        config: &TopicConfig,
        now_ms: i64,
    ) -> Result<(), LogError> {
        sqlx::query(
            "INSERT INTO topic_settings (tenant_id, pattern, schema, max_age_ms, max_bytes, \
             max_events, durable, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (tenant_id, pattern) DO UPDATE SET schema = $3, max_age_ms = $4, \
             max_bytes = $5, max_events = $6, durable = $7, updated_at_ms = $8",
        )
        .bind(tenant_id)
        .bind(&config.pattern)
        .bind(config.schema.as_ref().map(Value::to_string))
        .bind(millis(config.retention.max_age))
        .bind(
            config
                .retention
                .max_bytes
                .map(|bytes| bytes.min(i64::MAX as u64) as i64),
        )
        .bind(
            config
                .retention
                .max_events
                .map(|events| events.min(i64::MAX as u64) as i64),
        )
        .bind(i64::from(config.durable))
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(crate) async fn delete_topic(
        &self,
        tenant_id: &str,
        pattern: &str,
    ) -> Result<bool, LogError> {
        Ok(
            sqlx::query("DELETE FROM topic_settings WHERE tenant_id = $1 AND pattern = $2")
                .bind(tenant_id)
                .bind(pattern)
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0,
        )
    }

    /// A tenant's stored settings, by pattern.
    pub(crate) async fn topics(&self, tenant_id: &str) -> Result<Vec<TopicConfig>, LogError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM topic_settings WHERE tenant_id = $1 ORDER BY pattern"
        ))
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(config_of).collect())
    }

    /// The tenants that have settings.
    pub(crate) async fn tenants_with_topics(&self) -> Result<Vec<String>, LogError> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT tenant_id FROM topic_settings")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

/// The rules of stored settings; one whose pattern or schema no longer parses is skipped
/// (and logged), never fatal.
pub(crate) fn rules_of(configs: Vec<TopicConfig>) -> TopicRules {
    let mut rules = TopicRules::new();
    for config in configs {
        let Ok(pattern) = Pattern::parse(&config.pattern) else {
            tracing::warn!(pattern = %config.pattern, "a stored topic pattern does not parse; skipped");
            continue;
        };
        let schema = match config.schema {
            Some(schema) => match EventSchema::compile(schema) {
                Ok(schema) => Some(schema),
                Err(error) => {
                    tracing::warn!(pattern = %config.pattern, %error, "a stored topic schema does not compile; skipped");
                    continue;
                }
            },
            None => None,
        };
        rules.set(
            pattern,
            TopicSettings {
                schema,
                retention: config.retention,
                durable: config.durable,
            },
        );
    }
    rules
}

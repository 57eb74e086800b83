//! Rows of experiments: each tenant's definitions and their state, the requests each exposed
//! (one row per request with what it measured), and feedback about those requests. Results
//! are aggregated here per unit first, then per variant, so a chatty user counts once.

use sqlx::{QueryBuilder, Sqlite};

use crate::{Store, StoreError};

/// One experiment.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExperimentRow {
    pub tenant_id: String,
    pub name: String,
    /// The definition, JSON.
    pub definition: String,
    pub status: String,
    pub winner: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub stopped_at_ms: Option<i64>,
}

/// One request an experiment assigned, and what it measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposureRow {
    pub id: String,
    pub tenant_id: String,
    pub experiment: String,
    pub variant: String,
    pub unit: String,
    pub request_id: String,
    pub response_id: Option<String>,
    pub at_ms: i64,
    pub latency_ms: i64,
    pub time_to_first_token_ms: Option<i64>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_micro_usd: i64,
    pub error: bool,
    pub cache_hit: bool,
}

/// Whose an exposed request was, for joining feedback to it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExposureKey {
    pub experiment: String,
    pub variant: String,
    pub unit: String,
    pub request_id: String,
}

/// One piece of feedback.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackRow {
    pub id: String,
    pub tenant_id: String,
    pub key: ExposureKey,
    pub metric: String,
    pub value: f64,
    pub at_ms: i64,
}

/// Per variant: how many units and requests, and the sums of one metric's per-unit values.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct VariantSums {
    pub variant: String,
    pub units: i64,
    pub sum: f64,
    pub sum_of_squares: f64,
}

/// The measured columns results may read.
pub const EXPOSURE_METRICS: [&str; 7] = [
    "latency_ms",
    "time_to_first_token_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost_micro_usd",
    "error",
    "cache_hit",
];

const EXPERIMENT_COLUMNS: &str = "tenant_id, name, definition, status, winner, created_at_ms, \
     updated_at_ms, started_at_ms, stopped_at_ms";

/// Exposure rows per insert (15 bound parameters each).
const EXPOSURES_PER_INSERT: usize = 64;

impl Store {
    pub async fn experiments(&self) -> Result<Vec<ExperimentRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {EXPERIMENT_COLUMNS} FROM experiments ORDER BY tenant_id, name"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Inserts an experiment or replaces the one of that tenant and name.
    pub async fn put_experiment(&self, row: &ExperimentRow) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO experiments ({EXPERIMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, \
             $8, $9) ON CONFLICT (tenant_id, name) DO UPDATE SET definition = \
             excluded.definition, status = excluded.status, winner = excluded.winner, \
             updated_at_ms = excluded.updated_at_ms, started_at_ms = excluded.started_at_ms, \
             stopped_at_ms = excluded.stopped_at_ms"
        ))
        .bind(&row.tenant_id)
        .bind(&row.name)
        .bind(&row.definition)
        .bind(&row.status)
        .bind(&row.winner)
        .bind(row.created_at_ms)
        .bind(row.updated_at_ms)
        .bind(row.started_at_ms)
        .bind(row.stopped_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes an experiment with its exposures and feedback. False when there was none.
    pub async fn delete_experiment(&self, tenant_id: &str, name: &str) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        for table in ["experiment_feedback", "experiment_exposures"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE tenant_id = $1 AND experiment = $2"
            ))
            .bind(tenant_id)
            .bind(name)
            .execute(&mut *transaction)
            .await?;
        }
        let result = sqlx::query("DELETE FROM experiments WHERE tenant_id = $1 AND name = $2")
            .bind(tenant_id)
            .bind(name)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(result.rows_affected() == 1)
    }

    /// Writes a batch of exposures in one transaction.
    pub async fn insert_exposures(&self, rows: &[ExposureRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut transaction = self.begin_write().await?;
        for chunk in rows.chunks(EXPOSURES_PER_INSERT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO experiment_exposures (id, tenant_id, experiment, variant, unit, \
                 request_id, response_id, at_ms, latency_ms, time_to_first_token_ms, \
                 prompt_tokens, completion_tokens, cost_micro_usd, error, cache_hit) ",
            );
            insert.push_values(chunk, |mut row, exposure| {
                row.push_bind(&exposure.id)
                    .push_bind(&exposure.tenant_id)
                    .push_bind(&exposure.experiment)
                    .push_bind(&exposure.variant)
                    .push_bind(&exposure.unit)
                    .push_bind(&exposure.request_id)
                    .push_bind(&exposure.response_id)
                    .push_bind(exposure.at_ms)
                    .push_bind(exposure.latency_ms)
                    .push_bind(exposure.time_to_first_token_ms)
                    .push_bind(exposure.prompt_tokens)
                    .push_bind(exposure.completion_tokens)
                    .push_bind(exposure.cost_micro_usd)
                    .push_bind(exposure.error)
                    .push_bind(exposure.cache_hit);
            });
            insert.build().execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// The exposure a request id or a response id names, in the tenant.
    pub async fn exposure(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<ExposureKey>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT experiment, variant, unit, request_id FROM experiment_exposures \
             WHERE tenant_id = $1 AND (request_id = $2 OR response_id = $2) LIMIT 1",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn insert_feedback(&self, row: &FeedbackRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO experiment_feedback (id, tenant_id, experiment, variant, unit, \
             request_id, metric, value, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&row.id)
        .bind(&row.tenant_id)
        .bind(&row.key.experiment)
        .bind(&row.key.variant)
        .bind(&row.key.unit)
        .bind(&row.key.request_id)
        .bind(&row.metric)
        .bind(row.value)
        .bind(row.at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Per variant: exposed units and requests.
    pub async fn exposure_counts(
        &self,
        tenant_id: &str,
        experiment: &str,
    ) -> Result<Vec<(String, i64, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT variant, COUNT(DISTINCT unit), COUNT(*) FROM experiment_exposures \
             WHERE tenant_id = $1 AND experiment = $2 GROUP BY variant",
        )
        .bind(tenant_id)
        .bind(experiment)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Per variant: the sums of each unit's mean of a measured column (one of
    /// [`EXPOSURE_METRICS`]; unknown names read nothing).
    pub async fn exposure_metric(
        &self,
        tenant_id: &str,
        experiment: &str,
        column: &str,
    ) -> Result<Vec<VariantSums>, StoreError> {
        if !EXPOSURE_METRICS.contains(&column) {
            return Ok(Vec::new());
        }
        // The column name comes from the fixed list above, never from the caller.
        Ok(sqlx::query_as(&format!(
            "SELECT variant, COUNT(*) AS units, COALESCE(SUM(m), 0.0) AS sum, \
             COALESCE(SUM(m * m), 0.0) AS sum_of_squares FROM (SELECT variant, unit, \
             AVG(CAST({column} AS DOUBLE PRECISION)) AS m FROM experiment_exposures \
             WHERE tenant_id = $1 AND experiment = $2 AND {column} IS NOT NULL \
             GROUP BY variant, unit) GROUP BY variant"
        ))
        .bind(tenant_id)
        .bind(experiment)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Per variant: the sums of a feedback metric per unit. `boolean`: every exposed unit
    /// counts, 1 when it sent a true (a conversion) and 0 otherwise; numeric: the units that
    /// sent the metric, each its mean.
    pub async fn feedback_metric(
        &self,
        tenant_id: &str,
        experiment: &str,
        metric: &str,
        boolean: bool,
    ) -> Result<Vec<VariantSums>, StoreError> {
        let sql = if boolean {
            "SELECT e.variant AS variant, COUNT(*) AS units, \
             COALESCE(SUM(COALESCE(f.m, 0.0)), 0.0) AS sum, \
             COALESCE(SUM(COALESCE(f.m, 0.0) * COALESCE(f.m, 0.0)), 0.0) AS sum_of_squares \
             FROM (SELECT DISTINCT variant, unit FROM experiment_exposures \
                   WHERE tenant_id = $1 AND experiment = $2) e \
             LEFT JOIN (SELECT variant, unit, MAX(CASE WHEN value > 0 THEN 1.0 ELSE 0.0 END) AS m \
                        FROM experiment_feedback WHERE tenant_id = $1 AND experiment = $2 \
                        AND metric = $3 GROUP BY variant, unit) f \
             ON f.variant = e.variant AND f.unit = e.unit GROUP BY e.variant"
        } else {
            "SELECT variant, COUNT(*) AS units, COALESCE(SUM(m), 0.0) AS sum, \
             COALESCE(SUM(m * m), 0.0) AS sum_of_squares FROM (SELECT variant, unit, \
             AVG(value) AS m FROM experiment_feedback WHERE tenant_id = $1 AND experiment = $2 \
             AND metric = $3 GROUP BY variant, unit) GROUP BY variant"
        };
        Ok(sqlx::query_as(sql)
            .bind(tenant_id)
            .bind(experiment)
            .bind(metric)
            .fetch_all(&self.pool)
            .await?)
    }
}

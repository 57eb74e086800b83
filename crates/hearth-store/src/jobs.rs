//! Rows of jobs (their definitions as JSON, which `hearth-jobs` owns), their runs and each
//! run's attempts. History is kept per job up to a bound the jobs service chooses.

use crate::{Store, StoreError};

/// One defined job.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobRow {
    pub tenant_id: String,
    pub name: String,
    /// The definition, JSON.
    pub definition: String,
    /// `config` or `api`.
    pub source: String,
    /// The last scheduled time a run was made for (ms).
    pub last_fire_ms: Option<i64>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// One run of a job.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobRunRow {
    pub id: String,
    pub tenant_id: String,
    pub job: String,
    pub reason: String,
    pub due_at_ms: i64,
    pub status: String,
    pub input: Option<String>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub attempts: i64,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
}

/// One attempt of a run.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobAttemptRow {
    pub run_id: String,
    pub attempt: i64,
    pub status: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
}

const RUN_COLUMNS: &str = "id, tenant_id, job, reason, due_at_ms, status, input, output, error, \
     attempts, created_at_ms, started_at_ms, finished_at_ms";

impl Store {
    /// Every defined job, by tenant and name.
    pub async fn jobs(&self) -> Result<Vec<JobRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT tenant_id, name, definition, source, last_fire_ms, created_at_ms, \
             updated_at_ms FROM jobs ORDER BY tenant_id, name",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Inserts a job or replaces its definition and source (keeping when it last fired).
    pub async fn put_job(&self, row: &JobRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO jobs (tenant_id, name, definition, source, last_fire_ms, \
             created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant_id, name) DO UPDATE SET definition = excluded.definition, \
             source = excluded.source, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(&row.tenant_id)
        .bind(&row.name)
        .bind(&row.definition)
        .bind(&row.source)
        .bind(row.last_fire_ms)
        .bind(row.created_at_ms)
        .bind(row.updated_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes a job with its history. False when there was no such job.
    pub async fn delete_job(&self, tenant_id: &str, name: &str) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "DELETE FROM job_attempts WHERE run_id IN \
             (SELECT id FROM job_runs WHERE tenant_id = $1 AND job = $2)",
        )
        .bind(tenant_id)
        .bind(name)
        .execute(&mut *transaction)
        .await?;
        sqlx::query("DELETE FROM job_runs WHERE tenant_id = $1 AND job = $2")
            .bind(tenant_id)
            .bind(name)
            .execute(&mut *transaction)
            .await?;
        let result = sqlx::query("DELETE FROM jobs WHERE tenant_id = $1 AND name = $2")
            .bind(tenant_id)
            .bind(name)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(result.rows_affected() == 1)
    }

    /// Records the scheduled time a job last fired for.
    pub async fn set_job_last_fire(
        &self,
        tenant_id: &str,
        name: &str,
        fire_ms: i64,
    ) -> Result<(), StoreError> {
        Ok(update_last_fire(&self.pool, tenant_id, name, fire_ms).await?)
    }

    /// Records a new run in one transaction with what goes with it: its first attempt, when
    /// it starts at once, and the scheduled time it was made for (`jobs.last_fire_ms`). One
    /// write before a run's work begins, not three.
    pub async fn record_job_run(
        &self,
        run: &JobRunRow,
        first_attempt: Option<&JobAttemptRow>,
        fire_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query(&format!(
            "INSERT INTO job_runs ({RUN_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(&run.id)
        .bind(&run.tenant_id)
        .bind(&run.job)
        .bind(&run.reason)
        .bind(run.due_at_ms)
        .bind(&run.status)
        .bind(&run.input)
        .bind(&run.output)
        .bind(&run.error)
        .bind(run.attempts)
        .bind(run.created_at_ms)
        .bind(run.started_at_ms)
        .bind(run.finished_at_ms)
        .execute(&mut *transaction)
        .await?;
        if let Some(attempt) = first_attempt {
            upsert_attempt(&mut *transaction, attempt).await?;
        }
        if let Some(fire_ms) = fire_ms {
            update_last_fire(&mut *transaction, &run.tenant_id, &run.job, fire_ms).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Writes a run's state (status, attempts, outcome, times).
    pub async fn update_job_run(&self, run: &JobRunRow) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE job_runs SET status = $2, output = $3, error = $4, attempts = $5, \
             started_at_ms = $6, finished_at_ms = $7 WHERE id = $1",
        )
        .bind(&run.id)
        .bind(&run.status)
        .bind(&run.output)
        .bind(&run.error)
        .bind(run.attempts)
        .bind(run.started_at_ms)
        .bind(run.finished_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records an attempt, or its end (the same run and attempt number).
    pub async fn put_job_attempt(&self, attempt: &JobAttemptRow) -> Result<(), StoreError> {
        Ok(upsert_attempt(&self.pool, attempt).await?)
    }

    /// A job's runs, newest first; `before_ms` pages back by creation time.
    pub async fn job_runs(
        &self,
        tenant_id: &str,
        job: &str,
        limit: u32,
        before_ms: Option<i64>,
    ) -> Result<Vec<JobRunRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM job_runs WHERE tenant_id = $1 AND job = $2 \
             AND created_at_ms < $3 ORDER BY created_at_ms DESC, id DESC LIMIT $4"
        ))
        .bind(tenant_id)
        .bind(job)
        .bind(before_ms.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    /// One run, in its tenant.
    pub async fn job_run(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<JobRunRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM job_runs WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Runs in any of `statuses`, oldest first (what a restart finds unfinished).
    pub async fn job_runs_in(&self, statuses: &[&str]) -> Result<Vec<JobRunRow>, StoreError> {
        let mut runs = Vec::new();
        for status in statuses {
            let found: Vec<JobRunRow> = sqlx::query_as(&format!(
                "SELECT {RUN_COLUMNS} FROM job_runs WHERE status = $1"
            ))
            .bind(status)
            .fetch_all(&self.pool)
            .await?;
            runs.extend(found);
        }
        runs.sort_by_key(|run| run.created_at_ms);
        Ok(runs)
    }

    /// A run's attempts, in order.
    pub async fn job_attempts(&self, run_id: &str) -> Result<Vec<JobAttemptRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT run_id, attempt, status, output, error, started_at_ms, finished_at_ms \
             FROM job_attempts WHERE run_id = $1 ORDER BY attempt",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The newest run of a job with this status, if any.
    pub async fn last_job_run(
        &self,
        tenant_id: &str,
        job: &str,
        status: Option<&str>,
    ) -> Result<Option<JobRunRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM job_runs WHERE tenant_id = $1 AND job = $2 \
             AND ($3 IS NULL OR status = $3) ORDER BY created_at_ms DESC, id DESC LIMIT 1"
        ))
        .bind(tenant_id)
        .bind(job)
        .bind(status)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Keeps a job's newest `keep` runs (and their attempts); returns how many were removed.
    pub async fn trim_job_runs(
        &self,
        tenant_id: &str,
        job: &str,
        keep: u32,
    ) -> Result<u64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let old = "SELECT id FROM job_runs WHERE tenant_id = $1 AND job = $2 \
                   AND status NOT IN ('queued', 'running') \
                   ORDER BY created_at_ms DESC, id DESC LIMIT -1 OFFSET $3";
        sqlx::query(&format!("DELETE FROM job_attempts WHERE run_id IN ({old})"))
            .bind(tenant_id)
            .bind(job)
            .bind(i64::from(keep))
            .execute(&mut *transaction)
            .await?;
        let result = sqlx::query(&format!("DELETE FROM job_runs WHERE id IN ({old})"))
            .bind(tenant_id)
            .bind(job)
            .bind(i64::from(keep))
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(result.rows_affected())
    }
}

/// Inserts an attempt, or records its end (same run and number).
async fn upsert_attempt<'e>(
    executor: impl sqlx::SqliteExecutor<'e>,
    attempt: &JobAttemptRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO job_attempts (run_id, attempt, status, output, error, started_at_ms, \
         finished_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (run_id, attempt) DO UPDATE SET status = excluded.status, \
         output = excluded.output, error = excluded.error, \
         finished_at_ms = excluded.finished_at_ms",
    )
    .bind(&attempt.run_id)
    .bind(attempt.attempt)
    .bind(&attempt.status)
    .bind(&attempt.output)
    .bind(&attempt.error)
    .bind(attempt.started_at_ms)
    .bind(attempt.finished_at_ms)
    .execute(executor)
    .await?;
    Ok(())
}

async fn update_last_fire<'e>(
    executor: impl sqlx::SqliteExecutor<'e>,
    tenant_id: &str,
    name: &str,
    fire_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE jobs SET last_fire_ms = $3 WHERE tenant_id = $1 AND name = $2")
        .bind(tenant_id)
        .bind(name)
        .bind(fire_ms)
        .execute(executor)
        .await?;
    Ok(())
}

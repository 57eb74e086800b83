//! Rows of prompt templates: each version's definition (JSON, which `hearth-prompts` owns),
//! never changed once written, and the labels that point at versions.

use crate::{Store, StoreError};

/// One version of a prompt.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PromptVersionRow {
    pub tenant_id: String,
    pub name: String,
    pub version: i64,
    /// The definition, JSON.
    pub definition: String,
    pub note: Option<String>,
    pub created_by: Option<String>,
    pub created_at_ms: i64,
}

/// One label of a prompt and the version it points at.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PromptLabelRow {
    pub tenant_id: String,
    pub name: String,
    pub label: String,
    pub version: i64,
    pub updated_at_ms: i64,
}

impl Store {
    /// Every version of every prompt, by tenant, name and version.
    pub async fn prompt_versions(&self) -> Result<Vec<PromptVersionRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT tenant_id, name, version, definition, note, created_by, created_at_ms \
             FROM prompt_versions ORDER BY tenant_id, name, version",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every label of every prompt.
    pub async fn prompt_labels(&self) -> Result<Vec<PromptLabelRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT tenant_id, name, label, version, updated_at_ms FROM prompt_labels \
             ORDER BY tenant_id, name, label",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Writes a new version and points `labels` at it, in one transaction. False (and nothing
    /// written) when the version exists already.
    pub async fn insert_prompt_version(
        &self,
        row: &PromptVersionRow,
        labels: &[String],
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO prompt_versions (tenant_id, name, version, definition, note, \
             created_by, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant_id, name, version) DO NOTHING",
        )
        .bind(&row.tenant_id)
        .bind(&row.name)
        .bind(row.version)
        .bind(&row.definition)
        .bind(&row.note)
        .bind(&row.created_by)
        .bind(row.created_at_ms)
        .execute(&mut *transaction)
        .await?;
        if inserted.rows_affected() == 0 {
            return Ok(false);
        }
        for label in labels {
            upsert_label(
                &mut transaction,
                &PromptLabelRow {
                    tenant_id: row.tenant_id.clone(),
                    name: row.name.clone(),
                    label: label.clone(),
                    version: row.version,
                    updated_at_ms: row.created_at_ms,
                },
            )
            .await?;
        }
        transaction.commit().await?;
        Ok(true)
    }

    /// Points a label at a version (moving it if it pointed elsewhere).
    pub async fn put_prompt_label(&self, row: &PromptLabelRow) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        upsert_label(&mut transaction, row).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Removes a label. False when the prompt had no such label.
    pub async fn delete_prompt_label(
        &self,
        tenant_id: &str,
        name: &str,
        label: &str,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "DELETE FROM prompt_labels WHERE tenant_id = $1 AND name = $2 AND label = $3",
        )
        .bind(tenant_id)
        .bind(name)
        .bind(label)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Removes a prompt: its versions and labels. False when there was no such prompt.
    pub async fn delete_prompt(&self, tenant_id: &str, name: &str) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query("DELETE FROM prompt_labels WHERE tenant_id = $1 AND name = $2")
            .bind(tenant_id)
            .bind(name)
            .execute(&mut *transaction)
            .await?;
        let result = sqlx::query("DELETE FROM prompt_versions WHERE tenant_id = $1 AND name = $2")
            .bind(tenant_id)
            .bind(name)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(result.rows_affected() > 0)
    }
}

async fn upsert_label(
    transaction: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    row: &PromptLabelRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO prompt_labels (tenant_id, name, label, version, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, name, label) DO UPDATE SET \
         version = excluded.version, updated_at_ms = excluded.updated_at_ms",
    )
    .bind(&row.tenant_id)
    .bind(&row.name)
    .bind(&row.label)
    .bind(row.version)
    .bind(row.updated_at_ms)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

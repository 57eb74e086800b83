//! The audit trail: an append-only log of who changed what.

use crate::error::StoreError;
use crate::store::Store;

/// One audited action. The caller makes the id and the timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: String,
    pub at_ms: i64,
    /// Who acted: a key prefix, a user, or `system` for the server itself.
    pub actor: String,
    /// What was done, as a dotted verb such as `config.reload`.
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    /// Where the action came from: an IP address, `cli`, `signal`, `file-watch`.
    pub source: Option<String>,
    /// The tenant the action concerns, so that its admins can read it; `None` for
    /// instance-wide actions.
    pub tenant_id: Option<String>,
}

impl Store {
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (id, at_ms, actor, action, target, detail, source, tenant_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&entry.id)
        .bind(entry.at_ms)
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.detail)
        .bind(&entry.source)
        .bind(&entry.tenant_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest entries first; with `tenant_id`, only those about that tenant.
    pub async fn recent_audit(
        &self,
        limit: i64,
        tenant_id: Option<&str>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, at_ms, actor, action, target, detail, source, tenant_id FROM audit_log \
             WHERE $2 IS NULL OR tenant_id = $2 ORDER BY at_ms DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: String,
    at_ms: i64,
    actor: String,
    action: String,
    target: Option<String>,
    detail: Option<String>,
    source: Option<String>,
    tenant_id: Option<String>,
}

impl From<AuditRow> for AuditEntry {
    fn from(row: AuditRow) -> AuditEntry {
        AuditEntry {
            id: row.id,
            at_ms: row.at_ms,
            actor: row.actor,
            action: row.action,
            target: row.target,
            detail: row.detail,
            source: row.source,
            tenant_id: row.tenant_id,
        }
    }
}

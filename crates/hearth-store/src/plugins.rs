//! Rows of installed plugins (which version serves, which one a rollback returns to, enabled or
//! not, their configuration) and each plugin's key-value store, kept per tenant. The components'
//! bytes are files in the data directory; these rows name them by hash.

use crate::{Store, StoreError};

/// One installed plugin.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PluginRow {
    pub name: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub version: String,
    pub sha256: String,
    /// The manifest as installed (TOML).
    pub manifest: String,
    /// The trusted key (base64) whose signature it carried; `None` when unsigned.
    pub signed_by: Option<String>,
    pub previous_version: Option<String>,
    pub previous_sha256: Option<String>,
    pub previous_manifest: Option<String>,
    pub previous_signed_by: Option<String>,
    /// A JSON object.
    pub config: String,
    pub installed_at_ms: i64,
    pub updated_at_ms: i64,
}

const PLUGIN_COLUMNS: &str = "name, enabled, disabled_reason, version, sha256, manifest, \
     signed_by, previous_version, previous_sha256, previous_manifest, previous_signed_by, \
     config, installed_at_ms, updated_at_ms";

impl Store {
    /// Every installed plugin, by name.
    pub async fn plugins(&self) -> Result<Vec<PluginRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {PLUGIN_COLUMNS} FROM plugins ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Inserts `row`, or replaces the plugin of that name. Returns false when `row` was a new
    /// install (`replace` false) and the name is taken.
    pub async fn put_plugin(&self, row: &PluginRow, replace: bool) -> Result<bool, StoreError> {
        let conflict = if replace {
            "ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled, \
             disabled_reason = excluded.disabled_reason, version = excluded.version, \
             sha256 = excluded.sha256, manifest = excluded.manifest, \
             signed_by = excluded.signed_by, previous_version = excluded.previous_version, \
             previous_sha256 = excluded.previous_sha256, \
             previous_manifest = excluded.previous_manifest, \
             previous_signed_by = excluded.previous_signed_by, config = excluded.config, \
             updated_at_ms = excluded.updated_at_ms"
        } else {
            "ON CONFLICT (name) DO NOTHING"
        };
        let result = sqlx::query(&format!(
            "INSERT INTO plugins ({PLUGIN_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) {conflict}"
        ))
        .bind(&row.name)
        .bind(row.enabled)
        .bind(&row.disabled_reason)
        .bind(&row.version)
        .bind(&row.sha256)
        .bind(&row.manifest)
        .bind(&row.signed_by)
        .bind(&row.previous_version)
        .bind(&row.previous_sha256)
        .bind(&row.previous_manifest)
        .bind(&row.previous_signed_by)
        .bind(&row.config)
        .bind(row.installed_at_ms)
        .bind(row.updated_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Enables or disables a plugin (with the reason it was disabled). False when there is no
    /// such plugin.
    pub async fn set_plugin_enabled(
        &self,
        name: &str,
        enabled: bool,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE plugins SET enabled = $2, disabled_reason = $3, updated_at_ms = $4 \
             WHERE name = $1",
        )
        .bind(name)
        .bind(enabled)
        .bind(reason)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Removes a plugin, its key-value store and its subscriptions. False when there was no
    /// such plugin.
    pub async fn delete_plugin(&self, name: &str) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        for statement in [
            "DELETE FROM plugin_kv WHERE plugin = $1",
            "DELETE FROM plugin_subscriptions WHERE plugin = $1",
            "DELETE FROM plugin_secrets WHERE plugin = $1",
        ] {
            sqlx::query(statement)
                .bind(name)
                .execute(&mut *transaction)
                .await?;
        }
        let result = sqlx::query("DELETE FROM plugins WHERE name = $1")
            .bind(name)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(result.rows_affected() == 1)
    }

    /// The value a plugin stored under `key` for a tenant.
    pub async fn plugin_kv_get(
        &self,
        plugin: &str,
        tenant_id: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT value FROM plugin_kv WHERE plugin = $1 AND tenant_id = $2 AND key = $3",
        )
        .bind(plugin)
        .bind(tenant_id)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Stores `value` under `key` unless that would give the plugin more than `max_keys` keys
    /// for the tenant; returns false (writing nothing) then.
    pub async fn plugin_kv_set(
        &self,
        plugin: &str,
        tenant_id: &str,
        key: &str,
        value: &[u8],
        max_keys: u64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let exists: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM plugin_kv WHERE plugin = $1 AND tenant_id = $2 AND key = $3",
        )
        .bind(plugin)
        .bind(tenant_id)
        .bind(key)
        .fetch_optional(&mut *transaction)
        .await?;
        if exists.is_none() {
            let count: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM plugin_kv WHERE plugin = $1 AND tenant_id = $2",
            )
            .bind(plugin)
            .bind(tenant_id)
            .fetch_one(&mut *transaction)
            .await?;
            if count as u64 >= max_keys {
                return Ok(false);
            }
        }
        sqlx::query(
            "INSERT INTO plugin_kv (plugin, tenant_id, key, value, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (plugin, tenant_id, key) \
             DO UPDATE SET value = excluded.value, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(plugin)
        .bind(tenant_id)
        .bind(key)
        .bind(value)
        .bind(now_ms)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// Removes `key` from a plugin's store for a tenant.
    pub async fn plugin_kv_delete(
        &self,
        plugin: &str,
        tenant_id: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM plugin_kv WHERE plugin = $1 AND tenant_id = $2 AND key = $3")
            .bind(plugin)
            .bind(tenant_id)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every subscription, as (plugin, tenant).
    pub async fn plugin_subscriptions(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT plugin, tenant_id FROM plugin_subscriptions ORDER BY plugin, tenant_id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The tenants whose events go to a plugin.
    pub async fn plugin_subscribers(&self, plugin: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT tenant_id FROM plugin_subscriptions WHERE plugin = $1 ORDER BY tenant_id",
        )
        .bind(plugin)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records that a tenant's events go to a plugin; false when they did already.
    pub async fn put_plugin_subscription(
        &self,
        plugin: &str,
        tenant_id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO plugin_subscriptions (plugin, tenant_id, created_at_ms) \
             VALUES ($1, $2, $3) ON CONFLICT (plugin, tenant_id) DO NOTHING",
        )
        .bind(plugin)
        .bind(tenant_id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Stops a tenant's events going to a plugin; false when they did not.
    pub async fn delete_plugin_subscription(
        &self,
        plugin: &str,
        tenant_id: &str,
    ) -> Result<bool, StoreError> {
        let result =
            sqlx::query("DELETE FROM plugin_subscriptions WHERE plugin = $1 AND tenant_id = $2")
                .bind(plugin)
                .bind(tenant_id)
                .execute(&self.pool)
                .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Sets a plugin's configuration (a JSON object's text); false when there is no such plugin.
    pub async fn set_plugin_config(
        &self,
        name: &str,
        config: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let result =
            sqlx::query("UPDATE plugins SET config = $2, updated_at_ms = $3 WHERE name = $1")
                .bind(name)
                .bind(config)
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
        Ok(result.rows_affected() == 1)
    }
}

impl Store {
    /// A plugin's secret, if set.
    pub async fn plugin_secret(
        &self,
        plugin: &str,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM plugin_secrets WHERE plugin = $1 AND name = $2")
                .bind(plugin)
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Sets a plugin's secret, replacing its value.
    pub async fn set_plugin_secret(
        &self,
        plugin: &str,
        name: &str,
        value: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO plugin_secrets (plugin, name, value, updated_at_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (plugin, name) \
             DO UPDATE SET value = excluded.value, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(plugin)
        .bind(name)
        .bind(value)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes a plugin's secret; false when it was not set.
    pub async fn delete_plugin_secret(&self, plugin: &str, name: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM plugin_secrets WHERE plugin = $1 AND name = $2")
            .bind(plugin)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// The names of a plugin's secrets that are set, with when each was set (never values).
    pub async fn plugin_secret_names(
        &self,
        plugin: &str,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT name, updated_at_ms FROM plugin_secrets WHERE plugin = $1 ORDER BY name",
        )
        .bind(plugin)
        .fetch_all(&self.pool)
        .await?)
    }
}

//! Named secrets: values an instance admin sets for a plugin (an API token, say), which the
//! plugin reads through the `secrets` interface when its manifest declares the name. Values
//! are kept in the store and never answered back: listing shows names and when they were set.

use crate::manifest::valid_secret_name;
use crate::{PluginError, Plugins};

/// The largest secret value.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// One secret a plugin declares, or one set for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    pub name: String,
    /// Whether the serving version's manifest declares it (only declared ones are readable).
    pub declared: bool,
    /// When it was set; `None`: not set.
    pub updated_at_ms: Option<i64>,
}

impl Plugins {
    /// Sets secret `secret` of plugin `name`, which its manifest must declare.
    pub async fn set_secret(
        &self,
        name: &str,
        secret: &str,
        value: &str,
    ) -> Result<(), PluginError> {
        let loaded = self.serving_any(name)?;
        if !valid_secret_name(secret)
            || !loaded
                .manifest
                .capabilities
                .secrets
                .iter()
                .any(|declared| declared == secret)
        {
            return Err(PluginError::InvalidArguments {
                field: "secret".into(),
                message: format!(
                    "plugin {name} does not declare a secret named {secret:?} (capabilities.secrets: {})",
                    loaded.manifest.capabilities.secrets.join(", ")
                ),
            });
        }
        if value.is_empty() || value.len() > MAX_SECRET_BYTES {
            return Err(PluginError::InvalidArguments {
                field: "value".into(),
                message: format!("a secret is 1 to {MAX_SECRET_BYTES} bytes"),
            });
        }
        self.inner
            .host
            .store
            .set_plugin_secret(name, secret, value, hearth_time::now_ms())
            .await?;
        Ok(())
    }

    /// Removes a secret; false when it was not set.
    pub async fn delete_secret(&self, name: &str, secret: &str) -> Result<bool, PluginError> {
        self.serving_any(name)?;
        Ok(self
            .inner
            .host
            .store
            .delete_plugin_secret(name, secret)
            .await?)
    }

    /// The secrets the plugin declares and those set for it, by name.
    pub async fn secrets(&self, name: &str) -> Result<Vec<SecretInfo>, PluginError> {
        let loaded = self.serving_any(name)?;
        let set = self.inner.host.store.plugin_secret_names(name).await?;
        let mut list: Vec<SecretInfo> = loaded
            .manifest
            .capabilities
            .secrets
            .iter()
            .map(|declared| SecretInfo {
                name: declared.clone(),
                declared: true,
                updated_at_ms: set
                    .iter()
                    .find(|(name, _)| name == declared)
                    .map(|(_, at)| *at),
            })
            .collect();
        for (secret, at) in set {
            if !list.iter().any(|info| info.name == secret) {
                list.push(SecretInfo {
                    name: secret,
                    declared: false,
                    updated_at_ms: Some(at),
                });
            }
        }
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }
}

//! Showing the effective config (secrets masked) and comparing two configs on reload.

use std::fmt::Write;

use crate::load::LoadedConfig;

impl LoadedConfig {
    /// The effective config as TOML-like lines, one per key, each with its origin; secrets are
    /// masked. This is what `hearth config check` prints.
    pub fn render_masked(&self) -> String {
        let mut out = String::new();
        let mut section = "";
        for effective in &self.values {
            let (table, name) = match effective.spec.key.rsplit_once('.') {
                Some((table, name)) => (table, name),
                None => ("", effective.spec.key),
            };
            if table != section {
                let _ = writeln!(out, "\n[{table}]");
                section = table;
            }
            let shown = if effective.spec.secret {
                "\"********\"".to_string()
            } else {
                effective.value.to_string()
            };
            let _ = writeln!(out, "{name} = {shown}  # {}", effective.origin);
        }
        out.trim_start().to_string()
    }

    /// Which keys differ between this config and a newly loaded one, split by whether a running
    /// server can apply them.
    pub fn diff(&self, newer: &LoadedConfig) -> ReloadDiff {
        let mut diff = ReloadDiff::default();
        for spec in crate::schema::SCHEMA {
            let old = self.value(spec.key).map(|value| &value.value);
            let new = newer.value(spec.key).map(|value| &value.value);
            if old != new {
                if spec.reloadable {
                    diff.applied.push(spec.key);
                } else {
                    diff.needs_restart.push(spec.key);
                }
            }
        }
        diff
    }
}

/// The outcome of comparing the running config with a reloaded one.
#[derive(Debug, Default, PartialEq)]
pub struct ReloadDiff {
    /// Keys whose new values take effect now.
    pub applied: Vec<&'static str>,
    /// Keys that changed but only take effect after a restart.
    pub needs_restart: Vec<&'static str>,
}

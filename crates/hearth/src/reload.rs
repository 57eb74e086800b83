//! Config hot reload: on SIGHUP, or when the config file changes, the config is loaded again
//! through the same path as start-up. A config start-up would refuse is refused here too and
//! the running one stays; otherwise the runtime-adjustable keys are applied and the others
//! are reported as needing a restart.

use std::path::Path;
use std::time::SystemTime;

use hearth_config::{LoadedConfig, Sources};
use hearth_server::RuntimeSettings;
use hearth_store::{AuditEntry, Store};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::telemetry::LogControl;

/// What a reload changes in the running server.
pub struct ReloadTargets {
    pub runtime_settings: watch::Sender<RuntimeSettings>,
    /// Default limits (`limits.*`) apply from the next request on.
    pub limiter: std::sync::Arc<hearth_gateway::Limiter>,
    /// Upstreams and routes are rebuilt; what is known of each target's health carries over.
    pub routing: std::sync::Arc<hearth_upstream::RoutingHandle>,
    pub prices: std::sync::Arc<std::sync::RwLock<hearth_gateway::Prices>>,
    pub log: LogControl,
    pub store: Store,
    /// Configuration's flags are made what `[[flags]]` says.
    pub flags: hearth_flags::Flags,
}

/// Runs until aborted, reloading on SIGHUP and on file changes.
pub async fn watch(sources: Sources, mut current: LoadedConfig, targets: ReloadTargets) {
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => Some(hangup),
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; reload by file change only");
            None
        }
    };
    let watched_file = sources.file.clone().filter(|_| current.config.reload.watch);
    let mut poll = tokio::time::interval(current.config.reload.poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stamp = watched_file.as_deref().and_then(file_stamp);
    loop {
        let trigger = tokio::select! {
            Some(()) = async { match hangup.as_mut() { Some(hangup) => hangup.recv().await, None => std::future::pending().await } } => "signal",
            _ = poll.tick(), if watched_file.is_some() => {
                let now = watched_file.as_deref().and_then(file_stamp);
                if now == stamp {
                    continue;
                }
                stamp = now;
                "file-watch"
            }
        };
        if let Some(newer) = reload_once(&sources, &current, &targets, trigger).await {
            current = newer;
        }
    }
}

/// The file's modification time and length: a change in either means a reload. Editors that
/// replace the file (write and rename) change both.
fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

async fn reload_once(
    sources: &Sources,
    current: &LoadedConfig,
    targets: &ReloadTargets,
    trigger: &'static str,
) -> Option<LoadedConfig> {
    let newer = match hearth_config::load(sources) {
        Ok(newer) => newer,
        Err(error) => {
            tracing::error!(%error, key = error.key().unwrap_or(""), trigger, "config reload rejected; the running config stays in force");
            return None;
        }
    };
    let diff = current.diff(&newer);
    if diff.applied.is_empty() && diff.needs_restart.is_empty() {
        tracing::debug!(trigger, "config reloaded; nothing changed");
        return Some(newer);
    }
    if diff.applied.contains(&"log.level")
        && let Err(error) = targets.log.set_level(&newer.config.log.level)
    {
        tracing::error!(error = %format!("{error:#}"), "config reload rejected; the running config stays in force");
        return None;
    }
    // Flags are checked whole before any changes: a bad one rejects the reload.
    if diff.applied.contains(&"flags")
        && let Err(error) = crate::flags::apply_config(&targets.flags, &newer.config).await
    {
        tracing::error!(error = %format!("{error:#}"), "config reload rejected; the running config stays in force");
        return None;
    }
    targets
        .runtime_settings
        .send_replace(crate::serve::runtime_settings(&newer.config));
    targets
        .limiter
        .set_defaults(crate::serve::limit_defaults(&newer.config));
    *targets
        .prices
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = crate::serve::prices(&newer.config);
    if diff.applied.iter().any(|key| {
        key.starts_with("upstreams") || key.starts_with("routes") || key.starts_with("routing.")
    }) {
        targets
            .routing
            .reload(&newer.config, &crate::serve::environment_variable);
    }
    if !diff.needs_restart.is_empty() {
        tracing::warn!(keys = ?diff.needs_restart, "these config changes take effect after a restart");
    }
    tracing::info!(applied = ?diff.applied, trigger, "config reloaded");

    let entry = AuditEntry {
        id: uuid::Uuid::new_v4().to_string(),
        at_ms: crate::serve::now_ms(),
        actor: "system".to_string(),
        action: "config.reload".to_string(),
        target: sources.file.as_ref().map(|path| path.display().to_string()),
        detail: Some(format!(
            "applied: {}; needs restart: {}",
            diff.applied.join(", "),
            diff.needs_restart.join(", ")
        )),
        source: Some(trigger.to_string()),
        tenant_id: None,
    };
    if let Err(error) = targets.store.append_audit(&entry).await {
        tracing::warn!(%error, "could not write the config reload to the audit log");
    }
    Some(newer)
}

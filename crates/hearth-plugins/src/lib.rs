//! Hearth's plugins: WebAssembly components that extend the server without forking it. A
//! plugin declares in its manifest what it may touch (a key-value store, topics to publish
//! to); everything else is denied, and the component's imports are checked against the
//! manifest at install. Every call runs under the plugin's hard limits — memory (a resource
//! limiter), time (epoch interruption while computing, a deadline while waiting on the host)
//! and instances at once — and a stopped call costs only that call: its instance is dropped,
//! the reason recorded, and repeated stops disable the plugin.
//!
//! Knows nothing of HTTP. Installed plugins are rows in the store (`hearth-store`'s
//! `plugins.rs`); the components' bytes and their compiled form are files in the data
//! directory, named by hash, so a restart does not recompile.

mod error;
mod handlers;
mod imports;
mod loaded;
mod manifest;
mod models;
mod runtime;
pub mod samples;
mod secrets;
mod signature;
mod watch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use hearth_events::Events;
use hearth_store::{PluginRow, Store};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;

pub use error::{PluginError, StopReason};
pub use handlers::{DEAD_LETTER_TOPIC, MAX_DELIVERIES};
pub use loaded::{GuestEvent, ToolSpec};
pub use manifest::{Capabilities, Limits, MAX_NAME_BYTES, Manifest};
pub use models::{HostFuture, ModelHost};
pub use runtime::{LogLine, MAX_KV_KEY_BYTES, MAX_KV_KEYS, MAX_KV_VALUE_BYTES};
pub use secrets::{MAX_SECRET_BYTES, SecretInfo};
pub use signature::{TrustedKeys, key_pair, sign, signed_message};
pub use watch::spawn_watch;

use loaded::{Answer, Loaded, Request};
use runtime::{GuestIdentity, HostServices, Runtime, bindings::PluginPre};

/// The largest component accepted.
pub const MAX_COMPONENT_BYTES: usize = 64 << 20;

/// How the plugin service is set up.
#[derive(Debug, Clone)]
pub struct PluginsOptions {
    /// Where components and their compiled form are kept (`<data dir>/plugins`).
    pub dir: PathBuf,
    /// Instances of all plugins together, busy and idle: the size of the engine's pool.
    pub max_instances: u32,
    /// The public keys a plugin's signature may be by.
    pub trusted_keys: TrustedKeys,
    /// Whether a plugin without a signature may be installed.
    pub allow_unsigned: bool,
    /// Whether plugins' HTTP may reach loopback and private addresses (tests, a private
    /// network); their allow-lists apply either way.
    pub allow_internal_hosts: bool,
    /// The collections behind the `memory` capability; without it, memory calls fail.
    pub memory: Option<Arc<hearth_memory::Memory>>,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// The guest answered.
    Ok,
    /// The guest answered an error of its own (a tool's error, a handler's refusal).
    GuestError,
    /// The host stopped it.
    Stopped(StopReason),
}

/// What the service reports as it works, for metrics and system events.
#[derive(Debug, Clone)]
pub enum PluginEvent {
    Called {
        plugin: String,
        tenant_id: String,
        outcome: CallOutcome,
        duration: Duration,
        /// The largest linear memory an instance of the serving version grew to (bytes).
        memory_peak_bytes: u64,
    },
    /// The breaker disabled a plugin after repeated stops.
    Disabled { plugin: String, reason: String },
}

pub type PluginObserver = Arc<dyn Fn(PluginEvent) + Send + Sync>;

/// An installed plugin as the admin API shows it.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    pub manifest: Manifest,
    pub sha256: String,
    /// The trusted key whose signature it carries; `None` when unsigned.
    pub signed_by: Option<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub previous_version: Option<String>,
    pub tools: Vec<ToolSpec>,
    pub idle_instances: usize,
    /// Its configuration, a JSON object.
    pub config: serde_json::Value,
    pub installed_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A tool call's result.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    pub output: String,
    pub duration: Duration,
}

struct Installed {
    row: PluginRow,
    current: Arc<Loaded>,
}

/// The plugin service.
#[derive(Clone)]
pub struct Plugins {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Runtime,
    /// What compiled forms are keyed by besides their component (see [`engine_key`]).
    engine_key: String,
    trusted_keys: TrustedKeys,
    allow_unsigned: bool,
    host: Arc<HostServices>,
    /// The event handler workers' stop flags, by (plugin, tenant).
    workers: std::sync::Mutex<HashMap<(String, String), Arc<AtomicBool>>>,
    dir: PathBuf,
    installed: RwLock<HashMap<String, Installed>>,
    /// Installs, upgrades, rollbacks and removals one at a time.
    changes: tokio::sync::Mutex<()>,
    observer: Option<PluginObserver>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for stop in self
            .workers
            .get_mut()
            .unwrap_or_else(|poison| poison.into_inner())
            .values()
        {
            stop.store(true, Ordering::Relaxed);
        }
    }
}

impl std::fmt::Debug for Plugins {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Plugins")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl Plugins {
    /// Opens the service and loads every installed plugin (from its compiled form when this
    /// engine compiled it before). A plugin that no longer loads is logged and disabled, not
    /// fatal.
    pub async fn open(
        options: PluginsOptions,
        store: Store,
        events: Option<Arc<Events>>,
        observer: Option<PluginObserver>,
    ) -> Result<Plugins, PluginError> {
        std::fs::create_dir_all(options.dir.join("components"))?;
        std::fs::create_dir_all(options.dir.join("compiled"))?;
        let runtime = Runtime::new(options.max_instances)?;
        let plugins = Plugins {
            inner: Arc::new(Inner {
                engine_key: engine_key(&runtime.engine),
                runtime,
                trusted_keys: options.trusted_keys,
                allow_unsigned: options.allow_unsigned,
                host: Arc::new(HostServices {
                    store,
                    events,
                    http: hearth_egress::client(
                        options.allow_internal_hosts,
                        Duration::from_millis(manifest::MAX_TIMEOUT_MS),
                        runtime::EGRESS,
                    )
                    .map_err(|error| PluginError::Runtime(format!("the HTTP client: {error}")))?,
                    allow_internal_hosts: options.allow_internal_hosts,
                    memory: options.memory,
                    models: std::sync::OnceLock::new(),
                }),
                dir: options.dir,
                installed: RwLock::new(HashMap::new()),
                workers: std::sync::Mutex::new(HashMap::new()),
                changes: tokio::sync::Mutex::new(()),
                observer,
            }),
        };
        for mut row in plugins.inner.host.store.plugins().await? {
            let manifest = match Manifest::parse(&row.manifest) {
                Ok(manifest) => manifest,
                Err(error) => {
                    tracing::error!(plugin = %row.name, %error, "an installed plugin's manifest no longer parses; skipped");
                    continue;
                }
            };
            match plugins.load(manifest, &row.sha256, None, &row.config).await {
                Ok(loaded) => {
                    let name = row.name.clone();
                    let installed = Installed {
                        row,
                        current: Arc::new(loaded),
                    };
                    plugins.write_installed().insert(name, installed);
                }
                Err(error) => {
                    tracing::error!(plugin = %row.name, %error, "an installed plugin could not be loaded; it stays disabled");
                    row.enabled = false;
                    row.disabled_reason = Some(format!("it could not be loaded: {error}"));
                    plugins
                        .inner
                        .host
                        .store
                        .set_plugin_enabled(
                            &row.name,
                            false,
                            row.disabled_reason.as_deref(),
                            hearth_time::now_ms(),
                        )
                        .await?;
                }
            }
        }
        // The event handlers' workers; their consumers (and what they delivered) are the
        // events service's.
        if plugins.inner.host.events.is_some() {
            for (plugin, tenant_id) in plugins.inner.host.store.plugin_subscriptions().await? {
                plugins.start_worker(&plugin, &tenant_id);
            }
        }
        Ok(plugins)
    }

    fn read_installed(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Installed>> {
        self.inner
            .installed
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn write_installed(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Installed>> {
        self.inner
            .installed
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn component_path(&self, sha256: &str) -> PathBuf {
        self.inner
            .dir
            .join("components")
            .join(format!("{sha256}.wasm"))
    }

    /// The compiled form's file: keyed by the component's hash and by the engine (wasmtime's
    /// version and settings), so an upgraded Hearth compiles again instead of loading what it
    /// cannot run.
    fn compiled_path(&self, sha256: &str) -> PathBuf {
        let engine = &self.inner.engine_key;
        self.inner
            .dir
            .join("compiled")
            .join(format!("{sha256}-{engine}.cwasm"))
    }

    /// Compiles (or loads the compiled form of) a component, checks its imports against the
    /// manifest, pre-links it and asks it for its tools; then keeps the component given in
    /// `bytes` and the compiled form on disk.
    async fn load(
        &self,
        manifest: Manifest,
        sha256: &str,
        bytes: Option<&[u8]>,
        config: &str,
    ) -> Result<Loaded, PluginError> {
        let runtime = &self.inner.runtime;
        let compiled = self.compiled_path(sha256);
        let (component, compiled_now) = match load_compiled(&runtime.engine, &compiled) {
            Some(component) => (component, false),
            None => {
                let bytes = match bytes {
                    Some(bytes) => bytes.to_vec(),
                    None => std::fs::read(self.component_path(sha256))?,
                };
                let engine = runtime.engine.clone();
                let component =
                    tokio::task::spawn_blocking(move || Component::new(&engine, &bytes))
                        .await
                        .map_err(|error| PluginError::Runtime(error.to_string()))?
                        .map_err(|error| PluginError::InvalidComponent(format!("{error:#}")))?;
                (component, true)
            }
        };
        let component_type = component.component_type();
        imports::check(
            &manifest,
            component_type
                .imports(&runtime.engine)
                .map(|(name, _)| name),
        )?;
        let instance_pre = runtime
            .linker
            .instantiate_pre(&component)
            .map_err(|error| PluginError::InvalidComponent(format!("{error:#}")))?;
        let pre = PluginPre::new(instance_pre).map_err(|error| {
            PluginError::InvalidComponent(format!(
                "it does not export hearth:plugin/guest: {error:#}"
            ))
        })?;
        let guest = Arc::new(GuestIdentity::new(&manifest, config));
        let loaded = Loaded::new(runtime, &self.inner.host, manifest, pre, guest).await?;
        // Only a version that loaded is kept: its component (when it came with the request)
        // and its compiled form, a cache (when it cannot be written, the next start compiles
        // again).
        if let Some(bytes) = bytes {
            write_atomically(&self.component_path(sha256), bytes)?;
        }
        if compiled_now {
            match component.serialize() {
                Ok(serialized) => {
                    if let Err(error) = write_atomically(&compiled, &serialized) {
                        tracing::warn!(%error, "a compiled plugin could not be cached");
                    }
                }
                Err(error) => tracing::warn!(%error, "a compiled plugin could not be serialized"),
            }
        }
        Ok(loaded)
    }

    /// Installs a plugin from its manifest (TOML) and component. Refused, with nothing
    /// written, when the manifest is invalid, the component imports what the manifest does
    /// not grant, or a plugin of that name is installed.
    pub async fn install(
        &self,
        manifest_text: &str,
        component: &[u8],
        signature: Option<&str>,
    ) -> Result<PluginInfo, PluginError> {
        let (manifest, sha256, signed_by) = self.accept(manifest_text, component, signature)?;
        let _changes = self.inner.changes.lock().await;
        if self.read_installed().contains_key(&manifest.name) {
            return Err(PluginError::AlreadyInstalled(manifest.name));
        }
        let loaded = self
            .load(manifest.clone(), &sha256, Some(component), "{}")
            .await?;
        let now_ms = hearth_time::now_ms();
        let row = PluginRow {
            name: manifest.name.clone(),
            enabled: true,
            disabled_reason: None,
            version: manifest.version.clone(),
            sha256,
            manifest: manifest_text.to_string(),
            signed_by,
            previous_version: None,
            previous_sha256: None,
            previous_manifest: None,
            previous_signed_by: None,
            config: "{}".to_string(),
            installed_at_ms: now_ms,
            updated_at_ms: now_ms,
        };
        if !self.inner.host.store.put_plugin(&row, false).await? {
            return Err(PluginError::AlreadyInstalled(manifest.name));
        }
        tracing::info!(plugin = %row.name, version = %row.version, "plugin installed");
        let installed = Installed {
            row,
            current: Arc::new(loaded),
        };
        let info = info(&installed);
        self.write_installed().insert(manifest.name, installed);
        Ok(info)
    }

    /// Replaces plugin `name`'s version (the manifest must name it): calls from now on go to
    /// the new one, calls in flight finish on the old; the old one is kept for
    /// [`Plugins::rollback`].
    pub async fn upgrade(
        &self,
        name: &str,
        manifest_text: &str,
        component: &[u8],
        signature: Option<&str>,
    ) -> Result<PluginInfo, PluginError> {
        let (manifest, sha256, signed_by) = self.accept(manifest_text, component, signature)?;
        if manifest.name != name {
            return Err(PluginError::InvalidManifest {
                field: "name".to_string(),
                message: format!(
                    "the manifest names plugin {:?}, not {name:?}",
                    manifest.name
                ),
            });
        }
        let _changes = self.inner.changes.lock().await;
        let current = self.row(&manifest.name)?;
        manifest.check_config(&config_value(&current.config))?;
        let loaded = self
            .load(manifest.clone(), &sha256, Some(component), &current.config)
            .await?;
        let row = PluginRow {
            version: manifest.version.clone(),
            sha256,
            manifest: manifest_text.to_string(),
            signed_by,
            previous_version: Some(current.version),
            previous_sha256: Some(current.sha256),
            previous_manifest: Some(current.manifest),
            previous_signed_by: current.signed_by.clone(),
            updated_at_ms: hearth_time::now_ms(),
            ..current
        };
        self.replace(row, loaded).await
    }

    /// What every new version passes before anything is compiled: a valid manifest, a
    /// component within the size limit, and a signature the server accepts. Returns the
    /// manifest, the component's sha256 and the key that signed it.
    fn accept(
        &self,
        manifest_text: &str,
        component: &[u8],
        signature: Option<&str>,
    ) -> Result<(Manifest, String, Option<String>), PluginError> {
        let manifest = Manifest::parse(manifest_text)?;
        check_size(component)?;
        let sha256 = sha256_hex(component);
        let signed_by = self.check_signature(manifest_text, &sha256, signature)?;
        Ok((manifest, sha256, signed_by))
    }

    /// The trusted key a signature is by; `None` for an unsigned plugin where those are
    /// allowed.
    fn check_signature(
        &self,
        manifest_text: &str,
        sha256: &str,
        signature: Option<&str>,
    ) -> Result<Option<String>, PluginError> {
        match signature {
            Some(signature) => self
                .inner
                .trusted_keys
                .verify(signature, manifest_text, sha256)
                .map(Some),
            None if self.inner.allow_unsigned => Ok(None),
            None => Err(PluginError::InvalidSignature(
                "this server installs signed plugins only: sign it with `hearth plugins sign` \
                 by a key in plugins.trusted_keys (or set plugins.allow_unsigned)"
                    .to_string(),
            )),
        }
    }

    /// Returns a plugin to the version it had before its last upgrade (and keeps the one it
    /// leaves, so a second rollback undoes the first).
    pub async fn rollback(&self, name: &str) -> Result<PluginInfo, PluginError> {
        let _changes = self.inner.changes.lock().await;
        let current = self.row(name)?;
        let (Some(version), Some(sha256), Some(manifest_text)) = (
            current.previous_version.clone(),
            current.previous_sha256.clone(),
            current.previous_manifest.clone(),
        ) else {
            return Err(PluginError::NoPreviousVersion(name.to_string()));
        };
        let manifest = Manifest::parse(&manifest_text)?;
        manifest.check_config(&config_value(&current.config))?;
        let loaded = self.load(manifest, &sha256, None, &current.config).await?;
        let row = PluginRow {
            version,
            sha256,
            manifest: manifest_text,
            signed_by: current.previous_signed_by.clone(),
            previous_version: Some(current.version),
            previous_sha256: Some(current.sha256),
            previous_manifest: Some(current.manifest),
            previous_signed_by: current.signed_by.clone(),
            updated_at_ms: hearth_time::now_ms(),
            ..current
        };
        self.replace(row, loaded).await
    }

    async fn replace(&self, row: PluginRow, loaded: Loaded) -> Result<PluginInfo, PluginError> {
        self.inner.host.store.put_plugin(&row, true).await?;
        tracing::info!(plugin = %row.name, version = %row.version, "plugin version changed");
        let installed = Installed {
            row,
            current: Arc::new(loaded),
        };
        let info = info(&installed);
        self.write_installed()
            .insert(installed.row.name.clone(), installed);
        self.remove_unused_files();
        Ok(info)
    }

    /// Removes a plugin, its key-value store and its files.
    pub async fn remove(&self, name: &str) -> Result<(), PluginError> {
        let _changes = self.inner.changes.lock().await;
        let tenants = self.inner.host.store.plugin_subscribers(name).await?;
        if !self.inner.host.store.delete_plugin(name).await? {
            return Err(PluginError::NotFound(name.to_string()));
        }
        for tenant_id in tenants {
            self.stop_worker(name, &tenant_id);
            if let Some(events) = &self.inner.host.events {
                handlers::drop_consumer(events, name, &tenant_id).await;
            }
        }
        self.write_installed().remove(name);
        tracing::info!(plugin = %name, "plugin removed");
        self.remove_unused_files();
        Ok(())
    }

    /// Sets a plugin's configuration, checked against its manifest's `config_schema`; calls
    /// from now on read it.
    pub async fn configure(
        &self,
        name: &str,
        config: &serde_json::Value,
    ) -> Result<PluginInfo, PluginError> {
        let _changes = self.inner.changes.lock().await;
        let loaded = self.serving_any(name)?;
        loaded.manifest.check_config(config)?;
        let text = config.to_string();
        let now_ms = hearth_time::now_ms();
        if !self
            .inner
            .host
            .store
            .set_plugin_config(name, &text, now_ms)
            .await?
        {
            return Err(PluginError::NotFound(name.to_string()));
        }
        if let Some(installed) = self.write_installed().get_mut(name) {
            installed.row.config = text.clone();
            installed.row.updated_at_ms = now_ms;
            installed.current.guest.set_config(&text);
        }
        self.get(name)
    }

    /// Enables or disables a plugin; enabling resets its breaker.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<PluginInfo, PluginError> {
        let reason = (!enabled).then_some("disabled by an administrator");
        self.change_enabled(name, enabled, reason).await?;
        self.get(name)
    }

    async fn change_enabled(
        &self,
        name: &str,
        enabled: bool,
        reason: Option<&str>,
    ) -> Result<(), PluginError> {
        let now_ms = hearth_time::now_ms();
        if !self
            .inner
            .host
            .store
            .set_plugin_enabled(name, enabled, reason, now_ms)
            .await?
        {
            return Err(PluginError::NotFound(name.to_string()));
        }
        if let Some(installed) = self.write_installed().get_mut(name) {
            installed.row.enabled = enabled;
            installed.row.disabled_reason = reason.map(str::to_string);
            installed.row.updated_at_ms = now_ms;
            installed
                .current
                .consecutive_stops
                .store(0, Ordering::Relaxed);
        }
        Ok(())
    }

    pub(crate) fn row(&self, name: &str) -> Result<PluginRow, PluginError> {
        self.read_installed()
            .get(name)
            .map(|installed| installed.row.clone())
            .ok_or_else(|| PluginError::NotFound(name.to_string()))
    }

    /// Deletes component and compiled files no installed version names.
    fn remove_unused_files(&self) {
        let used: Vec<String> = self
            .read_installed()
            .values()
            .flat_map(|installed| {
                [
                    Some(installed.row.sha256.clone()),
                    installed.row.previous_sha256.clone(),
                ]
            })
            .flatten()
            .collect();
        for folder in ["components", "compiled"] {
            let Ok(entries) = std::fs::read_dir(self.inner.dir.join(folder)) else {
                continue;
            };
            for entry in entries.flatten() {
                let file_name = entry.file_name().to_string_lossy().to_string();
                if !used
                    .iter()
                    .any(|sha256| file_name.starts_with(sha256.as_str()))
                {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }

    /// Every installed plugin, by name.
    pub fn list(&self) -> Vec<PluginInfo> {
        let installed = self.read_installed();
        let mut list: Vec<PluginInfo> = installed.values().map(info).collect();
        list.sort_by(|a, b| a.manifest.name.cmp(&b.manifest.name));
        list
    }

    pub fn get(&self, name: &str) -> Result<PluginInfo, PluginError> {
        self.read_installed()
            .get(name)
            .map(info)
            .ok_or_else(|| PluginError::NotFound(name.to_string()))
    }

    /// A plugin's latest log lines, oldest first.
    pub fn logs(&self, name: &str, limit: usize) -> Result<Vec<LogLine>, PluginError> {
        let installed = self.read_installed();
        let plugin = installed
            .get(name)
            .ok_or_else(|| PluginError::NotFound(name.to_string()))?;
        let logs = plugin
            .current
            .guest
            .logs
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let skip = logs.len().saturating_sub(limit);
        Ok(logs.iter().skip(skip).cloned().collect())
    }

    /// Whether a plugin takes calls: `NotFound` or `Disabled` (with the reason) when not.
    pub fn ensure_enabled(&self, name: &str) -> Result<(), PluginError> {
        self.serving(name).map(|_| ())
    }

    /// The serving version of an enabled plugin.
    fn serving(&self, name: &str) -> Result<Arc<Loaded>, PluginError> {
        let installed = self.read_installed();
        let plugin = installed
            .get(name)
            .ok_or_else(|| PluginError::NotFound(name.to_string()))?;
        if !plugin.row.enabled {
            return Err(PluginError::Disabled {
                name: name.to_string(),
                reason: plugin
                    .row
                    .disabled_reason
                    .clone()
                    .unwrap_or_else(|| "disabled".to_string()),
            });
        }
        Ok(plugin.current.clone())
    }

    /// Calls tool `tool` of plugin `plugin` with `arguments` (a JSON object as text) for a
    /// tenant.
    pub async fn call_tool(
        &self,
        plugin: &str,
        tool: &str,
        arguments: &str,
        tenant_id: &str,
    ) -> Result<ToolOutput, PluginError> {
        let loaded = self.serving(plugin)?;
        if !loaded.tools.iter().any(|spec| spec.name == tool) {
            return Err(PluginError::ToolNotFound {
                plugin: plugin.to_string(),
                tool: tool.to_string(),
            });
        }
        match serde_json::from_str::<serde_json::Value>(arguments) {
            Ok(serde_json::Value::Object(_)) => {}
            _ => {
                return Err(PluginError::InvalidArguments {
                    field: "arguments".into(),
                    message: "a tool's arguments are a JSON object".into(),
                });
            }
        }
        let request = Request::Tool {
            name: tool.to_string(),
            arguments: arguments.to_string(),
        };
        let started = Instant::now();
        let answer = self.call(&loaded, tenant_id, request, started).await?;
        let Answer::Tool(result) = answer else {
            unreachable!("a tool request answers a tool result")
        };
        let duration = started.elapsed();
        result
            .map(|output| ToolOutput { output, duration })
            .map_err(PluginError::ToolFailed)
    }

    /// Delivers one event to a plugin's handler; an error means it should be delivered again.
    pub async fn handle_event(
        &self,
        plugin: &str,
        event: GuestEvent,
        tenant_id: &str,
    ) -> Result<(), PluginError> {
        let loaded = self.serving(plugin)?;
        let started = Instant::now();
        match self
            .call(&loaded, tenant_id, Request::Event(event), started)
            .await?
        {
            Answer::Event(result) => result.map_err(PluginError::ToolFailed),
            _ => unreachable!("an event request answers an event result"),
        }
    }

    /// Runs a request, reports it, and trips the breaker on repeated stops.
    async fn call(
        &self,
        loaded: &Arc<Loaded>,
        tenant_id: &str,
        request: Request,
        started: Instant,
    ) -> Result<Answer, PluginError> {
        let result = loaded
            .call(&self.inner.runtime, &self.inner.host, tenant_id, request)
            .await;
        let outcome = match &result {
            Ok(Answer::Tool(Err(_)) | Answer::Event(Err(_))) => CallOutcome::GuestError,
            Ok(_) => CallOutcome::Ok,
            Err(PluginError::Stopped { reason, .. }) => CallOutcome::Stopped(*reason),
            Err(_) => CallOutcome::GuestError,
        };
        self.report(PluginEvent::Called {
            plugin: loaded.name().to_string(),
            tenant_id: tenant_id.to_string(),
            outcome,
            duration: started.elapsed(),
            memory_peak_bytes: loaded
                .guest
                .memory_peak
                .load(std::sync::atomic::Ordering::Relaxed) as u64,
        });
        match &result {
            Err(PluginError::Stopped {
                reason, message, ..
            }) => {
                loaded
                    .guest
                    .log("error", format!("call stopped ({reason}): {message}"));
                let stops = loaded.consecutive_stops.fetch_add(1, Ordering::Relaxed) + 1;
                if stops >= loaded.manifest.limits.failures_to_disable {
                    self.trip_breaker(loaded, stops, *reason).await;
                }
            }
            _ => loaded.consecutive_stops.store(0, Ordering::Relaxed),
        }
        result
    }

    async fn trip_breaker(&self, loaded: &Arc<Loaded>, stops: u32, reason: StopReason) {
        let name = loaded.name().to_string();
        // Only the version that failed: an upgrade since then starts with a clean record.
        let still_serving = self.read_installed().get(&name).is_some_and(|installed| {
            Arc::ptr_eq(&installed.current, loaded) && installed.row.enabled
        });
        if !still_serving {
            return;
        }
        let why = format!("{stops} calls in a row were stopped (the last: {reason})");
        tracing::warn!(plugin = %name, reason = %why, "plugin disabled by its breaker");
        if let Err(error) = self.change_enabled(&name, false, Some(&why)).await {
            tracing::error!(plugin = %name, %error, "a failing plugin could not be disabled");
            return;
        }
        self.report(PluginEvent::Disabled {
            plugin: name,
            reason: why,
        });
    }

    fn report(&self, event: PluginEvent) {
        if let Some(observer) = &self.inner.observer {
            observer(event);
        }
    }

    /// Sends a tenant's events on the plugin's `subscribe` patterns to its handler, from now
    /// on. Subscribing again changes nothing.
    pub async fn subscribe(&self, name: &str, tenant_id: &str) -> Result<(), PluginError> {
        let _changes = self.inner.changes.lock().await;
        let loaded = self.serving_any(name)?;
        let patterns = loaded.manifest.capabilities.subscribe.clone();
        if patterns.is_empty() {
            return Err(PluginError::InvalidArguments {
                field: "plugin".into(),
                message: format!(
                    "plugin {name} handles no events: its manifest subscribes to no topics"
                ),
            });
        }
        let Some(events) = self.inner.host.events.clone() else {
            return Err(PluginError::Runtime(
                "events are not enabled on this server".into(),
            ));
        };
        let now_ms = hearth_time::now_ms();
        if !self
            .inner
            .host
            .store
            .put_plugin_subscription(name, tenant_id, now_ms)
            .await?
        {
            return Ok(());
        }
        if let Err(error) = handlers::make_consumer(
            &events,
            name,
            tenant_id,
            &patterns,
            loaded.manifest.limits.timeout_ms,
        )
        .await
        {
            self.inner
                .host
                .store
                .delete_plugin_subscription(name, tenant_id)
                .await?;
            return Err(error);
        }
        self.start_worker(name, tenant_id);
        tracing::info!(plugin = %name, tenant = %tenant_id, "plugin subscribed to a tenant's events");
        Ok(())
    }

    /// Stops sending a tenant's events to a plugin; false when they were not sent.
    pub async fn unsubscribe(&self, name: &str, tenant_id: &str) -> Result<bool, PluginError> {
        let _changes = self.inner.changes.lock().await;
        self.serving_any(name)?;
        if !self
            .inner
            .host
            .store
            .delete_plugin_subscription(name, tenant_id)
            .await?
        {
            return Ok(false);
        }
        self.stop_worker(name, tenant_id);
        if let Some(events) = &self.inner.host.events {
            handlers::drop_consumer(events, name, tenant_id).await;
        }
        Ok(true)
    }

    /// Whether a tenant's events go to a plugin.
    pub async fn subscribed(&self, name: &str, tenant_id: &str) -> Result<bool, PluginError> {
        self.serving_any(name)?;
        let tenants = self.inner.host.store.plugin_subscribers(name).await?;
        Ok(tenants.iter().any(|tenant| tenant == tenant_id))
    }

    fn start_worker(&self, plugin: &str, tenant_id: &str) {
        let Some(events) = self.inner.host.events.clone() else {
            return;
        };
        let stop = Arc::new(AtomicBool::new(false));
        handlers::spawn_worker(
            &self.inner,
            events,
            plugin.to_string(),
            tenant_id.to_string(),
            stop.clone(),
        );
        let previous = self
            .inner
            .workers
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert((plugin.to_string(), tenant_id.to_string()), stop);
        if let Some(previous) = previous {
            previous.store(true, Ordering::Relaxed);
        }
    }

    fn stop_worker(&self, plugin: &str, tenant_id: &str) {
        let stop = self
            .inner
            .workers
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(&(plugin.to_string(), tenant_id.to_string()));
        if let Some(stop) = stop {
            stop.store(true, Ordering::Relaxed);
        }
    }

    /// The serving version of a plugin, enabled or not.
    fn serving_any(&self, name: &str) -> Result<Arc<Loaded>, PluginError> {
        self.read_installed()
            .get(name)
            .map(|installed| installed.current.clone())
            .ok_or_else(|| PluginError::NotFound(name.to_string()))
    }

    /// Makes up to `count` instances of a plugin ahead of its calls (bounded by its
    /// `max_instances`), so the first calls after a start or an upgrade find them warm.
    /// Returns how many are idle now.
    pub async fn prewarm(&self, name: &str, count: usize) -> Result<usize, PluginError> {
        let loaded = self.serving_any(name)?;
        loaded
            .prewarm(&self.inner.runtime, &self.inner.host, count)
            .await
    }

    /// Every tool of every enabled plugin, as (plugin, tool).
    pub fn tools(&self) -> Vec<(String, ToolSpec)> {
        let installed = self.read_installed();
        let mut tools: Vec<(String, ToolSpec)> = installed
            .values()
            .filter(|plugin| plugin.row.enabled)
            .flat_map(|plugin| {
                plugin
                    .current
                    .tools
                    .iter()
                    .map(|tool| (plugin.row.name.clone(), tool.clone()))
            })
            .collect();
        tools.sort_by(|a, b| (&a.0, &a.1.name).cmp(&(&b.0, &b.1.name)));
        tools
    }
}

fn info(installed: &Installed) -> PluginInfo {
    PluginInfo {
        manifest: installed.current.manifest.clone(),
        sha256: installed.row.sha256.clone(),
        signed_by: installed.row.signed_by.clone(),
        enabled: installed.row.enabled,
        disabled_reason: installed.row.disabled_reason.clone(),
        previous_version: installed.row.previous_version.clone(),
        tools: installed.current.tools.clone(),
        idle_instances: installed.current.idle_instances(),
        config: config_value(&installed.row.config),
        installed_at_ms: installed.row.installed_at_ms,
        updated_at_ms: installed.row.updated_at_ms,
    }
}

/// A stored configuration as JSON (`{}` if the row's text is not JSON, which the store never
/// writes).
fn config_value(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::json!({}))
}

fn check_size(component: &[u8]) -> Result<(), PluginError> {
    if component.len() > MAX_COMPONENT_BYTES {
        return Err(PluginError::InvalidComponent(format!(
            "a component is at most {MAX_COMPONENT_BYTES} bytes"
        )));
    }
    Ok(())
}

/// A short hex key of what compiled code depends on: wasmtime's version and the engine's
/// settings (two engines with the same key can load each other's compiled components).
fn engine_key(engine: &wasmtime::Engine) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Loads a compiled component this engine wrote earlier; `None` (compile again) when there is
/// none or it does not fit this engine.
fn load_compiled(engine: &wasmtime::Engine, path: &Path) -> Option<Component> {
    if !path.exists() {
        return None;
    }
    // SAFETY: wasmtime runs deserialized code without verifying it, so the file must be one
    // that `Component::serialize` wrote; only this service writes into `compiled/` (inside
    // the data directory, which Hearth owns), and wasmtime checks the file's engine and
    // version header before using it.
    match unsafe { Component::deserialize_file(engine, path) } {
        Ok(component) => Some(component),
        Err(error) => {
            tracing::info!(path = %path.display(), %error, "a cached compiled plugin does not fit this engine; compiling again");
            None
        }
    }
}

/// Writes a file whole or not at all (a temporary file renamed into place).
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), std::io::Error> {
    let temporary = path.with_extension("partial");
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

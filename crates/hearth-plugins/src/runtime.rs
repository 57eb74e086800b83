//! The sandbox: one wasmtime engine for every plugin (the component model, epoch interruption,
//! the pooling allocator), the state each instance's store carries, the host interfaces a
//! plugin imports, and the limits enforced inside every call.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hearth_events::{Events, Pattern, Publish, Topic};
use hearth_store::Store;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter,
    UpdateDeadline,
};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::PluginError;
use crate::error::StopReason;
use crate::manifest::{MAX_MEMORY_MIB, Manifest};

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "plugin",
        imports: { default: async },
        exports: { default: async },
    });
}

use bindings::hearth::plugin::{config, events, http, kv, log, memory, models, secrets, types};

/// How often the engine's epoch advances: the granularity of the time limits, and how often a
/// computing guest yields its thread to other work.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);
/// The longest key a plugin may store.
pub const MAX_KV_KEY_BYTES: usize = 512;
/// The largest value a plugin may store.
pub const MAX_KV_VALUE_BYTES: usize = 1 << 20;
/// The most keys one plugin may hold for one tenant.
pub const MAX_KV_KEYS: u64 = 10_000;
/// The largest request body a plugin may send, and response body it may read.
pub const MAX_HTTP_REQUEST_BYTES: usize = 1 << 20;
pub const MAX_HTTP_RESPONSE_BYTES: usize = 4 << 20;
/// Plugins' outbound requests, as the egress guard names them in its refusals.
pub(crate) const EGRESS: hearth_egress::Egress = hearth_egress::Egress {
    who: "plugins",
    setting: "plugins.allow_internal_hosts",
};
/// The most documents one memory call may store or remove, and hits one search may ask for.
pub const MAX_MEMORY_BATCH: usize = 100;
/// Log lines kept in memory per plugin.
const LOG_LINES_KEPT: usize = 1_000;
/// The most table elements an instance may grow to.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// The engine, the linker every plugin is instantiated with, and the clock behind the limits.
pub(crate) struct Runtime {
    pub engine: Engine,
    pub linker: Linker<GuestState>,
    ticking: Arc<AtomicBool>,
}

impl Runtime {
    /// An engine whose pool holds at most `max_instances` instances at once (busy and idle).
    pub fn new(max_instances: u32) -> Result<Runtime, PluginError> {
        let runtime_error = |error: wasmtime::Error| PluginError::Runtime(error.to_string());
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // A Rust component is a few core instances (its code and wit-component's shims), with
        // one memory and a few tables; the pool reserves address space for all of them at start
        // and reuses the slots, so a new instance costs microseconds.
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(max_instances);
        pool.total_core_instances(max_instances.saturating_mul(8));
        pool.total_memories(max_instances.saturating_mul(2));
        pool.total_tables(max_instances.saturating_mul(8));
        pool.total_stacks(max_instances);
        pool.max_memory_size((MAX_MEMORY_MIB << 20) as usize);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(runtime_error)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(runtime_error)?;
        bindings::Plugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(runtime_error)?;

        let ticking = Arc::new(AtomicBool::new(true));
        let (clock_engine, clock_ticking) = (engine.clone(), ticking.clone());
        thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while clock_ticking.load(Ordering::Relaxed) {
                    thread::sleep(EPOCH_TICK);
                    clock_engine.increment_epoch();
                }
            })
            .map_err(PluginError::Io)?;
        Ok(Runtime {
            engine,
            linker,
            ticking,
        })
    }

    /// A store for one instance of a plugin: an empty WASI context, the plugin's memory limit,
    /// and the epoch check that stops a guest computing past its call's deadline.
    pub fn new_store(
        &self,
        guest: &Arc<GuestIdentity>,
        host: &Arc<HostServices>,
    ) -> wasmtime::Store<GuestState> {
        // Nothing inherited: no environment, arguments, directories or network; stdin is
        // closed and stdout/stderr go nowhere.
        let wasi = WasiCtxBuilder::new().build();
        let state = GuestState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryLimit {
                max_bytes: guest.memory_bytes,
                exceeded: false,
                peak: guest.memory_peak.clone(),
            },
            guest: guest.clone(),
            host: host.clone(),
            call: CallState::idle(),
        };
        let mut store = wasmtime::Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory);
        store.epoch_deadline_callback(|mut context| {
            let call = &mut context.data_mut().call;
            if Instant::now() >= call.deadline {
                call.stopped = Some(StopReason::Cpu);
                return Err(wasmtime::Error::msg(
                    "the call's time ran out while the plugin was computing",
                ));
            }
            Ok(UpdateDeadline::Yield(1))
        });
        store
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticking.store(false, Ordering::Relaxed);
    }
}

/// One line of a plugin's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub time_ms: i64,
    pub level: &'static str,
    pub message: String,
}

/// Who an instance belongs to and what it was granted, shared by all its instances.
pub(crate) struct GuestIdentity {
    pub name: String,
    pub memory_bytes: usize,
    pub publish: Vec<Pattern>,
    /// Origins its HTTP requests may go to.
    pub http: Vec<String>,
    /// What it may do: memory collections and secret names, as its manifest declares them.
    pub capabilities: crate::manifest::Capabilities,
    /// The largest linear memory any of its instances grew to (bytes).
    pub memory_peak: Arc<std::sync::atomic::AtomicUsize>,
    pub logs: Mutex<VecDeque<LogLine>>,
    /// The configuration as the guest reads it (JSON text); replaced when an admin sets one.
    config: std::sync::RwLock<Arc<str>>,
}

impl GuestIdentity {
    pub fn new(manifest: &Manifest, config: &str) -> GuestIdentity {
        GuestIdentity {
            config: std::sync::RwLock::new(Arc::from(config)),
            name: manifest.name.clone(),
            memory_bytes: manifest.limits.memory_bytes as usize,
            // Validated with the manifest.
            publish: manifest
                .capabilities
                .publish
                .iter()
                .filter_map(|pattern| Pattern::parse(pattern).ok())
                .collect(),
            http: manifest.capabilities.http.clone(),
            capabilities: manifest.capabilities.clone(),
            memory_peak: Arc::default(),
            logs: Mutex::new(VecDeque::new()),
        }
    }

    pub fn config(&self) -> Arc<str> {
        self.config
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    pub fn set_config(&self, config: &str) {
        *self
            .config
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = Arc::from(config);
    }

    pub fn log(&self, level: &'static str, message: String) {
        tracing::debug!(plugin = %self.name, level, message = %message, "plugin log");
        let line = LogLine {
            time_ms: hearth_time::now_ms(),
            level,
            message,
        };
        let mut logs = self
            .logs
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if logs.len() == LOG_LINES_KEPT {
            logs.pop_front();
        }
        logs.push_back(line);
    }
}

/// What the host interfaces reach: the store (key-value), the events service (publish) and an
/// HTTP client behind the egress guard.
pub(crate) struct HostServices {
    pub store: Store,
    pub events: Option<Arc<Events>>,
    pub http: reqwest::Client,
    pub allow_internal_hosts: bool,
    pub memory: Option<Arc<hearth_memory::Memory>>,
    /// The models behind the `models` capability, given by the server once it runs.
    pub models: std::sync::OnceLock<Arc<dyn crate::ModelHost>>,
}

/// The call an instance is serving.
pub(crate) struct CallState {
    pub tenant_id: String,
    pub deadline: Instant,
    /// Set when the host stopped the guest (the epoch check).
    pub stopped: Option<StopReason>,
}

impl CallState {
    fn idle() -> CallState {
        CallState {
            tenant_id: String::new(),
            deadline: Instant::now(),
            stopped: None,
        }
    }

    pub fn new(tenant_id: &str, deadline: Instant) -> CallState {
        CallState {
            tenant_id: tenant_id.to_string(),
            deadline,
            stopped: None,
        }
    }

    /// The state of a new call on a reused instance (the tenant's buffer kept).
    pub fn start(&mut self, tenant_id: &str, deadline: Instant) {
        self.tenant_id.clear();
        self.tenant_id.push_str(tenant_id);
        self.deadline = deadline;
        self.stopped = None;
    }
}

/// Traps growth past the plugin's memory limit, remembering that it did.
pub(crate) struct MemoryLimit {
    max_bytes: usize,
    pub exceeded: bool,
    /// The plugin version's largest linear memory so far, over all its instances.
    peak: Arc<std::sync::atomic::AtomicUsize>,
}

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.exceeded = true;
            return Err(wasmtime::Error::msg(format!(
                "the plugin asked for {desired} bytes of memory; its limit is {}",
                self.max_bytes
            )));
        }
        self.peak.fetch_max(desired, Ordering::Relaxed);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The data of one instance's store.
pub(crate) struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub memory: MemoryLimit,
    guest: Arc<GuestIdentity>,
    host: Arc<HostServices>,
    pub call: CallState,
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for GuestState {}

impl config::Host for GuestState {
    async fn get(&mut self) -> String {
        self.guest.config().to_string()
    }
}

impl log::Host for GuestState {
    async fn write(&mut self, level: log::Level, message: String) {
        let level = match level {
            log::Level::Debug => "debug",
            log::Level::Info => "info",
            log::Level::Warn => "warn",
            log::Level::Error => "error",
        };
        self.guest.log(level, message);
    }
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KV_KEY_BYTES {
        return Err(format!("a key is 1 to {MAX_KV_KEY_BYTES} bytes"));
    }
    Ok(())
}

impl kv::Host for GuestState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, String> {
        check_key(&key)?;
        self.host
            .store
            .plugin_kv_get(&self.guest.name, &self.call.tenant_id, &key)
            .await
            .map_err(|error| format!("the key-value store failed: {error}"))
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        check_key(&key)?;
        if value.len() > MAX_KV_VALUE_BYTES {
            return Err(format!("a value is at most {MAX_KV_VALUE_BYTES} bytes"));
        }
        let written = self
            .host
            .store
            .plugin_kv_set(
                &self.guest.name,
                &self.call.tenant_id,
                &key,
                &value,
                MAX_KV_KEYS,
                hearth_time::now_ms(),
            )
            .await
            .map_err(|error| format!("the key-value store failed: {error}"))?;
        if !written {
            return Err(format!(
                "the store holds {MAX_KV_KEYS} keys already; delete some first"
            ));
        }
        Ok(())
    }

    async fn delete(&mut self, key: String) -> Result<(), String> {
        check_key(&key)?;
        self.host
            .store
            .plugin_kv_delete(&self.guest.name, &self.call.tenant_id, &key)
            .await
            .map_err(|error| format!("the key-value store failed: {error}"))
    }
}

impl events::Host for GuestState {
    async fn publish(&mut self, topic: String, payload: String) -> Result<String, String> {
        let parsed = Topic::parse(&topic).map_err(|error| format!("topic {topic:?}: {error}"))?;
        if !self
            .guest
            .publish
            .iter()
            .any(|pattern| pattern.matches(&parsed))
        {
            return Err(format!(
                "topic {topic:?} is not among this plugin's publish patterns"
            ));
        }
        let data = serde_json::from_str(&payload)
            .map_err(|error| format!("the payload is not JSON: {error}"))?;
        let Some(events) = &self.host.events else {
            return Err("events are not enabled on this server".to_string());
        };
        let publish = Publish {
            topic,
            data,
            idempotency_key: None,
        };
        let appended = events
            .publish(&self.call.tenant_id, vec![publish], "payload")
            .await
            .map_err(|error| error.to_string())?;
        Ok(appended
            .into_iter()
            .next()
            .map(|appended| appended.event.id)
            .unwrap_or_default())
    }
}

impl http::Host for GuestState {
    async fn fetch(&mut self, request: http::Request) -> Result<http::Response, String> {
        let url = hearth_egress::check_url(&request.url, self.host.allow_internal_hosts, EGRESS)?;
        let origin = crate::manifest::origin_of(url.as_str())?;
        if !self.guest.http.contains(&origin) {
            return Err(format!(
                "{origin} is not among this plugin's allowed origins (capabilities.http)"
            ));
        }
        let method = match request.method.to_ascii_uppercase().as_str() {
            "GET" => reqwest::Method::GET,
            "POST" => reqwest::Method::POST,
            "PUT" => reqwest::Method::PUT,
            "PATCH" => reqwest::Method::PATCH,
            "DELETE" => reqwest::Method::DELETE,
            "HEAD" => reqwest::Method::HEAD,
            other => {
                return Err(format!(
                    "method {other:?} is not one of GET, POST, PUT, PATCH, DELETE, HEAD"
                ));
            }
        };
        if request.body.len() > MAX_HTTP_REQUEST_BYTES {
            return Err(format!(
                "a request body is at most {MAX_HTTP_REQUEST_BYTES} bytes"
            ));
        }
        // Whatever is left of the call's time, at most; the call's own deadline stops it too.
        let left = self.call.deadline.saturating_duration_since(Instant::now());
        let mut builder = self.host.http.request(method, url).timeout(left);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let mut response = builder
            .body(request.body)
            .send()
            .await
            .map_err(|error| format!("the request failed: {error}"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| format!("reading the response failed: {error}"))?
        {
            if body.len() + chunk.len() > MAX_HTTP_RESPONSE_BYTES {
                return Err(format!(
                    "the response is over {MAX_HTTP_RESPONSE_BYTES} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(http::Response {
            status,
            headers,
            body,
        })
    }
}

impl GuestState {
    /// The memory service, once the plugin may touch `collection` (writing when `write`).
    fn collection(
        &self,
        collection: &str,
        write: bool,
    ) -> Result<&Arc<hearth_memory::Memory>, String> {
        let capabilities = &self.guest.capabilities;
        let allowed = if write {
            capabilities.writes_collection(collection)
        } else {
            capabilities.reads_collection(collection)
        };
        if !allowed {
            let capability = if write { "memory_write" } else { "memory_read" };
            return Err(format!(
                "collection {collection:?} is not among this plugin's {capability} collections"
            ));
        }
        self.host
            .memory
            .as_ref()
            .ok_or_else(|| "memory is not enabled on this server".to_string())
    }
}

fn memory_error(error: hearth_memory::MemoryError) -> String {
    error.to_string()
}

fn document_of(document: hearth_memory::Document) -> memory::Document {
    memory::Document {
        id: document.id,
        text: document.text,
        metadata: serde_json::Value::Object(document.metadata).to_string(),
        embedding: document.embedding,
    }
}

impl memory::Host for GuestState {
    async fn search(
        &mut self,
        collection: String,
        query: String,
        mode: String,
        limit: u32,
    ) -> Result<Vec<memory::Hit>, String> {
        let memory = self.collection(&collection, false)?;
        let limit = limit as usize;
        if !(1..=MAX_MEMORY_BATCH).contains(&limit) {
            return Err(format!("a search asks for 1 to {MAX_MEMORY_BATCH} hits"));
        }
        let request = match mode.as_str() {
            "keyword" => hearth_memory::SearchRequest::keyword(query, limit),
            "vector" => hearth_memory::SearchRequest::text(query, limit),
            "hybrid" => hearth_memory::SearchRequest::hybrid(query, limit),
            other => {
                return Err(format!(
                    "mode {other:?} is not one of keyword, vector, hybrid"
                ));
            }
        };
        let results = memory
            .search(&self.call.tenant_id, &collection, &request)
            .await
            .map_err(memory_error)?;
        Ok(results
            .hits
            .into_iter()
            .map(|hit| memory::Hit {
                id: hit.document.id,
                score: hit.score,
                text: hit.document.text,
                metadata: serde_json::Value::Object(hit.document.metadata).to_string(),
            })
            .collect())
    }

    async fn upsert(
        &mut self,
        collection: String,
        documents: Vec<memory::Document>,
    ) -> Result<Vec<String>, String> {
        let memory = self.collection(&collection, true)?;
        if documents.len() > MAX_MEMORY_BATCH {
            return Err(format!("at most {MAX_MEMORY_BATCH} documents per upsert"));
        }
        let mut new = Vec::with_capacity(documents.len());
        for (position, document) in documents.into_iter().enumerate() {
            let metadata: serde_json::Value = if document.metadata.trim().is_empty() {
                serde_json::Value::Object(Default::default())
            } else {
                serde_json::from_str(&document.metadata).map_err(|error| {
                    format!("documents[{position}].metadata is not JSON: {error}")
                })?
            };
            new.push(hearth_memory::NewDocument {
                id: (!document.id.is_empty()).then_some(document.id),
                text: document.text,
                metadata,
                embedding: document.embedding,
            });
        }
        let upserted = memory
            .upsert_documents(&self.call.tenant_id, &collection, new)
            .await
            .map_err(memory_error)?;
        Ok(upserted.ids)
    }

    async fn get(
        &mut self,
        collection: String,
        id: String,
    ) -> Result<Option<memory::Document>, String> {
        let memory = self.collection(&collection, false)?;
        let found = memory
            .get_documents(&self.call.tenant_id, &collection, &[id], false)
            .await
            .map_err(memory_error)?;
        Ok(found.into_iter().next().map(document_of))
    }

    async fn delete(&mut self, collection: String, ids: Vec<String>) -> Result<u32, String> {
        let memory = self.collection(&collection, true)?;
        if ids.len() > MAX_MEMORY_BATCH {
            return Err(format!("at most {MAX_MEMORY_BATCH} ids per delete"));
        }
        let deleted = memory
            .delete_documents(
                &self.call.tenant_id,
                &collection,
                &hearth_memory::DocumentSelector::Ids(ids),
            )
            .await
            .map_err(memory_error)?;
        Ok(u32::try_from(deleted).unwrap_or(u32::MAX))
    }
}

impl secrets::Host for GuestState {
    async fn get(&mut self, name: String) -> Option<String> {
        if !self.guest.capabilities.secrets.contains(&name) {
            self.guest.log(
                "warn",
                format!("asked for secret {name:?}, which the manifest does not declare"),
            );
            return None;
        }
        match self.host.store.plugin_secret(&self.guest.name, &name).await {
            Ok(value) => value,
            Err(error) => {
                self.guest
                    .log("error", format!("reading secret {name:?} failed: {error}"));
                None
            }
        }
    }
}

impl GuestState {
    /// The model host, once the plugin may use `model`.
    fn model_host(&self, model: &str) -> Result<Arc<dyn crate::ModelHost>, String> {
        if !self
            .guest
            .capabilities
            .models
            .iter()
            .any(|declared| declared == model)
        {
            return Err(format!(
                "model {model:?} is not among this plugin's models (capabilities.models)"
            ));
        }
        self.host
            .models
            .get()
            .cloned()
            .ok_or_else(|| "models are not served to plugins on this server".to_string())
    }
}

impl models::Host for GuestState {
    async fn chat(&mut self, request: String) -> Result<String, String> {
        let request: serde_json::Value = serde_json::from_str(&request)
            .map_err(|error| format!("the chat request is not JSON: {error}"))?;
        let model = request["model"]
            .as_str()
            .ok_or("the chat request names no `model`")?
            .to_string();
        let host = self.model_host(&model)?;
        if request.get("stream").and_then(serde_json::Value::as_bool) == Some(true) {
            return Err("a plugin's chat is not streamed: leave out `stream`".to_string());
        }
        if request.get("plugins").is_some() {
            return Err("a plugin's chat cannot offer plugin tools".to_string());
        }
        let answer = host.chat(&self.call.tenant_id, request).await?;
        Ok(answer.to_string())
    }

    async fn embed(&mut self, model: String, input: Vec<String>) -> Result<Vec<Vec<f32>>, String> {
        let host = self.model_host(&model)?;
        if input.is_empty() || input.len() > MAX_MEMORY_BATCH {
            return Err(format!("embed 1 to {MAX_MEMORY_BATCH} texts at a time"));
        }
        host.embed(&self.call.tenant_id, &model, input).await
    }
}

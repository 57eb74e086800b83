//! What handlers and middleware share: runtime-adjustable settings, readiness, the store and
//! the metrics handle.

use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

use crate::readiness::Readiness;

/// Settings a running server applies without a restart (config hot reload).
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeSettings {
    pub max_body_bytes: usize,
    /// The body limit of file uploads (`POST /v1/files`), which carry whole files.
    pub max_upload_bytes: usize,
    pub request_timeout: Duration,
}

/// Settings fixed for the life of the router.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticSettings {
    /// Empty: no cross-origin access; `["*"]`: any origin.
    pub cors_allowed_origins: Vec<String>,
    pub compression: bool,
    /// Where `/api/pull` resolves `hf:` references (the binary passes `HF_ENDPOINT`).
    pub huggingface_endpoint: String,
    /// How long a stored response (Responses API) is kept (`responses.ttl_days`).
    pub response_ttl: std::time::Duration,
    /// Most stored responses one tenant keeps (`responses.max_per_tenant`).
    pub responses_per_tenant: u64,
}

impl Default for StaticSettings {
    fn default() -> Self {
        StaticSettings {
            cors_allowed_origins: Vec::new(),
            compression: false,
            huggingface_endpoint: hearth_models::HUGGING_FACE_ENDPOINT.to_string(),
            response_ttl: std::time::Duration::from_secs(30 * 24 * 3600),
            responses_per_tenant: 100_000,
        }
    }
}

/// What every handler and middleware gets. Cheap to clone (one reference count), because axum
/// clones the state for every extractor of every request.
#[derive(Clone)]
pub struct AppState(std::sync::Arc<SharedState>);

impl AppState {
    pub fn new(shared: SharedState) -> AppState {
        AppState(std::sync::Arc::new(shared))
    }

    /// A reference that does not keep the state alive (for services the state holds).
    pub fn downgrade(&self) -> std::sync::Weak<SharedState> {
        std::sync::Arc::downgrade(&self.0)
    }

    pub fn from_shared(shared: std::sync::Arc<SharedState>) -> AppState {
        AppState(shared)
    }
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct SharedState {
    pub runtime: watch::Receiver<RuntimeSettings>,
    pub settings: StaticSettings,
    pub readiness: Readiness,
    pub store: Option<hearth_store::Store>,
    /// Model serving; `None` on a server started without it (tests of the HTTP layer alone).
    pub inference: Option<std::sync::Arc<hearth_inference::Inference>>,
    /// Keys, limits and usage; `None` lets every request through (tests of the HTTP layer).
    pub gateway: Option<crate::gate::GatewayState>,
    /// Upstream providers and model routes; `None` serves local models only.
    pub routing: Option<std::sync::Arc<hearth_upstream::RoutingHandle>>,
    /// Collections and documents; `None` on a server started without them (the memory
    /// routes answer 503).
    pub memory: Option<std::sync::Arc<hearth_memory::Memory>>,
    /// Uploaded files (`/v1/files`); `None` answers 503.
    pub files: Option<hearth_memory::Files>,
    /// OpenAI's vector stores over memory and files; `None` answers 503.
    pub vector_stores: Option<hearth_memory::VectorStores>,
    /// Conversation memory (`memory.remember`); `None` refuses requests that ask for it.
    pub conversations: Option<hearth_memory::Conversations>,
    /// Knowledge graphs over memory; `None` answers 503.
    pub graphs: Option<hearth_graph::Graphs>,
    /// WebAssembly plugins; `None` answers 503.
    pub plugins: Option<hearth_plugins::Plugins>,
    /// Scheduled, triggered and dependent jobs; `None` answers 503.
    pub jobs: Option<hearth_jobs::Jobs>,
    /// Prompt templates; `None` answers 503 (and refuses requests that reference one).
    pub prompts: Option<hearth_prompts::Prompts>,
    /// Feature flags; `None` answers 503.
    pub flags: Option<hearth_flags::Flags>,
    /// Experiments on models and prompts; `None` answers 503 (and splits nothing).
    pub experiments: Option<hearth_experiments::Experiments>,
    /// Topics, the durable event log and live subscriptions; `None` answers 503.
    pub events: Option<std::sync::Arc<hearth_events::Events>>,
    /// Webhook endpoints fed by the events; `None` answers 503.
    pub webhooks: Option<std::sync::Arc<hearth_webhooks::Webhooks>>,
    /// Response caches; `None` when `cache.enabled` is off.
    pub cache: Option<crate::routes::cache::CacheState>,
    pub metrics: PrometheusHandle,
    pub started_at: Instant,
}

impl SharedState {
    /// The runtime settings in force for the request being handled.
    pub fn current(&self) -> RuntimeSettings {
        self.runtime.borrow().clone()
    }
}

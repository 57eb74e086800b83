//! The `models` capability's other side: whoever serves models (the server: its chat path and
//! its model pool) implements [`ModelHost`] and hands it to [`Plugins::set_model_host`]. The
//! plugin crate knows nothing of inference; the host checks the plugin may use the model.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::Plugins;

/// A host call's answer, or why it failed (told to the plugin as is).
pub type HostFuture<T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send>>;

/// Serves plugins' model calls, for the tenant whose call the plugin is serving.
pub trait ModelHost: Send + Sync {
    /// A chat completion: `request` is OpenAI's chat body; the answer is the completion's
    /// JSON as a client gets it.
    fn chat(&self, tenant_id: &str, request: serde_json::Value) -> HostFuture<serde_json::Value>;
    /// Embeddings of `input` by `model`.
    fn embed(&self, tenant_id: &str, model: &str, input: Vec<String>) -> HostFuture<Vec<Vec<f32>>>;
}

impl Plugins {
    /// Gives plugins their models; until then (and on a server without models), model calls
    /// fail with a message saying so. Set once: later calls are ignored.
    pub fn set_model_host(&self, host: Arc<dyn ModelHost>) {
        let _ = self.inner.host.models.set(host);
    }
}

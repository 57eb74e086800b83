//! The `models` capability of plugins, served by this server: a plugin's chat goes through
//! the same path as `/v1/chat/completions` (local models and routes alike; checked whole,
//! answered as the JSON a client gets; its tokens recorded as the calling tenant's usage,
//! route `plugin models.chat`) and its embeddings through the local model pool. Held
//! by the plugin service, it reaches the server's state weakly, so neither keeps the other
//! alive.

use std::sync::Weak;

use hearth_plugins::{HostFuture, ModelHost};
use serde_json::Value;

use crate::gate::{CallerUser, Meter};
use crate::state::{AppState, SharedState};

/// How usage rows name a plugin's chat.
const PLUGIN_CHAT_ROUTE: &str = "plugin models.chat";

pub struct ServerModels(Weak<SharedState>);

impl ServerModels {
    pub fn new(state: &AppState) -> ServerModels {
        ServerModels(state.downgrade())
    }

    fn state(&self) -> Result<AppState, String> {
        self.0
            .upgrade()
            .map(AppState::from_shared)
            .ok_or_else(|| "the server is stopping".to_string())
    }
}

impl ModelHost for ServerModels {
    fn chat(&self, tenant_id: &str, request: Value) -> HostFuture<Value> {
        let state = self.state();
        let tenant = tenant_id.to_string();
        Box::pin(async move {
            let state = state?;
            let meter = Meter::detached();
            let caller = CallerUser::default();
            let started = std::time::Instant::now();
            let answer =
                crate::routes::plugin_tools::chat_once(&state, &meter, (&tenant, &caller), request)
                    .await
                    .map_err(|error| error.message)?;
            // The tenant's usage and costs count what its plugins' chats read and wrote.
            if let Some(gateway) = &state.gateway {
                let status = match &answer {
                    Ok(_) => 200,
                    Err(response) => response.status().as_u16(),
                };
                meter.record_detached(
                    gateway,
                    &tenant,
                    PLUGIN_CHAT_ROUTE,
                    status,
                    started.elapsed(),
                );
            }
            match answer {
                Ok(answer) => Ok(answer),
                Err(response) => {
                    let status = response.status();
                    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
                        .await
                        .unwrap_or_default();
                    let message = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|error| error["error"]["message"].as_str().map(str::to_string))
                        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
                    Err(format!("the chat failed ({status}): {message}"))
                }
            }
        })
    }

    fn embed(
        &self,
        _tenant_id: &str,
        model: &str,
        input: Vec<String>,
    ) -> HostFuture<Vec<Vec<f32>>> {
        let state = self.state();
        let model = model.to_string();
        Box::pin(async move {
            let inference = state?
                .inference
                .clone()
                .ok_or("models are not served by this server")?;
            let (_, service) = inference
                .embedding_model(&model, None)
                .await
                .map_err(|error| error.to_string())?;
            let embeddings = service
                .embed(input)
                .await
                .map_err(|error| error.to_string())?;
            Ok(embeddings
                .items
                .into_iter()
                .map(|item| item.vector)
                .collect())
        })
    }
}

//! The one generation path that every generating endpoint shares (chat and text completions,
//! the Responses API, Ollama's chat and generate): a body bound for a route goes to the
//! route's upstreams, which may hand it back for a local model; a local request loads its
//! model and starts its choices, metered. Each endpoint only converts its wire shape into a
//! [`GenerationPlan`] and the events back into its answer.

use std::sync::Arc;

use axum::response::Response;
use hearth_engine::{EngineError, GenerationRequest, ModelHandle};
use hearth_inference::Inference;
use serde::de::DeserializeOwned;

use super::proxy::{self, Forwarded, Routed};
use crate::error::ApiError;
use crate::gate::{Meter, MeteredGeneration};
use crate::state::AppState;
use crate::wire::openai::GenerationPlan;

pub(crate) fn inference(state: &AppState) -> Result<Arc<Inference>, ApiError> {
    state
        .inference
        .clone()
        .ok_or_else(|| ApiError::unavailable("model serving is not configured on this server"))
}

/// Where a generating request goes.
pub(crate) enum Bound<R> {
    /// To a local model, as this request.
    Local(R),
    /// A route's upstream answered it; this is its answer, as the upstream sent it.
    Answered(Response),
}

/// Sorts a request body: a routed model's body is forwarded to the route's upstreams under
/// `endpoint` (the path under an upstream's base URL, `/chat/completions`), the rest is parsed
/// as a local request.
pub(crate) async fn route<R: DeserializeOwned>(
    state: &AppState,
    meter: &Meter,
    body: serde_json::Value,
    endpoint: &str,
) -> Result<Bound<R>, ApiError> {
    Ok(match Routed::resolve(state, body)? {
        Routed::Local(request) => Bound::Local(request),
        Routed::Upstream(forward) => match proxy::forward(state, meter, forward, endpoint).await? {
            Forwarded::Response(response) => Bound::Answered(response),
            Forwarded::Local(body) => Bound::Local(Forwarded::local_request(body)?),
        },
    })
}

/// A local generation under way: its choices' event streams, metered.
pub(crate) struct Started {
    pub inference: Arc<Inference>,
    /// The model that runs it, by its full reference.
    pub model: String,
    pub handle: ModelHandle,
    pub streams: Vec<MeteredGeneration>,
}

impl Started {
    /// An engine failure of this generation, as the API reports it (a failed model is
    /// reported to the pool).
    pub fn engine_error(&self, error: EngineError) -> ApiError {
        self.inference.engine_error(&self.model, error).into()
    }
}

/// A chat model loaded for a request, not yet generating.
pub(crate) struct Loaded {
    pub inference: Arc<Inference>,
    /// The model by its full reference.
    pub model: String,
    pub handle: ModelHandle,
}

/// Loads the model (`keep_alive` as the request gave it).
pub(crate) async fn load(
    state: &AppState,
    model: &str,
    keep_alive: Option<&serde_json::Value>,
) -> Result<Loaded, ApiError> {
    let keep_alive = crate::wire::ollama::keep_alive(keep_alive)?;
    let inference = inference(state)?;
    let (description, handle) = inference.chat_model(model, keep_alive).await?;
    Ok(Loaded {
        inference,
        model: description.reference.to_string(),
        handle,
    })
}

impl Loaded {
    /// Starts the plan's choices, metered under `requested` (the model as the request named
    /// it).
    pub async fn start(
        self,
        meter: &Meter,
        requested: &str,
        plan: &GenerationPlan,
    ) -> Result<Started, ApiError> {
        let streams = start_choices(
            &self.handle,
            &plan.request,
            plan.choices,
            (meter, requested),
        )
        .await
        .map_err(|error| self.inference.engine_error(&self.model, error))?;
        Ok(Started {
            inference: self.inference,
            model: self.model,
            handle: self.handle,
            streams,
        })
    }
}

/// Loads the model (`keep_alive` as the request gave it) and starts the plan's choices.
pub(crate) async fn start(
    state: &AppState,
    meter: &Meter,
    model: &str,
    keep_alive: Option<&serde_json::Value>,
    plan: &GenerationPlan,
) -> Result<Started, ApiError> {
    load(state, model, keep_alive)
        .await?
        .start(meter, model, plan)
        .await
}

/// Starts `choices` generations of the same request. Seeds differ per choice so that sampled
/// choices differ; a seeded request stays reproducible.
///
/// A constrained request compiles its grammar while it is queued (and the first one of a
/// model builds the vocabulary trie): that is blocking work, done off the async workers.
pub(crate) async fn start_choices(
    handle: &ModelHandle,
    request: &GenerationRequest,
    choices: usize,
    (meter, model): (&Meter, &str),
) -> Result<Vec<MeteredGeneration>, EngineError> {
    let streams = start_unmetered(handle, request, choices).await?;
    // Every choice reads the same prompt; it is counted once, as OpenAI does.
    meter.started(
        model,
        streams.first().map_or(0, |stream| stream.prompt_tokens()),
    );
    Ok(streams
        .into_iter()
        .map(|stream| MeteredGeneration::new(stream, meter.clone()))
        .collect())
}

async fn start_unmetered(
    handle: &ModelHandle,
    request: &GenerationRequest,
    choices: usize,
) -> Result<Vec<hearth_engine::GenerationStream>, EngineError> {
    let start = {
        let (handle, request) = (handle.clone(), request.clone());
        move || {
            (0..choices)
                .map(|index| {
                    let mut request = request.clone();
                    if let Some(seed) = request.sampling.seed {
                        request.sampling.seed = Some(seed.wrapping_add(index as u32));
                    }
                    handle.generate(request)
                })
                .collect()
        }
    };
    if request.constraint.is_none() {
        return start();
    }
    tokio::task::spawn_blocking(start)
        .await
        .unwrap_or(Err(EngineError::SchedulerStopped))
}

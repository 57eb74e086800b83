//! Experiments under `/v1/experiments`, in the caller's tenant: readers read them and their
//! results; admins define, start, pause, ramp, stop (a winner promoted) and remove them, each
//! change audited. Applications send feedback (`POST /v1/feedback`, members). And the split
//! itself: [`assign_request`] places a chat or response request in its target's running
//! experiment before the prompt is rendered and the model routed, rewriting the request into
//! the variant's model, prompt version and parameters; the gate records the exposure when the
//! answer ends.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use hearth_experiments::{Experiments, Target, Units};
use serde_json::{Value, json};

use super::audit::audit;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::gate::{Caller, ClientAddress, Meter, TenantScope};
use crate::state::AppState;
use crate::wire::admin::List;
use crate::wire::experiments::*;
use crate::wire::memory::Deleted;

/// The header an application names its own unit in (for experiments whose unit is `header`).
pub const UNIT_HEADER: &str = "x-hearth-unit";

fn experiments(state: &AppState) -> Result<&Experiments, ApiError> {
    state
        .experiments
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("experiments are not configured on this server"))
}

/// The tenant's experiments, by name.
#[utoipa::path(get, path = "/v1/experiments", tag = "experiments",
    responses((status = 200, description = "The experiments", body = List<ExperimentOut>)))]
pub async fn list_experiments(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
) -> Result<Json<List<ExperimentOut>>, ApiError> {
    let list = experiments(&state)?.list(&tenant);
    Ok(Json(List::of(list.into_iter().map(ExperimentOut::from))))
}

/// Defines an experiment, as a draft (it splits nothing until started).
#[utoipa::path(post, path = "/v1/experiments", tag = "experiments",
    request_body = ExperimentIn,
    responses(
        (status = 201, description = "The experiment", body = ExperimentOut),
        (status = 400, description = "A bad field (named in `param`)", body = ErrorBody),
        (status = 409, description = "A started experiment of that name exists", body = ErrorBody)))]
pub async fn create_experiment(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    ApiJson(request): ApiJson<ExperimentIn>,
) -> Result<(StatusCode, Json<ExperimentOut>), ApiError> {
    let Some(name) = request.name.clone() else {
        return Err(ApiError::bad_request("name the experiment").with_param("name"));
    };
    let spec = request.into_spec()?;
    let experiment = experiments(&state)?
        .define(&tenant, &name, spec, hearth_time::now_ms())
        .await?;
    audit(
        &state,
        &caller.actor(ip),
        &tenant,
        "experiment.define",
        &name,
        None,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(experiment.into())))
}

/// One experiment.
#[utoipa::path(get, path = "/v1/experiments/{experiment}", tag = "experiments",
    params(("experiment" = String, Path, description = "The experiment's name")),
    responses(
        (status = 200, description = "The experiment", body = ExperimentOut),
        (status = 404, description = "No such experiment", body = ErrorBody)))]
pub async fn get_experiment(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(name): Path<String>,
) -> Result<Json<ExperimentOut>, ApiError> {
    Ok(Json(experiments(&state)?.get(&tenant, &name)?.into()))
}

/// Defines an experiment or replaces a draft's definition.
#[utoipa::path(put, path = "/v1/experiments/{experiment}", tag = "experiments",
    params(("experiment" = String, Path, description = "The experiment's name")),
    request_body = ExperimentIn,
    responses(
        (status = 200, description = "The experiment", body = ExperimentOut),
        (status = 400, description = "A bad field (named in `param`)", body = ErrorBody),
        (status = 409, description = "The experiment has started", body = ErrorBody)))]
pub async fn put_experiment(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<ExperimentIn>,
) -> Result<Json<ExperimentOut>, ApiError> {
    if let Some(named) = &request.name
        && named != &name
    {
        return Err(ApiError::bad_request(format!(
            "the body names experiment {named} but the path {name}"
        ))
        .with_param("name"));
    }
    let spec = request.into_spec()?;
    let experiment = experiments(&state)?
        .define(&tenant, &name, spec, hearth_time::now_ms())
        .await?;
    audit(
        &state,
        &caller.actor(ip),
        &tenant,
        "experiment.define",
        &name,
        None,
    )
    .await?;
    Ok(Json(experiment.into()))
}

/// Ramps an experiment: new weights for some variants. Units already placed stay where
/// their variant's share did not shrink.
#[utoipa::path(patch, path = "/v1/experiments/{experiment}", tag = "experiments",
    params(("experiment" = String, Path, description = "The experiment's name")),
    request_body = WeightsIn,
    responses(
        (status = 200, description = "The experiment", body = ExperimentOut),
        (status = 400, description = "An unknown variant, or every weight 0", body = ErrorBody),
        (status = 404, description = "No such experiment", body = ErrorBody),
        (status = 409, description = "The experiment is stopped", body = ErrorBody)))]
pub async fn ramp_experiment(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<WeightsIn>,
) -> Result<Json<ExperimentOut>, ApiError> {
    let experiment = experiments(&state)?
        .set_weights(&tenant, &name, &request.weights, hearth_time::now_ms())
        .await?;
    let detail = json!({"weights": request.weights}).to_string();
    audit(
        &state,
        &caller.actor(ip),
        &tenant,
        "experiment.ramp",
        &name,
        Some(detail),
    )
    .await?;
    Ok(Json(experiment.into()))
}

/// Removes an experiment with its exposures and feedback.
#[utoipa::path(delete, path = "/v1/experiments/{experiment}", tag = "experiments",
    params(("experiment" = String, Path, description = "The experiment's name")),
    responses(
        (status = 200, description = "Removed", body = Deleted),
        (status = 404, description = "No such experiment", body = ErrorBody)))]
pub async fn delete_experiment(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(name): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    experiments(&state)?.delete(&tenant, &name).await?;
    audit(
        &state,
        &caller.actor(ip),
        &tenant,
        "experiment.remove",
        &name,
        None,
    )
    .await?;
    Ok(Json(Deleted {
        id: name,
        object: "experiment.deleted",
        deleted: true,
    }))
}

/// Starts a draft, or resumes a paused experiment.
#[utoipa::path(post, path = "/v1/experiments/{experiment}/start", tag = "experiments",
    params(("experiment" = String, Path, description = "The experiment's name")),
    responses(
        (status = 200, description = "The experiment", body = ExperimentOut),
        (status = 404, description = "No such experiment", body = ErrorBody),
        (status = 409, description = "It is running or stopped, or another experiment decides its target", body = ErrorBody)))]
pub async fn start_experiment(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(name): Path<String>,
) -> Result<Json<ExperimentOut>, ApiError> {
    let experiment = experiments(&state)?
        .start(&tenant, &name, hearth_time::now_ms())
        .await?;
    audit(
        &state,
        &caller.actor(ip),
        &tenant,
        "experiment.start",
        &name,
        None,
    )
    .await?;
    Ok(Json(experiment.into()))
}

/// Pauses a running experiment: its traffic goes as asked, its data stays.
#[utoipa::path(post, path = "/v1/experiments/{experiment}/pause", tag = "experiments",
    params(("experiment" = String, Path, description = "The experiment's name")),
    responses(
        (status = 200, description = "The experiment", body = ExperimentOut),
        (status = 404, description = "No such experiment", body = ErrorBody),
        (status = 409, description = "It is not running", body = ErrorBody)))]
pub async fn pause_experiment(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(name): Path<String>,
) -> Result<Json<ExperimentOut>, ApiError> {
    let experiment = experiments(&state)?
        .pause(&tenant, &name, hearth_time::now_ms())
        .await?;
    audit(
        &state,
        &caller.actor(ip),
        &tenant,
        "experiment.pause",
        &name,
        None,
    )
    .await?;
    Ok(Json(experiment.into()))
}

/// Stops an experiment. With a winner, the winner serves the whole target from now; for a
/// prompt target with `promote_label`, that label moves to the winner's prompt version.
#[utoipa::path(post, path = "/v1/experiments/{experiment}/stop", tag = "experiments",
    params(("experiment" = String, Path, description = "The experiment's name")),
    request_body = StopIn,
    responses(
        (status = 200, description = "The experiment", body = ExperimentOut),
        (status = 400, description = "No such variant", body = ErrorBody),
        (status = 404, description = "No such experiment", body = ErrorBody),
        (status = 409, description = "It is stopped already", body = ErrorBody)))]
pub async fn stop_experiment(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<StopIn>,
) -> Result<Json<ExperimentOut>, ApiError> {
    let service = experiments(&state)?;
    let experiment = service
        .stop(
            &tenant,
            &name,
            request.winner.as_deref(),
            hearth_time::now_ms(),
        )
        .await?;
    let mut detail = json!({"winner": request.winner});
    if let (Some(winner), Some(label), Target::Prompt(prompt)) = (
        experiment.winning_variant(),
        &experiment.spec.promote_label,
        &experiment.spec.target,
    ) && let Some(version) = winner.prompt_version
    {
        let prompts = state
            .prompts
            .as_ref()
            .ok_or_else(|| ApiError::unavailable("prompts are not configured on this server"))?;
        prompts
            .set_label(&tenant, prompt, label, version, hearth_time::now_ms())
            .await?;
        detail["promoted"] = json!({"prompt": prompt, "label": label, "version": version});
    }
    audit(
        &state,
        &caller.actor(ip),
        &tenant,
        "experiment.stop",
        &name,
        Some(detail.to_string()),
    )
    .await?;
    Ok(Json(experiment.into()))
}

/// The experiment's results so far: per variant and metric the mean over units, and against
/// the control the difference with its interval, p-value, always-valid interval and minimum
/// detectable effect; and the sample-ratio check.
#[utoipa::path(get, path = "/v1/experiments/{experiment}/results", tag = "experiments",
    params(("experiment" = String, Path, description = "The experiment's name")),
    responses(
        (status = 200, description = "The results", body = ResultsOut),
        (status = 404, description = "No such experiment", body = ErrorBody)))]
pub async fn experiment_results(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(name): Path<String>,
) -> Result<Json<ResultsOut>, ApiError> {
    let service = experiments(&state)?;
    service.flush().await;
    Ok(Json(service.results(&tenant, &name).await?.into()))
}

/// Feedback on a request an experiment served (a thumbs up, a rating, a conversion), by the
/// request's `x-request-id` or the answer's own id; it counts for the variant that served it.
#[utoipa::path(post, path = "/v1/feedback", tag = "experiments",
    request_body = FeedbackIn,
    responses(
        (status = 201, description = "Recorded", body = FeedbackOut),
        (status = 400, description = "A bad field (named in `param`): an undeclared metric, a value of the wrong kind", body = ErrorBody),
        (status = 404, description = "No experiment served that request", body = ErrorBody)))]
pub async fn send_feedback(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    ApiJson(request): ApiJson<FeedbackIn>,
) -> Result<(StatusCode, Json<FeedbackOut>), ApiError> {
    let id = match (&request.request_id, &request.response_id) {
        (Some(id), None) | (None, Some(id)) => id,
        _ => {
            return Err(ApiError::bad_request(
                "name the request: give request_id or response_id, one of them",
            )
            .with_param("request_id"));
        }
    };
    let value = match &request.value {
        Value::Bool(flag) => f64::from(u8::from(*flag)),
        Value::Number(number) => number.as_f64().unwrap_or(f64::NAN),
        _ => {
            return Err(
                ApiError::bad_request("value is true, false or a number").with_param("value")
            );
        }
    };
    let key = experiments(&state)?
        .feedback(&tenant, id, &request.metric, value, hearth_time::now_ms())
        .await?;
    metrics::counter!("hearth_experiment_feedback_total").increment(1);
    Ok((
        StatusCode::CREATED,
        Json(FeedbackOut {
            object: "feedback",
            experiment: key.experiment,
            variant: key.variant,
            request_id: key.request_id,
        }),
    ))
}

/// Places a chat or response request in the running experiment on its target (the prompt it
/// references, else the model it names) and rewrites it into the variant: its model, its
/// prompt version, its parameters over the request's own. The meter keeps the assignment, so
/// the request's end is recorded as an exposure.
pub(crate) fn assign_request(
    state: &AppState,
    meter: &Meter,
    (tenant, caller): (&str, Option<&Caller>),
    headers: &HeaderMap,
    body: &mut Value,
) {
    let Some(service) = &state.experiments else {
        return;
    };
    let Some(fields) = body.as_object_mut() else {
        return;
    };
    let prompt = fields
        .get("prompt")
        .and_then(|prompt| prompt.get("id"))
        .and_then(Value::as_str);
    let target = match (prompt, fields.get("model").and_then(Value::as_str)) {
        (Some(prompt), _) => Target::Prompt(prompt.to_string()),
        (None, Some(model)) => Target::Model(model.to_string()),
        (None, None) => return,
    };
    let (key_user, key_prefix) = match caller {
        Some(Caller::Key(principal)) => (
            principal.user_id.as_deref(),
            Some(principal.key_prefix.as_str()),
        ),
        _ => (None, None),
    };
    let request_user = fields.get("user").and_then(Value::as_str);
    let units = Units {
        user: key_user.or(request_user),
        key: key_prefix,
        header: headers
            .get(UNIT_HEADER)
            .and_then(|value| value.to_str().ok()),
    };
    let Some(assignment) = service.assign(tenant, &target, units) else {
        return;
    };
    let variant = &assignment.variant;
    if let Some(model) = &variant.model {
        fields.insert("model".into(), Value::String(model.clone()));
    }
    if let (Some(version), Some(prompt)) = (
        variant.prompt_version,
        fields.get_mut("prompt").and_then(Value::as_object_mut),
    ) {
        prompt.remove("label");
        prompt.insert("version".into(), json!(version));
    }
    for (key, value) in &variant.parameters {
        fields.insert(key.clone(), value.clone());
    }
    if assignment.recorded {
        metrics::counter!("hearth_experiment_assignments_total").increment(1);
    }
    meter.assigned(assignment);
}

//! Jobs under `/v1/jobs`, in the caller's tenant: readers list jobs and read their history;
//! admins define, replace, remove and run them (a job's webhook reaches outside Hearth, as
//! webhooks do). Built-in work (retention sweeps and the like) concerns the whole instance, so
//! only the instance's own jobs may do it. Each handler parses, calls one `hearth-jobs`
//! function and maps the result; changes and manual runs are audited.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hearth_jobs::{Action, Jobs, Source};

use super::audit::audit;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::gate::{Caller, ClientAddress, INSTANCE_SCOPE, TenantScope};
use crate::state::AppState;
use crate::wire::admin::List;
use crate::wire::jobs::*;
use crate::wire::memory::Deleted;

const DEFAULT_RUNS: u32 = 50;
const MAX_RUNS: u32 = 1000;
const MAX_WAIT_S: u32 = 300;

fn jobs(state: &AppState) -> Result<Jobs, ApiError> {
    state
        .jobs
        .clone()
        .ok_or_else(|| ApiError::unavailable("jobs are not configured on this server"))
}

/// The definition, refused when a tenant's job names built-in work.
fn definition(
    tenant: &str,
    request: JobIn,
    name: String,
) -> Result<hearth_jobs::JobSpec, ApiError> {
    let spec = request.into_spec(name);
    if matches!(spec.action, Action::Builtin { .. }) && tenant != INSTANCE_SCOPE {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_denied",
            "built-in work concerns the whole instance: only the instance's own jobs (an \
             instance key, or the server's configuration) may do it",
        )
        .with_param("action.type"));
    }
    Ok(spec)
}

/// The tenant's jobs, by name.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs",
    responses((status = 200, description = "The jobs", body = List<JobOut>)))]
pub async fn list_jobs(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
) -> Result<Json<List<JobOut>>, ApiError> {
    let list = jobs(&state)?.list(&tenant).await;
    Ok(Json(List::of(list.into_iter().map(JobOut::from))))
}

/// Defines a job. Its `after` names jobs of the tenant; a cycle is refused.
#[utoipa::path(post, path = "/v1/jobs", tag = "jobs",
    request_body = JobIn,
    responses(
        (status = 201, description = "The job", body = JobOut),
        (status = 400, description = "A bad field (named in `param`), a cycle or an unknown parent", body = ErrorBody),
        (status = 403, description = "Built-in work in a tenant's job", body = ErrorBody),
        (status = 409, description = "A job of that name exists", body = ErrorBody)))]
pub async fn create_job(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    ApiJson(request): ApiJson<JobIn>,
) -> Result<(StatusCode, Json<JobOut>), ApiError> {
    let Some(name) = request.name.clone() else {
        return Err(ApiError::bad_request("name the job").with_param("name"));
    };
    let spec = definition(&tenant, request, name)?;
    let info = jobs(&state)?
        .define(&tenant, spec, Source::Api, false)
        .await?;
    audit(
        &state,
        &caller.actor(ip),
        &tenant,
        "job.define",
        &info.spec.name,
        None,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(info.into())))
}

/// One job.
#[utoipa::path(get, path = "/v1/jobs/{job}", tag = "jobs",
    params(("job" = String, Path, description = "The job's name")),
    responses(
        (status = 200, description = "The job", body = JobOut),
        (status = 404, description = "No such job", body = ErrorBody)))]
pub async fn get_job(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(job): Path<String>,
) -> Result<Json<JobOut>, ApiError> {
    Ok(Json(jobs(&state)?.get(&tenant, &job).await?.into()))
}

/// Defines or replaces a job; a running run finishes as it was defined.
#[utoipa::path(put, path = "/v1/jobs/{job}", tag = "jobs",
    params(("job" = String, Path, description = "The job's name")),
    request_body = JobIn,
    responses(
        (status = 200, description = "The job", body = JobOut),
        (status = 400, description = "A bad field (named in `param`), a cycle or an unknown parent", body = ErrorBody),
        (status = 403, description = "Built-in work in a tenant's job", body = ErrorBody),
        (status = 409, description = "The job is defined in the server's configuration", body = ErrorBody)))]
pub async fn put_job(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(job): Path<String>,
    ApiJson(request): ApiJson<JobIn>,
) -> Result<Json<JobOut>, ApiError> {
    if let Some(name) = &request.name
        && name != &job
    {
        return Err(ApiError::bad_request(format!(
            "the body names job {name} but the path {job}; rename by defining the new job and \
             removing the old one"
        ))
        .with_param("name"));
    }
    let spec = definition(&tenant, request, job.clone())?;
    let info = jobs(&state)?
        .define(&tenant, spec, Source::Api, true)
        .await?;
    audit(&state, &caller.actor(ip), &tenant, "job.define", &job, None).await?;
    Ok(Json(info.into()))
}

/// Removes a job with its history.
#[utoipa::path(delete, path = "/v1/jobs/{job}", tag = "jobs",
    params(("job" = String, Path, description = "The job's name")),
    responses(
        (status = 200, description = "Removed", body = Deleted),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "Another job runs after it, or the configuration defines it", body = ErrorBody)))]
pub async fn delete_job(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(job): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    jobs(&state)?.remove(&tenant, &job, Source::Api).await?;
    audit(&state, &caller.actor(ip), &tenant, "job.remove", &job, None).await?;
    Ok(Json(Deleted {
        id: job,
        object: "job.deleted",
        deleted: true,
    }))
}

/// Runs a job now (its overlap policy applies: a run already going means this one is queued
/// or skipped). With `wait_s`, answers when the run ends or the wait is over.
#[utoipa::path(post, path = "/v1/jobs/{job}/run", tag = "jobs",
    params(("job" = String, Path, description = "The job's name")),
    request_body = RunIn,
    responses(
        (status = 202, description = "The run, as it stands", body = RunOut),
        (status = 400, description = "A bad field (named in `param`)", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody)))]
pub async fn run_job(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(job): Path<String>,
    ApiJson(request): ApiJson<RunIn>,
) -> Result<(StatusCode, Json<RunOut>), ApiError> {
    let wait_s = request.wait_s.unwrap_or(0);
    if wait_s > MAX_WAIT_S {
        return Err(
            ApiError::bad_request(format!("wait at most {MAX_WAIT_S} seconds"))
                .with_param("wait_s"),
        );
    }
    let service = jobs(&state)?;
    let mut run = service.run_now(&tenant, &job, request.input).await?;
    audit(
        &state,
        &caller.actor(ip),
        &tenant,
        "job.run",
        &job,
        Some(run.id.clone()),
    )
    .await?;
    if wait_s > 0 {
        run = service
            .wait(&tenant, &run.id, Duration::from_secs(u64::from(wait_s)))
            .await?;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(RunOut::from_run(run, wait_s > 0)),
    ))
}

/// A job's runs, newest first.
#[utoipa::path(get, path = "/v1/jobs/{job}/runs", tag = "jobs",
    params(("job" = String, Path, description = "The job's name"), RunsQuery),
    responses(
        (status = 200, description = "The runs", body = List<RunOut>),
        (status = 400, description = "A bad limit or `before`", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody)))]
pub async fn list_runs(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(job): Path<String>,
    ApiQuery(query): ApiQuery<RunsQuery>,
) -> Result<Json<List<RunOut>>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_RUNS);
    if limit == 0 || limit > MAX_RUNS {
        return Err(
            ApiError::bad_request(format!("limit is from 1 to {MAX_RUNS}")).with_param("limit"),
        );
    }
    let service = jobs(&state)?;
    let before_ms = match &query.before {
        None => None,
        Some(id) => Some(
            service
                .run(&tenant, id)
                .await
                .map_err(|_| {
                    ApiError::bad_request(format!("no run {id} to page back from"))
                        .with_param("before")
                })?
                .created_at_ms,
        ),
    };
    let runs = service.runs(&tenant, &job, limit, before_ms).await?;
    Ok(Json(List::of(
        runs.into_iter().map(|run| RunOut::from_run(run, false)),
    )))
}

/// One run with its attempts.
#[utoipa::path(get, path = "/v1/jobs/{job}/runs/{run}", tag = "jobs",
    params(("job" = String, Path, description = "The job's name"),
           ("run" = String, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run", body = RunOut),
        (status = 404, description = "No such run of that job", body = ErrorBody)))]
pub async fn get_run(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path((job, run)): Path<(String, String)>,
) -> Result<Json<RunOut>, ApiError> {
    let found = jobs(&state)?.run(&tenant, &run).await?;
    if found.job != job {
        return Err(ApiError::not_found(format!("job {job} has no run {run}")));
    }
    Ok(Json(RunOut::from_run(found, true)))
}

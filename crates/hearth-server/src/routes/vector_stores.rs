//! OpenAI's vector stores (`/v1/vector_stores`): stores, their files and file batches, and
//! search, so the official `openai` client works unchanged. Each handler parses, calls one
//! `hearth-memory` function in the caller's tenant scope and maps the result; another
//! tenant's store is a 404 like a missing one. Readers list, read and search; members make,
//! change and delete stores and attach files (the gate's route table): a vector store is an
//! application's working data, like the files it is made from.

use axum::Json;
use axum::extract::{Path, State};
use hearth_memory::{
    Chunking, FileStatus, FileToAttach, ListRequest, NewVectorStore, VectorStoreUpdate,
    VectorStores,
};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::gate::{Meter, TenantScope};
use crate::state::AppState;
use crate::wire::files::Order;
use crate::wire::vector_stores::*;

/// Items per page when a list gives no `limit` (OpenAI's default).
const DEFAULT_LIMIT: usize = 20;
/// Results when a search gives no `max_num_results`.
const DEFAULT_RESULTS: usize = 10;

fn service(state: &AppState) -> Result<VectorStores, ApiError> {
    state.vector_stores.clone().ok_or_else(|| {
        ApiError::unavailable(
            "vector stores need an embedding model, and this server has none; \
                 set memory.embedding_model",
        )
    })
}

fn list_request(query: &ListQuery) -> ListRequest {
    ListRequest {
        after: query.after.clone(),
        before: query.before.clone(),
        limit: query.limit.unwrap_or(DEFAULT_LIMIT),
        descending: query.order != Some(Order::Asc),
    }
}

fn status_filter(filter: Option<&str>) -> Result<Option<FileStatus>, ApiError> {
    filter
        .map(|name| {
            FileStatus::from_name(name).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unknown status `{name}`; use in_progress, completed, failed or cancelled"
                ))
                .with_param("filter")
            })
        })
        .transpose()
}

fn expiry_days(expires_after: &ExpiresAfter) -> Result<u32, ApiError> {
    if expires_after.anchor != "last_active_at" {
        return Err(
            ApiError::bad_request("the one expiry anchor is `last_active_at`")
                .with_param("expires_after.anchor"),
        );
    }
    Ok(expires_after.days)
}

/// Makes a vector store, attaching `file_ids` (read in the background; the store is
/// `in_progress` until they are).
#[utoipa::path(post, path = "/v1/vector_stores", tag = "openai",
    request_body = VectorStoreCreate,
    responses(
        (status = 200, description = "The new store", body = VectorStoreOut),
        (status = 400, description = "A bad field or an unknown file, named in param", body = ErrorBody),
        (status = 503, description = "No embedding model on this server (memory.embedding_model)", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    ApiJson(request): ApiJson<VectorStoreCreate>,
) -> Result<Json<VectorStoreOut>, ApiError> {
    let expires_after_days = request
        .expires_after
        .as_ref()
        .map(expiry_days)
        .transpose()?;
    let new = NewVectorStore {
        name: request.name,
        files: request
            .file_ids
            .into_iter()
            .map(FileToAttach::new)
            .collect(),
        chunking: request.chunking_strategy.map(Chunking::from),
        metadata: request.metadata.map(serde_json::Value::Object),
        expires_after_days,
    };
    let store = service(&state)?.create(&tenant, new).await?;
    crate::system_events::emit(
        &state,
        &tenant,
        "hearth.vector_store.created",
        serde_json::json!({"id": store.id, "name": store.name}),
    )
    .await;
    Ok(Json(store.into()))
}

/// The caller's vector stores, newest first unless `order=asc`.
#[utoipa::path(get, path = "/v1/vector_stores", tag = "openai",
    params(("limit" = Option<usize>, Query, description = "1–100, default 20"),
           ("order" = Option<String>, Query, description = "asc or desc (default)"),
           ("after" = Option<String>, Query, description = "A store id; the page starts after it"),
           ("before" = Option<String>, Query, description = "A store id; the page ends before it")),
    responses(
        (status = 200, description = "A page of stores", body = VectorStoreList),
        (status = 400, description = "A bad limit or cursor", body = ErrorBody),
        (status = 503, description = "No embedding model on this server (memory.embedding_model)", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<VectorStoreList>, ApiError> {
    if query.filter.is_some() {
        return Err(ApiError::bad_request("stores are not filtered by status").with_param("filter"));
    }
    let page = service(&state)?
        .list(&tenant, &list_request(&query))
        .await?;
    let data: Vec<VectorStoreOut> = page.items.into_iter().map(VectorStoreOut::from).collect();
    Ok(Json(VectorStoreList {
        object: "list",
        first_id: data.first().map(|store| store.id.clone()),
        last_id: data.last().map(|store| store.id.clone()),
        has_more: page.has_more,
        data,
    }))
}

/// One vector store, with its file counts and status.
#[utoipa::path(get, path = "/v1/vector_stores/{vector_store_id}", tag = "openai",
    params(("vector_store_id" = String, Path, description = "The store's id")),
    responses(
        (status = 200, description = "The store", body = VectorStoreOut),
        (status = 404, description = "No such store for this tenant", body = ErrorBody),
        (status = 503, description = "No embedding model on this server (memory.embedding_model)", body = ErrorBody)))]
pub async fn retrieve(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(id): Path<String>,
) -> Result<Json<VectorStoreOut>, ApiError> {
    Ok(Json(service(&state)?.get(&tenant, &id).await?.into()))
}

/// Renames a store or changes its metadata or expiry.
#[utoipa::path(post, path = "/v1/vector_stores/{vector_store_id}", tag = "openai",
    params(("vector_store_id" = String, Path, description = "The store's id")),
    request_body = VectorStoreModify,
    responses(
        (status = 200, description = "The changed store", body = VectorStoreOut),
        (status = 400, description = "A bad field, or an expired store", body = ErrorBody),
        (status = 404, description = "No such store for this tenant", body = ErrorBody),
        (status = 503, description = "No embedding model on this server (memory.embedding_model)", body = ErrorBody)))]
pub async fn modify(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<VectorStoreModify>,
) -> Result<Json<VectorStoreOut>, ApiError> {
    let expires_after_days = match &request.expires_after {
        None => None,
        Some(None) => Some(None),
        Some(Some(expires_after)) => Some(Some(expiry_days(expires_after)?)),
    };
    let update = VectorStoreUpdate {
        name: request.name,
        metadata: request.metadata.map(serde_json::Value::Object),
        expires_after_days,
    };
    Ok(Json(
        service(&state)?.update(&tenant, &id, update).await?.into(),
    ))
}

/// Deletes a store and what was read into it; the files stay in `/v1/files`.
#[utoipa::path(delete, path = "/v1/vector_stores/{vector_store_id}", tag = "openai",
    params(("vector_store_id" = String, Path, description = "The store's id")),
    responses(
        (status = 200, description = "Deleted", body = DeletedOut),
        (status = 404, description = "No such store for this tenant", body = ErrorBody),
        (status = 503, description = "No embedding model on this server (memory.embedding_model)", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(id): Path<String>,
) -> Result<Json<DeletedOut>, ApiError> {
    service(&state)?.delete(&tenant, &id).await?;
    crate::system_events::emit(
        &state,
        &tenant,
        "hearth.vector_store.deleted",
        serde_json::json!({"id": id}),
    )
    .await;
    Ok(Json(DeletedOut {
        id,
        object: "vector_store.deleted",
        deleted: true,
    }))
}

/// Attaches one of the caller's files; it is read in the background.
#[utoipa::path(post, path = "/v1/vector_stores/{vector_store_id}/files", tag = "openai",
    params(("vector_store_id" = String, Path, description = "The store's id")),
    request_body = FileAttach,
    responses(
        (status = 200, description = "The attached file, in_progress", body = VectorStoreFileOut),
        (status = 400, description = "A bad field or an unknown file", body = ErrorBody),
        (status = 404, description = "No such store for this tenant", body = ErrorBody),
        (status = 503, description = "No embedding model on this server (memory.embedding_model)", body = ErrorBody)))]
pub async fn attach_file(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<FileAttach>,
) -> Result<Json<VectorStoreFileOut>, ApiError> {
    Ok(Json(
        service(&state)?
            .attach_file(&tenant, &id, request.into())
            .await?
            .into(),
    ))
}

/// A store's files, newest first unless `order=asc`, optionally of one status.
#[utoipa::path(get, path = "/v1/vector_stores/{vector_store_id}/files", tag = "openai",
    params(("vector_store_id" = String, Path, description = "The store's id"),
           ("limit" = Option<usize>, Query, description = "1–100, default 20"),
           ("order" = Option<String>, Query, description = "asc or desc (default)"),
           ("after" = Option<String>, Query, description = "A file id; the page starts after it"),
           ("before" = Option<String>, Query, description = "A file id; the page ends before it"),
           ("filter" = Option<String>, Query, description = "in_progress, completed, failed or cancelled")),
    responses(
        (status = 200, description = "A page of files", body = VectorStoreFileList),
        (status = 404, description = "No such store for this tenant", body = ErrorBody),
        (status = 503, description = "No embedding model on this server (memory.embedding_model)", body = ErrorBody)))]
pub async fn list_files(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<VectorStoreFileList>, ApiError> {
    files_page(&state, &tenant, &id, None, &query).await
}

async fn files_page(
    state: &AppState,
    tenant: &str,
    id: &str,
    batch_id: Option<&str>,
    query: &ListQuery,
) -> Result<Json<VectorStoreFileList>, ApiError> {
    let status = status_filter(query.filter.as_deref())?;
    let page = service(state)?
        .list_files(tenant, id, batch_id, status, &list_request(query))
        .await?;
    let data: Vec<VectorStoreFileOut> = page
        .items
        .into_iter()
        .map(VectorStoreFileOut::from)
        .collect();
    Ok(Json(VectorStoreFileList {
        object: "list",
        first_id: data.first().map(|file| file.id.clone()),
        last_id: data.last().map(|file| file.id.clone()),
        has_more: page.has_more,
        data,
    }))
}

/// One file of a store, with its reading status.
#[utoipa::path(get, path = "/v1/vector_stores/{vector_store_id}/files/{file_id}", tag = "openai",
    params(("vector_store_id" = String, Path, description = "The store's id"),
           ("file_id" = String, Path, description = "The file's id")),
    responses(
        (status = 200, description = "The file", body = VectorStoreFileOut),
        (status = 404, description = "No such store or file", body = ErrorBody),
        (status = 503, description = "No embedding model on this server (memory.embedding_model)", body = ErrorBody)))]
pub async fn retrieve_file(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path((id, file_id)): Path<(String, String)>,
) -> Result<Json<VectorStoreFileOut>, ApiError> {
    Ok(Json(
        service(&state)?.file(&tenant, &id, &file_id).await?.into(),
    ))
}

/// Changes a file's attributes; the file is read again with them.
#[utoipa::path(post, path = "/v1/vector_stores/{vector_store_id}/files/{file_id}", tag = "openai",
    params(("vector_store_id" = String, Path, description = "The store's id"),
           ("file_id" = String, Path, description = "The file's id")),
    request_body = FileAttributesIn,
    responses(
        (status = 200, description = "The file, in_progress again", body = VectorStoreFileOut),
        (status = 400, description = "Bad attributes", body = ErrorBody),
        (status = 404, description = "No such store or file", body = ErrorBody),
        (status = 503, description = "No embedding model on this server (memory.embedding_model)", body = ErrorBody)))]
pub async fn update_file(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path((id, file_id)): Path<(String, String)>,
    ApiJson(request): ApiJson<FileAttributesIn>,
) -> Result<Json<VectorStoreFileOut>, ApiError> {
    let service = service(&state)?;
    let current = service.file(&tenant, &id, &file_id).await?;
    let file = FileToAttach {
        file_id,
        attributes: request.attributes.map(serde_json::Value::Object),
        chunking: Some(current.chunking),
    };
    Ok(Json(service.attach_file(&tenant, &id, file).await?.into()))
}

/// Detaches a file from a store; the file stays in `/v1/files`.
#[utoipa::path(delete, path = "/v1/vector_stores/{vector_store_id}/files/{file_id}", tag = "openai",
    params(("vector_store_id" = String, Path, description = "The store's id"),
           ("file_id" = String, Path, description = "The file's id")),
    responses(
        (status = 200, description = "Detached", body = DeletedOut),
        (status = 404, description = "No such store or file", body = ErrorBody),
        (status = 503, description = "No embedding model on this server (memory.embedding_model)", body = ErrorBody)))]
pub async fn detach_file(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path((id, file_id)): Path<(String, String)>,
) -> Result<Json<DeletedOut>, ApiError> {
    service(&state)?.detach_file(&tenant, &id, &file_id).await?;
    Ok(Json(DeletedOut {
        id: file_id,
        object: "vector_store.file.deleted",
        deleted: true,
    }))
}

/// The text a file was read into, passage by passage.
#[utoipa::path(get, path = "/v1/vector_stores/{vector_store_id}/files/{file_id}/content", tag = "openai",
    params(("vector_store_id" = String, Path, description = "The store's id"),
           ("file_id" = String, Path, description = "The file's id")),
    responses(
        (status = 200, description = "The file's text", body = FileContentOut),
        (status = 404, description = "No such store or file", body = ErrorBody),
        (status = 503, description = "No embedding model on this server (memory.embedding_model)", body = ErrorBody)))]
pub async fn file_content(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path((id, file_id)): Path<(String, String)>,
) -> Result<Json<FileContentOut>, ApiError> {
    let texts = service(&state)?
        .file_content(&tenant, &id, &file_id)
        .await?;
    Ok(Json(FileContentOut {
        object: "vector_store.file_content.page",
        data: texts.into_iter().map(TextPart::of).collect(),
        has_more: false,
        next_page: None,
    }))
}

/// Attaches several files as one batch.
#[utoipa::path(post, path = "/v1/vector_stores/{vector_store_id}/file_batches", tag = "openai",
    params(("vector_store_id" = String, Path, description = "The store's id")),
    request_body = BatchCreate,
    responses(
        (status = 200, description = "The batch, in_progress", body = BatchOut),
        (status = 400, description = "A bad field or an unknown file", body = ErrorBody),
        (status = 404, description = "No such store for this tenant", body = ErrorBody),
        (status = 503, description = "No embedding model on this server (memory.embedding_model)", body = ErrorBody)))]
pub async fn create_batch(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<BatchCreate>,
) -> Result<Json<BatchOut>, ApiError> {
    if !request.file_ids.is_empty() && !request.files.is_empty() {
        return Err(
            ApiError::bad_request("give `file_ids` or `files`, not both").with_param("files"),
        );
    }
    let files: Vec<FileToAttach> = if request.files.is_empty() {
        request
            .file_ids
            .into_iter()
            .map(|file_id| FileToAttach {
                file_id,
                attributes: request.attributes.clone().map(serde_json::Value::Object),
                chunking: None,
            })
            .collect()
    } else {
        request.files.into_iter().map(FileToAttach::from).collect()
    };
    let chunking = request.chunking_strategy.map(Chunking::from);
    Ok(Json(
        service(&state)?
            .create_batch(&tenant, &id, files, chunking)
            .await?
            .into(),
    ))
}

/// One batch, with its file counts.
#[utoipa::path(get, path = "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}", tag = "openai",
    params(("vector_store_id" = String, Path, description = "The store's id"),
           ("batch_id" = String, Path, description = "The batch's id")),
    responses(
        (status = 200, description = "The batch", body = BatchOut),
        (status = 404, description = "No such store or batch", body = ErrorBody),
        (status = 503, description = "No embedding model on this server (memory.embedding_model)", body = ErrorBody)))]
pub async fn retrieve_batch(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path((id, batch_id)): Path<(String, String)>,
) -> Result<Json<BatchOut>, ApiError> {
    Ok(Json(
        service(&state)?
            .batch(&tenant, &id, &batch_id)
            .await?
            .into(),
    ))
}

/// Cancels a batch's files not yet read.
#[utoipa::path(post, path = "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel", tag = "openai",
    params(("vector_store_id" = String, Path, description = "The store's id"),
           ("batch_id" = String, Path, description = "The batch's id")),
    responses(
        (status = 200, description = "The batch, cancelled", body = BatchOut),
        (status = 404, description = "No such store or batch", body = ErrorBody),
        (status = 503, description = "No embedding model on this server (memory.embedding_model)", body = ErrorBody)))]
pub async fn cancel_batch(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path((id, batch_id)): Path<(String, String)>,
) -> Result<Json<BatchOut>, ApiError> {
    Ok(Json(
        service(&state)?
            .cancel_batch(&tenant, &id, &batch_id)
            .await?
            .into(),
    ))
}

/// A batch's files.
#[utoipa::path(get, path = "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/files", tag = "openai",
    params(("vector_store_id" = String, Path, description = "The store's id"),
           ("batch_id" = String, Path, description = "The batch's id"),
           ("limit" = Option<usize>, Query, description = "1–100, default 20"),
           ("order" = Option<String>, Query, description = "asc or desc (default)"),
           ("after" = Option<String>, Query, description = "A file id; the page starts after it"),
           ("before" = Option<String>, Query, description = "A file id; the page ends before it"),
           ("filter" = Option<String>, Query, description = "in_progress, completed, failed or cancelled")),
    responses(
        (status = 200, description = "A page of the batch's files", body = VectorStoreFileList),
        (status = 404, description = "No such store or batch", body = ErrorBody),
        (status = 503, description = "No embedding model on this server (memory.embedding_model)", body = ErrorBody)))]
pub async fn list_batch_files(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path((id, batch_id)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<VectorStoreFileList>, ApiError> {
    files_page(&state, &tenant, &id, Some(&batch_id), &query).await
}

/// Searches a store's passages: hybrid (meaning and keywords, fused by reciprocal rank),
/// filtered by attributes, scores from 0 to 1.
#[utoipa::path(post, path = "/v1/vector_stores/{vector_store_id}/search", tag = "openai",
    params(("vector_store_id" = String, Path, description = "The store's id")),
    request_body = StoreSearchIn,
    responses(
        (status = 200, description = "The best passages, best first", body = StoreSearchOut),
        (status = 400, description = "A bad field, named in param", body = ErrorBody),
        (status = 404, description = "No such store for this tenant", body = ErrorBody),
        (status = 503, description = "No embedding model on this server (memory.embedding_model)", body = ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    meter: Meter,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<StoreSearchIn>,
) -> Result<Json<StoreSearchOut>, ApiError> {
    let search = store_search(
        request.query.0.clone(),
        request.max_num_results.unwrap_or(DEFAULT_RESULTS),
        request.filters.as_ref(),
        request.ranking_options.as_ref(),
        "",
    )?;
    let started = std::time::Instant::now();
    let results = service(&state)?.search(&tenant, &id, &search).await?;
    metrics::histogram!("hearth_memory_search_duration_seconds", "mode" => "vector_store")
        .record(started.elapsed().as_secs_f64());
    super::memory::count_embedding(
        &meter,
        results.embedding_model.as_deref(),
        results.embedding_tokens,
    );
    Ok(Json(StoreSearchOut {
        object: "vector_store.search_results.page",
        search_query: request.query.0,
        data: results.hits.into_iter().map(StoreHitOut::from).collect(),
        has_more: false,
        next_page: None,
    }))
}

/// The service's ingestion observer: counts what a background read of a file did (its
/// outcome, the embedding tokens it took) and records those tokens as the tenant's usage, on
/// the route that attached the file (no key: the read happens after the request).
pub fn ingestion_observer(
    usage: Option<hearth_gateway::UsageRecorder>,
) -> hearth_memory::IngestObserver {
    std::sync::Arc::new(move |report: &hearth_memory::IngestReport| {
        metrics::counter!(
            "hearth_vector_store_files_read_total",
            "status" => report.status.name()
        )
        .increment(1);
        if report.status == FileStatus::Completed {
            metrics::counter!("hearth_memory_documents_written_total").increment(1);
        }
        metrics::counter!("hearth_memory_embedding_tokens_total")
            .increment(report.embedding_tokens);
        if let (Some(usage), Some(model)) = (&usage, &report.embedding_model)
            && report.embedding_tokens > 0
        {
            usage.record(hearth_gateway::UsageEvent {
                at_ms: hearth_gateway::now_ms(),
                tenant_id: (report.tenant_id != crate::gate::INSTANCE_SCOPE)
                    .then(|| report.tenant_id.clone()),
                key_id: None,
                user_id: None,
                model: model.clone(),
                target: format!("local/{model}"),
                route: "/v1/vector_stores/{vector_store_id}/files".to_string(),
                status: 200,
                prompt_tokens: report.embedding_tokens,
                completion_tokens: 0,
                latency_ms: 0,
                time_to_first_token_ms: None,
                cache_hit: false,
                cost_micro_usd: 0,
                prompt_id: None,
                prompt_version: None,
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use hearth_memory::IngestReport;
    use hearth_store::{IntegrityCheck, OpenOptions, Store, UsageQuery};

    use super::*;

    fn report(tenant_id: &str, tokens: u64) -> IngestReport {
        IngestReport {
            tenant_id: tenant_id.to_string(),
            vector_store_id: "vs_1".to_string(),
            file_id: "file-1".to_string(),
            status: FileStatus::Completed,
            chunks: 3,
            embedding_tokens: tokens,
            embedding_model: Some("all-minilm:l6-v2".to_string()),
        }
    }

    #[tokio::test]
    async fn background_embedding_tokens_become_the_tenants_usage() {
        let dir = tempfile::tempdir().unwrap();
        let options = OpenOptions {
            integrity_check: IntegrityCheck::Quick,
            run_migrations: true,
        };
        let store = Store::open(dir.path(), options).await.unwrap();
        let (usage, writer) = hearth_gateway::UsageRecorder::start(store.clone());
        let observe = ingestion_observer(Some(usage));
        observe(&report("tenant-1", 42));
        observe(&report(crate::gate::INSTANCE_SCOPE, 7));
        observe(&report("tenant-1", 0));
        // The writer stores what is queued once every recorder is gone.
        drop(observe);
        writer.await.unwrap();

        // Grouped by key (none here) and so by tenant.
        let query = UsageQuery {
            by_model: true,
            by_key: true,
            ..UsageQuery::default()
        };
        let mut groups = store.usage_groups(&query).await.unwrap();
        groups.sort_by_key(|group| group.prompt_tokens);
        let seen: Vec<(Option<&str>, i64, i64)> = groups
            .iter()
            .map(|group| {
                (
                    group.tenant_id.as_deref(),
                    group.requests,
                    group.prompt_tokens,
                )
            })
            .collect();
        // A read that embedded nothing records nothing; the instance's scope is no tenant.
        assert_eq!(seen, [(None, 1, 7), (Some("tenant-1"), 1, 42)]);
        assert!(
            groups
                .iter()
                .all(|group| group.model.as_deref() == Some("all-minilm:l6-v2"))
        );
    }
}

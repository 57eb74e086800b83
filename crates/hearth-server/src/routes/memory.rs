//! The native memory API under `/v1/collections`: collections, documents and search. Each
//! handler parses, calls one `hearth-memory` function in the caller's tenant scope, and maps
//! the result; another tenant's collection is a 404 like a missing one. Readers list, read and
//! search; members write documents; admins create, change and delete collections (the gate's
//! route table).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hearth_memory::{
    CollectionUpdate, DocumentSelector, Filter, Memory, NewCollection, NewDocument, PageRequest,
    SearchRequest,
};
use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::gate::{Meter, TenantScope};
use crate::state::AppState;
use crate::wire::memory::*;

/// Items per page when a list gives no `limit`.
const DEFAULT_PAGE_LIMIT: usize = 100;
/// Hits when a search gives no `top_k`.
const DEFAULT_TOP_K: usize = 10;

fn memory(state: &AppState) -> Result<Arc<Memory>, ApiError> {
    state
        .memory
        .clone()
        .ok_or_else(|| ApiError::unavailable("memory is not configured on this server"))
}

fn page_request(after: Option<String>, limit: Option<usize>) -> PageRequest {
    PageRequest {
        after,
        limit: limit.unwrap_or(DEFAULT_PAGE_LIMIT),
    }
}

fn parse_filter(value: &Value) -> Result<Filter, ApiError> {
    Ok(Filter::parse(value)?)
}

/// Counts the tokens an embedding model read for a request (the metric) and charges them to
/// the request's key as prompt tokens of that model.
pub(crate) fn count_embedding(meter: &Meter, model: Option<&str>, tokens: u64) {
    metrics::counter!("hearth_memory_embedding_tokens_total").increment(tokens);
    if let Some(model) = model {
        meter.started(model, tokens as usize);
    }
}

/// A collection another service keeps (a graph's nodes, the tenant's conversation memory, a
/// vector store's passages) is deleted or renamed through that service only: done here, it
/// would leave the graph, the memory or the store pointing at nothing.
async fn refuse_kept(state: &AppState, tenant: &str, name: &str) -> Result<(), ApiError> {
    let kept = |message: String| ApiError::new(StatusCode::CONFLICT, "conflict", message);
    if let Some(graphs) = &state.graphs
        && let Some(graph) = graphs.graph_of_collection(tenant, name).await?
    {
        return Err(kept(format!(
            "collection `{name}` holds the nodes of graph `{graph}`; change or delete the graph \
             (/v1/graphs/{graph}) instead"
        )));
    }
    if let Some(stores) = &state.vector_stores
        && stores.exists(tenant, name).await?
    {
        return Err(kept(format!(
            "collection `{name}` holds the passages of vector store `{name}`; delete the \
             vector store (/v1/vector_stores/{name}) instead"
        )));
    }
    if let Some(conversations) = &state.conversations
        && conversations.holds_collection(tenant, name).await?
    {
        return Err(kept(format!(
            "collection `{name}` holds this tenant's conversation memory; delete a user's \
             turns through /v1/memories/{{user}} instead"
        )));
    }
    Ok(())
}

/// The domain's search mode for a request's `mode` and `hybrid` weights (which only a hybrid
/// search takes).
pub(crate) fn search_mode(
    mode: SearchMode,
    hybrid: Option<HybridIo>,
) -> Result<hearth_memory::SearchMode, ApiError> {
    let defaults = hearth_memory::HybridWeights::default();
    Ok(match mode {
        SearchMode::Vector | SearchMode::Keyword if hybrid.is_some() => {
            return Err(ApiError::bad_request(
                "`hybrid` weights apply to \"mode\": \"hybrid\" only",
            )
            .with_param("hybrid"));
        }
        SearchMode::Vector => hearth_memory::SearchMode::Vector,
        SearchMode::Keyword => hearth_memory::SearchMode::Keyword,
        SearchMode::Hybrid => {
            let hybrid = hybrid.unwrap_or(HybridIo {
                k: None,
                embedding_weight: None,
                text_weight: None,
            });
            hearth_memory::SearchMode::Hybrid(hearth_memory::HybridWeights {
                k: hybrid.k.unwrap_or(defaults.k),
                vector_weight: hybrid.embedding_weight.unwrap_or(defaults.vector_weight),
                keyword_weight: hybrid.text_weight.unwrap_or(defaults.keyword_weight),
            })
        }
    })
}

/// `include=embedding` (a comma-separated list, so more fields can join it).
fn includes_embedding(include: Option<&str>) -> Result<bool, ApiError> {
    let mut embedding = false;
    for field in include.unwrap_or("").split(',').map(str::trim) {
        match field {
            "" => {}
            "embedding" => embedding = true,
            other => {
                return Err(ApiError::bad_request(format!(
                    "cannot include `{other}`; the one optional field is `embedding`"
                ))
                .with_param("include"));
            }
        }
    }
    Ok(embedding)
}

fn integer(value: Option<u64>) -> Option<usize> {
    value.map(|value| usize::try_from(value).unwrap_or(usize::MAX))
}

/// The collections of the caller's tenant, by name.
#[utoipa::path(get, path = "/v1/collections", tag = "memory",
    params(("after" = Option<String>, Query, description = "The previous page's next_cursor"),
           ("limit" = Option<usize>, Query, description = "1–1000, default 100")),
    responses(
        (status = 200, description = "A page of collections", body = Paged<CollectionOut>),
        (status = 400, description = "A bad limit", body = ErrorBody),
        (status = 503, description = "Memory is not configured", body = ErrorBody)))]
pub async fn list_collections(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Paged<CollectionOut>>, ApiError> {
    let page = memory(&state)?
        .list_collections(&tenant, &page_request(query.after, query.limit))
        .await?;
    Ok(Json(Paged::of(page, CollectionOut::from)))
}

/// Creates a collection: for text the server embeds (give `embedding_model`, or neither it
/// nor `dimensions` for the default model), or for vectors you supply (give `dimensions`).
#[utoipa::path(post, path = "/v1/collections", tag = "memory",
    request_body = CollectionIn,
    responses(
        (status = 201, description = "The collection", body = CollectionOut),
        (status = 400, description = "A bad field, named in param", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 503, description = "Memory or the embedding model is unavailable", body = ErrorBody)))]
pub async fn create_collection(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    ApiJson(request): ApiJson<CollectionIn>,
) -> Result<(StatusCode, Json<CollectionOut>), ApiError> {
    let mut new = NewCollection::embedded(request.name, request.embedding_model);
    new.dimensions = integer(request.dimensions);
    if let Some(metric) = request.metric {
        new.metric = metric.into();
    }
    new.int8 = request.quantization == Some(QuantizationIo::Int8);
    let hnsw = request.hnsw.unwrap_or_default();
    new.m = integer(hnsw.m).unwrap_or(new.m);
    new.ef_construction = integer(hnsw.ef_construction).unwrap_or(new.ef_construction);
    new.ef = integer(hnsw.ef).unwrap_or(new.ef);
    if let Some(metadata) = request.metadata {
        new.metadata = metadata;
    }
    let collection = memory(&state)?.create_collection(&tenant, new).await?;
    crate::system_events::emit(
        &state,
        &tenant,
        "hearth.collection.created",
        serde_json::json!({"id": collection.id, "name": collection.name}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(collection.into())))
}

/// One collection, with how many documents it holds.
#[utoipa::path(get, path = "/v1/collections/{name}", tag = "memory",
    params(("name" = String, Path, description = "The collection's name")),
    responses(
        (status = 200, description = "The collection", body = CollectionOut),
        (status = 404, description = "No such collection in this tenant", body = ErrorBody)))]
pub async fn get_collection(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(name): Path<String>,
) -> Result<Json<CollectionOut>, ApiError> {
    let memory = memory(&state)?;
    let collection = memory.collection(&tenant, &name).await?;
    let count = memory.count_documents(&tenant, &name, None).await?;
    let mut out = CollectionOut::from(collection);
    out.document_count = Some(count);
    Ok(Json(out))
}

/// Renames a collection, replaces its metadata or changes its default search effort.
#[utoipa::path(patch, path = "/v1/collections/{name}", tag = "memory",
    params(("name" = String, Path, description = "The collection's name")),
    request_body = CollectionPatch,
    responses(
        (status = 200, description = "The collection", body = CollectionOut),
        (status = 400, description = "A bad field, named in param", body = ErrorBody),
        (status = 404, description = "No such collection in this tenant", body = ErrorBody),
        (status = 409, description = "The new name is taken, or a graph, the conversation \
            memory or a vector store keeps the collection under its name", body = ErrorBody)))]
pub async fn update_collection(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<CollectionPatch>,
) -> Result<Json<CollectionOut>, ApiError> {
    if request.name.is_some() {
        refuse_kept(&state, &tenant, &name).await?;
    }
    let update = CollectionUpdate {
        name: request.name,
        metadata: request.metadata,
        ef: integer(request.hnsw.and_then(|hnsw| hnsw.ef)),
    };
    let collection = memory(&state)?
        .update_collection(&tenant, &name, update)
        .await?;
    Ok(Json(collection.into()))
}

/// Deletes a collection with its documents, its index and its snapshot.
#[utoipa::path(delete, path = "/v1/collections/{name}", tag = "memory",
    params(("name" = String, Path, description = "The collection's name")),
    responses(
        (status = 200, description = "Deleted", body = Deleted),
        (status = 404, description = "No such collection in this tenant", body = ErrorBody),
        (status = 409, description = "A graph, the conversation memory or a vector store keeps \
            the collection", body = ErrorBody)))]
pub async fn delete_collection(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(name): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    refuse_kept(&state, &tenant, &name).await?;
    memory(&state)?.delete_collection(&tenant, &name).await?;
    crate::system_events::emit(
        &state,
        &tenant,
        "hearth.collection.deleted",
        serde_json::json!({"name": name}),
    )
    .await;
    Ok(Json(Deleted {
        id: name,
        object: "collection.deleted",
        deleted: true,
    }))
}

/// Stores documents, all or none, replacing those with the same ids. Documents without an
/// `embedding` have their `text` embedded with the collection's model; its tokens count as
/// usage.
#[utoipa::path(post, path = "/v1/collections/{name}/documents", tag = "memory",
    params(("name" = String, Path, description = "The collection's name")),
    request_body = UpsertIn,
    responses(
        (status = 200, description = "The stored ids, in order", body = UpsertOut),
        (status = 400, description = "A bad document, its field named in param", body = ErrorBody),
        (status = 404, description = "No such collection in this tenant", body = ErrorBody),
        (status = 413, description = "Too many documents or too long a text", body = ErrorBody)))]
pub async fn upsert_documents(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    meter: Meter,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<UpsertIn>,
) -> Result<Json<UpsertOut>, ApiError> {
    let documents = request
        .documents
        .into_iter()
        .map(|document| NewDocument {
            id: document.id,
            text: document.text,
            metadata: document
                .metadata
                .unwrap_or_else(|| Value::Object(Map::new())),
            embedding: document.embedding,
        })
        .collect();
    let upserted = memory(&state)?
        .upsert_documents(&tenant, &name, documents)
        .await?;
    metrics::counter!("hearth_memory_documents_written_total").increment(upserted.ids.len() as u64);
    count_embedding(
        &meter,
        upserted.embedding_model.as_deref(),
        upserted.embedding_tokens,
    );
    Ok(Json(UpsertOut {
        object: "list",
        ids: upserted.ids,
        usage: EmbeddingUsageOut::of(upserted.embedding_tokens),
    }))
}

/// Documents in id order, a page at a time, optionally those matching a metadata filter.
#[utoipa::path(get, path = "/v1/collections/{name}/documents", tag = "memory",
    params(("name" = String, Path, description = "The collection's name"),
           ("after" = Option<String>, Query, description = "The previous page's next_cursor"),
           ("limit" = Option<usize>, Query, description = "1–1000, default 100"),
           ("filter" = Option<String>, Query, description = "A metadata filter as JSON"),
           ("include" = Option<String>, Query, description = "`embedding` to return vectors")),
    responses(
        (status = 200, description = "A page of documents", body = Paged<DocumentOut>),
        (status = 400, description = "A bad filter or limit", body = ErrorBody),
        (status = 404, description = "No such collection in this tenant", body = ErrorBody)))]
pub async fn list_documents(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<DocumentsQuery>,
) -> Result<Json<Paged<DocumentOut>>, ApiError> {
    let filter = match query.filter.as_deref() {
        Some(text) => {
            let value: Value = serde_json::from_str(text).map_err(|error| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_filter",
                    format!("the filter is not JSON: {error}"),
                )
                .with_param("filter")
            })?;
            Some(parse_filter(&value)?)
        }
        None => None,
    };
    let include_embedding = includes_embedding(query.include.as_deref())?;
    let page = memory(&state)?
        .list_documents(
            &tenant,
            &name,
            &page_request(query.after, query.limit),
            filter.as_ref(),
            include_embedding,
        )
        .await?;
    Ok(Json(Paged::of(page, DocumentOut::from)))
}

/// One document by id.
#[utoipa::path(get, path = "/v1/collections/{name}/documents/{id}", tag = "memory",
    params(("name" = String, Path, description = "The collection's name"),
           ("id" = String, Path, description = "The document's id"),
           ("include" = Option<String>, Query, description = "`embedding` to return the vector")),
    responses(
        (status = 200, description = "The document", body = DocumentOut),
        (status = 404, description = "No such collection or document", body = ErrorBody)))]
pub async fn get_document(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path((name, id)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<DocumentQuery>,
) -> Result<Json<DocumentOut>, ApiError> {
    let include_embedding = includes_embedding(query.include.as_deref())?;
    let document = memory(&state)?
        .get_documents(&tenant, &name, std::slice::from_ref(&id), include_embedding)
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found(format!("document `{id}` not found")))?;
    Ok(Json(document.into()))
}

/// Deletes one document by id.
#[utoipa::path(delete, path = "/v1/collections/{name}/documents/{id}", tag = "memory",
    params(("name" = String, Path, description = "The collection's name"),
           ("id" = String, Path, description = "The document's id")),
    responses(
        (status = 200, description = "Deleted", body = Deleted),
        (status = 404, description = "No such collection or document", body = ErrorBody)))]
pub async fn delete_document(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<Deleted>, ApiError> {
    let deleted = memory(&state)?
        .delete_documents(&tenant, &name, &DocumentSelector::Ids(vec![id.clone()]))
        .await?;
    if deleted == 0 {
        return Err(ApiError::not_found(format!("document `{id}` not found")));
    }
    metrics::counter!("hearth_memory_documents_deleted_total").increment(1);
    Ok(Json(Deleted {
        id,
        object: "document.deleted",
        deleted: true,
    }))
}

/// Deletes documents by ids or by a metadata filter, in one transaction.
#[utoipa::path(post, path = "/v1/collections/{name}/delete", tag = "memory",
    params(("name" = String, Path, description = "The collection's name")),
    request_body = DeleteIn,
    responses(
        (status = 200, description = "How many were deleted", body = DeletedCount),
        (status = 400, description = "Neither or both of ids and filter, or a bad filter", body = ErrorBody),
        (status = 404, description = "No such collection in this tenant", body = ErrorBody)))]
pub async fn delete_documents(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<DeleteIn>,
) -> Result<Json<DeletedCount>, ApiError> {
    let selector = match (request.ids, request.filter) {
        (Some(ids), None) => DocumentSelector::Ids(ids),
        (None, Some(filter)) => DocumentSelector::Filter(parse_filter(&filter)?),
        _ => {
            return Err(ApiError::bad_request(
                "give either `ids` or `filter`, not both or neither",
            )
            .with_param("ids"));
        }
    };
    let deleted = memory(&state)?
        .delete_documents(&tenant, &name, &selector)
        .await?;
    metrics::counter!("hearth_memory_documents_deleted_total").increment(deleted as u64);
    Ok(Json(DeletedCount {
        object: "document.deleted",
        deleted,
    }))
}

/// Searches a collection: by `vector` or a `query` text embedded with the collection's model
/// (`mode: vector`, the default), by BM25 over the text with highlighted snippets
/// (`keyword`), or both fused by reciprocal rank (`hybrid`). A metadata filter applies in
/// every mode, and `top_k` hits come back whenever that many documents match.
#[utoipa::path(post, path = "/v1/collections/{name}/search", tag = "memory",
    params(("name" = String, Path, description = "The collection's name")),
    request_body = SearchIn,
    responses(
        (status = 200, description = "The hits, closest first", body = SearchOut),
        (status = 400, description = "A bad field, named in param", body = ErrorBody),
        (status = 404, description = "No such collection in this tenant", body = ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    meter: Meter,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<SearchIn>,
) -> Result<Json<SearchOut>, ApiError> {
    let mode = search_mode(request.mode.unwrap_or(SearchMode::Vector), request.hybrid)?;
    let include = request
        .include
        .unwrap_or_else(|| vec![IncludeField::Text, IncludeField::Metadata]);
    let search = SearchRequest {
        text: request.query,
        vector: request.vector,
        mode,
        top_k: request.top_k.unwrap_or(DEFAULT_TOP_K),
        filter: request.filter.as_ref().map(parse_filter).transpose()?,
        ef: integer(request.ef),
        include_embedding: include.contains(&IncludeField::Embedding),
    };
    let mode_label = search.mode.name();
    let started = std::time::Instant::now();
    let results = memory(&state)?.search(&tenant, &name, &search).await?;
    metrics::histogram!("hearth_memory_search_duration_seconds", "mode" => mode_label)
        .record(started.elapsed().as_secs_f64());
    count_embedding(
        &meter,
        results.embedding_model.as_deref(),
        results.embedding_tokens,
    );
    Ok(Json(SearchOut {
        object: "list",
        data: results
            .hits
            .into_iter()
            .map(|hit| SearchHitOut::of(hit, &include))
            .collect(),
        usage: EmbeddingUsageOut::of(results.embedding_tokens),
    }))
}

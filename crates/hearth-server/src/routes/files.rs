//! OpenAI's Files API (`/v1/files`): upload, list, read, download and delete a tenant's files,
//! the raw material of vector stores. Members upload and delete; readers list and read.

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hearth_memory::{FileListRequest, Files, MAX_FILE_PAGE};

use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::gate::TenantScope;
use crate::state::AppState;
use crate::wire::files::*;

fn files(state: &AppState) -> Result<Files, ApiError> {
    state
        .files
        .clone()
        .ok_or_else(|| ApiError::unavailable("files are not configured on this server"))
}

fn multipart_error(error: axum::extract::multipart::MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            "the upload exceeds the size limit; raise memory.max_file_bytes",
        )
        .with_param("file");
    }
    ApiError::bad_request(format!(
        "cannot read the multipart form: {}",
        error.body_text()
    ))
}

/// Uploads a file (`multipart/form-data` with `file` and `purpose`). It is stored whole and
/// durable before the answer.
#[utoipa::path(post, path = "/v1/files", tag = "openai",
    request_body(content = FileUpload, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The stored file", body = FileOut),
        (status = 400, description = "A missing part or an unknown purpose", body = ErrorBody),
        (status = 413, description = "Larger than memory.max_file_bytes", body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Json<FileOut>, ApiError> {
    let files = files(&state)?;
    let mut form = form.map_err(|rejection| {
        ApiError::bad_request(format!(
            "send the file as multipart/form-data with `file` and `purpose` parts: {}",
            rejection.body_text()
        ))
    })?;
    let mut file: Option<(String, Vec<u8>)> = None;
    let mut purpose: Option<String> = None;
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("file") => {
                let name = field.file_name().unwrap_or("").to_string();
                let bytes = field.bytes().await.map_err(multipart_error)?;
                if bytes.len() as u64 > files.max_bytes() {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "request_too_large",
                        format!(
                            "the file has {} bytes, at most {} are allowed (memory.max_file_bytes)",
                            bytes.len(),
                            files.max_bytes()
                        ),
                    )
                    .with_param("file"));
                }
                file = Some((name, bytes.to_vec()));
            }
            Some("purpose") => {
                purpose = Some(
                    field
                        .text()
                        .await
                        .map_err(multipart_error)?
                        .trim()
                        .to_string(),
                );
            }
            _ => {}
        }
    }
    let Some((filename, content)) = file else {
        return Err(ApiError::bad_request("the form has no `file` part").with_param("file"));
    };
    let Some(purpose) = purpose else {
        return Err(ApiError::bad_request("the form has no `purpose` part").with_param("purpose"));
    };
    let stored = files.create(&tenant, &filename, &purpose, content).await?;
    Ok(Json(stored.into()))
}

/// The caller's files, newest first unless `order=asc`.
#[utoipa::path(get, path = "/v1/files", tag = "openai",
    params(("purpose" = Option<String>, Query, description = "Only files of this purpose"),
           ("limit" = Option<usize>, Query, description = "1–10000, default 10000"),
           ("order" = Option<String>, Query, description = "asc or desc (default)"),
           ("after" = Option<String>, Query, description = "A file id; the page starts after it")),
    responses(
        (status = 200, description = "A page of files", body = FileList),
        (status = 400, description = "A bad limit or order", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    ApiQuery(query): ApiQuery<FilesQuery>,
) -> Result<Json<FileList>, ApiError> {
    let page = files(&state)?
        .list(
            &tenant,
            &FileListRequest {
                purpose: query.purpose,
                after: query.after,
                limit: query.limit.unwrap_or(MAX_FILE_PAGE),
                descending: query.order != Some(Order::Asc),
            },
        )
        .await?;
    let data: Vec<FileOut> = page.files.into_iter().map(FileOut::from).collect();
    Ok(Json(FileList {
        object: "list",
        first_id: data.first().map(|file| file.id.clone()),
        last_id: data.last().map(|file| file.id.clone()),
        has_more: page.has_more,
        data,
    }))
}

/// One file's description.
#[utoipa::path(get, path = "/v1/files/{file_id}", tag = "openai",
    params(("file_id" = String, Path, description = "The file's id")),
    responses(
        (status = 200, description = "The file", body = FileOut),
        (status = 404, description = "No such file for this tenant", body = ErrorBody)))]
pub async fn retrieve(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(file_id): Path<String>,
) -> Result<Json<FileOut>, ApiError> {
    Ok(Json(files(&state)?.get(&tenant, &file_id).await?.into()))
}

/// A file's bytes, as uploaded.
#[utoipa::path(get, path = "/v1/files/{file_id}/content", tag = "openai",
    params(("file_id" = String, Path, description = "The file's id")),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream"),
        (status = 404, description = "No such file for this tenant", body = ErrorBody)))]
pub async fn content(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(file_id): Path<String>,
) -> Result<Response, ApiError> {
    let (_, bytes) = files(&state)?.content(&tenant, &file_id).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from(bytes),
    )
        .into_response())
}

/// Deletes a file.
#[utoipa::path(delete, path = "/v1/files/{file_id}", tag = "openai",
    params(("file_id" = String, Path, description = "The file's id")),
    responses(
        (status = 200, description = "Deleted", body = FileDeleted),
        (status = 404, description = "No such file for this tenant", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(file_id): Path<String>,
) -> Result<Json<FileDeleted>, ApiError> {
    files(&state)?.delete(&tenant, &file_id).await?;
    Ok(Json(FileDeleted {
        id: file_id,
        object: "file",
        deleted: true,
    }))
}

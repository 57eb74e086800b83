//! Extractors whose rejections are OpenAI-style errors, so a malformed body or query string
//! gets the same JSON shape as every other error.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body. Unlike `axum::Json` it does not insist on `content-type: application/json`:
/// Ollama accepts bodies without it and its users' scripts (`curl -d`) rely on that.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "request_too_large",
                        "request body exceeds the size limit; send a smaller body or raise \
                     server.max_body_bytes",
                    )
                } else {
                    ApiError::bad_request(format!("cannot read the request body: {rejection}"))
                }
            })?;
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(&mut deserializer)
            .map(ApiJson)
            .map_err(body_error)
    }
}

/// A query string. Unlike `axum::extract::Query` its rejection is an OpenAI-style error.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(query)| ApiQuery(query))
            .map_err(|rejection| {
                ApiError::bad_request(format!("invalid query string: {}", rejection.body_text()))
            })
    }
}

/// A body already read as JSON, in a request type, with the same errors as [`ApiJson`].
pub fn parse_json_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(body_error)
}

fn body_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.into_inner();
    if inner.is_data() {
        let mut api_error = ApiError::bad_request(format!("invalid request body: {path}: {inner}"));
        if path != "." {
            api_error = api_error.with_param(path);
        }
        api_error
    } else {
        ApiError::bad_request(format!("request body is not valid JSON: {inner}"))
    }
}

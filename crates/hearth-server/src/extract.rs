//! Extractors whose rejections are OpenAI-style errors, so a malformed body gets the same JSON
//! shape as every other error, with the field at fault named when serde knows it.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `axum::Json`, with rejections mapped to [`ApiError`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            "request body exceeds the size limit; send a smaller body or raise server.max_body_bytes",
        );
    }
    match rejection {
        JsonRejection::JsonDataError(error) => {
            // serde_path_to_error renders "path.to.field: problem"; lift the path into `param`.
            let detail = error.body_text();
            let message = detail
                .strip_prefix("Failed to deserialize the JSON body into the target type: ")
                .unwrap_or(&detail)
                .to_string();
            let param = message
                .split_once(": ")
                .map(|(path, _)| path.to_string())
                .filter(|path| !path.contains(' '));
            let mut api_error = ApiError::bad_request(format!("invalid request body: {message}"));
            if let Some(param) = param {
                api_error = api_error.with_param(param);
            }
            api_error
        }
        JsonRejection::JsonSyntaxError(error) => ApiError::bad_request(format!(
            "request body is not valid JSON: {}",
            error.body_text()
        )),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with the header content-type: application/json",
        ),
        other => ApiError::bad_request(other.body_text()),
    }
}

//! Requests for routed models (a `[[routes]]` alias, or `upstream/model`) go to upstream
//! providers through `hearth_upstream::Routing`; the upstream's answer streams back to the
//! client chunk by chunk, unbuffered, with the usage it reports metered on the way. When a
//! route degrades to a local target, the handler serves it with the local engine as usual.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hearth_upstream::{Dispatch, Plan, RoutingError};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::extract::parse_json_value;
use crate::gate::Meter;
use crate::state::AppState;

/// A request body for a local model, or one bound for a route.
pub enum Routed<T> {
    Local(T),
    Upstream(Forward),
}

/// A request to forward: its plan and its JSON body as the client sent it.
pub struct Forward {
    plan: Plan,
    body: serde_json::Value,
}

impl<T: DeserializeOwned> Routed<T> {
    /// Sorts a request body: bound for a route (by its `model`), or for a local model.
    pub fn resolve(state: &AppState, body: serde_json::Value) -> Result<Routed<T>, ApiError> {
        let plan = state.routing.as_ref().and_then(|routing| {
            body.get("model")
                .and_then(|model| model.as_str())
                .and_then(|model| routing.current().plan(model))
        });
        match plan {
            Some(plan) => Ok(Routed::Upstream(Forward { plan, body })),
            None => Ok(Routed::Local(parse_json_value(body)?)),
        }
    }
}

/// How a forwarded request ended.
pub enum Forwarded {
    /// The upstream's answer, ready for the client.
    Response(Response),
    /// The route degraded to a local model: serve this request (its `model` set to it) here.
    Local(serde_json::Value),
}

impl Forwarded {
    /// The request for the local model, in the handler's own request type.
    pub fn local_request<T: DeserializeOwned>(body: serde_json::Value) -> Result<T, ApiError> {
        parse_json_value(body)
    }
}

/// Forwards to the plan's targets, `endpoint` being the path under an upstream's base URL
/// (`/chat/completions`).
pub async fn forward(
    state: &AppState,
    meter: &Meter,
    forward: Forward,
    endpoint: &str,
) -> Result<Forwarded, ApiError> {
    let routing = state
        .routing
        .as_ref()
        .map(|routing| routing.current())
        .ok_or_else(|| ApiError::unavailable("routing is not configured on this server"))?;
    let Forward { plan, mut body } = forward;
    let alias = plan.route.clone();
    let stream = body.get("stream").and_then(|value| value.as_bool()) == Some(true);
    // Ask a streaming upstream for usage so the request can be metered; a client that did
    // not ask for it does not see the extra chunk.
    let client_wants_usage = body
        .pointer("/stream_options/include_usage")
        .and_then(|value| value.as_bool())
        == Some(true);
    if stream
        && !client_wants_usage
        && let Some(object) = body.as_object_mut()
    {
        object.insert(
            "stream_options".to_string(),
            serde_json::json!({"include_usage": true}),
        );
    }
    match routing.dispatch(&plan, endpoint, &body).await {
        Ok(Dispatch::Local { model, attempts }) => {
            if !attempts.is_empty() {
                tracing::warn!(route = %alias, local = %model, ?attempts, "every remote target failed; serving locally");
            }
            if let Some(object) = body.as_object_mut() {
                object.insert("model".to_string(), serde_json::Value::String(model));
                if stream && !client_wants_usage {
                    object.remove("stream_options");
                }
            }
            Ok(Forwarded::Local(body))
        }
        Ok(Dispatch::Remote {
            response,
            target,
            in_flight,
            attempts,
        }) => {
            tracing::debug!(route = %alias, %target, ?attempts, "served by an upstream");
            meter.served_by(&target);
            let status =
                StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let content_type = response
                .headers()
                .get(hearth_upstream::reqwest::header::CONTENT_TYPE)
                .and_then(|value| HeaderValue::from_bytes(value.as_bytes()).ok())
                .unwrap_or(HeaderValue::from_static("application/json"));
            let target_header = HeaderValue::from_str(&target).ok();
            let body = if stream {
                let mut sniffer = UsageSniffer::new(meter.clone(), alias, client_wants_usage);
                let chunks = response.bytes_stream().map(move |chunk| {
                    // The in-flight mark lasts as long as the body streams.
                    let _in_flight = &in_flight;
                    chunk
                        .map(|bytes| sniffer.pass(&bytes))
                        .map_err(std::io::Error::other)
                });
                Body::from_stream(chunks)
            } else {
                let bytes = response.bytes().await.map_err(|error| {
                    ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        "upstream_failed",
                        format!("{target} failed while sending its answer: {error}"),
                    )
                })?;
                drop(in_flight);
                meter_json_usage(meter, &alias, &bytes);
                Body::from(bytes)
            };
            let mut response = (status, body).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type);
            if let Some(value) = target_header {
                response.headers_mut().insert("x-hearth-target", value);
            }
            Ok(Forwarded::Response(response))
        }
        Err(RoutingError::Rejected {
            target,
            status,
            content_type,
            body,
        }) => {
            // The upstream's own error, as it sent it: clients of that provider understand it.
            let mut response = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                body,
            )
                .into_response();
            if let Some(value) = content_type.and_then(|text| HeaderValue::from_str(&text).ok()) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            if let Ok(value) = HeaderValue::from_str(&target) {
                response.headers_mut().insert("x-hearth-target", value);
            }
            Ok(Forwarded::Response(response))
        }
        Err(error @ RoutingError::AllFailed { .. }) => {
            let RoutingError::AllFailed {
                last_status,
                retry_after,
                ..
            } = &error
            else {
                unreachable!("matched above");
            };
            let (status, code) = match last_status {
                Some(429) => (StatusCode::TOO_MANY_REQUESTS, "upstream_rate_limited"),
                None if retry_after.is_some() => {
                    (StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable")
                }
                _ => (StatusCode::BAD_GATEWAY, "upstream_unavailable"),
            };
            let mut api_error = ApiError::new(status, code, error.to_string());
            if let Some(wait) = retry_after {
                api_error = api_error.with_retry_after(wait.as_secs().max(1));
            }
            Err(api_error)
        }
    }
}

/// Meters a whole JSON answer by its `usage` object.
fn meter_json_usage(meter: &Meter, alias: &str, bytes: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return;
    };
    meter_usage(meter, alias, &value["usage"]);
}

fn meter_usage(meter: &Meter, alias: &str, usage: &serde_json::Value) {
    let count = |name: &str| {
        usage
            .get(name)
            .and_then(|value| value.as_u64())
            .unwrap_or(0) as usize
    };
    meter.started(alias, count("prompt_tokens"));
    meter.generated(count("completion_tokens"));
}

/// Watches an SSE stream line by line for the chunk that carries `usage`, meters it, and
/// drops it when the client did not ask for usage (it was requested on its behalf).
struct UsageSniffer {
    meter: Meter,
    alias: String,
    keep_usage_chunk: bool,
    partial: Vec<u8>,
}

impl UsageSniffer {
    fn new(meter: Meter, alias: String, keep_usage_chunk: bool) -> UsageSniffer {
        UsageSniffer {
            meter,
            alias,
            keep_usage_chunk,
            partial: Vec::new(),
        }
    }

    /// The bytes to send on for `chunk`: whole lines only, the rest kept for the next chunk.
    fn pass(&mut self, chunk: &[u8]) -> Bytes {
        self.partial.extend_from_slice(chunk);
        let Some(last_newline) = self.partial.iter().rposition(|&byte| byte == b'\n') else {
            return Bytes::new();
        };
        let rest = self.partial.split_off(last_newline + 1);
        let complete = std::mem::replace(&mut self.partial, rest);
        let mut out = Vec::with_capacity(complete.len());
        for line in complete.split_inclusive(|&byte| byte == b'\n') {
            if line.starts_with(b"data: {") && contains(line, b"\"usage\"") {
                let json = &line[b"data: ".len()..];
                if let Ok(value) = serde_json::from_slice::<serde_json::Value>(json)
                    && value["usage"].is_object()
                {
                    meter_usage(&self.meter, &self.alias, &value["usage"]);
                    let usage_only = value["choices"]
                        .as_array()
                        .is_some_and(|choices| choices.is_empty());
                    if usage_only && !self.keep_usage_chunk {
                        continue;
                    }
                }
            }
            out.extend_from_slice(line);
        }
        Bytes::from(out)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// The routing in force, for the models listing.
pub fn route_names(state: &AppState) -> Vec<String> {
    state
        .routing
        .as_ref()
        .map(|routing: &Arc<hearth_upstream::RoutingHandle>| routing.current().route_names())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sniffer_passes_whole_lines_and_drops_the_usage_chunk_nobody_asked_for() {
        let mut sniffer =
            UsageSniffer::new(Meter::detached_for_tests(), "smart".to_string(), false);
        let mut out = Vec::new();
        for chunk in [
            &b"data: {\"choices\": [{\"delta\": {\"content\": \"Hi\"}}]}\n\nda"[..],
            b"ta: {\"choices\": [], \"usage\": {\"prompt_tokens\": 3, \"completion_tokens\": 2}}\n\n",
            b"data: [DONE]\n\n",
        ] {
            out.extend_from_slice(&sniffer.pass(chunk));
        }
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text,
            // The dropped event leaves its blank line, which SSE clients skip.
            "data: {\"choices\": [{\"delta\": {\"content\": \"Hi\"}}]}\n\n\ndata: [DONE]\n\n"
        );
        let mut keeping = UsageSniffer::new(Meter::detached_for_tests(), "smart".to_string(), true);
        let kept = keeping.pass(b"data: {\"choices\": [], \"usage\": {\"prompt_tokens\": 3}}\n");
        assert!(!kept.is_empty());
    }
}

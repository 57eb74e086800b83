//! The response caches around the OpenAI generation and embedding endpoints: a hit answers
//! from the cache (`x-hearth-cache: hit`); a miss runs the request and stores its answer once
//! the body has been sent whole (`miss`); a request that may not be cached, or asks not to be
//! (`x-hearth-cache: bypass`, `Cache-Control: no-cache|no-store`), says `bypass`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hearth_gateway::{CachedAnswer, ResponseCache};

use crate::gate::{Caller, Meter};
use crate::state::AppState;

const CACHE_HEADER: &str = "x-hearth-cache";

/// The caches and the embedding model of the semantic one.
#[derive(Clone)]
pub struct CacheState {
    pub cache: Arc<ResponseCache>,
    /// The local embedding model that embeds questions for the semantic cache.
    pub semantic_model: Option<String>,
}

/// Whose cache a request reads: its tenant's (none for the local user).
#[derive(Debug, Clone)]
pub struct CacheScope(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for CacheScope {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(CacheScope(match parts.extensions.get::<Caller>() {
            Some(Caller::Key(principal)) => principal
                .tenant_id
                .clone()
                // An instance key's requests share one scope of their own.
                .or_else(|| Some(String::from("(instance)"))),
            _ => None,
        }))
    }
}

/// What the cache decided before the request ran.
pub enum Lookup {
    Hit(Response),
    /// Run the request, then store the answer under these keys.
    Miss(Fill),
    Bypass,
    /// No cache configured: no header either.
    Off,
}

pub struct Fill {
    cache: Arc<ResponseCache>,
    exact: Option<String>,
    semantic: Option<(String, Vec<f32>)>,
}

fn hit(answer: &CachedAnswer, kind: &'static str) -> Response {
    metrics::counter!("hearth_cache_requests_total", "cache" => kind, "outcome" => "hit")
        .increment(1);
    let mut response = (StatusCode::OK, answer.body.clone()).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&answer.content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(CACHE_HEADER, HeaderValue::from_static("hit"));
    headers.insert("x-hearth-cache-kind", HeaderValue::from_static(kind));
    response
}

fn wants_bypass(headers: &HeaderMap) -> bool {
    let header_says = |name: &str, words: &[&str]| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                let value = value.to_ascii_lowercase();
                words.iter().any(|word| value.contains(word))
            })
    };
    header_says(CACHE_HEADER, &["bypass"])
        || header_says("cache-control", &["no-cache", "no-store"])
}

/// Looks the request up in the caches.
pub async fn lookup(
    state: &AppState,
    scope: &CacheScope,
    headers: &HeaderMap,
    endpoint: &str,
    body: &serde_json::Value,
) -> Lookup {
    let Some(cache_state) = &state.cache else {
        return Lookup::Off;
    };
    let cache = &cache_state.cache;
    if wants_bypass(headers) {
        metrics::counter!("hearth_cache_requests_total", "cache" => "exact", "outcome" => "bypass")
            .increment(1);
        return Lookup::Bypass;
    }
    let tenant = scope.0.as_deref();
    let Some(exact) = cache.exact_key(tenant, endpoint, body) else {
        return Lookup::Bypass;
    };
    let now = Instant::now();
    if let Some(answer) = cache.get(&exact, now) {
        return Lookup::Hit(hit(&answer, "exact"));
    }
    metrics::counter!("hearth_cache_requests_total", "cache" => "exact", "outcome" => "miss")
        .increment(1);
    let mut semantic = None;
    if let (Some(model), Some((context, text))) = (
        &cache_state.semantic_model,
        cache.semantic_context(tenant, endpoint, body),
    ) && let Some(embedding) = embed(state, model, text).await
    {
        if let Some((answer, similarity)) = cache.semantic_get(&context, &embedding, now) {
            let mut response = hit(&answer, "semantic");
            if let Ok(value) = HeaderValue::from_str(&format!("{similarity:.4}")) {
                response
                    .headers_mut()
                    .insert("x-hearth-cache-similarity", value);
            }
            return Lookup::Hit(response);
        }
        metrics::counter!("hearth_cache_requests_total", "cache" => "semantic", "outcome" => "miss")
            .increment(1);
        semantic = Some((context, embedding));
    }
    Lookup::Miss(Fill {
        cache: cache.clone(),
        exact: Some(exact),
        semantic,
    })
}

async fn embed(state: &AppState, model: &str, text: String) -> Option<Vec<f32>> {
    let inference = state.inference.as_ref()?;
    let (_, service) = match inference.embedding_model(model, None).await {
        Ok(found) => found,
        Err(error) => {
            tracing::warn!(%error, model, "the semantic cache cannot embed; exact cache only");
            return None;
        }
    };
    let embeddings = service.embed(vec![text]).await.ok()?;
    embeddings.items.into_iter().next().map(|item| item.vector)
}

impl Lookup {
    /// Marks the response, and on a miss arranges for its answer to be stored once the
    /// whole body has gone out.
    pub fn finish(self, mut response: Response) -> Response {
        let label = match &self {
            Lookup::Off | Lookup::Hit(_) => return response,
            Lookup::Bypass => "bypass",
            Lookup::Miss(_) => "miss",
        };
        response
            .headers_mut()
            .insert(CACHE_HEADER, HeaderValue::from_static(label));
        let Lookup::Miss(fill) = self else {
            return response;
        };
        if response.status() != StatusCode::OK {
            return response;
        }
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("application/json")
            .to_string();
        response.map(|body| {
            Body::new(CaptureBody {
                body,
                captured: Vec::new(),
                fill: Some((fill, content_type)),
            })
        })
    }
}

/// Passes the body through while keeping a copy; at its end the copy is stored. A body cut
/// short (the client left) or larger than an entry may be is not stored.
struct CaptureBody {
    body: Body,
    captured: Vec<u8>,
    fill: Option<(Fill, String)>,
}

impl CaptureBody {
    /// Stores the whole answer, once.
    fn store(&mut self) {
        let Some((fill, content_type)) = self.fill.take() else {
            return;
        };
        let answer = CachedAnswer {
            content_type,
            body: std::mem::take(&mut self.captured),
        };
        let now = Instant::now();
        if let Some((context, embedding)) = fill.semantic {
            fill.cache
                .semantic_put(context, embedding, answer.clone(), now);
        }
        if let Some(key) = fill.exact {
            fill.cache.put(key, answer, now);
        }
    }
}

impl HttpBody for CaptureBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(context);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some((fill, _))) = (frame.data_ref(), &this.fill) {
                    if fill.cache.fits(this.captured.len() + data.len()) {
                        this.captured.extend_from_slice(data);
                    } else {
                        this.fill = None;
                    }
                }
                // A body of known length is not polled past its last byte.
                if this.body.is_end_stream() {
                    this.store();
                }
            }
            Poll::Ready(Some(Err(_))) => this.fill = None,
            Poll::Ready(None) => this.store(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Runs an endpoint behind the caches: a hit answers at once, anything else runs `run` and
/// marks (and on a miss, stores) its answer.
pub async fn cached<Run, Fut>(
    state: &AppState,
    meter: &Meter,
    scope: &CacheScope,
    headers: &HeaderMap,
    endpoint: &str,
    body: serde_json::Value,
    run: Run,
) -> Result<Response, crate::error::ApiError>
where
    Run: FnOnce(serde_json::Value) -> Fut,
    Fut: std::future::Future<Output = Result<Response, crate::error::ApiError>>,
{
    let lookup = lookup(state, scope, headers, endpoint, &body).await;
    if let Lookup::Hit(response) = lookup {
        let model = body
            .get("model")
            .and_then(|model| model.as_str())
            .unwrap_or("");
        meter.cache_hit(model);
        return Ok(response);
    }
    let response = run(body).await?;
    Ok(lookup.finish(response))
}

//! Routing requests to OpenAI-compatible upstream providers.
//!
//! A client names a model; a route (`[[routes]]` in the config) maps that name to a group of
//! targets, remote (`primary/gpt-4o-mini`) or local (`local/gemma3:270m`), and a strategy that
//! orders them for each request: priority with fallback, smooth weighted round robin, lowest
//! latency (EWMA of the time to response headers) or least busy (requests in flight). A circuit
//! breaker per target takes a failing target out of rotation and lets one probe through once
//! its open period ends. [`Routing::dispatch`] tries the targets in order, retrying with jittered
//! exponential backoff on 429, 5xx, timeouts and connection errors, and returns the first
//! response whose headers say success, so its body can be streamed to the client as it
//! arrives. A local target ends the search: the caller serves it with its own engine.
//!
//! Boundary: an HTTP client (reqwest, pooled) speaking JSON bodies as they are; it knows
//! nothing of the server, and OpenAI's shapes only as far as the `model` field.

mod breaker;
mod routing;

/// The HTTP client the responses come from, for callers reading their headers and bodies.
pub use reqwest;

pub use breaker::{Breaker, BreakerSettings, BreakerState};
pub use routing::{
    Attempt, Dispatch, InFlight, Plan, Routing, RoutingError, RoutingHandle, Target, TargetStats,
};

//! Readiness: each component of the server reports its state, and `/readyz` answers 200 only
//! when all are ready and the server is not draining for shutdown. Load balancers use it to
//! decide where traffic goes; liveness (`/healthz`) stays 200 meanwhile.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;

/// One component's state.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ComponentState {
    /// `starting`, `ready` or `failed`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ComponentState {
    pub fn starting() -> ComponentState {
        ComponentState {
            status: "starting",
            message: None,
        }
    }

    pub fn ready() -> ComponentState {
        ComponentState {
            status: "ready",
            message: None,
        }
    }

    pub fn failed(message: impl Into<String>) -> ComponentState {
        ComponentState {
            status: "failed",
            message: Some(message.into()),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.status == "ready"
    }
}

#[derive(Debug, Default)]
struct Components {
    states: BTreeMap<String, ComponentState>,
    draining: bool,
}

/// Shared readiness registry; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    inner: Arc<RwLock<Components>>,
}

impl Readiness {
    pub fn set(&self, component: &str, state: ComponentState) {
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        inner.states.insert(component.to_string(), state);
    }

    /// Marks the server as shutting down: readiness fails from now on.
    pub fn start_draining(&self) {
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        inner.draining = true;
    }

    pub fn is_draining(&self) -> bool {
        self.inner
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .draining
    }

    pub fn snapshot(&self) -> BTreeMap<String, ComponentState> {
        self.inner
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .states
            .clone()
    }
}

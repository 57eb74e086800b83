//! One version of one plugin, ready to serve: its pre-linked component, its idle instances and
//! the permits that bound how many run at once. A call takes an idle instance (or makes one
//! from the pool), runs under the call's deadline and the plugin's memory limit, and gives the
//! instance back only if the call ended cleanly: a stopped call's instance is dropped and the
//! next call gets a fresh one.

use std::future::Future;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::PluginError;
use crate::error::StopReason;
use crate::manifest::Manifest;
use crate::runtime::bindings::exports::hearth::plugin::guest;
use crate::runtime::bindings::{Plugin, PluginPre};
use crate::runtime::{CallState, EPOCH_TICK, GuestIdentity, GuestState, HostServices, Runtime};

/// A tool a plugin offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// The JSON schema of its arguments, as JSON text.
    pub parameters: String,
}

/// An event for a plugin's handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestEvent {
    pub topic: String,
    pub id: String,
    pub payload: String,
    pub delivery: u32,
}

/// What a call asks the guest.
pub(crate) enum Request {
    Tools,
    Tool { name: String, arguments: String },
    Event(GuestEvent),
}

/// What the guest answered.
pub(crate) enum Answer {
    Tools(Vec<ToolSpec>),
    Tool(Result<String, String>),
    Event(Result<(), String>),
}

/// An instance between calls.
struct Warm {
    store: wasmtime::Store<GuestState>,
    plugin: Plugin,
}

pub(crate) struct Loaded {
    pub manifest: Manifest,
    pub tools: Vec<ToolSpec>,
    pub guest: Arc<GuestIdentity>,
    pre: PluginPre<GuestState>,
    idle: Mutex<Vec<Warm>>,
    running: Semaphore,
    /// Calls stopped in a row; a clean call resets it.
    pub consecutive_stops: AtomicU32,
}

/// How long past its deadline a call may wait on the host before it is dropped. The epoch
/// check stops a computing guest at the deadline itself; this margin lets that (more precise)
/// reason win.
const HOST_GRACE: Duration = Duration::from_millis(2 * EPOCH_TICK.as_millis() as u64);

impl Loaded {
    /// Prepares a compiled component and asks it for its tools (which also proves it
    /// instantiates within its limits).
    pub async fn new(
        runtime: &Runtime,
        host: &Arc<HostServices>,
        manifest: Manifest,
        pre: PluginPre<GuestState>,
        guest: Arc<GuestIdentity>,
    ) -> Result<Loaded, PluginError> {
        let mut loaded = Loaded {
            running: Semaphore::new(manifest.limits.max_instances as usize),
            manifest,
            tools: Vec::new(),
            guest,
            pre,
            idle: Mutex::new(Vec::new()),
            consecutive_stops: AtomicU32::new(0),
        };
        let tools = match loaded.call(runtime, host, "", Request::Tools).await {
            Ok(Answer::Tools(tools)) => tools,
            Ok(_) => unreachable!("a tools request answers tools"),
            Err(PluginError::Stopped {
                reason, message, ..
            }) => {
                return Err(PluginError::InvalidComponent(format!(
                    "listing its tools was stopped ({reason}): {message}"
                )));
            }
            Err(error) => return Err(error),
        };
        check_tools(&tools)?;
        loaded.tools = tools;
        Ok(loaded)
    }

    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// Idle instances kept for the next calls.
    pub fn idle_instances(&self) -> usize {
        self.idle.lock().map(|idle| idle.len()).unwrap_or(0)
    }

    /// Makes instances ahead of calls, up to `count` and the plugin's `max_instances` idle;
    /// returns how many are idle now.
    pub async fn prewarm(
        &self,
        runtime: &Runtime,
        host: &Arc<HostServices>,
        count: usize,
    ) -> Result<usize, PluginError> {
        let limit = self.manifest.limits.max_instances as usize;
        for _ in 0..count {
            if self.idle_instances() >= limit {
                break;
            }
            let deadline = Instant::now() + Duration::from_millis(self.manifest.limits.timeout_ms);
            let mut store = runtime.new_store(&self.guest, host);
            store.data_mut().call = CallState::new("", deadline);
            store.set_epoch_deadline(1);
            let plugin = self
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(|error| PluginError::Runtime(format!("making an instance: {error:#}")))?;
            if let Ok(mut idle) = self.idle.lock() {
                idle.push(Warm { store, plugin });
            }
        }
        Ok(self.idle_instances())
    }

    /// Runs one request in an instance, within the plugin's limits.
    pub async fn call(
        &self,
        runtime: &Runtime,
        host: &Arc<HostServices>,
        tenant_id: &str,
        request: Request,
    ) -> Result<Answer, PluginError> {
        let timeout = Duration::from_millis(self.manifest.limits.timeout_ms);
        let deadline = Instant::now() + timeout;
        let stopped = |reason: StopReason, message: String| PluginError::Stopped {
            plugin: self.name().to_string(),
            reason,
            message,
        };
        // A free permit is taken at once; only a full plugin waits, within the deadline.
        let free = self.running.try_acquire().ok();
        let waited = match free {
            Some(permit) => Ok(Ok(permit)),
            None => tokio::time::timeout_at(deadline.into(), self.running.acquire()).await,
        };
        let _permit = match waited {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(PluginError::Runtime("the plugin is closing".into())),
            Err(_) => {
                return Err(stopped(
                    StopReason::Time,
                    format!(
                        "all {} instances stayed busy for the call's whole timeout",
                        self.manifest.limits.max_instances
                    ),
                ));
            }
        };
        let reused = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut store;
        let plugin;
        match reused {
            Some(warm) => {
                store = warm.store;
                plugin = Some(warm.plugin);
            }
            None => {
                store = runtime.new_store(&self.guest, host);
                plugin = None;
            }
        }
        store.data_mut().call.start(tenant_id, deadline);
        store.set_epoch_deadline(1);

        // Most calls finish in their first poll (the guest computes and answers without
        // waiting on the host): only a call that has to wait arms the wall-clock timer.
        let outcome = {
            let mut running = std::pin::pin!(run(&self.pre, &mut store, plugin, request));
            let first =
                std::future::poll_fn(|context| Poll::Ready(running.as_mut().poll(context))).await;
            match first {
                Poll::Ready(result) => Ok(result),
                Poll::Pending => {
                    tokio::time::timeout_at((deadline + HOST_GRACE).into(), running).await
                }
            }
        };
        match outcome {
            Ok(Ok((plugin, answer))) => {
                if let Ok(mut idle) = self.idle.lock()
                    && idle.len() < self.manifest.limits.max_instances as usize
                {
                    idle.push(Warm { store, plugin });
                }
                Ok(answer)
            }
            Ok(Err(error)) => {
                let state = store.data();
                let reason = if state.memory.exceeded {
                    StopReason::Memory
                } else {
                    state.call.stopped.unwrap_or(StopReason::Trap)
                };
                Err(stopped(reason, trap_message(&error)))
            }
            Err(_) => Err(stopped(
                StopReason::Time,
                format!(
                    "the call did not finish within {} ms",
                    self.manifest.limits.timeout_ms
                ),
            )),
        }
    }
}

/// Instantiates if needed, then asks.
async fn run(
    pre: &PluginPre<GuestState>,
    store: &mut wasmtime::Store<GuestState>,
    plugin: Option<Plugin>,
    request: Request,
) -> wasmtime::Result<(Plugin, Answer)> {
    let plugin = match plugin {
        Some(plugin) => plugin,
        None => pre.instantiate_async(&mut *store).await?,
    };
    let guest = plugin.hearth_plugin_guest();
    let answer = match request {
        Request::Tools => Answer::Tools(
            guest
                .call_tools(&mut *store)
                .await?
                .into_iter()
                .map(|tool| ToolSpec {
                    name: tool.name,
                    description: tool.description,
                    parameters: tool.parameters,
                })
                .collect(),
        ),
        Request::Tool { name, arguments } => {
            Answer::Tool(guest.call_call_tool(&mut *store, &name, &arguments).await?)
        }
        Request::Event(event) => {
            let event = guest::Event {
                topic: event.topic,
                id: event.id,
                payload: event.payload,
                delivery: event.delivery,
            };
            Answer::Event(guest.call_handle_event(&mut *store, &event).await?)
        }
    };
    Ok((plugin, answer))
}

/// The first line of a trap's message chain that says what happened.
fn trap_message(error: &wasmtime::Error) -> String {
    let mut message = error.to_string();
    if let Some(cause) = error.chain().skip(1).last() {
        message = format!("{message}: {cause}");
    }
    message
}

/// A tool name: 1–64 letters, digits, `_` and `-` (what OpenAI's function names allow).
pub(crate) fn valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn check_tools(tools: &[ToolSpec]) -> Result<(), PluginError> {
    let invalid = |message: String| PluginError::InvalidComponent(message);
    for (index, tool) in tools.iter().enumerate() {
        if !valid_tool_name(&tool.name) {
            return Err(invalid(format!(
                "tool {:?} has a name that is not 1-64 letters, digits, '_' and '-'",
                tool.name
            )));
        }
        if tools[..index].iter().any(|other| other.name == tool.name) {
            return Err(invalid(format!("two tools are named {:?}", tool.name)));
        }
        match serde_json::from_str::<serde_json::Value>(&tool.parameters) {
            Ok(serde_json::Value::Object(_)) => {}
            _ => {
                return Err(invalid(format!(
                    "tool {:?}: its parameters are not a JSON schema object",
                    tool.name
                )));
            }
        }
    }
    Ok(())
}

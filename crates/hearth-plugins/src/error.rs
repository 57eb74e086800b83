//! The plugin service's errors: what was refused and why, and how a call was stopped.

use std::fmt;

use hearth_store::StoreError;

/// Why the host stopped a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// The guest was still computing when its time ran out (epoch interruption).
    Cpu,
    /// The guest asked for more memory than its limit.
    Memory,
    /// The call's wall time ran out while it waited on the host (a host call, an instance).
    Time,
    /// The guest trapped by itself (a panic, an unreachable, an out-of-bounds access).
    Trap,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Cpu => "cpu",
            StopReason::Memory => "memory",
            StopReason::Time => "time",
            StopReason::Trap => "trap",
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{field}: {message}")]
    InvalidManifest { field: String, message: String },
    /// The component imports something its manifest does not declare, or that no manifest can.
    #[error("the component imports {import}, {reason}")]
    ImportRefused { import: String, reason: String },
    /// The bytes are not a component Hearth can run (not a component, no `guest` export, a
    /// compile error).
    #[error("not a Hearth plugin: {0}")]
    InvalidComponent(String),
    /// A signature is missing where one is required, or does not verify.
    #[error("{0}")]
    InvalidSignature(String),
    #[error("no plugin named {0}")]
    NotFound(String),
    #[error("a plugin named {0} is installed already; upgrade it instead")]
    AlreadyInstalled(String),
    #[error("plugin {0} has no earlier version to roll back to")]
    NoPreviousVersion(String),
    #[error("plugin {name} is disabled: {reason}")]
    Disabled { name: String, reason: String },
    #[error("plugin {plugin} has no tool named {tool}")]
    ToolNotFound { plugin: String, tool: String },
    /// The tool ran and answered an error of its own.
    #[error("{0}")]
    ToolFailed(String),
    /// The host stopped the call.
    #[error("plugin {plugin} was stopped ({reason}): {message}")]
    Stopped {
        plugin: String,
        reason: StopReason,
        message: String,
    },
    #[error("{field}: {message}")]
    InvalidArguments { field: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("plugin files: {0}")]
    Io(#[from] std::io::Error),
    #[error("the plugin runtime failed: {0}")]
    Runtime(String),
}

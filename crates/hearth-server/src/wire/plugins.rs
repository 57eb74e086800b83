//! The JSON shapes of plugins under `/v1/plugins`: installing (a manifest and a base64
//! component), what an installed plugin declares and offers, tool calls and log lines.

use hearth_plugins::{LogLine, PluginInfo, ToolSpec};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A plugin to install, or a new version of one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginIn {
    /// The manifest (`plugin.toml`) as text.
    pub manifest: String,
    /// The WebAssembly component, base64.
    pub component: String,
    /// An ed25519 signature (base64, from `hearth plugins sign`) over the manifest and the
    /// component, by a key in `plugins.trusted_keys`; required unless the server allows
    /// unsigned plugins.
    pub signature: Option<String>,
}

/// What a plugin may touch.
#[derive(Debug, Serialize, ToSchema)]
pub struct CapabilitiesOut {
    pub kv: bool,
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
    /// Origins its HTTP may reach.
    pub http: Vec<String>,
    /// Memory collections (names, or prefixes ending in `*`) it may read, in the caller's
    /// tenant.
    pub memory_read: Vec<String>,
    /// Memory collections it may write.
    pub memory_write: Vec<String>,
    /// The secrets it may read (by name).
    pub secrets: Vec<String>,
}

/// The limits each call of the plugin runs under.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitsOut {
    pub memory_mib: u64,
    pub timeout_ms: u64,
    pub max_instances: u32,
    pub failures_to_disable: u32,
}

/// A tool a plugin offers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ToolOut {
    pub name: String,
    pub description: String,
    /// The JSON schema of its arguments.
    #[schema(value_type = Object)]
    pub parameters: Value,
}

impl From<ToolSpec> for ToolOut {
    fn from(tool: ToolSpec) -> ToolOut {
        ToolOut {
            // Checked to be a JSON object at install.
            parameters: serde_json::from_str(&tool.parameters).unwrap_or(Value::Null),
            name: tool.name,
            description: tool.description,
        }
    }
}

/// An installed plugin.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginOut {
    /// Always `plugin`.
    pub object: &'static str,
    pub name: String,
    pub version: String,
    pub description: String,
    pub enabled: bool,
    /// Why it is disabled (an administrator, or its breaker after repeated stops).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// The version a rollback returns to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    /// The component's sha256.
    pub sha256: String,
    /// The trusted public key whose signature it carries (absent: unsigned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    pub capabilities: CapabilitiesOut,
    pub limits: LimitsOut,
    pub tools: Vec<ToolOut>,
    /// Its configuration (`PUT /v1/plugins/{plugin}/config`).
    #[schema(value_type = Object)]
    pub config: Value,
    /// The JSON schema its configuration must match (absent: any object).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub config_schema: Option<Value>,
    /// Instances kept warm for the next calls.
    pub idle_instances: usize,
    /// Unix seconds.
    pub installed_at: i64,
    pub updated_at: i64,
}

impl From<PluginInfo> for PluginOut {
    fn from(info: PluginInfo) -> PluginOut {
        let manifest = info.manifest;
        PluginOut {
            object: "plugin",
            name: manifest.name,
            version: manifest.version,
            description: manifest.description,
            enabled: info.enabled,
            disabled_reason: info.disabled_reason,
            previous_version: info.previous_version,
            sha256: info.sha256,
            signed_by: info.signed_by,
            capabilities: CapabilitiesOut {
                kv: manifest.capabilities.kv,
                publish: manifest.capabilities.publish,
                subscribe: manifest.capabilities.subscribe,
                http: manifest.capabilities.http,
                memory_read: manifest.capabilities.memory_read,
                memory_write: manifest.capabilities.memory_write,
                secrets: manifest.capabilities.secrets,
            },
            limits: LimitsOut {
                memory_mib: manifest.limits.memory_bytes >> 20,
                timeout_ms: manifest.limits.timeout_ms,
                max_instances: manifest.limits.max_instances,
                failures_to_disable: manifest.limits.failures_to_disable,
            },
            tools: info.tools.into_iter().map(ToolOut::from).collect(),
            config: info.config,
            config_schema: manifest.config_schema,
            idle_instances: info.idle_instances,
            installed_at: info.installed_at_ms / 1000,
            updated_at: info.updated_at_ms / 1000,
        }
    }
}

/// A tool's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ToolCallOut {
    /// Always `plugin.tool_call`.
    pub object: &'static str,
    pub plugin: String,
    pub tool: String,
    /// What the tool answered (usually JSON), as text, as a model would read it.
    pub output: String,
    pub duration_ms: f64,
}

/// How many log lines to read.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    /// 1–1000, default 100.
    pub limit: Option<usize>,
}

/// One line of a plugin's log.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogLineOut {
    /// RFC 3339.
    pub time: String,
    pub level: &'static str,
    pub message: String,
}

impl From<LogLine> for LogLineOut {
    fn from(line: LogLine) -> LogLineOut {
        LogLineOut {
            time: hearth_time::rfc3339_from_unix_millis(line.time_ms),
            level: line.level,
            message: line.message,
        }
    }
}

/// Hearth's extension on `/v1/chat/completions`: plugin tools the model may call, run in the
/// sandbox by the server, whose results go back to the model until it answers.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginToolsIn {
    /// Plugins (`calculator`: all its tools) or single tools (`calculator.convert`); absent:
    /// every tool of every enabled plugin.
    #[schema(max_items = 32)]
    pub tools: Option<Vec<String>>,
    /// Generations at most (1–8, default 4): the last one may not call tools, so the model
    /// answers.
    #[schema(minimum = 1, maximum = 8)]
    pub max_steps: Option<u32>,
}

/// A plugin tool the server ran during a chat.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginCallOut {
    /// The generation (from 1) whose reply called it.
    pub step: u32,
    /// The id of the model's tool call.
    pub call_id: String,
    pub plugin: String,
    pub tool: String,
    /// The arguments the model gave.
    #[schema(value_type = Object)]
    pub arguments: Value,
    /// The tool's answer, as the model read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Why there is no answer: `tool_error`, `plugin_stopped` (with the reason in the
    /// message), `plugin_disabled`, `invalid_arguments`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<PluginCallErrorOut>,
    pub duration_ms: f64,
}

/// What went wrong in a plugin call.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginCallErrorOut {
    pub code: &'static str,
    pub message: String,
}

/// Whether the caller's tenant sends its events to a plugin's handler.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionOut {
    /// Always `plugin.subscription`.
    pub object: &'static str,
    pub plugin: String,
    pub subscribed: bool,
    /// The topic patterns the plugin's handler receives (its manifest's `subscribe`).
    pub topics: Vec<String>,
}

/// A secret's value (never shown again).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretIn {
    pub value: String,
}

/// A secret a plugin declares or has set: its name, never its value.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretOut {
    /// Always `plugin.secret`.
    pub object: &'static str,
    pub name: String,
    /// Whether the plugin's manifest declares it (only declared secrets are readable).
    pub declared: bool,
    pub set: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl From<hearth_plugins::SecretInfo> for SecretOut {
    fn from(secret: hearth_plugins::SecretInfo) -> SecretOut {
        SecretOut {
            object: "plugin.secret",
            name: secret.name,
            declared: secret.declared,
            set: secret.updated_at_ms.is_some(),
            updated_at: secret
                .updated_at_ms
                .map(hearth_time::rfc3339_from_unix_millis),
        }
    }
}

//! The JSON shapes of prompt templates under `/v1/prompts`: a push (a new version's
//! definition, with labels to point at it), a prompt with its versions and labels, one version
//! whole, a render, and the `prompt` reference chat completions and responses take (the
//! Responses API's own shape: `{"id", "version", "variables"}`, plus Hearth's `label`).

use std::collections::BTreeMap;
use std::sync::Arc;

use hearth_prompts::{
    MessageTemplate, PromptDefinition, PromptInfo, PromptVersion, Rendered, Selector, VariableSpec,
    VariableType,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::ApiError;

/// A new version of a prompt (the prompt is made by its first).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptIn {
    /// 1-64 letters, digits, `-`, `_` or `.`.
    pub name: String,
    /// The message templates (MiniJinja: `{{ name }}`, `{% if %}`, `{% for %}`, filters).
    #[schema(min_items = 1, max_items = 64)]
    pub messages: Vec<MessageTemplateIo>,
    /// The variables the templates take, by name. Absent: every variable the templates use,
    /// required and of any type.
    pub variables: Option<BTreeMap<String, VariableIo>>,
    /// The model a request that names none gets.
    pub model: Option<String>,
    /// Defaults a request's own values override: temperature, top_p, min_p, top_k, seed,
    /// max_tokens, presence_penalty, frequency_penalty, repeat_penalty, stop,
    /// response_format.
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Map<String, Value>>,
    /// Labels to point at the new version (`production`, `staging`).
    #[serde(default)]
    pub labels: Vec<String>,
    /// What changed, for the version history.
    pub note: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageTemplateIo {
    /// system, developer, user or assistant.
    pub role: String,
    pub content: String,
}

/// One declared variable.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariableIo {
    /// string (default), number, integer, boolean, array, object or any.
    #[serde(rename = "type")]
    #[schema(value_type = Option<String>)]
    pub kind: Option<VariableType>,
    /// Default true, unless there is a default.
    pub required: Option<bool>,
    /// Any JSON value of the variable's type.
    pub default: Option<Value>,
    pub description: Option<String>,
    /// The values it may take.
    #[serde(rename = "enum")]
    pub allowed: Option<Vec<Value>>,
    /// Most characters of a string.
    pub max_length: Option<usize>,
}

impl PromptIn {
    /// The name, the definition, the labels and the note.
    pub fn into_parts(self) -> (String, PromptDefinition, Vec<String>, Option<String>) {
        let definition = PromptDefinition {
            messages: self
                .messages
                .into_iter()
                .map(|message| MessageTemplate {
                    role: message.role,
                    content: message.content,
                })
                .collect(),
            variables: self.variables.map(|variables| {
                variables
                    .into_iter()
                    .map(|(name, variable)| (name, variable.into()))
                    .collect()
            }),
            model: self.model,
            parameters: self.parameters.unwrap_or_default().into_iter().collect(),
        };
        (self.name, definition, self.labels, self.note)
    }
}

impl From<VariableIo> for VariableSpec {
    fn from(variable: VariableIo) -> VariableSpec {
        VariableSpec {
            kind: variable.kind.unwrap_or_default(),
            required: variable.required.unwrap_or(true),
            default: variable.default,
            description: variable.description,
            allowed: variable.allowed,
            max_length: variable.max_length,
        }
    }
}

impl From<&VariableSpec> for VariableIo {
    fn from(variable: &VariableSpec) -> VariableIo {
        VariableIo {
            kind: Some(variable.kind),
            required: Some(variable.required),
            default: variable.default.clone(),
            description: variable.description.clone(),
            allowed: variable.allowed.clone(),
            max_length: variable.max_length,
        }
    }
}

/// A prompt: its labels and its versions' history.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptOut {
    /// `prompt`.
    pub object: &'static str,
    /// The prompt's name, which requests reference it by.
    pub id: String,
    pub latest_version: u32,
    /// Label → version.
    pub labels: BTreeMap<String, u32>,
    /// Oldest first.
    pub versions: Vec<VersionSummaryOut>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionSummaryOut {
    pub version: u32,
    pub note: Option<String>,
    pub created_by: Option<String>,
    pub created_at: String,
}

impl From<PromptInfo> for PromptOut {
    fn from(info: PromptInfo) -> PromptOut {
        let latest = info.latest();
        let first = info.versions.first().expect("a prompt has a version");
        PromptOut {
            object: "prompt",
            id: info.name.clone(),
            latest_version: latest.version,
            updated_at: hearth_time::rfc3339_from_unix_millis(latest.created_at_ms),
            created_at: hearth_time::rfc3339_from_unix_millis(first.created_at_ms),
            versions: info
                .versions
                .iter()
                .map(|version| VersionSummaryOut {
                    version: version.version,
                    note: version.note.clone(),
                    created_by: version.created_by.clone(),
                    created_at: hearth_time::rfc3339_from_unix_millis(version.created_at_ms),
                })
                .collect(),
            labels: info.labels,
        }
    }
}

/// One version whole.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptVersionOut {
    /// `prompt.version`.
    pub object: &'static str,
    pub id: String,
    pub version: u32,
    /// The labels that point at this version.
    pub labels: Vec<String>,
    pub messages: Vec<MessageTemplateIo>,
    pub variables: BTreeMap<String, VariableIo>,
    pub model: Option<String>,
    #[schema(value_type = Object)]
    pub parameters: BTreeMap<String, Value>,
    pub note: Option<String>,
    pub created_by: Option<String>,
    pub created_at: String,
    /// On a push: false when the definition was the latest version's already.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
}

impl PromptVersionOut {
    pub fn of(version: &Arc<PromptVersion>, labels: &BTreeMap<String, u32>) -> PromptVersionOut {
        let definition = &version.definition;
        PromptVersionOut {
            object: "prompt.version",
            id: version.name.clone(),
            version: version.version,
            labels: labels
                .iter()
                .filter(|(_, at)| **at == version.version)
                .map(|(label, _)| label.clone())
                .collect(),
            messages: definition
                .messages
                .iter()
                .map(|message| MessageTemplateIo {
                    role: message.role.clone(),
                    content: message.content.clone(),
                })
                .collect(),
            variables: definition
                .variables
                .iter()
                .flatten()
                .map(|(name, variable)| (name.clone(), variable.into()))
                .collect(),
            model: definition.model.clone(),
            parameters: definition.parameters.clone(),
            note: version.note.clone(),
            created_by: version.created_by.clone(),
            created_at: hearth_time::rfc3339_from_unix_millis(version.created_at_ms),
            created: None,
        }
    }
}

/// A version, by number or by a label's name (`latest`: the newest).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum VersionIo {
    Number(u32),
    Text(String),
}

/// Which version to render, and with what.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderIn {
    /// A version number (or its text, as OpenAI sends it); absent: the newest, or `label`'s.
    #[schema(value_type = Option<String>)]
    pub version: Option<VersionIo>,
    /// A label's version (`production`).
    pub label: Option<String>,
    #[schema(value_type = Option<Object>)]
    #[serde(default)]
    pub variables: Map<String, Value>,
}

/// What a request gives in `prompt` to use a template.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptRefIn {
    /// The prompt's name.
    pub id: String,
    #[schema(value_type = Option<String>)]
    pub version: Option<VersionIo>,
    /// Hearth's extension: a label's version (`production`).
    pub label: Option<String>,
    #[schema(value_type = Option<Object>)]
    #[serde(default)]
    pub variables: Map<String, Value>,
}

/// Which version `version` and `label` select; both is an error naming `field.version`.
pub fn selector(
    version: Option<&VersionIo>,
    label: Option<&str>,
    field: &str,
) -> Result<Selector, ApiError> {
    match (version, label) {
        (Some(_), Some(_)) => Err(ApiError::bad_request("give a version or a label, not both")
            .with_param(format!("{field}version"))),
        (Some(VersionIo::Number(number)), None) => Ok(Selector::Version(*number)),
        (Some(VersionIo::Text(text)), None) => match Selector::parse(text) {
            Selector::Label(_) => Err(ApiError::bad_request(format!(
                "`{text}` is not a version number: give a number, or the label in `label`"
            ))
            .with_param(format!("{field}version"))),
            selector => Ok(selector),
        },
        (None, Some(label)) => Ok(Selector::parse(label)),
        (None, None) => Ok(Selector::Latest),
    }
}

/// A rendered version.
#[derive(Debug, Serialize, ToSchema)]
pub struct RenderedOut {
    /// `prompt.rendered`.
    pub object: &'static str,
    pub id: String,
    pub version: u32,
    pub model: Option<String>,
    pub messages: Vec<MessageTemplateIo>,
    #[schema(value_type = Object)]
    pub parameters: BTreeMap<String, Value>,
}

impl From<Rendered> for RenderedOut {
    fn from(rendered: Rendered) -> RenderedOut {
        RenderedOut {
            object: "prompt.rendered",
            id: rendered.name,
            version: rendered.version,
            model: rendered.model,
            messages: rendered
                .messages
                .into_iter()
                .map(|message| MessageTemplateIo {
                    role: message.role,
                    content: message.content,
                })
                .collect(),
            parameters: rendered.parameters,
        }
    }
}

/// Where a label points.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelIn {
    pub version: u32,
}

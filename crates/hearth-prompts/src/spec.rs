//! A prompt version's definition: its message templates, the variables they take (a small
//! schema: type, required, default, allowed values, length), and the model and sampling
//! defaults a request that uses it gets. Definitions are checked whole when pushed, so a stored
//! version always compiles and every variable its templates read is declared.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::PromptError;

/// Most messages one version holds.
pub const MAX_MESSAGES: usize = 64;
/// Most bytes of one message's template.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Most bytes of all of a version's templates.
pub const MAX_TEMPLATE_BYTES: usize = 256 * 1024;
/// Most variables one version declares.
pub const MAX_VARIABLES: usize = 100;

/// The roles a template message may have (tool turns belong to the conversation, not to a
/// template).
pub const ROLES: [&str; 4] = ["system", "developer", "user", "assistant"];

/// The sampling and output parameters a version may set as defaults, and what each must be.
const PARAMETERS: [(&str, ParameterKind); 11] = [
    ("temperature", ParameterKind::Number(0.0, 2.0)),
    ("top_p", ParameterKind::Number(0.0, 1.0)),
    ("min_p", ParameterKind::Number(0.0, 1.0)),
    ("top_k", ParameterKind::Count),
    ("seed", ParameterKind::Integer),
    ("max_tokens", ParameterKind::Count),
    ("presence_penalty", ParameterKind::Number(-2.0, 2.0)),
    ("frequency_penalty", ParameterKind::Number(-2.0, 2.0)),
    ("repeat_penalty", ParameterKind::Number(0.0, 10.0)),
    ("stop", ParameterKind::Stop),
    ("response_format", ParameterKind::Object),
];

#[derive(Debug, Clone, Copy)]
enum ParameterKind {
    Number(f64, f64),
    /// A whole number of at least 1.
    Count,
    Integer,
    /// A string or up to 4 strings.
    Stop,
    Object,
}

/// One message of a template: a role and a template of its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageTemplate {
    pub role: String,
    pub content: String,
}

/// What a variable must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum VariableType {
    #[default]
    String,
    Number,
    Integer,
    Boolean,
    Array,
    Object,
    /// Any JSON value (what variables found in templates but not declared become).
    Any,
}

impl VariableType {
    pub fn name(self) -> &'static str {
        match self {
            VariableType::String => "string",
            VariableType::Number => "number",
            VariableType::Integer => "integer",
            VariableType::Boolean => "boolean",
            VariableType::Array => "array",
            VariableType::Object => "object",
            VariableType::Any => "any",
        }
    }

    fn admits(self, value: &Value) -> bool {
        match self {
            VariableType::String => value.is_string(),
            VariableType::Number => value.is_number(),
            VariableType::Integer => value.is_i64() || value.is_u64(),
            VariableType::Boolean => value.is_boolean(),
            VariableType::Array => value.is_array(),
            VariableType::Object => value.is_object(),
            VariableType::Any => true,
        }
    }
}

/// One declared variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct VariableSpec {
    #[serde(rename = "type", default)]
    pub kind: VariableType,
    /// Whether a render must give it (default true); false when it has a default.
    #[serde(default = "required_by_default")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The values a string variable may take.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "enum")]
    pub allowed: Option<Vec<Value>>,
    /// Most characters of a string variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
}

fn required_by_default() -> bool {
    true
}

impl VariableSpec {
    /// Checks a value given for the variable `name`; `field` is where the error points.
    pub(crate) fn check(&self, field: &str, value: &Value) -> Result<(), PromptError> {
        if !self.kind.admits(value) {
            return Err(PromptError::invalid(
                field,
                format!("must be {} {}", article(self.kind.name()), self.kind.name()),
            ));
        }
        if let (Some(limit), Some(text)) = (self.max_length, value.as_str()) {
            let length = text.chars().count();
            if length > limit {
                return Err(PromptError::invalid(
                    field,
                    format!("is {length} characters long; the most is {limit}"),
                ));
            }
        }
        if let Some(allowed) = &self.allowed
            && !allowed.contains(value)
        {
            let listed = allowed
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            return Err(PromptError::invalid(
                field,
                format!("must be one of {listed}"),
            ));
        }
        Ok(())
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// A version's content: what identical pushes share (a push of the same definition as the
/// latest version makes no new version).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptDefinition {
    pub messages: Vec<MessageTemplate>,
    /// Declared variables by name. `None` on a push: every variable the templates read is
    /// declared for it, required and of any type.
    #[serde(default)]
    pub variables: Option<BTreeMap<String, VariableSpec>>,
    /// The model a request that names none gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Sampling and output defaults (`temperature`, `max_tokens`, `stop`, ...): a request's
    /// own values win.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, Value>,
}

/// Checks a prompt's or label's name: 1–64 of letters, digits, `-`, `_`, `.`.
pub fn check_name(field: &str, name: &str) -> Result<(), PromptError> {
    let fine = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if fine {
        Ok(())
    } else {
        Err(PromptError::invalid(
            field,
            format!(
                "`{name}` is not a name: use 1-64 letters, digits, `-`, `_` or `.` (not first)"
            ),
        ))
    }
}

fn check_variable_name(field: &str, name: &str) -> Result<(), PromptError> {
    let mut chars = name.chars();
    let fine = name.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if fine {
        Ok(())
    } else {
        Err(PromptError::invalid(
            field,
            format!(
                "`{name}` is not a variable name: use a letter or `_` then letters, digits or \
                 `_` (64 at most)"
            ),
        ))
    }
}

impl PromptDefinition {
    /// Checks the definition whole and returns it with every variable declared and each
    /// declared one's `required` settled. `used` is what the templates read, by message.
    pub(crate) fn settle(mut self, used: &[Vec<String>]) -> Result<PromptDefinition, PromptError> {
        let mut variables = match self.variables.take() {
            Some(declared) => {
                if declared.len() > MAX_VARIABLES {
                    return Err(PromptError::invalid(
                        "variables",
                        format!(
                            "{} variables declared; the most is {MAX_VARIABLES}",
                            declared.len()
                        ),
                    ));
                }
                for (index, names) in used.iter().enumerate() {
                    if let Some(name) = names.iter().find(|name| !declared.contains_key(*name)) {
                        return Err(PromptError::invalid(
                            format!("messages[{index}].content"),
                            format!(
                                "uses the variable `{name}`, which `variables` does not declare: \
                                 declare it, or leave `variables` out to declare every variable \
                                 the templates use"
                            ),
                        ));
                    }
                }
                declared
            }
            None => used
                .iter()
                .flatten()
                .map(|name| {
                    let spec = VariableSpec {
                        kind: VariableType::Any,
                        required: true,
                        ..VariableSpec::default()
                    };
                    (name.clone(), spec)
                })
                .collect(),
        };
        for (name, spec) in &mut variables {
            let field = format!("variables.{name}");
            check_variable_name(&field, name)?;
            if let Some(allowed) = &spec.allowed {
                if allowed.is_empty() {
                    return Err(PromptError::invalid(
                        format!("{field}.enum"),
                        "list at least one value",
                    ));
                }
                let plain = VariableSpec {
                    allowed: None,
                    ..spec.clone()
                };
                for (index, value) in allowed.iter().enumerate() {
                    plain.check(&format!("{field}.enum[{index}]"), value)?;
                }
            }
            if let Some(default) = &spec.default {
                spec.check(&format!("{field}.default"), default)?;
                spec.required = false;
            }
        }
        if variables.len() > MAX_VARIABLES {
            return Err(PromptError::invalid(
                "variables",
                format!("the templates use more than {MAX_VARIABLES} variables"),
            ));
        }
        self.variables = Some(variables);
        if let Some(model) = &self.model
            && (model.is_empty() || model.len() > 256)
        {
            return Err(PromptError::invalid(
                "model",
                "name a model (1-256 characters) or leave it out",
            ));
        }
        for (key, value) in &self.parameters {
            check_parameter(key, value)?;
        }
        Ok(self)
    }

    /// Checks the shape of the messages before their templates are compiled.
    pub(crate) fn check_messages(&self) -> Result<(), PromptError> {
        if self.messages.is_empty() {
            return Err(PromptError::invalid(
                "messages",
                "give at least one message",
            ));
        }
        if self.messages.len() > MAX_MESSAGES {
            return Err(PromptError::invalid(
                "messages",
                format!(
                    "{} messages; a prompt holds {MAX_MESSAGES} at most",
                    self.messages.len()
                ),
            ));
        }
        let mut total = 0;
        for (index, message) in self.messages.iter().enumerate() {
            if !ROLES.contains(&message.role.as_str()) {
                return Err(PromptError::invalid(
                    format!("messages[{index}].role"),
                    format!(
                        "`{}` is not a template role: use system, developer, user or assistant",
                        message.role
                    ),
                ));
            }
            if message.content.len() > MAX_MESSAGE_BYTES {
                return Err(PromptError::invalid(
                    format!("messages[{index}].content"),
                    format!(
                        "{} bytes; a message template holds {MAX_MESSAGE_BYTES} at most",
                        message.content.len()
                    ),
                ));
            }
            total += message.content.len();
        }
        if total > MAX_TEMPLATE_BYTES {
            return Err(PromptError::invalid(
                "messages",
                format!("{total} bytes of templates; a prompt holds {MAX_TEMPLATE_BYTES} at most"),
            ));
        }
        Ok(())
    }
}

fn check_parameter(key: &str, value: &Value) -> Result<(), PromptError> {
    let field = format!("parameters.{key}");
    let Some((_, kind)) = PARAMETERS.iter().find(|(name, _)| *name == key) else {
        let known = PARAMETERS
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ");
        return Err(PromptError::invalid(
            field,
            format!("is not a parameter a prompt can set; these are: {known}"),
        ));
    };
    let fine = match kind {
        ParameterKind::Number(low, high) => value
            .as_f64()
            .is_some_and(|number| (*low..=*high).contains(&number)),
        ParameterKind::Count => value.as_u64().is_some_and(|count| count >= 1),
        ParameterKind::Integer => value.is_i64() || value.is_u64(),
        ParameterKind::Stop => match value {
            Value::String(_) => true,
            Value::Array(items) => items.len() <= 4 && items.iter().all(Value::is_string),
            _ => false,
        },
        ParameterKind::Object => value.is_object(),
    };
    if fine {
        return Ok(());
    }
    let expected = match kind {
        ParameterKind::Number(low, high) => format!("a number from {low} to {high}"),
        ParameterKind::Count => "a whole number of at least 1".to_string(),
        ParameterKind::Integer => "a whole number".to_string(),
        ParameterKind::Stop => "a string or a list of up to 4 strings".to_string(),
        ParameterKind::Object => "an object".to_string(),
    };
    Err(PromptError::invalid(field, format!("must be {expected}")))
}

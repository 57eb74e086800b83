//! Tool calling for any chat model. The application's tools are described to the model in a
//! system message, and its reply is held by a JSON-schema grammar to one of two shapes:
//!
//! ```text
//! {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}
//! {"response": "It is sunny."}
//! ```
//!
//! so that a call always names a declared tool with arguments valid against that tool's own
//! parameter schema. This is the "generic" format llama.cpp's server falls back to for models
//! without a native one; it works with every chat template because it is plain text. Earlier
//! calls and their results in the conversation are rendered in the same shape, so the model
//! sees its own format when it reads the history.

use hearth_engine::{ChatMessage, ChatRole, Constraint};
use serde_json::{Value, json};

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDefinition {
    pub name: String,
    pub description: Option<String>,
    /// A JSON Schema of the arguments object.
    pub parameters: Value,
}

/// Which replies are allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// A tool call or a direct answer, as the model sees fit.
    Auto,
    /// At least one tool call.
    Required,
    /// A call of this tool.
    Function(String),
}

/// The tools of one request and how they may be used.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolUse {
    pub tools: Vec<ToolDefinition>,
    pub choice: ToolChoice,
    /// Whether one reply may call several tools.
    pub parallel: bool,
}

/// A call the model made.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// `call_…`, made here; the application sends it back with the result.
    pub id: String,
    pub name: String,
    /// The arguments object, valid against the tool's parameter schema.
    pub arguments: Value,
}

/// One message of a conversation that may involve tools.
#[derive(Debug, Clone, PartialEq)]
pub enum Turn {
    System(String),
    User(String),
    /// The assistant's earlier reply: text, tool calls, or both.
    Assistant {
        content: String,
        tool_calls: Vec<ToolCall>,
    },
    /// What a tool returned. `call_id` links it to the call (OpenAI); `name` names the tool
    /// (Ollama); either may be missing.
    ToolResult {
        call_id: Option<String>,
        name: Option<String>,
        content: String,
    },
}

/// What the model replied, read back from its constrained output.
#[derive(Debug, Clone, PartialEq)]
pub enum AssistantReply {
    Text(String),
    ToolCalls(Vec<ToolCall>),
}

/// Most tools one request may declare; each becomes a branch of the reply grammar.
pub const MAX_TOOLS: usize = 128;

/// Why a tool declaration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    /// The request field at fault, relative to the tool list: `tools[2].function.name`.
    pub param: String,
    pub message: String,
}

impl ToolUse {
    /// Checks the declarations: names are unique and usable, parameters are object schemas,
    /// and a named choice names a declared tool.
    pub fn validate(&self) -> Result<(), ToolError> {
        if self.tools.is_empty() {
            return Err(ToolError {
                param: "tools".to_owned(),
                message: "tools must not be empty when a tool may be called".to_owned(),
            });
        }
        if self.tools.len() > MAX_TOOLS {
            return Err(ToolError {
                param: "tools".to_owned(),
                message: format!("at most {MAX_TOOLS} tools per request"),
            });
        }
        for (index, tool) in self.tools.iter().enumerate() {
            let valid_name = !tool.name.is_empty()
                && tool.name.len() <= 64
                && tool
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid_name {
                return Err(ToolError {
                    param: format!("tools[{index}].function.name"),
                    message: format!(
                        "tool name {:?} must be 1 to 64 letters, digits, `_` or `-`",
                        tool.name
                    ),
                });
            }
            if self.tools[..index]
                .iter()
                .any(|earlier| earlier.name == tool.name)
            {
                return Err(ToolError {
                    param: format!("tools[{index}].function.name"),
                    message: format!("tool name {:?} is declared twice", tool.name),
                });
            }
            if !tool.parameters.is_object() {
                return Err(ToolError {
                    param: format!("tools[{index}].function.parameters"),
                    message: "parameters must be a JSON Schema object".to_owned(),
                });
            }
        }
        if let ToolChoice::Function(name) = &self.choice
            && !self.tools.iter().any(|tool| &tool.name == name)
        {
            return Err(ToolError {
                param: "tool_choice".to_owned(),
                message: format!("tool_choice names {name:?}, which is not among the tools"),
            });
        }
        Ok(())
    }

    /// The tools the reply may call.
    fn callable(&self) -> impl Iterator<Item = &ToolDefinition> {
        self.tools.iter().filter(|tool| match &self.choice {
            ToolChoice::Function(name) => &tool.name == name,
            ToolChoice::Auto | ToolChoice::Required => true,
        })
    }

    /// The system message that describes the tools and the reply format.
    pub fn instructions(&self) -> String {
        let described: Vec<Value> = self
            .callable()
            .map(|tool| {
                let mut entry = json!({"name": tool.name, "parameters": tool.parameters});
                if let Some(description) = &tool.description {
                    entry["description"] = json!(description);
                }
                entry
            })
            .collect();
        let tools = serde_json::to_string(&described).unwrap_or_default();
        let call_shape = r#"{"tool_calls": [{"name": "<tool name>", "arguments": {<arguments>}}]}"#;
        let rule = match &self.choice {
            ToolChoice::Auto => format!(
                "To call tools, reply with {call_shape}. To answer directly, reply with \
                 {{\"response\": \"<your answer>\"}}."
            ),
            ToolChoice::Required => format!("Reply with {call_shape}."),
            ToolChoice::Function(name) => format!("Call the tool {name}: reply with {call_shape}."),
        };
        format!("You can call these tools:\n{tools}\n\nReply with JSON only. {rule}")
    }

    /// The grammar of the reply.
    pub fn constraint(&self) -> Constraint {
        let calls: Vec<Value> = self
            .callable()
            .map(|tool| {
                json!({
                    "type": "object",
                    "properties": {
                        "name": {"const": tool.name},
                        "arguments": tool.parameters,
                    },
                    "required": ["name", "arguments"],
                    "additionalProperties": false,
                })
            })
            .collect();
        let mut call_list = json!({
            "type": "array",
            "items": {"anyOf": calls},
            "minItems": 1,
        });
        if !self.parallel {
            call_list["maxItems"] = json!(1);
        }
        let tool_calls = json!({
            "type": "object",
            "properties": {"tool_calls": call_list},
            "required": ["tool_calls"],
            "additionalProperties": false,
        });
        Constraint::JsonSchema(match self.choice {
            ToolChoice::Auto => json!({"anyOf": [
                tool_calls,
                {
                    "type": "object",
                    "properties": {"response": {"type": "string"}},
                    "required": ["response"],
                    "additionalProperties": false,
                },
            ]}),
            ToolChoice::Required | ToolChoice::Function(_) => tool_calls,
        })
    }

    /// Reads the model's reply. Output that is not the expected JSON (cut off by max_tokens)
    /// comes back as text, unchanged.
    pub fn parse(&self, output: &str) -> AssistantReply {
        let Ok(value) = serde_json::from_str::<Value>(output) else {
            return AssistantReply::Text(output.to_owned());
        };
        if let Some(response) = value.get("response").and_then(Value::as_str) {
            return AssistantReply::Text(response.to_owned());
        }
        let Some(calls) = value.get("tool_calls").and_then(Value::as_array) else {
            return AssistantReply::Text(output.to_owned());
        };
        let calls: Vec<ToolCall> = calls
            .iter()
            .filter_map(|call| {
                Some(ToolCall {
                    id: new_call_id(),
                    name: call.get("name")?.as_str()?.to_owned(),
                    arguments: call.get("arguments")?.clone(),
                })
            })
            .collect();
        if calls.is_empty() {
            AssistantReply::Text(output.to_owned())
        } else {
            AssistantReply::ToolCalls(calls)
        }
    }
}

/// A fresh tool-call id in OpenAI's style.
pub fn new_call_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("call_{}", &hex[..24])
}

/// The engine's messages for a conversation: tool instructions first (when tools may be
/// called), earlier calls and results in the reply format.
pub fn chat_messages(turns: &[Turn], tools: Option<&ToolUse>) -> Vec<ChatMessage> {
    let mut messages = Vec::with_capacity(turns.len() + 1);
    if let Some(tools) = tools {
        messages.push(ChatMessage::new(ChatRole::System, tools.instructions()));
    }
    for turn in turns {
        let message = match turn {
            Turn::System(text) => ChatMessage::new(ChatRole::System, text.clone()),
            Turn::User(text) => ChatMessage::new(ChatRole::User, text.clone()),
            Turn::Assistant {
                content,
                tool_calls,
            } if tool_calls.is_empty() => ChatMessage::new(ChatRole::Assistant, content.clone()),
            Turn::Assistant { tool_calls, .. } => {
                let calls: Vec<Value> = tool_calls
                    .iter()
                    .map(|call| json!({"name": call.name, "arguments": call.arguments}))
                    .collect();
                ChatMessage::new(
                    ChatRole::Assistant,
                    json_text(&json!({ "tool_calls": calls })),
                )
            }
            Turn::ToolResult {
                call_id,
                name,
                content,
            } => {
                // OpenAI's results carry only the call id: find the tool's name in the history.
                let name = name.clone().or_else(|| {
                    let id = call_id.as_ref()?;
                    turns.iter().find_map(|earlier| match earlier {
                        Turn::Assistant { tool_calls, .. } => tool_calls
                            .iter()
                            .find(|call| &call.id == id)
                            .map(|call| call.name.clone()),
                        _ => None,
                    })
                });
                let result = match name {
                    Some(name) => json!({"tool_response": {"name": name, "content": content}}),
                    None => json!({"tool_response": {"content": content}}),
                };
                ChatMessage::new(ChatRole::Tool, json_text(&result))
            }
        };
        messages.push(message);
    }
    messages
}

/// JSON in the layout constrained output is generated in (one space after `,` and `:`), so the
/// history reads like the model's own replies.
fn json_text(value: &Value) -> String {
    let mut text = String::new();
    write_json(value, &mut text);
    text
}

fn write_json(value: &Value, text: &mut String) {
    match value {
        Value::Array(items) => {
            text.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    text.push_str(", ");
                }
                write_json(item, text);
            }
            text.push(']');
        }
        Value::Object(entries) => {
            text.push('{');
            for (index, (key, item)) in entries.iter().enumerate() {
                if index > 0 {
                    text.push_str(", ");
                }
                text.push_str(&Value::String(key.clone()).to_string());
                text.push_str(": ");
                write_json(item, text);
            }
            text.push('}');
        }
        scalar => text.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weather() -> ToolDefinition {
        ToolDefinition {
            name: "get_weather".to_owned(),
            description: Some("Current weather in a city".to_owned()),
            parameters: json!({
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"]
            }),
        }
    }

    fn tools(choice: ToolChoice) -> ToolUse {
        ToolUse {
            tools: vec![weather()],
            choice,
            parallel: true,
        }
    }

    #[test]
    fn a_reply_is_read_as_calls_or_text() {
        let use_ = tools(ToolChoice::Auto);
        match use_
            .parse(r#"{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}"#)
        {
            AssistantReply::ToolCalls(calls) => {
                assert_eq!(calls.len(), 1);
                assert_eq!(calls[0].name, "get_weather");
                assert_eq!(calls[0].arguments, json!({"city": "Oslo"}));
                assert!(calls[0].id.starts_with("call_") && calls[0].id.len() == 29);
            }
            other => panic!("expected calls, got {other:?}"),
        }
        assert_eq!(
            use_.parse(r#"{"response": "Hello"}"#),
            AssistantReply::Text("Hello".to_owned())
        );
        // Cut off by max_tokens: the raw text, for the client to see.
        assert_eq!(
            use_.parse(r#"{"tool_calls": [{"na"#),
            AssistantReply::Text(r#"{"tool_calls": [{"na"#.to_owned())
        );
    }

    #[test]
    fn the_grammar_allows_a_direct_answer_only_in_auto_mode() {
        let Constraint::JsonSchema(auto) = tools(ToolChoice::Auto).constraint() else {
            panic!("a JSON schema");
        };
        assert_eq!(auto["anyOf"].as_array().map(Vec::len), Some(2));
        let Constraint::JsonSchema(required) = tools(ToolChoice::Required).constraint() else {
            panic!("a JSON schema");
        };
        assert_eq!(required["required"], json!(["tool_calls"]));
        assert_eq!(
            required["properties"]["tool_calls"]["items"]["anyOf"][0]["properties"]["name"],
            json!({"const": "get_weather"})
        );
    }

    #[test]
    fn bad_declarations_name_the_field() {
        let cases = [
            (
                ToolUse {
                    tools: vec![
                        weather(),
                        ToolDefinition {
                            name: "bad name".to_owned(),
                            ..weather()
                        },
                    ],
                    choice: ToolChoice::Auto,
                    parallel: true,
                },
                "tools[1].function.name",
            ),
            (
                ToolUse {
                    tools: vec![weather(), weather()],
                    choice: ToolChoice::Auto,
                    parallel: true,
                },
                "tools[1].function.name",
            ),
            (
                ToolUse {
                    tools: vec![ToolDefinition {
                        parameters: json!("string"),
                        ..weather()
                    }],
                    choice: ToolChoice::Auto,
                    parallel: true,
                },
                "tools[0].function.parameters",
            ),
            (
                tools(ToolChoice::Function("get_time".to_owned())),
                "tool_choice",
            ),
        ];
        for (use_, param) in cases {
            assert_eq!(use_.validate().expect_err(param).param, param);
        }
        assert_eq!(tools(ToolChoice::Required).validate(), Ok(()));
    }

    #[test]
    fn history_is_rendered_in_the_reply_format_with_names_found_by_call_id() {
        let turns = [
            Turn::User("Weather in Oslo?".to_owned()),
            Turn::Assistant {
                content: String::new(),
                tool_calls: vec![ToolCall {
                    id: "call_1".to_owned(),
                    name: "get_weather".to_owned(),
                    arguments: json!({"city": "Oslo"}),
                }],
            },
            Turn::ToolResult {
                call_id: Some("call_1".to_owned()),
                name: None,
                content: "4 degrees".to_owned(),
            },
        ];
        let messages = chat_messages(&turns, Some(&tools(ToolChoice::Auto)));
        assert_eq!(messages.len(), 4);
        assert_eq!(messages[0].role, ChatRole::System);
        assert!(messages[0].content.contains("get_weather"));
        assert_eq!(
            messages[2].content,
            r#"{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}"#
        );
        assert_eq!(messages[3].role, ChatRole::Tool);
        assert_eq!(
            messages[3].content,
            r#"{"tool_response": {"name": "get_weather", "content": "4 degrees"}}"#
        );
    }
}

//! Turning chat messages into a prompt string. A model's own GGUF template is preferred; a model
//! without one (or with one llama.cpp cannot apply) gets its family's built-in format, and the
//! choice is recorded so that `/api/show` can tell the user which template is in effect.

use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};

use crate::EngineError;

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatRole {
    System,
    User,
    Assistant,
    /// The result of a tool the assistant called, sent back by the application.
    Tool,
}

impl ChatRole {
    /// The role name chat templates expect.
    pub fn as_str(self) -> &'static str {
        match self {
            ChatRole::System => "system",
            ChatRole::User => "user",
            ChatRole::Assistant => "assistant",
            ChatRole::Tool => "tool",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: ChatRole, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// Where the template in effect came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateSource {
    /// The `tokenizer.chat_template` entry of the GGUF file, applied by llama.cpp.
    Gguf,
    /// A format built into Hearth for the model's family, used when the file has no usable template.
    BuiltIn,
}

/// The chat template in effect for a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTemplate {
    /// A short name: `gguf` for the file's own template, else the built-in family format
    /// (`gemma`, `llama3`, `chatml`).
    pub name: String,
    pub source: TemplateSource,
    /// The template text: the GGUF Jinja source, or a Jinja rendition of the built-in format.
    pub text: String,
}

/// The formats Hearth knows without help from the GGUF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BuiltInTemplate {
    Gemma,
    Llama3,
    ChatMl,
}

impl BuiltInTemplate {
    fn for_architecture(architecture: &str) -> Self {
        if architecture.starts_with("gemma") {
            BuiltInTemplate::Gemma
        } else if architecture == "llama" {
            BuiltInTemplate::Llama3
        } else {
            // ChatML is what most recent instruction-tuned families (Qwen, SmolLM, Phi-4...) use.
            BuiltInTemplate::ChatMl
        }
    }

    fn name(self) -> &'static str {
        match self {
            BuiltInTemplate::Gemma => "gemma",
            BuiltInTemplate::Llama3 => "llama3",
            BuiltInTemplate::ChatMl => "chatml",
        }
    }

    fn jinja_text(self) -> &'static str {
        match self {
            BuiltInTemplate::Gemma => concat!(
                "{%- set first_user_prefix = (messages[0].content + '\\n\\n') if messages[0].role == 'system' else '' -%}\n",
                "{%- for message in messages if message.role != 'system' -%}\n",
                "<start_of_turn>{{ 'model' if message.role == 'assistant' else 'user' }}\n",
                "{{ first_user_prefix if loop.first else '' }}{{ message.content | trim }}<end_of_turn>\n",
                "{%- endfor -%}\n",
                "{%- if add_generation_prompt -%}<start_of_turn>model\n{%- endif -%}",
            ),
            BuiltInTemplate::Llama3 => concat!(
                "{%- for message in messages -%}\n",
                "<|start_header_id|>{{ 'ipython' if message.role == 'tool' else message.role }}<|end_header_id|>\n\n{{ message.content | trim }}<|eot_id|>\n",
                "{%- endfor -%}\n",
                "{%- if add_generation_prompt -%}<|start_header_id|>assistant<|end_header_id|>\n\n{%- endif -%}",
            ),
            BuiltInTemplate::ChatMl => concat!(
                "{%- for message in messages -%}\n",
                "<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n",
                "{%- endfor -%}\n",
                "{%- if add_generation_prompt -%}<|im_start|>assistant\n{%- endif -%}",
            ),
        }
    }

    fn render(self, messages: &[ChatMessage]) -> String {
        let mut prompt = String::new();
        match self {
            BuiltInTemplate::Gemma => {
                // Gemma has no system role: the system text is folded into the first user turn.
                let mut system_prefix = String::new();
                for message in messages
                    .iter()
                    .filter(|message| message.role == ChatRole::System)
                {
                    system_prefix.push_str(message.content.trim());
                    system_prefix.push_str("\n\n");
                }
                let mut pending_system = Some(system_prefix).filter(|prefix| !prefix.is_empty());
                for message in messages
                    .iter()
                    .filter(|message| message.role != ChatRole::System)
                {
                    let turn = if message.role == ChatRole::Assistant {
                        "model"
                    } else {
                        "user"
                    };
                    prompt.push_str("<start_of_turn>");
                    prompt.push_str(turn);
                    prompt.push('\n');
                    // Gemma has no tool role either: a tool's result comes back as a user turn.
                    if message.role != ChatRole::Assistant
                        && let Some(system) = pending_system.take()
                    {
                        prompt.push_str(&system);
                    }
                    prompt.push_str(message.content.trim());
                    prompt.push_str("<end_of_turn>\n");
                }
                // A conversation of only system text still has to reach the model.
                if let Some(system) = pending_system.take() {
                    prompt.push_str("<start_of_turn>user\n");
                    prompt.push_str(system.trim_end());
                    prompt.push_str("<end_of_turn>\n");
                }
                prompt.push_str("<start_of_turn>model\n");
            }
            BuiltInTemplate::Llama3 => {
                for message in messages {
                    prompt.push_str("<|start_header_id|>");
                    // Llama 3 names the tool role `ipython`.
                    prompt.push_str(match message.role {
                        ChatRole::Tool => "ipython",
                        role => role.as_str(),
                    });
                    prompt.push_str("<|end_header_id|>\n\n");
                    prompt.push_str(message.content.trim());
                    prompt.push_str("<|eot_id|>");
                }
                prompt.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
            }
            BuiltInTemplate::ChatMl => {
                for message in messages {
                    prompt.push_str("<|im_start|>");
                    prompt.push_str(message.role.as_str());
                    prompt.push('\n');
                    prompt.push_str(&message.content);
                    prompt.push_str("<|im_end|>\n");
                }
                prompt.push_str("<|im_start|>assistant\n");
            }
        }
        prompt
    }
}

/// The template of a loaded model, ready to format conversations.
#[derive(Debug, Clone)]
pub(crate) struct ChatFormatter {
    template: ChatTemplate,
    built_in: Option<BuiltInTemplate>,
}

impl ChatFormatter {
    /// Picks the GGUF template when llama.cpp can apply it, else the family's built-in format.
    pub(crate) fn for_model(model: &LlamaModel, architecture: &str) -> Self {
        if let Ok(gguf_template) = model.chat_template(None)
            && let Ok(text) = gguf_template.to_string()
        {
            // llama.cpp recognises templates by their text; a probe tells whether this one is
            // among those it can apply before a user request depends on it.
            let probe = [ChatMessage::new(ChatRole::User, "hello")];
            if apply_gguf_template(model, &gguf_template, &probe).is_ok() {
                return Self {
                    template: ChatTemplate {
                        name: "gguf".to_owned(),
                        source: TemplateSource::Gguf,
                        text,
                    },
                    built_in: None,
                };
            }
            tracing::warn!(
                architecture,
                "the model's chat template is not supported by llama.cpp; using the built-in one"
            );
        }
        let built_in = BuiltInTemplate::for_architecture(architecture);
        Self {
            template: ChatTemplate {
                name: built_in.name().to_owned(),
                source: TemplateSource::BuiltIn,
                text: built_in.jinja_text().to_owned(),
            },
            built_in: Some(built_in),
        }
    }

    pub(crate) fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// Formats the conversation and opens the assistant's turn.
    pub(crate) fn format(
        &self,
        model: &LlamaModel,
        messages: &[ChatMessage],
    ) -> Result<String, EngineError> {
        if messages.is_empty() {
            return Err(EngineError::InvalidRequest(
                "a chat request needs at least one message".to_owned(),
            ));
        }
        match self.built_in {
            Some(built_in) => Ok(built_in.render(messages)),
            None => {
                let template = LlamaChatTemplate::new(&self.template.text)
                    .map_err(|error| EngineError::ChatTemplate(error.to_string()))?;
                apply_gguf_template(model, &template, messages)
            }
        }
    }
}

fn apply_gguf_template(
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    messages: &[ChatMessage],
) -> Result<String, EngineError> {
    let llama_messages = messages
        .iter()
        .map(|message| {
            LlamaChatMessage::new(message.role.as_str().to_owned(), message.content.clone())
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| EngineError::InvalidRequest(format!("chat message: {error}")))?;
    model
        .apply_chat_template(template, &llama_messages, true)
        .map_err(|error| EngineError::ChatTemplate(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemma_folds_the_system_text_into_the_first_user_turn() {
        let messages = [
            ChatMessage::new(ChatRole::System, "Be brief."),
            ChatMessage::new(ChatRole::User, "Hi"),
            ChatMessage::new(ChatRole::Assistant, "Hello!"),
            ChatMessage::new(ChatRole::User, "Bye"),
        ];
        assert_eq!(
            BuiltInTemplate::Gemma.render(&messages),
            "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n\
             <start_of_turn>model\nHello!<end_of_turn>\n\
             <start_of_turn>user\nBye<end_of_turn>\n\
             <start_of_turn>model\n"
        );
    }

    #[test]
    fn gemma_without_system_text_starts_with_the_user_turn() {
        let messages = [ChatMessage::new(ChatRole::User, "Hi")];
        assert_eq!(
            BuiltInTemplate::Gemma.render(&messages),
            "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
        );
    }

    #[test]
    fn families_map_to_their_built_in_format() {
        assert_eq!(
            BuiltInTemplate::for_architecture("gemma3"),
            BuiltInTemplate::Gemma
        );
        assert_eq!(
            BuiltInTemplate::for_architecture("llama"),
            BuiltInTemplate::Llama3
        );
        assert_eq!(
            BuiltInTemplate::for_architecture("qwen2"),
            BuiltInTemplate::ChatMl
        );
    }

    #[test]
    fn gemma_sends_tool_results_as_user_turns() {
        let messages = [
            ChatMessage::new(ChatRole::System, "Use tools."),
            ChatMessage::new(ChatRole::User, "Weather?"),
            ChatMessage::new(ChatRole::Assistant, "{\"tool_calls\": []}"),
            ChatMessage::new(ChatRole::Tool, "sunny"),
        ];
        assert_eq!(
            BuiltInTemplate::Gemma.render(&messages),
            "<start_of_turn>user\nUse tools.\n\nWeather?<end_of_turn>\n\
             <start_of_turn>model\n{\"tool_calls\": []}<end_of_turn>\n\
             <start_of_turn>user\nsunny<end_of_turn>\n\
             <start_of_turn>model\n"
        );
    }

    #[test]
    fn chatml_keeps_roles() {
        let messages = [
            ChatMessage::new(ChatRole::System, "S"),
            ChatMessage::new(ChatRole::User, "U"),
        ];
        assert_eq!(
            BuiltInTemplate::ChatMl.render(&messages),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
        );
    }
}

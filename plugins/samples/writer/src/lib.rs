//! A plugin that uses models: continues a text with the chat model and embeds text with the
//! embedding model its manifest names (any other model is refused by the host).

use hearth_plugin_sdk::{Plugin, Tool, models};
use serde_json::{Value, json};

struct Writer;

impl Plugin for Writer {
    fn tools() -> Vec<Tool> {
        vec![
            Tool::new(
                "complete",
                "Asks a model to answer a prompt; returns its text.",
                r#"{"type":"object","properties":{"prompt":{"type":"string"},"model":{"type":"string"},
                   "max_tokens":{"type":"integer","minimum":1,"maximum":256}},"required":["prompt"]}"#,
            ),
            Tool::new(
                "embed",
                "Embeds a text; returns the vector's dimensions and norm.",
                r#"{"type":"object","properties":{"text":{"type":"string"},"model":{"type":"string"}},
                   "required":["text"]}"#,
            ),
        ]
    }

    fn call_tool(name: &str, arguments: &str) -> Result<String, String> {
        let arguments: Value =
            serde_json::from_str(arguments).map_err(|error| format!("arguments: {error}"))?;
        match name {
            "complete" => {
                let prompt = arguments["prompt"].as_str().ok_or("`prompt` must be a string")?;
                let request = json!({
                    "model": arguments["model"].as_str().unwrap_or("gemma3:270m"),
                    "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": arguments["max_tokens"].as_u64().unwrap_or(16),
                    "temperature": 0,
                });
                let answer: Value = serde_json::from_str(&models::chat(&request.to_string())?)
                    .map_err(|error| format!("the answer: {error}"))?;
                let text = answer["choices"][0]["message"]["content"].as_str().unwrap_or("");
                Ok(json!({ "text": text, "usage": answer["usage"] }).to_string())
            }
            "embed" => {
                let text = arguments["text"].as_str().ok_or("`text` must be a string")?;
                let model = arguments["model"].as_str().unwrap_or("all-minilm:l6-v2");
                let vectors = models::embed(model, &[text.to_owned()])?;
                let vector = vectors.first().ok_or("no embedding")?;
                let norm = vector.iter().map(|value| value * value).sum::<f32>().sqrt();
                Ok(json!({ "dimensions": vector.len(), "norm": norm }).to_string())
            }
            other => Err(format!("no tool named {other}")),
        }
    }
}

hearth_plugin_sdk::plugin!(Writer);

//! A plugin with memory: notes stored in the tenant's `notes` collection (numbered by a
//! counter in its key-value store), found again by keyword search, and a secret it reads but
//! never shows.

use hearth_plugin_sdk::memory::{self, Document};
use hearth_plugin_sdk::{Plugin, Tool, kv, secrets};
use serde_json::{Value, json};

const COLLECTION: &str = "notes";

struct Notes;

fn arguments(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|error| format!("arguments: {error}"))
}

/// The next note number, kept in the key-value store.
fn next_number() -> Result<u64, String> {
    let current = match kv::get("next")? {
        Some(bytes) => String::from_utf8_lossy(&bytes).parse::<u64>().unwrap_or(0),
        None => 0,
    };
    kv::set("next", (current + 1).to_string().as_bytes())?;
    Ok(current + 1)
}

impl Plugin for Notes {
    fn tools() -> Vec<Tool> {
        vec![
            Tool::new(
                "remember",
                "Stores a note; answers its id.",
                r#"{"type":"object","properties":{"text":{"type":"string"},"topic":{"type":"string"},
                   "embedding":{"type":"array","items":{"type":"number"}}},"required":["text"]}"#,
            ),
            Tool::new(
                "recall",
                "Finds the notes (or a kb-* collection's documents) that match the query best.",
                r#"{"type":"object","properties":{"query":{"type":"string"},"collection":{"type":"string"},
                   "limit":{"type":"integer","minimum":1,"maximum":20}},"required":["query"]}"#,
            ),
            Tool::new(
                "forget",
                "Removes a note by id.",
                r#"{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}"#,
            ),
            Tool::new(
                "key_status",
                "Says whether the API key is set (never what it is).",
                r#"{"type":"object"}"#,
            ),
        ]
    }

    fn call_tool(name: &str, text: &str) -> Result<String, String> {
        let arguments = arguments(text)?;
        match name {
            "remember" => {
                let note = arguments["text"].as_str().ok_or("`text` must be a string")?;
                let topic = arguments["topic"].as_str().unwrap_or("general");
                let id = format!("note-{}", next_number()?);
                let mut document = Document::new(&id, note, &json!({ "topic": topic }).to_string());
                document.embedding = arguments["embedding"].as_array().map(|values| {
                    values.iter().filter_map(Value::as_f64).map(|value| value as f32).collect()
                });
                memory::upsert(COLLECTION, &[document])?;
                Ok(json!({ "id": id }).to_string())
            }
            "recall" => {
                let query = arguments["query"].as_str().ok_or("`query` must be a string")?;
                let collection = arguments["collection"].as_str().unwrap_or(COLLECTION);
                let limit = arguments["limit"].as_u64().unwrap_or(3) as u32;
                let hits = memory::search(collection, query, "keyword", limit)?;
                let found: Vec<Value> = hits
                    .into_iter()
                    .map(|hit| json!({ "id": hit.id, "text": hit.text, "score": hit.score }))
                    .collect();
                Ok(Value::Array(found).to_string())
            }
            "forget" => {
                let id = arguments["id"].as_str().ok_or("`id` must be a string")?;
                let removed = memory::delete(COLLECTION, &[id.to_owned()])?;
                Ok(json!({ "removed": removed }).to_string())
            }
            "key_status" => {
                let key = secrets::get("NOTES_API_KEY");
                Ok(json!({ "set": key.is_some(), "length": key.map_or(0, |key| key.len()) })
                    .to_string())
            }
            other => Err(format!("no tool named {other}")),
        }
    }
}

hearth_plugin_sdk::plugin!(Notes);

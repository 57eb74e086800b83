//! A plugin with state: counts in the plugin's key-value store, which the host keeps per tenant.

use hearth_plugin_sdk::{Plugin, Tool, config, kv};
use serde_json::{Value, json};

struct Counter;

impl Plugin for Counter {
    fn tools() -> Vec<Tool> {
        vec![Tool::new(
            "count",
            "Adds the configured step (default 1) to the named counter and returns its new value.",
            r#"{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}"#,
        )]
    }

    fn call_tool(_name: &str, arguments: &str) -> Result<String, String> {
        let arguments: Value =
            serde_json::from_str(arguments).map_err(|error| format!("arguments: {error}"))?;
        let name = arguments["name"].as_str().ok_or("`name` must be a string")?;
        let key = format!("count/{name}");
        let current = match kv::get(&key)? {
            Some(bytes) => {
                let text = String::from_utf8(bytes).map_err(|error| error.to_string())?;
                text.parse::<u64>().map_err(|error| error.to_string())?
            }
            None => 0,
        };
        // The configured step (the manifest's schema makes it a positive integer), else 1.
        let settings: Value = serde_json::from_str(&config::get()).unwrap_or(Value::Null);
        let next = current + settings["step"].as_u64().unwrap_or(1);
        kv::set(&key, next.to_string().as_bytes())?;
        Ok(json!({ "name": name, "count": next }).to_string())
    }
}

hearth_plugin_sdk::plugin!(Counter);

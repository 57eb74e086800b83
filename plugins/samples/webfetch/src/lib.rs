//! A tool that reaches the web through Hearth: only the origins its manifest allows, with the
//! server's SSRF rules and the call's time limit.

use hearth_plugin_sdk::{Plugin, Tool, http};
use serde_json::{Value, json};

struct WebFetch;

impl Plugin for WebFetch {
    fn tools() -> Vec<Tool> {
        vec![Tool::new(
            "fetch",
            "Fetches a URL and returns its status and the first 4,000 characters of its text.",
            r#"{"type":"object","properties":{"url":{"type":"string"}},"required":["url"]}"#,
        )]
    }

    fn call_tool(_name: &str, arguments: &str) -> Result<String, String> {
        let arguments: Value =
            serde_json::from_str(arguments).map_err(|error| format!("arguments: {error}"))?;
        let url = arguments["url"].as_str().ok_or("`url` must be a string")?;
        let (status, body) = http::get(url)?;
        let text: String = String::from_utf8_lossy(&body).chars().take(4_000).collect();
        Ok(json!({ "status": status, "text": text }).to_string())
    }
}

hearth_plugin_sdk::plugin!(WebFetch);

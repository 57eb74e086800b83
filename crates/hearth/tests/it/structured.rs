//! Structured output through the built binary on the sample model: JSON schemas enforced by
//! grammar (OpenAI `response_format`, Ollama `format`) and tool calls, round trip included.

use crate::client;
use crate::inference::serve_with_sample_models;

fn post(server: &crate::Server, path: &str, body: &serde_json::Value) -> serde_json::Value {
    let response = client()
        .post(server.url(path))
        .json(body)
        .send()
        .expect("request");
    let status = response.status();
    let value: serde_json::Value = response.json().expect("JSON body");
    assert!(status.is_success(), "{path} answered {status}: {value}");
    value
}

fn weather_tool() -> serde_json::Value {
    serde_json::json!({
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "maxLength": 32},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
                },
                "required": ["city", "unit"]
            }
        }
    })
}

#[test]
fn json_schemas_are_enforced_over_openai_and_ollama() {
    let server = serve_with_sample_models();
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 20},
            "age": {"type": "integer", "minimum": 0, "maximum": 150}
        },
        "required": ["name", "age"],
        "additionalProperties": false
    });
    let completion = post(
        &server,
        "/v1/chat/completions",
        &serde_json::json!({
            "model": "gemma3:270m", "temperature": 0, "max_tokens": 48,
            "messages": [{"role": "user", "content": "Invent a person."}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": true}}
        }),
    );
    assert_eq!(
        completion["choices"][0]["finish_reason"], "stop",
        "{completion}"
    );
    let content = completion["choices"][0]["message"]["content"]
        .as_str()
        .expect("content");
    let person: serde_json::Value = serde_json::from_str(content).expect("JSON content");
    assert!(
        person["name"]
            .as_str()
            .is_some_and(|name| name.chars().count() <= 20),
        "{person}"
    );
    assert!(
        person["age"].as_u64().is_some_and(|age| age <= 150),
        "{person}"
    );
    assert_eq!(
        person.as_object().map(|object| object.len()),
        Some(2),
        "{person}"
    );

    // Ollama's `format` takes the same schema; "json" asks for any object.
    let ollama = post(
        &server,
        "/api/chat",
        &serde_json::json!({
            "model": "gemma3:270m", "stream": false, "format": schema,
            "messages": [{"role": "user", "content": "Invent a person."}],
            "options": {"temperature": 0, "num_predict": 48}
        }),
    );
    let person: serde_json::Value =
        serde_json::from_str(ollama["message"]["content"].as_str().expect("content"))
            .expect("JSON content");
    assert!(person["age"].is_u64(), "{person}");
    let generated = post(
        &server,
        "/api/generate",
        &serde_json::json!({
            "model": "gemma3:270m", "stream": false, "format": "json",
            "prompt": "Describe a cat.", "options": {"temperature": 0, "num_predict": 48}
        }),
    );
    let text = generated["response"].as_str().expect("response");
    assert!(text.starts_with('{'), "{generated}");
    if generated["done_reason"] == "stop" {
        assert!(
            serde_json::from_str::<serde_json::Value>(text).is_ok_and(|value| value.is_object())
        );
    }

    // A schema the grammar compiler refuses is a 400 naming the field, per API.
    let bad = client()
        .post(server.url("/v1/chat/completions"))
        .json(&serde_json::json!({
            "model": "gemma3:270m", "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nonsense"}}}
        }))
        .send()
        .expect("request");
    assert_eq!(bad.status(), 400);
    let bad: serde_json::Value = bad.json().expect("JSON");
    assert_eq!(bad["error"]["param"], "response_format", "{bad}");
    let bad = client()
        .post(server.url("/api/chat"))
        .json(&serde_json::json!({
            "model": "gemma3:270m", "stream": false, "format": {"type": "nonsense"},
            "messages": [{"role": "user", "content": "x"}]
        }))
        .send()
        .expect("request");
    assert_eq!(bad.status(), 400);
    let bad: serde_json::Value = bad.json().expect("JSON");
    assert_eq!(bad["error"]["param"], "format", "{bad}");

    // Issue 15's request: unbounded, the sample model wrote `"age": 18000000…` until max_tokens
    // and the JSON never closed. Integers now stop at 16 digits, as llama.cpp's grammar does.
    let person = post(
        &server,
        "/v1/chat/completions",
        &serde_json::json!({
            "model": "gemma3:270m", "temperature": 0, "max_tokens": 60,
            "messages": [{"role": "user", "content": "Make up a person"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "person", "strict": true, "schema": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                "required": ["name", "age"],
                "additionalProperties": false
            }}}
        }),
    );
    assert_eq!(person["choices"][0]["finish_reason"], "stop", "{person}");
    let content = person["choices"][0]["message"]["content"]
        .as_str()
        .expect("content");
    let person: serde_json::Value = serde_json::from_str(content).expect("JSON content");
    assert!(person["age"].is_u64() || person["age"].is_i64(), "{person}");
    assert!(
        person["age"].to_string().trim_start_matches('-').len() <= 16,
        "{person}"
    );
}

#[test]
fn a_tool_call_round_trip_over_openai_and_ollama() {
    let server = serve_with_sample_models();
    let question = serde_json::json!({"role": "user", "content": "What is the weather in Paris?"});
    let first = post(
        &server,
        "/v1/chat/completions",
        &serde_json::json!({
            "model": "gemma3:270m", "temperature": 0, "max_tokens": 64,
            "messages": [question], "tools": [weather_tool()], "tool_choice": "required"
        }),
    );
    let choice = &first["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{first}");
    assert!(choice["message"]["content"].is_null(), "{first}");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let call_id = call["id"].as_str().expect("id");
    assert!(call_id.starts_with("call_"), "{call}");
    // Arguments are a JSON text valid against the tool's parameters.
    let arguments: serde_json::Value =
        serde_json::from_str(call["function"]["arguments"].as_str().expect("arguments"))
            .expect("JSON arguments");
    assert!(arguments["city"].is_string(), "{arguments}");
    assert!(
        ["celsius", "fahrenheit"].contains(&arguments["unit"].as_str().expect("unit")),
        "{arguments}"
    );

    // The application runs the tool and sends the result back; the model answers in text.
    let second = post(
        &server,
        "/v1/chat/completions",
        &serde_json::json!({
            "model": "gemma3:270m", "temperature": 0, "max_tokens": 32,
            "tools": [weather_tool()], "tool_choice": "none",
            "messages": [
                question,
                {"role": "assistant", "content": null, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": call_id, "content": "{\"temperature\": 18, \"sky\": \"sunny\"}"}
            ]
        }),
    );
    assert!(
        second["choices"][0]["message"]["tool_calls"].is_null(),
        "{second}"
    );
    assert!(
        second["choices"][0]["message"]["content"].is_string(),
        "{second}"
    );

    // Streamed, the call arrives whole in one delta, then finish_reason tool_calls.
    let body = client()
        .post(server.url("/v1/chat/completions"))
        .json(&serde_json::json!({
            "model": "gemma3:270m", "temperature": 0, "max_tokens": 64, "stream": true,
            "messages": [question], "tools": [weather_tool()],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}}
        }))
        .send()
        .expect("stream")
        .text()
        .expect("SSE");
    let chunks: Vec<serde_json::Value> = body
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).expect("chunk JSON"))
        .collect();
    let streamed_call = chunks
        .iter()
        .find_map(|chunk| chunk["choices"][0]["delta"]["tool_calls"].get(0))
        .expect("a tool call delta");
    assert_eq!(streamed_call["index"], 0);
    assert_eq!(streamed_call["function"]["name"], "get_weather");
    assert_eq!(
        chunks.last().expect("chunks")["choices"][0]["finish_reason"],
        "tool_calls",
        "{body}"
    );

    // Ollama: tool_calls in the message, arguments as an object.
    let ollama = post(
        &server,
        "/api/chat",
        &serde_json::json!({
            "model": "gemma3:270m", "stream": false, "tools": [weather_tool()],
            "messages": [{"role": "user", "content": "Call get_weather for Paris."}],
            "options": {"temperature": 0, "num_predict": 64}
        }),
    );
    let message = &ollama["message"];
    match message["tool_calls"].get(0) {
        Some(call) => {
            assert_eq!(call["function"]["name"], "get_weather", "{ollama}");
            assert!(
                call["function"]["arguments"]["city"].is_string(),
                "{ollama}"
            );
        }
        // Without tool_choice the model may answer directly instead; it is still a reply.
        None => assert!(message["content"].is_string(), "{ollama}"),
    }

    // A tool_choice naming an undeclared tool is a 400 naming the field.
    let bad = client()
        .post(server.url("/v1/chat/completions"))
        .json(&serde_json::json!({
            "model": "gemma3:270m", "messages": [question], "tools": [weather_tool()],
            "tool_choice": {"type": "function", "function": {"name": "get_time"}}
        }))
        .send()
        .expect("request");
    assert_eq!(bad.status(), 400);
    let bad: serde_json::Value = bad.json().expect("JSON");
    assert_eq!(bad["error"]["param"], "tool_choice", "{bad}");
}

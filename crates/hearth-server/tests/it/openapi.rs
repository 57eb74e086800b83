//! The OpenAPI document against the server that serves it: every route that takes a body
//! documents a real schema, not "any JSON"; requests such as the official OpenAI and Ollama
//! clients send pass both that schema and the server's own checks; requests the server refuses
//! with 400 are refused by the schema too; what the server answers matches the documented
//! response schemas; and every documented status is one the code returns.
//!
//! The server is the gated one (keys required, an instance admin key calling), with no models
//! behind it: a request that passes every check reaches the models and gets 503, or for the
//! admin API does what it asks.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use hearth_gateway::LimitDefaults;
use hearth_server::gate::Access;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::gate::{Gated, gated};
use crate::send;

/// Every status some part of the server answers with: handlers through `ApiError`, the gate
/// (401, 403, 429), the body limit (413), the request timeout (504), readiness (503).
/// 304: OFREP's bulk evaluation, for an `If-None-Match` that names the answer's ETag.
const KNOWN_STATUSES: &[&str] = &[
    "101", "200", "201", "202", "304", "400", "401", "403", "404", "409", "410", "413", "422",
    "429", "500", "502", "503", "504",
];

/// Added to every route behind the gate, from the gate's own table.
const GATE_STATUSES: &[&str] = &["401", "403", "429"];

/// Whether the server takes a request body.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verdict {
    Accepted,
    Refused,
}

use Verdict::{Accepted, Refused};

/// One request body for a route, and whether the server takes it.
struct Case {
    method: Method,
    /// The route template, as the document names it.
    route: &'static str,
    /// What the case shows, for failure messages.
    what: &'static str,
    /// `None` sends no body at all.
    body: Option<Value>,
    verdict: Verdict,
}

/// `route`'s requests, as (verdict, what it shows, body).
fn requests(
    method: Method,
    route: &'static str,
    requests: Vec<(Verdict, &'static str, Value)>,
) -> impl Iterator<Item = Case> {
    requests.into_iter().map(move |(verdict, what, body)| Case {
        method: method.clone(),
        route,
        what,
        body: Some(body),
        verdict,
    })
}

/// A request the server takes.
fn ok(what: &'static str, body: Value) -> (Verdict, &'static str, Value) {
    (Accepted, what, body)
}

/// A request the server refuses with 400.
fn bad(what: &'static str, body: Value) -> (Verdict, &'static str, Value) {
    (Refused, what, body)
}

/// Routes whose body is any JSON: an event's data, a plugin tool's arguments and a plugin's
/// configuration (their own schemas, which `GET /v1/plugins/{plugin}` shows).
const ANY_JSON_BODIES: [&str; 3] = [
    "/v1/events/{topic}",
    "/v1/plugins/{plugin}/tools/{tool}",
    "/v1/plugins/{plugin}/config",
];

/// POST and PUT routes that take no body: an action on a resource (as OpenAI defines them), or
/// a switch (a plugin subscription).
const BODYLESS_POSTS: [&str; 9] = [
    "/v1/experiments/{experiment}/start",
    "/v1/experiments/{experiment}/pause",
    "/v1/plugins/{plugin}/subscription",
    "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel",
    "/v1/plugins/{plugin}/rollback",
    "/v1/plugins/{plugin}/enable",
    "/v1/plugins/{plugin}/disable",
    "/v1/webhooks/{id}/rotate_secret",
    "/v1/webhooks/{id}/deliveries/{delivery}/retry",
];

/// Routes whose well-formed requests name something this test cannot make (feedback names a
/// request an experiment served): past validation they answer 404, which counts as accepted.
const NAMES_WHAT_IS_NOT_HERE: [&str; 1] = ["/v1/feedback"];

const SHA256: &str = "sha256:3f786850e387550fdab836ed7e6dc881de23001b2f5c1fd8a8f6d0b5e0a8f3f5";

fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    }})
}

/// Requests for every route that takes a body: for each, what the official clients send
/// (accepted), and mistakes the server refuses with 400 (refused). Run in this order: the
/// admin cases change the store.
fn cases() -> Vec<Case> {
    let chat = "/v1/chat/completions";
    let completions = "/v1/completions";
    let embeddings = "/v1/embeddings";
    let user = |text: &str| json!([{"role": "user", "content": text}]);
    let mut cases = Vec::new();
    // OpenAI's Responses API.
    cases.extend(requests(
        Method::POST,
        "/v1/responses",
        vec![
            ok("the OpenAI client's plain request", json!({
                "model": "gemma3:270m", "input": "Count to three.",
                "instructions": "You are terse.", "max_output_tokens": 64, "temperature": 0.7
            })),
            ok("items, streaming, tools and a JSON schema turned off", json!({
                "model": "gemma3:270m", "stream": true, "store": false,
                "input": [
                    {"role": "developer", "content": "Use the tool."},
                    {"type": "message", "role": "user",
                     "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
                    {"type": "function_call", "call_id": "call_1", "name": "get_weather",
                     "arguments": "{\"city\": \"Paris\"}"},
                    {"type": "function_call_output", "call_id": "call_1", "output": "18 C"}
                ],
                "tools": [{"type": "function", "name": "get_weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
                "tool_choice": {"type": "function", "name": "get_weather"},
                "parallel_tool_calls": false, "text": {"format": {"type": "text"}},
                "metadata": {"run": "1"}, "user": "someone", "keep_alive": "5m"
            })),
            ok("file_search over a vector store, with its results", json!({
                "model": "gemma3:270m", "input": "What does the handbook say about leave?",
                "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"],
                    "max_num_results": 5, "filters": {"type": "eq", "key": "team", "value": "hr"},
                    "ranking_options": {"ranker": "auto", "score_threshold": 0.1,
                        "hybrid_search": {"embedding_weight": 0.7, "text_weight": 0.3}}}],
                "include": ["file_search_call.results"]
            })),
            bad("file_search without vector stores", json!({
                "model": "gemma3:270m", "input": "Hi",
                "tools": [{"type": "file_search", "vector_store_ids": []}]
            })),
            ok("a JSON schema format, sampling extensions", json!({
                "model": "gemma3:270m", "input": "Name a colour.",
                "text": {"format": {"type": "json_schema", "name": "colour", "strict": true,
                    "schema": {"type": "object", "properties": {"name": {"type": "string"}}}}},
                "top_p": 1.0, "top_k": 40, "seed": 7, "include": [], "truncation": "disabled"
            })),
            bad("no input", json!({"model": "gemma3:270m"})),
            bad("input is a number", json!({"model": "gemma3:270m", "input": 7})),
            bad("an empty item list", json!({"model": "gemma3:270m", "input": []})),
            bad("a role Hearth does not know", json!({
                "model": "gemma3:270m", "input": [{"role": "robot", "content": "Hi"}]
            })),
            bad("an image part", json!({
                "model": "gemma3:270m",
                "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]
            })),
            bad("max_output_tokens 0", json!({
                "model": "gemma3:270m", "input": "Hi", "max_output_tokens": 0
            })),
            bad("a json_schema format without its schema", json!({
                "model": "gemma3:270m", "input": "Hi",
                "text": {"format": {"type": "json_schema", "name": "x"}}
            })),
            bad("a built-in tool Hearth does not run", json!({
                "model": "gemma3:270m", "input": "Hi", "tools": [{"type": "web_search"}]
            })),
        ],
    ));
    // OpenAI chat completions.
    cases.extend(requests(
        Method::POST,
        chat,
        vec![
            ok("the OpenAI client's plain request", json!({
                "model": "gemma3:270m",
                "messages": [
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "Count to three."}
                ],
                "temperature": 0.7, "max_tokens": 64, "stream": false
            })),
            ok("streaming, with content parts and tools", json!({
                "model": "gemma3:270m",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}],
                "stream": true, "stream_options": {"include_usage": true},
                "tools": [weather_tool()], "tool_choice": "auto", "parallel_tool_calls": false
            })),
            ok("a tool call and its result", json!({
                "model": "gemma3:270m",
                "messages": [
                    {"role": "user", "content": "What is the weather in Paris?"},
                    {"role": "assistant", "content": null, "tool_calls": [{
                        "id": "call_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}
                    }]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "18 C and sunny"}
                ],
                "tools": [weather_tool()],
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}}
            })),
            ok("every bound at its limit, a JSON schema", json!({
                "model": "gemma3:270m",
                "messages": [
                    {"role": "developer", "content": "Answer in JSON."},
                    {"role": "user", "content": "Name a colour."}
                ],
                "response_format": {"type": "json_schema", "json_schema": {
                    "name": "colour", "strict": true,
                    "schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
                }},
                "n": 16, "temperature": 2.0, "top_p": 1.0, "min_p": 0.0, "top_k": 40, "seed": -7,
                "presence_penalty": -2.0, "frequency_penalty": 2.0, "repeat_penalty": 10.0,
                "logprobs": true, "top_logprobs": 20, "stop": ["\n\n", "END"],
                "max_completion_tokens": 256, "logit_bias": {"15": 5.5, "50256": -100},
                "keep_alive": "1h30m"
            })),
            ok("nulls for optional fields, unknown fields", json!({
                "model": "gemma3:270m", "messages": user("Hi"),
                "temperature": null, "top_p": null, "n": null, "stop": null, "max_tokens": null,
                "tools": null, "tool_choice": null, "response_format": {"type": "json_object"},
                "stream_options": null, "seed": null, "keep_alive": 300, "user": "someone"
            })),
            ok("whole numbers written as floats", json!({
                "model": "gemma3:270m", "messages": user("Hi"),
                "max_tokens": 64.0, "n": 2.0, "seed": 7.0, "top_k": 40.0
            })),
            ok("tools, with tool_choice none beside a JSON format", json!({
                "model": "gemma3:270m", "messages": user("Hi"), "tools": [weather_tool()],
                "tool_choice": "none", "response_format": {"type": "json_object"}
            })),
            ok("answered from memory, and from Open WebUI's attached collection", json!({
                "model": "gemma3:270m", "messages": user("Who keeps the lighthouse?"),
                "memory": {"collections": ["almanac"], "top_k": 5, "mode": "hybrid",
                    "min_score": 0.1, "filter": {"type": "eq", "key": "topic", "value": "sea"}},
                "files": [{"type": "collection", "id": "notes"}]
            })),
            ok("answered from a graph, expanded along a relation", json!({
                "model": "gemma3:270m", "messages": user("Hi"),
                "memory": {"graphs": [{"graph": "people", "expand": {"types": ["knows"], "depth": 1}}]}
            })),
            ok("remembered for a named user", json!({
                "model": "gemma3:270m", "messages": user("Hi"), "user": "alice",
                "memory": {"remember": true}
            })),
            bad("memory without collections", json!({
                "model": "gemma3:270m", "messages": user("Hi"), "memory": {"collections": []}
            })),
            bad("an attached file that is not a collection", json!({
                "model": "gemma3:270m", "messages": user("Hi"),
                "files": [{"type": "file", "id": "file-1"}]
            })),
            bad("messages is not a list", json!({
                "model": "gemma3:270m", "messages": "Hello"
            })),
            bad("no messages", json!({"model": "gemma3:270m", "messages": []})),
            bad("no model", json!({"messages": user("Hi")})),
            bad("a message without a role", json!({
                "model": "gemma3:270m", "messages": [{"content": "Hi"}]
            })),
            bad("an unknown role", json!({
                "model": "gemma3:270m", "messages": [{"role": "robot", "content": "Hi"}]
            })),
            bad("an image part", json!({
                "model": "gemma3:270m",
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]
            })),
            bad("temperature above 2", json!({
                "model": "gemma3:270m", "messages": user("Hi"), "temperature": 2.5
            })),
            bad("n of 0", json!({
                "model": "gemma3:270m", "messages": user("Hi"), "n": 0
            })),
            bad("n above 16", json!({
                "model": "gemma3:270m", "messages": user("Hi"), "n": 17
            })),
            bad("a fractional max_tokens", json!({
                "model": "gemma3:270m", "messages": user("Hi"), "max_tokens": 1.5
            })),
            bad("max_tokens of 0", json!({
                "model": "gemma3:270m", "messages": user("Hi"), "max_tokens": 0
            })),
            bad("top_logprobs above 20", json!({
                "model": "gemma3:270m", "messages": user("Hi"), "logprobs": true, "top_logprobs": 21
            })),
            bad("17 stop sequences", json!({
                "model": "gemma3:270m", "messages": user("Hi"),
                "stop": (0..17).map(|index| format!("stop{index}")).collect::<Vec<_>>()
            })),
            bad("a keep_alive that is not a duration", json!({
                "model": "gemma3:270m", "messages": user("Hi"), "keep_alive": "soon"
            })),
            bad("a json_schema format without its schema", json!({
                "model": "gemma3:270m", "messages": user("Hi"),
                "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}
            })),
            bad("a tool that is not a function", json!({
                "model": "gemma3:270m", "messages": user("Hi"),
                "tools": [{"type": "retrieval", "function": {"name": "search"}}]
            })),
            bad("an unknown tool_choice", json!({
                "model": "gemma3:270m", "messages": user("Hi"),
                "tools": [weather_tool()], "tool_choice": "sometimes"
            })),
            bad("top_logprobs without logprobs", json!({
                "model": "gemma3:270m", "messages": user("Hi"), "top_logprobs": 2
            })),
            bad("a tool_choice without tools", json!({
                "model": "gemma3:270m", "messages": user("Hi"), "tool_choice": "auto"
            })),
            bad("tools beside a JSON response_format", json!({
                "model": "gemma3:270m", "messages": user("Hi"), "tools": [weather_tool()],
                "response_format": {"type": "json_object"}
            })),
            bad("a tool name with a space", json!({
                "model": "gemma3:270m", "messages": user("Hi"),
                "tools": [{"type": "function", "function": {"name": "get weather"}}]
            })),
            bad("a logit_bias key that is not a token id", json!({
                "model": "gemma3:270m", "messages": user("Hi"), "logit_bias": {"hello": 1}
            })),
        ],
    ));
    // OpenAI legacy completions.
    cases.extend(requests(
        Method::POST,
        completions,
        vec![
            ok("the OpenAI client's streamed request", json!({
                "model": "gemma3:270m", "prompt": "Once upon a time", "max_tokens": 16,
                "temperature": 0, "logprobs": 5, "echo": true, "stop": "\n", "n": 2,
                "stream": true, "stream_options": {"include_usage": true}
            })),
            ok("a one-prompt list, an empty suffix", json!({
                "model": "gemma3:270m", "prompt": ["Say this is a test"], "suffix": "", "best_of": 1
            })),
            bad("two prompts", json!({
                "model": "gemma3:270m", "prompt": ["a", "b"]
            })),
            bad("an empty prompt", json!({"model": "gemma3:270m", "prompt": ""})),
            bad("a prompt that is a number", json!({"model": "gemma3:270m", "prompt": 42})),
            bad("logprobs above 5", json!({
                "model": "gemma3:270m", "prompt": "Hi", "logprobs": 6
            })),
            bad("a suffix (fill-in-the-middle)", json!({
                "model": "gemma3:270m", "prompt": "Hello", "suffix": "world"
            })),
            bad("a negative temperature", json!({
                "model": "gemma3:270m", "prompt": "Hi", "temperature": -0.5
            })),
        ],
    ));
    // OpenAI embeddings.
    cases.extend(requests(
        Method::POST,
        embeddings,
        vec![
            ok("one text as floats", json!({
                "model": "all-minilm", "input": "The food was delicious.", "encoding_format": "float"
            })),
            ok("the OpenAI client's default: base64", json!({
                "model": "all-minilm", "input": ["first", "second"], "encoding_format": "base64",
                "dimensions": 384, "user": "someone"
            })),
            bad("token arrays", json!({"model": "all-minilm", "input": [[1, 2, 3]]})),
            bad("tokens", json!({"model": "all-minilm", "input": [1, 2]})),
            bad("no inputs", json!({"model": "all-minilm", "input": []})),
            bad("no input field", json!({"model": "all-minilm"})),
            bad("an unknown encoding", json!({
                "model": "all-minilm", "input": "x", "encoding_format": "int8"
            })),
        ],
    ));
    // Ollama chat.
    cases.extend(requests(
        Method::POST,
        "/api/chat",
        vec![
            ok("the Ollama client's plain request", json!({
                "model": "gemma3:270m", "messages": [{"role": "user", "content": "Why is the sky blue?"}]
            })),
            ok("answered from memory", json!({
                "model": "gemma3:270m", "stream": false,
                "messages": [{"role": "user", "content": "Who keeps the lighthouse?"}],
                "memory": {"collections": ["almanac"], "top_k": 3, "mode": "keyword"}
            })),
            ok("JSON format, options, keep_alive", json!({
                "model": "gemma3:270m",
                "messages": [
                    {"role": "system", "content": "Answer in JSON."},
                    {"role": "user", "content": "List two colours.", "images": []}
                ],
                "stream": false, "format": "json", "keep_alive": "5m",
                "options": {"temperature": 0, "num_predict": 128, "top_k": 20, "top_p": 0.9, "min_p": 0.0,
                            "seed": 42, "stop": ["\n\n"], "repeat_penalty": 1.1, "repeat_last_n": 64,
                            "num_ctx": 4096}
            })),
            ok("a schema format, no limit on tokens", json!({
                "model": "gemma3:270m", "messages": user("How old is Ollama?"),
                "format": {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]},
                "options": {"num_predict": -1, "stop": "\n"}
            })),
            ok("a tool call and its result", json!({
                "model": "gemma3:270m",
                "messages": [
                    {"role": "user", "content": "Weather in Toronto?"},
                    {"role": "assistant", "content": "", "tool_calls": [
                        {"function": {"name": "get_weather", "arguments": {"city": "Toronto"}}}
                    ]},
                    {"role": "tool", "content": "11 degrees", "tool_name": "get_weather"}
                ],
                "tools": [weather_tool()], "stream": false
            })),
            ok("no messages: load the model", json!({
                "model": "gemma3:270m", "messages": [], "keep_alive": -1
            })),
            bad("messages is not a list", json!({
                "model": "gemma3:270m", "messages": "hello"
            })),
            bad("no model", json!({"messages": user("Hi")})),
            bad("an unknown role", json!({
                "model": "gemma3:270m", "messages": [{"role": "robot", "content": "Hi"}]
            })),
            bad("images", json!({
                "model": "gemma3:270m", "messages": [{"role": "user", "content": "What is this?", "images": ["iVBORw0KGgo="]}]
            })),
            bad("a format that is not JSON", json!({
                "model": "gemma3:270m", "messages": user("Hi"), "format": "yaml"
            })),
            bad("a negative temperature", json!({
                "model": "gemma3:270m", "messages": user("Hi"), "options": {"temperature": -1}
            })),
            bad("a temperature past the largest f32", json!({
                "model": "gemma3:270m", "messages": user("Hi"), "options": {"temperature": 1e39}
            })),
            bad("top_p above 1", json!({
                "model": "gemma3:270m", "messages": user("Hi"), "options": {"top_p": 2}
            })),
            bad("num_predict of 0", json!({
                "model": "gemma3:270m", "messages": user("Hi"), "options": {"num_predict": 0}
            })),
            bad("a format beside tools", json!({
                "model": "gemma3:270m", "messages": user("Hi"), "format": "json",
                "tools": [weather_tool()]
            })),
            bad("a keep_alive that is not a duration", json!({
                "model": "gemma3:270m", "messages": user("Hi"), "keep_alive": "forever"
            })),
        ],
    ));
    // Ollama generate.
    cases.extend(requests(
        Method::POST,
        "/api/generate",
        vec![
            ok("the Ollama client's plain request", json!({
                "model": "gemma3:270m", "prompt": "Why is the sky blue?"
            })),
            ok("a system prompt, JSON, options", json!({
                "model": "gemma3:270m", "prompt": "Say hi", "system": "Be brief.", "stream": false,
                "format": "json", "options": {"num_predict": 32}, "keep_alive": -1
            })),
            ok("a raw prompt", json!({
                "model": "gemma3:270m", "raw": true, "stream": false,
                "prompt": "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
            })),
            ok("no prompt: unload the model", json!({
                "model": "gemma3:270m", "keep_alive": 0
            })),
            ok("a context beside a raw prompt", json!({
                "model": "gemma3:270m", "prompt": "And then?", "raw": true, "context": [1, 2, 3]
            })),
            bad("a suffix on a request that loads the model", json!({
                "model": "gemma3:270m", "suffix": "x"
            })),
            bad("a prompt that is a number", json!({"model": "gemma3:270m", "prompt": 7})),
            bad("a suffix", json!({
                "model": "gemma3:270m", "prompt": "def add(a, b):", "suffix": "    return c"
            })),
            bad("a template", json!({
                "model": "gemma3:270m", "prompt": "Hi", "template": "{{ .Prompt }}"
            })),
            bad("images", json!({
                "model": "gemma3:270m", "prompt": "What is this?", "images": ["iVBORw0KGgo="]
            })),
            bad("a context to continue", json!({
                "model": "gemma3:270m", "prompt": "And then?", "context": [1, 2, 3]
            })),
            bad("a format that is a number", json!({
                "model": "gemma3:270m", "prompt": "Hi", "format": 42
            })),
        ],
    ));
    // Ollama embeddings.
    cases.extend(requests(
        Method::POST,
        "/api/embed",
        vec![
            ok("one text", json!({
                "model": "all-minilm", "input": "Why is the sky blue?"
            })),
            ok("texts, no truncation", json!({
                "model": "all-minilm", "input": ["a", "b"], "truncate": false, "keep_alive": "10m"
            })),
            bad("no inputs", json!({"model": "all-minilm", "input": []})),
            bad("an input that is a number", json!({"model": "all-minilm", "input": 5})),
            bad("a keep_alive that is a boolean", json!({
                "model": "all-minilm", "input": "x", "keep_alive": true
            })),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/api/embeddings",
        vec![
            ok(
                "one prompt",
                json!({
                    "model": "all-minilm", "prompt": "Llamas are members of the camelid family"
                }),
            ),
            bad("no prompt", json!({"model": "all-minilm"})),
            bad(
                "a list of prompts",
                json!({"model": "all-minilm", "prompt": ["a"]}),
            ),
        ],
    ));
    // Ollama model management.
    cases.extend(requests(
        Method::POST,
        "/api/show",
        vec![
            ok("model", json!({"model": "gemma3:270m"})),
            ok(
                "name, as older clients send it",
                json!({"name": "gemma3", "verbose": true}),
            ),
            ok(
                "model beside an empty name",
                json!({"model": "gemma3:270m", "name": ""}),
            ),
            ok(
                "a null model beside a name",
                json!({"model": null, "name": "gemma3"}),
            ),
            bad("no model", json!({})),
            bad("an empty model", json!({"model": ""})),
            bad("a model that is a number", json!({"model": 3})),
        ],
    ));
    cases.extend(requests(
        Method::DELETE,
        "/api/delete",
        vec![
            ok("model", json!({"model": "gemma3:270m"})),
            ok("name", json!({"name": "acme/gemma3"})),
            bad("an invalid name", json!({"model": "Not A Name"})),
            bad("no model", json!({})),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/api/copy",
        vec![
            ok(
                "a new name",
                json!({
                    "source": "gemma3:270m", "destination": "gemma3:backup"
                }),
            ),
            bad("no destination", json!({"source": "gemma3"})),
            bad(
                "an invalid destination",
                json!({
                    "source": "gemma3", "destination": "bad name"
                }),
            ),
            bad("an empty source", json!({"source": "", "destination": "x"})),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/api/pull",
        vec![
            ok(
                "a Hugging Face file",
                json!({
                    "model": "hf:ggml-org/gemma-3-270m-it-GGUF/gemma-3-270m-it-Q8_0.gguf"
                }),
            ),
            ok(
                "a URL, a name, a checksum",
                json!({
                    "model": "https://example.com/models/tiny.gguf", "name": "tiny:q8",
                    "sha256": SHA256, "stream": false
                }),
            ),
            ok(
                "a revision, an empty name",
                json!({
                    "model": "hf:owner/repo/sub/file.gguf@main", "name": ""
                }),
            ),
            bad("no model", json!({})),
            bad(
                "a path on the server",
                json!({"model": "/models/tiny.gguf"}),
            ),
            bad("an FTP URL", json!({"model": "ftp://example.com/x.gguf"})),
            bad(
                "an hf: reference without a file",
                json!({"model": "hf:owner/repo"}),
            ),
            bad(
                "an hf: path that climbs",
                json!({"model": "hf:owner/../file.gguf"}),
            ),
            bad(
                "an invalid name",
                json!({
                    "model": "https://example.com/x.gguf", "name": "Bad Name"
                }),
            ),
        ],
    ));
    // The admin API.
    cases.extend(requests(
        Method::POST,
        "/admin/v1/tenants",
        vec![
            ok("a name", json!({"name": "initech"})),
            ok("a name and limits", json!({
                "name": "umbrella",
                "limits": {"tokens_per_month": 1_000_000, "budget_usd_per_month": 25.5, "max_concurrent": null}
            })),
            bad("no name", json!({"limits": {}})),
            bad("an invalid name", json!({"name": "Has Caps"})),
            bad("an unknown field", json!({"name": "hooli", "color": "red"})),
            bad("a negative limit", json!({
                "name": "hooli", "limits": {"requests_per_minute": -1}
            })),
        ],
    ));
    cases.extend(requests(
        Method::PUT,
        "/admin/v1/tenants/{tenant}/limits",
        vec![
            ok(
                "limits",
                json!({
                    "requests_per_minute": 600, "max_concurrent": 4, "tokens_per_day": null
                }),
            ),
            ok("none", json!({})),
            bad("a limit that is text", json!({"tokens_per_day": "lots"})),
            bad("an unknown limit", json!({"rpm": 5})),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/admin/v1/users",
        vec![
            ok(
                "an email address",
                json!({
                    "tenant": "acme", "name": "alice@example.com"
                }),
            ),
            bad("no tenant, from an instance admin", json!({"name": "bob"})),
            bad("no name", json!({"tenant": "acme"})),
            bad(
                "a name with a space",
                json!({"tenant": "acme", "name": "has space"}),
            ),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/admin/v1/keys",
        vec![
            ok(
                "a tenant's reader key",
                json!({
                    "tenant": "acme", "role": "reader", "name": "ci", "scopes": ["chat", "embed"],
                    "limits": {"requests_per_minute": 60}, "expires_in_seconds": 3600
                }),
            ),
            ok("an instance admin key", json!({"role": "admin"})),
            bad("a member key without a tenant", json!({"role": "member"})),
            bad(
                "a user without a tenant",
                json!({"role": "admin", "user": "alice@example.com"}),
            ),
            bad(
                "an unknown role",
                json!({"tenant": "acme", "role": "owner"}),
            ),
            bad(
                "a lifetime of 0",
                json!({"tenant": "acme", "expires_in_seconds": 0}),
            ),
            bad(
                "a scope of two words",
                json!({"tenant": "acme", "scopes": ["two words"]}),
            ),
            bad(
                "a scope with a next-line character",
                json!({"tenant": "acme", "scopes": ["a\u{85}b"]}),
            ),
            bad("an unknown field", json!({"tenant": "acme", "colour": 1})),
        ],
    ));
    cases.extend(requests(
        Method::PUT,
        "/admin/v1/keys/{key}/limits",
        vec![
            ok("limits", json!({"tokens_per_minute": 10_000})),
            ok(
                "a whole limit written as a float",
                json!({"tokens_per_day": 1000.0}),
            ),
            bad("a fractional limit", json!({"tokens_per_minute": 1.5})),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/admin/v1/keys/{key}/rotate",
        vec![
            bad("a negative grace period", json!({"grace_seconds": -1})),
            bad("an unknown field", json!({"grace": 5})),
        ],
    ));
    // Memory, in the instance's own scope: a collection `docs` of four dimensions.
    cases.extend(requests(
        Method::POST,
        "/v1/collections",
        vec![
            ok(
                "dimensions for vectors the client supplies",
                json!({"name": "docs", "dimensions": 4}),
            ),
            ok(
                "every option",
                json!({
                    "name": "tuned", "dimensions": 4, "metric": "l2", "quantization": "int8",
                    "hnsw": {"m": 8, "ef_construction": 100, "ef": 40},
                    "metadata": {"team": "search"}
                }),
            ),
            bad("no name", json!({"dimensions": 4})),
            bad(
                "an unknown metric",
                json!({"name": "x", "dimensions": 4, "metric": "manhattan"}),
            ),
            bad(
                "dimensions that are text",
                json!({"name": "x", "dimensions": "four"}),
            ),
            bad(
                "an unknown field",
                json!({"name": "x", "dimensions": 4, "size": 4}),
            ),
        ],
    ));
    cases.extend(requests(
        Method::PATCH,
        "/v1/collections/{name}",
        vec![
            ok(
                "new metadata and search effort",
                json!({"metadata": {"team": "ml"}, "hnsw": {"ef": 80}}),
            ),
            bad(
                "a graph parameter fixed at creation",
                json!({"hnsw": {"m": 32}}),
            ),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/v1/collections/{name}/documents",
        vec![
            ok(
                "documents with vectors",
                json!({"documents": [
                    {"id": "doc-1", "text": "hello", "metadata": {"lang": "en"},
                     "embedding": [1.0, 0.0, 0.0, 0.0]},
                    {"id": "doc-2", "text": "bonjour", "metadata": {"lang": "fr"},
                     "embedding": [0.0, 1.0, 0.0, 0.0]}
                ]}),
            ),
            bad(
                "documents that are not a list",
                json!({"documents": {"id": "doc-3"}}),
            ),
            bad(
                "an embedding of text",
                json!({"documents": [{"id": "doc-3", "embedding": ["one"]}]}),
            ),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/v1/collections/{name}/search",
        vec![
            ok(
                "a filtered vector search",
                json!({
                    "vector": [1.0, 0.0, 0.0, 0.0], "top_k": 3, "include": ["text", "metadata"],
                    "filter": {"type": "or", "filters": [
                        {"key": "lang", "type": "eq", "value": "en"},
                        {"key": "lang", "type": "in", "value": ["de", "fr"]}
                    ]}
                }),
            ),
            ok(
                "a keyword search",
                json!({"query": "hello", "mode": "keyword", "top_k": 5}),
            ),
            ok(
                "a hybrid search with the client's vector",
                json!({
                    "query": "hello", "vector": [1.0, 0.0, 0.0, 0.0], "mode": "hybrid",
                    "hybrid": {"k": 30, "embedding_weight": 0.5, "text_weight": 1.0}
                }),
            ),
            bad(
                "an unknown include",
                json!({"vector": [1.0, 0.0, 0.0, 0.0], "include": ["everything"]}),
            ),
            bad(
                "a negative top_k",
                json!({"vector": [1.0, 0.0, 0.0, 0.0], "top_k": -1}),
            ),
            bad(
                "an unknown mode",
                json!({"vector": [1.0, 0.0, 0.0, 0.0], "mode": "semantic"}),
            ),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/v1/collections/{name}/delete",
        vec![
            ok(
                "by filter",
                json!({"filter": {"key": "lang", "type": "eq", "value": "fr"}}),
            ),
            ok("by ids", json!({"ids": ["doc-1"]})),
            bad("ids that are not a list", json!({"ids": "doc-1"})),
        ],
    ));
    // Vector stores: OpenAI's shapes. This server has no embedding model, so the accepted
    // requests get 503 past their parsing; the refused ones fail it.
    cases.extend(requests(
        Method::POST,
        "/v1/vector_stores",
        vec![
            ok(
                "every option",
                json!({
                    "name": "handbook", "file_ids": ["file-0"],
                    "chunking_strategy": {"type": "static", "static":
                        {"max_chunk_size_tokens": 400, "chunk_overlap_tokens": 100}},
                    "metadata": {"team": "docs"},
                    "expires_after": {"anchor": "last_active_at", "days": 7}
                }),
            ),
            ok("nothing", json!({})),
            bad(
                "file ids that are not a list",
                json!({"file_ids": "file-0"}),
            ),
            bad(
                "an unknown chunking strategy",
                json!({"chunking_strategy": {"type": "semantic"}}),
            ),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/v1/vector_stores/{vector_store_id}",
        vec![
            ok(
                "a new name, and no expiry",
                json!({"name": "renamed", "expires_after": null}),
            ),
            bad("a name that is a number", json!({"name": 7})),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/v1/vector_stores/{vector_store_id}/files",
        vec![
            ok(
                "a file with attributes",
                json!({"file_id": "file-0", "attributes": {"lang": "en", "year": 2024},
                       "chunking_strategy": {"type": "auto"}}),
            ),
            bad("no file id", json!({"attributes": {}})),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/v1/vector_stores/{vector_store_id}/files/{file_id}",
        vec![
            ok("new attributes", json!({"attributes": {"lang": "fr"}})),
            bad("attributes that are a list", json!({"attributes": ["fr"]})),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/v1/vector_stores/{vector_store_id}/file_batches",
        vec![
            ok(
                "files each with attributes",
                json!({"files": [{"file_id": "file-0", "attributes": {"lang": "en"}}]}),
            ),
            ok("file ids", json!({"file_ids": ["file-0"]})),
            bad("files that are ids", json!({"files": ["file-0"]})),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/v1/vector_stores/{vector_store_id}/search",
        vec![
            ok(
                "a filtered search with ranking options",
                json!({
                    "query": ["refunds", "returns"], "max_num_results": 5,
                    "filters": {"key": "lang", "type": "eq", "value": "en"},
                    "ranking_options": {"ranker": "auto", "score_threshold": 0.2,
                        "hybrid_search": {"embedding_weight": 1.0, "text_weight": 0.5}},
                    "rewrite_query": false
                }),
            ),
            bad("no query", json!({"max_num_results": 5})),
            bad("a query that is a number", json!({"query": 5})),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/v1/graphs",
        vec![
            ok(
                "a graph whose nodes carry vectors",
                json!({"name": "people", "dimensions": 2, "metadata": {"team": "a"}}),
            ),
            bad("a name that is a number", json!({"name": 7})),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/v1/graphs/{graph}/nodes",
        vec![
            ok(
                "two nodes",
                json!({"nodes": [
                    {"id": "ada", "type": "person", "title": "Ada", "content": "Writes compilers.",
                     "properties": {"born": 1815}, "embedding": [1.0, 0.0]},
                    {"id": "bob", "type": "person", "title": "Bob", "embedding": [0.0, 1.0]}
                ]}),
            ),
            bad("nodes that are not a list", json!({"nodes": {"id": "ada"}})),
            bad(
                "a node without a type",
                json!({"nodes": [{"id": "cid", "title": "Cid", "embedding": [1.0, 1.0]}]}),
            ),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/v1/graphs/{graph}/relations",
        vec![
            ok(
                "a relation with properties",
                json!({"relations": [{"source": "ada", "type": "knows", "target": "bob",
                                      "properties": {"since": 1833}}]}),
            ),
            bad(
                "a relation without a target",
                json!({"relations": [{"source": "ada", "type": "knows"}]}),
            ),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/v1/graphs/{graph}/paths",
        vec![
            ok(
                "paths both ways, of one type",
                json!({"from": "ada", "to": "bob", "max_depth": 2, "direction": "both",
                       "types": ["knows"], "limit": 5}),
            ),
            bad(
                "a direction that is not one",
                json!({"from": "ada", "to": "bob", "direction": "up"}),
            ),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/v1/graphs/{graph}/search",
        vec![
            ok(
                "a keyword search that expands",
                json!({"query": "compilers", "mode": "keyword", "top_k": 3,
                       "filter": {"key": "type", "type": "eq", "value": "person"},
                       "expand": {"types": ["knows"], "direction": "out", "depth": 1, "limit": 5}}),
            ),
            bad("no query", json!({"top_k": 3})),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/v1/graphs/{graph}/nodes/delete",
        vec![
            ok("ids it may not have", json!({"ids": ["nobody"]})),
            bad("ids that are not a list", json!({"ids": "nobody"})),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/v1/events",
        vec![
            ok(
                "two events, one with an idempotency key",
                json!({"events": [
                    {"topic": "agent.task.done", "data": {"task": 7}},
                    {"topic": "emotion.joy", "data": {"level": 0.8}, "idempotency_key": "k-1"}
                ]}),
            ),
            bad(
                "events that are not a list",
                json!({"events": {"topic": "a"}}),
            ),
            bad(
                "an unknown field",
                json!({"events": [{"topic": "a", "data": 1, "priority": 2}]}),
            ),
        ],
    ));
    cases.extend(requests(
        Method::PUT,
        "/v1/topics/{pattern}",
        vec![
            ok(
                "a schema and retention",
                json!({
                    "schema": {"type": "object", "required": ["level"]},
                    "retention": {"max_age_s": 86400, "max_events": 1000},
                    "durable": true
                }),
            ),
            ok("nothing: the defaults", json!({})),
            bad("retention that is text", json!({"retention": "a day"})),
            bad("an unknown field", json!({"durable": true, "replicas": 3})),
        ],
    ));
    // A consumer named like the other `{name}` routes, then its fetch and settle actions.
    let consumer = json!({
        "name": "docs", "filter": ["orders.>", "emotion.*"], "deliver": {"from_seq": 1},
        "ack_wait_ms": 5000, "max_deliver": 5, "backoff_ms": [100, 1000],
        "dead_letter_topic": "dead.docs", "max_ack_pending": 100
    });
    cases.extend(requests(
        Method::POST,
        "/v1/consumers",
        vec![
            ok("every setting", consumer.clone()),
            ok("the same again: answered with it", consumer),
            bad("no filter", json!({"name": "other"})),
            bad(
                "an ack wait that is text",
                json!({"name": "other", "filter": ">", "ack_wait_ms": "soon"}),
            ),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/v1/consumers/{name}/fetch",
        vec![
            ok(
                "a batch with a short wait",
                json!({"batch": 5, "wait_ms": 10}),
            ),
            ok("nothing: one event, no wait", json!({})),
            bad("a batch that is text", json!({"batch": "many"})),
        ],
    ));
    for action in ["ack", "nak", "term", "in_progress"] {
        let route: &'static str = match action {
            "ack" => "/v1/consumers/{name}/ack",
            "nak" => "/v1/consumers/{name}/nak",
            "term" => "/v1/consumers/{name}/term",
            _ => "/v1/consumers/{name}/in_progress",
        };
        let mut good = vec![ok("no deliveries", json!({"delivery_ids": []}))];
        if action == "nak" {
            good.push(ok(
                "a delay",
                json!({"delivery_ids": ["1.1"], "delay_ms": 500}),
            ));
        }
        good.push(bad(
            "ids that are not a list",
            json!({"delivery_ids": "1.1"}),
        ));
        good.push(bad("an unknown field", json!({"ids": ["1.1"]})));
        cases.extend(requests(Method::POST, route, good));
    }
    // A plugin (the sample calculator, built from source), then a new version of it.
    let calculator = hearth_plugins::samples::sample("calculator");
    let component = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&calculator.component)
    };
    cases.extend(requests(
        Method::POST,
        "/v1/plugins",
        vec![
            ok(
                "the calculator",
                json!({"manifest": calculator.manifest, "component": component}),
            ),
            bad(
                "a manifest that is a number",
                json!({"manifest": 7, "component": component}),
            ),
            bad("no component", json!({"manifest": calculator.manifest})),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/v1/plugins/{plugin}/upgrade",
        vec![
            ok(
                "version 0.2.0, declaring a secret",
                json!({"manifest": format!("{}\n[capabilities]\nsecrets = [\"NOTES_API_KEY\"]\n",
                                           calculator.manifest.replace("0.1.0", "0.2.0")),
                       "component": component}),
            ),
            bad(
                "a component that is a list",
                json!({"manifest": calculator.manifest, "component": []}),
            ),
        ],
    ));
    // The secret version 0.2.0 declares.
    cases.extend(requests(
        Method::PUT,
        "/v1/plugins/{plugin}/secrets/{secret}",
        vec![
            ok("a value", json!({"value": "sk-test"})),
            bad("a value that is a number", json!({"value": 7})),
        ],
    ));
    // A webhook (to a loopback receiver this harness allows), then a change to it.
    cases.extend(requests(
        Method::POST,
        "/v1/webhooks",
        vec![
            ok(
                "every field",
                json!({"url": "http://127.0.0.1:9/hook", "topics": ["orders.*"],
                       "description": "billing", "enabled": false}),
            ),
            bad(
                "topics that are a number",
                json!({"url": "http://127.0.0.1:9/", "topics": 5}),
            ),
            bad(
                "an unknown field",
                json!({"url": "http://127.0.0.1:9/", "secret": "x"}),
            ),
        ],
    ));
    cases.extend(requests(
        Method::PATCH,
        "/v1/webhooks/{id}",
        vec![
            ok(
                "new topics and a description",
                json!({"topics": ">", "description": "all"}),
            ),
            bad("enabled that is text", json!({"enabled": "yes"})),
        ],
    ));
    // A job (the instance's own, so built-in work is allowed), replaced, then run.
    let noop = json!({"type": "builtin", "name": "noop"});
    cases.extend(requests(
        Method::POST,
        "/v1/jobs",
        vec![
            ok(
                "a nightly job",
                json!({"name": "nightly", "schedule": "0 3 * * *", "timezone": "UTC",
                       "action": noop, "retries": 1, "overlap": "queue"}),
            ),
            bad(
                "a schedule that is a number",
                json!({"name": "other", "schedule": 3, "action": noop}),
            ),
            bad(
                "an unknown action",
                json!({"name": "other", "action": {"type": "email"}}),
            ),
        ],
    ));
    cases.extend(requests(
        Method::PUT,
        "/v1/jobs/{job}",
        vec![
            ok(
                "every field",
                json!({"name": "nightly", "description": "sweeps", "schedule": "0 3 * * *",
                       "timezone": "Europe/Paris", "action": noop, "retries": 2,
                       "backoff_ms": 500, "timeout_ms": 1000, "overlap": "skip",
                       "catch_up": "once", "enabled": true}),
            ),
            bad(
                "an unknown field",
                json!({"action": noop, "cron": "* * * * *"}),
            ),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/v1/jobs/{job}/run",
        vec![
            ok("an input", json!({"input": {"day": "monday"}})),
            bad("a wait that is text", json!({"wait_s": "long"})),
        ],
    ));
    // A prompt template, labelled, then rendered.
    cases.extend(requests(
        Method::POST,
        "/v1/prompts",
        vec![
            ok(
                "every field",
                json!({"name": "support",
                       "messages": [{"role": "system", "content": "You are {{ persona }}."},
                                    {"role": "user", "content": "{{ question }}"}],
                       "variables": {"persona": {"type": "string", "default": "kind", "description": "who",
                                                 "enum": ["kind", "terse"], "required": false},
                                     "question": {"type": "string", "max_length": 100}},
                       "model": "gemma3:270m", "parameters": {"temperature": 0.2, "max_tokens": 64},
                       "labels": ["staging"], "note": "first"}),
            ),
            bad(
                "messages that are text",
                json!({"name": "other", "messages": "You are kind."}),
            ),
        ],
    ));
    cases.extend(requests(
        Method::PUT,
        "/v1/prompts/{prompt}/labels/{label}",
        vec![
            ok("a version", json!({"version": 1})),
            bad("a version that is text", json!({"version": "one"})),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/v1/prompts/{prompt}/render",
        vec![
            ok(
                "a label and variables",
                json!({"label": "production", "variables": {"question": "Why?"}}),
            ),
            bad("variables that are a list", json!({"variables": ["Why?"]})),
        ],
    ));
    // An experiment: defined, its draft replaced, ramped, stopped; feedback on a request.
    let variants = json!([{"name": "a", "weight": 50}, {"name": "b", "weight": 50, "parameters": {"temperature": 0.2}}]);
    cases.extend(requests(
        Method::POST,
        "/v1/experiments",
        vec![
            ok(
                "a split of a model",
                json!({"name": "trial", "target": {"model": "gemma3:270m"}, "variants": variants}),
            ),
            bad(
                "one variant",
                json!({"name": "other", "target": {"model": "m"}, "variants": [{"name": "a", "weight": 1}]}),
            ),
        ],
    ));
    cases.extend(requests(
        Method::PUT,
        "/v1/experiments/{experiment}",
        vec![
            ok(
                "every field",
                json!({"description": "tone", "target": {"model": "gemma3:270m"}, "variants": variants,
                       "unit": "key", "holdout_percent": 5, "alpha": 0.05,
                       "metrics": [{"name": "thumbs_up", "kind": "boolean"}]}),
            ),
            bad(
                "an unknown field",
                json!({"target": {"model": "m"}, "variants": variants, "arms": 2}),
            ),
        ],
    ));
    cases.extend(requests(
        Method::PATCH,
        "/v1/experiments/{experiment}",
        vec![
            ok("a ramp", json!({"weights": {"b": 80}})),
            bad("a weight that is text", json!({"weights": {"b": "most"}})),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/v1/experiments/{experiment}/stop",
        vec![
            ok("a winner", json!({"winner": "b"})),
            bad("a winner that is a number", json!({"winner": 2})),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/v1/feedback",
        vec![
            ok(
                "a thumbs up",
                json!({"request_id": "req_0", "metric": "thumbs_up", "value": true}),
            ),
            bad("no metric", json!({"request_id": "req_0", "value": true})),
        ],
    ));
    // A flag, replaced, switched off, evaluated over OFREP.
    cases.extend(requests(
        Method::POST,
        "/v1/flags",
        vec![
            ok(
                "a boolean flag on for beta testers",
                json!({"key": "dark-mode", "rules": [{"name": "beta",
                       "when": [{"attribute": "beta", "op": "in", "values": [true]}], "variant": "on"}]}),
            ),
            bad(
                "enabled that is text",
                json!({"key": "other", "enabled": "yes"}),
            ),
        ],
    ));
    cases.extend(requests(
        Method::PUT,
        "/v1/flags/{key}",
        vec![
            ok(
                "every field",
                json!({"type": "string", "description": "checkout", "enabled": true,
                       "variants": {"classic": "classic", "express": "express"},
                       "default_variant": "classic",
                       "rules": [{"when": [{"attribute": "plan", "op": "in", "values": ["pro"]}], "variant": "express"}],
                       "split": [{"variant": "express", "weight": 10}, {"variant": "classic", "weight": 90}],
                       "bucket_by": "targetingKey", "metadata": {"owner": "payments"}}),
            ),
            bad("an unknown field", json!({"colour": "red"})),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/ofrep/v1/evaluate/flags/{key}",
        vec![
            ok(
                "a context",
                json!({"context": {"targetingKey": "user-1", "plan": "free"}}),
            ),
            bad("a context that is a number", json!({"context": 5})),
        ],
    ));
    cases.extend(requests(
        Method::POST,
        "/ofrep/v1/evaluate/flags",
        vec![
            ok("a context", json!({"context": {"targetingKey": "user-1"}})),
            bad("a context that is text", json!({"context": "user-1"})),
        ],
    ));
    cases.extend(requests(
        Method::PATCH,
        "/v1/flags/{key}",
        vec![
            ok("the kill switch", json!({"enabled": false})),
            bad("enabled that is text", json!({"enabled": "no"})),
        ],
    ));
    // Last: the key is rotated, and a rotated key cannot be rotated again.
    cases.push(Case {
        method: Method::POST,
        route: "/admin/v1/keys/{key}/rotate",
        what: "no body: the default grace period",
        body: None,
        verdict: Accepted,
    });
    cases
}

/// The route's path with its parameters filled in.
fn uri(route: &str, gated: &Gated) -> String {
    route
        .replace("{tenant}", "acme")
        .replace("{key}", &gated.keys.acme_member_prefix)
        .replace("{user}", "nobody")
        .replace("{model}", "gemma3:270m")
        .replace("{name}", "docs")
        .replace("{id}", "doc-1")
        .replace("{file_id}", "file-0")
        .replace("{vector_store_id}", "vs_0")
        .replace("{batch_id}", "vsfb_0")
        .replace("{delivery}", "whd_0")
        .replace("{pattern}", "emotion.*")
        .replace("{graph}", "people")
        .replace("{plugin}", "calculator")
        .replace("{tool}", "convert")
        .replace("{job}", "nightly")
        .replace("{secret}", "NOTES_API_KEY")
        .replace("{run}", "run_0")
        .replace("{prompt}", "support")
        .replace("{experiment}", "trial")
        .replace("{label}", "production")
        .replace("{version}", "1")
}

fn operation<'a>(document: &'a Value, method: &Method, route: &str) -> &'a Value {
    let operation = &document["paths"][route][method.as_str().to_ascii_lowercase()];
    assert!(operation.is_object(), "{method} {route} is not documented");
    operation
}

fn request_schema(operation: &Value) -> Option<&Value> {
    operation.pointer("/requestBody/content/application~1json/schema")
}

/// A validator for `schema`, a schema of `document` whose `$ref`s point into its components.
fn validator(document: &Value, schema: &Value) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": {"target": schema},
        "components": document["components"],
        "$ref": "#/$defs/target",
    });
    jsonschema::draft202012::new(&root)
        .unwrap_or_else(|error| panic!("the schema does not compile: {error}\n{schema:#}"))
}

/// `Err` with the reasons when the schema's verdict on `body` is not `expected`.
fn schema_agrees(
    document: &Value,
    schema: &Value,
    body: &Value,
    expected: Verdict,
) -> Result<(), String> {
    let validator = validator(document, schema);
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    match (expected, errors.is_empty()) {
        (Accepted, true) | (Refused, false) => Ok(()),
        (Accepted, false) => Err(format!("the schema refuses it: {errors:?}")),
        (Refused, true) => Err("the schema accepts it".to_string()),
    }
}

/// Follows `$ref`s into the components.
fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(
                document,
                document
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("{reference} does not resolve")),
            )
        }
        None => schema,
    }
}

/// Whether a schema names fields (directly or in its `allOf`/`anyOf`/`oneOf` parts), rather
/// than taking any JSON.
fn describes_fields(document: &Value, schema: &Value) -> bool {
    let schema = resolve(document, schema);
    if schema["properties"]
        .as_object()
        .is_some_and(|properties| !properties.is_empty())
    {
        return true;
    }
    ["allOf", "anyOf", "oneOf"].iter().any(|keyword| {
        schema[*keyword]
            .as_array()
            .is_some_and(|parts| parts.iter().any(|part| describes_fields(document, part)))
    })
}

fn authorized(method: &Method, uri: &str, key: &str, body: Option<&Value>) -> Request<Body> {
    let builder = Request::builder()
        .method(method.clone())
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {key}"));
    match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string())),
        None => builder.body(Body::empty()),
    }
    .expect("request")
}

/// Sends a request, and checks that its status is documented for the route and that a JSON
/// answer matches the documented schema for that status. Returns the status and the body.
async fn answer_as_documented(
    gated: &Gated,
    document: &Value,
    method: &Method,
    route: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut uri = uri(route, gated);
    if route.starts_with("/v1/webhooks/{id}") {
        // A webhook's id is made by the server: the one the cases created.
        let listed = send(
            &gated.router,
            authorized(
                &Method::GET,
                "/v1/webhooks",
                &gated.keys.instance_admin,
                None,
            ),
        )
        .await;
        let listed = crate::json_body(listed).await;
        let id = listed["data"][0]["id"]
            .as_str()
            .unwrap_or("wh_0")
            .to_string();
        uri = uri.replace("doc-1", &id);
    }
    let response = send(
        &gated.router,
        authorized(method, &uri, &gated.keys.instance_admin, body),
    )
    .await;
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let documented = &operation(document, method, route)["responses"][status.as_str()];
    assert!(
        documented.is_object(),
        "{method} {route} answered {status}, which it does not document: {}",
        String::from_utf8_lossy(&bytes)
    );
    if !content_type.starts_with("application/json") {
        return (status, Value::Null);
    }
    let answer: Value = serde_json::from_slice(&bytes).expect("a JSON answer");
    let schema = documented
        .pointer("/content/application~1json/schema")
        .unwrap_or_else(|| panic!("{method} {route} {status} documents no JSON body: {answer}"));
    if let Err(reasons) = schema_agrees(document, schema, &answer, Accepted) {
        panic!(
            "{method} {route} answered {status} outside its documented schema ({reasons}): {answer}"
        );
    }
    (status, answer)
}

async fn document(gated: &Gated) -> Value {
    let response = send(
        &gated.router,
        Request::get("/openapi.json")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    crate::json_body(response).await
}

/// Every documented operation, as (method, route template, operation).
fn operations(document: &Value) -> Vec<(Method, String, &Value)> {
    let mut all = Vec::new();
    for (route, item) in document["paths"].as_object().expect("paths") {
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            let operation = &item[method.as_str().to_ascii_lowercase()];
            if operation.is_object() {
                all.push((method, route.clone(), operation));
            }
        }
    }
    all
}

#[tokio::test]
async fn known_good_requests_pass_the_documented_schemas_and_the_server_and_bad_ones_fail_both() {
    let gated = gated(LimitDefaults::default()).await;
    let document = document(&gated).await;
    let cases = cases();

    // Every route that takes a body documents a schema with fields, and has requests of both
    // kinds here; the server's POST and PUT routes all take bodies, but for OpenAI's actions
    // (`BODYLESS_POSTS`).
    let mut with_body = BTreeSet::new();
    for (method, route, operation) in operations(&document) {
        if (method == Method::POST || method == Method::PUT)
            && !BODYLESS_POSTS.contains(&route.as_str())
        {
            assert!(
                operation["requestBody"].is_object(),
                "{method} {route} documents no request body"
            );
        }
        if operation["requestBody"].is_null() {
            continue;
        }
        // A file upload is a multipart form: its parts are documented, and its requests are
        // the Files API tests' (tests/it/files.rs), not JSON bodies.
        if let Some(form) = operation.pointer("/requestBody/content/multipart~1form-data/schema") {
            assert!(
                describes_fields(&document, form),
                "{method} {route} documents its form as anything: {form}"
            );
            continue;
        }
        // An event's data is any JSON by design; its requests are the events tests'
        // (tests/it/events.rs).
        if ANY_JSON_BODIES.contains(&route.as_str()) {
            continue;
        }
        let schema = request_schema(operation)
            .unwrap_or_else(|| panic!("{method} {route} documents no JSON request body"));
        assert!(
            describes_fields(&document, schema),
            "{method} {route} documents its body as any JSON: {schema}"
        );
        with_body.insert(format!("{method} {route}"));
    }
    for verdict in [Accepted, Refused] {
        let covered: BTreeSet<String> = cases
            .iter()
            .filter(|case| case.verdict == verdict)
            .map(|case| format!("{} {}", case.method, case.route))
            .collect();
        assert_eq!(
            covered, with_body,
            "routes with a body and routes with {verdict:?} requests here differ"
        );
    }

    let mut disagreements = Vec::new();
    for case in &cases {
        let (method, route) = (&case.method, case.route);
        let operation = operation(&document, method, route);
        match &case.body {
            Some(body) => {
                let schema = request_schema(operation).expect("a request schema");
                if let Err(reason) = schema_agrees(&document, schema, body, case.verdict) {
                    disagreements.push(format!("{method} {route}, {}: {reason}", case.what));
                }
            }
            None => assert_ne!(
                operation["requestBody"]["required"],
                json!(true),
                "{method} {route} requires the body it is sent without"
            ),
        }
        let (status, answer) =
            answer_as_documented(&gated, &document, method, route, case.body.as_ref()).await;
        let server_verdict = if status == StatusCode::BAD_REQUEST {
            Refused
        } else if status == StatusCode::NOT_FOUND && NAMES_WHAT_IS_NOT_HERE.contains(&route) {
            Accepted
        } else {
            // Past every check: the admin API does the work; the rest needs the models.
            assert!(
                status.is_success()
                    || (status == StatusCode::SERVICE_UNAVAILABLE
                        && answer["error"]["code"] == "service_unavailable"),
                "{method} {route}, {}: {status} {answer}",
                case.what
            );
            Accepted
        };
        if server_verdict != case.verdict {
            disagreements.push(format!(
                "{method} {route}, {}: the server answers {status} {answer}",
                case.what
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "the document, the server and the cases disagree:\n{}",
        disagreements.join("\n")
    );
}

#[tokio::test]
async fn a_schema_that_takes_any_messages_is_caught() {
    // The check above has teeth: with `messages` documented as any JSON, the request whose
    // messages is a string passes the schema, though the server refuses it.
    let gated = gated(LimitDefaults::default()).await;
    let mut document = document(&gated).await;
    let refused = cases()
        .into_iter()
        .find(|case| case.what == "messages is not a list")
        .and_then(|case| case.body)
        .expect("the case");
    let schema = request_schema(operation(&document, &Method::POST, "/v1/chat/completions"))
        .expect("schema")
        .clone();
    assert_eq!(schema_agrees(&document, &schema, &refused, Refused), Ok(()));

    fn loosen_messages(schema: &mut Value) {
        if let Some(messages) = schema.pointer_mut("/properties/messages") {
            *messages = json!({});
        }
        for keyword in ["allOf", "anyOf", "oneOf"] {
            if let Some(parts) = schema.get_mut(keyword).and_then(Value::as_array_mut) {
                parts.iter_mut().for_each(loosen_messages);
            }
        }
    }
    loosen_messages(
        document
            .pointer_mut("/components/schemas/ChatCompletionRequest")
            .expect("the component"),
    );
    assert_eq!(
        schema_agrees(&document, &schema, &refused, Refused),
        Err("the schema accepts it".to_string())
    );
}

#[tokio::test]
async fn documented_statuses_are_ones_the_code_returns() {
    let gated = gated(LimitDefaults::default()).await;
    let document = document(&gated).await;
    for (method, route, operation) in operations(&document) {
        let responses = operation["responses"].as_object().expect("responses");
        let statuses: BTreeSet<&str> = responses.keys().map(String::as_str).collect();
        let unknown: Vec<&&str> = statuses
            .iter()
            .filter(|status| !KNOWN_STATUSES.contains(status))
            .collect();
        assert!(
            unknown.is_empty(),
            "{method} {route} documents {unknown:?}, which nothing in the server answers"
        );
        assert!(
            // 101: the WebSocket's upgrade is its success.
            statuses
                .iter()
                .any(|status| status.starts_with('2') || *status == "101"),
            "{method} {route} documents no success"
        );

        // The gate's statuses and security follow the gate's own table.
        let public =
            hearth_server::gate::access(&method, &route).expect("declared") == Access::Public;
        for status in GATE_STATUSES {
            assert_eq!(
                statuses.contains(status),
                !public,
                "{method} {route}: {status} documented for a route the gate {}",
                if public { "lets through" } else { "guards" }
            );
        }
        assert_eq!(
            operation["security"].is_array(),
            !public,
            "{method} {route}: security"
        );
        if operation["requestBody"].is_object() {
            for status in ["400", "413"] {
                assert!(
                    statuses.contains(status),
                    "{method} {route} takes a body but does not document {status}"
                );
            }
        }

        // Errors are OpenAI-style bodies; readiness answers 503 with its report, and OFREP
        // its own failures (`errorCode`), which its providers read.
        for (status, response) in responses {
            if !status.starts_with(['4', '5'])
                || (route == "/readyz" && status == "503")
                || (route.starts_with("/ofrep/") && matches!(status.as_str(), "400" | "404"))
            {
                continue;
            }
            assert_eq!(
                response.pointer("/content/application~1json/schema/$ref"),
                Some(&json!("#/components/schemas/ErrorBody")),
                "{method} {route} {status}: not an ErrorBody"
            );
        }
    }
}

#[tokio::test]
async fn the_get_routes_answer_as_documented() {
    let gated = gated(LimitDefaults::default()).await;
    let document = document(&gated).await;
    let mut checked = 0;
    for (method, route, _) in operations(&document) {
        if method != Method::GET {
            continue;
        }
        answer_as_documented(&gated, &document, &method, &route, None).await;
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} GET routes");
}

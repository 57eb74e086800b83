//! `/openapi.json` and a docs page rendered from it. The page is plain server-rendered HTML
//! with no scripts or external assets, so it works offline, as Hearth does.

use std::fmt::Write;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::Value;

use crate::state::AppState;

pub(crate) fn docs_router(api: utoipa::openapi::OpenApi) -> Router<AppState> {
    let json = Arc::new(api.to_pretty_json().unwrap_or_else(|_| "{}".to_string()));
    let page = Arc::new(render_docs(
        &serde_json::to_value(&api).unwrap_or(Value::Null),
    ));
    Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let json = json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], json.to_string()) }
            }),
        )
        .route(
            "/docs",
            get(move || {
                let page = page.clone();
                async move {
                    (
                        [(
                            header::CONTENT_SECURITY_POLICY,
                            HeaderValue::from_static(
                                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
                            ),
                        )],
                        Html(page.to_string()),
                    )
                        .into_response()
                }
            }),
        )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

fn render_docs(api: &Value) -> String {
    let title = api["info"]["title"].as_str().unwrap_or("API");
    let version = api["info"]["version"].as_str().unwrap_or("");
    let description = api["info"]["description"].as_str().unwrap_or("");
    let mut body = String::new();
    if let Some(paths) = api["paths"].as_object() {
        for (path, item) in paths {
            for method in METHODS {
                let Some(operation) = item.get(*method) else {
                    continue;
                };
                let summary = operation["summary"]
                    .as_str()
                    .or_else(|| operation["description"].as_str())
                    .unwrap_or("");
                let _ = write!(
                    body,
                    "<section><h2><span class=\"method {method}\">{}</span> <code>{}</code></h2><p>{}</p><ul>",
                    method.to_uppercase(),
                    escape(path),
                    escape(summary)
                );
                if let Some(responses) = operation["responses"].as_object() {
                    for (status, response) in responses {
                        let _ = write!(
                            body,
                            "<li><strong>{}</strong> {}</li>",
                            escape(status),
                            escape(response["description"].as_str().unwrap_or(""))
                        );
                    }
                }
                body.push_str("</ul></section>");
            }
        }
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} API</title><style>{STYLE}</style></head><body><main>\
         <h1>{title} <small>{version}</small></h1><p>{description}</p>\
         <p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI 3.1).</p>\
         {body}</main></body></html>",
        title = escape(title),
        version = escape(version),
        description = escape(description),
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#fff;color:#1b1b1b}\
main{max-width:52rem;margin:0 auto;padding:1.5rem}h1 small{font-size:.6em;color:#555}\
section{border-top:1px solid #ddd;padding:.5rem 0}h2{font-size:1.05rem}\
.method{display:inline-block;min-width:4.5em;padding:.1em .4em;border-radius:.3em;color:#fff;background:#2f5f8a;font-size:.85em;text-align:center}\
.post{background:#2e7040}.delete{background:#9b2c2c}.put,.patch{background:#7a5a00}\
a{color:#1f5aa6}@media (prefers-color-scheme:dark){body{background:#141414;color:#eee}h1 small{color:#aaa}section{border-color:#333}a{color:#8ab4f8}}";

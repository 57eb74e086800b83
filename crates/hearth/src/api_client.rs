//! The HTTP client the CLI's server commands share (`hearth collections`, `hearth events`):
//! the server's address from `--url` or the config's `server.listen`, the caller's key from
//! `--api-key` or `HEARTH_API_KEY`, and OpenAI-style errors turned into messages.

use anyhow::{Context, bail};
use hearth_config::Sources;
use serde_json::Value;

use crate::cli::ServerArgs;

/// The server the commands talk to, with the caller's key.
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Api {
    pub(crate) fn new(sources: &Sources, server: &ServerArgs) -> anyhow::Result<Api> {
        let base = match &server.url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                let loaded = crate::config::load_quietly(sources)?;
                let mut address = loaded.config.server.listen;
                if address.ip().is_unspecified() {
                    address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                format!("http://{address}")
            }
        };
        let key = server
            .api_key
            .clone()
            .or_else(|| std::env::var("HEARTH_API_KEY").ok())
            .filter(|key| !key.is_empty());
        Ok(Api {
            http: reqwest::Client::new(),
            base,
            key,
        })
    }

    /// Every item of a cursor-paged list at `path` (a path with a query string), a page at a
    /// time, handed to `each`.
    pub(crate) async fn each_item(
        &self,
        path: &str,
        mut each: impl FnMut(Value) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut after: Option<String> = None;
        loop {
            let cursor = after
                .as_deref()
                .map(|after| format!("&after={}", percent_encode(after)))
                .unwrap_or_default();
            let page = self
                .call(reqwest::Method::GET, &format!("{path}{cursor}"), None)
                .await?;
            for item in page["data"].as_array().cloned().unwrap_or_default() {
                each(item)?;
            }
            match page["next_cursor"].as_str() {
                Some(next) => after = Some(next.to_string()),
                None => return Ok(()),
            }
        }
    }

    /// A request to `path` on the server, with the key.
    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// What to tell a user who cannot reach the server.
    fn unreachable(&self) -> String {
        format!(
            "cannot reach the server at {}; start it with `hearth serve`, or pass --url",
            self.base
        )
    }

    /// Sends a request and returns the JSON answer, or the server's error message.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = self.send(request).await?;
        let text = response.text().await.context("cannot read the answer")?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Sends a built request; an answer that is not a success becomes the server's error
    /// message (with the field at fault), so the caller reads only successes.
    pub(crate) async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        let response = request.send().await.with_context(|| self.unreachable())?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.context("cannot read the answer")?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        let message = value["error"]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| value.to_string());
        let param = value["error"]["param"].as_str().unwrap_or("");
        bail!(
            "{status}: {message}{}",
            if param.is_empty() {
                String::new()
            } else {
                format!(" ({param})")
            }
        );
    }
}

/// `text` safe in a URL path segment or query value.
pub(crate) fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The one-thread runtime a CLI verb that talks to a server runs on.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

//! Response caches, per tenant.
//!
//! - Exact: the key is a hash of the tenant, the endpoint and the request body in canonical
//!   form (object keys sorted, fields that do not change the answer such as `user` left out).
//!   Only deterministic requests are cached by default (temperature 0, or a seed), since
//!   caching a sampled answer would hand every caller the same "random" reply.
//! - Semantic: the same, but keyed by the request *without* its last user message, plus that
//!   message's embedding; a new request whose last message is similar enough (cosine at or
//!   above the threshold) to a cached one in the same context gets its answer.
//!
//! Both are bounded in bytes, evict the least recently used entry first, and expire entries
//! after their time to live. Knows nothing of HTTP: a cached answer is a content type and
//! the bytes of a body.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// What may be cached, and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CacheSettings {
    pub ttl: Duration,
    /// Bytes all cached bodies may take together.
    pub max_bytes: usize,
    /// Cache sampled (non-deterministic) requests too.
    pub sampled: bool,
    /// The cosine similarity at or above which a semantic entry matches; `None`: no semantic
    /// cache.
    pub semantic_threshold: Option<f32>,
}

/// A cached answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedAnswer {
    pub content_type: String,
    pub body: Vec<u8>,
}

#[derive(Debug)]
struct Entry {
    answer: std::sync::Arc<CachedAnswer>,
    stored_at: Instant,
    tick: u64,
    /// Only for semantic entries.
    embedding: Vec<f32>,
    context: String,
}

#[derive(Debug, Default)]
struct Store {
    entries: HashMap<String, Entry>,
    /// Use order: tick → key, oldest first.
    order: BTreeMap<u64, String>,
    /// Semantic entries' keys by context.
    by_context: HashMap<String, Vec<String>>,
    bytes: usize,
    tick: u64,
}

impl Store {
    fn touch(&mut self, key: &str) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(entry) = self.entries.get_mut(key) {
            self.order.remove(&entry.tick);
            entry.tick = tick;
            self.order.insert(tick, key.to_string());
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(entry) = self.entries.remove(key) {
            self.order.remove(&entry.tick);
            self.bytes = self.bytes.saturating_sub(entry.answer.body.len());
            if let Some(keys) = self.by_context.get_mut(&entry.context) {
                keys.retain(|other| other != key);
                if keys.is_empty() {
                    self.by_context.remove(&entry.context);
                }
            }
        }
    }

    fn insert(&mut self, key: String, entry: Entry, max_bytes: usize) {
        self.remove(&key);
        let size = entry.answer.body.len();
        while self.bytes + size > max_bytes {
            let Some(oldest) = self.order.values().next().cloned() else {
                break;
            };
            self.remove(&oldest);
        }
        self.tick += 1;
        let entry = Entry {
            tick: self.tick,
            ..entry
        };
        self.order.insert(self.tick, key.clone());
        if !entry.context.is_empty() {
            self.by_context
                .entry(entry.context.clone())
                .or_default()
                .push(key.clone());
        }
        self.bytes += size;
        self.entries.insert(key, entry);
    }
}

/// The caches of one server. Share it as `Arc<ResponseCache>`.
#[derive(Debug)]
pub struct ResponseCache {
    settings: Mutex<CacheSettings>,
    store: Mutex<Store>,
}

/// Most of the byte budget one answer may take, so one huge answer cannot flush the cache.
const MAX_SHARE: usize = 8;

impl ResponseCache {
    pub fn new(settings: CacheSettings) -> ResponseCache {
        ResponseCache {
            settings: Mutex::new(settings),
            store: Mutex::default(),
        }
    }

    pub fn settings(&self) -> CacheSettings {
        *self
            .settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn set_settings(&self, settings: CacheSettings) {
        *self
            .settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = settings;
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether an answer of this size may be stored.
    pub fn fits(&self, bytes: usize) -> bool {
        bytes <= self.settings().max_bytes / MAX_SHARE
    }

    /// The exact key of a request, or `None` when it must not be cached (sampled).
    pub fn exact_key(
        &self,
        tenant: Option<&str>,
        endpoint: &str,
        body: &serde_json::Value,
    ) -> Option<String> {
        if !self.settings().sampled && !is_deterministic(endpoint, body) {
            return None;
        }
        Some(digest(tenant, endpoint, &canonical(body, &[])))
    }

    pub fn get(&self, key: &str, now: Instant) -> Option<std::sync::Arc<CachedAnswer>> {
        let ttl = self.settings().ttl;
        let mut store = self.store();
        let expired = store
            .entries
            .get(key)
            .map(|entry| now.saturating_duration_since(entry.stored_at) >= ttl)?;
        if expired {
            store.remove(key);
            return None;
        }
        store.touch(key);
        store.entries.get(key).map(|entry| entry.answer.clone())
    }

    pub fn put(&self, key: String, answer: CachedAnswer, now: Instant) {
        if !self.fits(answer.body.len()) {
            return;
        }
        let max_bytes = self.settings().max_bytes;
        self.store().insert(
            key,
            Entry {
                answer: std::sync::Arc::new(answer),
                stored_at: now,
                tick: 0,
                embedding: Vec::new(),
                context: String::new(),
            },
            max_bytes,
        );
    }

    /// The semantic context of a chat request (everything but its last user message) and that
    /// message's text; `None` when the request has no user message or must not be cached.
    pub fn semantic_context(
        &self,
        tenant: Option<&str>,
        endpoint: &str,
        body: &serde_json::Value,
    ) -> Option<(String, String)> {
        let settings = self.settings();
        settings.semantic_threshold?;
        if !settings.sampled && !is_deterministic(endpoint, body) {
            return None;
        }
        let messages = body.get("messages")?.as_array()?;
        let last_user = messages.iter().rposition(|message| {
            message.get("role").and_then(|role| role.as_str()) == Some("user")
        })?;
        let text = match messages[last_user].get("content")? {
            serde_json::Value::String(text) => text.clone(),
            _ => return None,
        };
        let mut context = body.clone();
        if let Some(content) = context
            .get_mut("messages")
            .and_then(|messages| messages.get_mut(last_user))
            .and_then(|message| message.get_mut("content"))
        {
            *content = serde_json::Value::Null;
        }
        Some((digest(tenant, endpoint, &canonical(&context, &[])), text))
    }

    /// The most similar cached answer in `context`, when it reaches the threshold.
    pub fn semantic_get(
        &self,
        context: &str,
        embedding: &[f32],
        now: Instant,
    ) -> Option<(std::sync::Arc<CachedAnswer>, f32)> {
        let settings = self.settings();
        let threshold = settings.semantic_threshold?;
        let mut store = self.store();
        let keys = store.by_context.get(context)?.clone();
        let mut best: Option<(String, f32)> = None;
        for key in keys {
            let Some(entry) = store.entries.get(&key) else {
                continue;
            };
            if now.saturating_duration_since(entry.stored_at) >= settings.ttl {
                store.remove(&key);
                continue;
            }
            let similarity = cosine(&entry.embedding, embedding);
            if similarity >= threshold && best.as_ref().is_none_or(|(_, top)| similarity > *top) {
                best = Some((key, similarity));
            }
        }
        let (key, similarity) = best?;
        store.touch(&key);
        store
            .entries
            .get(&key)
            .map(|entry| (entry.answer.clone(), similarity))
    }

    pub fn semantic_put(
        &self,
        context: String,
        embedding: Vec<f32>,
        answer: CachedAnswer,
        now: Instant,
    ) {
        if !self.fits(answer.body.len()) || self.settings().semantic_threshold.is_none() {
            return;
        }
        let max_bytes = self.settings().max_bytes;
        let key = format!("semantic:{context}:{}", uuid::Uuid::new_v4().simple());
        self.store().insert(
            key,
            Entry {
                answer: std::sync::Arc::new(answer),
                stored_at: now,
                tick: 0,
                embedding,
                context,
            },
            max_bytes,
        );
    }

    /// Entries and bytes held, for metrics and tests.
    pub fn size(&self) -> (usize, usize) {
        let store = self.store();
        (store.entries.len(), store.bytes)
    }
}

/// Fields that do not change the answer, left out of keys.
const IGNORED_FIELDS: &[&str] = &["user", "metadata", "store", "keep_alive"];

fn is_deterministic(endpoint: &str, body: &serde_json::Value) -> bool {
    if endpoint.ends_with("/embeddings") || endpoint.ends_with("/embed") {
        return true;
    }
    let temperature = body
        .get("temperature")
        .or_else(|| body.pointer("/options/temperature"))
        .and_then(|value| value.as_f64());
    let seeded = body
        .get("seed")
        .or_else(|| body.pointer("/options/seed"))
        .is_some_and(|seed| !seed.is_null());
    let single = body.get("n").and_then(|n| n.as_u64()).unwrap_or(1) == 1;
    (temperature == Some(0.0) || seeded) && single
}

/// JSON text with every object's keys sorted and the ignored fields left out at the top.
fn canonical(value: &serde_json::Value, path: &[&str]) -> String {
    let mut text = String::new();
    write_canonical(value, path.is_empty(), &mut text);
    text
}

fn write_canonical(value: &serde_json::Value, top: bool, text: &mut String) {
    match value {
        serde_json::Value::Object(object) => {
            let mut keys: Vec<&String> = object
                .keys()
                .filter(|key| !(top && IGNORED_FIELDS.contains(&key.as_str())))
                .collect();
            keys.sort();
            text.push('{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    text.push(',');
                }
                text.push_str(&serde_json::Value::String(key.clone()).to_string());
                text.push(':');
                write_canonical(&object[key], false, text);
            }
            text.push('}');
        }
        serde_json::Value::Array(items) => {
            text.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    text.push(',');
                }
                write_canonical(item, false, text);
            }
            text.push(']');
        }
        scalar => text.push_str(&scalar.to_string()),
    }
}

fn digest(tenant: Option<&str>, endpoint: &str, canonical: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(tenant.unwrap_or("").as_bytes());
    hasher.update([0]);
    hasher.update(endpoint.as_bytes());
    hasher.update([0]);
    hasher.update(canonical.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn cosine(left: &[f32], right: &[f32]) -> f32 {
    if left.len() != right.len() || left.is_empty() {
        return 0.0;
    }
    let dot: f32 = left.iter().zip(right).map(|(a, b)| a * b).sum();
    let norm = |vector: &[f32]| vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    let denominator = norm(left) * norm(right);
    if denominator == 0.0 {
        0.0
    } else {
        dot / denominator
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> CacheSettings {
        CacheSettings {
            ttl: Duration::from_secs(60),
            max_bytes: 800,
            sampled: false,
            semantic_threshold: Some(0.9),
        }
    }

    fn answer(text: &str) -> CachedAnswer {
        CachedAnswer {
            content_type: "application/json".to_string(),
            body: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn keys_ignore_key_order_and_the_user_field_but_not_the_tenant_or_the_content() {
        let cache = ResponseCache::new(settings());
        let one = json!({"model": "m", "temperature": 0, "messages": [{"role": "user", "content": "hi"}], "user": "a"});
        let same = json!({"messages": [{"content": "hi", "role": "user"}], "user": "b", "temperature": 0, "model": "m"});
        let other = json!({"model": "m", "temperature": 0, "messages": [{"role": "user", "content": "ho"}]});
        let key = cache.exact_key(Some("t1"), "/v1/chat/completions", &one);
        assert!(key.is_some());
        assert_eq!(
            key,
            cache.exact_key(Some("t1"), "/v1/chat/completions", &same)
        );
        assert_ne!(
            key,
            cache.exact_key(Some("t2"), "/v1/chat/completions", &one)
        );
        assert_ne!(
            key,
            cache.exact_key(Some("t1"), "/v1/chat/completions", &other)
        );
    }

    #[test]
    fn sampled_requests_are_not_cached_unless_asked() {
        let cache = ResponseCache::new(settings());
        let sampled = json!({"model": "m", "temperature": 0.7, "messages": []});
        let seeded = json!({"model": "m", "temperature": 0.7, "seed": 3, "messages": []});
        let several = json!({"model": "m", "temperature": 0, "n": 2, "messages": []});
        assert_eq!(
            cache.exact_key(None, "/v1/chat/completions", &sampled),
            None
        );
        assert!(
            cache
                .exact_key(None, "/v1/chat/completions", &seeded)
                .is_some()
        );
        assert_eq!(
            cache.exact_key(None, "/v1/chat/completions", &several),
            None
        );
        assert!(
            cache
                .exact_key(None, "/v1/embeddings", &json!({"input": "x"}))
                .is_some()
        );
        cache.set_settings(CacheSettings {
            sampled: true,
            ..settings()
        });
        assert!(
            cache
                .exact_key(None, "/v1/chat/completions", &sampled)
                .is_some()
        );
    }

    #[test]
    fn entries_expire_and_the_least_recently_used_go_first_when_full() {
        let cache = ResponseCache::new(settings());
        let start = Instant::now();
        cache.put("a".to_string(), answer(&"a".repeat(100)), start);
        cache.put("b".to_string(), answer(&"b".repeat(100)), start);
        assert!(cache.get("a", start).is_some(), "a is now the most recent");
        for index in 0..6 {
            cache.put(format!("filler{index}"), answer(&"f".repeat(100)), start);
        }
        // 800 bytes hold 8 entries of 100: one more evicts the oldest, which is b.
        cache.put("c".to_string(), answer(&"c".repeat(100)), start);
        assert!(cache.get("b", start).is_none());
        assert!(cache.get("a", start).is_some());
        assert_eq!(cache.size(), (8, 800));
        assert!(
            cache.get("a", start + Duration::from_secs(61)).is_none(),
            "expired"
        );
        // Too big for one entry's share of the budget: not stored.
        cache.put("huge".to_string(), answer(&"h".repeat(101)), start);
        assert!(cache.get("huge", start).is_none());
    }

    #[test]
    fn a_similar_question_in_the_same_context_hits_the_semantic_cache() {
        let cache = ResponseCache::new(settings());
        let now = Instant::now();
        let ask = |text: &str, system: &str| {
            json!({"model": "m", "temperature": 0, "messages": [
                {"role": "system", "content": system}, {"role": "user", "content": text}]})
        };
        let (context, text) = cache
            .semantic_context(
                Some("t"),
                "/v1/chat/completions",
                &ask("What is Rust?", "S"),
            )
            .expect("a context");
        assert_eq!(text, "What is Rust?");
        cache.semantic_put(
            context.clone(),
            vec![1.0, 0.0, 0.1],
            answer("Rust is..."),
            now,
        );
        let (same_context, _) = cache
            .semantic_context(Some("t"), "/v1/chat/completions", &ask("what's rust", "S"))
            .expect("a context");
        assert_eq!(same_context, context);
        let (hit, similarity) = cache
            .semantic_get(&context, &[0.98, 0.05, 0.1], now)
            .expect("similar enough");
        assert_eq!(hit.body, b"Rust is...");
        assert!(similarity > 0.9);
        assert!(
            cache
                .semantic_get(&context, &[0.0, 1.0, 0.0], now)
                .is_none()
        );
        let (other_system, _) = cache
            .semantic_context(
                Some("t"),
                "/v1/chat/completions",
                &ask("What is Rust?", "T"),
            )
            .expect("a context");
        assert_ne!(other_system, context);
        let (other_tenant, _) = cache
            .semantic_context(
                Some("u"),
                "/v1/chat/completions",
                &ask("What is Rust?", "S"),
            )
            .expect("a context");
        assert_ne!(other_tenant, context);
    }
}

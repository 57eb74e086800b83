//! The one list of configuration keys. Environment variable names, validation, defaults,
//! masking of secrets and the reload policy are all derived from it, so adding a key here is
//! the whole job of making it configurable.

use toml::Value;

use crate::model::Profile;

/// The shape a key's value must have before semantic validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    String,
    Bool,
    Integer {
        min: i64,
        max: i64,
    },
    Float {
        min: f64,
        max: f64,
    },
    StringList,
    OneOf(&'static [&'static str]),
    /// An array of tables (`[[upstreams]]` in TOML), each with these fields.
    Tables(&'static [Field]),
}

/// One field of a table in a [`Kind::Tables`] array.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Field {
    pub name: &'static str,
    pub kind: FieldKind,
    pub required: bool,
}

/// The shapes a table field may have.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldKind {
    String,
    Integer {
        min: i64,
        max: i64,
    },
    StringList,
    IntegerList {
        min: i64,
        max: i64,
    },
    Float {
        min: f64,
        max: f64,
    },
    OneOf(&'static [&'static str]),
    Bool,
    /// Any value (a table, a list): the service it configures checks it.
    Any,
}

impl FieldKind {
    pub fn expected(&self) -> String {
        match self {
            FieldKind::String => "a string".to_string(),
            FieldKind::Integer { min, max } => format!("an integer from {min} to {max}"),
            FieldKind::StringList => "a list of strings".to_string(),
            FieldKind::IntegerList { min, max } => {
                format!("a list of integers from {min} to {max}")
            }
            FieldKind::Float { min, max } => format!("a number from {min} to {max}"),
            FieldKind::OneOf(options) => format!("one of {}", options.join(", ")),
            FieldKind::Bool => "true or false".to_string(),
            FieldKind::Any => "any value".to_string(),
        }
    }
}

impl Kind {
    /// What a reader should write, for error messages.
    pub fn expected(&self) -> String {
        match self {
            Kind::String => "a string".to_string(),
            Kind::Bool => "true or false".to_string(),
            Kind::Integer { min, max } => format!("an integer from {min} to {max}"),
            Kind::Float { min, max } => format!("a number from {min} to {max}"),
            Kind::StringList => "a list of strings (comma-separated in env vars)".to_string(),
            Kind::OneOf(options) => format!("one of {}", options.join(", ")),
            Kind::Tables(fields) => format!(
                "a list of tables with the fields {} (TOML [[...]] sections; in an env var, an \
                 inline TOML array such as [{{ name = \"x\" }}])",
                fields
                    .iter()
                    .map(|field| field.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// One configuration key.
#[derive(Debug)]
pub struct KeySpec {
    /// Dotted path in the TOML file, e.g. `server.listen`.
    pub key: &'static str,
    pub kind: Kind,
    /// Default for a profile; `None` leaves the key unset.
    pub default: fn(Profile) -> Option<Value>,
    /// Secrets are masked wherever the effective config is shown.
    pub secret: bool,
    /// Whether a running server applies a change to this key without a restart.
    pub reloadable: bool,
    pub help: &'static str,
}

const GIB: i64 = 1024 * 1024 * 1024;
const HOUR_MS: i64 = 60 * 60 * 1000;

fn unset(_: Profile) -> Option<Value> {
    None
}

/// Every key Hearth understands, in the order `hearth config check` prints them.
pub static SCHEMA: &[KeySpec] = &[
    KeySpec {
        key: "profile",
        kind: Kind::OneOf(&["dev", "prod"]),
        default: |profile| Some(Value::String(profile.as_str().to_string())),
        secret: false,
        reloadable: false,
        help: "which set of defaults to start from",
    },
    KeySpec {
        key: "data_dir",
        kind: Kind::String,
        // Filled in by the loader from XDG_DATA_HOME / HOME, which it is given as env vars.
        default: unset,
        secret: false,
        reloadable: false,
        help: "directory holding the database, models and backups",
    },
    KeySpec {
        key: "server.listen",
        kind: Kind::String,
        default: |_| Some(Value::String(format!("127.0.0.1:{}", crate::DEFAULT_PORT))),
        secret: false,
        reloadable: false,
        help: "address and port to listen on, e.g. 127.0.0.1:4327",
    },
    KeySpec {
        key: "server.max_body_bytes",
        kind: Kind::Integer {
            min: 1024,
            max: GIB,
        },
        default: |_| Some(Value::Integer(8 * 1024 * 1024)),
        secret: false,
        reloadable: true,
        help: "largest request body accepted; larger ones get 413",
    },
    KeySpec {
        key: "server.request_timeout_ms",
        kind: Kind::Integer {
            min: 1,
            max: 24 * HOUR_MS,
        },
        default: |_| Some(Value::Integer(10 * 60 * 1000)),
        secret: false,
        reloadable: true,
        help: "time allowed until a response starts; streams may run longer",
    },
    KeySpec {
        key: "server.shutdown_timeout_ms",
        kind: Kind::Integer {
            min: 0,
            max: HOUR_MS,
        },
        default: |_| Some(Value::Integer(30 * 1000)),
        secret: false,
        reloadable: false,
        help: "how long a shutdown waits for in-flight requests to finish",
    },
    KeySpec {
        key: "server.cors_allowed_origins",
        kind: Kind::StringList,
        default: |_| Some(Value::Array(Vec::new())),
        secret: false,
        reloadable: false,
        help: "origins allowed to call the API from a browser; \"*\" allows any",
    },
    KeySpec {
        key: "server.compression",
        kind: Kind::Bool,
        default: |_| Some(Value::Boolean(true)),
        secret: false,
        reloadable: false,
        help: "gzip/brotli compression of responses when the client accepts it",
    },
    KeySpec {
        key: "server.admin_listen",
        kind: Kind::String,
        default: unset,
        secret: false,
        reloadable: false,
        help: "serve the admin API (/admin/v1) on this address only, e.g. 127.0.0.1:4328; unset: on server.listen",
    },
    KeySpec {
        key: "log.level",
        kind: Kind::String,
        default: |profile| {
            Some(Value::String(
                match profile {
                    Profile::Dev => "info",
                    Profile::Prod => "info",
                }
                .to_string(),
            ))
        },
        secret: false,
        reloadable: true,
        help: "log filter: a level (error, warn, info, debug, trace) or target=level list",
    },
    KeySpec {
        key: "log.format",
        kind: Kind::OneOf(&["auto", "pretty", "json"]),
        default: |profile| {
            Some(Value::String(
                match profile {
                    Profile::Dev => "auto",
                    Profile::Prod => "json",
                }
                .to_string(),
            ))
        },
        secret: false,
        reloadable: false,
        help: "auto is pretty on a terminal and JSON otherwise",
    },
    KeySpec {
        key: "telemetry.otlp_endpoint",
        kind: Kind::String,
        default: unset,
        secret: false,
        reloadable: false,
        help: "OTLP/HTTP collector base URL (e.g. http://127.0.0.1:4318); unset turns tracing export off",
    },
    KeySpec {
        key: "telemetry.otlp_headers",
        kind: Kind::String,
        default: unset,
        secret: true,
        reloadable: false,
        help: "extra headers for the collector as name=value pairs separated by commas",
    },
    KeySpec {
        key: "telemetry.service_name",
        kind: Kind::String,
        default: |_| Some(Value::String("hearth".to_string())),
        secret: false,
        reloadable: false,
        help: "service.name reported with every span",
    },
    KeySpec {
        key: "telemetry.sample_ratio",
        kind: Kind::Float { min: 0.0, max: 1.0 },
        default: |_| Some(Value::Float(1.0)),
        secret: false,
        reloadable: false,
        help: "fraction of traces exported",
    },
    KeySpec {
        key: "storage.integrity_check",
        kind: Kind::OneOf(&["quick", "full", "off"]),
        default: |profile| {
            Some(Value::String(
                match profile {
                    Profile::Dev => "quick",
                    Profile::Prod => "quick",
                }
                .to_string(),
            ))
        },
        secret: false,
        reloadable: false,
        help: "database check at start-up: quick (fast structural check), full, or off",
    },
    KeySpec {
        key: "models.memory_budget_bytes",
        kind: Kind::Integer {
            min: 1024 * 1024,
            max: 1024 * GIB,
        },
        default: |_| Some(Value::Integer(8 * GIB)),
        secret: false,
        reloadable: false,
        help: "memory the loaded models may take together; the least recently used is unloaded to make room",
    },
    KeySpec {
        key: "models.keep_alive_seconds",
        kind: Kind::Integer {
            min: -1,
            max: 365 * 24 * 3600,
        },
        default: |_| Some(Value::Integer(300)),
        secret: false,
        reloadable: false,
        help: "how long an idle model stays loaded; 0 unloads after each request, -1 never",
    },
    KeySpec {
        key: "models.preload",
        kind: Kind::StringList,
        default: |_| Some(Value::Array(Vec::new())),
        secret: false,
        reloadable: false,
        help: "models loaded at start-up; /readyz waits for them",
    },
    KeySpec {
        key: "models.parallel_sequences",
        kind: Kind::Integer { min: 1, max: 256 },
        default: |_| Some(Value::Integer(4)),
        secret: false,
        reloadable: false,
        help: "sequences of one chat model decoded together in each batch (slots)",
    },
    KeySpec {
        key: "models.context_per_sequence",
        kind: Kind::Integer {
            min: 64,
            max: 1 << 20,
        },
        default: |_| Some(Value::Integer(4096)),
        secret: false,
        reloadable: false,
        help: "context window of each sequence in tokens (prompt plus completion)",
    },
    KeySpec {
        key: "models.batch_size",
        kind: Kind::Integer {
            min: 16,
            max: 1 << 16,
        },
        default: |_| Some(Value::Integer(512)),
        secret: false,
        reloadable: false,
        help: "most tokens handed to llama.cpp in one decode call",
    },
    KeySpec {
        key: "models.prefill_chunk",
        kind: Kind::Integer {
            min: 16,
            max: 1 << 16,
        },
        default: |_| Some(Value::Integer(256)),
        secret: false,
        reloadable: false,
        help: "most prompt tokens read per step, so running streams keep flowing during long prompts",
    },
    KeySpec {
        key: "models.threads",
        kind: Kind::Integer { min: 0, max: 1024 },
        default: |_| Some(Value::Integer(0)),
        secret: false,
        reloadable: false,
        help: "CPU threads for inference, chat and embedding models alike; 0 uses every available core",
    },
    KeySpec {
        key: "models.kv_cache_type",
        kind: Kind::OneOf(&["f16", "q8_0", "q4_0"]),
        default: |_| Some(Value::String("q8_0".to_string())),
        secret: false,
        reloadable: false,
        help: "how chat models' KV caches store keys and values: q8_0 takes half the memory of f16, q4_0 a quarter",
    },
    KeySpec {
        key: "models.json_number_max_digits",
        kind: Kind::Integer { min: 0, max: 4096 },
        default: |_| Some(Value::Integer(16)),
        secret: false,
        reloadable: false,
        help: "most digits in each part (integral, fraction, exponent) of a number in grammar-constrained JSON output, as llama.cpp's 16; 0 leaves numbers unbounded",
    },
    KeySpec {
        key: "models.lookup_draft_max",
        kind: Kind::Integer { min: 0, max: 64 },
        default: |_| Some(Value::Integer(16)),
        secret: false,
        reloadable: false,
        help: "most tokens prompt-lookup speculative decoding drafts per step (from the prompt and the text so far; the output is unchanged); 0 turns it off",
    },
    KeySpec {
        key: "models.queue_capacity",
        kind: Kind::Integer {
            min: 1,
            max: 1 << 20,
        },
        default: |_| Some(Value::Integer(64)),
        secret: false,
        reloadable: false,
        help: "requests that may wait for a slot per model; one more gets 429",
    },
    KeySpec {
        key: "models.embedding_batch_size",
        kind: Kind::Integer { min: 1, max: 4096 },
        default: |_| Some(Value::Integer(32)),
        secret: false,
        reloadable: false,
        help: "most inputs embedded in one forward pass (concurrent requests share it)",
    },
    KeySpec {
        key: "auth.mode",
        kind: Kind::OneOf(&["auto", "on"]),
        default: |_| Some(Value::String("auto".to_string())),
        secret: false,
        reloadable: false,
        help: "auto: API keys are required unless the server listens on loopback only; on: always required",
    },
    KeySpec {
        key: "auth.oidc_issuer",
        kind: Kind::String,
        default: unset,
        secret: false,
        reloadable: false,
        help: "accept bearer JWTs of this OIDC issuer (its iss) beside API keys; keys are then always required",
    },
    KeySpec {
        key: "auth.oidc_audience",
        kind: Kind::String,
        default: unset,
        secret: false,
        reloadable: false,
        help: "the aud the issuer's tokens must carry (this server's client id)",
    },
    KeySpec {
        key: "auth.oidc_jwks_url",
        kind: Kind::String,
        default: unset,
        secret: false,
        reloadable: false,
        help: "the issuer's signing keys; unset: jwks_uri of its /.well-known/openid-configuration",
    },
    KeySpec {
        key: "auth.oidc_tenant_claim",
        kind: Kind::String,
        default: |_| Some(Value::String("tenant".to_string())),
        secret: false,
        reloadable: false,
        help: "the claim naming the tenant, which must exist",
    },
    KeySpec {
        key: "auth.oidc_role_claim",
        kind: Kind::String,
        default: |_| Some(Value::String("role".to_string())),
        secret: false,
        reloadable: false,
        help: "the claim naming the role: admin, member or reader, or a list of them (member when absent)",
    },
    KeySpec {
        key: "limits.key_requests_per_minute",
        kind: Kind::Integer {
            min: 0,
            max: 1_000_000_000_000,
        },
        default: |_| Some(Value::Integer(0)),
        secret: false,
        reloadable: true,
        help: "requests per minute per API key unless the key sets its own; 0 is unlimited",
    },
    KeySpec {
        key: "limits.key_tokens_per_minute",
        kind: Kind::Integer {
            min: 0,
            max: 1_000_000_000_000,
        },
        default: |_| Some(Value::Integer(0)),
        secret: false,
        reloadable: true,
        help: "tokens (prompt and completion) per minute per API key unless the key sets its own; 0 is unlimited",
    },
    KeySpec {
        key: "limits.key_max_concurrent",
        kind: Kind::Integer {
            min: 0,
            max: 1_000_000_000_000,
        },
        default: |_| Some(Value::Integer(0)),
        secret: false,
        reloadable: true,
        help: "requests in flight per API key unless the key sets its own; 0 is unlimited",
    },
    KeySpec {
        key: "limits.ip_requests_per_minute",
        kind: Kind::Integer {
            min: 0,
            max: 1_000_000_000_000,
        },
        default: |_| Some(Value::Integer(0)),
        secret: false,
        reloadable: true,
        help: "requests per minute per client address; 0 is unlimited",
    },
    KeySpec {
        key: "limits.ip_max_concurrent",
        kind: Kind::Integer {
            min: 0,
            max: 1_000_000_000_000,
        },
        default: |_| Some(Value::Integer(0)),
        secret: false,
        reloadable: true,
        help: "requests in flight per client address; 0 is unlimited",
    },
    KeySpec {
        key: "upstreams",
        kind: Kind::Tables(&[
            Field {
                name: "name",
                kind: FieldKind::String,
                required: true,
            },
            Field {
                name: "base_url",
                kind: FieldKind::String,
                required: true,
            },
            Field {
                name: "api_key_env",
                kind: FieldKind::String,
                required: false,
            },
            Field {
                name: "timeout_ms",
                kind: FieldKind::Integer {
                    min: 1,
                    max: 3_600_000,
                },
                required: false,
            },
        ]),
        default: |_| Some(Value::Array(Vec::new())),
        secret: false,
        reloadable: true,
        help: "OpenAI-compatible providers: name, base_url (ending in /v1), api_key_env (the environment variable holding the key), timeout_ms",
    },
    KeySpec {
        key: "routes",
        kind: Kind::Tables(&[
            Field {
                name: "model",
                kind: FieldKind::String,
                required: true,
            },
            Field {
                name: "strategy",
                kind: FieldKind::OneOf(&["priority", "weighted", "latency", "least_busy"]),
                required: false,
            },
            Field {
                name: "targets",
                kind: FieldKind::StringList,
                required: true,
            },
            Field {
                name: "weights",
                kind: FieldKind::IntegerList {
                    min: 0,
                    max: 1_000_000,
                },
                required: false,
            },
        ]),
        default: |_| Some(Value::Array(Vec::new())),
        secret: false,
        reloadable: true,
        help: "model aliases routed to targets (\"upstream/model\" or \"local/model\") by strategy: priority (with fallback), weighted, latency, least_busy",
    },
    KeySpec {
        key: "prices",
        kind: Kind::Tables(&[
            Field {
                name: "model",
                kind: FieldKind::String,
                required: true,
            },
            Field {
                name: "prompt_per_million",
                kind: FieldKind::Float {
                    min: 0.0,
                    max: 1_000_000_000.0,
                },
                required: true,
            },
            Field {
                name: "completion_per_million",
                kind: FieldKind::Float {
                    min: 0.0,
                    max: 1_000_000_000.0,
                },
                required: true,
            },
        ]),
        default: |_| Some(Value::Array(Vec::new())),
        secret: false,
        reloadable: true,
        help: "US dollars per million prompt and completion tokens, by model (`gpt-4o-mini`) or target (`primary/gpt-4o-mini`); usage costs and budgets use them",
    },
    KeySpec {
        key: "routing.max_attempts",
        kind: Kind::Integer { min: 1, max: 10 },
        default: |_| Some(Value::Integer(3)),
        secret: false,
        reloadable: true,
        help: "attempts per request across a route's targets (retries on 429, 5xx, timeouts and connection errors, only before anything was streamed)",
    },
    KeySpec {
        key: "routing.backoff_ms",
        kind: Kind::Integer {
            min: 0,
            max: 60_000,
        },
        default: |_| Some(Value::Integer(100)),
        secret: false,
        reloadable: true,
        help: "base of the jittered exponential backoff between attempts",
    },
    KeySpec {
        key: "routing.breaker_failures",
        kind: Kind::Integer { min: 1, max: 1000 },
        default: |_| Some(Value::Integer(5)),
        secret: false,
        reloadable: true,
        help: "consecutive failures that open a target's circuit breaker",
    },
    KeySpec {
        key: "routing.breaker_open_ms",
        kind: Kind::Integer {
            min: 1,
            max: 3_600_000,
        },
        default: |_| Some(Value::Integer(30_000)),
        secret: false,
        reloadable: true,
        help: "how long an open breaker skips its target before one probe request (half-open)",
    },
    KeySpec {
        key: "cache.enabled",
        kind: Kind::Bool,
        default: |_| Some(Value::Boolean(false)),
        secret: false,
        reloadable: false,
        help: "cache answers of /v1/chat/completions, /v1/completions and /v1/embeddings per tenant (x-hearth-cache: hit|miss|bypass)",
    },
    KeySpec {
        key: "cache.ttl_seconds",
        kind: Kind::Integer {
            min: 1,
            max: 365 * 24 * 3600,
        },
        default: |_| Some(Value::Integer(3600)),
        secret: false,
        reloadable: false,
        help: "how long a cached answer is served",
    },
    KeySpec {
        key: "cache.max_bytes",
        kind: Kind::Integer {
            min: 1024,
            max: 1024 * GIB,
        },
        default: |_| Some(Value::Integer(64 * 1024 * 1024)),
        secret: false,
        reloadable: false,
        help: "memory all cached answers may take; the least recently used go first",
    },
    KeySpec {
        key: "cache.sampled",
        kind: Kind::Bool,
        default: |_| Some(Value::Boolean(false)),
        secret: false,
        reloadable: false,
        help: "also cache sampled requests (temperature above 0 without a seed), which then all get the same answer",
    },
    KeySpec {
        key: "cache.semantic_model",
        kind: Kind::String,
        default: unset,
        secret: false,
        reloadable: false,
        help: "local embedding model of the semantic cache, e.g. all-minilm:l6-v2; unset: exact cache only",
    },
    KeySpec {
        key: "cache.semantic_threshold",
        kind: Kind::Float { min: 0.5, max: 1.0 },
        default: |_| Some(Value::Float(0.95)),
        secret: false,
        reloadable: false,
        help: "cosine similarity of the last user message at or above which the semantic cache answers",
    },
    KeySpec {
        key: "memory.embedding_model",
        kind: Kind::String,
        default: |_| Some(Value::String("all-minilm:l6-v2".to_string())),
        secret: false,
        reloadable: false,
        help: "local embedding model of collections created with neither dimensions nor a model",
    },
    KeySpec {
        key: "memory.max_file_bytes",
        kind: Kind::Integer {
            min: 1024,
            max: 8 * GIB,
        },
        default: |_| Some(Value::Integer(64 * 1024 * 1024)),
        secret: false,
        reloadable: false,
        help: "largest file /v1/files accepts (the upload's body limit too)",
    },
    KeySpec {
        key: "memory.max_file_bytes_per_tenant",
        kind: Kind::Integer {
            min: 1024,
            max: 1024 * GIB,
        },
        default: |_| Some(Value::Integer(10 * GIB)),
        secret: false,
        reloadable: false,
        help: "most bytes all of one tenant's uploaded files may take together",
    },
    KeySpec {
        key: "memory.max_collections_per_tenant",
        kind: Kind::Integer {
            min: 1,
            max: 1_000_000,
        },
        default: |_| Some(Value::Integer(1000)),
        secret: false,
        reloadable: false,
        help: "most collections one tenant (or the instance's own scope) may have",
    },
    KeySpec {
        key: "memory.max_chunks_per_tenant",
        kind: Kind::Integer {
            min: 1,
            max: 10_000_000_000,
        },
        default: |_| Some(Value::Integer(5_000_000)),
        secret: false,
        reloadable: false,
        help: "most chunks (documents, or their pieces when text is split) one tenant's \
               collections may hold together",
    },
    KeySpec {
        key: "memory.conversation_retention_days",
        kind: Kind::Integer {
            min: 0,
            max: 36_500,
        },
        default: |_| Some(Value::Integer(365)),
        secret: false,
        reloadable: false,
        help: "days a remembered chat turn (`memory.remember`) is kept; 0 keeps turns until \
               their user's memory is deleted",
    },
    KeySpec {
        key: "memory.max_documents_per_request",
        kind: Kind::Integer {
            min: 1,
            max: 100_000,
        },
        default: |_| Some(Value::Integer(1000)),
        secret: false,
        reloadable: false,
        help: "most documents one upsert or delete by ids may hold",
    },
    KeySpec {
        key: "plugins.max_instances",
        kind: Kind::Integer {
            min: 10,
            max: 100_000,
        },
        default: |_| Some(Value::Integer(1000)),
        secret: false,
        reloadable: false,
        help: "plugin instances of all plugins together, running and idle: the size of the \
               sandbox's pool, whose address space is reserved at start",
    },
    KeySpec {
        key: "plugins.watch_dir",
        kind: Kind::String,
        default: unset,
        secret: false,
        reloadable: false,
        help: "a directory of plugin folders (plugin.toml, a .wasm component, its .wasm.sig) \
               installed or upgraded when their files change, for development",
    },
    KeySpec {
        key: "plugins.allow_internal_hosts",
        kind: Kind::Bool,
        default: |_| Some(Value::Boolean(false)),
        secret: false,
        reloadable: false,
        help: "let plugins' HTTP reach loopback and private addresses (their capabilities.http \
               allow-lists apply either way)",
    },
    KeySpec {
        key: "plugins.trusted_keys",
        kind: Kind::StringList,
        default: |_| Some(Value::Array(Vec::new())),
        secret: false,
        reloadable: false,
        help: "ed25519 public keys (base64, from `hearth plugins keygen`) whose signatures a \
               plugin may carry",
    },
    KeySpec {
        key: "jobs",
        kind: Kind::Tables(&[
            Field {
                name: "name",
                kind: FieldKind::String,
                required: true,
            },
            Field {
                name: "tenant",
                kind: FieldKind::String,
                required: false,
            },
            Field {
                name: "description",
                kind: FieldKind::String,
                required: false,
            },
            Field {
                name: "schedule",
                kind: FieldKind::String,
                required: false,
            },
            Field {
                name: "timezone",
                kind: FieldKind::String,
                required: false,
            },
            Field {
                name: "trigger",
                kind: FieldKind::String,
                required: false,
            },
            Field {
                name: "after",
                kind: FieldKind::StringList,
                required: false,
            },
            Field {
                name: "plugin",
                kind: FieldKind::String,
                required: false,
            },
            Field {
                name: "tool",
                kind: FieldKind::String,
                required: false,
            },
            Field {
                name: "arguments",
                kind: FieldKind::String,
                required: false,
            },
            Field {
                name: "webhook_url",
                kind: FieldKind::String,
                required: false,
            },
            Field {
                name: "webhook_secret_env",
                kind: FieldKind::String,
                required: false,
            },
            Field {
                name: "builtin",
                kind: FieldKind::String,
                required: false,
            },
            Field {
                name: "retries",
                kind: FieldKind::Integer { min: 0, max: 10 },
                required: false,
            },
            Field {
                name: "backoff_ms",
                kind: FieldKind::Integer {
                    min: 0,
                    max: 3_600_000,
                },
                required: false,
            },
            Field {
                name: "timeout_ms",
                kind: FieldKind::Integer {
                    min: 1,
                    max: 3_600_000,
                },
                required: false,
            },
            Field {
                name: "overlap",
                kind: FieldKind::OneOf(&["skip", "queue"]),
                required: false,
            },
            Field {
                name: "catch_up",
                kind: FieldKind::OneOf(&["skip", "once", "all"]),
                required: false,
            },
        ]),
        default: |_| Some(Value::Array(Vec::new())),
        secret: false,
        reloadable: false,
        help: "jobs the server defines at start (the instance's own unless `tenant` names one): \
               name; when: schedule (cron, 5 or 6 fields) with timezone, trigger (a topic \
               pattern) or after (job names); what: plugin and tool with arguments (a JSON \
               object as text), webhook_url with webhook_secret_env (the environment variable \
               holding its whsec_ secret), or builtin; how: retries, backoff_ms, timeout_ms, \
               overlap (skip, queue), catch_up (skip, once, all)",
    },
    KeySpec {
        key: "flags",
        kind: Kind::Tables(&[
            Field {
                name: "key",
                kind: FieldKind::String,
                required: true,
            },
            Field {
                name: "tenant",
                kind: FieldKind::String,
                required: false,
            },
            Field {
                name: "type",
                kind: FieldKind::OneOf(&["boolean", "string", "number", "object"]),
                required: false,
            },
            Field {
                name: "description",
                kind: FieldKind::String,
                required: false,
            },
            Field {
                name: "enabled",
                kind: FieldKind::Bool,
                required: false,
            },
            Field {
                name: "variants",
                kind: FieldKind::Any,
                required: false,
            },
            Field {
                name: "default_variant",
                kind: FieldKind::String,
                required: false,
            },
            Field {
                name: "rules",
                kind: FieldKind::Any,
                required: false,
            },
            Field {
                name: "split",
                kind: FieldKind::Any,
                required: false,
            },
            Field {
                name: "bucket_by",
                kind: FieldKind::String,
                required: false,
            },
            Field {
                name: "metadata",
                kind: FieldKind::Any,
                required: false,
            },
        ]),
        default: |_| Some(Value::Array(Vec::new())),
        secret: false,
        reloadable: true,
        help: "feature flags (the instance's own unless `tenant` names one), applied at start \
               and on every reload: key, type (boolean, string, number, object), variants (a \
               table of name = value; a boolean flag without them has on and off), \
               default_variant, rules ([{when = [{attribute, op, values}], variant or split}]), \
               split ([{variant, weight}]: a percentage rollout), bucket_by (default \
               targetingKey), enabled (the kill switch), metadata",
    },
    KeySpec {
        key: "scheduler.max_jobs_per_tenant",
        kind: Kind::Integer {
            min: 1,
            max: 100_000,
        },
        default: |_| Some(Value::Integer(100)),
        secret: false,
        reloadable: false,
        help: "jobs one tenant may define over the API",
    },
    KeySpec {
        key: "scheduler.allow_internal_targets",
        kind: Kind::Bool,
        default: |_| Some(Value::Boolean(false)),
        secret: false,
        reloadable: false,
        help: "let jobs' webhooks reach loopback and private addresses",
    },
    KeySpec {
        key: "plugins.allow_unsigned",
        kind: Kind::Bool,
        default: |profile| Some(Value::Boolean(matches!(profile, Profile::Dev))),
        secret: false,
        reloadable: false,
        help: "install plugins that carry no signature (the dev profile's default; production \
               refuses them)",
    },
    KeySpec {
        key: "events.max_event_bytes",
        kind: Kind::Integer {
            min: 1,
            max: 64 * 1024 * 1024,
        },
        default: |_| Some(Value::Integer(1024 * 1024)),
        secret: false,
        reloadable: false,
        help: "largest data of one published event, in bytes of JSON",
    },
    KeySpec {
        key: "events.max_bytes_per_tenant",
        kind: Kind::Integer {
            min: 1024,
            max: 1024 * GIB,
        },
        default: |_| Some(Value::Integer(GIB)),
        secret: false,
        reloadable: false,
        help: "most bytes of event data one tenant's log may hold (retention makes room)",
    },
    KeySpec {
        key: "events.max_consumers_per_tenant",
        kind: Kind::Integer {
            min: 1,
            max: 100_000,
        },
        default: |_| Some(Value::Integer(256)),
        secret: false,
        reloadable: false,
        help: "most durable consumers one tenant may have",
    },
    KeySpec {
        key: "webhooks.allow_internal_targets",
        kind: Kind::Bool,
        default: |_| Some(Value::Boolean(false)),
        secret: false,
        reloadable: false,
        help: "let webhooks reach loopback and private addresses (off: no SSRF into your network)",
    },
    KeySpec {
        key: "webhooks.retry_scale",
        kind: Kind::Float {
            min: 0.0001,
            max: 1.0,
        },
        default: |_| Some(Value::Float(1.0)),
        secret: false,
        reloadable: false,
        help: "factor on Svix's retry schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); \
               below 1 only to test receivers",
    },
    KeySpec {
        key: "webhooks.timeout_s",
        kind: Kind::Integer { min: 1, max: 300 },
        default: |_| Some(Value::Integer(15)),
        secret: false,
        reloadable: false,
        help: "seconds one webhook request may take",
    },
    KeySpec {
        key: "webhooks.disable_after_s",
        kind: Kind::Integer {
            min: 60,
            max: 365 * 86_400,
        },
        default: |_| Some(Value::Integer(5 * 86_400)),
        secret: false,
        reloadable: false,
        help: "an endpoint failing this long without a success is disabled (and reported)",
    },
    KeySpec {
        key: "webhooks.max_per_tenant",
        kind: Kind::Integer {
            min: 1,
            max: 10_000,
        },
        default: |_| Some(Value::Integer(64)),
        secret: false,
        reloadable: false,
        help: "most webhook endpoints one tenant may have",
    },
    KeySpec {
        key: "responses.ttl_days",
        kind: Kind::Integer { min: 1, max: 3650 },
        default: |_| Some(Value::Integer(30)),
        secret: false,
        reloadable: false,
        help: "days a stored response (Responses API) is kept for retrieval and previous_response_id",
    },
    KeySpec {
        key: "responses.max_per_tenant",
        kind: Kind::Integer {
            min: 10,
            max: 100_000_000,
        },
        default: |_| Some(Value::Integer(100_000)),
        secret: false,
        reloadable: false,
        help: "most stored responses one tenant keeps (its oldest go first)",
    },
    KeySpec {
        key: "reload.watch",
        kind: Kind::Bool,
        default: |_| Some(Value::Boolean(true)),
        secret: false,
        reloadable: false,
        help: "reload the config file when it changes (SIGHUP always reloads)",
    },
    KeySpec {
        key: "reload.poll_interval_ms",
        kind: Kind::Integer {
            min: 100,
            max: HOUR_MS,
        },
        default: |_| Some(Value::Integer(1000)),
        secret: false,
        reloadable: false,
        help: "how often the config file is checked for changes",
    },
];

/// Looks a key up by its dotted path.
pub fn spec(key: &str) -> Option<&'static KeySpec> {
    SCHEMA.iter().find(|spec| spec.key == key)
}

/// The closest known key to a misspelt one, if any is close enough to be a plausible typo.
pub fn closest_key(unknown: &str) -> Option<&'static str> {
    closest(unknown, SCHEMA.iter().map(|spec| spec.key))
}

/// The candidate nearest to `unknown` by edit distance, if it is close enough to be a typo.
pub fn closest<S: AsRef<str>>(unknown: &str, candidates: impl Iterator<Item = S>) -> Option<S> {
    candidates
        .map(|candidate| (edit_distance(unknown, candidate.as_ref()), candidate))
        .filter(|(distance, candidate)| *distance <= 3.max(candidate.as_ref().len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

//! The validated configuration: typed, complete, and safe to act on. Only [`Config::from_values`]
//! builds one, after the loader has checked every value's shape against the schema.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use toml::Value;

use crate::error::ConfigError;
use crate::load::{EffectiveValue, Origin};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// Friendly defaults for a laptop: pretty logs on a terminal.
    #[default]
    Dev,
    /// Defaults for servers: JSON logs.
    Prod,
}

impl Profile {
    pub fn parse(name: &str) -> Option<Profile> {
        match name {
            "dev" => Some(Profile::Dev),
            "prod" => Some(Profile::Prod),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Dev => "dev",
            Profile::Prod => "prod",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub profile: Profile,
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub log: LogConfig,
    pub telemetry: TelemetryConfig,
    pub storage: StorageConfig,
    pub models: ModelsConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub upstreams: Vec<UpstreamConfig>,
    pub routes: Vec<RouteConfig>,
    pub routing: RoutingConfig,
    pub prices: Vec<PriceConfig>,
    pub cache: CacheConfig,
    pub memory: MemoryConfig,
    pub events: EventsConfig,
    pub webhooks: WebhooksConfig,
    pub responses: ResponsesConfig,
    pub plugins: PluginsConfig,
    pub jobs: Vec<JobConfig>,
    pub scheduler: SchedulerConfig,
    pub flags: Vec<FlagConfig>,
    pub reload: ReloadConfig,
}

/// A job the configuration defines (`[[jobs]]`), as written: the jobs service checks the
/// rest of it when the server starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobConfig {
    pub name: String,
    /// The tenant whose job it is; the instance's own when absent.
    pub tenant: Option<String>,
    pub description: Option<String>,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub trigger: Option<String>,
    pub after: Vec<String>,
    pub action: JobActionConfig,
    pub retries: Option<u32>,
    pub backoff_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub overlap: Option<String>,
    pub catch_up: Option<String>,
}

/// A feature flag the configuration defines (`[[flags]]`): its key, its tenant (the
/// instance's own when absent) and the rest of its table as written, which the flags service
/// checks.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagConfig {
    pub key: String,
    pub tenant: Option<String>,
    pub definition: toml::Table,
}

/// What a configured job does: exactly one of these.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum JobActionConfig {
    Plugin {
        plugin: String,
        tool: String,
        /// A JSON object, as text.
        arguments: Option<String>,
    },
    Webhook {
        url: String,
        /// The environment variable holding the signing secret.
        secret_env: Option<String>,
    },
    #[default]
    Noop,
    Builtin(String),
}

/// How jobs are run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerConfig {
    pub max_jobs_per_tenant: usize,
    pub allow_internal_targets: bool,
}

/// The WebAssembly plugin sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginsConfig {
    /// Instances of all plugins together, running and idle.
    pub max_instances: u32,
    /// Public keys (base64) whose signatures are trusted.
    pub trusted_keys: Vec<String>,
    /// Whether plugins without a signature may be installed.
    pub allow_unsigned: bool,
    /// A directory of plugin folders reloaded when they change.
    pub watch_dir: Option<PathBuf>,
    /// Whether plugins' HTTP may reach internal addresses.
    pub allow_internal_hosts: bool,
}

/// Stored responses of the Responses API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponsesConfig {
    /// Days a stored response is kept.
    pub ttl_days: u32,
    /// Most stored responses one tenant keeps.
    pub max_per_tenant: u64,
}

/// The event log and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsConfig {
    pub max_event_bytes: u64,
    pub max_bytes_per_tenant: u64,
    pub max_consumers_per_tenant: u32,
}

/// Webhook delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhooksConfig {
    pub allow_internal_targets: bool,
    pub retry_scale: f64,
    pub timeout_s: u64,
    pub disable_after_s: u64,
    pub max_per_tenant: u32,
}

/// Collections and documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryConfig {
    /// The model of collections created with neither dimensions nor a model.
    pub embedding_model: Option<String>,
    pub max_documents_per_request: usize,
    pub max_file_bytes: u64,
    pub max_file_bytes_per_tenant: u64,
    pub max_collections_per_tenant: usize,
    pub max_chunks_per_tenant: u64,
    /// Days a remembered chat turn is kept; `None`: until deleted.
    pub conversation_retention_days: Option<u32>,
}

/// What a model's tokens cost, in US dollars per million.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceConfig {
    /// A model name (`gpt-4o-mini`) or a target (`primary/gpt-4o-mini`), which wins.
    pub model: String,
    pub prompt_per_million: f64,
    pub completion_per_million: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    pub enabled: bool,
    pub ttl: Duration,
    pub max_bytes: usize,
    pub sampled: bool,
    pub semantic_model: Option<String>,
    pub semantic_threshold: f32,
}

/// An OpenAI-compatible provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    pub name: String,
    /// Up to and including the version, e.g. `https://api.openai.com/v1`; no trailing slash.
    pub base_url: String,
    /// The environment variable that holds the API key (the key never appears in config).
    pub api_key_env: Option<String>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteStrategy {
    Priority,
    Weighted,
    Latency,
    LeastBusy,
}

/// Where a route may send a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTarget {
    /// A model of this server.
    Local { model: String },
    /// A model of an upstream, by the upstream's name.
    Upstream { upstream: String, model: String },
}

/// A model name clients send, and the targets that serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    pub model: String,
    pub strategy: RouteStrategy,
    pub targets: Vec<RouteTarget>,
    /// One per target, for the weighted strategy; equal weights when not given.
    pub weights: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutingConfig {
    pub max_attempts: u32,
    pub backoff: Duration,
    pub breaker_failures: u32,
    pub breaker_open: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Keys are required unless the server listens on loopback addresses only.
    Auto,
    /// Keys are always required.
    On,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
    pub mode: AuthMode,
    pub oidc: Option<OidcConfig>,
}

/// An OIDC issuer whose bearer JWTs are accepted beside API keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    pub issuer: String,
    pub audience: String,
    pub jwks_url: Option<String>,
    pub tenant_claim: String,
    pub role_claim: String,
}

/// Default limits; `None` is unlimited. Keys and tenants may set their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    pub key_requests_per_minute: Option<u64>,
    pub key_tokens_per_minute: Option<u64>,
    pub key_max_concurrent: Option<u64>,
    pub ip_requests_per_minute: Option<u64>,
    pub ip_max_concurrent: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelsConfig {
    pub memory_budget_bytes: u64,
    /// `None`: never unload for idleness.
    pub keep_alive: Option<Duration>,
    pub preload: Vec<String>,
    pub parallel_sequences: usize,
    pub context_per_sequence: usize,
    pub batch_size: usize,
    pub prefill_chunk: usize,
    /// 0 means every available core.
    pub threads: usize,
    pub queue_capacity: usize,
    /// `f16`, `q8_0` or `q4_0` (checked against the schema).
    pub kv_cache_type: String,
    /// Digits allowed per part of a JSON number under a grammar; 0 means unbounded.
    pub json_number_max_digits: usize,
    /// Most tokens prompt-lookup speculative decoding drafts per step; 0 turns it off.
    pub lookup_draft_max: usize,
    pub embedding_batch_size: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub shutdown_timeout: Duration,
    /// Empty: no cross-origin browser access. `["*"]`: any origin.
    pub cors_allowed_origins: Vec<String>,
    pub compression: bool,
    /// Where the admin API is served when it has a listener of its own.
    pub admin_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// A validated filter directive such as `info` or `info,hearth_server=debug`.
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Auto,
    Pretty,
    Json,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    pub otlp_endpoint: Option<String>,
    pub otlp_headers: Vec<(String, String)>,
    pub service_name: String,
    pub sample_ratio: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    pub integrity_check: IntegrityCheck,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrityCheck {
    Quick,
    Full,
    Off,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReloadConfig {
    pub watch: bool,
    pub poll_interval: Duration,
}

/// Reads typed values out of the effective key list. The loader has already checked shapes,
/// so a missing or mistyped value here is a schema bug, reported as an invalid value all the same.
struct Values<'a>(&'a [EffectiveValue]);

impl<'a> Values<'a> {
    fn get(&self, key: &str) -> Option<&'a EffectiveValue> {
        self.0.iter().find(|value| value.spec.key == key)
    }

    fn invalid(&self, key: &str, expected: &str) -> ConfigError {
        let (value, origin) = match self.get(key) {
            Some(effective) => (effective.value.to_string(), effective.origin.clone()),
            None => ("(unset)".to_string(), Origin::Default),
        };
        ConfigError::InvalidValue {
            key: key.to_string(),
            value,
            origin,
            expected: expected.to_string(),
        }
    }

    fn string(&self, key: &str) -> Result<&'a str, ConfigError> {
        self.get(key)
            .and_then(|value| value.value.as_str())
            .ok_or_else(|| self.invalid(key, "a string"))
    }

    fn optional_string(&self, key: &str) -> Option<&'a str> {
        self.get(key)
            .and_then(|value| value.value.as_str())
            .filter(|text| !text.trim().is_empty())
    }

    fn integer(&self, key: &str) -> Result<i64, ConfigError> {
        self.get(key)
            .and_then(|value| value.value.as_integer())
            .ok_or_else(|| self.invalid(key, "an integer"))
    }

    /// A limit where 0 means none.
    fn limit(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        let value = u64::try_from(self.integer(key)?)
            .map_err(|_| self.invalid(key, "a non-negative integer (0 for no limit)"))?;
        Ok((value > 0).then_some(value))
    }

    fn millis(&self, key: &str) -> Result<Duration, ConfigError> {
        let millis = u64::try_from(self.integer(key)?)
            .map_err(|_| self.invalid(key, "a non-negative number of milliseconds"))?;
        Ok(Duration::from_millis(millis))
    }

    fn float(&self, key: &str) -> Result<f64, ConfigError> {
        self.get(key)
            .and_then(|value| value.value.as_float())
            .ok_or_else(|| self.invalid(key, "a number"))
    }

    fn boolean(&self, key: &str) -> Result<bool, ConfigError> {
        self.get(key)
            .and_then(|value| value.value.as_bool())
            .ok_or_else(|| self.invalid(key, "true or false"))
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        match self.get(key).map(|value| &value.value) {
            Some(Value::Array(items)) => Ok(items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_string))
                .collect()),
            _ => Err(self.invalid(key, "a list of strings")),
        }
    }
}

impl Config {
    pub(crate) fn from_values(effective: &[EffectiveValue]) -> Result<Config, ConfigError> {
        let values = Values(effective);

        let profile = Profile::parse(values.string("profile")?)
            .ok_or_else(|| values.invalid("profile", "dev or prod"))?;

        let data_dir = match values.optional_string("data_dir") {
            Some(dir) => PathBuf::from(dir),
            None => {
                return Err(values.invalid(
                    "data_dir",
                    "a directory; set HOME or XDG_DATA_HOME, or pass --data-dir",
                ));
            }
        };

        let listen_text = values.string("server.listen")?;
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            values.invalid(
                "server.listen",
                "an IP address and port such as 127.0.0.1:4327 or [::1]:4327",
            )
        })?;

        let max_body_bytes = usize::try_from(values.integer("server.max_body_bytes")?)
            .map_err(|_| values.invalid("server.max_body_bytes", "a positive size in bytes"))?;

        let cors_allowed_origins = values.strings("server.cors_allowed_origins")?;
        for origin in &cors_allowed_origins {
            let valid = origin == "*"
                || ((origin.starts_with("http://") || origin.starts_with("https://"))
                    && !origin.ends_with('/'));
            if !valid {
                return Err(values.invalid(
                    "server.cors_allowed_origins",
                    "\"*\" or origins like https://app.example.com (scheme and host, no path)",
                ));
            }
        }

        let level = values.string("log.level")?.trim().to_string();
        validate_log_filter(&level).map_err(|problem| {
            values.invalid(
                "log.level",
                &format!("{problem}; use error, warn, info, debug, trace, off or target=level pairs separated by commas"),
            )
        })?;
        let format = match values.string("log.format")? {
            "auto" => LogFormat::Auto,
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            _ => return Err(values.invalid("log.format", "auto, pretty or json")),
        };

        let otlp_endpoint = values
            .optional_string("telemetry.otlp_endpoint")
            .map(|endpoint| endpoint.trim_end_matches('/').to_string());
        if let Some(endpoint) = &otlp_endpoint {
            let scheme_ok = endpoint.starts_with("http://") || endpoint.starts_with("https://");
            if !scheme_ok {
                return Err(values.invalid(
                    "telemetry.otlp_endpoint",
                    "an http:// or https:// URL such as http://127.0.0.1:4318",
                ));
            }
        }
        let mut otlp_headers = Vec::new();
        if let Some(text) = values.optional_string("telemetry.otlp_headers") {
            for pair in text
                .split(',')
                .map(str::trim)
                .filter(|pair| !pair.is_empty())
            {
                match pair.split_once('=') {
                    Some((name, value)) if !name.trim().is_empty() => {
                        otlp_headers.push((name.trim().to_string(), value.trim().to_string()));
                    }
                    _ => {
                        // The value is a secret: name the key and the shape, never echo it.
                        return Err(ConfigError::InvalidValue {
                            key: "telemetry.otlp_headers".to_string(),
                            value: "(secret)".to_string(),
                            origin: values
                                .get("telemetry.otlp_headers")
                                .map(|value| value.origin.clone())
                                .unwrap_or(Origin::Default),
                            expected: "name=value pairs separated by commas".to_string(),
                        });
                    }
                }
            }
        }

        let integrity_check = match values.string("storage.integrity_check")? {
            "quick" => IntegrityCheck::Quick,
            "full" => IntegrityCheck::Full,
            "off" => IntegrityCheck::Off,
            _ => return Err(values.invalid("storage.integrity_check", "quick, full or off")),
        };

        Ok(Config {
            profile,
            data_dir,
            server: ServerConfig {
                listen,
                max_body_bytes,
                request_timeout: values.millis("server.request_timeout_ms")?,
                shutdown_timeout: values.millis("server.shutdown_timeout_ms")?,
                cors_allowed_origins,
                compression: values.boolean("server.compression")?,
                admin_listen: match values.optional_string("server.admin_listen") {
                    None => None,
                    Some(text) => Some(text.trim().parse().map_err(|_| {
                        values.invalid(
                            "server.admin_listen",
                            "an IP address and port such as 127.0.0.1:4328",
                        )
                    })?),
                },
            },
            log: LogConfig { level, format },
            telemetry: TelemetryConfig {
                otlp_endpoint,
                otlp_headers,
                service_name: values.string("telemetry.service_name")?.to_string(),
                sample_ratio: values.float("telemetry.sample_ratio")?,
            },
            storage: StorageConfig { integrity_check },
            models: ModelsConfig {
                memory_budget_bytes: values.integer("models.memory_budget_bytes")? as u64,
                keep_alive: match values.integer("models.keep_alive_seconds")? {
                    seconds if seconds < 0 => None,
                    seconds => Some(Duration::from_secs(seconds as u64)),
                },
                preload: values.strings("models.preload")?,
                parallel_sequences: values.integer("models.parallel_sequences")? as usize,
                context_per_sequence: values.integer("models.context_per_sequence")? as usize,
                batch_size: values.integer("models.batch_size")? as usize,
                prefill_chunk: values.integer("models.prefill_chunk")? as usize,
                threads: values.integer("models.threads")? as usize,
                queue_capacity: values.integer("models.queue_capacity")? as usize,
                kv_cache_type: values.string("models.kv_cache_type")?.to_owned(),
                json_number_max_digits: values.integer("models.json_number_max_digits")? as usize,
                lookup_draft_max: values.integer("models.lookup_draft_max")? as usize,
                embedding_batch_size: values.integer("models.embedding_batch_size")? as usize,
            },
            auth: AuthConfig {
                mode: match values.string("auth.mode")? {
                    "on" => AuthMode::On,
                    _ => AuthMode::Auto,
                },
                oidc: match values.optional_string("auth.oidc_issuer") {
                    None => None,
                    Some(issuer) => {
                        let url = |text: &str| {
                            text.starts_with("https://") || text.starts_with("http://")
                        };
                        if !url(issuer) {
                            return Err(values.invalid(
                                "auth.oidc_issuer",
                                "the issuer URL, e.g. https://login.example.com/realms/acme",
                            ));
                        }
                        let audience = values.optional_string("auth.oidc_audience").ok_or_else(|| {
                            values.invalid(
                                "auth.oidc_audience",
                                "the audience tokens must carry; it is required with auth.oidc_issuer",
                            )
                        })?;
                        let jwks_url = values.optional_string("auth.oidc_jwks_url");
                        if jwks_url.is_some_and(|jwks| !url(jwks)) {
                            return Err(values.invalid("auth.oidc_jwks_url", "an http(s) URL"));
                        }
                        Some(OidcConfig {
                            issuer: issuer.trim_end_matches('/').to_string(),
                            audience: audience.to_string(),
                            jwks_url: jwks_url.map(str::to_string),
                            tenant_claim: values.string("auth.oidc_tenant_claim")?.to_string(),
                            role_claim: values.string("auth.oidc_role_claim")?.to_string(),
                        })
                    }
                },
            },
            limits: LimitsConfig {
                key_requests_per_minute: values.limit("limits.key_requests_per_minute")?,
                key_tokens_per_minute: values.limit("limits.key_tokens_per_minute")?,
                key_max_concurrent: values.limit("limits.key_max_concurrent")?,
                ip_requests_per_minute: values.limit("limits.ip_requests_per_minute")?,
                ip_max_concurrent: values.limit("limits.ip_max_concurrent")?,
            },
            upstreams: upstreams(&values)?,
            routes: routes(&values)?,
            routing: RoutingConfig {
                max_attempts: values.integer("routing.max_attempts")? as u32,
                backoff: values.millis("routing.backoff_ms")?,
                breaker_failures: values.integer("routing.breaker_failures")? as u32,
                breaker_open: values.millis("routing.breaker_open_ms")?,
            },
            prices: tables(&values, "prices")?
                .iter()
                .map(|table| {
                    let number = |name: &str| {
                        field(table, name)
                            .and_then(|value| {
                                value.as_float().or(value.as_integer().map(|n| n as f64))
                            })
                            .unwrap_or(0.0)
                    };
                    PriceConfig {
                        model: field(table, "model")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        prompt_per_million: number("prompt_per_million"),
                        completion_per_million: number("completion_per_million"),
                    }
                })
                .collect(),
            cache: CacheConfig {
                enabled: values.boolean("cache.enabled")?,
                ttl: Duration::from_secs(values.integer("cache.ttl_seconds")? as u64),
                max_bytes: values.integer("cache.max_bytes")? as usize,
                sampled: values.boolean("cache.sampled")?,
                semantic_model: values
                    .optional_string("cache.semantic_model")
                    .map(str::to_string),
                semantic_threshold: values.float("cache.semantic_threshold")? as f32,
            },
            memory: MemoryConfig {
                embedding_model: values
                    .optional_string("memory.embedding_model")
                    .map(str::to_string),
                max_documents_per_request: values.integer("memory.max_documents_per_request")?
                    as usize,
                max_file_bytes: values.integer("memory.max_file_bytes")? as u64,
                max_file_bytes_per_tenant: values.integer("memory.max_file_bytes_per_tenant")?
                    as u64,
                max_collections_per_tenant: values.integer("memory.max_collections_per_tenant")?
                    as usize,
                max_chunks_per_tenant: values.integer("memory.max_chunks_per_tenant")? as u64,
                conversation_retention_days: match values
                    .integer("memory.conversation_retention_days")?
                {
                    0 => None,
                    days => Some(days as u32),
                },
            },
            events: EventsConfig {
                max_event_bytes: values.integer("events.max_event_bytes")? as u64,
                max_bytes_per_tenant: values.integer("events.max_bytes_per_tenant")? as u64,
                max_consumers_per_tenant: values.integer("events.max_consumers_per_tenant")? as u32,
            },
            webhooks: WebhooksConfig {
                allow_internal_targets: values.boolean("webhooks.allow_internal_targets")?,
                retry_scale: values.float("webhooks.retry_scale")?,
                timeout_s: values.integer("webhooks.timeout_s")? as u64,
                disable_after_s: values.integer("webhooks.disable_after_s")? as u64,
                max_per_tenant: values.integer("webhooks.max_per_tenant")? as u32,
            },
            responses: ResponsesConfig {
                ttl_days: values.integer("responses.ttl_days")? as u32,
                max_per_tenant: values.integer("responses.max_per_tenant")? as u64,
            },
            plugins: PluginsConfig {
                max_instances: values.integer("plugins.max_instances")? as u32,
                trusted_keys: values.strings("plugins.trusted_keys")?,
                allow_unsigned: values.boolean("plugins.allow_unsigned")?,
                watch_dir: values
                    .optional_string("plugins.watch_dir")
                    .map(PathBuf::from),
                allow_internal_hosts: values.boolean("plugins.allow_internal_hosts")?,
            },
            jobs: jobs(&values)?,
            flags: flags(&values)?,
            scheduler: SchedulerConfig {
                max_jobs_per_tenant: values.integer("scheduler.max_jobs_per_tenant")? as usize,
                allow_internal_targets: values.boolean("scheduler.allow_internal_targets")?,
            },
            reload: ReloadConfig {
                watch: values.boolean("reload.watch")?,
                poll_interval: values.millis("reload.poll_interval_ms")?,
            },
        })
    }
}

fn tables<'a>(values: &Values<'a>, key: &str) -> Result<&'a [Value], ConfigError> {
    match values.get(key).map(|value| &value.value) {
        Some(Value::Array(items)) => Ok(items),
        _ => Err(values.invalid(key, "a list of tables")),
    }
}

fn field<'a>(table: &'a Value, name: &str) -> Option<&'a Value> {
    table.as_table().and_then(|table| table.get(name))
}

/// The error for field `name` of table `index` of the array `key` (`upstreams[1].base_url`).
fn invalid_field(
    values: &Values<'_>,
    key: &str,
    index: usize,
    table: &Value,
    name: &str,
    expected: &str,
) -> ConfigError {
    let mut error = values.invalid(key, expected);
    if let ConfigError::InvalidValue { key: at, value, .. } = &mut error {
        *at = format!("{key}[{index}].{name}");
        *value = field(table, name).map(Value::to_string).unwrap_or_default();
    }
    error
}

fn text_field(table: &Value, name: &str) -> Option<String> {
    field(table, name)
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn upstreams(values: &Values<'_>) -> Result<Vec<UpstreamConfig>, ConfigError> {
    let mut upstreams: Vec<UpstreamConfig> = Vec::new();
    for (index, table) in tables(values, "upstreams")?.iter().enumerate() {
        let invalid = |name: &str, expected: &str| {
            invalid_field(values, "upstreams", index, table, name, expected)
        };
        let text = |name: &str| text_field(table, name);
        let name = text("name").unwrap_or_default();
        if !valid_name(&name) || name == "local" {
            return Err(invalid(
                "name",
                "lowercase letters, digits, `-` and `_` (not \"local\", which names this server)",
            ));
        }
        if upstreams.iter().any(|upstream| upstream.name == name) {
            return Err(invalid("name", "a name no other upstream has"));
        }
        let base_url = text("base_url")
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(invalid(
                "base_url",
                "an http:// or https:// URL such as https://api.openai.com/v1",
            ));
        }
        let timeout_ms = field(table, "timeout_ms")
            .and_then(Value::as_integer)
            .unwrap_or(60_000);
        upstreams.push(UpstreamConfig {
            name,
            base_url,
            api_key_env: text("api_key_env").filter(|name| !name.is_empty()),
            timeout: Duration::from_millis(timeout_ms as u64),
        });
    }
    Ok(upstreams)
}

fn jobs(values: &Values<'_>) -> Result<Vec<JobConfig>, ConfigError> {
    let mut jobs: Vec<JobConfig> = Vec::new();
    for (index, table) in tables(values, "jobs")?.iter().enumerate() {
        let invalid = |name: &str, expected: &str| {
            invalid_field(values, "jobs", index, table, name, expected)
        };
        let text = |name: &str| text_field(table, name);
        let number = |name: &str| field(table, name).and_then(Value::as_integer);
        let name = text("name").unwrap_or_default();
        let tenant = text("tenant");
        if jobs
            .iter()
            .any(|job| job.name == name && job.tenant == tenant)
        {
            return Err(invalid("name", "a name no other job of its tenant has"));
        }
        let action = match (text("plugin"), text("webhook_url"), text("builtin")) {
            (Some(plugin), None, None) => {
                let Some(tool) = text("tool") else {
                    return Err(invalid("tool", "the plugin's tool the job calls"));
                };
                JobActionConfig::Plugin {
                    plugin,
                    tool,
                    arguments: text("arguments"),
                }
            }
            (None, Some(url), None) => JobActionConfig::Webhook {
                url,
                secret_env: text("webhook_secret_env"),
            },
            (None, None, Some(builtin)) => JobActionConfig::Builtin(builtin),
            (None, None, None) => JobActionConfig::Noop,
            _ => {
                return Err(invalid(
                    "plugin",
                    "one action: plugin (with tool), webhook_url or builtin",
                ));
            }
        };
        jobs.push(JobConfig {
            name,
            tenant,
            description: text("description"),
            schedule: text("schedule"),
            timezone: text("timezone"),
            trigger: text("trigger"),
            after: field(table, "after")
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            action,
            retries: number("retries").map(|value| value as u32),
            backoff_ms: number("backoff_ms").map(|value| value as u64),
            timeout_ms: number("timeout_ms").map(|value| value as u64),
            overlap: text("overlap"),
            catch_up: text("catch_up"),
        });
    }
    Ok(jobs)
}

fn flags(values: &Values<'_>) -> Result<Vec<FlagConfig>, ConfigError> {
    let mut flags: Vec<FlagConfig> = Vec::new();
    for (index, table) in tables(values, "flags")?.iter().enumerate() {
        let key = text_field(table, "key").unwrap_or_default();
        let tenant = text_field(table, "tenant");
        if flags
            .iter()
            .any(|flag| flag.key == key && flag.tenant == tenant)
        {
            return Err(invalid_field(
                values,
                "flags",
                index,
                table,
                "key",
                "a key no other flag of its tenant has",
            ));
        }
        let mut definition = table.as_table().cloned().unwrap_or_default();
        definition.remove("key");
        definition.remove("tenant");
        flags.push(FlagConfig {
            key,
            tenant,
            definition,
        });
    }
    Ok(flags)
}

fn routes(values: &Values<'_>) -> Result<Vec<RouteConfig>, ConfigError> {
    let upstream_names: Vec<String> = upstreams(values)?
        .into_iter()
        .map(|upstream| upstream.name)
        .collect();
    let mut routes: Vec<RouteConfig> = Vec::new();
    for (index, table) in tables(values, "routes")?.iter().enumerate() {
        let invalid = |name: &str, expected: String| {
            let mut error = values.invalid("routes", &expected);
            if let ConfigError::InvalidValue { key, value, .. } = &mut error {
                *key = format!("routes[{index}].{name}");
                *value = field(table, name).map(Value::to_string).unwrap_or_default();
            }
            error
        };
        let model = field(table, "model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if model.is_empty() || routes.iter().any(|route| route.model == model) {
            return Err(invalid(
                "model",
                "a model name no other route has".to_string(),
            ));
        }
        let strategy = match field(table, "strategy").and_then(Value::as_str) {
            None | Some("priority") => RouteStrategy::Priority,
            Some("weighted") => RouteStrategy::Weighted,
            Some("latency") => RouteStrategy::Latency,
            _ => RouteStrategy::LeastBusy,
        };
        let mut targets = Vec::new();
        for text in field(table, "targets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let target = match text.split_once('/') {
                Some(("local", model)) if !model.is_empty() => RouteTarget::Local {
                    model: model.to_string(),
                },
                Some((upstream, model))
                    if !model.is_empty() && upstream_names.iter().any(|name| name == upstream) =>
                {
                    RouteTarget::Upstream {
                        upstream: upstream.to_string(),
                        model: model.to_string(),
                    }
                }
                _ => {
                    return Err(invalid(
                        "targets",
                        format!(
                            "targets like \"local/gemma3:270m\" or \"UPSTREAM/model\" where \
                             UPSTREAM is one of [{}]; {text:?} is neither",
                            upstream_names.join(", ")
                        ),
                    ));
                }
            };
            targets.push(target);
        }
        if targets.is_empty() {
            return Err(invalid("targets", "at least one target".to_string()));
        }
        let weights: Vec<u32> = field(table, "weights")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_integer)
                    .map(|weight| weight as u32)
                    .collect()
            })
            .unwrap_or_default();
        if !weights.is_empty() && weights.len() != targets.len() {
            return Err(invalid(
                "weights",
                format!("one weight per target ({} targets)", targets.len()),
            ));
        }
        if !weights.is_empty() && weights.iter().all(|weight| *weight == 0) {
            return Err(invalid(
                "weights",
                "at least one weight above 0".to_string(),
            ));
        }
        routes.push(RouteConfig {
            model,
            strategy,
            targets,
            weights,
        });
    }
    Ok(routes)
}

const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// Checks a log filter in the `RUST_LOG` shape: a level, or `target=level` directives separated
/// by commas. The logging back-end parses it again; checking here lets a bad value be rejected
/// with the key named, on start-up and on reload alike.
pub fn validate_log_filter(filter: &str) -> Result<(), String> {
    if filter.is_empty() {
        return Err("the filter is empty".to_string());
    }
    for directive in filter.split(',').map(str::trim) {
        if directive.is_empty() {
            continue;
        }
        let level = match directive.rsplit_once('=') {
            Some((target, level)) => {
                let target_ok = !target.is_empty()
                    && target
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-'));
                if !target_ok {
                    return Err(format!("`{target}` is not a module path"));
                }
                level
            }
            None => directive,
        };
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            // A bare word may also be a target alone (`hearth_server` means trace for it),
            // but that is rarely meant: insist on a level so typos like `inf` are caught.
            return Err(format!("`{level}` is not a log level"));
        }
    }
    Ok(())
}

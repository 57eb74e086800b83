//! A plugin's manifest (`plugin.toml`): who it is, what it may touch and the limits it runs
//! under. Parsed strictly (unknown keys refused) and validated before anything is compiled.

use serde::Deserialize;

use crate::PluginError;

/// The most memory any plugin may ask for.
pub const MAX_MEMORY_MIB: u64 = 1024;
/// The longest wall time any plugin call may ask for.
pub const MAX_TIMEOUT_MS: u64 = 300_000;
/// The most instances of one plugin that may run at once.
pub const MAX_INSTANCES: u32 = 256;

/// A validated manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub description: String,
    pub capabilities: Capabilities,
    pub limits: Limits,
    /// The JSON schema its configuration must match (`None`: any JSON object).
    pub config_schema: Option<serde_json::Value>,
}

/// What the plugin may touch beyond its own memory. Everything not listed is denied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// A key-value store of its own (per tenant).
    pub kv: bool,
    /// Topic patterns it may publish to.
    pub publish: Vec<String>,
    /// Topic patterns its event handler consumes.
    pub subscribe: Vec<String>,
    /// Origins (`scheme://host:port`, the port written out) it may send HTTP requests to.
    pub http: Vec<String>,
    /// Memory collections (names, or prefixes ending in `*`) it may search and read, in the
    /// calling tenant.
    pub memory_read: Vec<String>,
    /// Memory collections it may write (and read).
    pub memory_write: Vec<String>,
    /// Names of the secrets it may read.
    pub secrets: Vec<String>,
    /// The models (as `/v1/models` names them) it may chat with or embed with.
    pub models: Vec<String>,
}

impl Capabilities {
    /// Whether the plugin may read collection `name`.
    pub fn reads_collection(&self, name: &str) -> bool {
        self.writes_collection(name)
            || self
                .memory_read
                .iter()
                .any(|pattern| collection_matches(pattern, name))
    }

    /// Whether the plugin may write collection `name`.
    pub fn writes_collection(&self, name: &str) -> bool {
        self.memory_write
            .iter()
            .any(|pattern| collection_matches(pattern, name))
    }
}

/// A collection pattern: a name, or a prefix ending in `*` (`*` alone: every collection).
fn collection_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// A secret's name: 1–64 letters, digits and `_` (environment variable style).
pub fn valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

/// The hard limits of each call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most linear memory one instance may grow to.
    pub memory_bytes: u64,
    /// Wall time of one call, time in host calls included.
    pub timeout_ms: u64,
    /// Instances running at once; further calls wait for one (within their timeout).
    pub max_instances: u32,
    /// Calls stopped in a row (by a limit or a trap) before the plugin is disabled.
    pub failures_to_disable: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 32 << 20,
            timeout_ms: 1_000,
            max_instances: 8,
            failures_to_disable: 5,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    version: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    capabilities: RawCapabilities,
    #[serde(default)]
    limits: RawLimits,
    config_schema: Option<toml::Table>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCapabilities {
    #[serde(default)]
    kv: bool,
    #[serde(default)]
    publish: Vec<String>,
    #[serde(default)]
    subscribe: Vec<String>,
    #[serde(default)]
    http: Vec<String>,
    #[serde(default)]
    memory_read: Vec<String>,
    #[serde(default)]
    memory_write: Vec<String>,
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default)]
    models: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory_mib: Option<u64>,
    timeout_ms: Option<u64>,
    max_instances: Option<u32>,
    failures_to_disable: Option<u32>,
}

fn invalid(field: &str, message: impl Into<String>) -> PluginError {
    PluginError::InvalidManifest {
        field: field.to_string(),
        message: message.into(),
    }
}

/// The longest plugin name (its event consumers are named `_plugin_<name>`, at most 64).
pub const MAX_NAME_BYTES: usize = 48;

/// A plugin name: 1–48 lowercase letters, digits, `-` and `_`, starting with a letter.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(first) if first.is_ascii_lowercase())
        && name.len() <= MAX_NAME_BYTES
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A version: dot-separated numbers with an optional `-suffix` (semver's shape, loosely).
fn valid_version(version: &str) -> bool {
    let core = version.split_once('-').map_or(version, |(core, _)| core);
    !version.is_empty()
        && version.len() <= 64
        && core
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()))
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
}

/// The origin of a URL as `scheme://host:port` (the port always written), for comparing a
/// request's URL with the allowed ones; an allowed origin has no path, query or credentials.
pub fn origin_of(url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url).map_err(|error| format!("not a URL: {error}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("an origin is http or https".into());
    }
    let host = parsed.host_str().ok_or("an origin names a host")?;
    let port = parsed
        .port_or_known_default()
        .ok_or("an origin has a port")?;
    Ok(format!("{}://{host}:{port}", parsed.scheme()))
}

impl Manifest {
    /// Parses and validates a manifest's TOML text.
    /// Checks a configuration against the schema: a JSON object, and what the schema asks.
    pub fn check_config(&self, config: &serde_json::Value) -> Result<(), PluginError> {
        let invalid_config = |message: String| PluginError::InvalidArguments {
            field: "config".into(),
            message,
        };
        if !config.is_object() {
            return Err(invalid_config("a configuration is a JSON object".into()));
        }
        if let Some(schema) = &self.config_schema {
            let validator = jsonschema::validator_for(schema)
                .map_err(|error| invalid_config(format!("the schema does not compile: {error}")))?;
            if let Some(error) = validator.iter_errors(config).next() {
                let at = error.instance_path().to_string();
                let at = if at.is_empty() {
                    String::new()
                } else {
                    format!(" at {at}")
                };
                return Err(invalid_config(format!(
                    "the configuration does not match {}'s config_schema{at}: {error}",
                    self.name
                )));
            }
        }
        Ok(())
    }

    pub fn parse(text: &str) -> Result<Manifest, PluginError> {
        let raw: RawManifest = toml::from_str(text).map_err(|error| {
            invalid(
                "manifest",
                format!("not a valid plugin manifest: {}", error.message()),
            )
        })?;
        if !valid_name(&raw.name) {
            return Err(invalid(
                "name",
                "a plugin name is 1-48 lowercase letters, digits, '-' and '_', starting with a letter",
            ));
        }
        if !valid_version(&raw.version) {
            return Err(invalid(
                "version",
                "a version looks like 1.2.0 or 1.2.0-beta.1",
            ));
        }
        if raw.description.len() > 1_000 {
            return Err(invalid(
                "description",
                "a description is at most 1000 bytes",
            ));
        }
        for (field, patterns) in [
            ("capabilities.publish", &raw.capabilities.publish),
            ("capabilities.subscribe", &raw.capabilities.subscribe),
        ] {
            for pattern in patterns {
                hearth_events::Pattern::parse(pattern).map_err(|error| {
                    invalid(
                        field,
                        format!("{pattern:?} is not a topic pattern: {error}"),
                    )
                })?;
            }
        }
        let mut http = Vec::with_capacity(raw.capabilities.http.len());
        for origin in &raw.capabilities.http {
            http.push(origin_of(origin).map_err(|message| {
                invalid("capabilities.http", format!("{origin:?}: {message}"))
            })?);
        }
        for (field, patterns) in [
            ("capabilities.memory_read", &raw.capabilities.memory_read),
            ("capabilities.memory_write", &raw.capabilities.memory_write),
        ] {
            for pattern in patterns {
                let name = pattern.strip_suffix('*').unwrap_or(pattern);
                let ok =
                    name.len() <= 64 && !name.contains('*') && (!name.is_empty() || pattern == "*");
                if !ok {
                    return Err(invalid(
                        field,
                        format!("{pattern:?} is not a collection name or a prefix ending in `*`"),
                    ));
                }
            }
        }
        for name in &raw.capabilities.secrets {
            if !valid_secret_name(name) {
                return Err(invalid(
                    "capabilities.secrets",
                    format!("{name:?} is not a secret name: 1 to 64 letters, digits and `_`"),
                ));
            }
        }
        for model in &raw.capabilities.models {
            if model.is_empty() || model.len() > 256 || model.contains(char::is_whitespace) {
                return Err(invalid(
                    "capabilities.models",
                    format!("{model:?} is not a model name (such as gemma3:270m)"),
                ));
            }
        }
        let defaults = Limits::default();
        let memory_mib = raw.limits.memory_mib.unwrap_or(defaults.memory_bytes >> 20);
        if !(1..=MAX_MEMORY_MIB).contains(&memory_mib) {
            return Err(invalid(
                "limits.memory_mib",
                format!("memory is 1 to {MAX_MEMORY_MIB} MiB"),
            ));
        }
        let timeout_ms = raw.limits.timeout_ms.unwrap_or(defaults.timeout_ms);
        if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(invalid(
                "limits.timeout_ms",
                format!("a call's timeout is 1 to {MAX_TIMEOUT_MS} ms"),
            ));
        }
        let max_instances = raw.limits.max_instances.unwrap_or(defaults.max_instances);
        if !(1..=MAX_INSTANCES).contains(&max_instances) {
            return Err(invalid(
                "limits.max_instances",
                format!("instances are 1 to {MAX_INSTANCES}"),
            ));
        }
        let failures_to_disable = raw
            .limits
            .failures_to_disable
            .unwrap_or(defaults.failures_to_disable);
        if failures_to_disable == 0 {
            return Err(invalid("limits.failures_to_disable", "must be at least 1"));
        }
        let config_schema = match raw.config_schema {
            None => None,
            Some(table) => {
                let schema = serde_json::to_value(table)
                    .map_err(|error| invalid("config_schema", error.to_string()))?;
                jsonschema::validator_for(&schema).map_err(|error| {
                    invalid("config_schema", format!("not a JSON schema: {error}"))
                })?;
                Some(schema)
            }
        };
        Ok(Manifest {
            config_schema,
            name: raw.name,
            version: raw.version,
            description: raw.description,
            capabilities: Capabilities {
                kv: raw.capabilities.kv,
                publish: raw.capabilities.publish,
                subscribe: raw.capabilities.subscribe,
                http,
                memory_read: raw.capabilities.memory_read,
                memory_write: raw.capabilities.memory_write,
                secrets: raw.capabilities.secrets,
                models: raw.capabilities.models,
            },
            limits: Limits {
                memory_bytes: memory_mib << 20,
                timeout_ms,
                max_instances,
                failures_to_disable,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(text: &str) -> String {
        match Manifest::parse(text) {
            Err(PluginError::InvalidManifest { field, .. }) => field,
            other => panic!("expected an invalid manifest, got {other:?}"),
        }
    }

    #[test]
    fn a_minimal_manifest_gets_the_default_limits_and_no_capabilities() {
        let manifest = Manifest::parse("name = \"echo\"\nversion = \"0.1.0\"").unwrap();
        assert_eq!(manifest.capabilities, Capabilities::default());
        assert_eq!(manifest.limits, Limits::default());
    }

    #[test]
    fn a_full_manifest_reads_every_key() {
        let manifest = Manifest::parse(
            r#"
            name = "relay"
            version = "1.2.0-beta.1"
            description = "Totals orders."
            [capabilities]
            kv = true
            publish = ["orders.totals"]
            subscribe = ["orders.*"]
            [limits]
            memory_mib = 8
            timeout_ms = 250
            max_instances = 2
            failures_to_disable = 3
            "#,
        )
        .unwrap();
        assert!(manifest.capabilities.kv);
        assert_eq!(manifest.capabilities.subscribe, ["orders.*"]);
        assert_eq!(manifest.limits.memory_bytes, 8 << 20);
        assert_eq!(manifest.limits.timeout_ms, 250);
        assert_eq!(manifest.limits.max_instances, 2);
        assert_eq!(manifest.limits.failures_to_disable, 3);
    }

    #[test]
    fn bad_manifests_name_the_field_at_fault() {
        let base = "version = \"0.1.0\"\n";
        assert_eq!(field_of(&format!("name = \"Echo\"\n{base}")), "name");
        assert_eq!(field_of(&format!("name = \"9lives\"\n{base}")), "name");
        assert_eq!(field_of("name = \"echo\"\nversion = \"one\""), "version");
        assert_eq!(
            field_of(&format!("name = \"echo\"\n{base}sockets = true")),
            "manifest"
        );
        assert_eq!(
            field_of(&format!(
                "name = \"echo\"\n{base}[capabilities]\nfiles = [\"/\"]"
            )),
            "manifest"
        );
        assert_eq!(
            field_of(&format!(
                "name = \"echo\"\n{base}[capabilities]\npublish = [\"a..b\"]"
            )),
            "capabilities.publish"
        );
        assert_eq!(
            field_of(&format!(
                "name = \"echo\"\n{base}[limits]\nmemory_mib = 4096"
            )),
            "limits.memory_mib"
        );
        assert_eq!(
            field_of(&format!("name = \"echo\"\n{base}[limits]\ntimeout_ms = 0")),
            "limits.timeout_ms"
        );
        assert_eq!(
            field_of(&format!(
                "name = \"echo\"\n{base}[limits]\nmax_instances = 0"
            )),
            "limits.max_instances"
        );
    }
}

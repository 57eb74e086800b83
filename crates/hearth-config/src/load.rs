//! Layering: embedded defaults, then the TOML file, then `HEARTH_*` environment variables, then
//! command-line flags. Each layer is checked against the schema on its own, so an error names
//! the layer the bad value came from; the merged values are then validated into a [`Config`].

use std::fmt;
use std::path::{Path, PathBuf};

use toml::Value;

use crate::error::ConfigError;
use crate::model::{Config, Profile};
use crate::schema::{self, KeySpec, Kind, SCHEMA};

/// `HEARTH_*` variables that are not config keys but are ours: the config file's path (read by
/// the CLI), the sample-model cache and the Python clients' virtualenv (the set-up scripts and
/// tests), and where the benchmark builds its llama-server peer (`cargo xtask bench`). A test checks that every
/// `HEARTH_*` name in `scripts/` and `xtask/` is here or a config key.
pub const RESERVED_ENV_VARS: &[&str] = &[
    "HEARTH_CONFIG",
    "HEARTH_MODEL_CACHE",
    "HEARTH_VENV",
    "HEARTH_BENCH_LLAMA_SERVER_DIR",
];

/// Something in the sources that does not stop the load but that the user should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigWarning {
    /// A `HEARTH_*` environment variable that is neither a config key nor one of ours. Other
    /// tools share the prefix, so it is ignored, not refused; a near miss names the key.
    UnknownEnvVar {
        name: String,
        suggestion: Option<String>,
    },
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigWarning::UnknownEnvVar { name, suggestion } => {
                write!(
                    formatter,
                    "environment variable {name} is not a Hearth setting and is ignored"
                )?;
                match suggestion {
                    Some(closest) => write!(formatter, "; did you mean {closest}?"),
                    None => write!(
                        formatter,
                        "; `hearth config check` lists the settings and their variables"
                    ),
                }
            }
        }
    }
}

/// Where a value came from, shown next to it by `hearth config check` and in every error.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(String),
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => write!(formatter, "default"),
            Origin::File(path) => write!(formatter, "file {}", path.display()),
            Origin::Env(name) => write!(formatter, "env {name}"),
            Origin::Flag(name) => write!(formatter, "flag {name}"),
        }
    }
}

/// Everything a load reads. The caller gathers it so that loading is a pure function of its
/// inputs (and the file's contents), which keeps tests free of process-global state.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub file: Option<PathBuf>,
    /// The process environment; only `HEARTH_*`, `RUST_LOG`, `XDG_DATA_HOME` and `HOME` are read.
    pub env: Vec<(String, String)>,
    /// Flag overrides as (config key, text value, flag name such as `--listen`).
    pub flags: Vec<(&'static str, String, String)>,
}

/// One key's effective value.
#[derive(Debug, Clone)]
pub struct EffectiveValue {
    pub spec: &'static KeySpec,
    pub value: Value,
    pub origin: Origin,
}

/// The validated config together with where each value came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    /// In schema order; keys left unset are absent.
    pub values: Vec<EffectiveValue>,
    /// What was ignored, for the caller to tell the user.
    pub warnings: Vec<ConfigWarning>,
}

impl LoadedConfig {
    pub fn value(&self, key: &str) -> Option<&EffectiveValue> {
        self.values.iter().find(|value| value.spec.key == key)
    }
}

/// The environment variable that sets a key: `server.listen` → `HEARTH_SERVER_LISTEN`.
pub fn env_var_name(key: &str) -> String {
    format!("HEARTH_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// Loads, layers and validates the configuration.
pub fn load(sources: &Sources) -> Result<LoadedConfig, ConfigError> {
    let file_layer = match &sources.file {
        Some(path) => file_layer(path)?,
        None => Vec::new(),
    };
    let (env_layer, warnings) = env_layer(&sources.env)?;
    let mut flag_layer = Vec::new();
    for (key, text, flag) in &sources.flags {
        let spec = schema::spec(key).ok_or_else(|| ConfigError::UnknownKey {
            key: key.to_string(),
            origin: Origin::Flag(flag.clone()),
            suggestion: None,
        })?;
        let origin = Origin::Flag(flag.clone());
        flag_layer.push((spec, parse_text(spec, text, &origin)?, origin));
    }

    let layers = [file_layer, env_layer, flag_layer];
    let profile = layers
        .iter()
        .rev()
        .flat_map(|layer| layer.iter().rev())
        .find(|(spec, _, _)| spec.key == "profile")
        .and_then(|(_, value, _)| value.as_str())
        .map(|name| Profile::parse(name).unwrap_or_default())
        .unwrap_or_default();

    let mut values: Vec<EffectiveValue> = Vec::new();
    for spec in SCHEMA {
        let default = if spec.key == "data_dir" {
            default_data_dir(&sources.env).map(|dir| Value::String(dir.display().to_string()))
        } else {
            (spec.default)(profile)
        };
        if let Some(value) = default {
            values.push(EffectiveValue {
                spec,
                value,
                origin: Origin::Default,
            });
        }
    }
    for (spec, value, origin) in layers.into_iter().flatten() {
        let effective = EffectiveValue {
            spec,
            value,
            origin,
        };
        match values
            .iter_mut()
            .find(|existing| existing.spec.key == spec.key)
        {
            Some(existing) => *existing = effective,
            None => values.push(effective),
        }
    }
    values.sort_by_key(|value| SCHEMA.iter().position(|spec| spec.key == value.spec.key));

    let config = Config::from_values(&values)?;
    Ok(LoadedConfig {
        config,
        values,
        warnings,
    })
}

type Layer = Vec<(&'static KeySpec, Value, Origin)>;

fn file_layer(path: &Path) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|error| ConfigError::Syntax {
        path: path.to_path_buf(),
        message: error.to_string().trim_end().to_string(),
    })?;
    let origin = Origin::File(path.to_path_buf());
    let mut layer = Vec::new();
    flatten(&table, "", &origin, &mut layer)?;
    Ok(layer)
}

fn flatten(
    table: &toml::Table,
    prefix: &str,
    origin: &Origin,
    layer: &mut Layer,
) -> Result<(), ConfigError> {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        if let Some(spec) = schema::spec(&key) {
            layer.push((spec, check_value(spec, value, origin)?, origin.clone()));
            continue;
        }
        let is_section = SCHEMA
            .iter()
            .any(|spec| spec.key.starts_with(&format!("{key}.")));
        match (is_section, value) {
            (true, Value::Table(inner)) => flatten(inner, &key, origin, layer)?,
            (true, other) => {
                return Err(ConfigError::InvalidValue {
                    key,
                    value: other.to_string(),
                    origin: origin.clone(),
                    expected: "a table of settings (a [section] in TOML)".to_string(),
                });
            }
            (false, _) => {
                return Err(ConfigError::UnknownKey {
                    suggestion: schema::closest_key(&key).map(str::to_string),
                    key,
                    origin: origin.clone(),
                });
            }
        }
    }
    Ok(())
}

fn env_layer(env: &[(String, String)]) -> Result<(Layer, Vec<ConfigWarning>), ConfigError> {
    let mut warnings = Vec::new();
    let mut layer = Vec::new();
    // RUST_LOG is the convention every Rust user knows; HEARTH_LOG_LEVEL, later in the layer,
    // wins over it when both are set.
    if let Some((_, text)) = env.iter().find(|(name, _)| name == "RUST_LOG") {
        let spec = schema::spec("log.level").expect("log.level is in the schema");
        let origin = Origin::Env("RUST_LOG".to_string());
        layer.push((spec, parse_text(spec, text, &origin)?, origin));
    }
    for (name, text) in env {
        if !name.starts_with("HEARTH_") || RESERVED_ENV_VARS.contains(&name.as_str()) {
            continue;
        }
        let origin = Origin::Env(name.clone());
        let Some(spec) = SCHEMA.iter().find(|spec| env_var_name(spec.key) == *name) else {
            warnings.push(ConfigWarning::UnknownEnvVar {
                name: name.clone(),
                suggestion: schema::closest(name, SCHEMA.iter().map(|spec| env_var_name(spec.key))),
            });
            continue;
        };
        layer.push((spec, parse_text(spec, text, &origin)?, origin));
    }
    Ok((layer, warnings))
}

fn default_data_dir(env: &[(String, String)]) -> Option<PathBuf> {
    let get = |wanted: &str| {
        env.iter()
            .find(|(name, value)| name == wanted && !value.is_empty())
            .map(|(_, value)| PathBuf::from(value))
    };
    get("XDG_DATA_HOME")
        .or_else(|| get("HOME").map(|home| home.join(".local").join("share")))
        .map(|base| base.join("hearth"))
}

/// Checks a value from the TOML file against the key's kind.
fn check_value(spec: &KeySpec, value: &Value, origin: &Origin) -> Result<Value, ConfigError> {
    let invalid = || ConfigError::InvalidValue {
        key: spec.key.to_string(),
        value: value.to_string(),
        origin: origin.clone(),
        expected: spec.kind.expected(),
    };
    match (spec.kind, value) {
        (Kind::String, Value::String(_)) | (Kind::Bool, Value::Boolean(_)) => Ok(value.clone()),
        (Kind::Integer { min, max }, Value::Integer(number)) if (min..=max).contains(number) => {
            Ok(value.clone())
        }
        (Kind::Float { min, max }, Value::Float(number)) if (min..=max).contains(number) => {
            Ok(value.clone())
        }
        (Kind::Float { min, max }, Value::Integer(number))
            if (min..=max).contains(&(*number as f64)) =>
        {
            Ok(Value::Float(*number as f64))
        }
        (Kind::StringList, Value::Array(items)) if items.iter().all(Value::is_str) => {
            Ok(value.clone())
        }
        (Kind::OneOf(options), Value::String(text)) if options.contains(&text.as_str()) => {
            Ok(value.clone())
        }
        (Kind::Tables(fields), Value::Array(items)) => {
            for (index, item) in items.iter().enumerate() {
                check_table(spec.key, index, fields, item, origin)?;
            }
            Ok(value.clone())
        }
        _ => Err(invalid()),
    }
}

/// Checks one table of an array of tables; errors name the field as `key[index].field`.
fn check_table(
    key: &str,
    index: usize,
    fields: &[crate::schema::Field],
    item: &Value,
    origin: &Origin,
) -> Result<(), ConfigError> {
    use crate::schema::FieldKind;
    let Value::Table(table) = item else {
        return Err(ConfigError::InvalidValue {
            key: format!("{key}[{index}]"),
            value: item.to_string(),
            origin: origin.clone(),
            expected: "a table".to_string(),
        });
    };
    for (name, value) in table {
        let Some(field) = fields.iter().find(|field| field.name == name) else {
            return Err(ConfigError::UnknownKey {
                key: format!("{key}[{index}].{name}"),
                origin: origin.clone(),
                suggestion: crate::schema::closest(
                    name,
                    fields.iter().map(|field| field.name.to_string()),
                )
                .map(|close| format!("{key}[{index}].{close}")),
            });
        };
        let in_range = |number: &i64, min: i64, max: i64| (min..=max).contains(number);
        let valid = match (field.kind, value) {
            (FieldKind::String, Value::String(_)) => true,
            (FieldKind::Integer { min, max }, Value::Integer(number)) => in_range(number, min, max),
            (FieldKind::StringList, Value::Array(items)) => items.iter().all(Value::is_str),
            (FieldKind::IntegerList { min, max }, Value::Array(items)) => {
                items.iter().all(|item| {
                    item.as_integer()
                        .is_some_and(|number| in_range(&number, min, max))
                })
            }
            (FieldKind::OneOf(options), Value::String(text)) => options.contains(&text.as_str()),
            (FieldKind::Bool, Value::Boolean(_)) | (FieldKind::Any, _) => true,
            (FieldKind::Float { min, max }, Value::Float(number)) => (min..=max).contains(number),
            (FieldKind::Float { min, max }, Value::Integer(number)) => {
                (min..=max).contains(&(*number as f64))
            }
            _ => false,
        };
        if !valid {
            return Err(ConfigError::InvalidValue {
                key: format!("{key}[{index}].{name}"),
                value: value.to_string(),
                origin: origin.clone(),
                expected: field.kind.expected(),
            });
        }
    }
    if let Some(missing) = fields
        .iter()
        .find(|field| field.required && !table.contains_key(field.name))
    {
        return Err(ConfigError::InvalidValue {
            key: format!("{key}[{index}].{}", missing.name),
            value: "(missing)".to_string(),
            origin: origin.clone(),
            expected: missing.kind.expected(),
        });
    }
    Ok(())
}

/// Parses a value given as text (env var or flag) according to the key's kind.
fn parse_text(spec: &KeySpec, text: &str, origin: &Origin) -> Result<Value, ConfigError> {
    let invalid = || ConfigError::InvalidValue {
        key: spec.key.to_string(),
        value: format!("{text:?}"),
        origin: origin.clone(),
        expected: spec.kind.expected(),
    };
    let trimmed = text.trim();
    let value = match spec.kind {
        Kind::String => Value::String(text.to_string()),
        Kind::Bool => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Value::Boolean(true),
            "false" | "0" | "no" | "off" => Value::Boolean(false),
            _ => return Err(invalid()),
        },
        Kind::Integer { .. } => {
            Value::Integer(trimmed.replace('_', "").parse().map_err(|_| invalid())?)
        }
        Kind::Float { .. } => Value::Float(trimmed.parse().map_err(|_| invalid())?),
        Kind::StringList => Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_string()))
                .collect(),
        ),
        Kind::OneOf(_) => Value::String(trimmed.to_string()),
        // An inline TOML array of tables: [{ name = "primary", base_url = "..." }].
        Kind::Tables(_) => toml::from_str::<toml::Table>(&format!("value = {trimmed}"))
            .ok()
            .and_then(|mut table| table.remove("value"))
            .ok_or_else(invalid)?,
    };
    check_value(spec, &value, origin).map_err(|_| invalid())
}

//! Errors from loading and validating configuration. Each names the key, the offending value,
//! where the value came from and what is allowed, because the reader has to fix it by hand.

use std::path::PathBuf;

use crate::load::Origin;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },

    #[error("unknown config key `{key}` (from {origin}){}", suggestion_text(.suggestion))]
    UnknownKey {
        key: String,
        origin: Origin,
        suggestion: Option<String>,
    },

    #[error("invalid value for `{key}`: {value} (from {origin}); expected {expected}")]
    InvalidValue {
        key: String,
        value: String,
        origin: Origin,
        expected: String,
    },
}

impl ConfigError {
    /// The config key at fault, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. } | ConfigError::InvalidValue { key, .. } => {
                Some(key)
            }
            ConfigError::Read { .. } | ConfigError::Syntax { .. } => None,
        }
    }
}

fn suggestion_text(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(key) => format!("; did you mean `{key}`?"),
        None => "; run `hearth config check` to list the valid keys".to_string(),
    }
}

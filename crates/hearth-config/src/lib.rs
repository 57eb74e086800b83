//! Hearth's configuration.
//!
//! One schema ([`schema::SCHEMA`]) names every key, its type, its default per profile, whether it
//! is a secret and whether it may change at runtime. Loading layers embedded defaults, a TOML
//! file, `HEARTH_*` environment variables and command-line flags (later wins), rejects unknown
//! keys in the file and flags (an unknown `HEARTH_*` variable is only a warning: other tools
//! share the prefix) and bad values with an error that names the key, the value, where it came
//! from and what is allowed, and then validates the result into [`Config`]. Start-up and hot reload share
//! [`load`], so a reload can never accept what start-up would refuse.
//!
//! This crate knows nothing of HTTP, logging back-ends or the file system beyond reading the
//! one config file it is given.

mod error;
mod load;
mod model;
mod render;
pub mod schema;

pub use error::ConfigError;
pub use load::{
    ConfigWarning, LoadedConfig, Origin, RESERVED_ENV_VARS, Sources, env_var_name, load,
};
pub use model::{
    AuthConfig, AuthMode, CacheConfig, Config, EventsConfig, FlagConfig, IntegrityCheck,
    JobActionConfig, JobConfig, LimitsConfig, LogConfig, LogFormat, MemoryConfig, ModelsConfig,
    OidcConfig, PluginsConfig, PriceConfig, Profile, ReloadConfig, RouteConfig, RouteStrategy,
    RouteTarget, RoutingConfig, SchedulerConfig, ServerConfig, StorageConfig, TelemetryConfig,
    UpstreamConfig, validate_log_filter,
};
pub use render::ReloadDiff;

/// The port Hearth listens on by default: "HEAR" on a phone keypad. It is neither Ollama's
/// 11434 nor llama.cpp's 8080, so Hearth runs beside both.
pub const DEFAULT_PORT: u16 = 4327;

#[cfg(test)]
mod tests;

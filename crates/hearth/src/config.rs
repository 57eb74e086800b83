//! Gathering the config sources (file, environment, flags) from the process.

use std::path::PathBuf;

use hearth_config::{LoadedConfig, Sources};

use crate::cli::GlobalOptions;

/// The sources a load reads. Kept for the life of the process: a reload re-reads the file with
/// the same environment and flags as start-up.
pub fn sources(global: &GlobalOptions, listen: Option<&str>) -> Sources {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let file = global.config.clone().or_else(|| default_config_file(&env));
    let mut flags = Vec::new();
    if let Some(dir) = &global.data_dir {
        flags.push((
            "data_dir",
            dir.display().to_string(),
            "--data-dir".to_string(),
        ));
    }
    if let Some(profile) = &global.profile {
        flags.push(("profile", profile.clone(), "--profile".to_string()));
    }
    if let Some(level) = &global.log_level {
        flags.push(("log.level", level.clone(), "--log-level".to_string()));
    }
    if let Some(listen) = listen {
        flags.push(("server.listen", listen.to_string(), "--listen".to_string()));
    }
    Sources { file, env, flags }
}

/// `$XDG_CONFIG_HOME/hearth/config.toml` (or `~/.config/...`), used only when it exists.
fn default_config_file(env: &[(String, String)]) -> Option<PathBuf> {
    let get = |wanted: &str| {
        env.iter()
            .find(|(name, value)| name == wanted && !value.is_empty())
            .map(|(_, value)| PathBuf::from(value))
    };
    let base = get("XDG_CONFIG_HOME").or_else(|| get("HOME").map(|home| home.join(".config")))?;
    let path = base.join("hearth").join("config.toml");
    path.is_file().then_some(path)
}

/// Loads the config for a command, telling the user on stderr what it ignored.
pub fn load(sources: &Sources) -> anyhow::Result<LoadedConfig> {
    let loaded = load_quietly(sources)?;
    for warning in &loaded.warnings {
        eprintln!("hearth: warning: {warning}");
    }
    Ok(loaded)
}

/// Loads the config and leaves its warnings to the caller (`serve` logs them once logging is
/// installed).
pub fn load_quietly(sources: &Sources) -> anyhow::Result<LoadedConfig> {
    hearth_config::load(sources).map_err(|error| anyhow::anyhow!("invalid configuration: {error}"))
}

//! The command line: global options every subcommand accepts, and the subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Hearth: local models with OpenAI- and Ollama-compatible APIs, a gateway, memory, events and
/// plugins, in one binary.
#[derive(Debug, Parser)]
#[command(name = "hearth", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,

    #[command(subcommand)]
    pub command: Command,
}

/// Options that every subcommand accepts. They override the config file and `HEARTH_*`
/// environment variables.
#[derive(Debug, Clone, Args)]
pub struct GlobalOptions {
    /// Config file (TOML). Default: $XDG_CONFIG_HOME/hearth/config.toml when it exists.
    #[arg(long, global = true, env = "HEARTH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Data directory for the database, models and backups. Default: $XDG_DATA_HOME/hearth.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Set of defaults to start from.
    #[arg(long, global = true, value_parser = ["dev", "prod"])]
    pub profile: Option<String>,

    /// Log filter, e.g. `debug` or `info,hearth_server=debug` (overrides log.level).
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage the database schema.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Download or register a model: an http(s) URL, hf:owner/repo/path/file.gguf[@revision],
    /// a local GGUF file, or a local safetensors embedding-model directory.
    Pull(PullArgs),
    /// List, inspect, copy, remove and roll back registered models.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Print the version.
    Version,
    /// Print a shell completion script, e.g. `hearth completions bash > /etc/bash_completion.d/hearth`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:4327 (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print the effective values with their origins
    /// (secrets masked). Exits non-zero when the configuration is invalid.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// List migrations and whether each is applied.
    Status,
    /// Apply pending migrations, all or up to and including --to.
    Up {
        #[arg(long, value_name = "VERSION")]
        to: Option<i64>,
    },
    /// Revert migrations: the newest one, or all newer than --to (0 reverts everything).
    Down {
        #[arg(long, value_name = "VERSION")]
        to: Option<i64>,
    },
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// What to pull: URL, hf:owner/repo/path/file.gguf[@revision], or a path.
    #[arg(value_name = "URL|hf:...|PATH")]
    pub source: String,

    /// Register under this name (default: the file name, lowercased, tag `latest`).
    #[arg(long, value_name = "NAME:TAG")]
    pub name: Option<String>,

    /// Expected sha256 of the file; a mismatch discards the download and registers nothing.
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,

    /// Copy a local model into the data directory instead of registering it where it lies.
    #[arg(long)]
    pub copy: bool,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List registered models.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one model's metadata and versions.
    Show {
        #[arg(value_name = "NAME[:TAG]")]
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove a model with all its versions; blobs nothing else uses are deleted.
    Rm {
        #[arg(value_name = "NAME[:TAG]")]
        name: String,
    },
    /// Give a model a second name pointing at the same file.
    Cp {
        #[arg(value_name = "SOURCE")]
        source: String,
        #[arg(value_name = "DESTINATION")]
        destination: String,
    },
    /// Drop the current version and restore the previous one.
    Rollback {
        #[arg(value_name = "NAME[:TAG]")]
        name: String,
    },
}

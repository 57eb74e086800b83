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
    /// Make, list, rotate and revoke API keys (and the tenants they belong to).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Make, list and delete the users of a tenant, whom keys are issued to.
    #[command(subcommand)]
    Users(UsersCommand),
    /// A running server's collections: list, make, delete, import JSON Lines, export.
    #[command(subcommand)]
    Collections(CollectionsCommand),
    /// A running server's knowledge graphs: list, make, delete, import JSON Lines, neighbours.
    #[command(subcommand)]
    Graphs(GraphsCommand),
    /// A running server's conversation memory of one user: export or delete it.
    #[command(subcommand)]
    Memories(MemoriesCommand),
    /// A running server's events: publish one, or print those of topics live.
    #[command(subcommand)]
    Events(EventsCommand),
    /// A running server's WebAssembly plugins: install, upgrade, roll back, enable, disable,
    /// remove, read logs, call a tool.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// A running server's jobs: list, show, define, remove, run one now, read its history.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// A running server's experiments: define, start, pause, ramp, stop with a winner, results.
    #[command(subcommand)]
    Experiments(ExperimentsCommand),
    /// A running server's feature flags: list, show, set, switch on or off, remove, evaluate.
    #[command(subcommand)]
    Flags(FlagsCommand),
    /// A running server's prompt templates: list, show, push a version, move a label, render.
    #[command(subcommand)]
    Prompts(PromptsCommand),
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

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a key and print it (once: only its hash is stored) as the last line of stdout.
    /// Without --tenant the key is an instance admin key, which administers every tenant.
    Create(KeyCreateArgs),
    /// List keys (never their secrets).
    List {
        /// Only this tenant's keys.
        #[arg(long, value_name = "NAME")]
        tenant: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key at once, by id or visible prefix (hk_...).
    Revoke {
        #[arg(value_name = "ID|PREFIX")]
        key: String,
    },
    /// Make a replacement with the same tenant, role and limits; the old key keeps working
    /// for the grace period. Prints the new key as the last line of stdout.
    Rotate {
        #[arg(value_name = "ID|PREFIX")]
        key: String,
        /// How long the old key stays valid, e.g. 24h, 30m, 0s.
        #[arg(long, value_name = "DURATION", default_value = "24h")]
        grace: String,
    },
}

/// Which server the `collections` commands talk to, and as whom.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server's base URL (default: server.listen of the configuration).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// An API key (default: $HEARTH_API_KEY); a server on loopback without keys needs none.
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum CollectionsCommand {
    /// List the collections the key reaches.
    List {
        #[command(flatten)]
        server: ServerArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make a collection: for text the server embeds (default), or with --dimensions for
    /// vectors you supply.
    Create(CollectionCreateArgs),
    /// Delete a collection with its documents and index.
    Delete {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
    },
    /// Import a JSON Lines file, one document per line ({"id", "text", "metadata",
    /// "embedding"}). Documents already stored are skipped, so running it again finishes an
    /// interrupted import; lines without an id get FILE-STEM:LINE.
    Import {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
        #[arg(value_name = "FILE.jsonl")]
        file: std::path::PathBuf,
        /// Documents per request.
        #[arg(long, value_name = "N", default_value_t = 100)]
        batch_size: usize,
    },
    /// Print every document as JSON Lines, embeddings included (what import reads).
    Export {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
    },
}

/// A plugin as `install` and `upgrade` send it.
#[derive(Debug, Args)]
pub struct PluginPackage {
    #[arg(value_name = "plugin.toml")]
    pub manifest: std::path::PathBuf,
    #[arg(value_name = "COMPONENT.wasm")]
    pub component: std::path::PathBuf,
    /// The signature file (default: COMPONENT.wasm.sig when it exists).
    #[arg(long, value_name = "FILE")]
    pub signature: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List the jobs of the key's tenant: when each runs, what it does, its next run.
    List {
        #[command(flatten)]
        server: ServerArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print one job as JSON.
    Show {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
    },
    /// Define a job, or replace the one of that name, from a JSON file in the API's shape
    /// (`{"name": "nightly", "schedule": "0 3 * * *", "action": {"type": "webhook", ...}}`).
    Define {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(value_name = "JOB.json")]
        file: std::path::PathBuf,
    },
    /// Remove a job with its history.
    Remove {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
    },
    /// Run a job now and wait for it to end (exit status 1 unless it succeeded).
    Run {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
        /// JSON given to the action as the run's input.
        #[arg(long, value_name = "JSON")]
        input: Option<String>,
        /// Answer as soon as the run is recorded.
        #[arg(long)]
        no_wait: bool,
    },
    /// A job's runs, newest first: status, why it ran, attempts, when, how long, the error.
    History {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExperimentsCommand {
    /// List the experiments of the key's tenant: target, status, variants.
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Print one experiment as JSON.
    Show {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
    },
    /// Define an experiment (a draft), or replace a draft, from a JSON file in the API's
    /// shape (`{"name": "tone", "target": {"prompt": "support"}, "variants": [...]}`).
    Define {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(value_name = "EXPERIMENT.json")]
        file: std::path::PathBuf,
    },
    /// Start a draft, or resume a paused experiment.
    Start {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
    },
    /// Pause a running experiment.
    Pause {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
    },
    /// New weights for some variants (`hearth experiments ramp tone thorough=50`).
    Ramp {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
        #[arg(value_name = "VARIANT=WEIGHT", required = true)]
        weights: Vec<String>,
    },
    /// Stop an experiment; with --winner, the winner serves its whole target from now.
    Stop {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
        #[arg(long)]
        winner: Option<String>,
    },
    /// The results: per metric and variant the mean, and against the control the
    /// difference, its interval, p-value and always-valid interval.
    Results {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove an experiment with its data.
    Remove {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum FlagsCommand {
    /// List the flags of the key's tenant: type, state, rules, where defined, default.
    List {
        #[command(flatten)]
        server: ServerArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print one flag as JSON.
    Show {
        #[command(flatten)]
        server: ServerArgs,
        key: String,
    },
    /// Define a flag, or replace the one of that key, from a JSON file in the API's shape
    /// (`{"key": "new-checkout", "split": [{"variant": "on", "weight": 10}, ...]}`).
    Set {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(value_name = "FLAG.json")]
        file: std::path::PathBuf,
    },
    /// Switch a flag on (its rules and splits decide again).
    Enable {
        #[command(flatten)]
        server: ServerArgs,
        key: String,
    },
    /// The kill switch: the flag serves its default variant to everyone.
    Disable {
        #[command(flatten)]
        server: ServerArgs,
        key: String,
    },
    /// Remove a flag.
    Remove {
        #[command(flatten)]
        server: ServerArgs,
        key: String,
    },
    /// Evaluate a flag as an application would (over OFREP) and print the answer.
    Eval {
        #[command(flatten)]
        server: ServerArgs,
        key: String,
        /// The evaluation context, a JSON object (`{"targetingKey": "user-1", "plan": "pro"}`).
        #[arg(long, value_name = "JSON")]
        context: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PromptsCommand {
    /// List the prompts of the key's tenant: newest version and labels.
    List {
        #[command(flatten)]
        server: ServerArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a version of a prompt as JSON (the newest, or --version's).
    Show {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
        /// A version number, a label or `latest`.
        #[arg(long, value_name = "VERSION|LABEL")]
        at: Option<String>,
    },
    /// Push a new version from a JSON file in the API's shape (`{"name": "support",
    /// "messages": [{"role": "system", "content": "You are {{ persona }}."}], ...}`). The same
    /// definition as the newest version makes none.
    Push {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(value_name = "PROMPT.json")]
        file: std::path::PathBuf,
        /// Point this label at the version (repeatable), besides the file's `labels`.
        #[arg(long = "label", value_name = "LABEL")]
        labels: Vec<String>,
        /// What changed.
        #[arg(long)]
        note: Option<String>,
    },
    /// Point a label at a version (`hearth prompts label support production 3`).
    Label {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
        label: String,
        #[arg(value_name = "VERSION")]
        number: u32,
    },
    /// Remove a label (the version stays).
    Unlabel {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
        label: String,
    },
    /// Render a version with variables and print the messages.
    Render {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
        /// A version number, a label or `latest` (default: the newest).
        #[arg(long, value_name = "VERSION|LABEL")]
        at: Option<String>,
        /// A string variable, `NAME=VALUE` (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Variables as a JSON object (for values that are not strings).
        #[arg(long, value_name = "JSON")]
        variables: Option<String>,
    },
    /// Remove a prompt with all its versions and labels.
    Remove {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// List the installed plugins with their tools.
    List {
        #[command(flatten)]
        server: ServerArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print one plugin: its manifest, limits, tools and state, as JSON.
    Show {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
    },
    /// Install a plugin from its manifest and its component (built with
    /// `cargo build --target wasm32-wasip2 --release`), with its signature when
    /// `COMPONENT.wasm.sig` exists (or --signature names one).
    Install {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        package: PluginPackage,
    },
    /// Install a new version of a plugin (the manifest names it); calls in flight finish on
    /// the old version, which `rollback` returns to.
    Upgrade {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        package: PluginPackage,
    },
    /// Make a signing key pair: the secret key goes to FILE (readable by you only), the public
    /// key is printed, for the servers' plugins.trusted_keys.
    Keygen {
        #[arg(value_name = "FILE")]
        secret_key: std::path::PathBuf,
    },
    /// Sign a plugin (its manifest and its component) with a secret key from `keygen`; the
    /// signature goes to COMPONENT.wasm.sig, where `install` finds it.
    Sign {
        #[arg(long = "key", value_name = "FILE")]
        secret_key: std::path::PathBuf,
        #[arg(value_name = "plugin.toml")]
        manifest: std::path::PathBuf,
        #[arg(value_name = "COMPONENT.wasm")]
        component: std::path::PathBuf,
    },
    /// Return a plugin to the version before its last upgrade.
    Rollback {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
    },
    /// Enable a plugin (also after its breaker disabled it).
    Enable {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
    },
    /// Set a secret the plugin's manifest declares, reading its value from standard input
    /// (so it stays out of the shell's history), or remove it with --delete.
    Secret {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
        secret: String,
        #[arg(long)]
        delete: bool,
    },
    /// List the secrets a plugin declares and which are set (never their values).
    Secrets {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
    },
    /// Disable a plugin: its tools answer an error until it is enabled.
    Disable {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
    },
    /// Remove a plugin and its key-value store.
    Remove {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
    },
    /// Set a plugin's configuration (a JSON object its manifest's config_schema checks).
    Config {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
        /// The configuration, a JSON object.
        config: String,
    },
    /// Print a plugin's latest log lines.
    Logs {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Call a plugin's tool and print its answer.
    Call {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
        tool: String,
        /// The tool's arguments, a JSON object.
        #[arg(default_value = "{}")]
        arguments: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GraphsCommand {
    /// List the graphs the key reaches.
    List {
        #[command(flatten)]
        server: ServerArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make a graph whose nodes the server embeds (default), or with --dimensions whose
    /// nodes carry their own vectors.
    Create {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
        #[arg(long, value_name = "N")]
        dimensions: Option<u64>,
        /// The embedding model (default: the server's).
        #[arg(long, value_name = "MODEL")]
        model: Option<String>,
    },
    /// Delete a graph with its nodes and relations.
    Delete {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
    },
    /// Import a JSON Lines file: lines `{"node": {"id", "type", "title", "content",
    /// "properties"}}` and `{"relation": {"source", "type", "target", "properties"}}`. Nodes
    /// go first, then relations; upserts, so running it again is harmless.
    Import {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
        #[arg(value_name = "FILE.jsonl")]
        file: std::path::PathBuf,
    },
    /// Print a node's relations and the nodes at their other ends.
    Neighbors {
        #[command(flatten)]
        server: ServerArgs,
        name: String,
        node: String,
        /// out, in or both.
        #[arg(long, default_value = "out")]
        direction: String,
        /// Relation types, comma-separated (default: all).
        #[arg(long, value_name = "TYPES")]
        types: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MemoriesCommand {
    /// Print the user's remembered turns as JSON Lines, oldest first.
    Export {
        #[command(flatten)]
        server: ServerArgs,
        user: String,
    },
    /// Delete every turn remembered for the user.
    Forget {
        #[command(flatten)]
        server: ServerArgs,
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Publish an event; prints what the server stored (its sequence and id).
    Pub {
        #[command(flatten)]
        server: ServerArgs,
        /// `.`-separated tokens, e.g. agent.task.done.
        topic: String,
        /// The event's data, as JSON: '{"task": 7}'.
        data: String,
        /// Publishes with the same key within two minutes are one event.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Print events of topics matching the patterns as JSON Lines until interrupted.
    Sub {
        #[command(flatten)]
        server: ServerArgs,
        /// Comma-separated patterns: 'agent.*,emotion.>'.
        patterns: String,
        /// Replay kept events from this sequence first.
        #[arg(long, value_name = "SEQ")]
        from_seq: Option<u64>,
        /// Stop after this many events.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// Durable consumers of the key's tenant.
    Consumers {
        #[command(subcommand)]
        command: ListCommand,
    },
    /// Webhook endpoints of the key's tenant.
    Webhooks {
        #[command(subcommand)]
        command: ListCommand,
    },
}

/// A listing, as a table or as JSON.
#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// List them.
    List {
        #[command(flatten)]
        server: ServerArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct CollectionCreateArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    pub name: String,
    /// Dimensions of the vectors you will supply (default: the embedding model's).
    #[arg(long, value_name = "N")]
    pub dimensions: Option<u64>,
    /// The model that embeds text (default: memory.embedding_model of the server).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    #[arg(long, value_parser = ["cosine", "dot", "l2"], default_value = "cosine")]
    pub metric: String,
    /// Keep int8 codes beside the vectors: searches traverse on them and rescore.
    #[arg(long)]
    pub int8: bool,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Make a user of a tenant (the tenant is made when it does not exist yet).
    Create {
        #[arg(long, value_name = "NAME")]
        tenant: String,
        /// A login, an email address or a service name.
        #[arg(value_name = "USER")]
        name: String,
    },
    /// List users.
    List {
        /// Only this tenant's users.
        #[arg(long, value_name = "NAME")]
        tenant: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a user and revoke its keys at once; its usage history stays.
    Delete {
        #[arg(long, value_name = "NAME")]
        tenant: String,
        #[arg(value_name = "USER")]
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct KeyCreateArgs {
    /// The tenant (made when it does not exist yet). Omit for an instance admin key.
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,
    /// The tenant's user the key is for (made when it does not exist yet); usage is then
    /// counted per user too. Needs --tenant.
    #[arg(long, value_name = "NAME", requires = "tenant")]
    pub user: Option<String>,
    #[arg(long, value_parser = ["admin", "member", "reader"], default_value = "member")]
    pub role: String,
    /// A label for listings, e.g. the app that uses the key.
    #[arg(long)]
    pub name: Option<String>,
    /// Requests per minute.
    #[arg(long, value_name = "N")]
    pub rpm: Option<u64>,
    /// Tokens (prompt and completion) per minute.
    #[arg(long, value_name = "N")]
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u64>,
    /// Tokens per day (UTC).
    #[arg(long, value_name = "N")]
    pub tokens_per_day: Option<u64>,
    /// Tokens per month (UTC).
    #[arg(long, value_name = "N")]
    pub tokens_per_month: Option<u64>,
    /// Spending per month (UTC) in US dollars, priced by the [[prices]] table.
    #[arg(long, value_name = "USD")]
    pub budget_usd: Option<f64>,
    /// Lifetime, e.g. 30d, 12h, 90m; default: never expires.
    #[arg(long, value_name = "DURATION")]
    pub expires: Option<String>,
    /// Limit the key to these scopes (repeatable).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
}

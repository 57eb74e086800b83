//! Behaviour of loading: layering, error messages, masking and reload diffs.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::schema::{Kind, SCHEMA};
use crate::{
    ConfigError, ConfigWarning, LogFormat, Origin, RESERVED_ENV_VARS, Sources, env_var_name, load,
};

fn home_env() -> Vec<(String, String)> {
    vec![("HOME".to_string(), "/home/tester".to_string())]
}

fn config_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(text.as_bytes()).expect("write config");
    file
}

fn sources_with_file(file: &tempfile::NamedTempFile) -> Sources {
    Sources {
        file: Some(file.path().to_path_buf()),
        env: home_env(),
        flags: Vec::new(),
    }
}

#[test]
fn defaults_listen_on_loopback_port_4327_with_xdg_data_dir() {
    let loaded = load(&Sources {
        env: home_env(),
        ..Sources::default()
    })
    .expect("defaults load");
    assert_eq!(loaded.config.server.listen.to_string(), "127.0.0.1:4327");
    assert_eq!(
        loaded.config.data_dir,
        PathBuf::from("/home/tester/.local/share/hearth")
    );
    assert_eq!(loaded.config.log.format, LogFormat::Auto);

    let with_xdg = load(&Sources {
        env: vec![("XDG_DATA_HOME".to_string(), "/data".to_string())],
        ..Sources::default()
    })
    .expect("xdg load");
    assert_eq!(with_xdg.config.data_dir, PathBuf::from("/data/hearth"));
}

#[test]
fn unknown_key_in_file_is_named_with_a_suggestion() {
    let file = config_file("[server]\nlisen = \"127.0.0.1:1\"\n");
    let error = load(&sources_with_file(&file)).expect_err("unknown key must fail");
    assert_eq!(error.key(), Some("server.lisen"));
    let message = error.to_string();
    assert!(
        message.contains("did you mean `server.listen`"),
        "{message}"
    );
    assert!(
        message.contains(&file.path().display().to_string()),
        "{message}"
    );
}

#[test]
fn unknown_section_is_an_unknown_key() {
    let file = config_file("[sever]\nlisten = \"127.0.0.1:1\"\n");
    let error = load(&sources_with_file(&file)).expect_err("unknown section must fail");
    assert_eq!(error.key(), Some("sever"));
}

#[test]
fn wrong_types_name_the_key_the_value_and_what_is_allowed() {
    let cases = [
        (
            "[server]\nmax_body_bytes = \"big\"\n",
            "server.max_body_bytes",
            "an integer from",
        ),
        (
            "[server]\ncompression = 1\n",
            "server.compression",
            "true or false",
        ),
        (
            "[server]\nmax_body_bytes = 10\n",
            "server.max_body_bytes",
            "an integer from 1024",
        ),
        (
            "[log]\nformat = \"xml\"\n",
            "log.format",
            "one of auto, pretty, json",
        ),
        (
            "[log]\nlevel = \"loud\"\n",
            "log.level",
            "`loud` is not a log level",
        ),
        (
            "[telemetry]\nsample_ratio = 2.0\n",
            "telemetry.sample_ratio",
            "a number from 0 to 1",
        ),
        ("server = 5\n", "server", "a table of settings"),
        (
            "[server]\ncors_allowed_origins = [\"example.com\"]\n",
            "server.cors_allowed_origins",
            "scheme and host",
        ),
        (
            "[telemetry]\notlp_endpoint = \"collector:4318\"\n",
            "telemetry.otlp_endpoint",
            "http://",
        ),
    ];
    for (text, key, expected) in cases {
        let file = config_file(text);
        let error = load(&sources_with_file(&file)).expect_err(text);
        assert_eq!(error.key(), Some(key), "{text}");
        let message = error.to_string();
        assert!(message.contains(expected), "{text}: {message}");
    }
}

#[test]
fn bad_listen_address_is_rejected_with_an_example() {
    let file = config_file("[server]\nlisten = \"localhost\"\n");
    let error = load(&sources_with_file(&file)).expect_err("bad address");
    assert_eq!(error.key(), Some("server.listen"));
    assert!(error.to_string().contains("127.0.0.1:4327"), "{error}");
}

#[test]
fn toml_syntax_errors_name_the_file() {
    let file = config_file("[server\n");
    let error = load(&sources_with_file(&file)).expect_err("syntax");
    assert!(matches!(error, ConfigError::Syntax { .. }), "{error:?}");
}

#[test]
fn env_overrides_file_and_flag_overrides_env() {
    let file = config_file("[server]\nlisten = \"127.0.0.1:1001\"\nmax_body_bytes = 4096\n");
    let mut sources = sources_with_file(&file);
    sources.env.push((
        "HEARTH_SERVER_LISTEN".to_string(),
        "127.0.0.1:1002".to_string(),
    ));
    let loaded = load(&sources).expect("env layer");
    assert_eq!(loaded.config.server.listen.port(), 1002);
    assert_eq!(loaded.config.server.max_body_bytes, 4096);
    assert_eq!(
        loaded
            .value("server.listen")
            .map(|value| value.origin.clone()),
        Some(Origin::Env("HEARTH_SERVER_LISTEN".to_string()))
    );

    sources.flags.push((
        "server.listen",
        "127.0.0.1:1003".to_string(),
        "--listen".to_string(),
    ));
    let loaded = load(&sources).expect("flag layer");
    assert_eq!(loaded.config.server.listen.port(), 1003);
    assert_eq!(
        loaded
            .value("server.listen")
            .map(|value| value.origin.clone()),
        Some(Origin::Flag("--listen".to_string()))
    );
}

#[test]
fn an_unknown_hearth_env_var_is_a_warning_naming_the_closest_key() {
    let mut env = home_env();
    env.push(("HEARTH_SERVER_LISTN".to_string(), "127.0.0.1:1".to_string()));
    env.push(("HEARTH_SOMETHING_ELSE".to_string(), "x".to_string()));
    let loaded = load(&Sources {
        env,
        ..Sources::default()
    })
    .expect("an unknown variable does not stop the load");
    assert_eq!(
        loaded.warnings,
        vec![
            ConfigWarning::UnknownEnvVar {
                name: "HEARTH_SERVER_LISTN".to_string(),
                suggestion: Some("HEARTH_SERVER_LISTEN".to_string()),
            },
            ConfigWarning::UnknownEnvVar {
                name: "HEARTH_SOMETHING_ELSE".to_string(),
                suggestion: None,
            },
        ]
    );
    assert!(
        loaded.warnings[0]
            .to_string()
            .contains("did you mean HEARTH_SERVER_LISTEN?"),
        "{}",
        loaded.warnings[0]
    );
    // The misspelt value is not applied.
    assert_eq!(
        loaded
            .value("server.listen")
            .map(|value| value.origin.clone()),
        Some(Origin::Default)
    );

    // In a file, the same typo is ours to catch: an error.
    let file = config_file("[server]\nlistn = \"127.0.0.1:1\"\n");
    let error = load(&sources_with_file(&file)).expect_err("unknown key in a file");
    assert_eq!(error.key(), Some("server.listn"));
}

#[test]
fn hearth_venv_set_by_our_setup_script_does_not_stop_the_server() {
    let mut env = home_env();
    env.push(("HEARTH_VENV".to_string(), "/x".to_string()));
    let loaded = load(&Sources {
        env,
        ..Sources::default()
    })
    .expect("reserved");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

/// Every `HEARTH_*` name our scripts and tools read is either a config key or reserved, so
/// exporting it never draws a warning (or, as before, stops the server).
#[test]
fn every_hearth_variable_in_our_scripts_and_tools_is_reserved_or_a_key() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in ["scripts", "xtask/src", ".ci"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        files.extend(entries.flatten().map(|entry| entry.path()));
    }
    assert!(
        !files.is_empty(),
        "no scripts found under {}",
        root.display()
    );
    let keys: Vec<String> = crate::schema::SCHEMA
        .iter()
        .map(|spec| env_var_name(spec.key))
        .collect();
    let mut unknown = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let mut rest = text.as_str();
        while let Some(start) = rest.find("HEARTH_") {
            let name: String = rest[start..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            rest = &rest[start + name.len()..];
            let name = name.trim_end_matches('_');
            if name != "HEARTH"
                && !RESERVED_ENV_VARS.contains(&name)
                && !keys.iter().any(|key| key == name)
            {
                unknown.push(format!("{name} in {}", file.display()));
            }
        }
    }
    assert!(unknown.is_empty(), "not reserved: {unknown:?}");
}

#[test]
fn env_values_are_parsed_by_the_kind_of_their_key() {
    let mut env = home_env();
    env.push(("HEARTH_SERVER_COMPRESSION".to_string(), "off".to_string()));
    env.push((
        "HEARTH_SERVER_CORS_ALLOWED_ORIGINS".to_string(),
        "https://a.example, https://b.example".to_string(),
    ));
    env.push((
        "HEARTH_SERVER_MAX_BODY_BYTES".to_string(),
        "1_048_576".to_string(),
    ));
    let loaded = load(&Sources {
        env: env.clone(),
        ..Sources::default()
    })
    .expect("typed env");
    assert!(!loaded.config.server.compression);
    assert_eq!(
        loaded.config.server.cors_allowed_origins,
        ["https://a.example", "https://b.example"]
    );
    assert_eq!(loaded.config.server.max_body_bytes, 1_048_576);

    env.push((
        "HEARTH_SERVER_REQUEST_TIMEOUT_MS".to_string(),
        "soon".to_string(),
    ));
    let error = load(&Sources {
        env,
        ..Sources::default()
    })
    .expect_err("bad integer");
    let message = error.to_string();
    assert!(message.contains("server.request_timeout_ms"), "{message}");
    assert!(
        message.contains("HEARTH_SERVER_REQUEST_TIMEOUT_MS"),
        "{message}"
    );
    assert!(message.contains("\"soon\""), "{message}");
}

#[test]
fn rust_log_sets_the_level_unless_hearth_log_level_is_given() {
    let mut env = home_env();
    env.push(("RUST_LOG".to_string(), "debug".to_string()));
    let loaded = load(&Sources {
        env: env.clone(),
        ..Sources::default()
    })
    .expect("RUST_LOG");
    assert_eq!(loaded.config.log.level, "debug");

    env.push(("HEARTH_LOG_LEVEL".to_string(), "warn".to_string()));
    let loaded = load(&Sources {
        env,
        ..Sources::default()
    })
    .expect("both");
    assert_eq!(loaded.config.log.level, "warn");
}

#[test]
fn prod_profile_defaults_to_json_logs_but_explicit_values_win() {
    let file = config_file("profile = \"prod\"\n");
    let loaded = load(&sources_with_file(&file)).expect("prod");
    assert_eq!(loaded.config.log.format, LogFormat::Json);

    let file = config_file("profile = \"prod\"\n[log]\nformat = \"pretty\"\n");
    let loaded = load(&sources_with_file(&file)).expect("prod with pretty");
    assert_eq!(loaded.config.log.format, LogFormat::Pretty);
}

#[test]
fn secrets_are_masked_when_the_config_is_shown() {
    let file = config_file("[telemetry]\notlp_headers = \"authorization=Bearer sk-secret\"\n");
    let loaded = load(&sources_with_file(&file)).expect("headers");
    assert_eq!(
        loaded.config.telemetry.otlp_headers,
        [("authorization".to_string(), "Bearer sk-secret".to_string())]
    );
    let shown = loaded.render_masked();
    assert!(!shown.contains("sk-secret"), "{shown}");
    assert!(shown.contains("otlp_headers = \"********\""), "{shown}");
    assert!(
        shown.contains("listen = \"127.0.0.1:4327\"  # default"),
        "{shown}"
    );
}

#[test]
fn reload_diff_separates_runtime_keys_from_restart_keys() {
    let before = load(&Sources {
        env: home_env(),
        ..Sources::default()
    })
    .expect("before");
    let file = config_file("[log]\nlevel = \"debug\"\n[server]\nlisten = \"127.0.0.1:9\"\n");
    let after = load(&sources_with_file(&file)).expect("after");
    let diff = before.diff(&after);
    assert_eq!(diff.applied, ["log.level"]);
    assert_eq!(diff.needs_restart, ["server.listen"]);
}

/// A value every kind accepts, to prove each schema key can be set from the environment.
fn sample_text(kind: Kind, key: &str) -> String {
    match (kind, key) {
        (_, "server.listen") => "127.0.0.1:5000".to_string(),
        (_, "server.admin_listen") => "127.0.0.1:5001".to_string(),
        (_, "auth.oidc_issuer") => "https://login.example.com".to_string(),
        (_, "auth.oidc_jwks_url") => "https://login.example.com/keys".to_string(),
        (_, "log.level") => "debug".to_string(),
        (_, "telemetry.otlp_endpoint") => "http://127.0.0.1:4318".to_string(),
        (_, "telemetry.otlp_headers") => "x-token=abc".to_string(),
        (_, "server.cors_allowed_origins") => "https://example.com".to_string(),
        (Kind::String, _) => "/tmp/somewhere".to_string(),
        (Kind::Bool, _) => "false".to_string(),
        (Kind::Integer { min, .. }, _) => min.to_string(),
        (Kind::Float { max, .. }, _) => max.to_string(),
        (Kind::StringList, _) => "a,b".to_string(),
        (Kind::OneOf(options), _) => options[options.len() - 1].to_string(),
        (Kind::Tables(_), "upstreams") => {
            r#"[{ name = "primary", base_url = "http://127.0.0.1:9001/v1" }]"#.to_string()
        }
        (Kind::Tables(_), "flags") => {
            r#"[{ key = "dark-mode", rules = [{ variant = "on" }] }]"#.to_string()
        }
        (Kind::Tables(_), "jobs") => {
            r#"[{ name = "nightly", schedule = "0 3 * * *", builtin = "noop" }]"#.to_string()
        }
        (Kind::Tables(_), "prices") => {
            r#"[{ model = "gpt-4o-mini", prompt_per_million = 0.15, completion_per_million = 0.6 }]"#
                .to_string()
        }
        (Kind::Tables(_), _) => {
            r#"[{ model = "smart", targets = ["local/gemma3:270m"] }]"#.to_string()
        }
    }
}

#[test]
fn every_schema_key_can_be_set_from_its_env_var() {
    for spec in SCHEMA {
        let name = env_var_name(spec.key);
        let mut env = home_env();
        env.push((name.clone(), sample_text(spec.kind, spec.key)));
        // Some keys need another beside them.
        if spec.key == "auth.oidc_issuer" {
            env.push((
                "HEARTH_AUTH_OIDC_AUDIENCE".to_string(),
                "hearth".to_string(),
            ));
        }
        let loaded = load(&Sources {
            env,
            ..Sources::default()
        })
        .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(
            loaded.value(spec.key).map(|value| value.origin.clone()),
            Some(Origin::Env(name.clone())),
            "{name}"
        );
    }
}

#[test]
fn log_filters_are_checked_like_rust_log() {
    for good in [
        "info",
        "warn,hearth_server=debug",
        "tower_http::trace=off",
        "TRACE",
    ] {
        assert!(crate::validate_log_filter(good).is_ok(), "{good}");
    }
    for bad in ["", "inf", "hearth=verbose", "=info", "a b=info"] {
        assert!(crate::validate_log_filter(bad).is_err(), "{bad}");
    }
}

#[test]
fn upstreams_and_routes_are_read_in_the_documented_shape() {
    let file = config_file(
        r#"
[[upstreams]]
name = "primary"
base_url = "http://127.0.0.1:9001/v1/"
api_key_env = "PRIMARY_API_KEY"
timeout_ms = 30000

[[upstreams]]
name = "backup"
base_url = "https://backup.example/v1"

[[routes]]
model = "smart"
strategy = "priority"
targets = ["primary/gpt-4o-mini", "backup/gpt-4o-mini", "local/gemma3:270m"]

[[routes]]
model = "split"
strategy = "weighted"
targets = ["primary/a", "backup/b"]
weights = [3, 1]
"#,
    );
    let config = load(&sources_with_file(&file)).expect("valid").config;
    assert_eq!(config.upstreams.len(), 2);
    assert_eq!(config.upstreams[0].base_url, "http://127.0.0.1:9001/v1");
    assert_eq!(
        config.upstreams[0].api_key_env.as_deref(),
        Some("PRIMARY_API_KEY")
    );
    assert_eq!(config.upstreams[0].timeout, Duration::from_secs(30));
    assert_eq!(config.upstreams[1].timeout, Duration::from_secs(60));
    assert_eq!(config.routes[0].strategy, crate::RouteStrategy::Priority);
    assert_eq!(
        config.routes[0].targets[2],
        crate::RouteTarget::Local {
            model: "gemma3:270m".to_string()
        }
    );
    assert_eq!(config.routes[1].weights, [3, 1]);
}

#[test]
fn bad_upstreams_and_routes_name_the_field_at_fault() {
    let cases = [
        (
            "[[upstreams]]\nname = \"p\"\nbase_url = \"ftp://x\"\n",
            "upstreams[0].base_url",
        ),
        (
            "[[upstreams]]\nbase_url = \"http://x\"\n",
            "upstreams[0].name",
        ),
        (
            "[[upstreams]]\nname = \"p\"\nbase_url = \"http://x\"\nurl = 1\n",
            "upstreams[0].url",
        ),
        (
            "[[upstreams]]\nname = \"local\"\nbase_url = \"http://x\"\n",
            "upstreams[0].name",
        ),
        (
            "[[routes]]\nmodel = \"m\"\ntargets = [\"nowhere/x\"]\n",
            "routes[0].targets",
        ),
        (
            "[[routes]]\nmodel = \"m\"\nstrategy = \"fastest\"\ntargets = [\"local/x\"]\n",
            "routes[0].strategy",
        ),
        (
            "[[routes]]\nmodel = \"m\"\ntargets = [\"local/x\"]\nweights = [1, 2]\n",
            "routes[0].weights",
        ),
    ];
    for (text, key) in cases {
        let file = config_file(text);
        let error = load(&sources_with_file(&file)).expect_err(key);
        assert_eq!(error.key(), Some(key), "{text}: {error}");
    }
}

#[test]
fn jobs_are_read_with_one_action_each() {
    let file = config_file(
        r#"
[[jobs]]
name = "convert"
schedule = "*/10 * * * * *"
timezone = "Europe/Paris"
plugin = "calculator"
tool = "convert"
arguments = '{"value": 1, "from": "km", "to": "m"}'
retries = 2

[[jobs]]
name = "notify"
after = ["convert"]
webhook_url = "https://example.com/hook"
webhook_secret_env = "NOTIFY_SECRET"
overlap = "queue"
"#,
    );
    let config = load(&sources_with_file(&file)).expect("jobs load").config;
    assert_eq!(config.jobs.len(), 2);
    assert_eq!(config.jobs[0].retries, Some(2));
    assert!(
        matches!(&config.jobs[0].action, crate::JobActionConfig::Plugin { tool, .. } if tool == "convert")
    );
    assert_eq!(config.jobs[1].after, vec!["convert".to_string()]);
    assert_eq!(config.scheduler.max_jobs_per_tenant, 100);

    let file = config_file(
        "[[jobs]]\nname = \"both\"\nbuiltin = \"noop\"\nwebhook_url = \"https://example.com\"\n",
    );
    let error = load(&sources_with_file(&file))
        .expect_err("two actions")
        .to_string();
    assert!(error.contains("jobs[0].plugin"), "{error}");
}

#[test]
fn flags_are_read_whole_and_reload_without_a_restart() {
    let file = config_file(
        r#"
[[flags]]
key = "new-checkout"
tenant = "acme"
type = "string"
variants = { classic = "classic", express = "express" }
default_variant = "classic"
rules = [{ when = [{ attribute = "plan", op = "in", values = ["pro"] }], variant = "express" }]
split = [{ variant = "express", weight = 10 }, { variant = "classic", weight = 90 }]
"#,
    );
    let loaded = load(&sources_with_file(&file)).expect("flags load");
    let flag = &loaded.config.flags[0];
    assert_eq!(flag.key, "new-checkout");
    assert_eq!(flag.tenant.as_deref(), Some("acme"));
    assert!(!flag.definition.contains_key("key"));
    assert_eq!(
        flag.definition["rules"][0]["variant"].as_str(),
        Some("express")
    );

    let changed = config_file("[[flags]]\nkey = \"new-checkout\"\nenabled = false\n");
    let newer = load(&sources_with_file(&changed)).expect("flags load");
    let diff = loaded.diff(&newer);
    assert!(diff.applied.contains(&"flags"), "{diff:?}");
    assert!(diff.needs_restart.is_empty(), "{diff:?}");

    let file = config_file("[[flags]]\nkey = \"x\"\nenabled = \"no\"\n");
    let error = load(&sources_with_file(&file)).expect_err("enabled is a boolean");
    assert_eq!(error.key(), Some("flags[0].enabled"), "{error}");
}

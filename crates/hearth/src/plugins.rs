//! `hearth plugins ...`: a running server's WebAssembly plugins over its HTTP API (the server
//! compiles, checks and runs them). Reading files, encoding and printing only.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine as _;
use hearth_config::Sources;
use serde_json::{Value, json};

use crate::api_client::{Api, percent_encode, runtime};
use crate::cli::{PluginPackage, PluginsCommand};

/// Where `sign` writes a component's signature and `install` looks for it.
fn signature_path(component: &Path) -> PathBuf {
    let mut path = component.as_os_str().to_owned();
    path.push(".sig");
    PathBuf::from(path)
}

/// The install/upgrade body: the manifest's text, the component in base64 and its signature
/// (the named file, else `COMPONENT.wasm.sig` when there is one).
fn body_of(package: &PluginPackage) -> anyhow::Result<Value> {
    let (manifest, component) = (&package.manifest, &package.component);
    let signature = package.signature.as_deref();
    let manifest = std::fs::read_to_string(manifest)
        .with_context(|| format!("cannot read the manifest {}", manifest.display()))?;
    let bytes = std::fs::read(component)
        .with_context(|| format!("cannot read the component {}", component.display()))?;
    let mut body = json!({
        "manifest": manifest,
        "component": base64::engine::general_purpose::STANDARD.encode(bytes),
    });
    let default = signature_path(component);
    let signature = match signature {
        Some(path) => Some(path),
        None => default.exists().then_some(default.as_path()),
    };
    if let Some(path) = signature {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the signature {}", path.display()))?;
        body["signature"] = json!(text.trim());
    }
    Ok(body)
}

/// 32 bytes from the operating system's random source, for a secret key.
fn random_seed() -> anyhow::Result<[u8; 32]> {
    use std::io::Read;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut seed))
        .context("cannot read /dev/urandom for a new key")?;
    Ok(seed)
}

/// Writes a secret key readable by its owner only, refusing to overwrite one.
fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| {
            format!(
                "cannot create {} (a key that exists is never overwritten)",
                path.display()
            )
        })?;
    writeln!(file, "{text}").with_context(|| format!("cannot write {}", path.display()))
}

fn summary(plugin: &Value) -> String {
    format!(
        "{} {}{}",
        plugin["name"].as_str().unwrap_or(""),
        plugin["version"].as_str().unwrap_or(""),
        if plugin["enabled"] == json!(false) {
            " (disabled)"
        } else {
            ""
        }
    )
}

pub fn run(sources: &Sources, command: &PluginsCommand) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let post = reqwest::Method::POST;
        match command {
            PluginsCommand::List { server, json } => {
                let api = Api::new(sources, server)?;
                let list = api.call(reqwest::Method::GET, "/v1/plugins", None).await?;
                let plugins = list["data"].as_array().cloned().unwrap_or_default();
                let mut out = std::io::stdout().lock();
                if *json {
                    writeln!(out, "{}", Value::Array(plugins))?;
                    return Ok(());
                }
                writeln!(
                    out,
                    "{:<24} {:<12} {:<8} TOOLS",
                    "NAME", "VERSION", "ENABLED"
                )?;
                for plugin in plugins {
                    let tools: Vec<&str> = plugin["tools"]
                        .as_array()
                        .map(|tools| {
                            tools
                                .iter()
                                .filter_map(|tool| tool["name"].as_str())
                                .collect()
                        })
                        .unwrap_or_default();
                    writeln!(
                        out,
                        "{:<24} {:<12} {:<8} {}",
                        plugin["name"].as_str().unwrap_or(""),
                        plugin["version"].as_str().unwrap_or(""),
                        plugin["enabled"].as_bool().unwrap_or(false),
                        tools.join(",")
                    )?;
                }
                Ok(())
            }
            PluginsCommand::Show { server, name } => {
                let api = Api::new(sources, server)?;
                let path = format!("/v1/plugins/{}", percent_encode(name));
                let plugin = api.call(reqwest::Method::GET, &path, None).await?;
                println!("{}", serde_json::to_string_pretty(&plugin)?);
                Ok(())
            }
            PluginsCommand::Keygen { secret_key } => {
                let (secret, public) = hearth_plugins::key_pair(random_seed()?);
                write_secret(secret_key, &secret)?;
                println!("{public}");
                eprintln!(
                    "wrote the secret key to {}; add the public key above to plugins.trusted_keys",
                    secret_key.display()
                );
                Ok(())
            }
            PluginsCommand::Sign {
                secret_key,
                manifest,
                component,
            } => {
                let secret = std::fs::read_to_string(secret_key)
                    .with_context(|| format!("cannot read the key {}", secret_key.display()))?;
                let manifest_text = std::fs::read_to_string(manifest)
                    .with_context(|| format!("cannot read the manifest {}", manifest.display()))?;
                hearth_plugins::Manifest::parse(&manifest_text)
                    .map_err(|error| anyhow::anyhow!("{}: {error}", manifest.display()))?;
                let bytes = std::fs::read(component).with_context(|| {
                    format!("cannot read the component {}", component.display())
                })?;
                let signature = hearth_plugins::sign(secret.trim(), &manifest_text, &bytes)
                    .map_err(|error| anyhow::anyhow!("{}: {error}", secret_key.display()))?;
                let path = signature_path(component);
                std::fs::write(&path, format!("{signature}\n"))
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("wrote {}", path.display());
                Ok(())
            }
            PluginsCommand::Install { server, package } => {
                let api = Api::new(sources, server)?;
                let body = body_of(package)?;
                let plugin = api.call(post, "/v1/plugins", Some(&body)).await?;
                println!("installed plugin {}", summary(&plugin));
                Ok(())
            }
            PluginsCommand::Upgrade { server, package } => {
                let api = Api::new(sources, server)?;
                let body = body_of(package)?;
                let name = hearth_plugins::Manifest::parse(body["manifest"].as_str().unwrap_or(""))
                    .map_err(|error| anyhow::anyhow!("{}: {error}", package.manifest.display()))?
                    .name;
                let path = format!("/v1/plugins/{}/upgrade", percent_encode(&name));
                let plugin = api.call(post, &path, Some(&body)).await?;
                println!("upgraded plugin {}", summary(&plugin));
                Ok(())
            }
            PluginsCommand::Rollback { server, name }
            | PluginsCommand::Enable { server, name }
            | PluginsCommand::Disable { server, name } => {
                let (action, done) = match command {
                    PluginsCommand::Rollback { .. } => ("rollback", "rolled back"),
                    PluginsCommand::Enable { .. } => ("enable", "enabled"),
                    _ => ("disable", "disabled"),
                };
                let api = Api::new(sources, server)?;
                let path = format!("/v1/plugins/{}/{action}", percent_encode(name));
                let plugin = api.call(post, &path, None).await?;
                println!("{done} plugin {}", summary(&plugin));
                Ok(())
            }
            PluginsCommand::Config {
                server,
                name,
                config,
            } => {
                let api = Api::new(sources, server)?;
                let config: Value = serde_json::from_str(config)
                    .context("the configuration is not JSON; give a JSON object")?;
                let path = format!("/v1/plugins/{}/config", percent_encode(name));
                let plugin = api.call(reqwest::Method::PUT, &path, Some(&config)).await?;
                println!(
                    "configured plugin {}: {}",
                    summary(&plugin),
                    plugin["config"]
                );
                Ok(())
            }
            PluginsCommand::Remove { server, name } => {
                let api = Api::new(sources, server)?;
                let path = format!("/v1/plugins/{}", percent_encode(name));
                api.call(reqwest::Method::DELETE, &path, None).await?;
                println!("removed plugin {name}");
                Ok(())
            }
            PluginsCommand::Secret {
                server,
                name,
                secret,
                delete,
            } => {
                let api = Api::new(sources, server)?;
                let path = format!(
                    "/v1/plugins/{}/secrets/{}",
                    percent_encode(name),
                    percent_encode(secret)
                );
                if *delete {
                    api.call(reqwest::Method::DELETE, &path, None).await?;
                    println!("removed secret {secret} of plugin {name}");
                    return Ok(());
                }
                let mut value = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut value)
                    .context("cannot read the secret from standard input")?;
                let value = value.trim_end_matches(['\n', '\r']);
                api.call(
                    reqwest::Method::PUT,
                    &path,
                    Some(&json!({ "value": value })),
                )
                .await?;
                println!("set secret {secret} of plugin {name}");
                Ok(())
            }
            PluginsCommand::Secrets { server, name } => {
                let api = Api::new(sources, server)?;
                let path = format!("/v1/plugins/{}/secrets", percent_encode(name));
                let list = api.call(reqwest::Method::GET, &path, None).await?;
                let mut out = std::io::stdout().lock();
                writeln!(out, "{:<32} {:<9} {:<5} UPDATED", "NAME", "DECLARED", "SET")?;
                for secret in list["data"].as_array().cloned().unwrap_or_default() {
                    writeln!(
                        out,
                        "{:<32} {:<9} {:<5} {}",
                        secret["name"].as_str().unwrap_or(""),
                        secret["declared"].as_bool().unwrap_or(false),
                        secret["set"].as_bool().unwrap_or(false),
                        secret["updated_at"].as_str().unwrap_or("")
                    )?;
                }
                Ok(())
            }
            PluginsCommand::Logs {
                server,
                name,
                limit,
            } => {
                let api = Api::new(sources, server)?;
                let path = format!("/v1/plugins/{}/logs?limit={limit}", percent_encode(name));
                let lines = api.call(reqwest::Method::GET, &path, None).await?;
                let mut out = std::io::stdout().lock();
                for line in lines["data"].as_array().cloned().unwrap_or_default() {
                    writeln!(
                        out,
                        "{} {:<5} {}",
                        line["time"].as_str().unwrap_or(""),
                        line["level"].as_str().unwrap_or(""),
                        line["message"].as_str().unwrap_or("")
                    )?;
                }
                Ok(())
            }
            PluginsCommand::Call {
                server,
                name,
                tool,
                arguments,
            } => {
                let api = Api::new(sources, server)?;
                let arguments: Value = serde_json::from_str(arguments).context(
                    "the arguments are not JSON; give a JSON object such as '{\"value\": 1}'",
                )?;
                let path = format!(
                    "/v1/plugins/{}/tools/{}",
                    percent_encode(name),
                    percent_encode(tool)
                );
                let answer = api.call(post, &path, Some(&arguments)).await?;
                println!("{}", answer["output"].as_str().unwrap_or(""));
                Ok(())
            }
        }
    })
}

//! `hearth keys ...` and `hearth users ...`: API keys and the tenants' users from the command
//! line, on the data directory's database. A
//! server running on the same directory picks changes up within a second. Parsing and
//! printing only; the rules live in `hearth-gateway`.

use std::io::Write;

use anyhow::Context;
use hearth_config::Sources;
use hearth_gateway::{Actor, Gateway, KeySpec, KeyView, Limits, Role};

use crate::cli::{KeyCreateArgs, KeysCommand, UsersCommand};

/// Reads durations such as `30d`, `12h`, `90m`, `45s`, `1w` (one number and one unit).
pub fn parse_duration_ms(text: &str) -> anyhow::Result<i64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: i64 = number
        .parse()
        .with_context(|| format!("{text:?} is not a duration; write e.g. 30d, 12h, 90m or 45s"))?;
    let unit_ms = match unit {
        "w" => 7 * 86_400_000,
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" => 1000,
        _ => anyhow::bail!("{text:?} has an unknown unit; use w, d, h, m or s (e.g. 30d)"),
    };
    number
        .checked_mul(unit_ms)
        .with_context(|| format!("{text:?} is too long"))
}

/// Runs `work` on the data directory's gateway, then closes the database.
fn with_gateway<F>(sources: &Sources, work: F) -> anyhow::Result<()>
where
    F: AsyncFnOnce(&Gateway, i64) -> anyhow::Result<()>,
{
    let loaded = crate::config::load(sources)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = crate::serve::open_store(&loaded.config, true).await?;
        let gateway = Gateway::new(store.clone());
        let result = work(&gateway, hearth_gateway::now_ms()).await;
        store.close().await;
        result
    })
}

pub fn run_users(sources: &Sources, command: &UsersCommand) -> anyhow::Result<()> {
    with_gateway(sources, async |gateway, now| match command {
        UsersCommand::Create { tenant, name } => {
            gateway.ensure_tenant(&Actor::Cli, tenant, now).await?;
            let user = gateway.create_user(&Actor::Cli, tenant, name, now).await?;
            println!(
                "made user {} of tenant {} ({})",
                user.name, user.tenant_name, user.id
            );
            Ok(())
        }
        UsersCommand::List { tenant, json } => {
            let users = gateway.users(&Actor::Cli, tenant.as_deref()).await?;
            let mut out = std::io::stdout().lock();
            if *json {
                let list: Vec<serde_json::Value> = users
                    .iter()
                    .map(|user| {
                        serde_json::json!({
                            "id": user.id, "name": user.name, "tenant": user.tenant_name,
                            "tenant_id": user.tenant_id, "created_at_ms": user.created_at_ms,
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
                return Ok(());
            }
            writeln!(out, "{:<16} {:<24} ID", "TENANT", "USER")?;
            for user in &users {
                writeln!(
                    out,
                    "{:<16} {:<24} {}",
                    user.tenant_name, user.name, user.id
                )?;
            }
            Ok(())
        }
        UsersCommand::Delete { tenant, name } => {
            let (user, revoked) = gateway
                .delete_user(&Actor::Cli, Some(tenant), name, now)
                .await?;
            println!(
                "deleted user {} of tenant {}; revoked {revoked} key(s)",
                user.name, user.tenant_name
            );
            Ok(())
        }
    })
}

pub fn run(sources: &Sources, command: &KeysCommand) -> anyhow::Result<()> {
    let loaded = crate::config::load(sources)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = crate::serve::open_store(&loaded.config, true).await?;
        let gateway = Gateway::new(store.clone());
        let now = hearth_gateway::now_ms();
        let result = match command {
            KeysCommand::Create(args) => create(&gateway, args, now).await,
            KeysCommand::List { tenant, json } => {
                list(&gateway, tenant.as_deref(), *json, now).await
            }
            KeysCommand::Revoke { key } => {
                let revoked = gateway.revoke_key(&Actor::Cli, key, now).await?;
                println!("revoked {}", revoked.prefix);
                Ok(())
            }
            KeysCommand::Rotate { key, grace } => {
                let grace_ms = parse_duration_ms(grace)?;
                let rotated = gateway.rotate_key(&Actor::Cli, key, grace_ms, now).await?;
                eprintln!(
                    "made {} to replace {key}; the old key stays valid for {grace}",
                    rotated.key.prefix
                );
                println!("{}", rotated.secret);
                Ok(())
            }
        };
        store.close().await;
        result
    })
}

async fn create(gateway: &Gateway, args: &KeyCreateArgs, now: i64) -> anyhow::Result<()> {
    let role = Role::parse(&args.role).context("role must be admin, member or reader")?;
    let expires_in_ms = args.expires.as_deref().map(parse_duration_ms).transpose()?;
    // The CLI bootstraps: the tenant and the user are made when missing.
    if let (Some(tenant), Some(user)) = (&args.tenant, &args.user) {
        gateway.ensure_tenant(&Actor::Cli, tenant, now).await?;
        gateway.ensure_user(&Actor::Cli, tenant, user, now).await?;
    }
    let created = gateway
        .create_key(
            &Actor::Cli,
            KeySpec {
                tenant: args.tenant.clone(),
                user: args.user.clone(),
                name: args.name.clone(),
                role,
                scopes: args.scopes.clone(),
                limits: Limits {
                    requests_per_minute: args.rpm,
                    tokens_per_minute: args.tpm,
                    max_concurrent: args.concurrency,
                    tokens_per_day: args.tokens_per_day,
                    tokens_per_month: args.tokens_per_month,
                    budget_micro_usd_per_month: match args.budget_usd {
                        Some(dollars) if !(dollars.is_finite() && dollars >= 0.0) => {
                            anyhow::bail!("--budget-usd must be a non-negative amount of dollars")
                        }
                        Some(dollars) => Some((dollars * 1_000_000.0).round() as u64),
                        None => None,
                    },
                },
                expires_in_ms,
            },
            now,
        )
        .await?;
    let key = &created.key;
    let mut out = std::io::stdout().lock();
    writeln!(out, "id:     {}", key.id)?;
    writeln!(out, "prefix: {}", key.prefix)?;
    writeln!(
        out,
        "tenant: {}",
        key.tenant_name
            .as_deref()
            .unwrap_or("(none: instance admin)")
    )?;
    if let Some(user) = &key.user_name {
        writeln!(out, "user:   {user}")?;
    }
    writeln!(out, "role:   {}", key.role)?;
    eprintln!("this is the only time the key is shown; store it now");
    writeln!(out, "{}", created.secret)?;
    Ok(())
}

fn limit_text(limits: &Limits) -> String {
    let mut parts = Vec::new();
    for (label, value) in [
        ("rpm", limits.requests_per_minute),
        ("tpm", limits.tokens_per_minute),
        ("concurrency", limits.max_concurrent),
        ("tokens/day", limits.tokens_per_day),
        ("tokens/month", limits.tokens_per_month),
        ("budget-micro-usd", limits.budget_micro_usd_per_month),
    ] {
        if let Some(value) = value {
            parts.push(format!("{label}={value}"));
        }
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(",")
    }
}

fn key_json(key: &KeyView, now: i64) -> serde_json::Value {
    serde_json::json!({
        "id": key.id, "prefix": key.prefix, "tenant": key.tenant_name, "name": key.name,
        "user": key.user_name, "user_id": key.user_id,
        "role": key.role.as_str(), "scopes": key.scopes, "status": key.status(now),
        "created_at_ms": key.created_at_ms, "expires_at_ms": key.expires_at_ms,
        "revoked_at_ms": key.revoked_at_ms, "rotated_to": key.rotated_to,
        "limits": {
            "requests_per_minute": key.limits.requests_per_minute,
            "tokens_per_minute": key.limits.tokens_per_minute,
            "max_concurrent": key.limits.max_concurrent,
            "tokens_per_day": key.limits.tokens_per_day,
            "tokens_per_month": key.limits.tokens_per_month,
            "budget_micro_usd_per_month": key.limits.budget_micro_usd_per_month,
        },
    })
}

async fn list(gateway: &Gateway, tenant: Option<&str>, json: bool, now: i64) -> anyhow::Result<()> {
    let keys = gateway.keys(&Actor::Cli, tenant).await?;
    let mut out = std::io::stdout().lock();
    if json {
        let list: Vec<serde_json::Value> = keys.iter().map(|key| key_json(key, now)).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<12} {:<16} {:<16} {:<7} {:<8} {:<20} ID",
        "PREFIX", "TENANT", "USER", "ROLE", "STATUS", "LIMITS"
    )?;
    for key in &keys {
        writeln!(
            out,
            "{:<12} {:<16} {:<16} {:<7} {:<8} {:<20} {}",
            key.prefix,
            key.tenant_name.as_deref().unwrap_or("-"),
            key.user_name.as_deref().unwrap_or("-"),
            key.role,
            key.status(now),
            limit_text(&key.limits),
            key.id
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_duration_ms;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration_ms("30d").expect("days"), 30 * 86_400_000);
        assert_eq!(parse_duration_ms("12h").expect("hours"), 12 * 3_600_000);
        assert_eq!(parse_duration_ms("0s").expect("zero"), 0);
        assert!(parse_duration_ms("soon").is_err());
        assert!(parse_duration_ms("5y").is_err());
    }
}

//! The gateway against a real SQLite store in a temporary directory: keys made, presented,
//! revoked, rotated and expired; tenant scopes; usage written in batches and aggregated.

use std::time::Duration;

use hearth_gateway::{
    Actor, AuthError, Authenticator, Gateway, GatewayError, KeySpec, Limits, Role, UsageEvent,
    UsageRecorder,
};
use hearth_store::{IntegrityCheck, OpenOptions, Store, UsageQuery};

const NOW: i64 = 1_800_000_000_000;

async fn store(dir: &tempfile::TempDir) -> Store {
    Store::open(
        dir.path(),
        OpenOptions {
            integrity_check: IntegrityCheck::Quick,
            run_migrations: true,
        },
    )
    .await
    .expect("store")
}

fn spec(tenant: Option<&str>, role: Role) -> KeySpec {
    KeySpec {
        tenant: tenant.map(str::to_owned),
        user: None,
        name: None,
        role,
        scopes: Vec::new(),
        limits: Limits::default(),
        expires_in_ms: None,
    }
}

fn as_key(principal: hearth_gateway::Principal) -> Actor {
    Actor::key(principal, Some("127.0.0.1".to_owned()))
}

#[tokio::test]
async fn a_key_authenticates_until_it_is_revoked_and_its_secret_is_not_stored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store(&dir).await;
    let gateway = Gateway::new(store.clone());
    let created = gateway
        .create_key(&Actor::Cli, spec(Some("acme"), Role::Member), NOW)
        .await
        .expect("created");
    assert!(created.secret.starts_with(&created.key.prefix));

    let authenticator = Authenticator::load(&store).await.expect("load");
    let principal = authenticator
        .authenticate(&created.secret, NOW)
        .expect("valid key");
    assert_eq!(principal.role, Role::Member);
    assert_eq!(principal.tenant_name.as_deref(), Some("acme"));
    assert_eq!(
        authenticator.authenticate("hk_0000000000000000000000000000000000000000000000000", NOW),
        Err(AuthError::Unknown)
    );

    gateway
        .revoke_key(&Actor::Cli, &created.key.prefix, NOW + 1)
        .await
        .expect("revoked");
    // The old table still answers until the refresh sees the new revision.
    assert!(authenticator.authenticate(&created.secret, NOW + 2).is_ok());
    assert!(authenticator.refresh(&store).await.expect("refresh"));
    assert_eq!(
        authenticator.authenticate(&created.secret, NOW + 2),
        Err(AuthError::Revoked {
            prefix: created.key.prefix.clone()
        })
    );

    let database = std::fs::read(store.path()).expect("database file");
    let wal = std::fs::read(dir.path().join("hearth.db-wal")).unwrap_or_default();
    for bytes in [database, wal] {
        assert!(
            !bytes
                .windows(created.secret.len())
                .any(|window| window == created.secret.as_bytes()),
            "the key itself must never be stored"
        );
    }
}

#[tokio::test]
async fn a_rotated_key_stays_valid_for_the_grace_period_and_expiry_is_enforced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store(&dir).await;
    let gateway = Gateway::new(store.clone());
    let old = gateway
        .create_key(
            &Actor::Cli,
            KeySpec {
                expires_in_ms: Some(3_600_000),
                ..spec(Some("acme"), Role::Reader)
            },
            NOW,
        )
        .await
        .expect("created");
    let new = gateway
        .rotate_key(&Actor::Cli, &old.key.id, 60_000, NOW + 1000)
        .await
        .expect("rotated");
    assert_eq!(new.key.role, Role::Reader);
    assert_eq!(new.key.expires_at_ms, Some(NOW + 1000 + 3_600_000));
    let authenticator = Authenticator::load(&store).await.expect("load");
    assert!(
        authenticator
            .authenticate(&old.secret, NOW + 60_000)
            .is_ok()
    );
    assert!(matches!(
        authenticator.authenticate(&old.secret, NOW + 61_000),
        Err(AuthError::Expired { .. })
    ));
    assert!(
        authenticator
            .authenticate(&new.secret, NOW + 61_000)
            .is_ok()
    );
    assert!(matches!(
        authenticator.authenticate(&new.secret, NOW + 1000 + 3_600_000),
        Err(AuthError::Expired { .. })
    ));
    let listed = gateway.keys(&Actor::Cli, Some("acme")).await.expect("keys");
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed[0].rotated_to.as_deref(),
        Some(new.key.id.as_str()),
        "{listed:?}"
    );
}

#[tokio::test]
async fn a_tenant_admin_administers_its_tenant_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store(&dir).await;
    let gateway = Gateway::new(store.clone());
    let acme_admin = gateway
        .create_key(&Actor::Cli, spec(Some("acme"), Role::Admin), NOW)
        .await
        .expect("acme admin");
    let other = gateway
        .create_key(&Actor::Cli, spec(Some("globex"), Role::Member), NOW)
        .await
        .expect("globex member");
    let authenticator = Authenticator::load(&store).await.expect("load");
    let actor = as_key(
        authenticator
            .authenticate(&acme_admin.secret, NOW)
            .expect("valid"),
    );

    let member = gateway
        .create_key(&actor, spec(Some("acme"), Role::Member), NOW)
        .await
        .expect("own tenant");
    assert_eq!(member.key.tenant_name.as_deref(), Some("acme"));
    // Another tenant is invisible: not found, not forbidden.
    assert!(matches!(
        gateway
            .create_key(&actor, spec(Some("globex"), Role::Member), NOW)
            .await,
        Err(GatewayError::NotFound { .. })
    ));
    assert!(matches!(
        gateway.revoke_key(&actor, &other.key.prefix, NOW).await,
        Err(GatewayError::NotFound { .. })
    ));
    assert!(matches!(
        gateway
            .create_key(&actor, spec(None, Role::Admin), NOW)
            .await,
        Err(GatewayError::Forbidden(_))
    ));
    assert!(matches!(
        gateway
            .create_tenant(&actor, "initech", Limits::default(), NOW)
            .await,
        Err(GatewayError::Forbidden(_))
    ));
    let visible: Vec<String> = gateway
        .keys(&actor, None)
        .await
        .expect("keys")
        .into_iter()
        .map(|key| key.tenant_name.unwrap_or_default())
        .collect();
    assert_eq!(visible, ["acme", "acme"]);
    let tenants = gateway.tenants(&actor).await.expect("tenants");
    assert_eq!(tenants.len(), 1);

    // The audit trail has every action, and a tenant admin reads only its tenant's.
    let all = gateway.audit_log(&Actor::Cli, 100).await.expect("audit");
    assert!(all.iter().any(|entry| entry.action == "tenant.create"));
    let own = gateway.audit_log(&actor, 100).await.expect("own audit");
    assert!(
        own.iter()
            .all(|entry| entry.tenant_id == member.key.tenant_id)
    );
    assert!(own.iter().any(|entry| entry.actor == acme_admin.key.prefix));
}

#[tokio::test]
async fn usage_is_written_in_batches_and_each_tenant_sees_only_its_own() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store(&dir).await;
    let gateway = Gateway::new(store.clone());
    let acme = gateway
        .create_key(&Actor::Cli, spec(Some("acme"), Role::Reader), NOW)
        .await
        .expect("acme");
    let globex = gateway
        .create_key(&Actor::Cli, spec(Some("globex"), Role::Member), NOW)
        .await
        .expect("globex");
    let (recorder, writer) = UsageRecorder::start(store.clone());
    for (key, tokens) in [(&acme, 10), (&acme, 20), (&globex, 500)] {
        recorder.record(UsageEvent {
            at_ms: NOW,
            tenant_id: key.key.tenant_id.clone(),
            key_id: Some(key.key.id.clone()),
            user_id: None,
            model: "gemma3:270m".to_owned(),
            target: "local/gemma3:270m".to_owned(),
            route: "/v1/chat/completions".to_owned(),
            status: 200,
            prompt_tokens: tokens,
            completion_tokens: 1,
            latency_ms: 5,
            time_to_first_token_ms: Some(2),
            cache_hit: false,
            cost_micro_usd: 0,
            prompt_id: None,
            prompt_version: None,
        });
    }
    drop(recorder);
    tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .expect("the writer stores what was queued and stops")
        .expect("writer");

    let authenticator = Authenticator::load(&store).await.expect("load");
    let actor = as_key(
        authenticator
            .authenticate(&acme.secret, NOW)
            .expect("valid"),
    );
    let report = gateway
        .usage(
            &actor,
            UsageQuery {
                by_model: true,
                ..UsageQuery::default()
            },
        )
        .await
        .expect("usage");
    assert_eq!(report.groups.len(), 1);
    assert_eq!(report.groups[0].requests, 2);
    assert_eq!(report.groups[0].prompt_tokens, 30);
    // Asking for another tenant explicitly is refused.
    assert!(matches!(
        gateway
            .usage(
                &actor,
                UsageQuery {
                    tenant_id: globex.key.tenant_id.clone(),
                    ..UsageQuery::default()
                },
            )
            .await,
        Err(GatewayError::Forbidden(_))
    ));
    let everything = gateway
        .usage(
            &Actor::Cli,
            UsageQuery {
                by_key: true,
                by_day: true,
                ..UsageQuery::default()
            },
        )
        .await
        .expect("all usage");
    assert_eq!(everything.groups.len(), 2);
    // Busiest first.
    assert_eq!(everything.groups[0].requests, 2);
    assert_eq!(everything.groups[1].prompt_tokens, 500);
    assert_eq!(everything.groups[1].key_id.as_ref(), Some(&globex.key.id));
}

#[tokio::test]
async fn keys_are_issued_to_users_whose_usage_is_counted_and_deleting_one_revokes_its_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store(&dir).await;
    let gateway = Gateway::new(store.clone());
    gateway
        .create_tenant(&Actor::Cli, "acme", Limits::default(), NOW)
        .await
        .expect("acme");
    gateway
        .create_tenant(&Actor::Cli, "globex", Limits::default(), NOW)
        .await
        .expect("globex");
    let ada = gateway
        .create_user(&Actor::Cli, "acme", "ada@acme.test", NOW)
        .await
        .expect("ada");
    assert_eq!(ada.tenant_name, "acme");
    assert!(matches!(
        gateway
            .create_user(&Actor::Cli, "acme", "ada@acme.test", NOW)
            .await,
        Err(GatewayError::Conflict(_))
    ));
    assert!(matches!(
        gateway
            .create_user(&Actor::Cli, "acme", "no spaces", NOW)
            .await,
        Err(GatewayError::Invalid { .. })
    ));
    // The same name in another tenant is another user.
    let other_ada = gateway
        .create_user(&Actor::Cli, "globex", "ada@acme.test", NOW)
        .await
        .expect("globex's ada");
    assert_ne!(other_ada.id, ada.id);

    let key_for = |user: Option<&str>, tenant: Option<&str>| KeySpec {
        user: user.map(str::to_owned),
        ..spec(tenant, Role::Member)
    };
    let ada_key = gateway
        .create_key(
            &Actor::Cli,
            key_for(Some("ada@acme.test"), Some("acme")),
            NOW,
        )
        .await
        .expect("ada's key");
    assert_eq!(ada_key.key.user_id.as_ref(), Some(&ada.id));
    assert_eq!(ada_key.key.user_name.as_deref(), Some("ada@acme.test"));
    let shared_key = gateway
        .create_key(&Actor::Cli, key_for(None, Some("acme")), NOW)
        .await
        .expect("a key of no user");
    assert!(matches!(
        gateway
            .create_key(&Actor::Cli, key_for(Some("grace"), Some("acme")), NOW)
            .await,
        Err(GatewayError::NotFound { .. })
    ));
    assert!(matches!(
        gateway
            .create_key(&Actor::Cli, key_for(Some("ada@acme.test"), None), NOW)
            .await,
        Err(GatewayError::Invalid { .. })
    ));

    // The authenticated key names its user, and usage is grouped and filtered by it.
    let authenticator = Authenticator::load(&store).await.expect("load");
    let principal = authenticator
        .authenticate(&ada_key.secret, NOW)
        .expect("valid");
    assert_eq!(principal.user_id.as_ref(), Some(&ada.id));
    let (recorder, writer) = UsageRecorder::start(store.clone());
    for (key, user, tokens) in [
        (&ada_key, Some(&ada.id), 10),
        (&ada_key, Some(&ada.id), 20),
        (&shared_key, None, 7),
    ] {
        recorder.record(UsageEvent {
            at_ms: NOW,
            tenant_id: key.key.tenant_id.clone(),
            key_id: Some(key.key.id.clone()),
            user_id: user.cloned(),
            model: "gemma3:270m".to_owned(),
            target: "local/gemma3:270m".to_owned(),
            route: "/v1/chat/completions".to_owned(),
            status: 200,
            prompt_tokens: tokens,
            completion_tokens: 0,
            latency_ms: 5,
            time_to_first_token_ms: None,
            cache_hit: false,
            cost_micro_usd: 0,
            prompt_id: None,
            prompt_version: None,
        });
    }
    drop(recorder);
    tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .expect("the writer stops")
        .expect("writer");
    let by_user = gateway
        .usage(
            &Actor::Cli,
            UsageQuery {
                by_user: true,
                ..UsageQuery::default()
            },
        )
        .await
        .expect("usage by user");
    let mut groups: Vec<(Option<String>, i64)> = by_user
        .groups
        .iter()
        .map(|group| (group.user_id.clone(), group.prompt_tokens))
        .collect();
    groups.sort();
    assert_eq!(groups, [(None, 7), (Some(ada.id.clone()), 30)]);
    let user_id = gateway
        .usage_user(&Actor::Cli, Some("acme"), "ada@acme.test")
        .await
        .expect("by name");
    assert_eq!(user_id, ada.id);
    // A tenant's key cannot name another tenant's user, even by id.
    let acme_reader = as_key(principal.clone());
    assert!(matches!(
        gateway.usage_user(&acme_reader, None, &other_ada.id).await,
        Err(GatewayError::NotFound { .. })
    ));

    // Deleting the user revokes its keys (not the tenant's other keys); history stays.
    let (deleted, revoked) = gateway
        .delete_user(&Actor::Cli, Some("acme"), "ada@acme.test", NOW + 1)
        .await
        .expect("delete");
    assert_eq!((deleted.id.as_str(), revoked), (ada.id.as_str(), 1));
    let keys = gateway.keys(&Actor::Cli, Some("acme")).await.expect("keys");
    let status = |id: &str| {
        keys.iter()
            .find(|key| key.id == id)
            .map(|key| key.status(NOW + 2))
    };
    assert_eq!(status(&ada_key.key.id), Some("revoked"));
    assert_eq!(status(&shared_key.key.id), Some("active"));
    assert_eq!(
        keys.iter()
            .find(|key| key.id == ada_key.key.id)
            .and_then(|key| key.user_name.as_deref()),
        Some("ada@acme.test"),
        "a revoked key still names its deleted user"
    );
    authenticator.refresh(&store).await.expect("refresh");
    assert!(
        authenticator
            .authenticate(&ada_key.secret, NOW + 2)
            .is_err()
    );
    let users: Vec<String> = gateway
        .users(&Actor::Cli, Some("acme"))
        .await
        .expect("users")
        .into_iter()
        .map(|user| user.name)
        .collect();
    assert!(users.is_empty(), "{users:?}");
    assert_eq!(
        gateway
            .usage_user(&Actor::Cli, None, &ada.id)
            .await
            .expect("a deleted user's usage is still readable"),
        ada.id
    );
    // The name is free again.
    gateway
        .create_user(&Actor::Cli, "acme", "ada@acme.test", NOW + 3)
        .await
        .expect("a new ada");
}

//! Flags over a real SQLite store: targeting, splits within sampling error and sticky, the
//! kill switch, definitions refused naming the field, configuration's flags, tenant isolation
//! and what survives a reopen.

use hearth_flags::{Context, ErrorCode, FlagError, FlagSpec, Flags, FlagsOptions, Reason};
use hearth_store::{IntegrityCheck, OpenOptions, Store};
use serde_json::{Value, json};

const TENANT: &str = "tenant-a";

async fn open(dir: &std::path::Path) -> Flags {
    let store = Store::open(
        dir,
        OpenOptions {
            integrity_check: IntegrityCheck::Quick,
            run_migrations: true,
        },
    )
    .await
    .unwrap();
    Flags::open(store, FlagsOptions::default()).await.unwrap()
}

fn spec(value: Value) -> FlagSpec {
    serde_json::from_value(value).unwrap()
}

fn context(value: Value) -> Context {
    let mut context = Context::new();
    for (name, value) in value.as_object().unwrap() {
        context.set(name.clone(), value.clone());
    }
    context
}

fn checkout() -> FlagSpec {
    spec(json!({
        "type": "string",
        "variants": {"classic": "classic", "express": "express", "beta": "beta"},
        "default_variant": "classic",
        "rules": [
            {"name": "staff", "when": [{"attribute": "email", "op": "ends_with", "values": ["@acme.com"]}], "variant": "beta"},
            {"when": [{"attribute": "plan", "op": "in", "values": ["pro", "team"]},
                      {"attribute": "age_days", "op": "gte", "values": [30]}], "variant": "express"},
            {"when": [{"attribute": "country", "op": "not_in", "values": ["FR"]}, {"attribute": "$tenant", "op": "exists"}],
             "split": [{"variant": "express", "weight": 50}, {"variant": "classic", "weight": 50}]}
        ]
    }))
}

#[tokio::test]
async fn rules_decide_in_order_and_the_default_serves_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let flags = open(dir.path()).await;
    flags
        .put(TENANT, "checkout", checkout(), false, 1)
        .await
        .unwrap();
    let snapshot = flags.snapshot();
    let evaluate = |attributes: Value| {
        let evaluation = snapshot
            .evaluate(TENANT, "checkout", &context(attributes))
            .unwrap();
        (evaluation.variant.to_string(), evaluation.reason)
    };
    assert_eq!(
        evaluate(json!({"email": "ada@acme.com", "plan": "pro", "age_days": 90})),
        ("beta".into(), Reason::TargetingMatch),
        "the first matching rule wins"
    );
    assert_eq!(
        evaluate(json!({"plan": "team", "age_days": 30})),
        ("express".into(), Reason::TargetingMatch)
    );
    assert_eq!(
        evaluate(json!({"plan": "team", "age_days": 29})),
        ("classic".into(), Reason::Default),
        "every condition must hold"
    );
    // Absent attributes hold no condition, not even not_in.
    assert_eq!(
        evaluate(json!({"targetingKey": "u1"})),
        ("classic".into(), Reason::Default)
    );
    let split = evaluate(json!({"targetingKey": "u1", "country": "DE", "$tenant": "t"}));
    assert_eq!(split.1, Reason::Split);
    let missing = snapshot.evaluate(
        TENANT,
        "checkout",
        &context(json!({"country": "DE", "$tenant": "t"})),
    );
    assert_eq!(missing.unwrap_err(), ErrorCode::TargetingKeyMissing);
    assert_eq!(
        snapshot
            .evaluate(TENANT, "nope", &Context::new())
            .unwrap_err(),
        ErrorCode::FlagNotFound
    );
}

#[tokio::test]
async fn a_boolean_flag_needs_no_variants_and_the_kill_switch_serves_its_default() {
    let dir = tempfile::tempdir().unwrap();
    let flags = open(dir.path()).await;
    let info = flags
        .put(
            TENANT,
            "dark-mode",
            spec(json!({"rules": [{"variant": "on"}]})),
            false,
            1,
        )
        .await
        .unwrap();
    assert_eq!(info.flag.spec.default_variant.as_deref(), Some("off"));
    let on = flags.snapshot();
    let evaluation = on.evaluate(TENANT, "dark-mode", &Context::new()).unwrap();
    assert_eq!(
        (evaluation.value, evaluation.reason),
        (&json!(true), Reason::TargetingMatch)
    );
    flags
        .set_enabled(TENANT, "dark-mode", false, 2)
        .await
        .unwrap();
    let off = flags.snapshot();
    let evaluation = off.evaluate(TENANT, "dark-mode", &Context::new()).unwrap();
    assert_eq!(
        (evaluation.value, evaluation.reason),
        (&json!(false), Reason::Disabled)
    );
    // A snapshot taken before the change still reads as it was.
    let before = on.evaluate(TENANT, "dark-mode", &Context::new()).unwrap();
    assert_eq!(before.value, &json!(true));

    flags
        .put(
            TENANT,
            "static",
            spec(json!({"type": "number", "variants": {"a": 1.5}, "default_variant": "a"})),
            false,
            1,
        )
        .await
        .unwrap();
    let evaluation = flags.snapshot();
    let evaluation = evaluation
        .evaluate(TENANT, "static", &Context::new())
        .unwrap();
    assert_eq!(
        (evaluation.value, evaluation.reason),
        (&json!(1.5), Reason::Static)
    );
}

#[tokio::test]
async fn splits_land_within_sampling_error_and_stay_sticky_as_they_grow() {
    let dir = tempfile::tempdir().unwrap();
    let flags = open(dir.path()).await;
    let rollout = |percent: u32| {
        spec(
            json!({"split": [{"variant": "on", "weight": percent}, {"variant": "off", "weight": 100 - percent}]}),
        )
    };
    flags
        .put(TENANT, "new-ui", rollout(25), false, 1)
        .await
        .unwrap();
    let at_25 = flags.snapshot();
    let units = 100_000;
    let on_at_25: Vec<bool> = (0..units)
        .map(|unit| {
            let evaluation = at_25
                .evaluate(TENANT, "new-ui", &Context::for_key(format!("user-{unit}")))
                .unwrap();
            evaluation.value == &json!(true)
        })
        .collect();
    let count = on_at_25.iter().filter(|on| **on).count() as f64;
    // 25 % of 100,000 with a binomial standard deviation of 137: within 4 of them.
    let sd = (units as f64 * 0.25 * 0.75).sqrt();
    assert!(
        (count - 25_000.0).abs() < 4.0 * sd,
        "{count} of {units} on at 25 %"
    );

    flags
        .put(TENANT, "new-ui", rollout(50), true, 2)
        .await
        .unwrap();
    let at_50 = flags.snapshot();
    let mut on_at_50 = 0;
    for (unit, was_on) in on_at_25.iter().enumerate() {
        let key = format!("user-{unit}");
        let now_on = at_50
            .evaluate(TENANT, "new-ui", &Context::for_key(key.as_str()))
            .unwrap()
            .value
            == &json!(true);
        assert!(
            !was_on || now_on,
            "{key} was on at 25 % and must stay on at 50 %"
        );
        on_at_50 += usize::from(now_on);
        // The same unit, asked again, gets the same answer.
        let again = at_50
            .evaluate(TENANT, "new-ui", &Context::for_key(key.as_str()))
            .unwrap();
        assert_eq!(again.value, &json!(now_on));
    }
    let sd = (units as f64 * 0.25).sqrt();
    assert!(
        (on_at_50 as f64 - 50_000.0).abs() < 4.0 * sd,
        "{on_at_50} on at 50 %"
    );
}

#[tokio::test]
async fn bucketing_by_user_keeps_a_whole_user_on_one_variant() {
    let dir = tempfile::tempdir().unwrap();
    let flags = open(dir.path()).await;
    flags
        .put(
            TENANT,
            "per-user",
            spec(json!({"bucket_by": "$user", "split": [{"variant": "on", "weight": 1}, {"variant": "off", "weight": 1}]})),
            false,
            1,
        )
        .await
        .unwrap();
    let snapshot = flags.snapshot();
    for user in 0..200 {
        let variants: std::collections::HashSet<String> = (0..20)
            .map(|device| {
                let mut context = Context::for_key(format!("device-{device}"));
                context.set("$user", json!(format!("user-{user}")));
                snapshot
                    .evaluate(TENANT, "per-user", &context)
                    .unwrap()
                    .variant
                    .to_string()
            })
            .collect();
        assert_eq!(variants.len(), 1, "user-{user} saw {variants:?}");
    }
}

#[tokio::test]
async fn bad_definitions_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let flags = open(dir.path()).await;
    let cases = [
        (json!({"type": "string"}), "variants"),
        (
            json!({"type": "string", "variants": {"a": 1}, "default_variant": "a"}),
            "variants.a",
        ),
        (
            json!({"type": "string", "variants": {"a": "x"}, "default_variant": "b"}),
            "default_variant",
        ),
        (json!({"rules": [{"variant": "maybe"}]}), "rules[0].variant"),
        (json!({"rules": [{"when": []}]}), "rules[0]"),
        (
            json!({"rules": [{"when": [{"attribute": "age", "op": "gt", "values": ["ten"]}], "variant": "on"}]}),
            "rules[0].when[0].values",
        ),
        (json!({"split": [{"variant": "on", "weight": 0}]}), "split"),
        (
            json!({"split": [{"variant": "onn", "weight": 1}]}),
            "split[0].variant",
        ),
        (
            json!({"metadata": {"owner": {"team": "x"}}}),
            "metadata.owner",
        ),
    ];
    for (value, field) in cases {
        let error = flags
            .put(TENANT, "bad", spec(value.clone()), false, 1)
            .await
            .unwrap_err();
        assert_eq!(error.field(), Some(field), "for {value}: {error}");
    }
    let error = flags
        .put(TENANT, "no spaces", spec(json!({})), false, 1)
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("key"));
    assert!(flags.list(TENANT).is_empty());
}

#[tokio::test]
async fn configured_flags_follow_the_configuration_and_refuse_api_changes() {
    let dir = tempfile::tempdir().unwrap();
    let flags = open(dir.path()).await;
    flags
        .put(TENANT, "api-flag", spec(json!({})), false, 1)
        .await
        .unwrap();
    flags
        .apply_config(
            vec![
                (
                    TENANT.into(),
                    "configured".into(),
                    spec(json!({"rules": [{"variant": "on"}]})),
                ),
                (TENANT.into(), "gone-later".into(), spec(json!({}))),
            ],
            2,
        )
        .await
        .unwrap();
    assert_eq!(flags.list(TENANT).len(), 3);
    let refused = flags
        .put(TENANT, "configured", spec(json!({})), true, 3)
        .await;
    assert!(matches!(refused, Err(FlagError::Conflict(_))));
    assert!(matches!(
        flags.delete(TENANT, "configured").await,
        Err(FlagError::Conflict(_))
    ));
    // A bad configured flag changes nothing, and names itself.
    let error = flags
        .apply_config(
            vec![(
                TENANT.into(),
                "broken".into(),
                spec(json!({"default_variant": "x"})),
            )],
            3,
        )
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("flags.broken.default_variant"));
    assert_eq!(flags.list(TENANT).len(), 3);
    // A reload without `gone-later` removes it and keeps the API's flag.
    flags
        .apply_config(
            vec![(
                TENANT.into(),
                "configured".into(),
                spec(json!({"rules": [{"variant": "on"}]})),
            )],
            4,
        )
        .await
        .unwrap();
    let keys: Vec<String> = flags
        .list(TENANT)
        .iter()
        .map(|info| info.flag.key.clone())
        .collect();
    assert_eq!(keys, ["api-flag", "configured"]);

    // All of it survives a restart.
    drop(flags);
    let reopened = open(dir.path()).await;
    let keys: Vec<String> = reopened
        .list(TENANT)
        .iter()
        .map(|info| info.flag.key.clone())
        .collect();
    assert_eq!(keys, ["api-flag", "configured"]);
    let snapshot = reopened.snapshot();
    let evaluation = snapshot
        .evaluate(TENANT, "configured", &Context::new())
        .unwrap();
    assert_eq!(evaluation.value, &json!(true));
}

#[tokio::test]
async fn tenants_see_only_their_own_flags() {
    let dir = tempfile::tempdir().unwrap();
    let flags = open(dir.path()).await;
    flags
        .put(TENANT, "mine", spec(json!({})), false, 1)
        .await
        .unwrap();
    assert!(flags.list("tenant-b").is_empty());
    let snapshot = flags.snapshot();
    assert_eq!(
        snapshot
            .evaluate("tenant-b", "mine", &Context::new())
            .unwrap_err(),
        ErrorCode::FlagNotFound
    );
    assert!(matches!(
        flags.delete("tenant-b", "mine").await,
        Err(FlagError::NotFound(_))
    ));
}

//! Experiments over a real SQLite store: sticky assignment in the weights' proportions with a
//! holdout, ramps that keep units where they were, the lifecycle, exposures and feedback
//! joined to the right variant, results with their statistics, a sample-ratio mismatch
//! caught, and tenant isolation.

use std::collections::HashMap;

use hearth_experiments::{
    ExperimentError, ExperimentSpec, Experiments, Measured, MetricKind, Status, Target, Units,
};
use hearth_store::{IntegrityCheck, OpenOptions, Store};
use serde_json::json;

const TENANT: &str = "tenant-a";

async fn open(dir: &std::path::Path) -> Experiments {
    let store = Store::open(
        dir,
        OpenOptions {
            integrity_check: IntegrityCheck::Quick,
            run_migrations: true,
        },
    )
    .await
    .unwrap();
    Experiments::open(store).await.unwrap()
}

fn spec(weights: [u32; 3], holdout: f64) -> ExperimentSpec {
    serde_json::from_value(json!({
        "target": {"model": "support-bot"},
        "variants": [
            {"name": "control", "weight": weights[0]},
            {"name": "small", "weight": weights[1], "model": "gemma3:270m"},
            {"name": "warm", "weight": weights[2], "parameters": {"temperature": 0.9}}
        ],
        "holdout_percent": holdout,
        "metrics": [{"name": "thumbs_up", "kind": "boolean"}, {"name": "rating", "kind": "numeric"}]
    }))
    .unwrap()
}

fn target() -> Target {
    Target::Model("support-bot".into())
}

fn user(unit: &str) -> Units<'_> {
    Units {
        user: Some(unit),
        ..Units::default()
    }
}

#[tokio::test]
async fn units_are_assigned_stickily_in_the_weights_proportions_with_a_holdout() {
    let dir = tempfile::tempdir().unwrap();
    let experiments = open(dir.path()).await;
    experiments
        .define(TENANT, "bot", spec([50, 30, 20], 10.0), 1)
        .await
        .unwrap();
    assert!(
        experiments.assign(TENANT, &target(), user("u")).is_none(),
        "a draft assigns nothing"
    );
    experiments.start(TENANT, "bot", 2).await.unwrap();

    let units = 100_000;
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut first: Vec<Option<String>> = Vec::with_capacity(units);
    for unit in 0..units {
        let name = format!("user-{unit}");
        let variant = experiments
            .assign(TENANT, &target(), user(&name))
            .map(|assignment| assignment.variant.name);
        *counts
            .entry(variant.clone().unwrap_or_else(|| "holdout".into()))
            .or_default() += 1;
        first.push(variant);
    }
    let share = |name: &str| counts.get(name).copied().unwrap_or(0) as f64;
    let within = |observed: f64, expected_share: f64, of: f64| {
        let sd = (of * expected_share * (1.0 - expected_share)).sqrt();
        (observed - of * expected_share).abs() < 4.0 * sd
    };
    assert!(within(share("holdout"), 0.10, units as f64), "{counts:?}");
    let assigned = units as f64 - share("holdout");
    assert!(within(share("control"), 0.5, assigned), "{counts:?}");
    assert!(within(share("small"), 0.3, assigned), "{counts:?}");
    assert!(within(share("warm"), 0.2, assigned), "{counts:?}");

    // The same unit gets the same answer, also from a service opened afresh (another node).
    drop(experiments);
    let again = open(dir.path()).await;
    for (unit, was) in first.iter().enumerate().step_by(97) {
        let name = format!("user-{unit}");
        let now = again
            .assign(TENANT, &target(), user(&name))
            .map(|a| a.variant.name);
        assert_eq!(&now, was, "{name}");
    }
    // A request without its unit is not in the experiment.
    assert!(again.assign(TENANT, &target(), Units::default()).is_none());
    // Nor is another tenant's, or another target's.
    assert!(
        again
            .assign("tenant-b", &target(), user("user-1"))
            .is_none()
    );
    assert!(
        again
            .assign(TENANT, &Target::Model("other".into()), user("user-1"))
            .is_none()
    );
}

#[tokio::test]
async fn a_ramp_keeps_units_on_the_variant_whose_share_grew() {
    let dir = tempfile::tempdir().unwrap();
    let experiments = open(dir.path()).await;
    experiments
        .define(TENANT, "bot", spec([90, 10, 0], 0.0), 1)
        .await
        .unwrap();
    experiments.start(TENANT, "bot", 2).await.unwrap();
    let before: Vec<String> = (0..5000)
        .map(|unit| {
            let name = format!("user-{unit}");
            experiments
                .assign(TENANT, &target(), user(&name))
                .unwrap()
                .variant
                .name
        })
        .collect();
    assert!(
        !before.iter().any(|name| name == "warm"),
        "a zero weight takes no one"
    );
    // 10 % → 50 %: the control shrinks, `small` grows from the top of the control's range.
    let ramp = HashMap::from([("control".to_string(), 50), ("small".to_string(), 50)]);
    experiments
        .set_weights(TENANT, "bot", &ramp, 3)
        .await
        .unwrap();
    for (unit, was) in before.iter().enumerate() {
        let name = format!("user-{unit}");
        let now = experiments
            .assign(TENANT, &target(), user(&name))
            .unwrap()
            .variant
            .name;
        if was == "small" {
            assert_eq!(now, "small", "{name} was in the treatment and stays");
        }
    }
    let unknown = HashMap::from([("large".to_string(), 5)]);
    let error = experiments
        .set_weights(TENANT, "bot", &unknown, 4)
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("weights.large"));
}

#[tokio::test]
async fn the_lifecycle_pauses_stops_and_serves_a_winner_to_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let experiments = open(dir.path()).await;
    experiments
        .define(TENANT, "bot", spec([1, 1, 1], 0.0), 1)
        .await
        .unwrap();
    experiments
        .define(TENANT, "rival", spec([1, 1, 0], 0.0), 1)
        .await
        .unwrap();
    experiments.start(TENANT, "bot", 2).await.unwrap();
    assert!(matches!(
        experiments.start(TENANT, "rival", 3).await,
        Err(ExperimentError::Conflict(_))
    ));
    assert!(matches!(
        experiments
            .define(TENANT, "bot", spec([1, 1, 1], 5.0), 3)
            .await,
        Err(ExperimentError::Conflict(_))
    ));
    experiments.pause(TENANT, "bot", 4).await.unwrap();
    assert!(experiments.assign(TENANT, &target(), user("u1")).is_none());
    experiments.start(TENANT, "bot", 5).await.unwrap();
    assert!(experiments.assign(TENANT, &target(), user("u1")).is_some());
    let unknown = experiments
        .stop(TENANT, "bot", Some("giant"), 6)
        .await
        .unwrap_err();
    assert_eq!(unknown.field(), Some("winner"));
    let stopped = experiments
        .stop(TENANT, "bot", Some("warm"), 6)
        .await
        .unwrap();
    assert_eq!(stopped.status, Status::Stopped);
    for unit in ["u1", "u2", "u3"] {
        let assignment = experiments.assign(TENANT, &target(), user(unit)).unwrap();
        assert_eq!(assignment.variant.name, "warm");
        assert!(!assignment.recorded, "a winner serving is not an exposure");
    }
    // Even a request without a unit gets the winner.
    let anyone = experiments
        .assign(TENANT, &target(), Units::default())
        .unwrap();
    assert_eq!(anyone.variant.name, "warm");
}

#[tokio::test]
async fn bad_definitions_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let experiments = open(dir.path()).await;
    let cases = [
        (
            json!({"target": {"model": "m"}, "variants": [{"name": "a", "weight": 1}]}),
            "variants",
        ),
        (
            json!({"target": {"model": "m"}, "variants": [{"name": "a", "weight": 0}, {"name": "b", "weight": 0}]}),
            "variants",
        ),
        (
            json!({"target": {"model": "m"}, "variants": [{"name": "a", "weight": 1}, {"name": "a", "weight": 1}]}),
            "variants[1].name",
        ),
        (
            json!({"target": {"model": "m"}, "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1, "prompt_version": 2}]}),
            "variants[1].prompt_version",
        ),
        (
            json!({"target": {"model": "m"}, "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}], "holdout_percent": 80}),
            "holdout_percent",
        ),
        (
            json!({"target": {"model": "m"}, "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}], "metrics": [{"name": "latency_ms", "kind": "numeric"}]}),
            "metrics[0].name",
        ),
    ];
    for (value, field) in cases {
        let spec: ExperimentSpec = serde_json::from_value(value.clone()).unwrap();
        let error = experiments
            .define(TENANT, "bad", spec, 1)
            .await
            .unwrap_err();
        assert_eq!(error.field(), Some(field), "for {value}: {error}");
    }
    assert!(experiments.list(TENANT).is_empty());
}

fn measured(request: &str, latency_ms: i64) -> Measured {
    Measured {
        request_id: request.to_string(),
        response_id: Some(format!("chatcmpl-{request}")),
        at_ms: 10,
        latency_ms,
        prompt_tokens: 20,
        completion_tokens: 10,
        ..Measured::default()
    }
}

#[tokio::test]
async fn feedback_joins_the_variant_that_served_the_request_and_results_compare_per_unit() {
    let dir = tempfile::tempdir().unwrap();
    let experiments = open(dir.path()).await;
    experiments
        .define(TENANT, "bot", spec([1, 1, 0], 0.0), 1)
        .await
        .unwrap();
    experiments.start(TENANT, "bot", 2).await.unwrap();
    // 400 users, two requests each; the `small` arm answers 40 ms slower, and its users give
    // a thumbs up twice as often.
    let mut thumbs: HashMap<String, usize> = HashMap::new();
    let mut expected_units: HashMap<String, u64> = HashMap::new();
    let mut requests = Vec::new();
    for unit in 0..400 {
        let name = format!("user-{unit}");
        let assignment = experiments.assign(TENANT, &target(), user(&name)).unwrap();
        *expected_units
            .entry(assignment.variant.name.clone())
            .or_default() += 1;
        for turn in 0..2 {
            let request = format!("req-{unit}-{turn}");
            let slower = if assignment.variant.name == "small" {
                40
            } else {
                0
            };
            let latency = 100 + slower + (unit % 7) as i64 * 3 + turn;
            assert!(experiments.record(TENANT, &assignment, measured(&request, latency)));
            requests.push((request, assignment.variant.name.clone(), unit));
        }
    }
    experiments.flush().await;
    for (request, variant, unit) in &requests {
        let likes = if variant == "small" {
            unit % 2 == 0
        } else {
            unit % 4 == 0
        };
        if likes && request.ends_with("-0") {
            // By the response's id for one turn, as an app that keeps completion ids would.
            let id = format!("chatcmpl-{request}");
            let key = experiments
                .feedback(TENANT, &id, "thumbs_up", 1.0, 20)
                .await
                .unwrap();
            assert_eq!(
                &key.variant, variant,
                "feedback joins the variant that served it"
            );
            *thumbs.entry(variant.clone()).or_default() += 1;
        }
        if request.ends_with("-1") {
            experiments
                .feedback(TENANT, request, "rating", (unit % 5) as f64 + 1.0, 20)
                .await
                .unwrap();
        }
    }
    let results = experiments.results(TENANT, "bot").await.unwrap();
    for (variant, units, requests) in &results.exposures {
        let expected = expected_units.get(variant).copied().unwrap_or(0);
        assert_eq!(*units, expected, "{variant} units");
        assert_eq!(*requests, expected * 2, "{variant} requests");
    }
    assert!(
        !results.sample_ratio_mismatch(),
        "{:?}",
        results.sample_ratio_p_value
    );
    let metric = |name: &str| results.metrics.iter().find(|m| m.name == name).unwrap();
    let thumbs_up = metric("thumbs_up");
    assert_eq!(thumbs_up.kind, MetricKind::Boolean);
    for (variant, summary, _) in &thumbs_up.variants {
        assert_eq!(
            summary.count,
            expected_units.get(variant).copied().unwrap_or(0)
        );
        assert_eq!(
            summary.sum as usize,
            thumbs.get(variant).copied().unwrap_or(0)
        );
    }
    let small_thumbs = thumbs_up.variants[1].2.unwrap();
    assert!(
        small_thumbs.difference > 0.0 && small_thumbs.significant(0.05),
        "{small_thumbs:?}"
    );
    let latency = metric("latency_ms").variants[1].2.unwrap();
    assert!((latency.difference - 40.0).abs() < 1.0, "{latency:?}");
    assert!(latency.significant(0.05) && latency.sequentially_significant());
    let tokens = metric("prompt_tokens").variants[1].2.unwrap();
    assert_eq!(tokens.difference, 0.0);
    assert!(!tokens.significant(0.05));

    // Feedback that names nothing, an undeclared metric, or a non-boolean boolean is refused.
    assert!(matches!(
        experiments
            .feedback(TENANT, "req-none", "thumbs_up", 1.0, 30)
            .await,
        Err(ExperimentError::NotFound(_))
    ));
    let undeclared = experiments
        .feedback(TENANT, "req-0-0", "stars", 1.0, 30)
        .await;
    assert_eq!(undeclared.unwrap_err().field(), Some("metric"));
    let half = experiments
        .feedback(TENANT, "req-0-0", "thumbs_up", 0.5, 30)
        .await;
    assert_eq!(half.unwrap_err().field(), Some("value"));
    // Another tenant cannot reach this tenant's requests.
    assert!(matches!(
        experiments
            .feedback("tenant-b", "req-0-0", "thumbs_up", 1.0, 30)
            .await,
        Err(ExperimentError::NotFound(_))
    ));
}

#[tokio::test]
async fn lost_exposures_of_one_arm_show_as_a_sample_ratio_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let experiments = open(dir.path()).await;
    experiments
        .define(TENANT, "bot", spec([1, 1, 0], 0.0), 1)
        .await
        .unwrap();
    experiments.start(TENANT, "bot", 2).await.unwrap();
    for unit in 0..2000 {
        let name = format!("user-{unit}");
        let assignment = experiments.assign(TENANT, &target(), user(&name)).unwrap();
        // A broken recorder that loses a fifth of the treatment's requests.
        if assignment.variant.name == "small" && unit % 5 == 0 {
            continue;
        }
        experiments.record(TENANT, &assignment, measured(&format!("r{unit}"), 100));
    }
    experiments.flush().await;
    let results = experiments.results(TENANT, "bot").await.unwrap();
    assert!(
        results.sample_ratio_mismatch(),
        "{:?}",
        results.sample_ratio_p_value
    );
}

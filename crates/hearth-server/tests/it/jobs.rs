//! Jobs over the real router: each tenant's admins define and run their tenant's jobs,
//! readers read them and their history, built-in work is the instance's alone, and every
//! refusal names the field at fault.

use axum::http::{Method, StatusCode};
use serde_json::json;

use hearth_gateway::LimitDefaults;

use crate::gate::gated;
use crate::memory::call;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_admins_define_and_run_jobs_that_readers_see_and_other_tenants_do_not() {
    let server = gated(LimitDefaults::default()).await;
    let keys = &server.keys;
    let router = &server.router;
    let job = json!({
        "name": "nightly",
        "schedule": "0 3 * * *",
        "timezone": "Europe/Paris",
        "action": {"type": "webhook", "url": "https://example.com/hook", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
        "retries": 2,
    });

    // Members do not define jobs; admins do.
    let (status, _) = call(
        router,
        Method::POST,
        "/v1/jobs",
        Some(job.clone()),
        Some(&keys.acme_member),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/jobs",
        Some(job.clone()),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["object"], "job");
    assert_eq!(body["source"], "api");
    assert_eq!(body["signed"], true);
    assert!(
        body["action"].get("secret").is_none(),
        "the secret is never shown: {body}"
    );
    assert!(
        body["next_run_at"].as_str().unwrap().ends_with('Z'),
        "{body}"
    );
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/jobs",
        Some(job),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Readers list it; another tenant does not see it.
    let (status, body) = call(
        router,
        Method::GET,
        "/v1/jobs",
        None,
        Some(&keys.acme_reader),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0]["name"], "nightly");
    let (status, body) = call(
        router,
        Method::GET,
        "/v1/jobs",
        None,
        Some(&keys.globex_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], json!([]));
    let (status, _) = call(
        router,
        Method::GET,
        "/v1/jobs/nightly",
        None,
        Some(&keys.globex_admin),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A job that calls a tenant's own plugin tool: a missing plugin fails the run, recorded.
    let tool_job = json!({"action": {"type": "plugin", "plugin": "nothing", "tool": "here"}});
    let (status, body) = call(
        router,
        Method::PUT,
        "/v1/jobs/probe",
        Some(tool_job),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = call(
        router,
        Method::POST,
        "/v1/jobs/probe/run",
        Some(json!({})),
        Some(&keys.acme_reader),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, run) = call(
        router,
        Method::POST,
        "/v1/jobs/probe/run",
        Some(json!({"wait_s": 30})),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    assert_eq!(run["object"], "job.run");
    assert_eq!(run["status"], "failed");
    assert_eq!(run["reason"], "manual");
    assert!(run["error"].as_str().unwrap().contains("nothing"), "{run}");
    assert_eq!(run["attempt_list"][0]["status"], "failed");
    let id = run["id"].as_str().unwrap();

    let (status, body) = call(
        router,
        Method::GET,
        "/v1/jobs/probe/runs",
        None,
        Some(&keys.acme_reader),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0]["id"], id);
    let (status, body) = call(
        router,
        Method::GET,
        &format!("/v1/jobs/probe/runs/{id}"),
        None,
        Some(&keys.acme_reader),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["attempts"], 1);
    let (status, _) = call(
        router,
        Method::GET,
        &format!("/v1/jobs/nightly/runs/{id}"),
        None,
        Some(&keys.acme_reader),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a run is found under its own job only"
    );
    let (status, _) = call(
        router,
        Method::GET,
        &format!("/v1/jobs/probe/runs/{id}"),
        None,
        Some(&keys.globex_admin),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Defining and running were audited.
    let (status, body) = call(
        router,
        Method::GET,
        "/admin/v1/audit",
        None,
        Some(&keys.instance_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let actions: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"job.define") && actions.contains(&"job.run"),
        "{actions:?}"
    );

    let (status, body) = call(
        router,
        Method::DELETE,
        "/v1/jobs/nightly",
        None,
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"id": "nightly", "object": "job.deleted", "deleted": true})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_field_and_built_in_work_is_the_instances_own() {
    let server = gated(LimitDefaults::default()).await;
    let admin = Some(server.keys.acme_admin.as_str());
    let router = &server.router;
    let noop = json!({"type": "builtin", "name": "noop"});

    let (status, body) = call(
        router,
        Method::PUT,
        "/v1/jobs/sweep",
        Some(json!({"action": noop})),
        admin,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["param"], "action.type");
    let instance = Some(server.keys.instance_admin.as_str());
    let (status, body) = call(
        router,
        Method::PUT,
        "/v1/jobs/sweep",
        Some(json!({"action": noop})),
        instance,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, run) = call(
        router,
        Method::POST,
        "/v1/jobs/sweep/run",
        Some(json!({"wait_s": 30})),
        instance,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    assert_eq!(run["status"], "succeeded");

    let hook = json!({"type": "webhook", "url": "https://example.com/hook"});
    for (body, param) in [
        (json!({"schedule": "* * *", "action": hook}), "schedule"),
        (
            json!({"schedule": "* * * * *", "timezone": "Moon/Base", "action": hook}),
            "timezone",
        ),
        (json!({"trigger": "orders..x", "action": hook}), "trigger"),
        (json!({"after": ["nope"], "action": hook}), "after[0]"),
        (json!({"retries": 11, "action": hook}), "retries"),
        (json!({"timeout_ms": 0, "action": hook}), "timeout_ms"),
        (json!({"catch_up": "once", "action": hook}), "catch_up"),
        (
            json!({"action": {"type": "webhook", "url": "ftp://example.com"}}),
            "action.url",
        ),
        (
            json!({"action": {"type": "webhook", "url": "https://example.com", "secret": "not base64!"}}),
            "action.secret",
        ),
        (json!({"name": "other", "action": hook}), "name"),
    ] {
        let (status, answer) = call(
            router,
            Method::PUT,
            "/v1/jobs/bad",
            Some(body.clone()),
            admin,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["param"], param, "{body}: {answer}");
    }
    let (status, answer) = call(
        router,
        Method::PUT,
        "/v1/jobs/Bad!",
        Some(json!({"action": hook})),
        admin,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["param"], "name");

    // A cycle through two jobs.
    call(
        router,
        Method::PUT,
        "/v1/jobs/first",
        Some(json!({"action": hook})),
        admin,
    )
    .await;
    let (status, _) = call(
        router,
        Method::PUT,
        "/v1/jobs/second",
        Some(json!({"after": ["first"], "action": hook})),
        admin,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = call(
        router,
        Method::PUT,
        "/v1/jobs/first",
        Some(json!({"after": ["second"], "action": hook})),
        admin,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["param"], "after");
    let (status, answer) = call(router, Method::DELETE, "/v1/jobs/first", None, admin).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let (status, answer) = call(
        router,
        Method::POST,
        "/v1/jobs/nope/run",
        Some(json!({})),
        admin,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
}

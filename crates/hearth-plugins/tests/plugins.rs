//! The plugin host against real components: the sample plugins of `plugins/`, built from
//! source for wasm32-wasip2, in a real SQLite store and a real events log.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hearth_events::{Events, EventsOptions};
use hearth_plugins::samples::{Sample, sample};
use hearth_plugins::{
    CallOutcome, GuestEvent, PluginError, PluginEvent, Plugins, PluginsOptions, StopReason,
};
use hearth_store::{IntegrityCheck, OpenOptions, Store};
use serde_json::{Value, json};

struct Host {
    dir: tempfile::TempDir,
    store: Store,
    events: Arc<Events>,
    plugins: Plugins,
    seen: Arc<Mutex<Vec<PluginEvent>>>,
}

async fn open_plugins(
    dir: &std::path::Path,
    store: &Store,
    events: &Arc<Events>,
    seen: &Arc<Mutex<Vec<PluginEvent>>>,
) -> Plugins {
    open_plugins_with(dir, store, events, seen, false).await
}

async fn open_plugins_with(
    dir: &std::path::Path,
    store: &Store,
    events: &Arc<Events>,
    seen: &Arc<Mutex<Vec<PluginEvent>>>,
    allow_internal_hosts: bool,
) -> Plugins {
    let seen = seen.clone();
    Plugins::open(
        PluginsOptions {
            dir: dir.join("plugins"),
            max_instances: 200,
            trusted_keys: hearth_plugins::TrustedKeys::default(),
            allow_unsigned: true,
            allow_internal_hosts,
            memory: Some(Arc::new(hearth_memory::Memory::new(
                store.clone(),
                dir,
                hearth_memory::MemoryOptions::default(),
            ))),
        },
        store.clone(),
        Some(events.clone()),
        Some(Arc::new(move |event| seen.lock().unwrap().push(event))),
    )
    .await
    .unwrap()
}

async fn host() -> Host {
    host_with(false).await
}

async fn host_with(allow_internal_hosts: bool) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let options = OpenOptions {
        integrity_check: IntegrityCheck::Quick,
        run_migrations: true,
    };
    let store = Store::open(dir.path(), options).await.unwrap();
    let events = Arc::new(
        Events::open(dir.path(), EventsOptions::default())
            .await
            .unwrap(),
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let plugins = open_plugins_with(dir.path(), &store, &events, &seen, allow_internal_hosts).await;
    Host {
        dir,
        store,
        events,
        plugins,
        seen,
    }
}

/// A sample's manifest with `replace` applied (a name, a version, a capability or a limit).
fn manifest_with(sample: &Sample, from: &str, to: &str) -> String {
    assert!(
        sample.manifest.contains(from),
        "{from:?} not in the manifest"
    );
    sample.manifest.replacen(from, to, 1)
}

fn stop_reason(result: Result<hearth_plugins::ToolOutput, PluginError>) -> StopReason {
    match result {
        Err(PluginError::Stopped { reason, .. }) => reason,
        other => panic!("expected a stopped call, got {other:?}"),
    }
}

async fn echo(plugins: &Plugins, plugin: &str) -> String {
    plugins
        .call_tool(plugin, "echo", r#"{"hello":"world"}"#, "tenant-a")
        .await
        .unwrap()
        .output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_plugin_lists_its_tools_and_answers_calls() {
    let host = host().await;
    let calculator = sample("calculator");
    let info = host
        .plugins
        .install(&calculator.manifest, &calculator.component, None)
        .await
        .unwrap();
    assert_eq!(info.manifest.name, "calculator");
    assert_eq!(info.tools.len(), 1);
    assert_eq!(info.tools[0].name, "convert");
    let schema: Value = serde_json::from_str(&info.tools[0].parameters).unwrap();
    assert_eq!(schema["required"], json!(["value", "from", "to"]));

    let output = host
        .plugins
        .call_tool(
            "calculator",
            "convert",
            r#"{"value": 5, "from": "km", "to": "mi"}"#,
            "t",
        )
        .await
        .unwrap();
    let answer: Value = serde_json::from_str(&output.output).unwrap();
    assert_eq!(answer, json!({"value": 3.106856, "unit": "mi"}));

    // The tool's own error is an answer, not a stop.
    match host
        .plugins
        .call_tool(
            "calculator",
            "convert",
            r#"{"value": 1, "from": "kg", "to": "m"}"#,
            "t",
        )
        .await
    {
        Err(PluginError::ToolFailed(message)) => assert!(message.contains("mass"), "{message}"),
        other => panic!("expected the tool's error, got {other:?}"),
    }
    match host
        .plugins
        .call_tool("calculator", "divide", "{}", "t")
        .await
    {
        Err(PluginError::ToolNotFound { tool, .. }) => assert_eq!(tool, "divide"),
        other => panic!("expected an unknown tool, got {other:?}"),
    }
    match host
        .plugins
        .call_tool("calculator", "convert", "[1]", "t")
        .await
    {
        Err(PluginError::InvalidArguments { field, .. }) => assert_eq!(field, "arguments"),
        other => panic!("expected refused arguments, got {other:?}"),
    }
    assert!(matches!(
        host.plugins.call_tool("abacus", "convert", "{}", "t").await,
        Err(PluginError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_misbehaving_call_is_stopped_with_its_reason_while_another_plugin_keeps_answering() {
    let host = host().await;
    let unruly = sample("unruly");
    host.plugins
        .install(
            &manifest_with(
                &unruly,
                "timeout_ms = 200",
                "timeout_ms = 100\nfailures_to_disable = 100",
            ),
            &unruly.component,
            None,
        )
        .await
        .unwrap();
    let calculator = sample("calculator");
    host.plugins
        .install(&calculator.manifest, &calculator.component, None)
        .await
        .unwrap();

    // A runaway loop: stopped by its time limit, while the calculator answers meanwhile.
    let spinning = {
        let plugins = host.plugins.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let result = plugins.call_tool("unruly", "spin", "{}", "t").await;
            (result, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    for _ in 0..20 {
        host.plugins
            .call_tool(
                "calculator",
                "convert",
                r#"{"value": 1, "from": "m", "to": "cm"}"#,
                "t",
            )
            .await
            .unwrap();
    }
    let (result, elapsed) = spinning.await.unwrap();
    assert_eq!(stop_reason(result), StopReason::Cpu);
    assert!(
        elapsed >= Duration::from_millis(100),
        "stopped early: {elapsed:?}"
    );
    assert_eq!(echo(&host.plugins, "unruly").await, r#"{"hello":"world"}"#);

    // A memory bomb: trapped by the limiter with the memory reason, in the same call.
    let result = host.plugins.call_tool("unruly", "grow", "{}", "t").await;
    assert_eq!(stop_reason(result), StopReason::Memory);
    assert_eq!(echo(&host.plugins, "unruly").await, r#"{"hello":"world"}"#);

    // A panic: a trap.
    let result = host.plugins.call_tool("unruly", "panic", "{}", "t").await;
    assert_eq!(stop_reason(result), StopReason::Trap);
    assert_eq!(echo(&host.plugins, "unruly").await, r#"{"hello":"world"}"#);

    // Reading a host file: there is no file system to read, so the plugin's own call fails.
    match host
        .plugins
        .call_tool("unruly", "read_file", "{}", "t")
        .await
    {
        Err(PluginError::ToolFailed(message)) => {
            assert!(message.starts_with("cannot read /etc/passwd"), "{message}");
            assert!(!message.contains("root:"), "{message}");
        }
        other => panic!("expected the read to fail inside the plugin, got {other:?}"),
    }

    // Every stop was reported with its reason.
    let stops: Vec<StopReason> = host
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|event| match event {
            PluginEvent::Called {
                outcome: CallOutcome::Stopped(reason),
                ..
            } => Some(*reason),
            _ => None,
        })
        .collect();
    assert_eq!(
        stops,
        [StopReason::Cpu, StopReason::Memory, StopReason::Trap]
    );
    let logs = host.plugins.logs("unruly", 10).unwrap();
    assert_eq!(logs.len(), 3, "{logs:?}");
    assert!(
        logs[1].message.contains("call stopped (memory)"),
        "{logs:?}"
    );
    // Each call reports the largest memory the plugin's instances grew to, within its limit.
    let peaks: Vec<u64> = host
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|event| match event {
            PluginEvent::Called {
                plugin,
                memory_peak_bytes,
                ..
            } if plugin == "unruly" => Some(*memory_peak_bytes),
            _ => None,
        })
        .collect();
    let peak = *peaks.iter().max().unwrap();
    assert!(peak > 64 << 10 && peak <= 16 << 20, "{peaks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_the_manifest_does_not_grant_are_refused_at_install() {
    let host = host().await;
    // Opening a socket: wasi:sockets is never granted.
    let socket = sample("socket");
    match host
        .plugins
        .install(&socket.manifest, &socket.component, None)
        .await
    {
        Err(PluginError::ImportRefused { import, .. }) => {
            assert!(import.starts_with("wasi:sockets/"), "{import}")
        }
        other => panic!("expected the socket import refused, got {other:?}"),
    }
    // Calling a host interface the manifest does not declare.
    let counter = sample("counter");
    let undeclared = manifest_with(&counter, "kv = true", "kv = false");
    match host
        .plugins
        .install(&undeclared, &counter.component, None)
        .await
    {
        Err(PluginError::ImportRefused { import, reason }) => {
            assert!(import.starts_with("hearth:plugin/kv"), "{import}");
            assert!(reason.contains("`kv`"), "{reason}");
        }
        other => panic!("expected the kv import refused, got {other:?}"),
    }
    // Not a component at all.
    assert!(matches!(
        host.plugins
            .install(&counter.manifest, b"\0asm not really", None)
            .await,
        Err(PluginError::InvalidComponent(_))
    ));
    // Nothing was written.
    assert!(host.plugins.list().is_empty());
    assert!(host.store.plugins().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_value_store_is_per_tenant_and_survives_a_restart_without_recompiling() {
    let host = host().await;
    let counter = sample("counter");
    host.plugins
        .install(&counter.manifest, &counter.component, None)
        .await
        .unwrap();
    let count = |plugins: Plugins, tenant: &'static str| async move {
        let output = plugins
            .call_tool("counter", "count", r#"{"name": "visits"}"#, tenant)
            .await
            .unwrap();
        serde_json::from_str::<Value>(&output.output).unwrap()["count"].clone()
    };
    assert_eq!(count(host.plugins.clone(), "tenant-a").await, 1);
    assert_eq!(count(host.plugins.clone(), "tenant-a").await, 2);
    assert_eq!(count(host.plugins.clone(), "tenant-b").await, 1);

    let compiled: Vec<_> = std::fs::read_dir(host.dir.path().join("plugins/compiled"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(compiled.len(), 1, "{compiled:?}");
    let compiled_at = std::fs::metadata(&compiled[0]).unwrap().modified().unwrap();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let reopened = open_plugins(host.dir.path(), &host.store, &host.events, &seen).await;
    assert_eq!(reopened.list().len(), 1);
    assert_eq!(count(reopened.clone(), "tenant-a").await, 3);
    // The compiled form was loaded, not written again.
    assert_eq!(
        std::fs::metadata(&compiled[0]).unwrap().modified().unwrap(),
        compiled_at
    );

    // Removing the plugin removes its store and its files.
    reopened.remove("counter").await.unwrap();
    assert!(
        host.store
            .plugin_kv_get("counter", "tenant-a", "count/visits")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        std::fs::read_dir(host.dir.path().join("plugins/compiled"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_stops_disable_a_plugin_until_it_is_enabled_again() {
    let host = host().await;
    let unruly = sample("unruly");
    let manifest = manifest_with(
        &unruly,
        "timeout_ms = 200",
        "timeout_ms = 200\nfailures_to_disable = 3",
    );
    host.plugins
        .install(&manifest, &unruly.component, None)
        .await
        .unwrap();
    for _ in 0..3 {
        let result = host.plugins.call_tool("unruly", "panic", "{}", "t").await;
        assert_eq!(stop_reason(result), StopReason::Trap);
    }
    match host.plugins.call_tool("unruly", "echo", "{}", "t").await {
        Err(PluginError::Disabled { reason, .. }) => {
            assert!(reason.contains("3 calls in a row"), "{reason}")
        }
        other => panic!("expected the plugin disabled, got {other:?}"),
    }
    let info = host.plugins.get("unruly").unwrap();
    assert!(!info.enabled);
    assert!(host.seen.lock().unwrap().iter().any(|event| matches!(
        event,
        PluginEvent::Disabled { plugin, .. } if plugin == "unruly"
    )));
    // The store says so too, so a restart keeps it disabled.
    assert!(!host.store.plugins().await.unwrap()[0].enabled);

    host.plugins.set_enabled("unruly", true).await.unwrap();
    assert_eq!(echo(&host.plugins, "unruly").await, r#"{"hello":"world"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_lets_calls_in_flight_finish_on_the_old_version_and_rollback_returns() {
    let host = host().await;
    let unruly = sample("unruly");
    host.plugins
        .install(
            &manifest_with(&unruly, "timeout_ms = 200", "timeout_ms = 2000"),
            &unruly.component,
            None,
        )
        .await
        .unwrap();
    let in_flight = {
        let plugins = host.plugins.clone();
        tokio::spawn(async move {
            plugins
                .call_tool("unruly", "busy", r#"{"ms": 300}"#, "t")
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;

    // Version 0.2.0 is another component under the same name: the calculator's.
    let calculator = sample("calculator");
    let upgrade = manifest_with(
        &calculator,
        "name = \"calculator\"\nversion = \"0.1.0\"",
        "name = \"unruly\"\nversion = \"0.2.0\"",
    );
    let info = host
        .plugins
        .upgrade("unruly", &upgrade, &calculator.component, None)
        .await
        .unwrap();
    assert_eq!(info.manifest.version, "0.2.0");
    assert_eq!(info.previous_version.as_deref(), Some("0.1.0"));

    let finished = in_flight.await.unwrap().unwrap();
    assert!(finished.output.contains("rounds"), "{}", finished.output);
    // New calls go to the new version.
    assert!(matches!(
        host.plugins
            .call_tool("unruly", "busy", r#"{"ms": 1}"#, "t")
            .await,
        Err(PluginError::ToolNotFound { .. })
    ));
    host.plugins
        .call_tool(
            "unruly",
            "convert",
            r#"{"value": 1, "from": "m", "to": "cm"}"#,
            "t",
        )
        .await
        .unwrap();

    let info = host.plugins.rollback("unruly").await.unwrap();
    assert_eq!(info.manifest.version, "0.1.0");
    assert_eq!(echo(&host.plugins, "unruly").await, r#"{"hello":"world"}"#);
    // A second rollback undoes the first.
    let info = host.plugins.rollback("unruly").await.unwrap();
    assert_eq!(info.manifest.version, "0.2.0");
    assert!(matches!(
        host.plugins
            .upgrade(
                "nobody",
                &upgrade.replace("unruly", "nobody"),
                &calculator.component,
                None
            )
            .await,
        Err(PluginError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_plugins_serve_a_hundred_calls_at_once() {
    let host = host().await;
    let calculator = sample("calculator");
    for index in 0..12 {
        let manifest = manifest_with(
            &calculator,
            "name = \"calculator\"",
            &format!("name = \"calc-{index}\""),
        );
        host.plugins
            .install(&manifest, &calculator.component, None)
            .await
            .unwrap();
    }
    let calls = (0..100).map(|call| {
        let plugins = host.plugins.clone();
        tokio::spawn(async move {
            let arguments = json!({"value": call, "from": "m", "to": "cm"}).to_string();
            let output = plugins
                .call_tool(&format!("calc-{}", call % 12), "convert", &arguments, "t")
                .await
                .unwrap();
            let answer: Value = serde_json::from_str(&output.output).unwrap();
            assert_eq!(answer["value"], json!(call as f64 * 100.0));
        })
    });
    for call in calls {
        call.await.unwrap();
    }
    assert_eq!(host.plugins.list().len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_handler_that_traps_is_delivered_again_and_publishes_once_it_succeeds() {
    let host = host().await;
    let relay = sample("relay");
    host.plugins
        .install(&relay.manifest, &relay.component, None)
        .await
        .unwrap();
    let mut totals = host
        .events
        .follow("tenant-a", &["orders.totals"], 1)
        .await
        .unwrap();
    let order = json!({"order": 7, "fail_first": true,
                       "items": [{"price": 2.5, "quantity": 2}, {"price": 1.0}]});
    let event = |delivery| GuestEvent {
        topic: "orders.placed".into(),
        id: "event-1".into(),
        payload: order.to_string(),
        delivery,
    };
    match host
        .plugins
        .handle_event("relay", event(1), "tenant-a")
        .await
    {
        Err(PluginError::Stopped { reason, .. }) => assert_eq!(reason, StopReason::Trap),
        other => panic!("expected the first delivery to trap, got {other:?}"),
    }
    host.plugins
        .handle_event("relay", event(2), "tenant-a")
        .await
        .unwrap();
    let published = tokio::time::timeout(Duration::from_secs(5), totals.next())
        .await
        .unwrap()
        .unwrap();
    let data: Value = serde_json::from_str(&published.data).unwrap();
    assert_eq!(data, json!({"order": 7, "total": 6.0, "source": "event-1"}));
    // Into the tenant whose event it handled, and no other.
    assert_eq!(host.events.last_sequence("tenant-b").await.unwrap(), 0);
    assert!(
        host.plugins
            .logs("relay", 10)
            .unwrap()
            .iter()
            .any(|line| line.message.contains("totals 6"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribed_handler_gets_each_event_at_least_once_through_a_trap_and_a_restart() {
    let host = host().await;
    let relay = sample("relay");
    host.plugins
        .install(&relay.manifest, &relay.component, None)
        .await
        .unwrap();
    // A plugin that declares no topics handles none.
    let calculator = sample("calculator");
    host.plugins
        .install(&calculator.manifest, &calculator.component, None)
        .await
        .unwrap();
    assert!(matches!(
        host.plugins.subscribe("calculator", "tenant-a").await,
        Err(PluginError::InvalidArguments { .. })
    ));

    host.plugins.subscribe("relay", "tenant-a").await.unwrap();
    assert!(host.plugins.subscribed("relay", "tenant-a").await.unwrap());
    assert!(!host.plugins.subscribed("relay", "tenant-b").await.unwrap());
    let mut totals = host
        .events
        .follow("tenant-a", &["orders.totals"], 1)
        .await
        .unwrap();
    let publish = |order: Value| {
        let events = host.events.clone();
        async move {
            let publish = hearth_events::Publish {
                topic: "orders.placed".into(),
                data: order,
                idempotency_key: None,
            };
            events
                .publish("tenant-a", vec![publish], "data")
                .await
                .unwrap();
        }
    };
    publish(json!({"order": 1, "fail_first": true, "items": [{"price": 3.0, "quantity": 3}]}))
        .await;
    let first = tokio::time::timeout(Duration::from_secs(20), totals.next())
        .await
        .unwrap()
        .unwrap();
    let data: Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(data["order"], 1);
    assert_eq!(data["total"], 9.0);
    // It trapped once, then succeeded on its second delivery (the success is reported once
    // the call returns, which may be just after its event arrived).
    let outcomes = || -> Vec<CallOutcome> {
        host.seen
            .lock()
            .unwrap()
            .iter()
            .filter_map(|event| match event {
                PluginEvent::Called {
                    plugin,
                    tenant_id,
                    outcome,
                    ..
                } if plugin == "relay" && tenant_id == "tenant-a" => Some(*outcome),
                _ => None,
            })
            .collect()
    };
    for _ in 0..100 {
        if outcomes().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        outcomes(),
        [CallOutcome::Stopped(StopReason::Trap), CallOutcome::Ok]
    );

    // Another tenant's orders are not this subscription's.
    let other = hearth_events::Publish {
        topic: "orders.placed".into(),
        data: json!({"order": 99, "items": []}),
        idempotency_key: None,
    };
    host.events
        .publish("tenant-b", vec![other], "data")
        .await
        .unwrap();

    // After a restart the subscription goes on from where its consumer was.
    drop(host.plugins);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reopened = open_plugins(host.dir.path(), &host.store, &host.events, &seen).await;
    publish(json!({"order": 2, "items": [{"price": 1.5, "quantity": 2}]})).await;
    let second = tokio::time::timeout(Duration::from_secs(20), totals.next())
        .await
        .unwrap()
        .unwrap();
    let data: Value = serde_json::from_str(&second.data).unwrap();
    assert_eq!(data["order"], 2);
    assert_eq!(host.events.last_sequence("tenant-b").await.unwrap(), 1);

    // Unsubscribed, its consumer is gone.
    assert!(reopened.unsubscribe("relay", "tenant-a").await.unwrap());
    assert!(!reopened.unsubscribe("relay", "tenant-a").await.unwrap());
    assert!(
        host.events
            .consumer("tenant-a", "_plugin_relay")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_trusts_a_key_installs_only_what_it_signed_unchanged() {
    let host = host().await;
    let (secret, public) = hearth_plugins::key_pair([42; 32]);
    let (stranger, _) = hearth_plugins::key_pair([43; 32]);
    let strict = Plugins::open(
        PluginsOptions {
            dir: host.dir.path().join("strict-plugins"),
            max_instances: 50,
            trusted_keys: hearth_plugins::TrustedKeys::parse(std::slice::from_ref(&public))
                .unwrap(),
            allow_unsigned: false,
            allow_internal_hosts: false,
            memory: None,
        },
        host.store.clone(),
        Some(host.events.clone()),
        None,
    )
    .await
    .unwrap();
    let calculator = sample("calculator");
    let signature =
        hearth_plugins::sign(&secret, &calculator.manifest, &calculator.component).unwrap();
    let refused = |result: Result<hearth_plugins::PluginInfo, PluginError>| match result {
        Err(PluginError::InvalidSignature(message)) => message,
        other => panic!("expected a refused signature, got {other:?}"),
    };

    // Unsigned, signed by a stranger, or changed by one bit after signing: refused.
    let message = refused(
        strict
            .install(&calculator.manifest, &calculator.component, None)
            .await,
    );
    assert!(message.contains("signed plugins only"), "{message}");
    let theirs =
        hearth_plugins::sign(&stranger, &calculator.manifest, &calculator.component).unwrap();
    refused(
        strict
            .install(&calculator.manifest, &calculator.component, Some(&theirs))
            .await,
    );
    let mut tampered = calculator.component.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    refused(
        strict
            .install(&calculator.manifest, &tampered, Some(&signature))
            .await,
    );
    let loosened = calculator
        .manifest
        .replace("memory_mib = 8", "memory_mib = 9");
    refused(
        strict
            .install(&loosened, &calculator.component, Some(&signature))
            .await,
    );
    assert!(strict.list().is_empty());

    let info = strict
        .install(
            &calculator.manifest,
            &calculator.component,
            Some(&signature),
        )
        .await
        .unwrap();
    assert_eq!(info.signed_by.as_deref(), Some(public.as_str()));
    // An upgrade is held to the same rule.
    refused(
        strict
            .upgrade(
                "calculator",
                &calculator.manifest.replace("0.1.0", "0.2.0"),
                &calculator.component,
                None,
            )
            .await,
    );
}

/// Waits up to 10 s for `done`.
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_folder_installs_and_upgrades_its_plugin_without_a_restart() {
    let host = host().await;
    let watched = host.dir.path().join("watched");
    let folder = watched.join("calculator");
    std::fs::create_dir_all(&folder).unwrap();
    let calculator = sample("calculator");
    std::fs::write(folder.join("plugin.toml"), &calculator.manifest).unwrap();
    std::fs::write(folder.join("calculator.wasm"), &calculator.component).unwrap();
    hearth_plugins::spawn_watch(&host.plugins, watched.clone(), Duration::from_millis(50));
    assert!(eventually(|| host.plugins.get("calculator").is_ok()).await);

    // A new version saved over the old: upgraded in place.
    std::fs::write(
        folder.join("plugin.toml"),
        calculator.manifest.replace("0.1.0", "0.2.0"),
    )
    .unwrap();
    let version = || {
        host.plugins
            .get("calculator")
            .map(|info| info.manifest.version)
            .unwrap_or_default()
    };
    assert!(
        eventually(|| version() == "0.2.0").await,
        "still {}",
        version()
    );
    assert_eq!(
        host.plugins
            .get("calculator")
            .unwrap()
            .previous_version
            .as_deref(),
        Some("0.1.0")
    );

    // A broken save leaves the plugin as it was, still answering.
    std::fs::write(folder.join("calculator.wasm"), b"not a component").unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(version(), "0.2.0");
    host.plugins
        .call_tool(
            "calculator",
            "convert",
            r#"{"value": 1, "from": "m", "to": "cm"}"#,
            "t",
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_is_checked_against_the_schema_and_read_by_the_next_call() {
    let host = host().await;
    let counter = sample("counter");
    let info = host
        .plugins
        .install(&counter.manifest, &counter.component, None)
        .await
        .unwrap();
    assert_eq!(info.config, json!({}));
    let count = || async {
        let output = host
            .plugins
            .call_tool("counter", "count", r#"{"name": "n"}"#, "t")
            .await
            .unwrap();
        serde_json::from_str::<Value>(&output.output).unwrap()["count"].clone()
    };
    assert_eq!(count().await, 1);
    let info = host
        .plugins
        .configure("counter", &json!({"step": 5}))
        .await
        .unwrap();
    assert_eq!(info.config, json!({"step": 5}));
    assert_eq!(count().await, 6);
    for bad in [
        json!({"step": 0}),
        json!({"step": "five"}),
        json!({"other": 1}),
        json!([5]),
    ] {
        match host.plugins.configure("counter", &bad).await {
            Err(PluginError::InvalidArguments { field, .. }) => assert_eq!(field, "config"),
            other => panic!("{bad} was not refused: {other:?}"),
        }
    }
    assert_eq!(count().await, 11);
    // A version whose schema the configuration does not fit is refused.
    let stricter = counter
        .manifest
        .replace("minimum = 1", "maximum = 3")
        .replace("0.1.0", "0.2.0");
    match host
        .plugins
        .upgrade("counter", &stricter, &counter.component, None)
        .await
    {
        Err(PluginError::InvalidArguments { field, .. }) => assert_eq!(field, "config"),
        other => panic!("the upgrade was not refused: {other:?}"),
    }
    // A restart keeps the configuration.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reopened = open_plugins(host.dir.path(), &host.store, &host.events, &seen).await;
    assert_eq!(reopened.get("counter").unwrap().config, json!({"step": 5}));
}

/// A web server on loopback answering `GET /page` with a text.
async fn web_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut request = vec![0u8; 4096];
                let read = socket.read(&mut request).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&request[..read]).to_string();
                let body = if head.starts_with("GET /page ") {
                    "the lighthouse is lit"
                } else {
                    "no such page"
                };
                let status = if head.starts_with("GET /page ") {
                    "200 OK"
                } else {
                    "404 Not Found"
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_http_reaches_only_the_allowed_origins_and_no_internal_address_by_default() {
    let host = host().await;
    let origin = web_server().await;
    let webfetch = sample("webfetch");
    let manifest = webfetch.manifest.replace("http://127.0.0.1:9", &origin);
    let fetch = |plugins: Plugins, url: String| async move {
        plugins
            .call_tool("webfetch", "fetch", &json!({"url": url}).to_string(), "t")
            .await
    };

    // This server keeps internal addresses off limits, allow-listed or not.
    host.plugins
        .install(&manifest, &webfetch.component, None)
        .await
        .unwrap();
    match fetch(host.plugins.clone(), format!("{origin}/page")).await {
        Err(PluginError::ToolFailed(message)) => {
            assert!(message.contains("internal address"), "{message}")
        }
        other => panic!("expected the internal address refused, got {other:?}"),
    }

    // One that allows them (a private network) still holds the plugin to its origins.
    let private = host_with(true).await;
    let open = private.plugins.clone();
    open.install(&manifest, &webfetch.component, None)
        .await
        .unwrap();
    let output = fetch(open.clone(), format!("{origin}/page")).await.unwrap();
    let answer: Value = serde_json::from_str(&output.output).unwrap();
    assert_eq!(
        answer,
        json!({"status": 200, "text": "the lighthouse is lit"})
    );
    let output = fetch(open.clone(), format!("{origin}/missing"))
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&output.output).unwrap()["status"],
        404
    );
    match fetch(open.clone(), "http://127.0.0.1:1/page".to_string()).await {
        Err(PluginError::ToolFailed(message)) => {
            assert!(
                message.contains("not among this plugin's allowed origins"),
                "{message}"
            )
        }
        other => panic!("expected another origin refused, got {other:?}"),
    }
    // Declaring no origins means no HTTP import at all.
    let undeclared = webfetch
        .manifest
        .replace("[capabilities]\nhttp = [\"http://127.0.0.1:9\"]\n", "");
    assert!(!undeclared.contains("http ="), "{undeclared}");
    let undeclared = undeclared.replace("name = \"webfetch\"", "name = \"webfetch-bare\"");
    assert!(matches!(
        open.install(&undeclared, &webfetch.component, None).await,
        Err(PluginError::ImportRefused { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_on_the_host_past_its_time_is_stopped_for_time() {
    let host = host().await;
    let unruly = sample("unruly");
    host.plugins
        .install(&unruly.manifest, &unruly.component, None)
        .await
        .unwrap();
    let started = Instant::now();
    // The sample's limit is 200 ms; it asks to sleep (on the host's clock) for a minute.
    let result = host
        .plugins
        .call_tool("unruly", "sleep", r#"{"ms": 60000}"#, "t")
        .await;
    assert_eq!(stop_reason(result), StopReason::Time);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    // Short sleeps answer, and the instance after a stopped one is a fresh one.
    host.plugins
        .call_tool("unruly", "sleep", r#"{"ms": 5}"#, "t")
        .await
        .unwrap();
    assert_eq!(echo(&host.plugins, "unruly").await, r#"{"hello":"world"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_keeps_notes_in_the_callers_collections_and_reads_only_its_declared_secret() {
    let host = host().await;
    let memory = Arc::new(hearth_memory::Memory::new(
        host.store.clone(),
        host.dir.path(),
        hearth_memory::MemoryOptions::default(),
    ));
    let plugins = Plugins::open(
        PluginsOptions {
            dir: host.dir.path().join("memory-plugins"),
            max_instances: 50,
            trusted_keys: hearth_plugins::TrustedKeys::default(),
            allow_unsigned: true,
            allow_internal_hosts: false,
            memory: Some(memory.clone()),
        },
        host.store.clone(),
        Some(host.events.clone()),
        None,
    )
    .await
    .unwrap();
    let notes = sample("notes");
    plugins
        .install(&notes.manifest, &notes.component, None)
        .await
        .unwrap();
    // Collections of the plugin's own vectors (this server has no embedding model): the
    // tenant's `notes`, a knowledge base it may only read, and one it may not touch.
    for (tenant, name) in [
        ("acme", "notes"),
        ("acme", "kb-faq"),
        ("acme", "private"),
        ("globex", "notes"),
    ] {
        memory
            .create_collection(tenant, hearth_memory::NewCollection::new(name, 3))
            .await
            .unwrap();
    }
    let call = |tool: &'static str, arguments: Value, tenant: &'static str| {
        let plugins = plugins.clone();
        async move {
            plugins
                .call_tool("notes", tool, &arguments.to_string(), tenant)
                .await
                .map(|output| serde_json::from_str::<Value>(&output.output).unwrap())
        }
    };
    let remember =
        |text: &str| json!({"text": text, "topic": "garden", "embedding": [0.1, 0.2, 0.3]});

    assert_eq!(
        call("remember", remember("water the tomatoes at dawn"), "acme")
            .await
            .unwrap()["id"],
        "note-1"
    );
    assert_eq!(
        call("remember", remember("prune the roses in March"), "acme")
            .await
            .unwrap()["id"],
        "note-2"
    );
    let found = call("recall", json!({"query": "tomatoes"}), "acme")
        .await
        .unwrap();
    assert_eq!(found[0]["id"], "note-1", "{found}");
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    // Stored in the caller's collection, numbered by the caller's counter.
    let stored = memory
        .get_documents("acme", "notes", &["note-2".to_string()], false)
        .await
        .unwrap();
    assert_eq!(stored[0].metadata["topic"], "garden");
    assert_eq!(
        call("recall", json!({"query": "tomatoes"}), "globex")
            .await
            .unwrap(),
        json!([])
    );
    assert_eq!(
        call("remember", remember("globex's first"), "globex")
            .await
            .unwrap()["id"],
        "note-1"
    );

    // Reading a declared kb-* collection is allowed; another collection is not.
    memory
        .upsert_documents(
            "acme",
            "kb-faq",
            vec![hearth_memory::NewDocument {
                id: Some("faq-1".into()),
                text: "tomatoes need full sun".into(),
                metadata: json!({}),
                embedding: Some(vec![0.3, 0.2, 0.1]),
            }],
        )
        .await
        .unwrap();
    let found = call(
        "recall",
        json!({"query": "tomatoes", "collection": "kb-faq"}),
        "acme",
    )
    .await
    .unwrap();
    assert_eq!(found[0]["id"], "faq-1");
    let refused = call(
        "recall",
        json!({"query": "x", "collection": "private"}),
        "acme",
    )
    .await
    .unwrap_err();
    assert!(refused.to_string().contains("memory_read"), "{refused}");
    assert_eq!(
        call("forget", json!({"id": "note-1"}), "acme")
            .await
            .unwrap()["removed"],
        1
    );
    assert_eq!(
        call("recall", json!({"query": "tomatoes"}), "acme")
            .await
            .unwrap(),
        json!([])
    );

    // The secret: unset, then set (declared names only), read but never listed with its value.
    assert_eq!(
        call("key_status", json!({}), "acme").await.unwrap(),
        json!({"set": false, "length": 0})
    );
    let undeclared = plugins.set_secret("notes", "OTHER", "x").await.unwrap_err();
    assert!(
        matches!(undeclared, PluginError::InvalidArguments { ref field, .. } if field == "secret"),
        "{undeclared}"
    );
    plugins
        .set_secret("notes", "NOTES_API_KEY", "sk-0123456789")
        .await
        .unwrap();
    assert_eq!(
        call("key_status", json!({}), "acme").await.unwrap(),
        json!({"set": true, "length": 13})
    );
    let listed = plugins.secrets("notes").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].declared && listed[0].updated_at_ms.is_some());
    assert!(
        plugins
            .delete_secret("notes", "NOTES_API_KEY")
            .await
            .unwrap()
    );
    assert_eq!(
        call("key_status", json!({}), "acme").await.unwrap()["set"],
        false
    );
}

/// A manifest without the lines that set `keys`.
fn without_lines(manifest: &str, keys: &[&str]) -> String {
    manifest
        .lines()
        .filter(|line| !keys.iter().any(|key| line.starts_with(key)))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[tokio::test]
async fn memory_and_secrets_imports_need_their_capabilities() {
    let host = host().await;
    let notes = sample("notes");
    for (without, capability) in [
        (
            &["memory_write", "memory_read"][..],
            "memory_read` or `memory_write",
        ),
        (&["secrets"][..], "secrets"),
    ] {
        let manifest = without_lines(&notes.manifest, without);
        let error = host
            .plugins
            .install(&manifest, &notes.component, None)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, PluginError::ImportRefused { reason, .. } if reason.contains(capability)),
            "{error}"
        );
    }
}

#[tokio::test]
async fn a_plugin_importing_models_needs_them_declared_and_fails_cleanly_without_a_host() {
    let host = host().await;
    let writer = sample("writer");
    let undeclared = without_lines(&writer.manifest, &["models"]);
    let error = host
        .plugins
        .install(&undeclared, &writer.component, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, PluginError::ImportRefused { reason, .. } if reason.contains("`models`")),
        "{error}"
    );
    host.plugins
        .install(&writer.manifest, &writer.component, None)
        .await
        .unwrap();
    // This host serves no models: the plugin's call fails with the reason, nothing stops.
    let error = host
        .plugins
        .call_tool("writer", "complete", r#"{"prompt": "hi"}"#, "acme")
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("not served to plugins"),
        "{error}"
    );
    let error = host
        .plugins
        .call_tool(
            "writer",
            "complete",
            r#"{"prompt": "hi", "model": "other"}"#,
            "acme",
        )
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("not among this plugin's models"),
        "{error}"
    );
}

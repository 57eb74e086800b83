//! `hearth serve`: wires config, telemetry, storage and the HTTP server together, then runs
//! until SIGINT/SIGTERM and drains.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use hearth_config::{AuthMode, Config, IntegrityCheck, LoadedConfig, Sources};
use hearth_gateway::{Authenticator, Gateway, LimitDefaults, Limiter, Limits, UsageRecorder};
use hearth_inference::{EngineSettings, Inference, KeepAlive, ModelPool, PoolConfig};
use hearth_server::{
    AppState, ComponentState, GatewayState, Readiness, RuntimeSettings, SharedState, StaticSettings,
};
use hearth_store::{OpenOptions, Store};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::reload::{self, ReloadTargets};
use crate::telemetry::Telemetry;

pub fn run(sources: Sources) -> anyhow::Result<()> {
    let started_at = Instant::now();
    let loaded = crate::config::load_quietly(&sources)?;
    limit_embedding_threads(&loaded.config);
    let telemetry = Telemetry::install(&loaded.config)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hearth-worker")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(sources, loaded, &telemetry, started_at));
    if let Err(error) = &result {
        tracing::error!(error = %format!("{error:#}"), "server stopped with an error");
    }
    drop(runtime);
    // The exporter flush blocks; the runtime is gone by now, so nothing else waits on it.
    telemetry.shutdown();
    result
}

async fn serve(
    sources: Sources,
    loaded: LoadedConfig,
    telemetry: &Telemetry,
    started_at: Instant,
) -> anyhow::Result<()> {
    let config = loaded.config.clone();
    let readiness = Readiness::default();
    readiness.set("config", ComponentState::ready());

    let store = open_store(&config, true).await?;
    let instance_id = store
        .instance_id(&uuid::Uuid::new_v4().to_string(), now_ms())
        .await
        .context("cannot read the instance id")?;

    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; choose another address with --listen or server.listen",
                config.server.listen
            )
        })?;
    let address = listener
        .local_addr()
        .context("cannot read the bound address")?;

    let inference = Arc::new(start_inference(&config)?);
    let _reaper = inference
        .pool()
        .spawn_reaper(std::time::Duration::from_secs(1));
    preload(&inference, &config, &readiness);

    let (gateway, usage_writer) = start_gateway(&config, &store, address).await?;
    let routing = hearth_upstream::RoutingHandle::new(hearth_upstream::Routing::from_config(
        &config,
        &environment_variable,
        None,
    ));

    let memory = Arc::new(
        hearth_memory::Memory::new(
            store.clone(),
            &config.data_dir,
            hearth_memory::MemoryOptions {
                max_documents_per_upsert: config.memory.max_documents_per_request,
                default_embedding_model: config.memory.embedding_model.clone(),
                max_collections_per_tenant: config.memory.max_collections_per_tenant,
                max_chunks_per_tenant: config.memory.max_chunks_per_tenant,
                ..hearth_memory::MemoryOptions::default()
            },
        )
        .with_embedder(Arc::new(hearth_server::PoolEmbedder(inference.clone()))),
    );

    load_memory(&memory, &readiness);
    let files = hearth_memory::Files::new(
        store.clone(),
        &config.data_dir,
        config.memory.max_file_bytes,
    )
    .with_tenant_limit(config.memory.max_file_bytes_per_tenant);
    match files.remove_orphans().await {
        Ok(0) => {}
        Ok(removed) => tracing::info!(
            removed,
            "removed files an interrupted upload or delete left"
        ),
        Err(error) => tracing::warn!(%error, "cannot clean the files directory"),
    }
    // Vector stores embed their files' text, so they need the embedding model.
    let vector_stores = match config.memory.embedding_model {
        Some(_) => Some(
            hearth_memory::VectorStores::start(
                store.clone(),
                memory.clone(),
                files.clone(),
                Some(hearth_server::routes::vector_stores::ingestion_observer(
                    Some(gateway.usage.clone()),
                )),
            )
            .await
            .context("starting vector stores")?,
        ),
        None => None,
    };

    let conversations = hearth_memory::Conversations::new(
        store.clone(),
        memory.clone(),
        config.memory.conversation_retention_days,
    );
    spawn_conversation_sweep(conversations.clone());

    let events = hearth_events::Events::open(
        &config.data_dir,
        hearth_events::EventsOptions {
            max_event_bytes: usize::try_from(config.events.max_event_bytes).unwrap_or(usize::MAX),
            max_bytes_per_tenant: config.events.max_bytes_per_tenant,
            max_consumers_per_tenant: config.events.max_consumers_per_tenant,
            ..hearth_events::EventsOptions::default()
        },
    )
    .await
    .context("opening the event log")?;
    let events = Arc::new(events);
    events.spawn_retention(std::time::Duration::from_secs(5));
    events.spawn_dead_letters();
    inference
        .pool()
        .observe(hearth_server::system_events_model_observer(events.clone()));
    let webhooks = hearth_webhooks::Webhooks::start(
        &config.data_dir,
        events.clone(),
        hearth_webhooks::WebhooksOptions {
            allow_internal_targets: config.webhooks.allow_internal_targets,
            retry_schedule: hearth_webhooks::SVIX_SCHEDULE
                .iter()
                .map(|wait| wait.mul_f64(config.webhooks.retry_scale))
                .collect(),
            timeout: std::time::Duration::from_secs(config.webhooks.timeout_s),
            disable_after: std::time::Duration::from_secs(config.webhooks.disable_after_s),
            max_per_tenant: config.webhooks.max_per_tenant,
            ..hearth_webhooks::WebhooksOptions::default()
        },
    )
    .await
    .context("starting webhooks")?;

    let plugins = hearth_plugins::Plugins::open(
        hearth_plugins::PluginsOptions {
            dir: config.data_dir.join("plugins"),
            max_instances: config.plugins.max_instances,
            trusted_keys: hearth_plugins::TrustedKeys::parse(&config.plugins.trusted_keys)
                .context("plugins.trusted_keys")?,
            allow_unsigned: config.plugins.allow_unsigned,
            allow_internal_hosts: config.plugins.allow_internal_hosts,
            memory: Some(memory.clone()),
        },
        store.clone(),
        Some(events.clone()),
        Some(hearth_server::system_events_plugin_observer(Some(
            events.clone(),
        ))),
    )
    .await
    .context("starting plugins")?;
    if let Some(dir) = &config.plugins.watch_dir {
        tracing::info!(dir = %dir.display(), "watching plugin folders for changes");
        hearth_plugins::spawn_watch(&plugins, dir.clone(), std::time::Duration::from_secs(1));
    }

    let jobs = crate::jobs::start(&config, store.clone(), events.clone(), plugins.clone())
        .await
        .context("starting jobs")?;

    let prompts =
        hearth_prompts::Prompts::open(store.clone(), hearth_prompts::PromptsOptions::default())
            .await
            .context("loading prompt templates")?;

    let flags = hearth_flags::Flags::open(store.clone(), hearth_flags::FlagsOptions::default())
        .await
        .context("loading feature flags")?;
    crate::flags::apply_config(&flags, &config)
        .await
        .context("the [[flags]] of the configuration")?;

    let experiments = hearth_experiments::Experiments::open(store.clone())
        .await
        .context("loading experiments")?;

    let (runtime_settings, runtime_receiver) = watch::channel(runtime_settings(&config));
    let state = AppState::new(SharedState {
        runtime: runtime_receiver,
        settings: StaticSettings {
            cors_allowed_origins: config.server.cors_allowed_origins.clone(),
            compression: config.server.compression,
            huggingface_endpoint: crate::models::huggingface_endpoint(),
            response_ttl: std::time::Duration::from_secs(
                u64::from(config.responses.ttl_days) * 24 * 3600,
            ),
            responses_per_tenant: config.responses.max_per_tenant,
        },
        readiness: readiness.clone(),
        store: Some(store.clone()),
        inference: Some(inference.clone()),
        gateway: Some(gateway.clone()),
        memory: Some(memory.clone()),
        files: Some(files),
        vector_stores,
        graphs: Some(hearth_graph::Graphs::new(store.clone(), memory.clone())),
        conversations: Some(conversations),
        plugins: Some(plugins),
        jobs: Some(jobs),
        prompts: Some(prompts),
        flags: Some(flags.clone()),
        experiments: Some(experiments),
        events: Some(events),
        webhooks: Some(webhooks),
        routing: Some(routing.clone()),
        cache: config
            .cache
            .enabled
            .then(|| hearth_server::routes::cache::CacheState {
                cache: Arc::new(hearth_gateway::ResponseCache::new(
                    hearth_gateway::CacheSettings {
                        ttl: config.cache.ttl,
                        max_bytes: config.cache.max_bytes,
                        sampled: config.cache.sampled,
                        semantic_threshold: config
                            .cache
                            .semantic_model
                            .is_some()
                            .then_some(config.cache.semantic_threshold),
                    },
                )),
                semantic_model: config.cache.semantic_model.clone(),
            }),
        metrics: hearth_server::install_metrics_recorder(),
        started_at,
    });
    // Plugins' `models` capability goes through this server's chat path, so it is given the
    // state once there is one.
    if let Some(plugins) = &state.plugins {
        plugins.set_model_host(Arc::new(hearth_server::ServerModels::new(&state)));
    }
    // The admin API on a listener of its own, when configured; bound before anything is
    // served, so a taken port stops start-up with a clear message.
    let (router, admin) = match config.server.admin_listen {
        None => (hearth_server::router(state), None),
        Some(admin_address) => {
            let admin_listener = TcpListener::bind(admin_address).await.with_context(|| {
                format!(
                    "cannot listen on {admin_address} for the admin API; choose another address \
                     in server.admin_listen"
                )
            })?;
            let (public, admin) = hearth_server::split_routers(state);
            (public, Some((admin_listener, admin)))
        }
    };

    let reloader = tokio::spawn(reload::watch(
        sources,
        loaded,
        ReloadTargets {
            runtime_settings,
            log: telemetry.log_control(),
            store: store.clone(),
            limiter: gateway.limiter.clone(),
            prices: gateway.prices.clone(),
            routing: routing.clone(),
            flags,
        },
    ));

    tracing::info!(
        %address,
        data_dir = %config.data_dir.display(),
        instance = %instance_id,
        version = env!("CARGO_PKG_VERSION"),
        startup_ms = started_at.elapsed().as_secs_f64() * 1000.0,
        "listening; API docs at http://{address}/docs"
    );

    // One shutdown signal stops both listeners.
    let (stop_sender, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_sender.send(true);
    });
    let stopped = |mut stop: watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    let admin_server = admin.map(|(admin_listener, admin_router)| {
        let admin_address = admin_listener
            .local_addr()
            .map(|address| address.to_string())
            .unwrap_or_default();
        tracing::info!(address = %admin_address, "admin API listening");
        tokio::spawn(hearth_server::serve(
            admin_listener,
            admin_router,
            readiness.clone(),
            stopped(stop.clone()),
            config.server.shutdown_timeout,
        ))
    });
    let drained = hearth_server::serve(
        listener,
        router,
        readiness,
        stopped(stop),
        config.server.shutdown_timeout,
    )
    .await
    .context("the HTTP server failed")?;
    if let Some(admin_server) = admin_server {
        match admin_server.await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::error!(%error, "the admin API server failed"),
            Err(error) => tracing::error!(%error, "the admin API server panicked"),
        }
    }
    reloader.abort();
    // Indexes written since their last snapshot are saved, so the next start replays nothing.
    if let Err(error) = memory.save_snapshots().await {
        tracing::warn!(%error, "index snapshots were not all saved; the next start replays the writes");
    }
    // The router and its usage recorders are gone: the writer stores what is queued and ends.
    drop(gateway);
    if tokio::time::timeout(std::time::Duration::from_secs(5), usage_writer)
        .await
        .is_err()
    {
        tracing::warn!("usage records still queued at shutdown were not all stored");
    }
    store.close().await;
    if drained {
        tracing::info!("stopped after draining all requests");
    } else {
        tracing::warn!("stopped; some requests were cut off at the drain timeout");
    }
    Ok(())
}

/// `models.threads` bounds the embedding model's threads too: candle's matrix kernels run on a
/// rayon pool sized by `RAYON_NUM_THREADS`, read once when the pool starts. An explicit
/// `RAYON_NUM_THREADS` from the environment wins.
fn limit_embedding_threads(config: &Config) {
    if config.models.threads == 0 || std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    // SAFETY: called from `run` before the async runtime, telemetry or any model thread is
    // started, so no other thread can be reading the environment.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", config.models.threads.to_string()) };
}

/// Keys, limits and usage metering. Keys are required unless the server listens on loopback
/// only (or `auth.mode = "on"` asks for them regardless).
async fn start_gateway(
    config: &Config,
    store: &Store,
    address: std::net::SocketAddr,
) -> anyhow::Result<(GatewayState, tokio::task::JoinHandle<()>)> {
    let authenticator = Authenticator::load(store)
        .await
        .context("cannot load the API keys")?;
    let _refresher =
        authenticator.spawn_refresher(store.clone(), std::time::Duration::from_millis(500));
    let limiter = Limiter::new(limit_defaults(config));
    limiter
        .seed_quotas_from(store, now_ms())
        .await
        .context("cannot read this month's usage for the token quotas")?;
    let _sweeper = limiter.spawn_sweeper(std::time::Duration::from_secs(10));
    let (usage, usage_writer) = UsageRecorder::start(store.clone());
    let oidc = match &config.auth.oidc {
        None => None,
        Some(oidc) => {
            let verifier = hearth_gateway::OidcVerifier::new(hearth_gateway::OidcSettings {
                issuer: oidc.issuer.clone(),
                audience: oidc.audience.clone(),
                jwks_url: oidc.jwks_url.clone(),
                tenant_claim: oidc.tenant_claim.clone(),
                role_claim: oidc.role_claim.clone(),
            });
            // An issuer that is down at start must not keep the server down: its keys are
            // fetched again on the next unknown token and every few minutes.
            match verifier.refresh().await {
                Ok(count) => {
                    tracing::info!(issuer = %oidc.issuer, keys = count, "OIDC issuer keys loaded")
                }
                Err(error) => {
                    tracing::warn!(issuer = %oidc.issuer, %error, "cannot load the OIDC issuer's keys yet")
                }
            }
            let _refresher = verifier.spawn_refresher(std::time::Duration::from_secs(300));
            Some(verifier)
        }
    };
    // Tokens from an issuer only make sense when credentials are checked.
    let require_keys =
        config.auth.mode == AuthMode::On || oidc.is_some() || !address.ip().is_loopback();
    if require_keys {
        tracing::info!("API keys are required; make one with `hearth keys create`");
    } else {
        tracing::info!(
            "no API keys required: the server listens on loopback only and answers only requests for localhost"
        );
    }
    Ok((
        GatewayState {
            service: Gateway::new(store.clone()),
            authenticator,
            limiter,
            usage,
            prices: Arc::new(std::sync::RwLock::new(prices(config))),
            oidc,
            require_keys,
        },
        usage_writer,
    ))
}

/// Reads an upstream's API key from the process environment, by the name the config gives.
pub fn environment_variable(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// The price table, from `[[prices]]`.
pub fn prices(config: &Config) -> hearth_gateway::Prices {
    hearth_gateway::Prices::new(config.prices.iter().map(|price| {
        (
            price.model.clone(),
            hearth_gateway::Price {
                prompt_per_million: price.prompt_per_million,
                completion_per_million: price.completion_per_million,
            },
        )
    }))
}

/// The default limits of keys and client addresses, from `limits.*`.
pub fn limit_defaults(config: &Config) -> LimitDefaults {
    let limits = &config.limits;
    LimitDefaults {
        key: Limits {
            requests_per_minute: limits.key_requests_per_minute,
            tokens_per_minute: limits.key_tokens_per_minute,
            max_concurrent: limits.key_max_concurrent,
            tokens_per_day: None,
            tokens_per_month: None,
            budget_micro_usd_per_month: None,
        },
        ip: Limits {
            requests_per_minute: limits.ip_requests_per_minute,
            max_concurrent: limits.ip_max_concurrent,
            ..Limits::default()
        },
    }
}

/// The inference service over the data directory's model registry.
fn start_inference(config: &Config) -> anyhow::Result<Inference> {
    let registry = hearth_models::Registry::open(&config.data_dir)
        .context("cannot open the model registry")?;
    let models = &config.models;
    let threads = match models.threads {
        0 => std::thread::available_parallelism().map_or(2, |cores| cores.get()),
        threads => threads,
    };
    let pool = ModelPool::new(PoolConfig {
        engine: EngineSettings {
            n_parallel: models.parallel_sequences,
            n_ctx_per_seq: models.context_per_sequence,
            n_batch: models.batch_size,
            prefill_chunk: models.prefill_chunk,
            threads,
            queue_capacity: models.queue_capacity,
            // The schema allows only known names.
            kv_cache_type: hearth_inference::KvCacheType::from_name(&models.kv_cache_type)
                .unwrap_or_default(),
            json_number_max_digits: models.json_number_max_digits,
            lookup_draft_max: models.lookup_draft_max,
        },
        embedding: hearth_embed::ServiceConfig {
            queue_capacity: models.queue_capacity * 4,
            max_batch_inputs: models.embedding_batch_size,
        },
        memory_budget_bytes: models.memory_budget_bytes,
        default_keep_alive: match models.keep_alive {
            Some(duration) => KeepAlive::For(duration),
            None => KeepAlive::Forever,
        },
    });
    Ok(Inference::new(pool, registry))
}

/// Loads every collection's index in the background (snapshot plus replay, or a rebuild);
/// readiness reports `memory` with its progress until all are in.
fn load_memory(memory: &Arc<hearth_memory::Memory>, readiness: &Readiness) {
    readiness.set("memory", ComponentState::starting());
    let (memory, readiness) = (memory.clone(), readiness.clone());
    tokio::spawn(async move {
        let started = Instant::now();
        let progress = |done: usize, total: usize| {
            readiness.set(
                "memory",
                ComponentState {
                    status: "starting",
                    message: Some(format!("loading collection indexes: {done} of {total}")),
                },
            );
        };
        match memory.load_all(progress).await {
            Ok(loaded) => {
                tracing::info!(
                    collections = loaded,
                    load_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "collection indexes loaded"
                );
                readiness.set("memory", ComponentState::ready());
            }
            Err(error) => {
                tracing::error!(%error, "cannot list collections to load");
                readiness.set("memory", ComponentState::failed(error.to_string()));
            }
        }
    });
}

/// Loads `models.preload` in the background; readiness reports `models` until they are in.
fn preload(inference: &Arc<Inference>, config: &Config, readiness: &Readiness) {
    if config.models.preload.is_empty() {
        return;
    }
    readiness.set("models", ComponentState::starting());
    let (inference, names, readiness) = (
        inference.clone(),
        config.models.preload.clone(),
        readiness.clone(),
    );
    tokio::spawn(async move {
        for name in &names {
            if let Err(error) = inference.load(name, None).await {
                tracing::error!(model = %name, %error, "preloading a model failed");
                readiness.set("models", ComponentState::failed(format!("{name}: {error}")));
                return;
            }
        }
        readiness.set("models", ComponentState::ready());
    });
}

pub fn runtime_settings(config: &Config) -> RuntimeSettings {
    RuntimeSettings {
        max_body_bytes: config.server.max_body_bytes,
        // The multipart framing around a file of the largest size.
        max_upload_bytes: usize::try_from(config.memory.max_file_bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(64 * 1024),
        request_timeout: config.server.request_timeout,
    }
}

/// Opens the store of the configured data directory.
pub async fn open_store(config: &Config, run_migrations: bool) -> anyhow::Result<Store> {
    let integrity_check = match config.storage.integrity_check {
        IntegrityCheck::Quick => hearth_store::IntegrityCheck::Quick,
        IntegrityCheck::Full => hearth_store::IntegrityCheck::Full,
        IntegrityCheck::Off => hearth_store::IntegrityCheck::Off,
    };
    Store::open(
        &config.data_dir,
        OpenOptions {
            integrity_check,
            run_migrations,
        },
    )
    .await
    .map_err(anyhow::Error::from)
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

/// Completes on the first SIGINT or SIGTERM. A second signal during the drain exits at once,
/// for the operator who does not want to wait.
async fn shutdown_signal() {
    wait_for_signal().await;
    tokio::spawn(async {
        wait_for_signal().await;
        tracing::warn!("second shutdown signal; exiting without waiting for requests");
        std::process::exit(130);
    });
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for shutdown signals; stop the server with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = terminate.recv() => tracing::info!(signal = "SIGTERM", "shutdown signal received"),
        _ = interrupt.recv() => tracing::info!(signal = "SIGINT", "shutdown signal received"),
    }
}

/// Deletes remembered chat turns past `memory.conversation_retention_days`, hourly. The first
/// sweep waits an hour, so it never competes with loading the indexes at start.
fn spawn_conversation_sweep(conversations: hearth_memory::Conversations) {
    tokio::spawn(async move {
        let period = std::time::Duration::from_secs(3600);
        let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            every.tick().await;
            match conversations.sweep().await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "remembered turns past retention deleted"),
                Err(error) => tracing::warn!(%error, "cannot sweep remembered turns"),
            }
        }
    });
}

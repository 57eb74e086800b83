//! The route table. Every route is registered together with its OpenAPI description, so the
//! document at `/openapi.json` cannot drift from what the server answers.

pub(crate) mod admin;
pub(crate) mod audit;
pub mod cache;
pub(crate) mod consumers;
pub(crate) mod conversation_memory;
pub(crate) mod events;
pub(crate) mod events_ws;
pub(crate) mod experiments;
pub(crate) mod files;
pub(crate) mod flags;
pub(crate) mod generate;
pub(crate) mod graphs;
mod health;
pub(crate) mod jobs;
pub(crate) mod memory;
pub(crate) mod ollama;
pub(crate) mod openai;
pub(crate) mod plugin_tools;
pub(crate) mod plugins;
pub(crate) mod prompts;
pub(crate) mod proxy;
pub(crate) mod responses;
pub(crate) mod retrieval;
pub mod vector_stores;
pub(crate) mod webhooks;

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hearth",
        description = "The local-first AI backend: OpenAI- and Ollama-compatible model serving, \
                       gateway, memory, events and plugins in one binary.",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "openai", description = "OpenAI-compatible API"),
        (name = "ollama", description = "Ollama-compatible API"),
        (name = "memory", description = "Collections of documents, vector search and filters"),
        (name = "plugins", description = "WebAssembly plugins: install, upgrade, roll back, call their tools"),
        (name = "events", description = "Topics, durable events and live subscriptions"),
        (name = "jobs", description = "Scheduled, triggered and dependent jobs, and their runs"),
        (name = "experiments", description = "Experiments on models and prompts, their results, and feedback"),
        (name = "flags", description = "Feature flags, and their evaluation over OpenFeature's remote evaluation protocol"),
        (name = "prompts", description = "Versioned prompt templates with labels, rendered server-side"),
        (name = "admin", description = "Tenants, API keys, usage and the audit trail")
    )
)]
struct ApiDoc;

/// Every route, the admin API included: the OpenAPI document describes them all.
pub(crate) fn api_router() -> OpenApiRouter<AppState> {
    public_router().merge(admin_router())
}

/// The admin API under `/admin/v1`, which may be served on a listener of its own.
pub(crate) fn admin_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(admin::list_tenants, admin::create_tenant))
        .routes(routes!(admin::get_tenant))
        .routes(routes!(admin::set_tenant_limits))
        .routes(routes!(admin::list_users, admin::create_user))
        .routes(routes!(admin::delete_user))
        .routes(routes!(admin::list_keys, admin::create_key))
        .routes(routes!(admin::revoke_key))
        .routes(routes!(admin::rotate_key))
        .routes(routes!(admin::set_key_limits))
        .routes(routes!(admin::usage))
        .routes(routes!(admin::audit))
        .routes(routes!(admin::upstreams))
}

/// Liveness and readiness, which every listener answers.
pub(crate) fn health_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
}

/// Everything but the admin API.
pub(crate) fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(crate::metrics::metrics))
        .routes(routes!(openai::chat_completions))
        .routes(routes!(openai::completions))
        .routes(routes!(openai::embeddings))
        .routes(routes!(responses::create_response))
        .routes(routes!(responses::get_response, responses::delete_response))
        .routes(routes!(responses::list_input_items))
        .routes(routes!(openai::list_models))
        .routes(routes!(openai::get_model))
        .routes(routes!(ollama::chat))
        .routes(routes!(ollama::generate))
        .routes(routes!(ollama::embed))
        .routes(routes!(ollama::embeddings))
        .routes(routes!(ollama::tags))
        .routes(routes!(ollama::ps))
        .routes(routes!(ollama::show))
        .routes(routes!(ollama::pull))
        .routes(routes!(ollama::delete))
        .routes(routes!(ollama::copy))
        .routes(routes!(ollama::version))
        .routes(routes!(files::upload, files::list))
        .routes(routes!(files::retrieve, files::delete))
        .routes(routes!(files::content))
        .routes(routes!(memory::list_collections, memory::create_collection))
        .routes(routes!(
            memory::get_collection,
            memory::update_collection,
            memory::delete_collection
        ))
        .routes(routes!(memory::upsert_documents, memory::list_documents))
        .routes(routes!(memory::get_document, memory::delete_document))
        .routes(routes!(memory::delete_documents))
        .routes(routes!(memory::search))
        .routes(routes!(
            conversation_memory::export_memory,
            conversation_memory::forget_memory
        ))
        .routes(routes!(graphs::list_graphs, graphs::create_graph))
        .routes(routes!(graphs::get_graph, graphs::delete_graph))
        .routes(routes!(graphs::upsert_nodes, graphs::list_nodes))
        .routes(routes!(graphs::get_node, graphs::delete_node))
        .routes(routes!(graphs::delete_nodes))
        .routes(routes!(graphs::neighbors))
        .routes(routes!(graphs::subgraph))
        .routes(routes!(graphs::upsert_relations))
        .routes(routes!(graphs::get_relation, graphs::delete_relation))
        .routes(routes!(graphs::paths))
        .routes(routes!(graphs::search))
        .routes(routes!(jobs::list_jobs, jobs::create_job))
        .routes(routes!(jobs::get_job, jobs::put_job, jobs::delete_job))
        .routes(routes!(jobs::run_job))
        .routes(routes!(jobs::list_runs))
        .routes(routes!(jobs::get_run))
        .routes(routes!(
            experiments::list_experiments,
            experiments::create_experiment
        ))
        .routes(routes!(
            experiments::get_experiment,
            experiments::put_experiment,
            experiments::ramp_experiment,
            experiments::delete_experiment
        ))
        .routes(routes!(experiments::start_experiment))
        .routes(routes!(experiments::pause_experiment))
        .routes(routes!(experiments::stop_experiment))
        .routes(routes!(experiments::experiment_results))
        .routes(routes!(experiments::send_feedback))
        .routes(routes!(flags::list_flags, flags::create_flag))
        .routes(routes!(
            flags::get_flag,
            flags::put_flag,
            flags::patch_flag,
            flags::delete_flag
        ))
        .routes(routes!(flags::ofrep_evaluate))
        .routes(routes!(flags::ofrep_evaluate_all))
        .routes(routes!(flags::ofrep_configuration))
        .routes(routes!(prompts::list_prompts, prompts::push_prompt))
        .routes(routes!(prompts::get_prompt, prompts::delete_prompt))
        .routes(routes!(prompts::get_version))
        .routes(routes!(prompts::put_label, prompts::delete_label))
        .routes(routes!(prompts::render_prompt))
        .routes(routes!(plugins::list_plugins, plugins::install_plugin))
        .routes(routes!(plugins::get_plugin, plugins::remove_plugin))
        .routes(routes!(plugins::upgrade_plugin))
        .routes(routes!(plugins::rollback_plugin))
        .routes(routes!(plugins::enable_plugin))
        .routes(routes!(plugins::disable_plugin))
        .routes(routes!(plugins::plugin_logs))
        .routes(routes!(plugins::configure_plugin))
        .routes(routes!(plugins::list_secrets))
        .routes(routes!(plugins::put_secret, plugins::delete_secret))
        .routes(routes!(plugins::call_tool))
        .routes(routes!(
            plugins::get_subscription,
            plugins::put_subscription,
            plugins::delete_subscription
        ))
        .routes(routes!(vector_stores::create, vector_stores::list))
        .routes(routes!(
            vector_stores::retrieve,
            vector_stores::modify,
            vector_stores::delete
        ))
        .routes(routes!(
            vector_stores::attach_file,
            vector_stores::list_files
        ))
        .routes(routes!(
            vector_stores::retrieve_file,
            vector_stores::update_file,
            vector_stores::detach_file
        ))
        .routes(routes!(vector_stores::file_content))
        .routes(routes!(vector_stores::create_batch))
        .routes(routes!(vector_stores::retrieve_batch))
        .routes(routes!(vector_stores::cancel_batch))
        .routes(routes!(vector_stores::list_batch_files))
        .routes(routes!(vector_stores::search))
        .routes(routes!(events::publish))
        .routes(routes!(events::publish_batch))
        .routes(routes!(events::stream))
        .routes(routes!(events_ws::socket))
        .routes(routes!(
            events::put_topic,
            events::get_topic,
            events::delete_topic
        ))
        .routes(routes!(consumers::create, consumers::list))
        .routes(routes!(consumers::retrieve, consumers::delete))
        .routes(routes!(consumers::fetch))
        .routes(routes!(consumers::ack))
        .routes(routes!(consumers::nak))
        .routes(routes!(consumers::term))
        .routes(routes!(consumers::in_progress))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(
            webhooks::retrieve,
            webhooks::modify,
            webhooks::delete
        ))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::retry))
}

//! Logs and traces: a tracing subscriber whose level can be changed at runtime, writing pretty
//! lines on a terminal and JSON otherwise, and exporting spans over OTLP/HTTP when a collector
//! is configured.

use std::collections::HashMap;
use std::io::IsTerminal;

use anyhow::Context;
use hearth_config::{Config, LogFormat};
use opentelemetry::trace::TracerProvider;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

use crate::log_writer::BufferedStderr;

/// Handles to the installed telemetry: change the log level, flush traces at exit.
pub struct Telemetry {
    filter: reload::Handle<EnvFilter, Registry>,
    tracer_provider: Option<SdkTracerProvider>,
    log_writer: BufferedStderr,
}

impl Telemetry {
    /// Installs the global subscriber for the server.
    pub fn install(config: &Config) -> anyhow::Result<Telemetry> {
        let filter = EnvFilter::try_new(&config.log.level)
            .with_context(|| format!("log.level `{}` is not a valid filter", config.log.level))?;
        let (filter_layer, filter_handle) = reload::Layer::new(filter);

        let json = match config.log.format {
            LogFormat::Json => true,
            LogFormat::Pretty => false,
            LogFormat::Auto => !std::io::stderr().is_terminal(),
        };
        let log_writer = BufferedStderr::start();
        let fmt_layer = if json {
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(log_writer.clone())
                .boxed()
        } else {
            tracing_subscriber::fmt::layer()
                .with_writer(log_writer.clone())
                .with_ansi(std::io::stderr().is_terminal())
                .boxed()
        };

        let tracer_provider = match &config.telemetry.otlp_endpoint {
            Some(endpoint) => Some(tracer_provider(config, endpoint)?),
            None => None,
        };
        let otel_layer = tracer_provider
            .as_ref()
            .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("hearth")));

        tracing_subscriber::registry()
            .with(filter_layer)
            .with(fmt_layer)
            .with(otel_layer)
            .try_init()
            .context("a logger was already installed")?;
        Ok(Telemetry {
            filter: filter_handle,
            tracer_provider,
            log_writer,
        })
    }

    /// A handle that changes the log level of the running subscriber.
    pub fn log_control(&self) -> LogControl {
        LogControl {
            filter: self.filter.clone(),
        }
    }

    /// Exports the spans still buffered. Blocking: call it off the async runtime's workers.
    pub fn shutdown(mut self) {
        if let Some(provider) = self.tracer_provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("hearth: flushing traces failed: {error}");
        }
    }
}

impl Drop for Telemetry {
    /// Buffered log lines are written out however the server ends (an error return included).
    fn drop(&mut self) {
        self.log_writer.flush();
    }
}

/// Changes the log filter at runtime (config hot reload).
#[derive(Clone)]
pub struct LogControl {
    filter: reload::Handle<EnvFilter, Registry>,
}

impl LogControl {
    pub fn set_level(&self, level: &str) -> anyhow::Result<()> {
        let filter = EnvFilter::try_new(level)
            .with_context(|| format!("log.level `{level}` is not a valid filter"))?;
        self.filter
            .reload(filter)
            .context("the log subscriber is gone")?;
        Ok(())
    }
}

fn tracer_provider(config: &Config, endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let headers: HashMap<String, String> = config.telemetry.otlp_headers.iter().cloned().collect();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{endpoint}/v1/traces"))
        .with_headers(headers)
        .build()
        .with_context(|| format!("cannot set up the OTLP exporter for {endpoint}"))?;
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
        config.telemetry.sample_ratio,
    )));
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler)
        .with_resource(
            Resource::builder()
                .with_service_name(config.telemetry.service_name.clone())
                .build(),
        )
        .build())
}

//! Logging: JSON lines (or text) through tracing, with a filter that can be changed at run time.
//!
//! Each request runs inside a span carrying its correlation id; the JSON formatter writes the
//! current span's fields into every line, so `span.correlation_id` is on each line of a request.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::config::LogFormat;

/// Reads and replaces the active log filter (`PUT /admin/log-level`).
#[derive(Clone, Debug)]
pub struct LogFilter {
    handle: reload::Handle<EnvFilter, Registry>,
}

impl LogFilter {
    pub fn current(&self) -> Option<String> {
        self.handle.with_current(|f| f.to_string()).ok()
    }

    /// Parses and installs `directives`; nothing changes when they do not parse.
    pub fn set(&self, directives: &str) -> Result<(), String> {
        let filter = EnvFilter::try_new(directives).map_err(|e| e.to_string())?;
        self.handle.reload(filter).map_err(|e| e.to_string())
    }
}

/// Installs the global subscriber. Fails when `filter` does not parse or a subscriber exists.
pub fn init(format: LogFormat, filter: &str) -> anyhow::Result<LogFilter> {
    let filter =
        EnvFilter::try_new(filter).map_err(|e| anyhow::anyhow!("invalid log filter `{filter}`: {e}"))?;
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let format = match format {
        LogFormat::Auto if std::io::IsTerminal::is_terminal(&std::io::stderr()) => LogFormat::Text,
        LogFormat::Auto => LogFormat::Json,
        other => other,
    };
    match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init()?,
        LogFormat::Text | LogFormat::Auto => {
            registry.with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr)).try_init()?
        }
    }
    Ok(LogFilter { handle })
}

/// A filter handle not attached to the global subscriber, for tests that exercise the endpoint.
pub fn detached_filter(directives: &str) -> anyhow::Result<(LogFilter, impl Send + Sync + use<>)> {
    let filter = EnvFilter::try_new(directives)?;
    let (layer, handle) = reload::Layer::<EnvFilter, Registry>::new(filter);
    Ok((LogFilter { handle }, layer))
}

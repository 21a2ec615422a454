//! Logging for `run`: JSON lines in production, readable text at a terminal, filtered like
//! `RUST_LOG` (`info,freshplan_operator=debug,kube=warn`). Logs go to standard error, so commands
//! that print YAML on standard output keep it clean.

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How each event is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line: the event's fields at the top level, and `spans` listing every
    /// span it happened in with its fields. kube-runtime's `reconciling object` span carries
    /// `object.ref`, so every line logged while reconciling names the object.
    Json,
    /// One line per event, for people reading a terminal.
    Text,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter {filter:?}: {source}")]
    Filter {
        filter: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("a global logger is already installed")]
    AlreadyInstalled(#[source] tracing::subscriber::SetGlobalDefaultError),
}

/// Installs the process's logger: `format` lines on standard error, the events `filter` lets
/// through. Fails on a filter that does not parse rather than logging everything or nothing.
pub fn init(format: LogFormat, filter: &str) -> Result<(), TelemetryError> {
    let subscriber = subscriber(format, filter, std::io::stderr)?;
    tracing::subscriber::set_global_default(subscriber).map_err(TelemetryError::AlreadyInstalled)
}

/// The logger `init` installs, writing to `writer`.
fn subscriber<W>(
    format: LogFormat,
    filter: &str,
    writer: W,
) -> Result<Box<dyn Subscriber + Send + Sync>, TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let env_filter = EnvFilter::builder()
        .parse(filter)
        .map_err(|source| TelemetryError::Filter { filter: filter.to_owned(), source })?;
    let builder = tracing_subscriber::fmt().with_env_filter(env_filter).with_writer(writer);
    Ok(match format {
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                // The list of spans names the object even inside the reconciler's own spans; the
                // current span alone would repeat the innermost one.
                .with_current_span(false)
                .with_span_list(true)
                .finish(),
        ),
        LogFormat::Text => Box::new(builder.with_ansi(false).finish()),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer that keeps what is logged, for the test to read.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn log_while_reconciling(format: LogFormat, filter: &str) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = subscriber(format, filter, move || writer.clone()).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("reconciling object", object.ref = "TenantPolicy/crm/acme");
            let _entered = span.enter();
            tracing::info!(plugins = 4, "applied");
            tracing::debug!("not shown at info");
        });
        captured.text()
    }

    #[test]
    fn json_lines_carry_the_fields_of_the_spans_they_were_logged_in() {
        let text = log_while_reconciling(LogFormat::Json, "info");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "applied");
        assert_eq!(line["plugins"], 4);
        assert_eq!(line["spans"][0]["name"], "reconciling object");
        assert_eq!(line["spans"][0]["object.ref"], "TenantPolicy/crm/acme");
    }

    #[test]
    fn text_lines_follow_the_filter() {
        let text = log_while_reconciling(LogFormat::Text, "debug");
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("reconciling object{object.ref=\"TenantPolicy/crm/acme\"}"), "{text}");
        assert!(log_while_reconciling(LogFormat::Text, "warn").is_empty());
    }

    #[test]
    fn a_filter_that_does_not_parse_is_refused() {
        let err = subscriber(LogFormat::Json, "info,kube=loud", std::io::sink).err().unwrap();
        assert!(err.to_string().starts_with("invalid log filter \"info,kube=loud\": "), "{err}");
    }
}

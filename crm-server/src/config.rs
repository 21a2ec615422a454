//! Command line and environment. Every flag has an environment variable so the Helm chart can set
//! it; secrets (the database URL) are never printed back.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "crm-server", version, about = "FreshPlan CRM server")]
pub struct Cli {
    /// Log format: JSON lines, or text; `auto` is text on a terminal and JSON otherwise (in a pod).
    #[arg(long, env = "CRM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto, global = true)]
    pub log_format: LogFormat,
    /// Log filter in tracing's EnvFilter syntax, e.g. `info,crm_server=debug`. PostgreSQL's
    /// notices ("relation already exists, skipping") are kept out of the default.
    #[arg(long, env = "CRM_LOG", default_value = "info,sqlx=warn", global = true)]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API. Without DATABASE_URL, on a private PostgreSQL of its own.
    Serve(ServeArgs),
    /// Apply pending migrations and exit (idempotent).
    Migrate(DatabaseArgs),
    /// Check or rebuild the hot projection from its source tables; prints a JSON report.
    Projection(ProjectionArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ProjectionArgs {
    #[command(subcommand)]
    pub action: ProjectionAction,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Customers per batch (and per transaction, for a rebuild).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub batch_size: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum ProjectionAction {
    /// Report how many rows differ from a recompute, and since when; changes nothing.
    Check,
    /// Rewrite the rows that differ, in batches, without blocking writers for longer than a batch.
    Rebuild,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Auto,
    Json,
    Text,
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL. When set, that server is used and no private one is ever started.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,
    /// Folder of the private PostgreSQL used when DATABASE_URL is not set
    /// [default: the user's data folder, /var/lib/freshplan/crm-server for root].
    #[arg(long, env = "CRM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Upper bound of the connection pool.
    #[arg(long, env = "CRM_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Which part of the API this process serves, so the chart can scale reads, writes and the
    /// outbox relay apart.
    #[arg(long, env = "CRM_ROLE", value_enum, default_value_t = Role::All)]
    pub role: Role,
    #[arg(long, env = "CRM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Seconds between background checks of the hot projection (the staleness metrics); 0 turns
    /// them off. Run by the `all` and `relay` roles.
    #[arg(long, env = "CRM_PROJECTION_CHECK_INTERVAL", value_parser = parse_seconds, default_value = "300")]
    pub projection_check_interval: Duration,
    /// Apply pending migrations before serving. Always done for the private PostgreSQL; with
    /// DATABASE_URL the chart runs `crm-server migrate` as a hook instead.
    #[arg(long, env = "CRM_MIGRATE")]
    pub migrate: bool,
    #[command(flatten)]
    pub http: HttpArgs,
}

#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "CRM_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,
    /// Requests running longer are answered with 503.
    #[arg(long, env = "CRM_REQUEST_TIMEOUT", value_parser = parse_seconds, default_value = "30")]
    pub request_timeout: Duration,
    /// On SIGINT/SIGTERM, how long in-flight requests may take to finish before the server stops
    /// anyway.
    #[arg(long, env = "CRM_SHUTDOWN_TIMEOUT", value_parser = parse_seconds, default_value = "30")]
    pub shutdown_timeout: Duration,
    /// Refuse writes of versioned resources without If-Match (428), so that no client overwrites
    /// a change it has not seen. `false` lets such writes apply to whatever version is current.
    #[arg(long, env = "CRM_REQUIRE_IF_MATCH", default_value_t = true, action = clap::ArgAction::Set)]
    pub require_if_match: bool,
}

impl Default for HttpArgs {
    fn default() -> Self {
        HttpArgs {
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(30),
            require_if_match: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads, writes and the outbox relay in one process (the embedded default).
    All,
    /// Reads only.
    Query,
    /// Writes only.
    Command,
    /// The outbox relay: health and metrics only over HTTP.
    Relay,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::All => "all",
            Role::Query => "query",
            Role::Command => "command",
            Role::Relay => "relay",
        })
    }
}

impl Role {
    pub fn serves_queries(self) -> bool {
        matches!(self, Role::All | Role::Query)
    }

    pub fn serves_commands(self) -> bool {
        matches!(self, Role::All | Role::Command)
    }

    /// Background work that must not run once per replica of the scaled-out roles.
    pub fn runs_background_jobs(self) -> bool {
        matches!(self, Role::All | Role::Relay)
    }
}

/// A string that must not appear in logs or `Debug` output.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let seconds: f64 =
        s.trim_end_matches('s').parse().map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(0.0..=86_400.0).contains(&seconds) {
        return Err(format!("`{s}` is outside 0..86400 seconds"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn database_urls_never_show_in_debug_output() {
        let cli =
            Cli::try_parse_from(["crm-server", "migrate", "--database-url", "postgres://u:hunter2@db/crm"])
                .unwrap();
        assert!(!format!("{cli:?}").contains("hunter2"));
    }

    #[test]
    fn roles_display_as_they_are_given_on_the_command_line() {
        for role in Role::value_variants() {
            assert_eq!(role.to_string(), role.to_possible_value().unwrap().get_name());
        }
    }

    #[test]
    fn durations_are_seconds_with_an_optional_suffix() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_seconds("30s"), Ok(Duration::from_secs(30)));
        assert!(parse_seconds("-1").unwrap_err().contains("outside"));
        assert!(parse_seconds("soon").unwrap_err().contains("not a number"));
    }
}

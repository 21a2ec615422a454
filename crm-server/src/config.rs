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
    Serve(Box<ServeArgs>),
    /// Apply pending migrations and exit (idempotent).
    Migrate(DatabaseArgs),
    /// Check or rebuild the hot projection from its source tables; prints a JSON report.
    Projection(ProjectionArgs),
    /// Print a token signed by the development key of the embedded default, for local use.
    DevToken(DevTokenArgs),
    /// Apply the retention (DSGVO) policies; prints a JSON report of what each did.
    Retention(RetentionArgs),
    /// The outbox: its state, and re-driving what consumers gave up on.
    Events(EventsArgs),
}

#[derive(Debug, Clone, Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    pub action: EventsAction,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum EventsAction {
    /// Print the backlog, each consumer's lag and dead letters, and the notification queue (JSON).
    Status,
    /// Run a consumer's handler again on the events it gave up on.
    Redrive {
        /// The consumer, e.g. automation.lead-converted.
        #[arg(long)]
        consumer: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct RetentionArgs {
    #[command(subcommand)]
    pub action: RetentionAction,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Only count and list what each policy would change; change nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Days without a change after which a customer is inactive: its contacts are anonymised
    /// and its personal fields removed.
    #[arg(long, env = "CRM_RETENTION_INACTIVE_DAYS", default_value_t = 730, global = true,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub inactive_days: u32,
    /// The cold dynamic fields that hold personal notes.
    #[arg(
        long = "personal-field",
        env = "CRM_RETENTION_PERSONAL_FIELDS",
        value_delimiter = ',',
        default_value = "menu_notes",
        global = true
    )]
    pub personal_fields: Vec<String>,
    /// Days after which field history is deleted.
    #[arg(long, env = "CRM_RETENTION_HISTORY_DAYS", default_value_t = 1825, global = true,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub history_days: u32,
    /// Days after which activities are deleted.
    #[arg(long, env = "CRM_RETENTION_ACTIVITY_DAYS", default_value_t = 1825, global = true,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub activity_days: u32,
    /// Days after which outbox events are deleted.
    #[arg(long, env = "CRM_RETENTION_OUTBOX_DAYS", default_value_t = 90, global = true,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub outbox_days: u32,
    /// Rows per batch (and per transaction).
    #[arg(long, default_value_t = 500, global = true, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub batch_size: i64,
}

impl RetentionArgs {
    pub fn policies(&self) -> crate::retention::Policies {
        let days = |n: u32| time::Duration::days(i64::from(n));
        crate::retention::Policies {
            inactive_after: days(self.inactive_days),
            personal_fields: self.personal_fields.clone(),
            history_after: days(self.history_days),
            activities_after: days(self.activity_days),
            outbox_after: days(self.outbox_days),
            batch_size: self.batch_size,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum RetentionAction {
    /// Apply every policy once, in batches.
    Run,
}

#[derive(Debug, Clone, Args)]
pub struct DevTokenArgs {
    /// Role(s) of the token: sales-rep, team-lead, chain-manager, admin.
    #[arg(long = "role", required = true, value_parser = parse_role)]
    pub roles: Vec<crate::auth::UserRole>,
    /// Territory code(s) the token covers.
    #[arg(long = "territory", value_parser = parse_territory)]
    pub territories: Vec<String>,
    /// Chain id(s) a chain manager manages.
    #[arg(long = "chain")]
    pub chains: Vec<uuid::Uuid>,
    /// The token's subject (the user) [default: `dev-` and the roles and territories, e.g.
    /// `dev-admin`, `dev-sales-rep-BY`, so that tokens of different roles are different users].
    #[arg(long)]
    pub subject: Option<String>,
    /// How long the token is valid, e.g. 8h, 30m, 90s.
    #[arg(long, value_parser = parse_ttl, default_value = "8h")]
    pub ttl: Duration,
    /// Whose development key signs: the data folder of the server that is to trust the token.
    #[command(flatten)]
    pub data_dir: DataDir,
}

/// The embedded default's data folder: its PostgreSQL and its development key. `serve`, the
/// operations commands and `dev-token` take it alike, so that a token minted with the same
/// settings as the server is signed by the key that server trusts.
#[derive(Debug, Clone, Default, Args)]
pub struct DataDir {
    /// Folder of the private PostgreSQL (used when DATABASE_URL is not set) and of its development
    /// key [default: the user's data folder, /var/lib/freshplan/crm-server for root].
    // Global: `crm-server events status --data-dir X` works as well as `events --data-dir X status`.
    #[arg(id = "data_dir", long = "data-dir", env = "CRM_DATA_DIR", global = true)]
    pub path: Option<PathBuf>,
}

impl DataDir {
    /// The flag, else `CRM_DATA_DIR` (clap reads both into `path`), else the default: the user's
    /// data folder, or `/var/lib/freshplan/crm-server` for root, whose home folder PostgreSQL's
    /// unprivileged account could not enter.
    pub fn resolve(&self) -> anyhow::Result<PathBuf> {
        use anyhow::Context;
        use etcetera::BaseStrategy;
        if let Some(path) = &self.path {
            return Ok(path.clone());
        }
        if nix::unistd::Uid::effective().is_root() {
            return Ok(PathBuf::from("/var/lib/freshplan/crm-server"));
        }
        let base =
            etcetera::choose_base_strategy().context("finding the user's data folder; set CRM_DATA_DIR")?;
        Ok(base.data_dir().join("freshplan").join("crm-server"))
    }
}

/// How bearer tokens are verified. Without `--oidc-issuer`, the embedded default trusts its
/// development key (see `crm-server dev-token`); with an issuer it never does.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// The `iss` every token must carry, e.g. https://sso.freshfoodz.de/realms/crm.
    #[arg(long, env = "CRM_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// Accepted `aud` values.
    #[arg(long, env = "CRM_OIDC_AUDIENCE", value_delimiter = ',', default_value = "crm")]
    pub oidc_audience: Vec<String>,
    /// The issuer's JWKS, fetched and cached; refreshed when a token names an unknown key.
    #[arg(long, env = "CRM_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// PEM public keys (RSA, EC P-256 or Ed25519) to verify with instead of a JWKS.
    #[arg(long, env = "CRM_JWT_PUBLIC_KEYS", value_delimiter = ',')]
    pub jwt_public_key: Vec<PathBuf>,
    /// Accepted signature algorithms; only asymmetric ones exist here.
    #[arg(long, env = "CRM_JWT_ALGORITHMS", value_delimiter = ',', value_parser = parse_algorithm,
          default_value = "RS256,ES256,EdDSA")]
    pub jwt_algorithms: Vec<jsonwebtoken::Algorithm>,
    /// Clock skew tolerated for exp and nbf.
    #[arg(long, env = "CRM_JWT_LEEWAY", value_parser = parse_seconds, default_value = "30")]
    pub jwt_leeway: Duration,
    /// The shortest time between two JWKS fetches caused by unknown key ids.
    #[arg(long, env = "CRM_JWKS_MIN_REFRESH", value_parser = parse_seconds, default_value = "30")]
    pub jwks_min_refresh: Duration,
    /// Dotted claim path of the roles (Keycloak: realm_access.roles).
    #[arg(long, env = "CRM_CLAIM_ROLES", default_value = "roles")]
    pub claim_roles: String,
    #[arg(long, env = "CRM_CLAIM_TERRITORIES", default_value = "territories")]
    pub claim_territories: String,
    #[arg(long, env = "CRM_CLAIM_CHAINS", default_value = "chains")]
    pub claim_chains: String,
}

impl AuthArgs {
    pub fn claim_names(&self) -> crate::auth::ClaimNames {
        crate::auth::ClaimNames {
            roles: self.claim_roles.clone(),
            territories: self.claim_territories.clone(),
            chains: self.claim_chains.clone(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ProjectionArgs {
    #[command(subcommand)]
    pub action: ProjectionAction,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Customers per batch (and per transaction, for a rebuild). Global, so that it may follow
    /// the action (`projection rebuild --batch-size 100`), as the README writes it.
    #[arg(long, default_value_t = 500, global = true, value_parser = clap::value_parser!(i64).range(1..=10_000))]
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
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<Secret>,
    #[command(flatten)]
    pub data_dir: DataDir,
    /// Upper bound of the connection pool.
    #[arg(long, env = "CRM_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,
    /// Seconds `serve` waits at startup for a PostgreSQL that is not reachable yet, retrying,
    /// before it gives up.
    #[arg(long, env = "CRM_DB_WAIT", value_parser = parse_seconds, default_value = "300")]
    pub db_wait: Duration,
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
    /// Write demo data (customers in three territories, with contacts, fields, samples and
    /// activities) unless the database has customers, and print development tokens with calls to
    /// try. Only on the embedded default, whose development key signs the tokens.
    #[arg(long, conflicts_with_all = ["database_url", "oidc_issuer"])]
    pub demo: bool,
    /// How often the private PostgreSQL may die and be restarted within `--pg-restart-window`;
    /// at the next death `serve` exits non-zero, for its own supervisor (systemd, Kubernetes) to
    /// act. 0: exit at the first.
    #[arg(long, env = "CRM_PG_MAX_RESTARTS", default_value_t = 3)]
    pub pg_max_restarts: u32,
    /// Seconds over which those restarts are counted.
    #[arg(long, env = "CRM_PG_RESTART_WINDOW", value_parser = parse_seconds, default_value = "600")]
    pub pg_restart_window: Duration,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub relay: RelayArgs,
}

/// The outbox relay and consumers (run by the `all` and `relay` roles).
#[derive(Debug, Clone, Args)]
pub struct RelayArgs {
    /// Milliseconds between the relay's probes for unpublished events while there are none
    /// (it goes on at once after a full batch).
    #[arg(long, env = "CRM_RELAY_POLL_MS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub relay_poll_ms: u64,
    /// Events published per transaction.
    #[arg(long, env = "CRM_RELAY_BATCH", default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub relay_batch: i64,
    /// Tries of a consumer's handler on one event before it goes to the dead letters.
    #[arg(long, env = "CRM_CONSUMER_MAX_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub consumer_max_attempts: i32,
}

impl Default for RelayArgs {
    fn default() -> Self {
        RelayArgs { relay_poll_ms: 20, relay_batch: 1000, consumer_max_attempts: 5 }
    }
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
    /// How long the outcome of a request with an Idempotency-Key is replayed to retries, e.g.
    /// 24h, 30m.
    #[arg(long, env = "CRM_IDEMPOTENCY_TTL", value_parser = parse_ttl, default_value = "24h")]
    pub idempotency_ttl: Duration,
    /// The cockpit flags its figures `stale` when the hot projection lags longer than this
    /// (seconds), as its last check found.
    #[arg(long, env = "CRM_COCKPIT_STALE_AFTER", value_parser = parse_seconds, default_value = "900")]
    pub cockpit_stale_after: Duration,
}

impl Default for HttpArgs {
    fn default() -> Self {
        HttpArgs {
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(30),
            require_if_match: true,
            idempotency_ttl: Duration::from_secs(24 * 3600),
            cockpit_stale_after: Duration::from_secs(900),
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

fn parse_role(s: &str) -> Result<crate::auth::UserRole, String> {
    crate::auth::UserRole::parse(s)
        .ok_or_else(|| format!("`{s}` is not sales-rep, team-lead, chain-manager, admin or platform"))
}

fn parse_territory(s: &str) -> Result<String, String> {
    if crate::domain::customer::is_territory(s) {
        Ok(s.to_owned())
    } else {
        Err(format!("`{s}` is not a territory code (two or three capital letters)"))
    }
}

/// Only the asymmetric algorithms; HMAC would let anyone holding the public key forge tokens.
fn parse_algorithm(s: &str) -> Result<jsonwebtoken::Algorithm, String> {
    use jsonwebtoken::Algorithm::*;
    match s {
        "RS256" => Ok(RS256),
        "RS384" => Ok(RS384),
        "RS512" => Ok(RS512),
        "PS256" => Ok(PS256),
        "ES256" => Ok(ES256),
        "ES384" => Ok(ES384),
        "EdDSA" => Ok(EdDSA),
        _ => Err(format!(
            "`{s}` is not an accepted algorithm (RS256, RS384, RS512, PS256, ES256, ES384, EdDSA)"
        )),
    }
}

/// `8h`, `30m`, `90s` or plain seconds.
fn parse_ttl(s: &str) -> Result<Duration, String> {
    let (number, unit) = match s.char_indices().last() {
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 's')) => (&s[..i], 1),
        _ => (s, 1),
    };
    let n: u64 = number.parse().map_err(|_| format!("`{s}` is not a duration such as 8h, 30m or 90s"))?;
    if n == 0 || n * unit > 30 * 24 * 3600 {
        return Err(format!("`{s}` is outside 1s..30 days"));
    }
    Ok(Duration::from_secs(n * unit))
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
    fn the_data_folder_and_database_may_follow_the_operations_subcommand() {
        for args in [
            &["crm-server", "events", "status", "--data-dir", "/srv/crm"][..],
            &["crm-server", "events", "--data-dir", "/srv/crm", "status"],
            &["crm-server", "projection", "check", "--data-dir", "/srv/crm"],
        ] {
            let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let database = match cli.command {
                Command::Events(events) => events.database,
                Command::Projection(projection) => projection.database,
                other => panic!("{other:?}"),
            };
            assert_eq!(database.data_dir.path.as_deref(), Some(std::path::Path::new("/srv/crm")), "{args:?}");
        }
        let cli =
            Cli::try_parse_from(["crm-server", "events", "status", "--database-url", "postgres://h/db"]);
        assert!(cli.is_ok(), "{cli:?}");
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
    fn token_lifetimes_take_units_and_have_bounds() {
        assert_eq!(parse_ttl("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(parse_ttl("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_ttl("45"), Ok(Duration::from_secs(45)));
        assert!(parse_ttl("0s").is_err() && parse_ttl("31d").is_err() && parse_ttl("999h").is_err());
    }

    #[test]
    fn hmac_algorithms_cannot_be_configured() {
        assert!(parse_algorithm("HS256").unwrap_err().contains("not an accepted"));
        assert!(parse_algorithm("none").is_err());
    }

    #[test]
    fn durations_are_seconds_with_an_optional_suffix() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_seconds("30s"), Ok(Duration::from_secs(30)));
        assert!(parse_seconds("-1").unwrap_err().contains("outside"));
        assert!(parse_seconds("soon").unwrap_err().contains("not a number"));
    }
}

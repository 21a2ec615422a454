//! `crm-server`: thin wiring of the library; see `lib.rs` for the layout.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use crm_server::auth::{self, UserRole, Verifier, dev::DevKey};
use crm_server::config::{
    Cli, Command, DatabaseArgs, DevTokenArgs, EventsAction, EventsArgs, ProjectionAction, ProjectionArgs,
    RetentionAction, RetentionArgs, ServeArgs,
};
use crm_server::db::{self, Database};
use crm_server::embedded_pg::supervise::{RestartPolicy, Status};
use crm_server::telemetry::{self, LogFilter};
use crm_server::{AppState, http};
use tokio::sync::watch;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_filter = match telemetry::init(cli.log_format, &cli.log) {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("crm-server: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = tokio::runtime::Runtime::new().context("starting the async runtime").and_then(|runtime| {
        runtime.block_on(async {
            match cli.command {
                Command::Serve(args) => serve(*args, log_filter).await,
                Command::Migrate(args) => migrate(args).await,
                Command::Projection(args) => projection(args).await,
                Command::DevToken(args) => dev_token(args),
                Command::Retention(args) => retention(args).await,
                Command::Events(args) => events(args).await,
            }
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "crm-server failed");
            ExitCode::FAILURE
        }
    }
}

/// Order on the way out: stop accepting, let in-flight requests finish, close the pool, and only
/// then stop the private PostgreSQL (if this process started it).
async fn serve(args: ServeArgs, log_filter: LogFilter) -> anyhow::Result<()> {
    let policy = RestartPolicy { max_restarts: args.pg_max_restarts, window: args.pg_restart_window };
    let database = Database::serve(&args.database, policy).await?;
    let served = serve_on(&args, &database, log_filter).await;
    let closed = database.close().await;
    served.and(closed)
}

async fn serve_on(args: &ServeArgs, database: &Database, log_filter: LogFilter) -> anyhow::Result<()> {
    let verifier = verifier(args, database)?;
    if let Some(data_dir) = database.data_dir() {
        // The embedded default migrates itself and creates the app login the pool uses.
        let owner = db::connect(database.url(), 2).await.context("connecting to PostgreSQL")?;
        db::migrate(&owner).await.context("applying migrations")?;
        owner.close().await;
        let password = std::fs::read_to_string(data_dir.join("app-password"))?;
        db::ensure_app_login(database.url(), password.trim()).await.context("creating the app login")?;
    }
    let pool =
        db::connect_waiting(database.app_url(), args.database.db_max_connections, args.database.db_wait)
            .await
            .context("connecting to PostgreSQL")?;
    db::check_app_role(&pool).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(address = %listener.local_addr()?, role = %args.role, "serving the CRM API");
    let state = AppState::load(pool.clone(), args.role, args.http.clone(), log_filter, verifier)
        .await
        .context("loading the field catalog")?;
    if args.demo {
        let data_dir = database.data_dir().context("--demo needs the embedded default")?;
        demo(&state, data_dir, listener.local_addr()?).await?;
    }
    let jobs = crm_server::jobs::spawn(&state, args.role, &args.relay, args.projection_check_interval);
    // A private PostgreSQL that cannot be kept running ends the server, non-zero.
    let gave_up = Arc::new(OnceLock::new());
    let supervision = database.supervision();
    if let Some(status) = &supervision {
        state.liveness.watch_database(status.clone());
    }
    let stop = {
        let gave_up = gave_up.clone();
        async move {
            tokio::select! {
                () = shutdown_signal() => {}
                reason = failure(supervision) => {
                    tracing::error!(%reason, "shutting down");
                    let _ = gave_up.set(reason);
                }
            }
        }
    };
    let shutdown = http::ending_streams(&state, stop);
    let served = http::serve(listener, http::app(state), shutdown, args.http.shutdown_timeout).await;
    for job in jobs {
        job.abort();
    }
    pool.close().await;
    tracing::info!("database pool closed");
    served.context("serving HTTP")?;
    match gave_up.get() {
        Some(reason) => Err(anyhow::anyhow!("{reason}")),
        None => Ok(()),
    }
}

/// Resolves with the reason once the supervisor of the private PostgreSQL gives up; never without
/// one.
async fn failure(supervision: Option<watch::Receiver<Status>>) -> String {
    let Some(mut status) = supervision else {
        return std::future::pending().await;
    };
    match status.wait_for(|status| matches!(status, Status::Failed(_))).await {
        Ok(failed) => match &*failed {
            Status::Failed(reason) => reason.clone(),
            _ => unreachable!("wait_for returns a status its predicate accepted"),
        },
        Err(_) => "the supervisor of the private PostgreSQL ended".to_owned(),
    }
}

/// Writes the demo data through the server's own router (first start only) and prints tokens of
/// the development key with calls to try.
async fn demo(state: &AppState, data_dir: &Path, address: SocketAddr) -> anyhow::Result<()> {
    let key = DevKey::load_or_create(data_dir).map_err(anyhow::Error::msg)?;
    let ttl = Duration::from_secs(8 * 3600);
    let admin = key.mint("demo-admin", &[UserRole::Admin], &[], &[], ttl).map_err(anyhow::Error::msg)?;
    let rep = key
        .mint("demo-rep-by", &[UserRole::SalesRep], &["BY".to_owned()], &[], ttl)
        .map_err(anyhow::Error::msg)?;
    let today = crm_server::domain::berlin::date(time::OffsetDateTime::now_utc());
    let seeded = crm_server::demo::seed(http::app(state.clone()), &admin, today).await?;
    match &seeded {
        Some(s) => tracing::info!(
            customers = s.customers.len(),
            samples = s.samples,
            activities = s.activities,
            territories = ?crm_server::demo::TERRITORIES,
            "demo data written"
        ),
        None => tracing::info!("the database has customers already: no demo data written"),
    }
    println!("{}", crm_server::demo::guide(&format!("http://{address}"), &admin, &rep, seeded.as_ref()));
    Ok(())
}

async fn migrate(args: DatabaseArgs) -> anyhow::Result<()> {
    let database = Database::open(&args).await?;
    let migrated = async {
        let pool = db::connect(database.url(), 2).await.context("connecting to PostgreSQL")?;
        db::migrate(&pool).await.context("applying migrations")?;
        let status = db::schema_status(&pool).await?;
        pool.close().await;
        tracing::info!(applied = status.applied, "migrations are current");
        anyhow::Ok(())
    }
    .await;
    let closed = database.close().await;
    migrated.and(closed)
}

/// The configured issuer; without one, the development key, but only on the embedded default.
fn verifier(args: &ServeArgs, database: &Database) -> anyhow::Result<Verifier> {
    if let Some(verifier) = auth::configured(&args.auth).map_err(anyhow::Error::msg)? {
        return Ok(verifier);
    }
    let Some(data_dir) = database.data_dir() else {
        anyhow::bail!(
            "no token issuer is configured: set --oidc-issuer with --jwks-url or --jwt-public-key \
             (the development key is trusted only by the embedded default)"
        );
    };
    tracing::warn!("no --oidc-issuer: trusting the development key; mint tokens with `crm-server dev-token`");
    DevKey::load_or_create(data_dir)
        .and_then(|key| key.verifier(args.auth.claim_names()))
        .map_err(anyhow::Error::msg)
}

/// Prints the token on stdout (for `$(...)`) and on stderr whose key signed it, since a token
/// only verifies on a server of the same data folder.
fn dev_token(args: DevTokenArgs) -> anyhow::Result<()> {
    let dir = args.data_dir.resolve()?;
    let key = DevKey::load_or_create(&dir).map_err(anyhow::Error::msg)?;
    let subject = args.subject.unwrap_or_else(|| DevKey::default_subject(&args.roles, &args.territories));
    let token = key
        .mint(&subject, &args.roles, &args.territories, &args.chains, args.ttl)
        .map_err(anyhow::Error::msg)?;
    eprintln!(
        "crm-server dev-token: a token of {subject}, signed with the development key in {}{}",
        dir.display(),
        if key.created() {
            " (made now: no server has used this folder yet; start it with the same --data-dir or CRM_DATA_DIR)"
        } else {
            ""
        }
    );
    println!("{token}");
    Ok(())
}

async fn projection(args: ProjectionArgs) -> anyhow::Result<()> {
    let database = Database::open(&args.database).await?;
    let result = async {
        let pool = db::connect(database.url(), 2).await.context("connecting to PostgreSQL")?;
        let report = match args.action {
            ProjectionAction::Check => serde_json::to_string_pretty(
                &db::projection::check(&pool, &db::scope::Scope::system(), args.batch_size).await?,
            )?,
            ProjectionAction::Rebuild => {
                serde_json::to_string_pretty(&db::projection::rebuild(&pool, args.batch_size).await?)?
            }
        };
        pool.close().await;
        println!("{report}");
        anyhow::Ok(())
    }
    .await;
    let closed = database.close().await;
    result.and(closed)
}

async fn retention(args: RetentionArgs) -> anyhow::Result<()> {
    let database = Database::open(&args.database).await?;
    let result = async {
        let pool = db::connect(database.url(), 2).await.context("connecting to PostgreSQL")?;
        let policies = args.policies();
        policies.check(&db::fields::load_catalog(&pool).await?).map_err(anyhow::Error::msg)?;
        let RetentionAction::Run = args.action;
        let report =
            crm_server::retention::run(&pool, &policies, args.dry_run, time::OffsetDateTime::now_utc())
                .await?;
        pool.close().await;
        println!("{}", serde_json::to_string_pretty(&report)?);
        anyhow::Ok(())
    }
    .await;
    let closed = database.close().await;
    result.and(closed)
}

async fn events(args: EventsArgs) -> anyhow::Result<()> {
    use crm_server::automations::{BounceToContactability, LeadConvertedToSample};
    use crm_server::outbox::{consumer, relay};
    let database = Database::open(&args.database).await?;
    let result = async {
        let pool = db::connect(database.url(), 2).await.context("connecting to PostgreSQL")?;
        let report = match &args.action {
            EventsAction::Status => serde_json::to_value(relay::stats(&pool).await?)?,
            EventsAction::Redrive { consumer: name } => {
                let (redriven, failing) = match name.as_str() {
                    "automation.lead-converted" => consumer::redrive(&pool, &LeadConvertedToSample).await?,
                    "automation.email-bounce" => consumer::redrive(&pool, &BounceToContactability).await?,
                    other => anyhow::bail!(
                        "no consumer `{other}`: automation.lead-converted or automation.email-bounce"
                    ),
                };
                serde_json::json!({"consumer": name, "redriven": redriven, "stillFailing": failing})
            }
        };
        pool.close().await;
        println!("{}", serde_json::to_string_pretty(&report)?);
        anyhow::Ok(())
    }
    .await;
    let closed = database.close().await;
    result.and(closed)
}

/// SIGINT (Ctrl-C) or SIGTERM (Kubernetes).
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

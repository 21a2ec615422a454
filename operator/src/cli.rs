//! The command line: one clap subcommand per task, each a function from its arguments to output.
//! Everything it prints or writes comes from the library; this module only does the I/O.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use freshplan_operator::bundle::{Bundle, DocumentError, Format, RenderError, RenderOptions};
use freshplan_operator::calendar::{Baseline, Calendar, Replicas};
use freshplan_operator::component::Component;
use freshplan_operator::controller::Options;
use freshplan_operator::crd::{self, CrdError, SeasonalWindow};
use freshplan_operator::crm::{CrmClient, CrmConfig, Token};
use freshplan_operator::gateway::settings::EffectiveSettings;
use freshplan_operator::metrics::Metrics;
use freshplan_operator::runtime::{self, leader::LeaseConfig};
use freshplan_operator::telemetry;
use freshplan_operator::{preview, validate};
use jiff::civil::Date;
use jiff::tz::TimeZone;

#[derive(Debug, Parser)]
#[command(
    name = "freshplan-operator",
    version,
    about = "FreshPlan Kubernetes operator: seasonal scaling (ScalingProfile, SeasonalWindow) and gateway policy"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the CustomResourceDefinitions as a YAML stream, or write one file per CRD.
    ///
    /// `crds/` in the repository is generated with `crdgen --out crds`.
    Crdgen(CrdgenArgs),
    /// Check and preview SeasonalWindow calendars, without a cluster.
    #[command(subcommand)]
    Calendar(CalendarCommand),
    /// Run the controllers against the cluster of the current kubeconfig (`KUBECONFIG`, else
    /// `~/.kube/config`) or, in a pod, the cluster it runs in.
    Run(RunArgs),
    /// Print every object the operator would create for the ScalingProfiles, SeasonalWindows,
    /// Deployments and TenantPolicies in the given files, as a YAML stream, without a cluster.
    Render(RenderArgs),
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// A YAML file, or a directory whose `*.yaml` and `*.yml` files are read (not its
    /// subdirectories); repeatable. Documents without a namespace are in `default`.
    #[arg(short, long = "filename", value_name = "PATH", required = true)]
    pub files: Vec<PathBuf>,
    /// The instant to render at, RFC 3339 (default: now).
    #[arg(long, value_name = "TIME")]
    pub now: Option<jiff::Timestamp>,
    /// Render `mode: auto` as on a cluster without KEDA's CRDs: HorizontalPodAutoscalers
    /// (default: as with KEDA installed).
    #[arg(long)]
    pub without_keda: bool,
    /// The CRM's effective settings to overlay on TenantPolicies that have a `settingsRef`: a
    /// JSON or YAML file of one or more answers of `GET /settings/effective`, one per tenant and
    /// org (repeatable).
    #[arg(long, value_name = "FILE")]
    pub settings: Vec<PathBuf>,
    /// TenantPolicies as Kong Ingress Controller objects (`kic`) or as decK files (`deck`).
    #[arg(long, value_enum, default_value_t = FormatArg::Kic)]
    pub format: FormatArg,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where to serve /healthz, /readyz, /metrics and POST /sync/{namespace}/{name}.
    #[arg(long, env = "FRESHPLAN_ADMIN_ADDR", default_value = "0.0.0.0:8080", value_name = "ADDR")]
    pub admin_addr: std::net::SocketAddr,
    /// The namespace of the leader election Lease (in a pod: its own, from the downward API).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// The name of the leader election Lease.
    #[arg(long, env = "FRESHPLAN_LEASE_NAME", default_value = "freshplan-operator")]
    pub lease_name: String,
    /// This replica's name in the Lease and in Events (in a pod: the pod's name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// The CRM server's base URL, for the settings TenantPolicies name (`settingsRef`).
    #[arg(long, env = "FRESHPLAN_CRM_URL", value_name = "URL")]
    pub crm_url: Option<String>,
    /// The CRM's command role, where the sync reports are posted, when reads (`query`) and writes
    /// are served apart; default: `--crm-url`.
    #[arg(long, env = "FRESHPLAN_CRM_COMMAND_URL", value_name = "URL", requires = "crm_url")]
    pub crm_command_url: Option<String>,
    /// A file holding the CRM token (a JWT with the `platform` role); read again when it changes.
    #[arg(long, env = "FRESHPLAN_CRM_TOKEN_FILE", value_name = "FILE", requires = "crm_url")]
    pub crm_token_file: Option<PathBuf>,
    /// The deadline of one call to the CRM, in seconds.
    #[arg(long, default_value_t = 10)]
    pub crm_timeout_seconds: u64,
    /// How many objects of one kind are reconciled at once.
    #[arg(long, env = "FRESHPLAN_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// `json` lines or `text`.
    #[arg(long, env = "FRESHPLAN_LOG_FORMAT", value_enum, default_value_t = LogFormatArg::Json)]
    pub log_format: LogFormatArg,
    /// Which log events to write, as `RUST_LOG` (`info,kube=warn`).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log: String,
    /// Pretend the wall clock read this instant when the operator started (it then runs on from
    /// there): for demonstrations and end-to-end tests of seasonal transitions. Never in
    /// production.
    #[arg(long, env = "FRESHPLAN_CLOCK_START", hide = true, value_name = "TIME")]
    pub clock_start: Option<jiff::Timestamp>,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormatArg {
    Json,
    Text,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    Kic,
    Deck,
}

#[derive(Debug, Subcommand)]
pub enum CalendarCommand {
    /// Check a SeasonalWindow file: every mistake with its field path.
    Validate {
        /// The SeasonalWindow YAML file.
        #[arg(short, long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Print the floors over a span of days: the value at the start, then every change, with the
    /// windows and dark periods in force; or draw them as an SVG plot (`--svg`).
    Preview(PreviewArgs),
}

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The SeasonalWindow YAML file.
    #[arg(short, long, value_name = "FILE")]
    pub file: PathBuf,
    /// First day, YYYY-MM-DD (in the calendar's zone).
    #[arg(long, value_name = "DATE")]
    pub from: Date,
    /// Last day, YYYY-MM-DD, inclusive.
    #[arg(long, value_name = "DATE")]
    pub to: Date,
    /// Only this territory (default: every territory the calendar names).
    #[arg(long)]
    pub territory: Option<String>,
    /// Only this component: query, command or relay (default: all three).
    #[arg(long, value_parser = parse_component)]
    pub component: Option<Component>,
    /// The floor where no window is in force (a ScalingProfile's minReplicas).
    #[arg(long, default_value_t = 1)]
    pub baseline: u32,
    /// Write the floors as an SVG step plot to OUT instead, one panel per territory and component
    /// with the windows and dark periods as labelled bands; prints only `wrote OUT`.
    #[arg(long, value_name = "OUT")]
    pub svg: Option<PathBuf>,
}

fn parse_component(value: &str) -> Result<Component, String> {
    Component::from_label(value).ok_or_else(|| format!("\"{value}\" is not one of query, command, relay"))
}

#[derive(Debug, Args)]
pub struct CrdgenArgs {
    /// Write `<plural>.<group>.yaml` per CRD into this directory (created if missing) instead of
    /// printing a multi-document stream to standard output.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Why a command failed; printed as the one line the user sees.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Crd(#[from] CrdError),
    #[error("cannot create directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write to standard output: {0}")]
    Stdout(#[source] io::Error),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: not a SeasonalWindow: {reason}", path.display())]
    Parse { path: PathBuf, reason: String },
    #[error("{}: {} mistake(s):\n{}", path.display(), found.len(), found.iter().map(|f| format!("  {f}")).collect::<Vec<_>>().join("\n"))]
    Invalid { path: PathBuf, found: Vec<validate::Invalid> },
    #[error("--to {to} is before --from {from}")]
    Span { from: Date, to: Date },
    #[error("the baseline must be below 10000 replicas")]
    Baseline,
    #[error(transparent)]
    Document(#[from] DocumentError),
    #[error("{}, document {index}: not effective settings: {reason}", path.display())]
    Settings { path: PathBuf, index: usize, reason: String },
    #[error("nothing rendered: {0}")]
    Render(#[from] RenderError),
    #[error(transparent)]
    Plot(#[from] preview::PlotError),
    #[error("{0}")]
    Run(String),
}

impl Cli {
    /// Runs the command; `stdout` receives what the command prints.
    pub fn run(self, stdout: &mut dyn Write) -> Result<(), CliError> {
        match self.command {
            Command::Crdgen(args) => crdgen(&args, stdout),
            Command::Calendar(CalendarCommand::Validate { file }) => {
                let (_, calendar) = read_calendar(&file)?;
                writeln!(
                    stdout,
                    "{}: valid ({} windows, {} dark periods, {})",
                    file.display(),
                    calendar.windows.len(),
                    calendar.darks.len(),
                    calendar.timezone.iana_name().unwrap_or("UTC")
                )
                .map_err(CliError::Stdout)
            }
            Command::Calendar(CalendarCommand::Preview(args)) => calendar_preview(&args, stdout),
            Command::Render(args) => render(&args, stdout),
            Command::Run(args) => {
                let runtime = tokio::runtime::Runtime::new()
                    .map_err(|e| CliError::Run(format!("cannot start: {e}")))?;
                runtime.block_on(run(args))
            }
        }
    }
}

fn crdgen(args: &CrdgenArgs, stdout: &mut dyn Write) -> Result<(), CliError> {
    let Some(dir) = &args.out else {
        let stream = crd::stream()?;
        return stdout.write_all(stream.as_bytes()).and_then(|()| stdout.flush()).map_err(CliError::Stdout);
    };
    std::fs::create_dir_all(dir).map_err(|source| CliError::CreateDir { path: dir.clone(), source })?;
    for manifest in crd::manifests()? {
        let path = dir.join(&manifest.file_name);
        write_file(&path, &manifest.yaml)?;
        writeln!(stdout, "wrote {}", path.display()).map_err(CliError::Stdout)?;
    }
    Ok(())
}

/// A SeasonalWindow file as its name (`metadata.name`, else the file's) and validated calendar.
fn read_calendar(path: &Path) -> Result<(String, Calendar), CliError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| CliError::Read { path: path.to_owned(), source })?;
    let resource: SeasonalWindow = serde_saphyr::from_str(&text)
        .map_err(|e| CliError::Parse { path: path.to_owned(), reason: e.to_string() })?;
    let calendar = validate::calendar(&resource.spec)
        .map_err(|found| CliError::Invalid { path: path.to_owned(), found })?;
    let name = resource.metadata.name.unwrap_or_else(|| path.display().to_string());
    Ok((name, calendar))
}

fn calendar_preview(args: &PreviewArgs, stdout: &mut dyn Write) -> Result<(), CliError> {
    if args.to < args.from {
        return Err(CliError::Span { from: args.from, to: args.to });
    }
    let (name, calendar) = read_calendar(&args.file)?;
    let replicas = Replicas::new(args.baseline, 10_000).map_err(|_| CliError::Baseline)?;
    let components: Vec<Component> = args.component.map_or(Component::ALL.to_vec(), |c| vec![c]);
    let baseline: Baseline = components.iter().map(|&c| (c, replicas)).collect();
    let start_of = |date: Date| {
        date.to_zoned(calendar.timezone.clone()).map(|z| z.timestamp()).unwrap_or_else(|_| {
            date.to_zoned(TimeZone::UTC).map(|z| z.timestamp()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        })
    };
    let (from, to) = (start_of(args.from), start_of(args.to.tomorrow().unwrap_or(args.to)));
    let calendars = [calendar];
    let territories = match &args.territory {
        Some(territory) => vec![territory.clone()],
        None => preview::territories(&calendars, "any"),
    };
    let Some(out) = &args.svg else {
        let text = preview::text(&calendars, &baseline, &territories, &components, from, to);
        return stdout.write_all(text.as_bytes()).map_err(CliError::Stdout);
    };
    let plot = preview::svg(&calendars, &baseline, &territories, &components, from, to, &name)?;
    write_file(out, &plot)?;
    writeln!(stdout, "wrote {}", out.display()).map_err(CliError::Stdout)
}

async fn run(args: RunArgs) -> Result<(), CliError> {
    let format = match args.log_format {
        LogFormatArg::Json => telemetry::LogFormat::Json,
        LogFormatArg::Text => telemetry::LogFormat::Text,
    };
    telemetry::init(format, &args.log).map_err(|e| CliError::Run(e.to_string()))?;
    let client = kube::Client::try_default().await.map_err(|e| {
        CliError::Run(format!("no Kubernetes API to talk to (KUBECONFIG, ~/.kube/config or in-cluster): {e}"))
    })?;
    let identity = args
        .identity
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("freshplan-operator-{}", std::process::id()));
    let mut options = Options::new(Metrics::new());
    options.instance = Some(identity.clone());
    options.concurrency = args.concurrency;
    if let Some(base_url) = args.crm_url {
        let token = match args.crm_token_file {
            Some(path) => Token::File(path),
            None => {
                return Err(CliError::Run(
                    "--crm-url needs --crm-token-file (a token with the platform role)".into(),
                ));
            }
        };
        let config = CrmConfig {
            base_url,
            command_url: args.crm_command_url,
            token,
            timeout: std::time::Duration::from_secs(args.crm_timeout_seconds),
        };
        options.crm =
            Some(CrmClient::new(config).map_err(|e| CliError::Run(format!("the CRM client: {e}")))?);
    }
    if let Some(start) = args.clock_start {
        let offset = start.duration_since(jiff::Timestamp::now());
        options.clock = std::sync::Arc::new(move || jiff::Timestamp::now() + offset);
    }
    let admin = tokio::net::TcpListener::bind(args.admin_addr)
        .await
        .map_err(|e| CliError::Run(format!("cannot listen on {}: {e}", args.admin_addr)))?;
    let address = admin.local_addr().map_err(|e| CliError::Run(e.to_string()))?;
    tracing::info!(%address, identity, "admin server listening");
    let lease = LeaseConfig::new(args.lease_namespace, args.lease_name, identity);
    runtime::run(client, lease, admin, options, shutdown_signal())
        .await
        .map_err(|e| CliError::Run(e.to_string()))
}

/// SIGTERM (Kubernetes stopping the pod) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = interrupt => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = interrupt.await;
        }
    }
    tracing::info!("shutting down");
}

fn render(args: &RenderArgs, stdout: &mut dyn Write) -> Result<(), CliError> {
    let mut bundle = Bundle::default();
    for path in &args.files {
        for file in yaml_files(path)? {
            let text = std::fs::read_to_string(&file)
                .map_err(|source| CliError::Read { path: file.clone(), source })?;
            bundle.add_stream(&file.display().to_string(), &text)?;
        }
    }
    let mut settings = Vec::new();
    for path in &args.settings {
        settings.extend(read_settings(path)?);
    }
    let options = RenderOptions {
        keda_installed: !args.without_keda,
        now: args.now.unwrap_or_else(jiff::Timestamp::now),
        settings: (!args.settings.is_empty()).then_some(settings),
        format: match args.format {
            FormatArg::Kic => Format::Kic,
            FormatArg::Deck => Format::Deck,
        },
    };
    let yaml = bundle.render(&options)?;
    stdout.write_all(yaml.as_bytes()).map_err(CliError::Stdout)
}

/// The effective settings in `path`: documents (YAML reads JSON too) that are each one answer of
/// the registry, or a list of them.
fn read_settings(path: &Path) -> Result<Vec<EffectiveSettings>, CliError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| CliError::Read { path: path.to_owned(), source })?;
    let invalid = |index: usize, reason: String| CliError::Settings { path: path.to_owned(), index, reason };
    let documents: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&text).map_err(|e| invalid(1, e.to_string()))?;
    let mut settings = Vec::new();
    for (n, document) in documents.into_iter().enumerate() {
        let answers = match document {
            serde_json::Value::Null => continue,
            serde_json::Value::Array(answers) => answers,
            answer => vec![answer],
        };
        for answer in answers {
            let parsed = serde_path_to_error::deserialize(answer)
                .map_err(|e| invalid(n + 1, format!("{}: {}", e.path(), e.inner())))?;
            settings.push(parsed);
        }
    }
    Ok(settings)
}

/// `path` itself, or the YAML files directly in it, in name order.
fn yaml_files(path: &Path) -> Result<Vec<PathBuf>, CliError> {
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let read = |source| CliError::Read { path: path.to_owned(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(read)? {
        let file = entry.map_err(read)?.path();
        let yaml = file.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if yaml && file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

fn write_file(path: &Path, contents: &str) -> Result<(), CliError> {
    std::fs::write(path, contents).map_err(|source| CliError::Write { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn crdgen_without_out_prints_every_crd_as_one_stream() {
        let cli = Cli::try_parse_from(["freshplan-operator", "crdgen"]).unwrap();
        let mut out = Vec::new();
        cli.run(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), crd::stream().unwrap());
    }

    #[test]
    fn crdgen_into_a_file_where_a_directory_belongs_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("crds");
        std::fs::write(&blocker, "not a directory").unwrap();
        let args = CrdgenArgs { out: Some(blocker.clone()) };
        let err = crdgen(&args, &mut Vec::new()).unwrap_err();
        assert!(matches!(&err, CliError::CreateDir { path, .. } if *path == blocker), "{err:?}");
        assert!(err.to_string().starts_with(&format!("cannot create directory {}", blocker.display())));
    }
}

#[cfg(test)]
mod calendar_tests {
    use super::*;

    pub(super) fn run(args: &[&str]) -> Result<String, CliError> {
        let mut out = Vec::new();
        Cli::try_parse_from(args).unwrap().run(&mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    /// A file of `examples/`; `""`: the folder.
    pub(super) fn example(name: &str) -> String {
        format!("{}/../examples/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn validate_accepts_the_examples_and_names_each_mistake() {
        let out =
            run(&["freshplan-operator", "calendar", "validate", "-f", &example("oktoberfest.yaml")]).unwrap();
        assert!(out.contains("valid (2 windows"), "{out}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("broken.yaml");
        std::fs::write(
            &file,
            "apiVersion: freshplan.io/v1alpha1\nkind: SeasonalWindow\nmetadata: {name: x}\nspec:\n  timezone: Mars/Olympus\n  windows:\n    - name: w\n      dates: {from: \"2026-02-30\", to: \"2026-03-01\"}\n      floors: {query: 1}\n",
        )
        .unwrap();
        let err =
            run(&["freshplan-operator", "calendar", "validate", "-f", file.to_str().unwrap()]).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("2 mistake(s)"), "{message}");
        assert!(message.contains("spec.timezone: \"Mars/Olympus\""), "{message}");
        assert!(message.contains("spec.windows[0].dates.from"), "{message}");

        std::fs::write(&file, "spec: [not, a, calendar]").unwrap();
        let err =
            run(&["freshplan-operator", "calendar", "validate", "-f", file.to_str().unwrap()]).unwrap_err();
        assert!(matches!(err, CliError::Parse { .. }), "{err}");
    }

    #[test]
    fn preview_prints_the_floors_of_a_span() {
        let out = run(&[
            "freshplan-operator",
            "calendar",
            "preview",
            "-f",
            &example("oktoberfest.yaml"),
            "--from",
            "2026-09-19",
            "--to",
            "2026-09-19",
            "--territory",
            "BY",
            "--component",
            "query",
            "--baseline",
            "2",
        ])
        .unwrap();
        assert!(out.starts_with("BY query (Europe/Berlin)\n"), "{out}");
        assert!(out.contains("  8  wiesn") || out.contains(" 12  wiesn"), "{out}");
        let err = run(&[
            "freshplan-operator",
            "calendar",
            "preview",
            "-f",
            &example("oktoberfest.yaml"),
            "--from",
            "2026-09-20",
            "--to",
            "2026-09-19",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("before --from"), "{err}");
    }

    fn preview_svg(out: &Path) -> Result<String, CliError> {
        run(&[
            "freshplan-operator",
            "calendar",
            "preview",
            "-f",
            &example("oktoberfest.yaml"),
            "--from",
            "2026-09-17",
            "--to",
            "2026-10-06",
            "--baseline",
            "2",
            "--svg",
            out.to_str().unwrap(),
        ])
    }

    #[test]
    fn preview_svg_writes_a_plot_of_the_calendar() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("wiesn.svg");
        assert_eq!(preview_svg(&out).unwrap(), format!("wrote {}\n", out.display()));

        let svg = std::fs::read_to_string(&out).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let root = doc.root_element();
        assert_eq!(root.tag_name().namespace(), Some("http://www.w3.org/2000/svg"));
        assert!(root.has_attribute("viewBox"));
        let texts: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .map(str::trim)
            .collect();
        let title = "oktoberfest: replica floors, Thu 17 Sep 2026 to Tue 6 Oct 2026, Europe/Berlin";
        for text in
            [title, "BY · query", "BY · command", "BY · relay", "wiesn", "wiesn-2026-opening", "Sat 19 Sep"]
        {
            assert!(texts.contains(&text), "{text} in {texts:?}");
        }
        let lines = doc.descendants().filter(|n| n.attribute("stroke-width") == Some("2")).count();
        assert_eq!(lines, 3);
    }

    #[test]
    fn preview_svg_into_a_path_inside_a_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plots");
        std::fs::write(&file, "not a directory").unwrap();
        let out = file.join("wiesn.svg");
        let err = preview_svg(&out).unwrap_err();
        assert!(matches!(&err, CliError::Write { path, .. } if *path == out), "{err:?}");
        assert!(err.to_string().starts_with(&format!("cannot write {}: ", out.display())), "{err}");
    }
}

#[cfg(test)]
mod render_tests {
    use super::calendar_tests::{example, run};

    fn kinds(stream: &str) -> Vec<String> {
        let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(stream).unwrap();
        documents.iter().map(|d| d["kind"].as_str().unwrap_or_default().to_owned()).collect()
    }

    /// The kinds a ScalingProfile generates, in order.
    fn scaling_kinds(stream: &str) -> Vec<String> {
        kinds(stream).into_iter().filter(|k| k == "ScaledObject" || k == "HorizontalPodAutoscaler").collect()
    }

    #[test]
    fn render_prints_what_the_operator_would_create_for_a_directory() {
        let at = "2026-09-19T12:00:00+02:00";
        let out = run(&["freshplan-operator", "render", "-f", &example(""), "--now", at]).unwrap();
        assert!(
            out.starts_with("# ScalingProfile crm/crm at 2026-09-19T10:00:00Z: KEDA ScaledObjects\n"),
            "{out}"
        );
        assert!(out.contains("#   floors now: query 2-12, command 2-6, relay 1\n"), "{out}");
        assert_eq!(scaling_kinds(&out), vec!["ScaledObject"; 6]);

        let out = run(&["freshplan-operator", "render", "-f", &example(""), "--now", at, "--without-keda"])
            .unwrap();
        assert_eq!(scaling_kinds(&out), vec!["HorizontalPodAutoscaler"; 6]);
        assert!(out.contains("#   note: Deployment crm-query-by: the Prometheus metric"), "{out}");

        // Files given one by one; without the Deployments nothing is generated, and it says so.
        let files: Vec<String> =
            ["scaling-profile", "oktoberfest", "christmas", "asparagus", "easter", "dark-periods"]
                .iter()
                .map(|name| example(&format!("{name}.yaml")))
                .collect();
        let mut args = vec!["freshplan-operator", "render", "--now", at];
        for file in &files {
            args.extend(["-f", file.as_str()]);
        }
        let out = run(&args).unwrap();
        assert!(out.contains("#   nothing generated: no Deployment it selects can be scaled\n"), "{out}");
        assert_eq!(kinds(&out), Vec::<String>::new());
    }

    #[test]
    fn render_overlays_settings_on_tenant_policies_for_kic_and_deck() {
        let (policies, settings) = (example("tenant-policies.yaml"), example("settings.json"));
        let out = run(&["freshplan-operator", "render", "-f", &policies, "--settings", &settings]).unwrap();
        assert!(out.starts_with("# TenantPolicy crm/acme: tenant acme, Kong consumer acme\n"), "{out}");
        assert!(
            out.contains(
                "#   CRM settings version 42: applied gateway.rateLimit, gateway.requestSizeLimit\n"
            ),
            "{out}"
        );
        assert!(out.contains("#   setting gateway.ipAllowlist (from tenant:acme) not applied: "), "{out}");
        assert!(
            out.contains("#   Ingress crm-acme-samples: konghq.com/plugins gets acme-pre-function,"),
            "{out}"
        );
        assert!(
            out.contains("#   note: kaiserhof-munich-openid-connect is a Kong Enterprise plugin"),
            "{out}"
        );
        let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&out).unwrap();
        let limit = documents.iter().find(|d| d["metadata"]["name"] == "acme-rate-limiting").unwrap();
        assert_eq!(limit["config"]["minute"], 900, "the setting's limit, not the spec's 600");
        assert_eq!(kinds(&out).iter().filter(|k| *k == "KongConsumer").count(), 3);

        // Without --settings the spec alone, and it says so.
        let out = run(&["freshplan-operator", "render", "-f", &policies]).unwrap();
        assert!(out.contains("#   CRM settings not read (render --settings FILE overlays them)\n"), "{out}");

        let out = run(&[
            "freshplan-operator",
            "render",
            "-f",
            &example(""),
            "--format",
            "deck",
            "--settings",
            &settings,
        ])
        .unwrap();
        assert!(out.contains("# ScalingProfile crm/crm: not rendered as decK"), "{out}");
        let files: Vec<serde_json::Value> = serde_saphyr::from_multiple(&out).unwrap();
        let tags: Vec<&str> = files.iter().map(|f| f["_info"]["select_tags"][0].as_str().unwrap()).collect();
        assert_eq!(
            tags,
            ["freshplan-tenant-acme", "freshplan-tenant-bergblick", "freshplan-tenant-kaiserhof-org-munich"]
        );
        assert!(
            out.contains("#   deck gateway sync --select-tag freshplan-tenant-acme <this file>\n"),
            "{out}"
        );
    }

    #[test]
    fn render_refuses_bad_settings_files_and_policies_that_claim_the_same_target() {
        let dir = tempfile::tempdir().unwrap();
        let settings = dir.path().join("settings.yaml");
        std::fs::write(
            &settings,
            "tenant: acme\nversion: 1\nsettings: {}\n---\ntenant: acme\nversion: one\nsettings: {}\n",
        )
        .unwrap();
        let policies = example("tenant-policies.yaml");
        let err =
            run(&["freshplan-operator", "render", "-f", &policies, "--settings", settings.to_str().unwrap()])
                .unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{}, document 2: not effective settings: version", settings.display())),
            "{err}"
        );

        let text = std::fs::read_to_string(&policies).unwrap();
        let file = dir.path().join("policies.yaml");
        let twin = text.split("\n---\n").next().unwrap().replace("name: acme\n", "name: acme-twin\n");
        std::fs::write(&file, format!("{text}---\n{twin}")).unwrap();
        let err =
            run(&["freshplan-operator", "render", "-f", file.to_str().unwrap()]).unwrap_err().to_string();
        assert!(err.starts_with("nothing rendered: "), "{err}");
        for conflict in [
            "Ingress crm-acme in namespace crm is a target of TenantPolicies crm/acme and crm/acme-twin",
            "consumer acme is claimed by TenantPolicies crm/acme and crm/acme-twin",
            "key id acme-2026 is claimed by TenantPolicies crm/acme and crm/acme-twin",
        ] {
            assert!(err.contains(conflict), "{err}");
        }

        std::fs::write(&file, text.replace("minute: 600", "minute: 6")).unwrap();
        let err =
            run(&["freshplan-operator", "render", "-f", file.to_str().unwrap()]).unwrap_err().to_string();
        assert!(
            err.contains("TenantPolicy crm/acme: spec.rateLimit.limits: limits must not decrease"),
            "{err}"
        );
    }

    #[test]
    fn render_lists_every_problem_and_prints_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let profile = std::fs::read_to_string(example("scaling-profile.yaml")).unwrap();
        std::fs::write(dir.path().join("profile.yaml"), &profile).unwrap();
        let oktoberfest = std::fs::read_to_string(example("oktoberfest.yaml")).unwrap();
        std::fs::write(
            dir.path().join("oktoberfest.yml"),
            oktoberfest.replace("Europe/Berlin", "Europe/Munich"),
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not read").unwrap();
        let err = run(&["freshplan-operator", "render", "-f", dir.path().to_str().unwrap()]).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("nothing rendered: 5 problem(s):"), "{message}");
        assert!(
            message.contains("ScalingProfile crm/crm: SeasonalWindow oktoberfest: spec.timezone"),
            "{message}"
        );
        assert!(message.contains("no SeasonalWindow christmas in namespace crm"), "{message}");

        let file = dir.path().join("profile.yaml");
        std::fs::write(&file, format!("{profile}---\nmetadata: {{name: kindless}}\n")).unwrap();
        let err = run(&["freshplan-operator", "render", "-f", file.to_str().unwrap()]).unwrap_err();
        assert_eq!(err.to_string(), format!("{}, document 2: has no kind", file.display()));

        std::fs::write(&file, profile.replace("mode: auto", "mode: sometimes")).unwrap();
        let err = run(&["freshplan-operator", "render", "-f", file.to_str().unwrap()]).unwrap_err();
        assert!(err.to_string().contains("document 1: not a valid ScalingProfile: spec.mode"), "{err}");
    }
}

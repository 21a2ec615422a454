//! The alerts the Helm chart ships (`charts/freshplan/files/alerts.yaml`): promtool accepts them
//! and their unit tests (`charts/alerts.test.yaml`) pass, every alert is tested both firing and
//! quiet, every runbook link lands on a heading of a page in `runbooks/`, and every metric and
//! label the expressions use is one a real CRM server or the operator's admin server exports (or
//! the chart's PodMonitor adds).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crm_server::config::{RelayArgs, Role};
use crm_server::testing::TestApp;
use crm_server::testing::app::get_url;
use freshplan_operator::metrics::{Metrics, Outcome};
use freshplan_operator::runtime::admin::{self, AdminState};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

const RULES: &str = "charts/freshplan/files/alerts.yaml";
const RULE_TESTS: &str = "charts/alerts.test.yaml";
const POD_MONITOR: &str = "charts/freshplan/templates/podmonitor.yaml";
/// Where every `runbook_url` points: a page of `runbooks/` on the main branch.
const RUNBOOKS_URL: &str = "https://github.com/freshfoodz/freshplan/blob/main/runbooks/";
const SEVERITIES: [&str; 2] = ["critical", "warning"];

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(relative: &str) -> String {
    let path = repository().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_yaml(relative: &str) -> Value {
    serde_saphyr::from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// One alerting rule of the rules file.
struct Alert {
    name: String,
    expr: String,
    rule: Value,
}

impl Alert {
    fn annotation(&self, key: &str) -> Option<&str> {
        self.rule["annotations"][key].as_str().filter(|text| !text.trim().is_empty())
    }
}

fn alerts() -> Vec<Alert> {
    let rules = read_yaml(RULES);
    let groups = rules["groups"].as_array().expect("the rules file has groups");
    let alerts: Vec<Alert> = groups
        .iter()
        .flat_map(|group| group["rules"].as_array().expect("every group has rules"))
        .filter_map(|rule| {
            let name = rule["alert"].as_str()?.to_owned();
            let expr = rule["expr"].as_str().unwrap_or_else(|| panic!("{name} has no expr")).to_owned();
            Some(Alert { name, expr, rule: rule.clone() })
        })
        .collect();
    assert!(!alerts.is_empty(), "no alerts in {RULES}");
    alerts
}

// --- promtool ---------------------------------------------------------------------------------

/// Runs promtool in the repository. Missing, it fails the test: the rules are not checked
/// without it, and a skipped check would read as a passed one.
fn promtool(args: &[&str]) -> Output {
    match Command::new("promtool").args(args).current_dir(repository()).output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("promtool is not installed; `apt-get install prometheus` provides it")
        }
        Err(e) => panic!("cannot run promtool: {e}"),
    }
}

#[test]
fn promtool_accepts_the_rules_and_their_unit_tests_pass() {
    for args in [["check", "rules", RULES], ["test", "rules", RULE_TESTS]] {
        let output = promtool(&args);
        assert!(
            output.status.success(),
            "promtool {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

// --- test coverage of the alerts ----------------------------------------------------------------

/// What the unit tests expect of one alert: at some eval_time it fires, at some it stays quiet.
#[derive(Default)]
struct Cases {
    fires: bool,
    quiet: bool,
}

fn cases_by_alert(tests: &Value) -> BTreeMap<String, Cases> {
    let mut cases = BTreeMap::<String, Cases>::new();
    let groups = tests["tests"].as_array().expect("the unit test file has tests");
    for case in groups.iter().flat_map(|group| group["alert_rule_test"].as_array().into_iter().flatten()) {
        let name = case["alertname"].as_str().expect("every alert_rule_test names an alert");
        let expected = case["exp_alerts"].as_array().map_or(0, Vec::len);
        let entry = cases.entry(name.to_owned()).or_default();
        if expected > 0 {
            entry.fires = true;
        } else {
            entry.quiet = true;
        }
    }
    cases
}

#[test]
fn every_alert_has_a_test_where_it_fires_and_one_where_it_stays_quiet() {
    let mut cases = cases_by_alert(&read_yaml(RULE_TESTS));
    let mut problems = Vec::new();
    for alert in alerts() {
        match cases.remove(&alert.name) {
            None => problems.push(format!("{}: no test", alert.name)),
            Some(Cases { fires, quiet }) => {
                if !fires {
                    problems.push(format!("{}: no test where it fires", alert.name));
                }
                if !quiet {
                    problems.push(format!("{}: no test where it stays quiet", alert.name));
                }
            }
        }
    }
    // promtool passes a test of an alert that does not exist as long as it expects nothing.
    problems.extend(cases.keys().map(|name| format!("{name}: tested, but no such alert in {RULES}")));
    assert!(problems.is_empty(), "in {RULE_TESTS}:\n{}", problems.join("\n"));
}

// --- severity, annotations, runbooks ----------------------------------------------------------------

#[test]
fn every_alert_has_a_severity_a_summary_a_description_and_a_runbook() {
    let mut problems = Vec::new();
    for alert in alerts() {
        let severity = alert.rule["labels"]["severity"].as_str().unwrap_or_default();
        if !SEVERITIES.contains(&severity) {
            problems.push(format!("{}: severity {severity:?} is not one of {SEVERITIES:?}", alert.name));
        }
        for key in ["summary", "description", "runbook_url"] {
            if alert.annotation(key).is_none() {
                problems.push(format!("{}: no {key} annotation", alert.name));
            }
        }
    }
    assert!(problems.is_empty(), "in {RULES}:\n{}", problems.join("\n"));
}

/// GitHub's anchor of a heading: lower case, spaces to '-', punctuation other than '-' and '_'
/// dropped.
fn github_slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown page's headings, outside code blocks; a repeated heading gets
/// `-1`, `-2`, ... as on GitHub.
fn heading_anchors(markdown: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    let mut seen = BTreeMap::<String, usize>::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if in_code || !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let slug = github_slug(line[hashes..].trim().trim_end_matches('#'));
        let repeats = seen.entry(slug.clone()).or_default();
        anchors.insert(if *repeats == 0 { slug } else { format!("{slug}-{repeats}") });
        *repeats += 1;
    }
    anchors
}

/// Why `url` does not land on a heading of a runbook, if it does not.
fn runbook_problem(url: &str) -> Option<String> {
    let Some(rest) = url.strip_prefix(RUNBOOKS_URL) else {
        return Some(format!("{url} is not under {RUNBOOKS_URL}"));
    };
    let Some((page, anchor)) = rest.split_once('#') else {
        return Some(format!("{url} names no heading (#anchor)"));
    };
    if !page.ends_with(".md") || page.contains('/') {
        return Some(format!("{url}: {page} is not a page of runbooks/"));
    }
    let path = repository().join("runbooks").join(page);
    let Ok(markdown) = std::fs::read_to_string(&path) else {
        return Some(format!("{url}: runbooks/{page} does not exist"));
    };
    let anchors = heading_anchors(&markdown);
    (!anchors.contains(anchor))
        .then(|| format!("{url}: no heading #{anchor} in runbooks/{page}; it has {anchors:?}"))
}

#[test]
fn every_runbook_url_lands_on_a_heading_of_a_runbook() {
    let problems: Vec<String> = alerts()
        .iter()
        .filter_map(|alert| {
            let url = alert.annotation("runbook_url")?;
            runbook_problem(url).map(|problem| format!("{}: {problem}", alert.name))
        })
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The relative links of a Markdown page: (page, anchor), the page empty for the same page.
fn relative_links(markdown: &str) -> Vec<(String, String)> {
    markdown
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(target, _)| target))
        .filter(|target| !target.contains("://"))
        .map(|target| {
            let (page, anchor) = target.split_once('#').unwrap_or((target, ""));
            (page.to_owned(), anchor.to_owned())
        })
        .collect()
}

#[test]
fn links_between_runbooks_land_on_headings() {
    let dir = repository().join("runbooks");
    let pages: BTreeMap<String, String> = std::fs::read_dir(&dir)
        .expect("runbooks/")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .map(|path| {
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&path).unwrap(),
            )
        })
        .collect();
    let mut problems = Vec::new();
    for (name, markdown) in &pages {
        for (page, anchor) in relative_links(markdown) {
            let target = if page.is_empty() { name } else { &page };
            match pages.get(target) {
                None => problems.push(format!("{name}: link to {target}, which is not a page of runbooks/")),
                Some(text) if !anchor.is_empty() && !heading_anchors(text).contains(&anchor) => {
                    problems.push(format!("{name}: link to {target}#{anchor}, which has no such heading"))
                }
                Some(_) => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn slugs_and_anchors_follow_github() {
    assert_eq!(github_slug("CrmOutboxRelayDown"), "crmoutboxrelaydown");
    assert_eq!(
        github_slug("Roll back: `helm rollback`, then kubectl"),
        "roll-back-helm-rollback-then-kubectl"
    );
    assert_eq!(github_slug("Leader election stuck (Lease) & pods"), "leader-election-stuck-lease--pods");
    let page = "# Outbox\n## Confirm\n```sh\n# not a heading\n```\n## Confirm\n### snake_case-ok\n#nospace\n";
    let expected = ["outbox", "confirm", "confirm-1", "snake_case-ok"];
    assert_eq!(heading_anchors(page), expected.iter().map(|a| a.to_string()).collect());
    assert!(runbook_problem("https://example.com/runbooks/outbox.md#x").is_some());
}

// --- metric and label names -------------------------------------------------------------------

/// The metric names and label names a PromQL expression uses.
#[derive(Debug, Default, PartialEq)]
struct PromqlNames {
    metrics: BTreeSet<String>,
    labels: BTreeSet<String>,
}

/// Words that are never metric names: aggregations, binary operators, modifiers and literals.
const KEYWORDS: [&str; 24] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "atan2",
    "inf",
    "nan",
    "start",
    "end",
    "limitk",
    "limit_ratio",
];
/// Modifiers followed by a list of label names in parentheses.
const LABEL_LISTS: [&str; 6] = ["by", "without", "on", "ignoring", "group_left", "group_right"];

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The index just past the string literal opening at `start`.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() && chars[i] != quote {
        i += if chars[i] == '\\' && quote != '`' { 2 } else { 1 };
    }
    i + 1
}

/// The index of the bracket closing the one at `start`, skipping string literals.
fn closing(chars: &[char], start: usize) -> usize {
    let (open, close) = (
        chars[start],
        match chars[start] {
            '(' => ')',
            '[' => ']',
            _ => '}',
        },
    );
    let mut depth = 0;
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => {
                i = skip_string(chars, i);
                continue;
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    panic!("unbalanced {open} in {}", chars.iter().collect::<String>())
}

/// The label names of a matcher list (`a="x", b!~"y|z"`) or a label list (`a, b`).
fn label_names(inner: &[char]) -> impl Iterator<Item = String> {
    let mut without_strings = String::new();
    let mut i = 0;
    while i < inner.len() {
        if matches!(inner[i], '"' | '\'' | '`') {
            i = skip_string(inner, i);
        } else {
            without_strings.push(inner[i]);
            i += 1;
        }
    }
    let names: Vec<String> = without_strings
        .split(',')
        .map(|part| part.trim().chars().take_while(|&c| is_name_char(c)).collect::<String>())
        .filter(|name| !name.is_empty())
        .collect();
    names.into_iter()
}

fn next_non_space(chars: &[char], from: usize) -> Option<char> {
    chars[from..].iter().copied().find(|c| !c.is_whitespace())
}

fn promql_names(expr: &str) -> PromqlNames {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = PromqlNames::default();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, '"' | '\'' | '`') {
            i = skip_string(&chars, i);
        } else if c == '{' {
            let end = closing(&chars, i);
            names.labels.extend(label_names(&chars[i + 1..end]));
            i = end + 1;
        } else if c == '[' {
            // A range or subquery: durations only.
            i = closing(&chars, i) + 1;
        } else if c == '#' {
            i = chars[i..].iter().position(|&c| c == '\n').map_or(chars.len(), |n| i + n);
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            // A number or a duration (`0.95`, `1e3`, `5m` after offset).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if is_name_start(c) {
            let start = i;
            while i < chars.len() && is_name_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = next_non_space(&chars, i);
            if LABEL_LISTS.contains(&word.as_str()) {
                if next == Some('(') {
                    let open = i + chars[i..].iter().position(|&c| c == '(').expect("a label list");
                    let end = closing(&chars, open);
                    names.labels.extend(label_names(&chars[open + 1..end]));
                    i = end + 1;
                }
            } else if !KEYWORDS.contains(&word.as_str()) && next != Some('(') {
                names.metrics.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn promql_names_skip_functions_keywords_matchers_and_durations() {
    let expr = r#"
        histogram_quantile(0.95, sum by (namespace, le) (rate(http_seconds_bucket{route!~"/a|/b,c", le!=""}[5m])))
          > 0.2 and on (namespace) group_left (pod)
        sum without(instance) (increase(errors_total[10m] offset 1h)) > bool 1e3
        or absent(up{component="relay"}) unless max(a:recorded:rate5m) or time() - last_seconds > 3600
    "#;
    let names = promql_names(expr);
    let set = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        names.metrics,
        set(&["a:recorded:rate5m", "errors_total", "http_seconds_bucket", "last_seconds", "up"])
    );
    assert_eq!(names.labels, set(&["component", "instance", "le", "namespace", "pod", "route"]));
}

/// What a `/metrics` answer exports: the names of its samples (also of families that have none
/// yet, from their `# TYPE` line) and the labels they carry.
#[derive(Debug, Default)]
struct Exported {
    metrics: BTreeSet<String>,
    labels: BTreeSet<String>,
}

/// The sample names of a family of `kind`, as Prometheus stores them.
fn sample_names(family: &str, kind: &str) -> Vec<String> {
    let suffixes: &[&str] = match kind {
        "counter" => &["_total"],
        "histogram" | "gaugehistogram" => &["_bucket", "_sum", "_count"],
        "summary" => &["", "_sum", "_count"],
        _ => &[""],
    };
    suffixes.iter().map(|suffix| format!("{family}{suffix}")).collect()
}

fn parse_exposition(text: &str, into: &mut Exported) {
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (family, kind) = rest.split_once(' ').expect("# TYPE <name> <type>");
            into.metrics.extend(sample_names(family, kind));
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            into.metrics.insert(line[..end].to_owned());
            if line[end..].starts_with('{') {
                let chars: Vec<char> = line[end..].chars().collect();
                let close = closing(&chars, 0);
                into.labels.extend(label_names(&chars[1..close]));
            }
        }
    }
}

/// The labels the chart's PodMonitor puts on every series (its relabelings' targets).
fn pod_monitor_labels() -> BTreeSet<String> {
    let labels: BTreeSet<String> = read(POD_MONITOR)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("targetLabel:"))
        .map(|label| label.trim().to_owned())
        .collect();
    assert!(labels.contains("component"), "{POD_MONITOR} sets no component label: {labels:?}");
    labels
}

/// How long the CRM may take to export every family: its outbox metrics are sampled every 10 s,
/// and the consumers' families appear at the first sample after they register.
const CRM_EXPORT_WAIT: Duration = Duration::from_secs(40);

/// Scrapes `/metrics` of a real CRM server of the `all` role, with its background work running
/// as `crm-server serve` runs it, until it exports every name in `wanted` or the wait is over.
async fn crm_exposition(wanted: &BTreeSet<String>, exported: &mut Exported) {
    let app = TestApp::spawn().await;
    let jobs =
        crm_server::jobs::spawn(&app.state, Role::All, &RelayArgs::default(), Duration::from_secs(300));
    let deadline = Instant::now() + CRM_EXPORT_WAIT;
    loop {
        let response = app.get("/metrics").await;
        assert!(response.status.is_success(), "GET /metrics: {}", response.status);
        let mut scraped = Exported::default();
        parse_exposition(&response.text(), &mut scraped);
        let complete =
            wanted.iter().all(|name| scraped.metrics.contains(name) || exported.metrics.contains(name));
        if complete || Instant::now() > deadline {
            exported.metrics.extend(scraped.metrics);
            exported.labels.extend(scraped.labels);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    jobs.iter().for_each(|job| job.abort());
}

/// Scrapes `/metrics` of the operator's admin server, serving a registry in which every family
/// has a member, recorded through the calls the controllers make.
async fn operator_exposition(exported: &mut Exported) {
    let metrics = Metrics::new();
    metrics.reconcile_timer("TenantPolicy").finish(Outcome::Error);
    metrics.error("TenantPolicy", "forbidden");
    metrics.set_managed("KongPlugin", 3);
    metrics.set_leader(true);
    let (_ready, ready) = watch::channel(true);
    let (_leading, leading) = watch::channel(true);
    let (sync, _requests) = mpsc::channel(1);
    let state = AdminState { metrics, ready, leading, sync };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let address = listener.local_addr().expect("the bound address");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(admin::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    let response = get_url(&format!("http://{address}/metrics")).await.expect("the admin server answers");
    assert!(response.status.is_success(), "GET /metrics: {}", response.status);
    parse_exposition(&response.text(), exported);
    let _ = stop.send(());
    server.await.expect("the admin server ends").expect("the admin server ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_and_label_the_alerts_use_is_exported() {
    let mut used = PromqlNames::default();
    for alert in alerts() {
        let names = promql_names(&alert.expr);
        used.metrics.extend(names.metrics);
        used.labels.extend(names.labels);
    }
    // `up` is Prometheus's own, one per scraped target.
    assert!(used.metrics.remove("up"), "the relay-down alert asks Prometheus whether relays are up");

    let mut exported = Exported::default();
    operator_exposition(&mut exported).await;
    crm_exposition(&used.metrics, &mut exported).await;
    let missing: Vec<&String> = used.metrics.difference(&exported.metrics).collect();
    assert!(
        missing.is_empty(),
        "the alerts query metrics nobody exports: {missing:?}\nexported: {:?}",
        exported.metrics
    );

    let known_labels: BTreeSet<String> = exported.labels.union(&pod_monitor_labels()).cloned().collect();
    let unknown: Vec<&String> = used.labels.difference(&known_labels).collect();
    assert!(unknown.is_empty(), "the alerts use labels no series has: {unknown:?}\nknown: {known_labels:?}");
}

//! Checks against a real Prometheus that scrapes ferrofluid's component pods by the chart's
//! `prometheus.io/scrape|port|path` annotations (`hack/prometheus.sh start`): a small client for Prometheus's
//! HTTP API (plain HTTP, loopback only), the per-dataset series `docs/metrics.md` documents, the panel queries
//! of the Grafana dashboard `charts/ferrofluid/dashboards/ferrofluid-cache.json`, and the waits a cluster test
//! calls: [`wait_for_targets_up`], [`wait_for_series`] ([`missing_series`]), [`wait_for_panels`]
//! ([`empty_panels`]), [`exported_label_series`].
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use ferrofluid_e2e::prometheus::*;
//! use std::time::Duration;
//! let prom = Prometheus::local()?; // 127.0.0.1:$FF_PROMETHEUS_PORT, as hack/prometheus.sh
//! wait_for_targets_up(&prom, POD_JOB, &[("component", "metrics-collector")], Duration::from_secs(60))?;
//! let matchers = r#"namespace="ns",dataset="demo""#;
//! wait_for_series(&prom, &documented_dataset_series()?, matchers, Duration::from_secs(60))?;
//! wait_for_panels(&prom, &dashboard_queries(&DashboardVars::new("ns", "demo"))?, Duration::from_secs(90))?;
//! # Ok(()) }
//! ```

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Port hack/prometheus.sh listens on (on 127.0.0.1) unless `FF_PROMETHEUS_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 19090;
/// The scrape job of hack/prometheus.sh (and of the example in docs/metrics.md): pods by annotation.
pub const POD_JOB: &str = "ferrofluid-pods";
/// The job hack/prometheus.sh adds for `FF_PROMETHEUS_STATIC_TARGETS`.
pub const STATIC_JOB: &str = "ferrofluid-static";
/// The dashboard, relative to the repository root.
pub const DASHBOARD: &str = "charts/ferrofluid/dashboards/ferrofluid-cache.json";
/// The metrics documentation, relative to the repository root.
pub const METRICS_DOC: &str = "docs/metrics.md";

const POLL: Duration = Duration::from_secs(1);

/// A file of the repository.
pub fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

fn read_repo_file(relative: &str) -> Result<String> {
    let path = repo_file(relative);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

// --- the HTTP API client -------------------------------------------------------------------------------

/// Prometheus's HTTP API on a loopback address, over plain HTTP/1.0 (one connection per request).
#[derive(Clone, Debug)]
pub struct Prometheus {
    addr: SocketAddr,
    timeout: Duration,
}

/// One sample of an instant query: the series' labels (`__name__` included when the result keeps it) and
/// its value (`NaN` and `±Inf` as Prometheus gives them).
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// An active scrape target (`/api/v1/targets`).
#[derive(Clone, Debug)]
pub struct Target {
    pub scrape_pool: String,
    pub scrape_url: String,
    /// Labels after relabelling (`job`, `instance`, `namespace`, `pod`, `component`, …).
    pub labels: BTreeMap<String, String>,
    /// Labels from service discovery, before relabelling (`__meta_kubernetes_…`).
    pub discovered_labels: BTreeMap<String, String>,
    /// `up`, `down` or `unknown` (not scraped yet).
    pub health: String,
    pub last_error: String,
}

/// A target that service discovery found and relabelling dropped.
#[derive(Clone, Debug)]
pub struct DroppedTarget {
    pub scrape_pool: String,
    pub discovered_labels: BTreeMap<String, String>,
}

/// All targets Prometheus knows of.
#[derive(Clone, Debug, Default)]
pub struct Targets {
    pub active: Vec<Target>,
    pub dropped: Vec<DroppedTarget>,
}

impl Target {
    fn describe(&self) -> String {
        let mut s = format!("{} {} [{}]", self.scrape_url, self.health, labels_text(&self.labels));
        if !self.last_error.is_empty() {
            s.push_str(&format!(" last error: {}", self.last_error));
        }
        s
    }
}

impl Prometheus {
    /// The API at `addr`, which must be a loopback address.
    pub fn new(addr: SocketAddr) -> Result<Self> {
        ensure!(addr.ip().is_loopback(), "Prometheus at {addr}: only loopback addresses are contacted");
        Ok(Self { addr, timeout: Duration::from_secs(15) })
    }

    /// The Prometheus of hack/prometheus.sh: 127.0.0.1 and `FF_PROMETHEUS_PORT` (default 19090).
    pub fn local() -> Result<Self> {
        let port = match std::env::var("FF_PROMETHEUS_PORT") {
            Ok(p) => p.parse().with_context(|| format!("FF_PROMETHEUS_PORT={p}"))?,
            Err(_) => DEFAULT_PORT,
        };
        Self::new(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// GET `path` (with its query string); the status code and body.
    fn get(&self, path: &str) -> Result<(u16, String)> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))
            .with_context(|| format!("connecting to Prometheus at {}", self.addr))?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        write!(stream, "GET {path} HTTP/1.0\r\nhost: {}\r\naccept: application/json\r\n\r\n", self.addr)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).with_context(|| format!("reading the answer to GET {path}"))?;
        let text = String::from_utf8(raw).with_context(|| format!("GET {path}: answer not UTF-8"))?;
        let (head, body) = text.split_once("\r\n\r\n").with_context(|| format!("GET {path}: no HTTP header end"))?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("GET {path}: bad status line {:?}", head.lines().next()))?;
        Ok((status, body.to_string()))
    }

    /// Whether `/-/ready` answers 200.
    pub fn ready(&self) -> Result<bool> {
        Ok(self.get("/-/ready")?.0 == 200)
    }

    /// GET an API endpoint (`/api/v1/…`) with query parameters; the `data` of a `success` answer, the
    /// error Prometheus gives otherwise.
    pub fn api(&self, endpoint: &str, params: &[(&str, &str)]) -> Result<Value> {
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v))).collect();
        let path = if query.is_empty() { endpoint.to_string() } else { format!("{endpoint}?{}", query.join("&")) };
        let (status, body) = self.get(&path)?;
        let answer: Value = serde_json::from_str(&body).with_context(|| {
            format!("GET {path}: HTTP {status}, not JSON: {}", body.chars().take(300).collect::<String>())
        })?;
        if answer["status"] != "success" {
            bail!(
                "GET {path}: HTTP {status}, {}: {}",
                answer["errorType"].as_str().unwrap_or("error"),
                answer["error"].as_str().unwrap_or("(no message)")
            );
        }
        Ok(answer["data"].clone())
    }

    /// An instant query (`/api/v1/query`, evaluated now). A vector gives one sample per series, a scalar
    /// one sample without labels, a range vector (`x[5m]`) the newest point of each series.
    pub fn query(&self, expr: &str) -> Result<Vec<Sample>> {
        let data = self.api("/api/v1/query", &[("query", expr)]).with_context(|| format!("query {expr}"))?;
        parse_query_data(&data).with_context(|| format!("query {expr}"))
    }

    /// Metric names Prometheus has series of (`/api/v1/label/__name__/values`).
    pub fn metric_names(&self) -> Result<BTreeSet<String>> {
        let data = self.api("/api/v1/label/__name__/values", &[])?;
        Ok(string_array(&data).into_iter().collect())
    }

    /// Values of `label` among the series matching `selector` (`/api/v1/label/<label>/values?match[]=`).
    pub fn label_values(&self, label: &str, selector: &str) -> Result<BTreeSet<String>> {
        let data = self.api(&format!("/api/v1/label/{}/values", url_encode(label)), &[("match[]", selector)])?;
        Ok(string_array(&data).into_iter().collect())
    }

    /// Label sets of the series matching any of `selectors` (`/api/v1/series`), over all stored time.
    pub fn series(&self, selectors: &[&str]) -> Result<Vec<BTreeMap<String, String>>> {
        let params: Vec<(&str, &str)> = selectors.iter().map(|s| ("match[]", *s)).collect();
        let data = self.api("/api/v1/series", &params)?;
        Ok(data.as_array().map(|a| a.iter().map(label_map).collect()).unwrap_or_default())
    }

    /// Active and dropped targets (`/api/v1/targets?state=any`).
    pub fn targets(&self) -> Result<Targets> {
        let data = self.api("/api/v1/targets", &[("state", "any")])?;
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let active = data["activeTargets"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|t| Target {
                        scrape_pool: s(&t["scrapePool"]),
                        scrape_url: s(&t["scrapeUrl"]),
                        labels: label_map(&t["labels"]),
                        discovered_labels: label_map(&t["discoveredLabels"]),
                        health: s(&t["health"]),
                        last_error: s(&t["lastError"]),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let dropped = data["droppedTargets"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|t| DroppedTarget {
                        scrape_pool: s(&t["scrapePool"]),
                        discovered_labels: label_map(&t["discoveredLabels"]),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Targets { active, dropped })
    }
}

/// Percent-encoding of a query parameter (everything but RFC 3986's unreserved characters).
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn label_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default()
}

fn string_array(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

fn labels_text(labels: &BTreeMap<String, String>) -> String {
    labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect::<Vec<_>>().join(",")
}

/// A sample value as the API gives it: `[<time>, "<value>"]`.
fn point_value(point: &Value) -> Result<f64> {
    let text = point.get(1).and_then(Value::as_str).with_context(|| format!("bad sample {point}"))?;
    Ok(match text {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().with_context(|| format!("bad sample value {v:?}"))?,
    })
}

fn parse_query_data(data: &Value) -> Result<Vec<Sample>> {
    let result = &data["result"];
    match data["resultType"].as_str() {
        Some("vector") => result
            .as_array()
            .context("vector result not an array")?
            .iter()
            .map(|s| Ok(Sample { labels: label_map(&s["metric"]), value: point_value(&s["value"])? }))
            .collect(),
        Some("matrix") => result
            .as_array()
            .context("matrix result not an array")?
            .iter()
            .filter_map(|s| s["values"].as_array().and_then(|v| v.last()).map(|p| (s, p)))
            .map(|(s, p)| Ok(Sample { labels: label_map(&s["metric"]), value: point_value(p)? }))
            .collect(),
        Some("scalar") => Ok(vec![Sample { labels: BTreeMap::new(), value: point_value(result)? }]),
        other => bail!("unexpected result type {other:?}"),
    }
}

// --- what docs/metrics.md documents --------------------------------------------------------------------

/// A row of one of the `| series | type | meaning |` tables of docs/metrics.md.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentedSeries {
    /// The metric name as documented (a histogram's base name).
    pub name: String,
    /// The labels in its `{…}`.
    pub labels: Vec<String>,
    /// `gauge`, `counter`, `histogram`, …
    pub kind: String,
}

impl DocumentedSeries {
    /// Per dataset: it carries a `dataset` label.
    pub fn per_dataset(&self) -> bool {
        self.labels.iter().any(|l| l == "dataset")
    }

    /// A name Prometheus stores series under: the name itself, or `<name>_count` for a histogram or summary.
    pub fn stored_name(&self) -> String {
        match self.kind.as_str() {
            "histogram" | "summary" => format!("{}_count", self.name),
            _ => self.name.clone(),
        }
    }
}

/// Every series of the markdown tables whose header's first cell is `series`, with rows like
/// ``| `ferrofluid_x_total{namespace,dataset}` | counter | … |``.
pub fn parse_documented_series(markdown: &str) -> Vec<DocumentedSeries> {
    let mut out = Vec::new();
    let mut in_series_table = false;
    let mut previous_was_table = false;
    for line in markdown.lines() {
        let line = line.trim();
        if !line.starts_with('|') {
            in_series_table = false;
            previous_was_table = false;
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if !previous_was_table {
            // A table's first row is its header.
            in_series_table = cells.first() == Some(&"series");
            previous_was_table = true;
            continue;
        }
        if !in_series_table || cells.iter().all(|c| c.chars().all(|ch| matches!(ch, '-' | ':'))) {
            continue; // another table, or the separator row
        }
        let (Some(first), Some(kind)) = (cells.first(), cells.get(1)) else { continue };
        let series = first.trim_matches('`');
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (
                name,
                rest.trim_end_matches('}')
                    .split(',')
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect(),
            ),
            None => (series, Vec::new()),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        out.push(DocumentedSeries { name: name.to_string(), labels, kind: kind.trim_matches('`').to_string() });
    }
    out
}

/// The metric names docs/metrics.md documents per dataset (with a `dataset` label), as Prometheus stores
/// them ([`DocumentedSeries::stored_name`]).
pub fn documented_dataset_series() -> Result<Vec<String>> {
    let doc = read_repo_file(METRICS_DOC)?;
    let names: Vec<String> =
        parse_documented_series(&doc).iter().filter(|s| s.per_dataset()).map(DocumentedSeries::stored_name).collect();
    ensure!(!names.is_empty(), "{METRICS_DOC} documents no per-dataset series (no `| series |` table rows)");
    Ok(names)
}

// --- the dashboard's queries ---------------------------------------------------------------------------

/// One `targets[]` entry of a dashboard panel, with the template variables substituted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PanelQuery {
    pub panel_id: i64,
    pub panel_title: String,
    pub ref_id: String,
    pub expr: String,
}

impl fmt::Display for PanelQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "panel {} {:?} query {}: {}", self.panel_id, self.panel_title, self.ref_id, self.expr)
    }
}

/// A value of a dashboard template variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VarValue {
    /// One selected value, put in as Grafana's Prometheus data source does (regex-escaped for a variable
    /// with `multi` or `includeAll`, which the dashboard matches with `=~`).
    One(String),
    /// "All": the variable's `allValue` (e.g. `.*`), unescaped.
    All,
}

/// Values for a dashboard's template variables and Grafana's built-in ones.
#[derive(Clone, Debug)]
pub struct DashboardVars {
    values: BTreeMap<String, VarValue>,
    builtins: BTreeMap<String, String>,
}

impl DashboardVars {
    /// `namespace` and `dataset` selected; the built-in intervals fixed: `$__rate_interval` 1m,
    /// `$__interval` 30s, `$__range` 1h (and their `_ms`/`_s` forms).
    pub fn new(namespace: &str, dataset: &str) -> Self {
        Self::empty().with("namespace", VarValue::One(namespace.into())).with("dataset", VarValue::One(dataset.into()))
    }

    /// No variable values, the built-ins as in [`DashboardVars::new`].
    pub fn empty() -> Self {
        let builtins = [
            ("__rate_interval", "1m"),
            ("__rate_interval_ms", "60000"),
            ("__interval", "30s"),
            ("__interval_ms", "30000"),
            ("__range", "1h"),
            ("__range_s", "3600"),
            ("__range_ms", "3600000"),
        ];
        Self {
            values: BTreeMap::new(),
            builtins: builtins.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    /// Sets a template variable.
    pub fn with(mut self, name: &str, value: VarValue) -> Self {
        self.values.insert(name.to_string(), value);
        self
    }

    /// Sets a built-in (`__rate_interval`, …) to `value`.
    pub fn with_builtin(mut self, name: &str, value: &str) -> Self {
        self.builtins.insert(name.to_string(), value.to_string());
        self
    }
}

/// A template variable as the dashboard's `templating.list` defines it.
#[derive(Clone, Debug, Default)]
struct VarDef {
    multi_or_all: bool,
    all_value: Option<String>,
}

fn var_defs(dashboard: &Value) -> BTreeMap<String, VarDef> {
    let mut out = BTreeMap::new();
    for v in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        let Some(name) = v["name"].as_str() else { continue };
        let flag = |k: &str| v[k].as_bool().unwrap_or(false);
        out.insert(
            name.to_string(),
            VarDef {
                multi_or_all: flag("multi") || flag("includeAll"),
                all_value: v["allValue"].as_str().filter(|s| !s.is_empty()).map(String::from),
            },
        );
    }
    out
}

/// A value inside a PromQL string matched as a regex (`=~"…"`): each regex metacharacter gets a backslash,
/// written as `\\` in the string literal (Grafana's `prometheusSpecialRegexEscape`).
fn regex_escape(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if c == '\\' {
            out.push_str("\\\\\\\\");
        } else {
            if "$^*{}[]'+?.()|".contains(c) {
                out.push_str("\\\\");
            }
            out.push(c);
        }
    }
    out
}

/// Substitutes `$name`, `${name}`, `${name:raw}` and `[[name]]` in `expr`: the dashboard's variables by
/// `vars`, Grafana's `$__…` by the fixed windows. A variable neither the dashboard defines nor `vars`
/// gives, a built-in without value, or a format other than `raw` is an error.
fn substitute(expr: &str, defs: &BTreeMap<String, VarDef>, vars: &DashboardVars) -> Result<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let value_of = |name: &str, format: Option<&str>| -> Result<String> {
        if name.starts_with("__") {
            return vars.builtins.get(name).cloned().with_context(|| format!("no value for Grafana's ${name}"));
        }
        let def = defs.get(name).with_context(|| format!("${name} is not a variable of the dashboard"))?;
        let value = vars.values.get(name).with_context(|| format!("no value given for ${name}"))?;
        match (value, format) {
            (VarValue::All, _) => def.all_value.clone().with_context(|| format!("${name} has no allValue for All")),
            (VarValue::One(v), Some("raw")) => Ok(v.clone()),
            (VarValue::One(v), None) if def.multi_or_all => Ok(regex_escape(v)),
            (VarValue::One(v), None) => Ok(v.replace('\\', "\\\\")),
            (VarValue::One(_), Some(f)) => bail!("${{{name}:{f}}}: format {f:?} not supported"),
        }
    };
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find(['$', '[']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (body, len) = if let Some(inner) = tail.strip_prefix("${") {
            let end = inner.find('}').with_context(|| format!("unclosed ${{ in {expr}"))?;
            (&inner[..end], end + 3)
        } else if let Some(inner) = tail.strip_prefix("[[") {
            match inner.find("]]") {
                Some(end) if inner[..end].chars().all(|c| is_name(c) || c == ':') && end > 0 => {
                    (&inner[..end], end + 4)
                }
                _ => {
                    out.push('[');
                    rest = &tail[1..];
                    continue;
                }
            }
        } else if let Some(inner) = tail.strip_prefix('$') {
            let end = inner.find(|c: char| !is_name(c)).unwrap_or(inner.len());
            (&inner[..end], end + 1)
        } else {
            out.push('[');
            rest = &tail[1..];
            continue;
        };
        if body.is_empty() || body.chars().all(|c| c.is_ascii_digit()) {
            // A `$` that starts no variable (a regex anchor, `$1` in label_replace): left as it is.
            out.push_str(&tail[..1]);
            rest = &tail[1..];
            continue;
        }
        let (name, format) = match body.split_once(':') {
            Some((n, f)) => (n, Some(f)),
            None => (body, None),
        };
        out.push_str(&value_of(name, format).with_context(|| format!("in {expr}"))?);
        rest = &tail[len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Panels of a dashboard, rows' nested `panels` (collapsed rows) and old-style `rows[].panels` included.
fn walk_panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for p in panels.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    for row in dashboard["rows"].as_array().into_iter().flatten() {
        walk(&row["panels"], &mut out);
    }
    out
}

/// Every `targets[].expr` of every panel of the dashboard JSON `json`, variables substituted.
pub fn parse_dashboard_queries(json: &str, vars: &DashboardVars) -> Result<Vec<PanelQuery>> {
    let dashboard: Value = serde_json::from_str(json).context("dashboard JSON")?;
    let defs = var_defs(&dashboard);
    let mut out = Vec::new();
    for panel in walk_panels(&dashboard) {
        let panel_id = panel["id"].as_i64().unwrap_or(-1);
        let panel_title = panel["title"].as_str().unwrap_or_default().to_string();
        for target in panel["targets"].as_array().into_iter().flatten() {
            let Some(expr) = target["expr"].as_str() else { continue };
            let expr = substitute(expr, &defs, vars)
                .with_context(|| format!("panel {panel_id} {panel_title:?} query {}", target["refId"]))?;
            let ref_id = target["refId"].as_str().unwrap_or_default().to_string();
            out.push(PanelQuery { panel_id, panel_title: panel_title.clone(), ref_id, expr });
        }
    }
    Ok(out)
}

/// Panels that show data but have no `expr` target (rows and text panels excepted): `id "title"`.
pub fn panels_without_queries(json: &str) -> Result<Vec<String>> {
    let dashboard: Value = serde_json::from_str(json).context("dashboard JSON")?;
    Ok(walk_panels(&dashboard)
        .into_iter()
        .filter(|p| !matches!(p["type"].as_str(), Some("row" | "text" | "news" | "dashlist")))
        .filter(|p| !p["targets"].as_array().into_iter().flatten().any(|t| t["expr"].as_str().is_some()))
        .map(|p| format!("{} {:?}", p["id"], p["title"].as_str().unwrap_or_default()))
        .collect())
}

/// Every panel query of charts/ferrofluid/dashboards/ferrofluid-cache.json, variables substituted.
pub fn dashboard_queries(vars: &DashboardVars) -> Result<Vec<PanelQuery>> {
    parse_dashboard_queries(&read_repo_file(DASHBOARD)?, vars).with_context(|| DASHBOARD.to_string())
}

/// The dashboard's `label_values(<selector>, <label>)` variable queries, variables substituted:
/// `(variable, label, selector)`.
pub fn dashboard_variable_queries(vars: &DashboardVars) -> Result<Vec<(String, String, String)>> {
    let dashboard: Value = serde_json::from_str(&read_repo_file(DASHBOARD)?).context("dashboard JSON")?;
    let defs = var_defs(&dashboard);
    let mut out = Vec::new();
    for v in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        let Some(q) = v["query"]["query"].as_str().or(v["query"].as_str()) else { continue };
        let Some(inner) = q.trim().strip_prefix("label_values(").and_then(|s| s.strip_suffix(')')) else { continue };
        let Some((selector, label)) = inner.rsplit_once(',') else { continue };
        let name = v["name"].as_str().unwrap_or_default().to_string();
        out.push((name, label.trim().to_string(), substitute(selector.trim(), &defs, vars)?));
    }
    Ok(out)
}

// --- the checks ----------------------------------------------------------------------------------------

/// Waits until, for every `(label, value)` of `expected`, an active target of scrape pool `job` with that
/// label value is `up`; with `expected` empty, until `job` has targets and all are up. Returns the job's
/// active targets. The error names each unmet expectation with the targets it saw (health, last error) and
/// the targets relabelling dropped (to see why a pod was not kept).
pub fn wait_for_targets_up(
    prom: &Prometheus,
    job: &str,
    expected: &[(&str, &str)],
    timeout: Duration,
) -> Result<Vec<Target>> {
    let deadline = Instant::now() + timeout;
    loop {
        let (targets, problems) = match prom.targets() {
            Ok(all) => {
                let mine: Vec<Target> = all.active.iter().filter(|t| t.scrape_pool == job).cloned().collect();
                let mut problems = Vec::new();
                if expected.is_empty() {
                    if mine.is_empty() {
                        problems.push(format!("job {job} has no active target"));
                    }
                    problems
                        .extend(mine.iter().filter(|t| t.health != "up").map(|t| format!("not up: {}", t.describe())));
                }
                for (label, value) in expected {
                    let matching: Vec<&Target> =
                        mine.iter().filter(|t| t.labels.get(*label).map(String::as_str) == Some(*value)).collect();
                    if matching.iter().any(|t| t.health == "up") {
                        continue;
                    }
                    if matching.is_empty() {
                        problems.push(format!("no active target of job {job} with {label}={value:?}"));
                    } else {
                        let seen: Vec<String> = matching.iter().map(|t| t.describe()).collect();
                        problems.push(format!("no target with {label}={value:?} is up: {}", seen.join("; ")));
                    }
                }
                if !problems.is_empty() {
                    let active: Vec<String> = mine.iter().map(Target::describe).collect();
                    problems.push(format!("active targets of {job}: [{}]", active.join("; ")));
                    let dropped: Vec<&DroppedTarget> = all.dropped.iter().filter(|t| t.scrape_pool == job).collect();
                    let sample: Vec<String> = dropped
                        .iter()
                        .take(5)
                        .map(|t| {
                            let l = &t.discovered_labels;
                            let get = |k: &str| l.get(k).map(String::as_str).unwrap_or("-");
                            format!(
                                "{}/{} ip {} scrape={} port={}",
                                get("__meta_kubernetes_namespace"),
                                get("__meta_kubernetes_pod_name"),
                                get("__meta_kubernetes_pod_ip"),
                                get("__meta_kubernetes_pod_annotation_prometheus_io_scrape"),
                                get("__meta_kubernetes_pod_annotation_prometheus_io_port"),
                            )
                        })
                        .collect();
                    problems.push(format!("{} dropped by relabelling, e.g. [{}]", dropped.len(), sample.join("; ")));
                }
                (mine, problems)
            }
            Err(e) => (Vec::new(), vec![format!("{e:#}")]),
        };
        if problems.is_empty() {
            return Ok(targets);
        }
        if Instant::now() >= deadline {
            bail!("Prometheus at {}: targets not up after {timeout:?}:\n  {}", prom.addr(), problems.join("\n  "));
        }
        std::thread::sleep(POLL);
    }
}

/// The names in `names` of which Prometheus has no current sample matching `matchers` (label matchers
/// without braces, e.g. `namespace="ns",dataset="demo"`; empty for any): one instant query per name.
pub fn missing_series(prom: &Prometheus, names: &[String], matchers: &str) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for name in names {
        if prom.query(&format!("{name}{{{matchers}}}"))?.is_empty() {
            missing.push(name.clone());
        }
    }
    Ok(missing)
}

/// Waits until no name of `names` is [`missing_series`]. The error lists the missing names and, for
/// each, the label sets Prometheus has of that metric (e.g. another dataset, an `exported_namespace`).
pub fn wait_for_series(prom: &Prometheus, names: &[String], matchers: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let missing = missing_series(prom, names, matchers);
        if let Ok(m) = &missing
            && m.is_empty()
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let missing = missing?;
            let mut lines = Vec::new();
            for name in &missing {
                let seen = prom.query(name).map(|s| {
                    s.iter().take(5).map(|s| format!("{{{}}}", labels_text(&s.labels))).collect::<Vec<_>>().join(" ")
                });
                lines.push(match seen {
                    Ok(seen) if seen.is_empty() => format!("{name}: no series at all"),
                    Ok(seen) => format!("{name}: only {seen}"),
                    Err(e) => format!("{name}: {e:#}"),
                });
            }
            bail!(
                "Prometheus at {}: {} of {} series missing with {{{matchers}}} after {timeout:?}:\n  {}",
                prom.addr(),
                missing.len(),
                names.len(),
                lines.join("\n  ")
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Series of `ferrofluid_…` metrics that carry an `exported_…` label: a scrape without `honor_labels`
/// renamed the collector's own `namespace` (or another label). `{name}{labels}` of each, at most 20.
pub fn exported_label_series(prom: &Prometheus) -> Result<Vec<String>> {
    let mut out = BTreeSet::new();
    for label in ["exported_namespace", "exported_pod", "exported_job", "exported_instance"] {
        for s in prom.query(&format!("{{__name__=~\"ferrofluid_.+\",{label}!=\"\"}}"))?.iter().take(20) {
            out.insert(format!("{{{}}}", labels_text(&s.labels)));
        }
    }
    Ok(out.into_iter().take(20).collect())
}

/// A panel query that gives no data now.
#[derive(Clone, Debug)]
pub struct EmptyPanel {
    pub query: PanelQuery,
    /// `no data`, or the query's error.
    pub reason: String,
}

impl fmt::Display for EmptyPanel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.query, self.reason)
    }
}

/// The queries of `queries` whose instant query (now) gives an empty result or an error. Fails only when
/// Prometheus is not ready.
pub fn empty_panels(prom: &Prometheus, queries: &[PanelQuery]) -> Result<Vec<EmptyPanel>> {
    ensure!(prom.ready()?, "Prometheus at {} is not ready", prom.addr());
    let mut out = Vec::new();
    for q in queries {
        let reason = match prom.query(&q.expr) {
            Ok(samples) if samples.is_empty() => "no data".to_string(),
            Ok(_) => continue,
            Err(e) => format!("{e:#}"),
        };
        out.push(EmptyPanel { query: q.clone(), reason });
    }
    Ok(out)
}

/// Waits until no query of `queries` is an [`empty_panels`] one (`rate()` over 5m needs two scrapes of a
/// series first). The error lists every empty panel query.
pub fn wait_for_panels(prom: &Prometheus, queries: &[PanelQuery], timeout: Duration) -> Result<()> {
    ensure!(!queries.is_empty(), "no panel queries to check");
    let deadline = Instant::now() + timeout;
    loop {
        let empty = empty_panels(prom, queries);
        if let Ok(e) = &empty
            && e.is_empty()
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let empty = empty?;
            let lines: Vec<String> = empty.iter().map(ToString::to_string).collect();
            bail!(
                "Prometheus at {}: {} of {} dashboard queries without data after {timeout:?}:\n  {}",
                prom.addr(),
                empty.len(),
                queries.len(),
                lines.join("\n  ")
            );
        }
        std::thread::sleep(POLL);
    }
}

/// The dashboard's variable queries (`label_values(…)`) that do not offer the value `vars` selects
/// (e.g. the namespace drop-down without the test's namespace): `variable: why`.
pub fn missing_variable_values(prom: &Prometheus, vars: &DashboardVars) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (name, label, selector) in dashboard_variable_queries(vars)? {
        let Some(VarValue::One(want)) = vars.values.get(&name) else { continue };
        let offered = prom.label_values(&label, &selector)?;
        if !offered.contains(want) {
            out.push(format!("{name}: label_values({selector}, {label}) offers {offered:?}, not {want:?}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric_name_char(c: char) -> bool {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
    }

    /// `ferrofluid_…` names in `text`.
    fn ferrofluid_names(text: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut rest = text;
        while let Some(at) = rest.find("ferrofluid_") {
            let tail = &rest[at..];
            let end = tail.find(|c: char| !metric_name_char(c)).unwrap_or(tail.len());
            out.insert(tail[..end].to_string());
            rest = &tail[end..];
        }
        out
    }

    /// The Rust sources under crates/.
    fn crate_sources() -> String {
        fn walk(dir: &std::path::Path, out: &mut String) {
            for entry in std::fs::read_dir(dir).expect("read crates dir").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push_str(&std::fs::read_to_string(&path).expect("read source"));
                }
            }
        }
        let mut out = String::new();
        walk(&repo_file("crates"), &mut out);
        assert!(out.len() > 10_000, "crates/ sources not found");
        out
    }

    #[test]
    fn the_doc_documents_per_dataset_series() {
        let names = documented_dataset_series().expect("documented series");
        assert!(names.len() >= 9, "only {} per-dataset series in {METRICS_DOC}: {names:?}", names.len());
        for name in [
            "ferrofluid_dataset_cache_cached_bytes",
            "ferrofluid_dataset_cache_capacity_bytes",
            "ferrofluid_dataset_cache_hits_total",
            "ferrofluid_dataset_cache_miss_bytes_total",
            "ferrofluid_collector_targets",
            "ferrofluid_collector_scrape_errors_total",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} not found per dataset in {METRICS_DOC}: {names:?}");
        }
        // Documented, but not per dataset.
        for name in ["ferrofluid_collector_scrape_duration_seconds", "ferrofluid_collector_status_writes_total"] {
            assert!(!names.iter().any(|n| n.starts_with(name)), "{name} taken as per dataset: {names:?}");
        }
        let unique: BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "duplicates in {names:?}");
    }

    #[test]
    fn the_doc_series_tables_parse_in_full() {
        let all = parse_documented_series(&read_repo_file(METRICS_DOC).expect("doc"));
        // The collector's table, the dataops-controller's and the webhook's.
        for name in [
            "ferrofluid_collector_status_write_errors_total",
            "ferrofluid_dataops_finished_total",
            "ferrofluid_webhook_review_duration_seconds",
        ] {
            assert!(all.iter().any(|s| s.name == name), "{name} not parsed: {all:?}");
        }
        let histogram = all.iter().find(|s| s.name == "ferrofluid_collector_scrape_duration_seconds").expect("hist");
        assert_eq!(histogram.kind, "histogram");
        assert_eq!(histogram.labels, vec!["kind".to_string()]);
        assert_eq!(histogram.stored_name(), "ferrofluid_collector_scrape_duration_seconds_count");
        for s in &all {
            assert!(s.name.starts_with("ferrofluid_"), "not a metric name: {s:?}");
            assert!(["gauge", "counter", "histogram"].contains(&s.kind.as_str()), "type of {s:?}");
        }
    }

    #[test]
    fn the_parser_reads_only_series_tables() {
        let md = "\
| flag | default |
|---|---|
| `x_total{dataset}` | counter |

| series | type | meaning |
|---|---|---|
| `a_bytes{namespace,dataset}` | gauge | a |
| `b_seconds{kind}` | histogram | b |
| `c_total` | counter | c |
text
| `d_total{dataset}` | counter | not a header row of a series table |
| `e_total{dataset}` | counter | e |
";
        let all = parse_documented_series(md);
        let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a_bytes", "b_seconds", "c_total"]);
        assert!(all[0].per_dataset() && !all[1].per_dataset() && !all[2].per_dataset());
        assert_eq!(all[1].stored_name(), "b_seconds_count");
    }

    #[test]
    fn documented_series_are_exported_by_the_collector() {
        let sources = crate_sources();
        for name in documented_dataset_series().expect("documented series") {
            assert!(sources.contains(&format!("\"{name}\"")), "{name} is documented but no crate exports it");
        }
    }

    #[test]
    fn every_dashboard_panel_has_a_query_and_no_variable_is_left() {
        let json = read_repo_file(DASHBOARD).expect("dashboard");
        let bare = panels_without_queries(&json).expect("panels");
        assert!(bare.is_empty(), "panels without a query: {bare:?}");
        let queries = dashboard_queries(&DashboardVars::new("ff-ns", "demo")).expect("queries");
        let dashboard: Value = serde_json::from_str(&json).expect("json");
        let panels = walk_panels(&dashboard).iter().filter(|p| p["type"] != "row").count();
        assert!(panels >= 10, "only {panels} panels");
        assert!(queries.len() >= panels, "{} queries for {panels} panels", queries.len());
        let ids: BTreeSet<i64> = queries.iter().map(|q| q.panel_id).collect();
        assert_eq!(ids.len(), panels, "panels and the ids of their queries differ: {ids:?}");
        for q in &queries {
            assert!(!q.expr.contains('$'), "variable left in {q}");
            assert!(!q.expr.contains("[["), "variable left in {q}");
            assert!(!q.ref_id.is_empty(), "no refId: {q}");
        }
        // The variables reached the matchers.
        assert!(queries.iter().any(|q| q.expr.contains(r#"namespace=~"ff-ns",dataset=~"demo""#)), "{queries:#?}");
    }

    #[test]
    fn dashboard_values_are_regex_escaped_and_all_is_the_all_value() {
        let queries = dashboard_queries(&DashboardVars::new("ns", "a.b")).expect("queries");
        assert!(queries.iter().any(|q| q.expr.contains(r#"dataset=~"a\\.b""#)), "{queries:#?}");
        let all = DashboardVars::empty().with("namespace", VarValue::All).with("dataset", VarValue::All);
        let queries = dashboard_queries(&all).expect("queries");
        assert!(queries.iter().any(|q| q.expr.contains(r#"namespace=~".*",dataset=~".*""#)), "{queries:#?}");
        // A variable without value is an error, not a query that matches nothing.
        let err = dashboard_queries(&DashboardVars::empty().with("namespace", VarValue::All)).expect_err("no dataset");
        assert!(format!("{err:#}").contains("no value given for $dataset"), "{err:#}");
    }

    #[test]
    fn dashboard_variable_queries_are_label_values_of_collector_series() {
        let vars = dashboard_variable_queries(&DashboardVars::new("ns", "demo")).expect("variable queries");
        let names: Vec<&str> = vars.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, ["namespace", "dataset"]);
        assert_eq!(vars[1].1, "dataset");
        assert_eq!(vars[1].2, r#"ferrofluid_dataset_cache_capacity_bytes{namespace=~"ns"}"#);
    }

    #[test]
    fn dashboard_metrics_are_exported_by_a_component() {
        let sources = crate_sources();
        let queries = dashboard_queries(&DashboardVars::new("ns", "demo")).expect("queries");
        let mut names = BTreeSet::new();
        for q in &queries {
            names.extend(ferrofluid_names(&q.expr));
        }
        assert!(names.len() >= 8, "{names:?}");
        for name in names {
            let base = ["_bucket", "_count", "_sum"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name);
            assert!(
                sources.contains(&format!("\"{name}\"")) || sources.contains(&format!("\"{base}\"")),
                "the dashboard queries {name}, which no crate exports"
            );
        }
    }

    #[test]
    fn substitution_forms() {
        let dashboard: Value = serde_json::from_str(
            r#"{"templating":{"list":[
                {"name":"ns","multi":true,"includeAll":true,"allValue":".*"},
                {"name":"pod","multi":false,"includeAll":false}]}}"#,
        )
        .expect("json");
        let defs = var_defs(&dashboard);
        let vars =
            DashboardVars::empty().with("ns", VarValue::One("a.b".into())).with("pod", VarValue::One("p".into()));
        let s = |e: &str| substitute(e, &defs, &vars);
        assert_eq!(s(r#"x{ns=~"$ns"}"#).expect("$ns"), r#"x{ns=~"a\\.b"}"#);
        assert_eq!(s(r#"x{ns=~"${ns}",pod="[[pod]]"}"#).expect("${} [[]]"), r#"x{ns=~"a\\.b",pod="p"}"#);
        assert_eq!(s(r#"x{ns="${ns:raw}"}"#).expect("raw"), r#"x{ns="a.b"}"#);
        assert_eq!(s("rate(x[$__rate_interval])").expect("rate"), "rate(x[1m])");
        assert_eq!(s("rate(x[5m]) offset $__range").expect("range"), "rate(x[5m]) offset 1h");
        assert_eq!(s(r#"x{a=~"b$"}[1m]"#).expect("anchor"), r#"x{a=~"b$"}[1m]"#);
        assert_eq!(
            s(r#"label_replace(x, "a", "$1", "b", "(.*)")"#).expect("$1"),
            r#"label_replace(x, "a", "$1", "b", "(.*)")"#
        );
        assert!(s("x{a=\"$nope\"}").is_err(), "unknown variable");
        assert!(s("x[$__nope]").is_err(), "unknown built-in");
        assert!(s("x{a=\"${ns:csv}\"}").is_err(), "unsupported format");
        assert!(s("x{a=\"${ns\"}").is_err(), "unclosed");
    }

    #[test]
    fn query_results_parse() {
        let vector: Value = serde_json::from_str(
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"j"},"value":[1.5,"1"]},
                {"metric":{},"value":[1.5,"NaN"]}]}"#,
        )
        .expect("json");
        let samples = parse_query_data(&vector).expect("vector");
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].labels.get("job").map(String::as_str), Some("j"));
        assert_eq!(samples[0].value, 1.0);
        assert!(samples[1].value.is_nan());
        let scalar: Value = serde_json::from_str(r#"{"resultType":"scalar","result":[1.5,"+Inf"]}"#).expect("json");
        assert_eq!(parse_query_data(&scalar).expect("scalar")[0].value, f64::INFINITY);
        let empty: Value = serde_json::from_str(r#"{"resultType":"vector","result":[]}"#).expect("json");
        assert!(parse_query_data(&empty).expect("empty").is_empty());
        assert_eq!(url_encode(r#"a{b=~"c.*"} / 2"#), "a%7Bb%3D~%22c.%2A%22%7D%20%2F%202");
        assert!(Prometheus::new("10.0.0.1:9090".parse().expect("addr")).is_err(), "non-loopback accepted");
    }

    /// Manual check against a running Prometheus (`hack/prometheus.sh start`, `FF_PROMETHEUS_PORT`) that
    /// scrapes a metrics-collector, or a stand-in, exporting the dataset `FF_PROMETHEUS_CHECK`
    /// (`<namespace>/<dataset>`) in scrape job `FF_PROMETHEUS_CHECK_JOB` (default `ferrofluid-pods`), whose
    /// targets must include `FF_PROMETHEUS_CHECK_TARGETS` (`label=value,…`, default: all targets up):
    /// `cargo test -p ferrofluid-e2e --lib prometheus::tests::live -- --ignored --nocapture`.
    #[test]
    #[ignore = "needs a running Prometheus (hack/prometheus.sh start) and FF_PROMETHEUS_CHECK"]
    fn live() -> Result<()> {
        let check = std::env::var("FF_PROMETHEUS_CHECK").context("FF_PROMETHEUS_CHECK=<namespace>/<dataset>")?;
        let (namespace, dataset) = check.split_once('/').context("FF_PROMETHEUS_CHECK=<namespace>/<dataset>")?;
        let job = std::env::var("FF_PROMETHEUS_CHECK_JOB").unwrap_or_else(|_| POD_JOB.to_string());
        let expected_text = std::env::var("FF_PROMETHEUS_CHECK_TARGETS").unwrap_or_default();
        let expected: Vec<(&str, &str)> = expected_text.split(',').filter_map(|kv| kv.split_once('=')).collect();
        let prom = Prometheus::local()?;
        let wait = Duration::from_secs(90);

        let targets = wait_for_targets_up(&prom, &job, &expected, wait)?;
        println!("{} targets of {job} up:", targets.len());
        for t in &targets {
            println!("  {}", t.describe());
        }
        let names = documented_dataset_series()?;
        let matchers = format!("namespace=\"{namespace}\",dataset=\"{dataset}\"");
        wait_for_series(&prom, &names, &matchers, wait)?;
        println!("all {} documented per-dataset series present with {{{matchers}}}", names.len());
        let exported = exported_label_series(&prom)?;
        ensure!(exported.is_empty(), "series with exported_* labels (honor_labels not in effect): {exported:?}");
        println!("no ferrofluid_ series carries an exported_* label");
        let vars = DashboardVars::new(namespace, dataset);
        let queries = dashboard_queries(&vars)?;
        let result = wait_for_panels(&prom, &queries, wait);
        for q in &queries {
            let samples = prom.query(&q.expr)?;
            let values: Vec<String> = samples.iter().take(3).map(|s| format!("{}", s.value)).collect();
            println!("  {} -> {} series {values:?}", q, samples.len());
        }
        result?;
        println!("all {} dashboard queries have data", queries.len());
        let missing = missing_variable_values(&prom, &vars)?;
        ensure!(missing.is_empty(), "dashboard variables: {missing:?}");
        println!("the dashboard's namespace and dataset variables offer {namespace} and {dataset}");
        Ok(())
    }
}

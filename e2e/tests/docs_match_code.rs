//! The docs say what the code does. Every flag the docs name exists in that component's binary, with the
//! default and environment variable the docs give (read from the real binaries' `--help`), and every
//! flag a binary has is documented; every chart value `docs/helm.md` lists exists in
//! `charts/ferrofluid/values.yaml` with the documented default; the bench settings `docs/benchmarks.md`
//! lists are the `BENCH_*` variables `hack/bench.sh` reads, with its defaults.

use anyhow::{Context, Result, bail, ensure};
use ferrofluid_e2e::bin_path;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

const COMPONENTS: [&str; 6] =
    ["dataset-controller", "runtime-controller", "dataops-controller", "metrics-collector", "webhook", "csi-plugin"];
const CONTROLLERS: [&str; 3] = ["dataset-controller", "runtime-controller", "dataops-controller"];

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(repo(path)).with_context(|| path.to_string())
}

/// One flag as `--help` shows it.
#[derive(Debug, Clone, Default, PartialEq)]
struct Flag {
    default: Option<String>,
    env: Option<String>,
}

/// The long flags of `binary --help` (run without any environment, so `[env: X=value]` shows no values
/// and nothing from this machine leaks into defaults).
fn help(binary: &str) -> Result<BTreeMap<String, Flag>> {
    let out = Command::new(bin_path(binary)).arg("--help").env_clear().output().context(binary.to_string())?;
    ensure!(out.status.success(), "{binary} --help: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    Ok(parse_help(&text))
}

fn parse_help(text: &str) -> BTreeMap<String, Flag> {
    let mut flags = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let flag_line = trimmed.strip_prefix("-h, ").or(trimmed.strip_prefix("-V, ")).unwrap_or(trimmed);
        if line.starts_with("  ")
            && let Some(rest) = flag_line.strip_prefix("--")
            && line.len() - trimmed.len() <= 6
        {
            let name = rest.split([' ', '<']).next().unwrap_or_default().to_string();
            if name == "help" || name == "version" {
                current = None;
                continue;
            }
            flags.insert(name.clone(), Flag::default());
            current = Some(name);
        }
        if let Some(name) = &current {
            let f = flags.get_mut(name).expect("current flag");
            if let Some(d) = between(line, "[default: ", "]") {
                f.default = Some(d);
            }
            if let Some(e) = between(line, "[env: ", "=") {
                f.env = Some(e);
            }
        }
    }
    flags
}

fn between(s: &str, start: &str, end: &str) -> Option<String> {
    let from = s.find(start)? + start.len();
    let to = s[from..].find(end)? + from;
    Some(s[from..to].to_string())
}

/// What a document says about one flag of one component.
#[derive(Debug, Clone)]
struct Documented {
    component: &'static str,
    flag: String,
    default: Option<String>,
    env: Option<String>,
    source: &'static str,
}

fn cells(line: &str) -> Vec<String> {
    line.trim().trim_matches('|').split('|').map(|c| c.trim().to_string()).collect()
}

fn code(cell: &str) -> Option<String> {
    between(cell, "`", "`")
}

/// A cell that is one literal (`` `value` ``), not prose that quotes something.
fn literal(cell: &str) -> Option<String> {
    let c = cell.trim();
    (c.len() > 1 && c.starts_with('`') && c.ends_with('`') && c.matches('`').count() == 2)
        .then(|| c.trim_matches('`').to_string())
}

/// Rows of the first Markdown table after `heading` in `text`.
fn table_after(text: &str, heading: &str) -> Result<Vec<Vec<String>>> {
    let start = text.find(heading).with_context(|| format!("no {heading:?}"))?;
    let rows: Vec<Vec<String>> = text[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(cells)
        .collect();
    ensure!(!rows.is_empty(), "no table after {heading:?}");
    Ok(rows)
}

fn documented() -> Result<Vec<Documented>> {
    let mut out = Vec::new();
    let config = read("docs/configuration.md")?;
    // The flags every component (or every controller) has, as one sentence: "`--x` (default `y`)" or
    // "`--x` (y)".
    let section = &config[config.find("## Component flags").context("Component flags")?..];
    let sentence: String = section.split("\n\n").nth(1).context("the common flags sentence")?.replace('\n', " ");
    let (common, controllers) = sentence.split_once("the controllers also").context("controllers' flags")?;
    for (part, components) in [(common, &COMPONENTS[..]), (controllers, &CONTROLLERS[..])] {
        let mut rest = part;
        while let Some(at) = rest.find("`--") {
            let flag = between(&rest[at..], "`--", "`").context("flag")?;
            rest = &rest[at + flag.len() + 4..];
            if flag == "help" {
                continue;
            }
            let default = rest.trim_start().strip_prefix('(').and_then(|p| p.split_once(')')).map(|(d, _)| {
                let d = d.trim_start_matches("default ");
                d.trim_matches('`').to_string()
            });
            for c in components {
                out.push(Documented {
                    component: c,
                    flag: flag.clone(),
                    default: default.clone(),
                    env: None,
                    source: "configuration.md (common flags)",
                });
            }
        }
    }
    for row in table_after(&config, "## Component flags")? {
        let component =
            COMPONENTS.into_iter().find(|c| *c == row[0]).with_context(|| format!("component {:?}", row[0]))?;
        out.push(Documented {
            component,
            flag: code(&row[1]).context("flag")?.trim_start_matches("--").to_string(),
            default: literal(&row[2]),
            env: None,
            source: "configuration.md",
        });
    }
    let csi = read("docs/csi.md")?;
    for row in table_after(&csi, "## Flags")? {
        let flags: Vec<String> = row[0].split(',').filter_map(code).collect();
        let env = between(&row[0], "(`", "`)");
        let default = literal(&row[1]).or_else(|| (row[1] == "required").then(String::new));
        for flag in flags {
            let common =
                ["--kubeconfig", "--http-addr", "--log-json", "--api-qps", "--api-burst"].contains(&flag.as_str());
            out.push(Documented {
                component: "csi-plugin",
                flag: flag.trim_start_matches("--").to_string(),
                default: if common { None } else { default.clone() },
                env: if common { None } else { env.clone() },
                source: "csi.md",
            });
        }
    }
    let metrics = read("docs/metrics.md")?;
    for row in table_after(&metrics, "## Flags")? {
        out.push(Documented {
            component: "metrics-collector",
            flag: code(&row[0]).context("flag")?.trim_start_matches("--").to_string(),
            env: literal(&row[1]),
            default: literal(&row[2]),
            source: "metrics.md",
        });
    }
    Ok(out)
}

#[test]
fn documented_flags_are_the_binaries_flags() -> Result<()> {
    let docs = documented()?;
    ensure!(docs.len() > 30, "the docs parser found only {} flags", docs.len());
    let mut problems = Vec::new();
    for component in COMPONENTS {
        let flags = help(component)?;
        for d in docs.iter().filter(|d| d.component == component) {
            let Some(real) = flags.get(&d.flag) else {
                problems.push(format!("{}: {component} has no --{}", d.source, d.flag));
                continue;
            };
            // A default the docs write as a placeholder (`<kubelet-root>/…`) or "required" (empty) is a
            // description, not a value: it must then be absent from --help.
            let placeholder = d.default.as_deref().is_some_and(|doc| doc.contains('<') || doc.is_empty());
            if placeholder && let Some(v) = &real.default {
                problems.push(format!("{}: --{} of {component} defaults to {v:?}", d.source, d.flag));
            } else if !placeholder
                && let Some(doc) = d.default.as_deref()
                && real.default.as_deref() != Some(doc)
            {
                problems.push(format!(
                    "{}: --{} of {component}: docs say default {doc:?}, --help says {:?}",
                    d.source, d.flag, real.default
                ));
            }
            if let Some(env) = &d.env
                && real.env.as_ref() != Some(env)
            {
                problems.push(format!(
                    "{}: --{} of {component}: docs say env {env}, --help says {:?}",
                    d.source, d.flag, real.env
                ));
            }
        }
        for flag in flags.keys() {
            if !docs.iter().any(|d| d.component == component && &d.flag == flag) {
                problems.push(format!("{component} --{flag} is documented nowhere"));
            }
        }
    }
    if !problems.is_empty() {
        bail!("docs and binaries disagree:\n  {}", problems.join("\n  "));
    }
    Ok(())
}

/// `a.b`, `.c`, `{d,e}` in a Values-table key cell → full dotted keys; `None` for placeholders.
fn expand_keys(cell: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    let mut parent = String::new();
    for part in cell.split(", ") {
        let Some(key) = code(part) else { continue };
        if let Some(base) = key.strip_suffix(".*") {
            parent = base.rsplit_once('.').map(|(p, _)| p.to_string()).unwrap_or_default();
            out.push(None);
            continue;
        }
        if key.contains('<') {
            out.push(None);
            continue;
        }
        let full = match key.strip_prefix('.') {
            Some(rel) => format!("{parent}.{rel}"),
            None => key.clone(),
        };
        if let Some((base, braces)) = full.split_once(".{") {
            for k in braces.trim_end_matches('}').split(',') {
                out.push(Some(format!("{base}.{k}")));
            }
            parent = base.to_string();
        } else {
            parent = full.rsplit_once('.').map(|(p, _)| p.to_string()).unwrap_or_default();
            out.push(Some(full));
        }
    }
    out
}

fn lookup<'a>(values: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(values, |v, k| v.get(k))
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn documented_chart_values_are_the_charts() -> Result<()> {
    let values: Value = serde_saphyr::from_str(&read("charts/ferrofluid/values.yaml")?).context("values.yaml")?;
    let helm = read("docs/helm.md")?;
    let mut problems = Vec::new();
    let mut checked = 0;
    for row in table_after(&helm, "## Values")? {
        let keys = expand_keys(&row[0]);
        // Defaults, one per key, where the docs give them as literal values.
        let defaults: Vec<&str> = row[1].split(", ").collect();
        for (i, key) in keys.iter().enumerate() {
            let Some(key) = key else { continue };
            let Some(real) = lookup(&values, key) else {
                problems.push(format!("helm.md lists `{key}`, values.yaml has no such key"));
                continue;
            };
            let Some(doc) = defaults.get(i).and_then(|d| {
                let d = d.trim();
                (d.starts_with('`') && d.ends_with('`') && d.len() > 1).then(|| d.trim_matches('`').to_string())
            }) else {
                continue;
            };
            checked += 1;
            // The documented literal is YAML, as in values.yaml (`""`, `[{operator: Exists}]`, `15s`, `true`).
            let want: Value = serde_saphyr::from_str(&doc).unwrap_or(Value::String(doc.clone()));
            let same = want == *real || (want.is_number() && scalar(&want) == scalar(real));
            if !same {
                problems.push(format!("`{key}`: helm.md says default {doc}, values.yaml has {real}"));
            }
        }
    }
    ensure!(checked > 20, "only {checked} documented defaults were checked: is the table still parsed?");
    if !problems.is_empty() {
        bail!("docs/helm.md and the chart disagree:\n  {}", problems.join("\n  "));
    }
    Ok(())
}

#[test]
fn the_help_parser_reads_defaults_and_env() {
    let text = "Options:\n      --a-b <A_B>\n          Thing [env: X_Y=] [default: 3s]\n      --flag\n          Text\n          [default: false]\n  -h, --help\n          Print help\n";
    let flags = parse_help(text);
    assert_eq!(flags["a-b"], Flag { default: Some("3s".into()), env: Some("X_Y".into()) });
    assert_eq!(flags["flag"].default.as_deref(), Some("false"));
    assert!(!flags.contains_key("help"));
    assert_eq!(
        expand_keys("`metrics.serviceMonitor.{enabled,interval,labels}`"),
        [
            Some("metrics.serviceMonitor.enabled".into()),
            Some("metrics.serviceMonitor.interval".into()),
            Some("metrics.serviceMonitor.labels".into())
        ]
    );
    assert_eq!(
        expand_keys("`datasetController.replicas`, `.concurrency`"),
        [Some("datasetController.replicas".into()), Some("datasetController.concurrency".into())]
    );
}

/// `docs/benchmarks.md`'s settings table names exactly the `BENCH_*` variables `hack/bench.sh` reads,
/// with the defaults the script uses.
#[test]
fn documented_bench_settings_are_the_scripts() -> Result<()> {
    let script = read("hack/bench.sh")?;
    let mut used = BTreeMap::new();
    for (i, _) in script.match_indices("${BENCH_") {
        let rest = &script[i + 2..];
        let (name, after) = rest.split_at(rest.find(|c: char| !(c.is_ascii_uppercase() || c == '_')).unwrap_or(0));
        let default = after.strip_prefix(":-").and_then(|d| d.split('}').next()).map(str::to_string);
        if let Some(earlier) = used.insert(name.to_string(), default.clone()) {
            ensure!(earlier == default, "hack/bench.sh gives {name} two defaults: {earlier:?} and {default:?}");
        }
    }
    ensure!(used.len() >= 10, "the parser found only {} variables in hack/bench.sh", used.len());
    let mut documented = BTreeMap::new();
    for line in read("docs/benchmarks.md")?.lines().filter(|l| l.starts_with("| `BENCH_")) {
        let row = cells(line);
        let names: Vec<String> = row[0].split(", ").filter_map(|c| code(c.split(' ').next().unwrap_or(""))).collect();
        let defaults: Vec<String> = row[1].split(", ").map(|d| d.trim_matches('`').to_string()).collect();
        ensure!(names.len() == defaults.len(), "docs/benchmarks.md: {line}");
        documented.extend(names.into_iter().zip(defaults.into_iter().map(Some)));
    }
    ensure!(documented == used, "docs/benchmarks.md {documented:?}\nhack/bench.sh {used:?}");
    Ok(())
}

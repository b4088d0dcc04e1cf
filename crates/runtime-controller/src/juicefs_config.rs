//! What a JuiceFS client needs, derived from a Dataset and its JuiceFSRuntime, and the shell
//! commands that format and mount the file system. Pure: inputs in, configuration or a field-naming
//! error out. Secrets stay in `secretKeyRef` environment variables; commands only name the variables.

use ferrofluid_api::juicefs_runtime::{JuiceFSRuntimeSpec, MediumType};
use ferrofluid_api::quota::quota_mib;
use ferrofluid_api::{DatasetSpec, EncryptOption};
use std::collections::BTreeMap;

/// Scheme of JuiceFS mount points.
pub const SCHEME: &str = "juicefs://";

/// An input problem, naming the field and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InputError {
    pub field: String,
    pub message: String,
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> InputError {
    InputError { field: field.into(), message: message.into() }
}

/// A secret-backed value exposed to the JuiceFS container as an environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretEnv {
    pub env: &'static str,
    pub secret: String,
    pub key: String,
}

/// One cache level, as the worker and FUSE pods mount it.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheLevel {
    pub medium: MediumType,
    pub paths: Vec<String>,
    pub size_mib: u64,
    pub empty_dir: bool,
    /// Free-space ratio (`--free-space-ratio`) from `low`.
    pub free_space_ratio: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JuiceFsConfig {
    /// File-system name (`mounts[0].name`).
    pub fs_name: String,
    /// Sub-directory from `juicefs:///<subdir>`; `None` for the root.
    pub subdir: Option<String>,
    /// `juicefs format` settings (`--storage`, `--bucket`).
    pub format_options: BTreeMap<String, String>,
    /// Extra `juicefs mount` options from the dataset (`--key=value`, or `--key` when the value is empty).
    pub mount_options: BTreeMap<String, String>,
    pub secrets: Vec<SecretEnv>,
    pub cache: Vec<CacheLevel>,
    pub read_only: bool,
}

/// Encrypt-option names JuiceFS understands, and the environment variable each becomes.
/// `ACCESS_KEY`/`SECRET_KEY`/`META_PASSWORD` are read by juicefs itself; `METAURL` is expanded by the shell.
const SECRET_ENVS: &[(&str, &str)] = &[
    ("metaurl", "METAURL"),
    ("access-key", "ACCESS_KEY"),
    ("secret-key", "SECRET_KEY"),
    ("meta-password", "META_PASSWORD"),
];

/// Dataset options that configure `juicefs format`; every other option is a mount option.
const FORMAT_KEYS: &[&str] = &["storage", "bucket"];

pub fn build(dataset: &DatasetSpec, runtime: &JuiceFSRuntimeSpec) -> Result<JuiceFsConfig, InputError> {
    let mount = match dataset.mounts.as_slice() {
        [m] => m,
        [] => return Err(bad("spec.mounts", "a JuiceFS dataset needs one mount")),
        _ => return Err(bad("spec.mounts", "a JuiceFS dataset takes exactly one mount; split the data over datasets")),
    };
    let subdir = parse_mount_point(&mount.mount_point).map_err(|m| bad("spec.mounts[0].mountPoint", m))?;
    if mount.name.is_empty() {
        return Err(bad("spec.mounts[0].name", "required: the JuiceFS file-system name"));
    }

    let mut format_options = BTreeMap::new();
    let mut mount_options = BTreeMap::new();
    let shared = dataset.shared_options.iter().map(|kv| ("spec.sharedOptions", kv));
    let own = mount.options.iter().map(|kv| ("spec.mounts[0].options", kv));
    for (field, (key, value)) in shared.chain(own) {
        check_option_key(key).map_err(|m| bad(format!("{field}.{key}"), m))?;
        let target = if FORMAT_KEYS.contains(&key.as_str()) { &mut format_options } else { &mut mount_options };
        target.insert(key.clone(), value.clone());
    }
    for (field, opts) in [("spec.worker.options", runtime.worker.as_ref().map(|w| &w.options))] {
        for (key, value) in opts.into_iter().flatten() {
            check_option_key(key).map_err(|m| bad(format!("{field}.{key}"), m))?;
            mount_options.insert(key.clone(), value.clone());
        }
    }

    let mut secrets = Vec::new();
    let shared_enc =
        dataset.shared_encrypt_options.iter().enumerate().map(|(i, o)| (format!("spec.sharedEncryptOptions[{i}]"), o));
    let own_enc =
        mount.encrypt_options.iter().enumerate().map(|(i, o)| (format!("spec.mounts[0].encryptOptions[{i}]"), o));
    for (field, opt) in shared_enc.chain(own_enc) {
        let env = secret_env(&field, opt)?;
        secrets.retain(|s: &SecretEnv| s.env != env.env);
        secrets.push(env);
    }
    if !secrets.iter().any(|s| s.env == "METAURL") {
        return Err(bad(
            "spec.mounts[0].encryptOptions",
            "needs an entry named metaurl: the metadata engine URL, from a Secret (valueFrom.secretKeyRef)",
        ));
    }

    let cache = cache_levels(runtime)?;
    Ok(JuiceFsConfig {
        fs_name: mount.name.clone(),
        subdir,
        format_options,
        mount_options,
        secrets,
        cache,
        // Only an explicit `readOnly` makes the client itself read-only (the subdirectory must then exist
        // already). `ReadOnlyMany` volumes are enforced where pods see them: read-only bind mounts.
        read_only: mount.read_only.unwrap_or(false),
    })
}

/// `juicefs:///demo` → `Some("/demo")`, `juicefs:///` or `juicefs://` → `None`.
pub fn parse_mount_point(mount_point: &str) -> Result<Option<String>, String> {
    let Some(path) = mount_point.strip_prefix(SCHEME) else {
        return Err(format!("{mount_point:?} is not a JuiceFS mount point; use juicefs:///<subdir>"));
    };
    if path.is_empty() || path == "/" {
        return Ok(None);
    }
    if !path.starts_with('/') {
        return Err(format!("{mount_point:?} names a host; use juicefs:///<subdir> (three slashes)"));
    }
    if path.split('/').any(|seg| seg == "..") {
        return Err(format!("{mount_point:?} must not contain '..'"));
    }
    Ok(Some(path.trim_end_matches('/').to_string()))
}

fn check_option_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok { Ok(()) } else { Err("option names are lowercase letters, digits and '-'".into()) }
}

fn secret_env(field: &str, opt: &EncryptOption) -> Result<SecretEnv, InputError> {
    let env = SECRET_ENVS.iter().find(|(name, _)| *name == opt.name).map(|(_, env)| *env).ok_or_else(|| {
        let known: Vec<_> = SECRET_ENVS.iter().map(|(n, _)| *n).collect();
        bad(format!("{field}.name"), format!("unknown option {:?}; JuiceFS takes {}", opt.name, known.join(", ")))
    })?;
    let r = &opt.value_from.secret_key_ref;
    Ok(SecretEnv { env, secret: r.name.clone(), key: r.key.clone() })
}

fn cache_levels(runtime: &JuiceFSRuntimeSpec) -> Result<Vec<CacheLevel>, InputError> {
    let levels = runtime.tieredstore.as_ref().map(|t| t.levels.as_slice()).unwrap_or_default();
    levels
        .iter()
        .enumerate()
        .map(|(i, level)| {
            let field = format!("spec.tieredstore.levels[{i}]");
            let size_mib = match &level.quota {
                Some(q) => quota_mib(q).map_err(|e| bad(format!("{field}.quota"), e.to_string()))?,
                None => {
                    return Err(bad(
                        format!("{field}.quota"),
                        "required: the cache size (e.g. 40960 meaning MiB, or 2Gi)",
                    ));
                }
            };
            let paths: Vec<String> = level.path.split(':').map(str::to_string).collect();
            if let Some(p) = paths.iter().find(|p| !p.starts_with('/') || p.split('/').any(|s| s == "..")) {
                return Err(bad(format!("{field}.path"), format!("{p:?} must be an absolute path without '..'")));
            }
            Ok(CacheLevel {
                medium: level.mediumtype,
                paths,
                size_mib,
                empty_dir: level.volume_type == Some(ferrofluid_api::juicefs_runtime::VolumeType::EmptyDir),
                free_space_ratio: level.low.clone(),
            })
        })
        .collect()
}

/// Quotes a string for a POSIX shell: `'…'`, with embedded quotes closed, escaped and reopened.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Shell script a JuiceFS container runs: format (idempotent, `--no-update`) then mount in the
/// foreground at `mount_path`, serving metrics at `$POD_IP:<metrics_port>`. A dead FUSE mount left at
/// `mount_path` by a crashed client is detached first so the new mount can take its place.
pub fn mount_script(
    cfg: &JuiceFsConfig,
    mount_path: &str,
    metrics_port: i32,
    extra: &BTreeMap<String, String>,
) -> String {
    let q = shell_quote;
    let mut format = vec!["juicefs".to_string(), "format".into(), "--no-update".into()];
    for (k, v) in &cfg.format_options {
        format.push(format!("--{k}={}", q(v)));
    }
    format.push("\"$METAURL\"".into());
    format.push(q(&cfg.fs_name));

    let mut mount = vec!["exec".to_string(), "juicefs".into(), "--no-agent".into(), "mount".into()];
    mount.push("--no-usage-report".into());
    mount.push(format!("--metrics=\"$POD_IP\":{metrics_port}"));
    if let Some(sub) = &cfg.subdir {
        mount.push(format!("--subdir={}", q(sub)));
    }
    let dirs: Vec<String> =
        cfg.cache.iter().flat_map(|l| l.paths.iter().map(|p| format!("{p}/{}", cfg.fs_name))).collect();
    if !dirs.is_empty() {
        mount.push(format!("--cache-dir={}", q(&dirs.join(":"))));
        mount.push(format!("--cache-size={}", cfg.cache.iter().map(|l| l.size_mib).sum::<u64>()));
    }
    if let Some(ratio) = cfg.cache.iter().find_map(|l| l.free_space_ratio.as_ref()) {
        mount.push(format!("--free-space-ratio={}", q(ratio)));
    }
    if cfg.read_only {
        mount.push("--read-only".into());
    }
    let mut options = cfg.mount_options.clone();
    options.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    for (k, v) in &options {
        mount.push(if v.is_empty() { format!("--{k}") } else { format!("--{k}={}", q(v)) });
    }
    mount.push("\"$METAURL\"".into());
    mount.push(q(mount_path));

    let path = q(mount_path);
    [
        "set -e".to_string(),
        format!("if ! stat {path} >/dev/null 2>&1; then umount -l {path} 2>/dev/null || true; fi"),
        format!("mkdir -p {path}"),
        format.join(" "),
        mount.join(" "),
    ]
    .join("\n")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ferrofluid_api::Mount;
    use ferrofluid_api::common::{EncryptOptionSource, SecretKeySelector};
    use ferrofluid_api::juicefs_runtime::{Level, TieredStore};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn secret(name: &str, key: &str) -> EncryptOption {
        EncryptOption {
            name: name.into(),
            value_from: EncryptOptionSource {
                secret_key_ref: SecretKeySelector { name: "jfs".into(), key: key.into() },
            },
        }
    }

    pub fn seed() -> (DatasetSpec, JuiceFSRuntimeSpec) {
        let ds = DatasetSpec {
            mounts: vec![Mount {
                name: "test".into(),
                mount_point: "juicefs:///demo".into(),
                options: [("bucket".to_string(), "/var/jfs/bucket".to_string())].into(),
                encrypt_options: vec![secret("metaurl", "metaurl")],
                ..Default::default()
            }],
            ..Default::default()
        };
        let rt = JuiceFSRuntimeSpec {
            replicas: Some(1),
            tieredstore: Some(TieredStore {
                levels: vec![Level {
                    mediumtype: MediumType::Mem,
                    path: "/dev/shm".into(),
                    quota: Some(IntOrString::Int(40960)),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        };
        (ds, rt)
    }

    #[test]
    fn seed_config() {
        let (ds, rt) = seed();
        let cfg = build(&ds, &rt).expect("valid");
        assert_eq!(cfg.fs_name, "test");
        assert_eq!(cfg.subdir.as_deref(), Some("/demo"));
        assert_eq!(cfg.format_options.get("bucket").map(String::as_str), Some("/var/jfs/bucket"));
        assert_eq!(cfg.secrets, vec![SecretEnv { env: "METAURL", secret: "jfs".into(), key: "metaurl".into() }]);
        assert_eq!(cfg.cache[0].size_mib, 40960);
        assert_eq!(cfg.cache[0].paths, ["/dev/shm"]);
    }

    #[test]
    fn script_formats_then_mounts_without_secrets() {
        let (mut ds, rt) = seed();
        ds.mounts[0].encrypt_options.push(secret("secret-key", "sk"));
        ds.mounts[0].options.insert("writeback".into(), String::new());
        let cfg = build(&ds, &rt).expect("valid");
        let script = mount_script(&cfg, "/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse", 9567, &BTreeMap::new());
        let lines: Vec<&str> = script.lines().collect();
        assert_eq!(lines[3], "juicefs format --no-update --bucket=/var/jfs/bucket \"$METAURL\" test");
        assert_eq!(
            lines[4],
            "exec juicefs --no-agent mount --no-usage-report --metrics=\"$POD_IP\":9567 --subdir=/demo \
             --cache-dir=/dev/shm/test --cache-size=40960 --writeback \"$METAURL\" \
             /runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse"
        );
        assert!(!script.contains("sk"), "secret names of keys must not leak into the script");
    }

    #[test]
    fn shell_quoting_is_safe() {
        assert_eq!(shell_quote("/dev/shm"), "/dev/shm");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("x'; rm -rf /; '"), r"'x'\''; rm -rf /; '\'''");
        assert_eq!(shell_quote("$(reboot)"), "'$(reboot)'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn input_errors_name_the_field() {
        let (ds, rt) = seed();
        let mut no_meta = ds.clone();
        no_meta.mounts[0].encrypt_options.clear();
        assert_eq!(build(&no_meta, &rt).unwrap_err().field, "spec.mounts[0].encryptOptions");

        let mut other_scheme = ds.clone();
        other_scheme.mounts[0].mount_point = "s3://bucket/data".into();
        assert_eq!(build(&other_scheme, &rt).unwrap_err().field, "spec.mounts[0].mountPoint");

        let mut unknown_secret = ds.clone();
        unknown_secret.mounts[0].encrypt_options.push(secret("password", "p"));
        assert_eq!(build(&unknown_secret, &rt).unwrap_err().field, "spec.mounts[0].encryptOptions[1].name");

        let mut bad_key = ds.clone();
        bad_key.mounts[0].options.insert("Cache Size".into(), "1".into());
        assert_eq!(build(&bad_key, &rt).unwrap_err().field, "spec.mounts[0].options.Cache Size");

        let mut two = ds.clone();
        two.mounts.push(two.mounts[0].clone());
        assert_eq!(build(&two, &rt).unwrap_err().field, "spec.mounts");

        let mut no_name = ds;
        no_name.mounts[0].name.clear();
        assert_eq!(build(&no_name, &rt).unwrap_err().field, "spec.mounts[0].name");
    }

    #[test]
    fn mount_points() {
        assert_eq!(parse_mount_point("juicefs:///demo"), Ok(Some("/demo".into())));
        assert_eq!(parse_mount_point("juicefs:///a/b/"), Ok(Some("/a/b".into())));
        assert_eq!(parse_mount_point("juicefs:///"), Ok(None));
        assert_eq!(parse_mount_point("juicefs://"), Ok(None));
        assert!(parse_mount_point("juicefs://host/demo").is_err());
        assert!(parse_mount_point("juicefs:///a/../b").is_err());
    }
}

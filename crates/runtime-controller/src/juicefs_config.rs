//! What a JuiceFS client needs, derived from a Dataset and its JuiceFSRuntime, and the exact argv of
//! the commands that format and mount the file system. Pure: inputs in, configuration or a field-naming
//! error out. No shell parses any of it: commands are exec-form argv (the FUSE container's fixed start
//! script gets them as positional parameters, [`FUSE_START_SCRIPT`]), user values enter them only as whole
//! arguments (with `$` escaped, so Kubernetes' `$(VAR)` expansion cannot pull a secret into them), and
//! secrets stay in `secretKeyRef` environment variables that the argv only names (`$(METAURL)`).

use crate::juicefs_flags::{self, Command};
use ferrofluid_api::dataset::READ_ONLY_MANY;
use ferrofluid_api::juicefs_runtime::{JuiceFSRuntimeSpec, MediumType};
use ferrofluid_api::keys::DatasetKey;
use ferrofluid_api::options::check_option_key;
use ferrofluid_api::quota::quota_mib;
use ferrofluid_api::{DatasetSpec, EncryptOption};
use std::collections::BTreeMap;

/// Scheme of JuiceFS mount points.
pub use ferrofluid_api::dataset::parse_mount_point;

/// The JuiceFS binary in worker and FUSE images.
pub const JUICEFS: &str = "juicefs";

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

/// Which JuiceFS client a command is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Worker,
    Fuse,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JuiceFsConfig {
    /// File-system name (`mounts[0].name`).
    pub fs_name: String,
    /// The runtime's own directory below each cache level ([`DatasetKey::cache_dir_name`]).
    pub cache_name: String,
    /// Sub-directory from `juicefs:///<subdir>`; `None` for the root.
    pub subdir: Option<String>,
    /// `juicefs format` flags from the dataset's options (`--storage`, `--bucket`, `--block-size`, …).
    pub format_options: BTreeMap<String, String>,
    /// `juicefs mount` flags from the dataset's options (workers and FUSE clients alike).
    pub mount_options: BTreeMap<String, String>,
    /// `juicefs mount` flags only the workers get (`spec.worker.options`).
    pub worker_options: BTreeMap<String, String>,
    /// `juicefs mount` flags only the FUSE clients get (`spec.fuse.options`).
    pub fuse_options: BTreeMap<String, String>,
    pub secrets: Vec<SecretEnv>,
    pub cache: Vec<CacheLevel>,
    /// `mounts[0].readOnly`: every client mounts read-only.
    pub read_only: bool,
    /// A `ReadOnlyMany` access mode (the default): the FUSE clients mount read-only, with long
    /// attribute/entry caches unless the options set them (as Fluid does).
    pub fuse_read_only: bool,
}

/// Encrypt-option names JuiceFS understands, and the environment variable each becomes.
/// `ACCESS_KEY`/`SECRET_KEY`/`META_PASSWORD` are read by juicefs itself; `METAURL` is named in the argv
/// as `$(METAURL)`, which Kubernetes expands when it starts the container.
const SECRET_ENVS: &[(&str, &str)] = &[
    ("metaurl", "METAURL"),
    ("access-key", "ACCESS_KEY"),
    ("secret-key", "SECRET_KEY"),
    ("meta-password", "META_PASSWORD"),
];

pub fn build(
    dataset: &DatasetSpec,
    runtime: &JuiceFSRuntimeSpec,
    key: &DatasetKey,
) -> Result<JuiceFsConfig, InputError> {
    let mount = match dataset.mounts.as_slice() {
        [m] => m,
        [] => return Err(bad("spec.mounts", "a JuiceFS dataset needs one mount")),
        _ => return Err(bad("spec.mounts", "a JuiceFS dataset takes exactly one mount; split the data over datasets")),
    };
    let subdir = parse_mount_point(&mount.mount_point).map_err(|m| bad("spec.mounts[0].mountPoint", m))?;
    if mount.name.is_empty() {
        return Err(bad("spec.mounts[0].name", "required: the JuiceFS file-system name"));
    }
    unsupported(dataset)?;

    let mut format_options = BTreeMap::new();
    let mut mount_options = BTreeMap::new();
    let shared = dataset.shared_options.iter().map(|kv| ("spec.sharedOptions", kv));
    let own = mount.options.iter().map(|kv| ("spec.mounts[0].options", kv));
    for (field, (key, value)) in shared.chain(own) {
        let field = format!("{field}.{key}");
        check_option_key(key).map_err(|m| bad(&field, m))?;
        let target = match juicefs_flags::route_dataset_option(key).map_err(|m| bad(&field, m))? {
            Command::Format => &mut format_options,
            Command::Mount => &mut mount_options,
        };
        target.insert(key.clone(), value.clone());
    }
    let worker_options = component_options("spec.worker.options", runtime.worker.as_ref().map(|w| &w.options))?;
    let fuse_options = component_options("spec.fuse.options", runtime.fuse.as_ref().map(|f| &f.component.options))?;

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
        cache_name: key.cache_dir_name(),
        subdir,
        format_options,
        mount_options,
        worker_options,
        fuse_options,
        secrets,
        cache,
        read_only: mount.read_only.unwrap_or(false),
        fuse_read_only: dataset.effective_access_modes().iter().any(|m| m == READ_ONLY_MANY),
    })
}

/// Dataset fields other cache engines use and JuiceFS cannot honour: refused, naming the field, rather
/// than silently ignored.
fn unsupported(dataset: &DatasetSpec) -> Result<(), InputError> {
    let mount = &dataset.mounts[0];
    if let Some(path) = mount.path.as_deref()
        && path != "/"
        && path.trim_end_matches('/') != format!("/{}", mount.name)
    {
        return Err(bad(
            "spec.mounts[0].path",
            format!(
                "{path:?}: the JuiceFS runtime serves its one mount at the volume's root; leave path out, or use \"/\" or \"/{}\"",
                mount.name
            ),
        ));
    }
    if mount.shared == Some(true) {
        return Err(bad(
            "spec.mounts[0].shared",
            "not supported by the JuiceFS runtime; to share a file system, give each namespace its own Dataset naming it",
        ));
    }
    if dataset.owner.is_some() {
        return Err(bad(
            "spec.owner",
            "not supported by the JuiceFS runtime: JuiceFS keeps each file's own POSIX owner; remove spec.owner (use the pods' securityContext)",
        ));
    }
    Ok(())
}

fn component_options(
    field: &str,
    options: Option<&BTreeMap<String, String>>,
) -> Result<BTreeMap<String, String>, InputError> {
    let mut out = BTreeMap::new();
    for (key, value) in options.into_iter().flatten() {
        let field = format!("{field}.{key}");
        check_option_key(key).map_err(|m| bad(&field, m))?;
        juicefs_flags::check_mount_option(key).map_err(|m| bad(&field, m))?;
        out.insert(key.clone(), value.clone());
    }
    Ok(out)
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
            if paths.iter().any(|p| p.trim_end_matches('/').is_empty()) {
                return Err(bad(
                    format!("{field}.path"),
                    "the cache directory cannot be / (the runtime's <ns>-<name> subdirectory there is removed with the runtime)",
                ));
            }
            // JuiceFS evicts once the cache reaches --cache-size: `high` (the share of the quota used
            // before eviction starts) makes that `quota × high`.
            let size_mib = match level.high.as_deref() {
                None => size_mib,
                Some(h) => {
                    let high =
                        h.parse::<f64>().map_err(|_| bad(format!("{field}.high"), format!("{h:?} is not a ratio")))?;
                    if !(high > 0.0 && high <= 1.0) {
                        return Err(bad(format!("{field}.high"), format!("{h:?} must be above 0 and at most 1")));
                    }
                    ((size_mib as f64) * high).floor().max(1.0) as u64
                }
            };
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

/// A user-supplied string as one literal argument: `$` doubled, so Kubernetes does not expand a
/// `$(VAR)` in it (which could copy a secret from the container's environment into the argv).
pub fn literal(s: &str) -> String {
    s.replace('$', "$$")
}

fn flag(key: &str, value: &str) -> String {
    if value.is_empty() { format!("--{key}") } else { format!("--{key}={}", literal(value)) }
}

/// `juicefs format --no-update [dataset format flags] $(METAURL) <name>`: creates the file system when it
/// does not exist and never changes an existing one (run by each client's init container).
pub fn format_command(cfg: &JuiceFsConfig) -> Vec<String> {
    let mut argv = vec![JUICEFS.to_string(), "format".into(), "--no-update".into()];
    argv.extend(cfg.format_options.iter().map(|(k, v)| flag(k, v)));
    argv.push("$(METAURL)".into());
    argv.push(literal(&cfg.fs_name));
    argv
}

/// Attribute and entry cache timeout (seconds) of read-only FUSE clients unless the options set them:
/// nothing changes under a read-only mount but through other clients.
pub const READ_ONLY_CACHE_SECONDS: &str = "7200";

/// `juicefs mount` in the foreground at `mount_path`, serving metrics at `$(POD_IP):<metrics_port>` —
/// or, with `metrics_port` `None` (`disablePrometheus`), on a random loopback port nothing can reach
/// (JuiceFS always serves them) — with the dataset's mount flags and the role's own. JuiceFS creates a
/// missing mount point; it mounts *over* a dead FUSE mount left there (see [`FUSE_START_SCRIPT`]).
/// What the FUSE container runs before `juicefs mount`: a restarted FUSE container finds its previous
/// client's mount at the mount point, dead (the client died with the container). JuiceFS 1.4 mounts over
/// it, so the dead layer would stay under the live one and on the host after the pod is gone (seen on a
/// real kubelet). The script detaches every layer at the mount point (its last argument; at most 16),
/// then `exec`s the command. Fixed text: the command's arguments — user values among them — reach the
/// shell only as positional parameters, which it never parses.
pub const FUSE_START_SCRIPT: &str =
    r#"for mp; do :; done; i=0; while [ "$i" -lt 16 ] && umount -l "$mp" 2>/dev/null; do i=$((i+1)); done; exec "$@""#;

/// The FUSE container's command: [`FUSE_START_SCRIPT`] in `sh`, then `mount` (a [`mount_command`]).
pub fn fuse_start_command(mount: Vec<String>) -> Vec<String> {
    let mut argv = vec!["sh".to_string(), "-c".into(), FUSE_START_SCRIPT.into(), "juicefs-fuse".into()];
    argv.extend(mount);
    argv
}

pub fn mount_command(cfg: &JuiceFsConfig, role: Role, mount_path: &str, metrics_port: Option<i32>) -> Vec<String> {
    let mut argv = vec![JUICEFS.to_string(), "mount".into(), "--no-agent".into(), "--no-usage-report".into()];
    argv.push(match metrics_port {
        Some(port) => format!("--metrics=$(POD_IP):{port}"),
        None => "--metrics=127.0.0.1:0".into(),
    });
    if let Some(sub) = &cfg.subdir {
        argv.push(format!("--subdir={}", literal(sub)));
    }
    let dirs: Vec<String> = cfg
        .cache
        .iter()
        .flat_map(|l| l.paths.iter().map(|p| format!("{}/{}", p.trim_end_matches('/'), cfg.cache_name)))
        .collect();
    if !dirs.is_empty() {
        argv.push(format!("--cache-dir={}", literal(&dirs.join(":"))));
        argv.push(format!("--cache-size={}", cfg.cache.iter().map(|l| l.size_mib).sum::<u64>()));
    }
    if let Some(ratio) = cfg.cache.iter().find_map(|l| l.free_space_ratio.as_ref()) {
        argv.push(format!("--free-space-ratio={}", literal(ratio)));
    }
    let mut options = cfg.mount_options.clone();
    let own = match role {
        Role::Worker => &cfg.worker_options,
        Role::Fuse => &cfg.fuse_options,
    };
    options.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    let read_only = cfg.read_only || (role == Role::Fuse && cfg.fuse_read_only);
    if read_only {
        options.insert("read-only".into(), String::new());
    }
    if role == Role::Fuse && cfg.fuse_read_only {
        for flag in ["attr-cache", "entry-cache"] {
            options.entry(flag.into()).or_insert_with(|| READ_ONLY_CACHE_SECONDS.into());
        }
    }
    argv.extend(options.iter().map(|(k, v)| flag(k, v)));
    argv.push("$(METAURL)".into());
    argv.push(literal(mount_path));
    argv
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ferrofluid_api::Mount;
    use ferrofluid_api::common::{EncryptOptionSource, SecretKeySelector};
    use ferrofluid_api::juicefs_runtime::{ComponentSpec, FuseSpec, Level, TieredStore};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn secret(name: &str, key: &str) -> EncryptOption {
        EncryptOption {
            name: name.into(),
            value_from: EncryptOptionSource {
                secret_key_ref: SecretKeySelector { name: "jfs".into(), key: key.into() },
            },
        }
    }

    pub fn key() -> DatasetKey {
        DatasetKey::new("default", "jfsdemo")
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
        let cfg = build(&ds, &rt, &key()).expect("valid");
        assert_eq!(cfg.fs_name, "test");
        assert_eq!(cfg.subdir.as_deref(), Some("/demo"));
        assert_eq!(cfg.format_options.get("bucket").map(String::as_str), Some("/var/jfs/bucket"));
        assert_eq!(cfg.secrets, vec![SecretEnv { env: "METAURL", secret: "jfs".into(), key: "metaurl".into() }]);
        assert_eq!(cfg.cache[0].size_mib, 40960);
        assert_eq!(cfg.cache[0].paths, ["/dev/shm"]);
    }

    #[test]
    fn commands_are_argv_without_secrets() {
        let (mut ds, rt) = seed();
        ds.mounts[0].encrypt_options.push(secret("secret-key", "sk"));
        ds.mounts[0].options.insert("writeback".into(), String::new());
        ds.mounts[0].options.insert("block-size".into(), "4096".into());
        let cfg = build(&ds, &rt, &key()).expect("valid");
        assert_eq!(
            format_command(&cfg),
            ["juicefs", "format", "--no-update", "--block-size=4096", "--bucket=/var/jfs/bucket", "$(METAURL)", "test"]
        );
        assert_eq!(
            mount_command(&cfg, Role::Fuse, "/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse", Some(9567)),
            [
                "juicefs",
                "mount",
                "--no-agent",
                "--no-usage-report",
                "--metrics=$(POD_IP):9567",
                "--subdir=/demo",
                "--cache-dir=/dev/shm/default-jfsdemo",
                "--cache-size=40960",
                // ReadOnlyMany by default: a read-only FUSE client with long caches, as Fluid mounts it.
                "--attr-cache=7200",
                "--entry-cache=7200",
                "--read-only",
                "--writeback",
                "$(METAURL)",
                "/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse",
            ]
        );
        let worker = mount_command(&cfg, Role::Worker, "/m", Some(1));
        assert!(!worker.contains(&"--read-only".to_string()), "workers stay writable");
        let all = [format_command(&cfg), worker].concat().join(" ");
        assert!(!all.contains("sk"), "secret key names must not leak into the argv");
    }

    #[test]
    fn each_runtime_caches_in_its_own_directory() {
        // Two datasets of one file system (`test`) in different namespaces: distinct cache directories,
        // so one runtime's cleanup never removes the other's live cache.
        let (ds, rt) = seed();
        let a = build(&ds, &rt, &DatasetKey::new("team-a", "data")).expect("valid");
        let b = build(&ds, &rt, &DatasetKey::new("team-b", "data")).expect("valid");
        let dir = |c: &JuiceFsConfig| {
            mount_command(c, Role::Fuse, "/f", None).into_iter().find(|a| a.starts_with("--cache-dir"))
        };
        assert_eq!(dir(&a).as_deref(), Some("--cache-dir=/dev/shm/team-a-data"));
        assert_eq!(dir(&b).as_deref(), Some("--cache-dir=/dev/shm/team-b-data"));
    }

    #[test]
    fn fluid_fields_work_or_are_refused() {
        // `high`: JuiceFS evicts at --cache-size, so the cache holds at most quota × high.
        let (ds, mut rt) = seed();
        rt.tieredstore.as_mut().expect("levels").levels[0].high = Some("0.5".into());
        let cfg = build(&ds, &rt, &key()).expect("valid");
        assert_eq!(cfg.cache[0].size_mib, 20480);
        // The user's own cache timeouts win over the read-only defaults.
        let (mut ds, rt) = seed();
        ds.mounts[0].options.insert("attr-cache".into(), "5".into());
        let fuse = mount_command(&build(&ds, &rt, &key()).expect("valid"), Role::Fuse, "/f", Some(2));
        assert!(fuse.contains(&"--attr-cache=5".to_string()) && fuse.contains(&"--entry-cache=7200".to_string()));
        // disablePrometheus: metrics only on a random loopback port.
        assert!(
            mount_command(&build(&ds, &rt, &key()).expect("valid"), Role::Fuse, "/f", None)
                .contains(&"--metrics=127.0.0.1:0".to_string())
        );
        // path: the root, or Fluid's default `/<name>`; anything else is refused naming the field.
        for ok in ["/", "/test", "/test/"] {
            let (mut ds, rt) = seed();
            ds.mounts[0].path = Some(ok.into());
            assert!(build(&ds, &rt, &key()).is_ok(), "{ok}");
        }
        let refused = |f: &dyn Fn(&mut DatasetSpec)| {
            let (mut ds, rt) = seed();
            f(&mut ds);
            build(&ds, &rt, &key()).expect_err("refused").field
        };
        assert_eq!(refused(&|d| d.mounts[0].path = Some("/elsewhere".into())), "spec.mounts[0].path");
        assert_eq!(refused(&|d| d.mounts[0].shared = Some(true)), "spec.mounts[0].shared");
        assert_eq!(refused(&|d| d.owner = Some(Default::default())), "spec.owner");
        let (mut ds, rt) = seed();
        ds.mounts[0].shared = Some(false);
        assert!(build(&ds, &rt, &key()).is_ok(), "shared: false is what JuiceFS does anyway");
    }

    #[test]
    fn role_options_reach_only_their_role() {
        let (ds, mut rt) = seed();
        rt.worker = Some(ComponentSpec { options: [("prefetch".into(), "3".into())].into(), ..Default::default() });
        rt.fuse = Some(FuseSpec {
            component: ComponentSpec { options: [("attr-cache".into(), "7".into())].into(), ..Default::default() },
            ..Default::default()
        });
        let cfg = build(&ds, &rt, &key()).expect("valid");
        let worker = mount_command(&cfg, Role::Worker, "/w", Some(1));
        let fuse = mount_command(&cfg, Role::Fuse, "/f", Some(2));
        assert!(worker.contains(&"--prefetch=3".to_string()) && !worker.contains(&"--attr-cache=7".to_string()));
        assert!(fuse.contains(&"--attr-cache=7".to_string()) && !fuse.contains(&"--prefetch=3".to_string()));
    }

    #[test]
    fn user_values_are_literal_arguments() {
        let (mut ds, mut rt) = seed();
        let hostile = "$(METAURL) `id`; rm -rf / | x && y 'q\"\n--evil";
        ds.mounts[0].mount_point = "juicefs:///a $(touch /x)".into();
        ds.mounts[0].options.insert("storage-class".into(), hostile.into());
        rt.fuse = Some(FuseSpec {
            component: ComponentSpec { options: [("log".into(), hostile.into())].into(), ..Default::default() },
            ..Default::default()
        });
        let cfg = build(&ds, &rt, &key()).expect("valid");
        let escaped = hostile.replace('$', "$$");
        assert!(format_command(&cfg).contains(&format!("--storage-class={escaped}")));
        let mount = mount_command(&cfg, Role::Fuse, "/f", Some(2));
        assert!(mount.contains(&format!("--log={escaped}")), "{mount:?}");
        assert!(mount.contains(&"--subdir=/a $$(touch /x)".to_string()), "{mount:?}");
        // Only ferrofluid's own references are left for Kubernetes to expand.
        let refs: Vec<&String> = mount.iter().filter(|a| a.replace("$$", "").contains("$(")).collect();
        assert_eq!(refs, ["--metrics=$(POD_IP):2", "$(METAURL)"]);
    }

    #[test]
    fn options_are_checked_by_flag_table() {
        let (ds, rt) = seed();
        let mut unknown = ds.clone();
        unknown.mounts[0].options.insert("no-such-flag".into(), "1".into());
        let err = build(&unknown, &rt, &key()).unwrap_err();
        assert_eq!(err.field, "spec.mounts[0].options.no-such-flag");
        assert!(err.message.contains("not a flag"), "{err}");

        let mut secret_like = ds.clone();
        secret_like.shared_options.insert("secret-key".into(), "x".into());
        let err = build(&secret_like, &rt, &key()).unwrap_err();
        assert_eq!(err.field, "spec.sharedOptions.secret-key");
        assert!(err.message.contains("encryptOptions"), "{err}");

        let mut fuse_key = rt.clone();
        fuse_key.fuse = Some(FuseSpec {
            component: ComponentSpec {
                options: [("writeback $(touch /x)".into(), String::new())].into(),
                ..Default::default()
            },
            ..Default::default()
        });
        assert_eq!(build(&ds, &fuse_key, &key()).unwrap_err().field, "spec.fuse.options.writeback $(touch /x)");

        let mut format_in_worker = rt;
        format_in_worker.worker =
            Some(ComponentSpec { options: [("trash-days".into(), "0".into())].into(), ..Default::default() });
        let err = build(&ds, &format_in_worker, &key()).unwrap_err();
        assert_eq!(err.field, "spec.worker.options.trash-days");
        assert!(err.message.contains("Dataset's options"), "{err}");
    }

    #[test]
    fn input_errors_name_the_field() {
        let (ds, rt) = seed();
        let mut no_meta = ds.clone();
        no_meta.mounts[0].encrypt_options.clear();
        assert_eq!(build(&no_meta, &rt, &key()).unwrap_err().field, "spec.mounts[0].encryptOptions");

        let mut other_scheme = ds.clone();
        other_scheme.mounts[0].mount_point = "s3://bucket/data".into();
        assert_eq!(build(&other_scheme, &rt, &key()).unwrap_err().field, "spec.mounts[0].mountPoint");

        let mut unknown_secret = ds.clone();
        unknown_secret.mounts[0].encrypt_options.push(secret("password", "p"));
        assert_eq!(build(&unknown_secret, &rt, &key()).unwrap_err().field, "spec.mounts[0].encryptOptions[1].name");

        let mut bad_key = ds.clone();
        bad_key.mounts[0].options.insert("Cache Size".into(), "1".into());
        assert_eq!(build(&bad_key, &rt, &key()).unwrap_err().field, "spec.mounts[0].options.Cache Size");

        let mut two = ds.clone();
        two.mounts.push(two.mounts[0].clone());
        assert_eq!(build(&two, &rt, &key()).unwrap_err().field, "spec.mounts");

        let mut no_name = ds;
        no_name.mounts[0].name.clear();
        assert_eq!(build(&no_name, &rt, &key()).unwrap_err().field, "spec.mounts[0].name");
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

    /// The script for real, in `sh`, with a stand-in `umount` that detaches two layers and then finds
    /// none: every layer at the mount point (the last argument) is detached, then the command runs with
    /// its arguments exactly as given (nothing in them is expanded or split).
    #[test]
    fn the_fuse_start_script_detaches_every_layer_then_runs_the_command_untouched() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ff-fuse-start-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let log = dir.join("umount.log");
        let umount = dir.join("umount");
        std::fs::write(
            &umount,
            format!("#!/bin/sh\necho \"$*\" >> '{}'\n[ \"$(wc -l < '{}')\" -le 2 ]\n", log.display(), log.display()),
        )
        .expect("stand-in umount");
        std::fs::set_permissions(&umount, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let hostile = "$(touch /tmp/x);`id` *";
        let out = std::process::Command::new("sh")
            .args(
                fuse_start_command(vec![
                    "printf".into(),
                    "%s\\n".into(),
                    "a b".into(),
                    hostile.into(),
                    "/mnt/p q".into(),
                ])
                .iter()
                .skip(1),
            )
            .env("PATH", format!("{}:/usr/bin:/bin", dir.display()))
            .output()
            .expect("sh");
        let calls = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("a b\n{hostile}\n/mnt/p q\n"));
        assert_eq!(calls, "-l /mnt/p q\n".repeat(3), "two layers detached, the third call finds none");
    }
}

//! The JuiceFS flags options may name, and which command each goes to. The tables are the flags of
//! JuiceFS Community Edition 1.4 (`juicefs format --help`, `juicefs mount --help` and the global flags);
//! the e2e test `juicefs_flags` checks them against the installed `juicefs`. Pure.

/// Flags of `juicefs format`.
pub const FORMAT_FLAGS: &[&str] = &[
    "force",
    "no-update",
    "storage",
    "bucket",
    "access-key",
    "secret-key",
    "session-token",
    "storage-class",
    "tag",
    "block-size",
    "compress",
    "encrypt-rsa-key",
    "encrypt-algo",
    "hash-prefix",
    "shards",
    "capacity",
    "inodes",
    "trash-days",
    "enable-acl",
    "ranger-rest-url",
    "ranger-service",
    "kerberos-config-file",
];

/// Flags of `juicefs mount`, including `o` (`-o`, FUSE options).
pub const MOUNT_FLAGS: &[&str] = &[
    "background",
    "no-syslog",
    "log",
    "force",
    "hide-internal",
    "update-fstab",
    "disable-transparent-hugepage",
    "enable-xattr",
    "enable-cap",
    "enable-selinux",
    "enable-ioctl",
    "root-squash",
    "all-squash",
    "prefix-internal",
    "max-fuse-io",
    "umask",
    "o",
    "subdir",
    "backup-meta",
    "backup-skip-trash",
    "heartbeat",
    "read-only",
    "no-bgjob",
    "atime-mode",
    "skip-dir-nlink",
    "skip-dir-mtime",
    "sort-dir",
    "fast-statfs",
    "network-interfaces",
    "attr-cache",
    "entry-cache",
    "dir-entry-cache",
    "negative-entry-cache",
    "readdir-cache",
    "open-cache",
    "open-cache-limit",
    "storage",
    "bucket",
    "storage-class",
    "tag",
    "get-timeout",
    "put-timeout",
    "io-retries",
    "max-uploads",
    "max-downloads",
    "max-stage-write",
    "max-deletes",
    "upload-limit",
    "download-limit",
    "check-storage",
    "buffer-size",
    "max-readahead",
    "prefetch",
    "writeback",
    "writeback-threshold-size",
    "upload-delay",
    "upload-hours",
    "cache-dir",
    "cache-mode",
    "cache-size",
    "cache-items",
    "free-space-ratio",
    "cache-partial-only",
    "cache-large-write",
    "verify-cache-checksum",
    "cache-eviction",
    "cache-scan-interval",
    "cache-expire",
    "metrics",
    "custom-labels",
    "consul",
    "no-usage-report",
];

/// Global flags; `juicefs mount` accepts them after the command name too.
pub const GLOBAL_FLAGS: &[&str] = &["verbose", "quiet", "trace", "log-id", "no-agent", "pyroscope", "no-color"];

/// Format flags ferrofluid sets itself, and why a user may not.
const RESERVED_FORMAT: &[(&str, &str)] = &[
    ("force", "would overwrite the existing format of the file system"),
    ("no-update", "ferrofluid always formats with --no-update so an existing volume is never changed"),
];

/// Mount flags ferrofluid sets itself, and where their value comes from instead.
const RESERVED_MOUNT: &[(&str, &str)] = &[
    ("metrics", "the metrics address is set by ferrofluid (host ports are allocated per runtime)"),
    ("background", "JuiceFS clients run in the foreground of their container"),
    ("cache-dir", "cache directories come from spec.tieredstore.levels[].path"),
    ("cache-size", "the cache size comes from spec.tieredstore.levels[].quota"),
    ("subdir", "the sub-directory comes from the Dataset's mountPoint (juicefs:///<subdir>)"),
    ("update-fstab", "would change the node's /etc/fstab"),
];

/// Which command an option goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Format,
    Mount,
}

/// Where a Dataset option (`mounts[].options`, `sharedOptions`) goes: `juicefs format` when it takes the
/// flag, else `juicefs mount` (of workers and FUSE clients alike). `Err` says why the key is refused.
pub fn route_dataset_option(key: &str) -> Result<Command, String> {
    if FORMAT_FLAGS.contains(&key) {
        return match reserved(RESERVED_FORMAT, key) {
            Some(why) => Err(format!("--{key} cannot be set: {why}")),
            None => Ok(Command::Format),
        };
    }
    mount_flag(key).map(|()| Command::Mount)
}

/// Checks a worker or FUSE option (`spec.worker.options`, `spec.fuse.options`): a `juicefs mount` flag.
pub fn check_mount_option(key: &str) -> Result<(), String> {
    if !is_mount_flag(key) && FORMAT_FLAGS.contains(&key) {
        return Err(format!(
            "--{key} is a `juicefs format` flag: set it in the Dataset's options, which configure the file system"
        ));
    }
    mount_flag(key)
}

fn is_mount_flag(key: &str) -> bool {
    MOUNT_FLAGS.contains(&key) || GLOBAL_FLAGS.contains(&key)
}

fn mount_flag(key: &str) -> Result<(), String> {
    if !is_mount_flag(key) {
        return Err(format!(
            "--{key} is not a flag of `juicefs format` or `juicefs mount` (JuiceFS Community Edition 1.4)"
        ));
    }
    match reserved(RESERVED_MOUNT, key) {
        Some(why) => Err(format!("--{key} cannot be set: {why}")),
        None => Ok(()),
    }
}

fn reserved(table: &[(&str, &'static str)], key: &str) -> Option<&'static str> {
    table.iter().find(|(k, _)| *k == key).map(|(_, why)| *why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_options_go_where_they_belong() {
        assert_eq!(route_dataset_option("bucket"), Ok(Command::Format));
        assert_eq!(route_dataset_option("storage"), Ok(Command::Format));
        assert_eq!(route_dataset_option("block-size"), Ok(Command::Format));
        assert_eq!(route_dataset_option("trash-days"), Ok(Command::Format));
        assert_eq!(route_dataset_option("compress"), Ok(Command::Format));
        assert_eq!(route_dataset_option("writeback"), Ok(Command::Mount));
        assert_eq!(route_dataset_option("verbose"), Ok(Command::Mount));
        assert!(route_dataset_option("force").expect_err("reserved").contains("overwrite"));
        assert!(route_dataset_option("metrics").is_err());
        assert!(route_dataset_option("cache-dir").expect_err("reserved").contains("tieredstore"));
        assert!(route_dataset_option("no-such-flag").expect_err("unknown").contains("not a flag"));
    }

    #[test]
    fn component_options_are_mount_flags() {
        assert_eq!(check_mount_option("writeback"), Ok(()));
        assert_eq!(check_mount_option("bucket"), Ok(()), "mount takes --bucket too");
        assert_eq!(check_mount_option("force"), Ok(()), "mount's --force only re-mounts");
        assert!(check_mount_option("block-size").expect_err("format only").contains("Dataset's options"));
        assert!(check_mount_option("background").is_err());
        assert!(check_mount_option("subdir").expect_err("reserved").contains("mountPoint"));
        assert!(check_mount_option("bogus").is_err());
    }

    /// The flags a `--help` text lists (`--name`, and `-o` for the one single-letter-only flag).
    fn flags_in_help(help: &str) -> Vec<String> {
        let mut flags: Vec<String> = help
            .lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with('-'))
            .filter_map(|l| {
                let names: Vec<&str> = l.split([' ', ',']).take_while(|t| t.starts_with('-') || t.is_empty()).collect();
                let long = names.iter().find_map(|t| t.strip_prefix("--"));
                long.or_else(|| names.iter().find_map(|t| t.strip_prefix('-'))).map(str::to_string)
            })
            .filter(|f| f != "help" && f != "version")
            .collect();
        flags.sort();
        flags
    }

    fn sorted(table: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = table.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    /// The tables are exactly the flags of the JuiceFS that `hack/setup.sh` installs (the version the
    /// tests mount with). A JuiceFS upgrade that adds or drops a flag fails here until the tables follow.
    #[test]
    fn tables_match_the_installed_juicefs() {
        let cache = std::env::var_os("FERROFLUID_CACHE").map(std::path::PathBuf::from).unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".cache/ferrofluid")
        });
        let juicefs = cache.join("bin/juicefs");
        assert!(juicefs.exists(), "{} missing: run hack/setup.sh", juicefs.display());
        let help = |args: &[&str]| {
            let out = std::process::Command::new(&juicefs).args(args).output().expect("running juicefs");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let global = help(&["--help"]);
        let global = &global[global.find("GLOBAL OPTIONS").expect("global options")..];
        assert_eq!(flags_in_help(global), sorted(GLOBAL_FLAGS));
        let options = |cmd: &str| {
            let h = help(&[cmd, "--help"]);
            h[h.find("OPTIONS").expect("options")..].to_string()
        };
        assert_eq!(flags_in_help(&options("format")), sorted(FORMAT_FLAGS));
        assert_eq!(flags_in_help(&options("mount")), sorted(MOUNT_FLAGS));
    }

    #[test]
    fn tables_have_no_duplicates() {
        for table in [FORMAT_FLAGS, MOUNT_FLAGS, GLOBAL_FLAGS] {
            let mut sorted = table.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), table.len());
        }
    }
}

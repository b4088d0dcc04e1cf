//! A copy Job's report, pure: `juicefs sync` runs under a fixed `sh` script that passes its output
//! through unchanged, keeps its exit code, and — when it succeeded — turns its closing summary
//! (`Found: 7, excluded: 0 (0 B), skipped: 1 (6 B), copied: 6 (5.63 MiB), …`) into the same one-line JSON
//! report a warm-up part writes (`part_report`), in the termination-message file: the files found in the
//! range, those handled (copied, already up to date, or excluded by a filter), and the bytes copied or
//! already up to date. juicefs prints sizes to three
//! significant digits, so a migration's bytes are that exact and no more; its file counts are exact.
//!
//! The juicefs command line reaches the script as its arguments (`"$@"`), never parsed by the shell.

/// The script; `sh -c SCRIPT ferrofluid-sync juicefs sync …`. Needs `FF_PART` and `FF_RESULT`.
pub const SCRIPT: &str = r#"set -u
work=$(mktemp -d) || exit 1
trap 'rm -rf -- "$work"' EXIT
{ "$@"; echo "$?" > "$work/rc"; } 2>&1 | tee "$work/log"
rc=$(cat "$work/rc" 2>/dev/null || echo 1)
[ "$rc" -eq 0 ] || exit "$rc"
summary=$(grep -o 'Found: [0-9].*' "$work/log" | tail -n 1)
[ -n "$summary" ] || exit 0
printf '%s\n' "$summary" | awk -v part="$FF_PART" '
  function size(s,   n, u) {
    n = s + 0; u = s; sub(/^[0-9.]+ */, "", u)
    if (u ~ /^Ki/) n *= 1024; else if (u ~ /^Mi/) n *= 1048576; else if (u ~ /^Gi/) n *= 1073741824
    else if (u ~ /^Ti/) n *= 1099511627776; else if (u ~ /^Pi/) n *= 1125899906842624
    return n
  }
  function count(name,   r) {
    if (!match($0, name ": [0-9]+")) return 0
    r = substr($0, RSTART, RLENGTH); sub(/.*: /, "", r); return r + 0
  }
  function bytes(name,   r) {
    if (!match($0, name ": [0-9]+ [(][^)]*[)]")) return 0
    r = substr($0, RSTART, RLENGTH); sub(/.*[(]/, "", r); sub(/[)]$/, "", r); return size(r)
  }
  { files = count("copied") + count("skipped") + count("excluded"); b = bytes("copied") + bytes("skipped")
    printf "{\"part\":%s,\"files\":%.0f,\"bytes\":%.0f,\"totalFiles\":%.0f,\"totalBytes\":%.0f}", part, files, b, count("Found"), b }
' > "$FF_RESULT"
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::part_report;

    /// The script on a real shell with `juicefs` replaced by a stub printing what juicefs prints.
    fn run(stub_body: &str, tag: &str) -> (std::process::Output, Option<String>) {
        let dir = std::env::temp_dir().join(format!("ff-sync-report-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let stub = dir.join("juicefs");
        std::fs::write(&stub, format!("#!/bin/sh\n{stub_body}\n")).expect("stub");
        std::process::Command::new("chmod").arg("+x").arg(&stub).status().expect("chmod");
        let result = dir.join("result");
        let out = std::process::Command::new("sh")
            .args(["-c", SCRIPT, "ferrofluid-sync"])
            .arg(&stub)
            .args(["sync", "--exclude=$(touch pwned)", "file:///src/", "jfs://FF_TO_META/in/"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("FF_PART", "1")
            .env("FF_RESULT", &result)
            .current_dir(&dir)
            .output()
            .expect("sh");
        let report = std::fs::read_to_string(&result).ok();
        assert!(!dir.join("pwned").exists(), "an argument was evaluated");
        let _ = std::fs::remove_dir_all(&dir);
        (out, report)
    }

    #[test]
    fn the_summary_becomes_the_report_and_the_output_passes_through() {
        let line = "echo \"$@\"; echo '2026/12/06 05:19:44.775500 juicefs[1] <INFO>: Found: 8, excluded: 1 (12 B), skipped: 1 (6 B), copied: 6 (5.63 MiB), extra: 1 (0 B), failed: 0 [Sync@sync.go:2238]' >&2";
        let (out, report) = run(line, "ok");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(log.contains("--exclude=$(touch pwned)") && log.contains("Found: 8"), "{log}");
        let r = part_report::parse(&report.expect("report")).expect("parses");
        assert_eq!((r.part, r.files, r.total_files), (1, 8, 8));
        assert_eq!(r.bytes, (5.63 * 1048576.0f64).round() as i64 + 6);
        assert_eq!(r.total_bytes, r.bytes);
    }

    #[test]
    fn a_failed_sync_keeps_its_exit_code_and_reports_nothing() {
        let (out, report) = run("echo 'Found: 3, copied: 1 (1 B), failed: 2' >&2; exit 2", "fail");
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(report, None);
        let (out, report) = run("echo no summary", "quiet");
        assert!(out.status.success());
        assert_eq!(report, None);
    }
}

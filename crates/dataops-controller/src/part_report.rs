//! What a warm-up pod reports when its part is done (its termination message, written by
//! `warmup_job::SCRIPT`), and a node's files and bytes from its parts' reports, pure.

use serde::Deserialize;

/// One part's report: its files and bytes, and those of the node's whole list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartReport {
    pub part: i32,
    pub files: i64,
    pub bytes: i64,
    pub total_files: i64,
    pub total_bytes: i64,
}

/// A termination message read as a report; anything else (a failed pod's log tail) is none.
pub fn parse(message: &str) -> Option<PartReport> {
    serde_json::from_str::<PartReport>(message.trim())
        .ok()
        .filter(|r| r.part >= 0 && r.files >= 0 && r.bytes >= 0 && r.total_files >= r.files && r.total_bytes >= r.bytes)
}

/// A node's files and bytes: done and in its list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub files_done: i64,
    pub files: i64,
    pub bytes_done: i64,
    pub bytes: i64,
}

/// The node's counts from its parts' reports (a part retried after a failure is counted once; the
/// list's size as the latest part saw it). `None` before any part has reported. A node whose Job is
/// Complete has done its whole list, even if a report is missing (its pod was removed).
pub fn node_counts(reports: &[PartReport], complete: bool) -> Option<Counts> {
    let latest = reports.iter().max_by_key(|r| r.part)?;
    let mut seen = std::collections::BTreeMap::new();
    for r in reports {
        seen.entry(r.part).or_insert(*r);
    }
    let (files, bytes) = (latest.total_files, latest.total_bytes);
    let files_done: i64 = seen.values().map(|r| r.files).sum();
    let bytes_done: i64 = seen.values().map(|r| r.bytes).sum();
    Some(if complete {
        Counts { files_done: files, files, bytes_done: bytes, bytes }
    } else {
        Counts { files_done: files_done.min(files), files, bytes_done: bytes_done.min(bytes), bytes }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(part: i32, files: i64, bytes: i64) -> PartReport {
        PartReport { part, files, bytes, total_files: 10, total_bytes: 1000 }
    }

    #[test]
    fn the_script_s_message_parses_and_a_log_tail_does_not() {
        let m = r#"{"part":2,"files":3,"bytes":300,"totalFiles":10,"totalBytes":1000}"#;
        assert_eq!(parse(m), Some(r(2, 3, 300)));
        assert_eq!(parse("juicefs: no such file"), None);
        assert_eq!(parse(r#"{"part":0,"files":11,"bytes":0,"totalFiles":10,"totalBytes":0}"#), None);
        assert_eq!(parse(r#"{"part":-1,"files":1,"bytes":1,"totalFiles":1,"totalBytes":1}"#), None);
    }

    #[test]
    fn parts_add_up_once_each_and_complete_means_everything() {
        assert_eq!(node_counts(&[], false), None);
        let c = node_counts(&[r(0, 3, 300), r(1, 2, 200), r(0, 3, 300)], false).expect("counts");
        assert_eq!(c, Counts { files_done: 5, files: 10, bytes_done: 500, bytes: 1000 });
        let done = node_counts(&[r(0, 3, 300)], true).expect("counts");
        assert_eq!((done.files_done, done.bytes_done), (10, 1000));
    }
}

//! Cache labels on the nodes where workers run, and the FUSE label. Pure planning of merge patches
//! that touch only this dataset's keys and `fluid.io/dataset-num`.

use ferrofluid_api::keys::{self, CapacityKind, DatasetKey};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Labels a node gets while one of this dataset's workers runs there.
pub fn worker_labels(key: &DatasetKey, mem_bytes: u64, disk_bytes: u64) -> BTreeMap<String, String> {
    BTreeMap::from([
        (key.worker_node_label(), keys::LABEL_TRUE.to_string()),
        (key.juicefs_worker_node_label(), keys::LABEL_TRUE.to_string()),
        (key.capacity_node_label(CapacityKind::Memory), bytes_label(mem_bytes)),
        (key.capacity_node_label(CapacityKind::Disk), bytes_label(disk_bytes)),
        (key.capacity_node_label(CapacityKind::Total), bytes_label(mem_bytes + disk_bytes)),
    ])
}

/// Every key `worker_labels` may set (for removal).
pub fn worker_label_keys(key: &DatasetKey) -> Vec<String> {
    worker_labels(key, 0, 0).into_keys().collect()
}

/// Label-safe size: `40GiB`, `512MiB`, `0B`.
pub fn bytes_label(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    for (unit, size) in UNITS {
        if bytes >= size {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

/// Number of datasets caching on a node, from its labels.
fn dataset_count(labels: &BTreeMap<String, String>) -> usize {
    let prefix = format!("{}s-{}-", keys::LABEL_PREFIX, keys::JUICEFS);
    labels.keys().filter(|k| k.starts_with(&prefix)).count()
}

/// Merge patch bringing `current` to `current` ∪ `set` minus `remove`, with `fluid.io/dataset-num`
/// recounted, guarded by `resource_version` (a concurrent writer makes it fail with 409).
/// `None` when nothing would change.
pub fn plan(
    current: &BTreeMap<String, String>,
    set: &BTreeMap<String, String>,
    remove: &[String],
    resource_version: Option<&str>,
) -> Option<Value> {
    let mut next = current.clone();
    for k in remove {
        next.remove(k);
    }
    next.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
    let count = dataset_count(&next);
    if count > 0 {
        next.insert(keys::LABEL_DATASET_NUM.into(), count.to_string());
    } else {
        next.remove(keys::LABEL_DATASET_NUM);
    }
    if &next == current {
        return None;
    }
    let mut changes = Map::new();
    for (k, v) in &next {
        if current.get(k) != Some(v) {
            changes.insert(k.clone(), Value::String(v.clone()));
        }
    }
    for k in current.keys().filter(|k| !next.contains_key(*k)) {
        changes.insert(k.clone(), Value::Null);
    }
    Some(json!({"metadata": {"labels": changes, "resourceVersion": resource_version}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> DatasetKey {
        DatasetKey::new("default", name)
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes_label(40960 << 20), "40GiB");
        assert_eq!(bytes_label(1536 << 20), "1536MiB");
        assert_eq!(bytes_label(0), "0B");
    }

    #[test]
    fn add_then_remove_counts_datasets() {
        let empty = BTreeMap::from([("kubernetes.io/hostname".to_string(), "node-1".to_string())]);
        let a = worker_labels(&key("a"), 1 << 30, 0);
        let patch = plan(&empty, &a, &[], Some("7")).expect("adds");
        assert_eq!(patch["metadata"]["labels"]["fluid.io/dataset-num"], "1");
        assert_eq!(patch["metadata"]["labels"]["fluid.io/s-default-a"], "true");
        assert_eq!(patch["metadata"]["resourceVersion"], "7");
        assert!(patch["metadata"]["labels"].get("kubernetes.io/hostname").is_none(), "touches only our keys");

        let mut with_a = empty.clone();
        with_a.extend(a.clone());
        with_a.insert("fluid.io/dataset-num".into(), "1".into());
        assert_eq!(plan(&with_a, &a, &[], None), None, "idempotent");

        let b = worker_labels(&key("b"), 0, 1 << 30);
        assert_eq!(plan(&with_a, &b, &[], None).expect("adds b")["metadata"]["labels"]["fluid.io/dataset-num"], "2");

        let removed = plan(&with_a, &BTreeMap::new(), &worker_label_keys(&key("a")), None).expect("removes");
        let labels = removed["metadata"]["labels"].as_object().expect("labels");
        assert!(labels.values().all(Value::is_null), "{labels:?}");
        assert!(labels.contains_key("fluid.io/dataset-num"));
        assert_eq!(labels.len(), 6);
    }

    #[test]
    fn fuse_label_does_not_count_as_dataset() {
        let k = key("a");
        let set = BTreeMap::from([(k.fuse_node_label(), "true".to_string())]);
        let patch = plan(&BTreeMap::new(), &set, &[], None).expect("adds");
        assert!(patch["metadata"]["labels"].get("fluid.io/dataset-num").is_none());
    }
}

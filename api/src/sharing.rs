//! Sharing a dataset across namespaces. A Dataset whose one mount is `dataset://<namespace>/<name>` (a
//! *referring* dataset) gets no cache of its own: its PVC is bound onto the cache and FUSE clients of that
//! *source* dataset — allowed only when the source opts in with the annotation
//! [`ANNOTATION_SHARE_WITH`](crate::keys::ANNOTATION_SHARE_WITH) naming the referring namespace (or `*`).
//! Pure.

use crate::keys::{ANNOTATION_SHARE_WITH, DatasetKey};
use crate::naming::is_dns1123_label;
use crate::{Dataset, DatasetSpec};
use kube::ResourceExt;

/// Mount-point scheme of a reference to another dataset: `dataset://<namespace>/<name>`.
pub const SCHEME: &str = "dataset://";
/// The same, as the scheme name validation speaks of.
pub const SCHEME_NAME: &str = "dataset";
/// What the share-with annotation holds to allow every namespace.
pub const ANY_NAMESPACE: &str = "*";

/// Whether any mount of the dataset refers to another dataset.
pub fn is_reference(spec: &DatasetSpec) -> bool {
    spec.mounts.iter().any(|m| m.mount_point.starts_with(SCHEME))
}

/// The source a referring dataset in `namespace` names: `None` for a dataset that refers to none;
/// otherwise the source, or what is wrong with the reference (naming the field).
pub fn reference(spec: &DatasetSpec, namespace: &str, name: &str) -> Option<Result<DatasetKey, String>> {
    let (index, mount) = spec.mounts.iter().enumerate().find(|(_, m)| m.mount_point.starts_with(SCHEME))?;
    let field = format!("spec.mounts[{index}].mountPoint");
    if spec.mounts.len() != 1 {
        return Some(Err(format!("{field}: a {SCHEME}<namespace>/<name> mount must be the dataset's only mount")));
    }
    let rest = &mount.mount_point[SCHEME.len()..];
    let parsed = rest.split_once('/').filter(|(ns, n)| is_dns1123_label(ns) && is_dataset_name(n));
    Some(match parsed {
        None => Err(format!("{field}: {:?} is not {SCHEME}<namespace>/<dataset name>", mount.mount_point)),
        Some((ns, n)) if ns == namespace && n == name => Err(format!("{field}: a dataset cannot refer to itself")),
        Some((ns, n)) => Ok(DatasetKey::new(ns, n)),
    })
}

/// The namespace and name of a dataset.
pub fn key_of(ds: &Dataset) -> DatasetKey {
    DatasetKey::new(ds.namespace().unwrap_or_default(), ds.name_any())
}

/// The source a dataset validly refers to; `None` for one that refers to none or names it wrongly.
pub fn source_of(ds: &Dataset) -> Option<DatasetKey> {
    let key = key_of(ds);
    reference(&ds.spec, &key.namespace, &key.name)?.ok()
}

/// A dataset name as the CRD accepts it: a DNS-1035 label of at most 52 characters.
fn is_dataset_name(name: &str) -> bool {
    name.len() <= 52 && is_dns1123_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase())
}

/// Whether the source dataset lets datasets of `namespace` refer to it: its share-with annotation
/// lists that namespace (comma-separated, blanks ignored) or is `*`.
pub fn shared_with(source: &Dataset, namespace: &str) -> bool {
    source
        .annotations()
        .get(ANNOTATION_SHARE_WITH)
        .is_some_and(|list| list.split(',').map(str::trim).any(|n| n == ANY_NAMESPACE || n == namespace))
}

/// Every dataset among `datasets` that refers to `source` (whether allowed or not), sorted.
pub fn referring<'a>(datasets: impl IntoIterator<Item = &'a Dataset>, source: &DatasetKey) -> Vec<DatasetKey> {
    let mut found: Vec<DatasetKey> =
        datasets.into_iter().filter(|d| source_of(d).as_ref() == Some(source)).map(key_of).collect();
    found.sort();
    found
}

/// `<namespace>/<name>` of each of [`referring`]: what the source's `status.datasetRef` lists and what its
/// deletion waits for.
pub fn referrers<'a>(datasets: impl IntoIterator<Item = &'a Dataset>, source: &DatasetKey) -> Vec<String> {
    referring(datasets, source).into_iter().map(|k| format!("{}/{}", k.namespace, k.name)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mount;

    fn spec(points: &[&str]) -> DatasetSpec {
        DatasetSpec {
            mounts: points.iter().map(|p| Mount { mount_point: p.to_string(), ..Default::default() }).collect(),
            ..Default::default()
        }
    }

    fn dataset(ns: &str, name: &str, points: &[&str], share: Option<&str>) -> Dataset {
        let mut d = Dataset::new(name, spec(points));
        d.metadata.namespace = Some(ns.into());
        if let Some(s) = share {
            d.metadata.annotations = Some([(ANNOTATION_SHARE_WITH.to_string(), s.to_string())].into());
        }
        d
    }

    #[test]
    fn references_parse_and_bad_ones_name_the_field() {
        assert_eq!(reference(&spec(&["juicefs:///x"]), "b", "d"), None);
        assert_eq!(reference(&spec(&["dataset://a/src"]), "b", "d"), Some(Ok(DatasetKey::new("a", "src"))));
        for bad in ["dataset://a", "dataset://a/src/x", "dataset://A/src", "dataset:///src", "dataset://a/1x"] {
            let err = reference(&spec(&[bad]), "b", "d").unwrap().unwrap_err();
            assert!(err.starts_with("spec.mounts[0].mountPoint: "), "{bad}: {err}");
        }
        let two = reference(&spec(&["juicefs:///x", "dataset://a/src"]), "b", "d").unwrap().unwrap_err();
        assert!(two.starts_with("spec.mounts[1].mountPoint") && two.contains("only mount"), "{two}");
        assert!(reference(&spec(&["dataset://b/d"]), "b", "d").unwrap().unwrap_err().contains("itself"));
        assert!(is_reference(&spec(&["dataset://a/src"])) && !is_reference(&spec(&["juicefs:///"])));
    }

    #[test]
    fn the_source_opts_in_per_namespace() {
        let src = |s| dataset("a", "src", &["juicefs:///"], s);
        assert!(!shared_with(&src(None), "b"));
        assert!(shared_with(&src(Some("b")), "b"));
        assert!(shared_with(&src(Some(" c , b ")), "b"));
        assert!(!shared_with(&src(Some("bb,c")), "b"), "whole names only");
        assert!(shared_with(&src(Some("*")), "anything"));
        assert!(!shared_with(&src(Some("")), "b"));
    }

    #[test]
    fn referrers_are_the_datasets_naming_the_source() {
        let all = [
            dataset("b", "one", &["dataset://a/src"], None),
            dataset("c", "two", &["dataset://a/src"], None),
            dataset("c", "other", &["dataset://a/else"], None),
            dataset("a", "src", &["juicefs:///"], None),
        ];
        assert_eq!(referrers(&all, &DatasetKey::new("a", "src")), ["b/one", "c/two"]);
        assert!(referrers(&all, &DatasetKey::new("b", "one")).is_empty());
        assert_eq!(source_of(&all[0]), Some(DatasetKey::new("a", "src")));
        assert_eq!(source_of(&all[3]), None);
        assert_eq!(source_of(&dataset("a", "src", &["dataset://a/src"], None)), None, "not itself");
    }
}

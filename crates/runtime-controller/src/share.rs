//! A dataset that refers to another one (`dataset://<ns>/<name>`), pure: whether it may be served by
//! its source's cache now, and the PV/PVC and status that bind it there. Its PV carries the *source's*
//! CSI attributes — FUSE mount path and FUSE node label — so a pod of the referring namespace is served
//! by the source's FUSE client on its node: no second cache, no second client.

use crate::labels;
use crate::owned;
use crate::status_bodies::DATASET_CONDITION;
use crate::volume;
use ferrofluid_api::common::condition;
use ferrofluid_api::keys::{ANNOTATION_SHARE_WITH, DatasetKey};
use ferrofluid_api::sharing;
use ferrofluid_api::{Dataset, DatasetPhase, DatasetStatus};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::ResourceExt;

/// What a referring dataset gets now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Share {
    /// Bound onto the source's cache.
    Serve { source: DatasetKey },
    /// The source is there and allows it but is not `Bound` (yet, or any more): `NotBound`, keeping
    /// a PV and PVC made earlier (pods that use them see the source's FUSE client come back).
    Wait { message: String },
    /// Not allowed or not possible: `NotBound`, and a PV and PVC made earlier are removed.
    Refuse { reason: &'static str, message: String },
}

/// Decides for the referring dataset `ds` given its source as the cache holds it.
pub fn decide(ds: &Dataset, source: Option<&Dataset>) -> Share {
    let ns = ds.namespace().unwrap_or_default();
    let key = match sharing::reference(&ds.spec, &ns, &ds.name_any()) {
        None => return Share::Refuse { reason: "NotAReference", message: "the dataset refers to no other".into() },
        Some(Err(e)) => return Share::Refuse { reason: "InvalidReference", message: e },
        Some(Ok(key)) => key,
    };
    let Some(source) = source else {
        let message = format!("source Dataset {}/{} does not exist", key.namespace, key.name);
        return Share::Refuse { reason: "SourceNotFound", message };
    };
    if !sharing::shared_with(source, &ns) {
        let message = format!(
            "source Dataset {}/{} does not share with namespace {ns}: its annotation {ANNOTATION_SHARE_WITH} must \
             list {ns} (or be \"*\")",
            key.namespace, key.name
        );
        return Share::Refuse { reason: "NotShared", message };
    }
    if sharing::is_reference(&source.spec) {
        let message = format!(
            "source Dataset {}/{} refers to another dataset itself; refer to that one instead",
            key.namespace, key.name
        );
        return Share::Refuse { reason: "SourceIsReference", message };
    }
    let phase = source.status.as_ref().and_then(|s| s.phase).unwrap_or_default();
    if phase != DatasetPhase::Bound {
        let message = format!(
            "source Dataset {}/{} is {}, not Bound: this dataset binds once it is",
            key.namespace,
            key.name,
            if phase == DatasetPhase::None { "new".to_string() } else { format!("{phase:?}") }
        );
        return Share::Wait { message };
    }
    Share::Serve { source: key }
}

/// Labels of the referring dataset's PV and PVC: the dataset's own, and its ownership mark.
fn marked_labels(ds: &Dataset, key: &DatasetKey) -> std::collections::BTreeMap<String, String> {
    let mut l = labels::common(key);
    owned::mark_dataset(&mut l, ds.metadata.uid.as_deref().unwrap_or_default());
    l
}

/// The referring dataset's PV `<ns>-<name>`, pre-bound to its claim, served by `source`'s FUSE clients.
pub fn persistent_volume(ds: &Dataset, key: &DatasetKey, source: &DatasetKey, mount_root: &str) -> PersistentVolume {
    let attributes = volume::volume_attributes(source, mount_root);
    volume::pre_bound_volume(key, marked_labels(ds, key), ds.spec.effective_access_modes(), attributes)
}

/// The referring dataset's PVC `<name>`, in its namespace.
pub fn persistent_volume_claim(ds: &Dataset, key: &DatasetKey) -> PersistentVolumeClaim {
    volume::claim(key, marked_labels(ds, key), ds.spec.effective_access_modes())
}

/// The referring dataset's status: phase, the source's runtimes (they serve it), its mounts, the
/// `RuntimeReady` condition saying where it stands, and the datasets that refer to it in turn.
pub fn status(
    existing: &DatasetStatus,
    ds: &Dataset,
    source: Option<&Dataset>,
    share: &Share,
    referrers: Vec<String>,
    now: &str,
) -> DatasetStatus {
    let (phase, ok, reason, message) = match share {
        Share::Serve { source } => (
            DatasetPhase::Bound,
            true,
            "SharedFrom",
            format!("served by the cache of Dataset {}/{}", source.namespace, source.name),
        ),
        Share::Wait { message } => (DatasetPhase::NotBound, false, "SourceNotBound", message.clone()),
        Share::Refuse { reason, message } => (DatasetPhase::NotBound, false, *reason, message.clone()),
    };
    let runtimes = match share {
        Share::Serve { .. } => source.and_then(|s| s.status.as_ref()).map(|s| s.runtimes.clone()).unwrap_or_default(),
        _ => Vec::new(),
    };
    DatasetStatus {
        phase: Some(phase),
        runtimes,
        mounts: ds.spec.mounts.clone(),
        conditions: vec![condition(&existing.conditions, DATASET_CONDITION, ok, reason, message, now)],
        dataset_ref: referrers,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrofluid_api::Mount;
    use ferrofluid_api::dataset::RuntimeRef;
    use ferrofluid_api::keys;

    fn dataset(ns: &str, name: &str, point: &str) -> Dataset {
        let mut d = Dataset::new(
            name,
            ferrofluid_api::DatasetSpec {
                mounts: vec![Mount { mount_point: point.into(), ..Default::default() }],
                ..Default::default()
            },
        );
        d.metadata.namespace = Some(ns.into());
        d.metadata.uid = Some(format!("uid-{name}"));
        d
    }

    fn source(share: Option<&str>, phase: Option<DatasetPhase>) -> Dataset {
        let mut d = dataset("a", "src", "juicefs:///data");
        if let Some(s) = share {
            d.metadata.annotations = Some([(ANNOTATION_SHARE_WITH.to_string(), s.to_string())].into());
        }
        d.status = Some(DatasetStatus {
            phase,
            runtimes: vec![RuntimeRef { name: "src".into(), namespace: "a".into(), ..Default::default() }],
            ..Default::default()
        });
        d
    }

    #[test]
    fn a_reference_is_served_only_when_shared_and_bound() {
        let mine = dataset("b", "mine", "dataset://a/src");
        let bound = Some(DatasetPhase::Bound);
        assert_eq!(
            decide(&mine, Some(&source(Some("b"), bound))),
            Share::Serve { source: DatasetKey::new("a", "src") }
        );
        assert!(matches!(decide(&mine, None), Share::Refuse { reason: "SourceNotFound", .. }));
        let Share::Refuse { reason, message } = decide(&mine, Some(&source(None, bound))) else { panic!() };
        assert_eq!(reason, "NotShared");
        assert!(message.contains(ANNOTATION_SHARE_WITH) && message.contains("namespace b"), "{message}");
        assert!(matches!(decide(&mine, Some(&source(Some("c"), bound))), Share::Refuse { reason: "NotShared", .. }));
        let Share::Wait { message } = decide(&mine, Some(&source(Some("*"), None))) else { panic!() };
        assert!(message.contains("is new, not Bound"), "{message}");
        let mut chain = source(Some("*"), bound);
        chain.spec.mounts[0].mount_point = "dataset://c/other".into();
        assert!(matches!(decide(&mine, Some(&chain)), Share::Refuse { reason: "SourceIsReference", .. }));
        let bad = dataset("b", "mine", "dataset://b/mine");
        assert!(matches!(decide(&bad, None), Share::Refuse { reason: "InvalidReference", .. }));
    }

    #[test]
    fn the_volume_is_the_referring_datasets_and_points_at_the_sources_fuse_mount() {
        let mine = dataset("b", "mine", "dataset://a/src");
        let (key, src) = (DatasetKey::new("b", "mine"), DatasetKey::new("a", "src"));
        let pv = persistent_volume(&mine, &key, &src, "/runtime-mnt");
        assert_eq!(pv.metadata.name.as_deref(), Some("b-mine"));
        let spec = pv.spec.as_ref().expect("spec");
        let claim = spec.claim_ref.as_ref().expect("pre-bound");
        assert_eq!((claim.namespace.as_deref(), claim.name.as_deref()), (Some("b"), Some("mine")));
        let csi = spec.csi.as_ref().expect("csi");
        assert_eq!(csi.volume_handle, "b-mine");
        assert_eq!(csi.volume_attributes.as_ref(), Some(&volume::volume_attributes(&src, "/runtime-mnt")));
        let pvc = persistent_volume_claim(&mine, &key);
        for meta in [&pv.metadata, &pvc.metadata] {
            assert_eq!(owned::ownership(meta, "uid-mine"), owned::Ownership::Ours);
            assert_ne!(owned::ownership(meta, "uid-src"), owned::Ownership::Ours);
            assert_eq!(meta.labels.as_ref().map(|l| l[keys::LABEL_DATASET_ID].as_str()), Some("b-mine"));
        }
        assert_eq!(pvc.spec.as_ref().and_then(|s| s.volume_name.as_deref()), Some("b-mine"));
    }

    #[test]
    fn status_follows_the_decision_and_is_stable() {
        let mine = dataset("b", "mine", "dataset://a/src");
        let src = source(Some("b"), Some(DatasetPhase::Bound));
        let share = decide(&mine, Some(&src));
        let st = status(&Default::default(), &mine, Some(&src), &share, Vec::new(), "t1");
        assert_eq!(st.phase, Some(DatasetPhase::Bound));
        assert_eq!(st.runtimes[0].name, "src", "the source's runtime serves it");
        assert_eq!(status(&st, &mine, Some(&src), &share, Vec::new(), "t2"), st, "nothing new, same body");
        let refused = decide(&mine, Some(&source(None, Some(DatasetPhase::Bound))));
        let st = status(&st, &mine, Some(&src), &refused, Vec::new(), "t3");
        assert_eq!(st.phase, Some(DatasetPhase::NotBound));
        assert!(st.runtimes.is_empty());
        assert_eq!(st.conditions[0].reason.as_deref(), Some("NotShared"));
    }
}

//! What a request needs from the watch caches: the datasets the pod's PVCs are (a dataset's PVC is
//! named after it and labelled ours with its `fluid.io/dataset-id`; a PVC of the same name that is not
//! ours is not a dataset's), and whether any node carries each one's cache label — for a dataset that
//! refers to another (`dataset://`), the cache label of that source.

use crate::mutate::{self, DatasetFacts};
use ferrofluid_api::keys::{self, DatasetKey};
use ferrofluid_api::{Dataset, sharing};
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};

pub struct Caches {
    pub datasets: Store<Dataset>,
    /// Nodes, metadata only (their labels).
    pub nodes: Store<PartialObjectMeta<Node>>,
    /// ferrofluid's PVCs, metadata only.
    pub pvcs: Store<PartialObjectMeta<PersistentVolumeClaim>>,
}

impl Caches {
    fn has_label(&self, label: &str) -> bool {
        self.nodes.state().iter().any(|n| {
            n.metadata.labels.as_ref().and_then(|l| l.get(label)).map(String::as_str) == Some(keys::LABEL_TRUE)
        })
    }

    /// The facts of the datasets `pod` mounts through their PVCs (a PVC of a dataset is named after it).
    pub fn datasets_of(&self, pod: &Pod, ns: &str) -> Vec<DatasetFacts> {
        let mut names: Vec<String> = mutate::claims(pod).into_iter().map(|(_, c)| c).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter_map(|name| {
                let ds = self.datasets.get(&ObjectRef::new(&name).within(ns))?;
                let key = DatasetKey::new(ns, &name);
                let pvc = self.pvcs.get(&ObjectRef::new(&name).within(ns))?;
                let labels = pvc.metadata.labels.as_ref()?;
                if labels.get(keys::LABEL_DATASET_ID) != Some(&key.dataset_id())
                    || labels.get(keys::LABEL_MANAGED_BY).map(String::as_str) != Some(keys::MANAGED_BY)
                {
                    return None;
                }
                // A dataset that refers to another is served by that one's cache, on that one's nodes.
                let served_by = sharing::source_of(&ds);
                let cache = match &served_by {
                    Some(s) => self.datasets.get(&ObjectRef::new(&s.name).within(&s.namespace)),
                    None => Some(ds),
                };
                let label = served_by.as_ref().unwrap_or(&key).worker_node_label();
                Some(DatasetFacts {
                    has_cache_nodes: self.has_label(&label),
                    required: cache
                        .as_ref()
                        .and_then(|c| c.spec.node_affinity.as_ref())
                        .and_then(|a| a.required.clone()),
                    tolerations: cache.map(|c| c.spec.tolerations.clone()).unwrap_or_default(),
                    served_by,
                    name,
                })
            })
            .collect()
    }
}

//! What the webhook does to a pod, pure: given the pod and what the caches say about the datasets its
//! PVCs name, the pod as it should be created — or nothing, for a pod that uses no dataset (unless
//! `prefer_nodes_without_cache` is on). Fluid-compatible:
//! - prefer the dataset's cache nodes (`fluid.io/s-<ns>-<name>=true`, weight 100), or require them when
//!   the pod is labelled `fluid.io/dataset.<name>.sched=required` and the dataset has cache nodes — with
//!   none yet, the dataset's own `nodeAffinity.required` is required instead (where its cache can go), so
//!   the pod is never made unschedulable by a cache that does not exist yet;
//! - a required pod gets the dataset's tolerations (its cache nodes may be tainted for it);
//! - `mountPropagation: HostToContainer` on the dataset's volume mounts (a FUSE restart is seen);
//! - `fluid.io/datasets-in-use`: the datasets, sorted, comma-separated (merged with what is there).
//!
//! Applying it twice changes nothing the second time (the API server may call a webhook again).

use ferrofluid_api::keys::{self, DatasetKey};
use k8s_openapi::api::core::v1::{
    Affinity, Container, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PreferredSchedulingTerm, Toleration,
};
use std::collections::BTreeSet;

/// Weight of a preferred cache-node term (Fluid's).
pub const PREFER_WEIGHT: i32 = 100;
/// The pod label value that makes cache nodes required: `fluid.io/dataset.<name>.sched=required`.
pub const SCHED_REQUIRED: &str = "required";
/// The mount propagation injected on dataset volume mounts.
pub const HOST_TO_CONTAINER: &str = "HostToContainer";

/// The label of a pod that asks for `name`'s cache nodes to be required.
pub fn sched_label(dataset: &str) -> String {
    format!("{}dataset.{dataset}.sched", keys::LABEL_PREFIX)
}

/// What the caches say about one dataset a pod's PVC names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DatasetFacts {
    pub name: String,
    /// Some node carries its cache label.
    pub has_cache_nodes: bool,
    /// `spec.nodeAffinity.required`.
    pub required: Option<NodeSelector>,
    /// `spec.tolerations`.
    pub tolerations: Vec<Toleration>,
    /// The dataset whose cache serves it when that is another one (`dataset://<ns>/<name>`): its cache
    /// label, node affinity and tolerations are the ones that count.
    pub served_by: Option<DatasetKey>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Pods that use no dataset prefer nodes without any cache (`fluid.io/dataset-num` absent).
    pub prefer_nodes_without_cache: bool,
}

/// The pod's volumes that are PVCs, as (volume name, claim name).
pub fn claims(pod: &Pod) -> Vec<(String, String)> {
    let vols = pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
    vols.into_iter()
        .flatten()
        .filter_map(|v| Some((v.name.clone(), v.persistent_volume_claim.as_ref()?.claim_name.clone())))
        .collect()
}

/// The outcome: the mutated pod, and warnings for the client (`kubectl` prints them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mutation {
    pub pod: Option<Pod>,
    pub warnings: Vec<String>,
}

/// The pod as it should be created. `datasets` are the datasets its PVCs name (a PVC of a dataset is
/// named after it), in the pod's namespace `ns`; empty when it uses none.
pub fn mutate(pod: &Pod, ns: &str, datasets: &[DatasetFacts], settings: Settings) -> Mutation {
    let mut out = pod.clone();
    let mut warnings = Vec::new();
    if datasets.is_empty() {
        if !settings.prefer_nodes_without_cache {
            return Mutation::default();
        }
        let term = PreferredSchedulingTerm {
            weight: PREFER_WEIGHT,
            preference: NodeSelectorTerm {
                match_expressions: Some(vec![requirement(keys::LABEL_DATASET_NUM, "DoesNotExist", None)]),
                ..Default::default()
            },
        };
        prefer(&mut out, term);
        return finish(pod, out, warnings);
    }
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    for ds in datasets {
        let cache_label = ds.served_by.clone().unwrap_or_else(|| DatasetKey::new(ns, &ds.name)).worker_node_label();
        let wants_required = labels.get(&sched_label(&ds.name)).map(String::as_str) == Some(SCHED_REQUIRED);
        if wants_required && ds.has_cache_nodes {
            require(&mut out, &[requirement(&cache_label, "In", Some(keys::LABEL_TRUE))]);
            tolerate(&mut out, &ds.tolerations);
        } else {
            if wants_required {
                let mut w =
                    format!("dataset {:?} has no cache node yet: its cache nodes are preferred, not required", ds.name);
                if let Some(sel) = &ds.required {
                    require_selector(&mut out, sel);
                    tolerate(&mut out, &ds.tolerations);
                    w.push_str("; the dataset's nodeAffinity is required instead");
                }
                warnings.push(w);
            }
            let term = PreferredSchedulingTerm {
                weight: PREFER_WEIGHT,
                preference: NodeSelectorTerm {
                    match_expressions: Some(vec![requirement(&cache_label, "In", Some(keys::LABEL_TRUE))]),
                    ..Default::default()
                },
            };
            prefer(&mut out, term);
        }
    }
    let dataset_volumes: BTreeSet<String> = {
        let names: BTreeSet<&str> = datasets.iter().map(|d| d.name.as_str()).collect();
        claims(pod).into_iter().filter(|(_, c)| names.contains(c.as_str())).map(|(v, _)| v).collect()
    };
    if let Some(spec) = out.spec.as_mut() {
        let inits = spec.init_containers.iter_mut().flatten();
        for c in spec.containers.iter_mut().chain(inits) {
            propagate(c, &dataset_volumes);
        }
    }
    in_use(&mut out, datasets);
    finish(pod, out, warnings)
}

fn finish(before: &Pod, after: Pod, warnings: Vec<String>) -> Mutation {
    Mutation { pod: (after != *before).then_some(after), warnings }
}

fn requirement(key: &str, op: &str, value: Option<&str>) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: key.to_string(),
        operator: op.to_string(),
        values: value.map(|v| vec![v.to_string()]),
    }
}

fn node_affinity(pod: &mut Pod) -> &mut NodeAffinity {
    let spec = pod.spec.get_or_insert_with(Default::default);
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    affinity.node_affinity.get_or_insert_with(NodeAffinity::default)
}

/// Adds a preferred term unless an equal one is there.
fn prefer(pod: &mut Pod, term: PreferredSchedulingTerm) {
    let terms = node_affinity(pod).preferred_during_scheduling_ignored_during_execution.get_or_insert_with(Vec::new);
    if !terms.contains(&term) {
        terms.push(term);
    }
}

/// ANDs `reqs` into the pod's required node affinity: into every existing term (terms are ORed), or as
/// the one term when there is none.
fn require(pod: &mut Pod, reqs: &[NodeSelectorRequirement]) {
    let sel = node_affinity(pod)
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(|| NodeSelector { node_selector_terms: Vec::new() });
    if sel.node_selector_terms.is_empty() {
        sel.node_selector_terms.push(NodeSelectorTerm::default());
    }
    for term in &mut sel.node_selector_terms {
        let exprs = term.match_expressions.get_or_insert_with(Vec::new);
        for r in reqs {
            if !exprs.contains(r) {
                exprs.push(r.clone());
            }
        }
    }
}

/// ANDs a node selector (its terms ORed) into the pod's required affinity: each existing term combined
/// with each of the selector's (a term's field selectors kept).
fn require_selector(pod: &mut Pod, sel: &NodeSelector) {
    let extra: Vec<&NodeSelectorTerm> = sel.node_selector_terms.iter().collect();
    if extra.is_empty() {
        return;
    }
    let current = node_affinity(pod)
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(|| NodeSelector { node_selector_terms: Vec::new() });
    let base = if current.node_selector_terms.is_empty() {
        vec![NodeSelectorTerm::default()]
    } else {
        std::mem::take(&mut current.node_selector_terms)
    };
    let mut terms = Vec::new();
    for b in &base {
        for e in &extra {
            let mut t = b.clone();
            for (mine, theirs) in
                [(&mut t.match_expressions, &e.match_expressions), (&mut t.match_fields, &e.match_fields)]
            {
                for r in theirs.iter().flatten() {
                    let list = mine.get_or_insert_with(Vec::new);
                    if !list.contains(r) {
                        list.push(r.clone());
                    }
                }
            }
            if !terms.contains(&t) {
                terms.push(t);
            }
        }
    }
    current.node_selector_terms = terms;
}

fn tolerate(pod: &mut Pod, tolerations: &[Toleration]) {
    if tolerations.is_empty() {
        return;
    }
    let spec = pod.spec.get_or_insert_with(Default::default);
    let list = spec.tolerations.get_or_insert_with(Vec::new);
    for t in tolerations {
        if !list.contains(t) {
            list.push(t.clone());
        }
    }
}

/// `HostToContainer` on the container's mounts of dataset volumes that set no propagation.
fn propagate(c: &mut Container, dataset_volumes: &BTreeSet<String>) {
    for m in c.volume_mounts.iter_mut().flatten() {
        if dataset_volumes.contains(&m.name) && m.mount_propagation.is_none() {
            m.mount_propagation = Some(HOST_TO_CONTAINER.into());
        }
    }
}

fn in_use(pod: &mut Pod, datasets: &[DatasetFacts]) {
    let annotations = pod.metadata.annotations.get_or_insert_with(Default::default);
    let mut names: BTreeSet<String> = annotations
        .get(keys::ANNOTATION_DATASETS_IN_USE)
        .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    names.extend(datasets.iter().map(|d| d.name.clone()));
    let value = names.into_iter().collect::<Vec<_>>().join(",");
    annotations.insert(keys::ANNOTATION_DATASETS_IN_USE.to_string(), value);
}

#[cfg(test)]
#[path = "mutate_tests.rs"]
mod tests;

//! Puts the planned node labels (`node_labels.rs`) on the nodes, reading them from the watch cache:
//! a node is patched only when its labels differ from what they should be.

use crate::context::Context;
use crate::error::{Error, Step, waiting};
use crate::juicefs_config::JuiceFsConfig;
use crate::{node_labels, status, worker};
use ferrofluid_api::keys::DatasetKey;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use std::collections::BTreeMap;
use std::time::Duration;

/// Attempts of a guarded label patch before it gives up (each after another writer got in first).
const ATTEMPTS: usize = 8;

/// Label patches are guarded by the node's resourceVersion (so `dataset-num` is counted from what is
/// really there); when another writer got in first, re-read the node and plan again, a few times —
/// and fail, rather than report success, when it never gets through.
async fn patch_node(
    nodes: &Api<Node>,
    node: &Node,
    set: &BTreeMap<String, String>,
    remove: &[String],
) -> Result<(), Error> {
    let mut node = node.clone();
    for attempt in 1..=ATTEMPTS {
        let current = node.metadata.labels.clone().unwrap_or_default();
        let Some(patch) = node_labels::plan(&current, set, remove, node.metadata.resource_version.as_deref()) else {
            return Ok(());
        };
        match nodes.patch(&node.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(rand::random_range(10..100))).await;
                match nodes.get_opt(&node.name_any()).await.step("get node")? {
                    Some(fresh) => node = fresh,
                    None => return Ok(()),
                }
            }
            Err(e) => return Err(e).step("patch node labels")?,
        }
    }
    Err(waiting(format!("node {}: labels still conflicting after {ATTEMPTS} attempts", node.name_any())))
}

/// Worker labels on the nodes running one of `pods` (the runtime's worker pods), and off every other
/// node that carries them.
pub async fn sync_worker_labels(
    ctx: &Context,
    key: &DatasetKey,
    cfg: &JuiceFsConfig,
    pods: &[Pod],
) -> Result<(), Error> {
    let api: Api<Node> = Api::all(ctx.client.clone());
    let want = status::worker_nodes(pods);
    let (mem, disk) = worker::capacity_bytes(&cfg.cache);
    let set = node_labels::worker_labels(key, mem, disk);
    let keys = node_labels::worker_label_keys(key);
    let marker = key.juicefs_worker_node_label();
    for node in ctx.stores.nodes.state() {
        if want.contains(&node.name_any()) {
            patch_node(&api, &node, &set, &[]).await?;
        } else if node.labels().contains_key(&marker) {
            patch_node(&api, &node, &BTreeMap::new(), &keys).await?;
        }
    }
    Ok(())
}

/// Removes `label_keys` from every node that carries `selector_key`.
pub async fn strip(ctx: &Context, selector_key: &str, label_keys: &[String]) -> Result<(), Error> {
    let api: Api<Node> = Api::all(ctx.client.clone());
    for node in ctx.stores.nodes.state().iter().filter(|n| n.labels().contains_key(selector_key)) {
        patch_node(&api, node, &BTreeMap::new(), label_keys).await?;
    }
    Ok(())
}

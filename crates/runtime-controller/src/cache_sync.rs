//! Runs the cache cleanup planned by `cache_cleanup.rs`: one Job per node that is due — created once,
//! followed through the watch cache, deleted when it finished. A failed cleanup (the node is broken, the
//! image cannot be pulled) is a Warning event naming the node and does not block anything. Neither does
//! a namespace being deleted: no Job can be created there any more, so its caches stay (logged) rather
//! than the runtime's finalizer holding the namespace's deletion forever.

use crate::apply::{self, Current};
use crate::cache_cleanup::{self, Outcome};
use crate::context::Context;
use crate::error::Error;
use crate::in_sync::fingerprinted;
use crate::stores;
use ferrofluid_api::JuiceFSRuntime;
use ferrofluid_api::juicefs_runtime::CacheNode;
use ferrofluid_api::keys::{self, DatasetKey};
use k8s_openapi::api::batch::v1::Job;
use kube::api::Api;
use kube::{Resource, ResourceExt};
use std::collections::BTreeSet;

/// Nodes where a worker or FUSE pod of the runtime is (whatever its phase, until it is gone).
pub fn client_nodes(ctx: &Context, key: &DatasetKey) -> BTreeSet<String> {
    stores::of_runtime(&ctx.stores.pods, key, &[keys::ROLE_WORKER, keys::ROLE_FUSE])
        .iter()
        .filter_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
        .collect()
}

/// Whether the node exists (a node that is gone has no cache to clean).
pub fn known(ctx: &Context, node: &str) -> bool {
    stores::get(&ctx.stores.nodes, None, node).is_some()
}

/// Makes sure each of `due` has its cleanup Job; returns the nodes whose cleanup has finished. Their
/// Jobs stay until the status no longer records the node (`sweep`), so a pass that reads a status older
/// than its own last write does not clean the node a second time.
pub async fn clean(
    ctx: &Context,
    rt: &JuiceFSRuntime,
    key: &DatasetKey,
    due: &[&CacheNode],
) -> Result<BTreeSet<String>, Error> {
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let uid = rt.metadata.uid.clone().unwrap_or_default();
    let mut finished = BTreeSet::new();
    for node in due {
        let Some(desired) = cache_cleanup::job(rt, key, &node.node, &node.dirs, &ctx.juicefs_image) else {
            finished.insert(node.node.clone());
            continue;
        };
        let name = cache_cleanup::job_name(key, &node.node);
        let cached = stores::get(&ctx.stores.jobs, Some(&key.namespace), &name);
        match apply::current(&api, cached, true, Some(&key.namespace), &name, &uid, "get cache cleanup job").await? {
            Err(conflict) => {
                // Someone else's Job of that name: never touched; the cache there stays.
                ctx.events
                    .warning(&rt.object_ref(&()), "CacheCleanupFailed", format!("node {}: {conflict}", node.node))
                    .await;
                finished.insert(node.node.clone());
            }
            Ok(Current::Absent) => {
                match apply::object(&api, &fingerprinted(desired), &Current::Absent, "cache cleanup job").await {
                    Ok(_) => {}
                    Err(Error::Kube(e)) if e.namespace_terminating() => {
                        tracing::warn!(
                            runtime = %key.name, namespace = %key.namespace, node = %node.node, dirs = ?node.dirs,
                            "namespace is being deleted: no cache cleanup Job can run there; the cache directories stay"
                        );
                        finished.insert(node.node.clone());
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(Current::Ours(job)) => match cache_cleanup::outcome(&job) {
                Outcome::Running => {}
                Outcome::Succeeded => {
                    finished.insert(node.node.clone());
                }
                Outcome::Failed => {
                    let note = format!(
                        "could not remove the cache directories {} on node {} (Job {}); remove them by hand",
                        node.dirs.join(", "),
                        node.node,
                        name
                    );
                    ctx.events.warning(&rt.object_ref(&()), "CacheCleanupFailed", note).await;
                    finished.insert(node.node.clone());
                }
            },
        }
    }
    Ok(finished)
}

/// Deletes this runtime's cleanup Jobs for nodes not in `keep`: finished ones the status no longer
/// records, and running ones for a node that has a client again.
pub async fn sweep(ctx: &Context, rt: &JuiceFSRuntime, key: &DatasetKey, keep: &BTreeSet<&str>) -> Result<(), Error> {
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let uid = rt.metadata.uid.clone().unwrap_or_default();
    let stale: Vec<_> = stores::of_runtime(&ctx.stores.jobs, key, &[keys::ROLE_CACHE_CLEANUP])
        .into_iter()
        .filter(|j| j.labels().get(keys::LABEL_RUNTIME_UID) == Some(&uid) && j.metadata.deletion_timestamp.is_none())
        .filter(|j| !j.annotations().get(keys::ANNOTATION_NODE).is_some_and(|n| keep.contains(n.as_str())))
        .collect();
    for job in stale {
        apply::delete_ours(&api, Some(job), &uid, "delete cache cleanup job").await?;
    }
    Ok(())
}

//! The FUSE node label on the driver's own Node, and the runtime's clean policy that decides whether
//! NodeUnstage removes it. Patches are JSON merge patches that touch only that one label.

use crate::error::{CsiError, Result};
use crate::validate::RuntimeRef;
use ferrofluid_api::JuiceFSRuntime;
use ferrofluid_api::juicefs_runtime::CleanPolicy;
use ferrofluid_api::keys::LABEL_TRUE;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams};

/// Merge patch that sets (`Some`) or removes (`None`) one label.
pub fn label_patch(key: &str, value: Option<&str>) -> serde_json::Value {
    serde_json::json!({ "metadata": { "labels": { key: value } } })
}

async fn node_label(api: &Api<Node>, node: &str, key: &str) -> Result<Option<String>> {
    match api.get_opt(node).await {
        Ok(Some(n)) => Ok(n.metadata.labels.and_then(|l| l.get(key).cloned())),
        Ok(None) => Err(CsiError::FailedPrecondition(format!("node {node} (--node-id) does not exist"))),
        Err(e) => Err(CsiError::kube(format!("reading node {node}"), e)),
    }
}

/// Sets `key=true` on `node` unless already there; returns whether it patched.
pub async fn ensure(client: &kube::Client, node: &str, key: &str) -> Result<bool> {
    let api: Api<Node> = Api::all(client.clone());
    if node_label(&api, node, key).await?.as_deref() == Some(LABEL_TRUE) {
        return Ok(false);
    }
    api.patch(node, &PatchParams::default(), &Patch::Merge(label_patch(key, Some(LABEL_TRUE))))
        .await
        .map_err(|e| CsiError::kube(format!("labelling node {node} with {key}={LABEL_TRUE}"), e))?;
    tracing::info!(node, label = key, "labelled node for the FUSE DaemonSet");
    Ok(true)
}

/// Removes `key` from `node` if present; returns whether it patched.
pub async fn remove(client: &kube::Client, node: &str, key: &str) -> Result<bool> {
    let api: Api<Node> = Api::all(client.clone());
    if node_label(&api, node, key).await?.is_none() {
        return Ok(false);
    }
    api.patch(node, &PatchParams::default(), &Patch::Merge(label_patch(key, None)))
        .await
        .map_err(|e| CsiError::kube(format!("removing label {key} from node {node}"), e))?;
    tracing::info!(node, label = key, "removed the FUSE label from the node");
    Ok(true)
}

/// Whether the FUSE label may go once no pod on this node uses the volume: with `OnDemand`; with
/// `OnFuseChanged` when the runtime lists this node's FUSE client as outdated; or when the runtime no
/// longer exists or is being deleted (exactly what `OnRuntimeDeleted` waits for).
pub async fn removal_allowed(client: &kube::Client, runtime: &RuntimeRef, node: &str) -> Result<bool> {
    let api: Api<JuiceFSRuntime> = Api::namespaced(client.clone(), &runtime.namespace);
    let rt = api
        .get_opt(&runtime.name)
        .await
        .map_err(|e| CsiError::kube(format!("reading JuiceFSRuntime {}/{}", runtime.namespace, runtime.name), e))?;
    Ok(match rt {
        None => true,
        // Being deleted: what OnRuntimeDeleted waits for has happened.
        Some(rt) if rt.metadata.deletion_timestamp.is_some() => true,
        Some(rt) => {
            let outdated = rt.status.as_ref().is_some_and(|s| s.outdated_fuse_nodes.iter().any(|n| n == node));
            policy_removes_on_unstage(rt.spec.fuse.as_ref().and_then(|f| f.clean_policy), outdated)
        }
    })
}

/// Pure: `OnDemand` removes on unstage, `OnFuseChanged` when the node's client is `outdated`; unset (or
/// `""`) means `OnRuntimeDeleted`, which keeps the label.
pub fn policy_removes_on_unstage(policy: Option<CleanPolicy>, outdated: bool) -> bool {
    match CleanPolicy::effective(policy) {
        CleanPolicy::OnDemand => true,
        CleanPolicy::OnFuseChanged => outdated,
        CleanPolicy::OnRuntimeDeleted | CleanPolicy::Unset => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_touches_one_label() {
        assert_eq!(
            label_patch("fluid.io/f-default-jfsdemo", Some("true")),
            serde_json::json!({"metadata": {"labels": {"fluid.io/f-default-jfsdemo": "true"}}})
        );
        assert_eq!(
            label_patch("fluid.io/f-default-jfsdemo", None),
            serde_json::json!({"metadata": {"labels": {"fluid.io/f-default-jfsdemo": null}}})
        );
    }

    #[test]
    fn clean_policy() {
        assert!(policy_removes_on_unstage(Some(CleanPolicy::OnDemand), false));
        assert!(!policy_removes_on_unstage(Some(CleanPolicy::OnRuntimeDeleted), true));
        assert!(!policy_removes_on_unstage(None, true));
        assert!(!policy_removes_on_unstage(Some(CleanPolicy::Unset), true), "\"\" is OnRuntimeDeleted");
        assert!(policy_removes_on_unstage(Some(CleanPolicy::OnFuseChanged), true));
        assert!(!policy_removes_on_unstage(Some(CleanPolicy::OnFuseChanged), false), "a current client stays");
    }
}

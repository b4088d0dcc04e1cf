//! NodeStage/NodeUnstage against the real API server: the plugin labels its own Node (`node-3`) with each
//! dataset's FUSE label; unstaging removes it when the runtime's `fuse.cleanPolicy` is OnDemand or the
//! runtime is gone, keeps it for the default OnRuntimeDeleted, and never touches another volume's label.

mod csi_support;

use anyhow::Result;
use csi_support::*;
use ferrofluid_api::keys::DatasetKey;
use ferrofluid_e2e::{TestNamespace, kubectl_ok};
use std::path::PathBuf;

fn runtime_yaml(name: &str, clean_policy: Option<&str>) -> String {
    let fuse = clean_policy.map(|p| format!("  fuse:\n    cleanPolicy: {p}\n")).unwrap_or_default();
    format!(
        "apiVersion: data.fluid.io/v1alpha1\nkind: JuiceFSRuntime\nmetadata:\n  name: {name}\nspec:\n  replicas: 1\n{fuse}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuse_label_follows_stage_and_clean_policy() -> Result<()> {
    let ns = TestNamespace::new("ff-csi-labels")?;
    kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&runtime_yaml("ondemand", Some("OnDemand"))))?;
    kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&runtime_yaml("keep", None)))?;
    let on_demand = DatasetKey::new(&ns.name, "ondemand");
    let keep = DatasetKey::new(&ns.name, "keep");
    let _guards =
        [on_demand.fuse_node_label(), keep.fuse_node_label()].map(|key| LabelGuard { node: NODE.into(), key });

    let plugin = Plugin::start("labels", "30s")?;
    let client = ferrofluid_e2e::client().await?;
    let mut node = plugin.node().await?;
    let root = plugin.mount_root.display().to_string();
    let staging = |k: &DatasetKey| {
        plugin.kubelet_root.join(format!("plugins/kubernetes.io/csi/fuse.csi.fluid.io/{}/globalmount", k.pv_name()))
    };
    let ctx = |k: &DatasetKey| volume_context(&PathBuf::from(k.fuse_mount_path(&root)), &k.namespace, &k.name);
    let label = |k: &DatasetKey| {
        let client = client.clone();
        let key = k.fuse_node_label();
        async move { node_label(&client, NODE, &key).await }
    };

    // NodeGetInfo names the Node the plugin patches.
    let info = node.node_get_info(csi_plugin::proto::NodeGetInfoRequest {}).await?.into_inner();
    assert_eq!(info.node_id, NODE);

    for k in [&on_demand, &keep] {
        node.node_stage_volume(stage_request(&k.pv_name(), &staging(k), &ctx(k))).await?;
        assert_eq!(label(k).await?.as_deref(), Some("true"), "{}", k.fuse_node_label());
    }

    // OnDemand: the label goes with the last use; the other volume keeps its own label.
    node.node_unstage_volume(unstage_request(&on_demand.pv_name(), &staging(&on_demand))).await?;
    assert_eq!(label(&on_demand).await?, None);
    assert_eq!(label(&keep).await?.as_deref(), Some("true"));
    node.node_unstage_volume(unstage_request(&on_demand.pv_name(), &staging(&on_demand))).await?;

    // Default OnRuntimeDeleted: unstaging keeps the label while the runtime exists …
    node.node_unstage_volume(unstage_request(&keep.pv_name(), &staging(&keep))).await?;
    assert_eq!(label(&keep).await?.as_deref(), Some("true"));

    // … and once the runtime is gone, the next unstage removes it.
    kubectl_ok(&["delete", "juicefsruntime", "keep", "-n", &ns.name, "--wait=false"], None)?;
    node.node_stage_volume(stage_request(&keep.pv_name(), &staging(&keep), &ctx(&keep))).await?;
    node.node_unstage_volume(unstage_request(&keep.pv_name(), &staging(&keep))).await?;
    assert_eq!(label(&keep).await?, None);
    Ok(())
}

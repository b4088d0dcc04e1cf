//! The CSI plugin refuses paths it must not touch: traversal, symbolic links escaping the roots, paths
//! outside the kubelet root or the mount root, and malformed requests; nothing gets mounted and no
//! Node gets labelled.

mod csi_support;

use anyhow::Result;
use csi_plugin::proto::volume_capability::{AccessType, BlockVolume};
use csi_support::*;
use ferrofluid_api::keys::DatasetKey;
use std::path::PathBuf;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_paths_and_malformed_requests_are_refused() -> Result<()> {
    let plugin = Plugin::start("paths", "2s")?;
    let key = DatasetKey::new("ff-csi-paths", format!("p{}", std::process::id()));
    let client = ferrofluid_e2e::client().await?;
    let mut node = plugin.node().await?;
    let mount_root = plugin.mount_root.clone();
    let kubelet = plugin.kubelet_root.clone();
    let fluid = PathBuf::from(key.fuse_mount_path(&mount_root.display().to_string()));
    std::fs::create_dir_all(&fluid)?;
    let ctx = volume_context(&fluid, &key.namespace, &key.name);
    let volume = key.pv_name();
    let staging = kubelet.join("plugins/kubernetes.io/csi/fuse.csi.fluid.io/x/globalmount");

    // A directory outside both roots, reachable through links planted inside them.
    let outside = plugin.work.join("outside");
    std::fs::create_dir_all(&outside)?;
    std::os::unix::fs::symlink(&outside, kubelet.join("pods/escape"))?;
    std::os::unix::fs::symlink(&outside, mount_root.join("escape"))?;
    std::os::unix::fs::symlink(&kubelet, mount_root.join("to-kubelet"))?;

    let bad_targets = [
        outside.join("mount"),
        kubelet.join("pods/../../outside/mount"),
        kubelet.join("pods/escape/mount"),
        kubelet.join("pods/escape"),
        kubelet.clone(),
        PathBuf::from("pods/relative/mount"),
    ];
    for t in &bad_targets {
        let status = node
            .node_publish_volume(publish_request(&volume, &staging, t, &ctx, false))
            .await
            .expect_err("publish to an unsafe target");
        assert_eq!(status.code(), Code::InvalidArgument, "publish {}: {status:?}", t.display());
        let status = node.node_unpublish_volume(unpublish_request(&volume, t)).await.expect_err("unpublish");
        assert_eq!(status.code(), Code::InvalidArgument, "unpublish {}: {status:?}", t.display());
    }

    let good_target = kubelet.join("pods/pod-a/volumes/kubernetes.io~csi/v/mount");
    let bad_fluid_paths = [
        outside.clone(),
        mount_root.join("../outside"),
        mount_root.join("escape"),
        mount_root.join("to-kubelet/pods"),
        mount_root.clone(),
    ];
    for f in &bad_fluid_paths {
        let bad_ctx = volume_context(f, &key.namespace, &key.name);
        let status = node
            .node_publish_volume(publish_request(&volume, &staging, &good_target, &bad_ctx, false))
            .await
            .expect_err("publish from an unsafe fluid_path");
        assert_eq!(status.code(), Code::InvalidArgument, "fluid_path {}: {status:?}", f.display());
        let status = node
            .node_stage_volume(stage_request(&volume, &staging, &bad_ctx))
            .await
            .expect_err("stage unsafe fluid_path");
        assert_eq!(status.code(), Code::InvalidArgument, "stage fluid_path {}: {status:?}", f.display());
    }
    for s in [outside.join("staging"), kubelet.join("pods/escape/staging")] {
        let status = node.node_stage_volume(stage_request(&volume, &s, &ctx)).await.expect_err("unsafe staging");
        assert_eq!(status.code(), Code::InvalidArgument, "staging {}: {status:?}", s.display());
        let status = node.node_unstage_volume(unstage_request(&volume, &s)).await.expect_err("unsafe unstage");
        assert_eq!(status.code(), Code::InvalidArgument, "unstaging {}: {status:?}", s.display());
    }

    // Malformed requests.
    let mut no_id = publish_request("", &staging, &good_target, &ctx, false);
    assert_eq!(node.node_publish_volume(no_id.clone()).await.expect_err("no id").code(), Code::InvalidArgument);
    no_id.volume_id = volume.clone();
    no_id.volume_capability = None;
    assert_eq!(node.node_publish_volume(no_id.clone()).await.expect_err("no cap").code(), Code::InvalidArgument);
    let mut block = publish_request(&volume, &staging, &good_target, &ctx, false);
    if let Some(cap) = block.volume_capability.as_mut() {
        cap.access_type = Some(AccessType::Block(BlockVolume {}));
    }
    assert_eq!(node.node_publish_volume(block).await.expect_err("block").code(), Code::InvalidArgument);
    let mut no_fluid = publish_request(&volume, &staging, &good_target, &ctx, false);
    no_fluid.volume_context.remove(ferrofluid_api::keys::ATTR_FLUID_PATH);
    assert_eq!(node.node_publish_volume(no_fluid).await.expect_err("no fluid_path").code(), Code::InvalidArgument);
    let mut foreign_label = stage_request(&volume, &staging, &ctx);
    foreign_label
        .volume_context
        .insert(ferrofluid_api::keys::ATTR_NODE_SELECTOR_KEY.into(), "node-role.kubernetes.io/control-plane".into());
    assert_eq!(node.node_stage_volume(foreign_label).await.expect_err("label").code(), Code::InvalidArgument);

    // A safe publish whose FUSE mount never appears answers Unavailable (retryable), and says why.
    let status = node
        .node_publish_volume(publish_request(&volume, &staging, &good_target, &ctx, false))
        .await
        .expect_err("no FUSE mount");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("not ready"), "{}", status.message());

    // Nothing was mounted anywhere under the test's directories, nothing was written outside, and
    // the Node did not get the label.
    let work = plugin.work.clone();
    assert!(plugin.mounts()?.iter().all(|m| !m.0.starts_with(&work)), "a refused request mounted something");
    assert_eq!(std::fs::read_dir(&outside)?.count(), 0, "a refused request wrote outside the roots");
    assert_eq!(node_label(&client, NODE, &key.fuse_node_label()).await?, None);
    Ok(())
}

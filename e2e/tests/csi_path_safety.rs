//! The CSI plugin refuses paths it must not touch: traversal, symbolic links escaping the roots, paths
//! outside the kubelet root or the mount root, a `fluid_path` that is not exactly the runtime's FUSE
//! mount path, a symbolic link inside the mount root leading to another dataset's live FUSE mount, a
//! node label that is not a FUSE label, and malformed requests; nothing gets mounted and no Node gets
//! labelled. The real thing (and a dead FUSE mount at the path) still works.

mod csi_support;

use anyhow::Result;
use csi_plugin::proto::volume_capability::{AccessType, BlockVolume};
use csi_support::*;
use ferrofluid_api::keys::{ATTR_FLUID_PATH, ATTR_NODE_SELECTOR_KEY, ATTR_RUNTIME_NAME, ATTR_RUNTIME_NAMESPACE};
use ferrofluid_api::keys::{CapacityKind, DatasetKey};
use ferrofluid_e2e::redis::RedisServer;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::{Code, Status};

/// Asserts `InvalidArgument` whose message contains `why`.
fn refused(what: &str, status: Status, why: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
    assert!(status.message().contains(why), "{what}: {:?} does not say {why:?}", status.message());
}

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
    let root = mount_root.display().to_string();
    let other = DatasetKey::new(&key.namespace, "other");
    std::fs::create_dir_all(other.fuse_mount_path(&root))?;
    std::fs::create_dir_all(fluid.join("sub"))?;
    let bad_fluid_paths = [
        outside.clone(),
        mount_root.join("../outside"),
        mount_root.join("escape"),
        mount_root.join("to-kubelet/pods"),
        mount_root.clone(),
        // Under the root, existing, free of links, but not exactly this runtime's FUSE mount path.
        PathBuf::from(other.fuse_mount_path(&root)),
        PathBuf::from(key.fuse_host_dir(&root)),
        fluid.join("sub"),
        PathBuf::from(format!("{}/juicefs/{}/./{}/juicefs-fuse", root, key.namespace, key.name)),
        PathBuf::from(format!("{}//juicefs/{}/{}/juicefs-fuse", root, key.namespace, key.name)),
        PathBuf::from(format!("{}/", fluid.display())),
        PathBuf::from(format!("{}/juicefs/{}/x/../{}/juicefs-fuse", root, key.namespace, key.name)),
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
    no_fluid.volume_context.remove(ATTR_FLUID_PATH);
    assert_eq!(node.node_publish_volume(no_fluid).await.expect_err("no fluid_path").code(), Code::InvalidArgument);
    // The runtime attributes are required: they give the only fluid_path the volume may name. The
    // refusal names the one that is missing.
    for (missing, present) in [(ATTR_RUNTIME_NAMESPACE, ATTR_RUNTIME_NAME), (ATTR_RUNTIME_NAME, ATTR_RUNTIME_NAMESPACE)]
    {
        let mut stage = stage_request(&volume, &staging, &ctx);
        stage.volume_context.remove(missing);
        let mut publish = publish_request(&volume, &staging, &good_target, &ctx, false);
        publish.volume_context.remove(missing);
        let stage = node.node_stage_volume(stage).await.expect_err(missing);
        let publish = node.node_publish_volume(publish).await.expect_err(missing);
        for status in [stage, publish] {
            let named = |attr: &str| {
                status.message().split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).any(|w| w == attr)
            };
            assert!(named(missing) && !named(present), "{missing} missing: {:?}", status.message());
            refused(missing, status, missing);
        }
    }
    // Both missing, even with an explicit FUSE label key that needs no runtime to derive it.
    let mut stage = stage_request(&volume, &staging, &ctx);
    let mut publish = publish_request(&volume, &staging, &good_target, &ctx, false);
    for c in [&mut stage.volume_context, &mut publish.volume_context] {
        c.remove(ATTR_RUNTIME_NAMESPACE);
        c.remove(ATTR_RUNTIME_NAME);
        c.insert(ATTR_NODE_SELECTOR_KEY.into(), key.fuse_node_label());
    }
    refused("stage without runtime", node.node_stage_volume(stage).await.expect_err("stage"), ATTR_RUNTIME_NAMESPACE);
    let status = node.node_publish_volume(publish).await.expect_err("publish");
    refused("publish without runtime", status, ATTR_RUNTIME_NAMESPACE);
    // The driver only ever sets a FUSE label (fluid.io/f-…) on its Node: not a foreign key, and not
    // another ferrofluid label either (these are this test's own, so removing them after is safe).
    let mut foreign_label = stage_request(&volume, &staging, &ctx);
    foreign_label.volume_context.insert(ATTR_NODE_SELECTOR_KEY.into(), "node-role.kubernetes.io/control-plane".into());
    refused("foreign label", node.node_stage_volume(foreign_label).await.expect_err("label"), ATTR_NODE_SELECTOR_KEY);
    for label in
        [key.worker_node_label(), key.juicefs_worker_node_label(), key.capacity_node_label(CapacityKind::Total)]
    {
        let _guard = LabelGuard { node: NODE.into(), key: label.clone() };
        let mut other_label = stage_request(&volume, &staging, &ctx);
        other_label.volume_context.insert(ATTR_NODE_SELECTOR_KEY.into(), label.clone());
        let status = node.node_stage_volume(other_label).await.expect_err(&label);
        refused(&label, status, ATTR_NODE_SELECTOR_KEY);
        assert_eq!(node_label(&client, NODE, &label).await?, None, "{label} was set");
    }

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

/// `juicefs/<ns>/<name>/juicefs-fuse`'s directories, from the FUSE mount path up to the namespace's.
fn fuse_path_and_parents(key: &DatasetKey, root: &str) -> [PathBuf; 3] {
    let fluid = PathBuf::from(key.fuse_mount_path(root));
    let host = PathBuf::from(key.fuse_host_dir(root));
    let ns = host.parent().map(Path::to_path_buf).unwrap_or_default();
    [fluid, host, ns]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_to_another_datasets_mount_are_refused() -> Result<()> {
    // Two tenants, each with a dataset called `data`; B's FUSE client is live and holds B's data.
    let pid = std::process::id();
    let a = DatasetKey::new(format!("ff-csi-tenant-a-{pid}"), "data");
    let b = DatasetKey::new(format!("ff-csi-tenant-b-{pid}"), "data");
    let _guards = [a.fuse_node_label(), b.fuse_node_label()].map(|key| LabelGuard { node: NODE.into(), key });
    let redis = RedisServer::start()?;
    let mut plugin = Plugin::start("links", "3s")?;
    let client = ferrofluid_e2e::client().await?;
    let mut node = plugin.node().await?;
    let root = plugin.mount_root.display().to_string();
    let (paths_a, paths_b) = (fuse_path_and_parents(&a, &root), fuse_path_and_parents(&b, &root));
    let (fluid_a, fluid_b) = (paths_a[0].clone(), paths_b[0].clone());
    let meta = plugin.format(&redis, 1, "tenantb")?;
    let juicefs_b = plugin.mount_juicefs(&meta, &fluid_b)?;
    assert!(plugin.write(&fluid_b.join("secret"), "tenant b only")?);
    let (ctx_a, ctx_b) =
        (volume_context(&fluid_a, &a.namespace, &a.name), volume_context(&fluid_b, &b.namespace, &b.name));
    let (staging_a, staging_b) = (plugin.staging(&a.pv_name()), plugin.staging(&b.pv_name()));
    let (target_a, target_b) = (plugin.target("pod-a", &a.pv_name()), plugin.target("pod-b", &b.pv_name()));

    // A's FUSE path, then its dataset directory, then its namespace directory, replaced by a link to the
    // same place of B's: A's exact fluid_path then leads into B's live mount.
    for (link, to) in paths_a.iter().zip(&paths_b) {
        let _ = std::fs::remove_dir_all(&paths_a[2]);
        std::fs::create_dir_all(link.parent().expect("parent"))?;
        std::os::unix::fs::symlink(to, link)?;
        let what = format!("{} -> {}", link.display(), to.display());
        assert_eq!(
            plugin.read(&fluid_a.join("secret"))?.as_deref(),
            Some("tenant b only"),
            "{what}: the link does not lead to B's data, the test proves nothing"
        );
        let status = node.node_stage_volume(stage_request(&a.pv_name(), &staging_a, &ctx_a)).await.expect_err("stage");
        refused(&format!("stage through {what}"), status, "symbolic link");
        let status = node
            .node_publish_volume(publish_request(&a.pv_name(), &staging_a, &target_a, &ctx_a, false))
            .await
            .expect_err("publish");
        refused(&format!("publish through {what}"), status, "symbolic link");
        assert_eq!(plugin.mounts_at(&target_a)?, 0, "{what}: B's data was mounted into A's pod");
        std::fs::remove_file(link)?;
    }

    // B's live FUSE path named by a volume of runtime A: under the root, no link, but not A's path.
    let b_as_a = volume_context(&fluid_b, &a.namespace, &a.name);
    let status = node.node_stage_volume(stage_request(&a.pv_name(), &staging_a, &b_as_a)).await.expect_err("stage");
    refused("stage of B's path for A", status, "is not");
    let status = node
        .node_publish_volume(publish_request(&a.pv_name(), &staging_a, &target_a, &b_as_a, false))
        .await
        .expect_err("publish");
    refused("publish of B's path for A", status, "is not");

    // Nothing mounted but B's FUSE client, A's Node label never set.
    let work = plugin.work.clone();
    let mounted: Vec<_> = plugin.mounts()?.into_iter().map(|m| m.0).filter(|m| m.starts_with(&work)).collect();
    assert_eq!(mounted, std::slice::from_ref(&fluid_b), "a refused request mounted something");
    assert_eq!(node_label(&client, NODE, &a.fuse_node_label()).await?, None);

    // A dead FUSE mount at the last component is still handled: staging detaches it (B was never
    // staged before, so the recovery loop does not know the path and cannot be the one cleaning it).
    plugin.kill_juicefs(juicefs_b);
    plugin.eventually("B's FUSE mount dead", Duration::from_secs(20), || plugin.is_stale(&fluid_b))?;
    node.node_stage_volume(stage_request(&b.pv_name(), &staging_b, &ctx_b)).await?;
    assert_eq!(plugin.mounts_at(&fluid_b)?, 0, "stage left the dead FUSE mount at {}", fluid_b.display());
    assert_eq!(node_label(&client, NODE, &b.fuse_node_label()).await?.as_deref(), Some("true"));

    // The real thing works: B's client back, published (from the checked fd) into B's pod with B's data.
    plugin.mount_juicefs(&meta, &fluid_b)?;
    node.node_publish_volume(publish_request(&b.pv_name(), &staging_b, &target_b, &ctx_b, false)).await?;
    assert_eq!(plugin.mounts_at(&target_b)?, 1);
    assert_eq!(plugin.read(&target_b.join("secret"))?.as_deref(), Some("tenant b only"));
    node.node_unpublish_volume(unpublish_request(&b.pv_name(), &target_b)).await?;
    node.node_unstage_volume(unstage_request(&b.pv_name(), &staging_b)).await?;
    assert_eq!(plugin.mounts_at(&target_b)?, 0);
    Ok(())
}

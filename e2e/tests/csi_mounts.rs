//! The CSI plugin with real JuiceFS FUSE mounts, in a private mount namespace: publish waits for the FUSE
//! mount, two pods' targets share data, read-only is enforced, a killed FUSE client leaves stale targets
//! that the recovery loop re-binds once JuiceFS is back, concurrent calls on one target are refused, and
//! unpublish/unstage clean up (twice each, and also over a dead FUSE). Stage/unstage label the real Node `node-3` of the local cluster.

mod csi_support;

use anyhow::{Result, ensure};
use csi_support::*;
use ferrofluid_api::keys::DatasetKey;
use ferrofluid_e2e::redis::RedisServer;
use ferrofluid_e2e::{TestNamespace, kubectl_ok};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn stats_request(volume: &str, path: &Path) -> csi_plugin::proto::NodeGetVolumeStatsRequest {
    csi_plugin::proto::NodeGetVolumeStatsRequest {
        volume_id: volume.into(),
        volume_path: path.display().to_string(),
        staging_target_path: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn publish_share_recover_and_clean_up() -> Result<()> {
    let ns = TestNamespace::new("ff-csi-mounts")?;
    let key = DatasetKey::new(&ns.name, "jfsdemo");
    let redis = RedisServer::start()?;
    let mut plugin = Plugin::start("mounts", "60s")?;
    let meta = plugin.format(&redis, 1, "csimounts")?;
    let mount_root = plugin.mount_root.display().to_string();
    let fluid = PathBuf::from(key.fuse_mount_path(&mount_root));
    let volume = key.pv_name();
    let ctx = volume_context(&fluid, &ns.name, &key.name);
    let staging = plugin.staging(&volume);
    let (t1, t2, t3) =
        (plugin.target("pod-a", &volume), plugin.target("pod-b", &volume), plugin.target("pod-c", &volume));
    let client = ferrofluid_e2e::client().await?;
    let label = key.fuse_node_label();
    let _label_guard = LabelGuard { node: NODE.into(), key: label.clone() };
    let mut node = plugin.node().await?;

    // Stage labels this plugin's own Node; staging again is a no-op.
    node.node_stage_volume(stage_request(&volume, &staging, &ctx)).await?;
    assert_eq!(node_label(&client, NODE, &label).await?.as_deref(), Some("true"));
    node.node_stage_volume(stage_request(&volume, &staging, &ctx)).await?;

    // Publish before the FUSE mount exists: the call waits, and succeeds once JuiceFS has mounted.
    let mut waiting = node.clone();
    let first = publish_request(&volume, &staging, &t1, &ctx, false);
    let pending = tokio::spawn(async move { waiting.node_publish_volume(first).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(!pending.is_finished(), "publish answered before any FUSE mount existed: {:?}", pending.await?);
    // A second call for the same target while the first is in progress is not interleaved: Aborted.
    let concurrent = node.node_publish_volume(publish_request(&volume, &staging, &t1, &ctx, false)).await;
    assert_eq!(concurrent.expect_err("concurrent publish").code(), tonic::Code::Aborted);
    let juicefs = plugin.mount_juicefs(&meta, &fluid)?;
    pending.await??;
    node.node_publish_volume(publish_request(&volume, &staging, &t2, &ctx, false)).await?;
    node.node_publish_volume(publish_request(&volume, &staging, &t3, &ctx, true)).await?;
    for t in [&t1, &t2, &t3] {
        assert_eq!(plugin.mounts_at(t)?, 1, "{} should hold exactly one bind", t.display());
    }

    // Data written through one pod's target is read through the other's; the read-only target refuses writes.
    assert!(plugin.write(&t1.join("greeting"), "hello through pod-a")?);
    assert_eq!(plugin.read(&t2.join("greeting"))?.as_deref(), Some("hello through pod-a"));
    assert_eq!(plugin.read(&fluid.join("greeting"))?.as_deref(), Some("hello through pod-a"));
    assert_eq!(plugin.read(&t3.join("greeting"))?.as_deref(), Some("hello through pod-a"));
    assert!(!plugin.write(&t3.join("refused"), "x")?, "a read-only publication accepted a write");

    // Volume stats through the bind are the FUSE file system's; the condition is normal.
    let stats = node.node_get_volume_stats(stats_request(&volume, &t1)).await?.into_inner();
    assert!(!stats.volume_condition.as_ref().is_some_and(|c| c.abnormal), "{stats:?}");
    assert!(stats.usage.iter().any(|u| u.total > 0), "{stats:?}");

    // Same arguments again: OK, nothing stacked; other arguments: AlreadyExists.
    node.node_publish_volume(publish_request(&volume, &staging, &t1, &ctx, false)).await?;
    assert_eq!(plugin.mounts_at(&t1)?, 1);
    let conflict = node.node_publish_volume(publish_request(&volume, &staging, &t1, &ctx, true)).await;
    assert_eq!(conflict.expect_err("conflict").code(), tonic::Code::AlreadyExists);

    // The FUSE client dies: every target turns stale. The recovery loop detaches the dead mount at
    // fluid_path (a new FUSE client cannot mount over it) …
    plugin.kill_juicefs(juicefs);
    plugin.eventually("stale targets", Duration::from_secs(20), || plugin.is_stale(&t1))?;
    let stats = node.node_get_volume_stats(stats_request(&volume, &t1)).await?.into_inner();
    assert!(stats.volume_condition.as_ref().is_some_and(|c| c.abnormal), "a stale target reported normal: {stats:?}");
    plugin.eventually(
        "the dead FUSE mount detached",
        Duration::from_secs(30),
        || Ok(plugin.mounts_at(&fluid)? == 0),
    )?;
    // … and once JuiceFS is back, binds the new mount over every stale target (on top: a running
    // container's HostToContainer copy of the target sees only mounts made on it).
    let juicefs = plugin.mount_juicefs(&meta, &fluid)?;
    plugin.eventually("targets re-bound", Duration::from_secs(60), || {
        Ok([&t1, &t2, &t3]
            .iter()
            .all(|t| plugin.read(&t.join("greeting")).ok().flatten().as_deref() == Some("hello through pod-a")))
    })?;
    for t in [&t1, &t2, &t3] {
        assert_eq!(plugin.mounts_at(t)?, 2, "{} should hold the stale bind and the live one over it", t.display());
    }
    assert!(plugin.write(&t2.join("after"), "written after recovery")?);
    assert_eq!(plugin.read(&t1.join("after"))?.as_deref(), Some("written after recovery"));
    assert!(!plugin.write(&t3.join("refused"), "x")?, "read-only was lost on re-bind");

    // The recovery is reported on the Dataset and in the metrics.
    plugin.eventually("a FuseRecoverSucceed event", Duration::from_secs(30), || {
        let reasons = kubectl_ok(&["get", "events", "-n", &ns.name, "-o", "jsonpath={.items[*].reason}"], None)?;
        Ok(reasons.contains("FuseRecoverSucceed"))
    })?;
    let metrics = plugin.metrics()?;
    assert!(metrics.contains(r#"ferrofluid_csi_calls_total{method="NodePublishVolume"}"#), "{metrics}");
    assert!(
        metrics.contains(r#"ferrofluid_csi_errors_total{code="AlreadyExists",method="NodePublishVolume"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"ferrofluid_csi_fuse_recoveries_total{result="succeeded"} 3"#), "{metrics}");

    // The FUSE client dies again: unpublish still succeeds over the dead FUSE, twice, and removes the target.
    plugin.kill_juicefs(juicefs);
    plugin.eventually("stale targets", Duration::from_secs(20), || plugin.is_stale(&t2))?;
    for t in [&t1, &t2, &t3] {
        node.node_unpublish_volume(unpublish_request(&volume, t)).await?;
        node.node_unpublish_volume(unpublish_request(&volume, t)).await?;
        assert_eq!(plugin.mounts_at(t)?, 0, "{} still mounted", t.display());
        assert!(!t.exists(), "{} not removed", t.display());
    }

    // Unstage twice: the runtime does not exist, so the FUSE label goes.
    node.node_unstage_volume(unstage_request(&volume, &staging)).await?;
    node.node_unstage_volume(unstage_request(&volume, &staging)).await?;
    assert_eq!(node_label(&client, NODE, &label).await?, None);
    Ok(())
}

//! The CSI plugin never wedges on a hung FUSE client. One dataset's JuiceFS client is frozen (SIGSTOP:
//! every request on its mount blocks, as with a wedged or network-stalled client) while a pod publishes
//! it. Then, all bounded in time: another dataset's pod on the same node publishes and reads; volume
//! stats of the hung volume answer (an error or an abnormal condition) however often they are asked,
//! without a thread more per call; and deleting the hung volume's pod (unpublish) completes, detaching
//! the mount.

mod csi_support;

use anyhow::{Context, Result, ensure};
use csi_support::*;
use ferrofluid_api::keys::DatasetKey;
use ferrofluid_e2e::TestNamespace;
use ferrofluid_e2e::redis::RedisServer;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Far longer than any answer should take; a wedged call never answers.
const BOUND: Duration = Duration::from_secs(30);

fn stats_request(volume: &str, path: &Path) -> csi_plugin::proto::NodeGetVolumeStatsRequest {
    csi_plugin::proto::NodeGetVolumeStatsRequest {
        volume_id: volume.into(),
        volume_path: path.display().to_string(),
        staging_target_path: String::new(),
    }
}

async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> Result<T> {
    tokio::time::timeout(BOUND, f).await.with_context(|| format!("{what} did not answer within {BOUND:?}: wedged"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_fuse_client_wedges_nothing_else() -> Result<()> {
    let ns = TestNamespace::new("ff-csi-hung")?;
    let redis = RedisServer::start()?;
    let mut plugin = Plugin::start("hung", "10s")?;
    let mount_root = plugin.mount_root.display().to_string();
    let (a, b) = (DatasetKey::new(&ns.name, "hung"), DatasetKey::new(&ns.name, "alive"));
    let (fa, fb) = (PathBuf::from(a.fuse_mount_path(&mount_root)), PathBuf::from(b.fuse_mount_path(&mount_root)));
    let (va, vb) = (a.pv_name(), b.pv_name());
    let (ctx_a, ctx_b) = (volume_context(&fa, &ns.name, &a.name), volume_context(&fb, &ns.name, &b.name));
    let _labels = [
        LabelGuard { node: NODE.into(), key: a.fuse_node_label() },
        LabelGuard { node: NODE.into(), key: b.fuse_node_label() },
    ];
    let meta_a = plugin.format(&redis, 1, "hunga")?;
    let meta_b = plugin.format(&redis, 2, "hungb")?;
    let ja = plugin.mount_juicefs(&meta_a, &fa)?;
    plugin.mount_juicefs(&meta_b, &fb)?;
    let mut node = plugin.node().await?;
    for (v, ctx) in [(&va, &ctx_a), (&vb, &ctx_b)] {
        node.node_stage_volume(stage_request(v, &plugin.staging(v), ctx)).await?;
    }
    let target_a = plugin.target("pod-hung", &va);
    node.node_publish_volume(publish_request(&va, &plugin.staging(&va), &target_a, &ctx_a, false)).await?;
    assert!(plugin.write(&target_a.join("before"), "written before the freeze")?);

    // Freeze A's client, and keep asking about it the way kubelet and the recovery loop do.
    let threads_before = plugin.threads()?;
    plugin.freeze_juicefs(ja, true);
    for i in 0..4 {
        let answer =
            bounded("NodeGetVolumeStats of the hung volume", node.node_get_volume_stats(stats_request(&va, &target_a)))
                .await?;
        match answer {
            Ok(r) => ensure!(
                r.get_ref().volume_condition.as_ref().is_some_and(|c| c.abnormal),
                "call {i}: a hung volume reported normal: {:?}",
                r.get_ref()
            ),
            Err(status) => ensure!(status.code() != tonic::Code::Ok, "{status:?}"),
        }
    }

    // Another dataset on the same node: publishes and reads, as if nothing happened.
    let target_b = plugin.target("pod-alive", &vb);
    bounded(
        "NodePublishVolume of the other dataset",
        node.node_publish_volume(publish_request(&vb, &plugin.staging(&vb), &target_b, &ctx_b, false)),
    )
    .await??;
    assert!(plugin.write(&target_b.join("f"), "alive")?);
    assert_eq!(plugin.read(&target_b.join("f"))?.as_deref(), Some("alive"));

    // However often it was asked, the hung client holds a few blocked threads, not one per call.
    let threads_after = plugin.threads()?;
    ensure!(
        threads_after <= threads_before + 4,
        "threads grew from {threads_before} to {threads_after}: a blocked thread per call"
    );
    let metrics = plugin.metrics()?;
    let in_flight = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ferrofluid_csi_fs_calls_in_flight "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .context("ferrofluid_csi_fs_calls_in_flight")?;
    ensure!((1.0..=3.0).contains(&in_flight), "calls in flight on the hung paths: {in_flight}");

    // The hung volume's pod goes away: unpublish detaches the mount and answers.
    bounded("NodeUnpublishVolume of the hung volume", node.node_unpublish_volume(unpublish_request(&va, &target_a)))
        .await??;
    ensure!(plugin.mounts_at(&target_a)? == 0, "the hung target is still mounted");
    bounded(
        "NodeUnstageVolume of the hung volume",
        node.node_unstage_volume(unstage_request(&va, &plugin.staging(&va))),
    )
    .await??;

    // Thawed, the client serves again and its calls in flight end.
    plugin.freeze_juicefs(ja, false);
    plugin.eventually("no FUSE call left in flight", Duration::from_secs(30), || {
        Ok(plugin.metrics()?.lines().any(|l| l == "ferrofluid_csi_fs_calls_in_flight 0"))
    })?;
    Ok(())
}

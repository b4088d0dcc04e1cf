//! An agent started with the real csi-plugin runs it inside the node's mount namespace, with its socket
//! under the node's directory, answering the CSI node service; stopping the agent stops the plugin too.

use anyhow::Result;
use ferrofluid_e2e::TempDir;
use ferrofluid_e2e::agent::csi::CsiClient;
use ferrofluid_e2e::agent::harness::{Csi, KwokNode, NodeAgents, namespace_pids, wait_for};
use ferrofluid_e2e::bin_path;
use std::time::Duration;

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

#[test]
fn agent_runs_the_real_csi_plugin_in_the_node_namespace() -> Result<()> {
    let plugin = bin_path("csi-plugin");
    let pid = std::process::id();
    let dir = TempDir(std::env::temp_dir().join(format!("ferrofluid-agent-plugin-{pid}")));
    let node = KwokNode::private(&format!("agent-plugin-{pid}"), &format!("127.0.1.{}", 100 + pid % 50))?;
    let mut agents = NodeAgents::start(&dir.0, &[&node.name], Csi::Plugin, &[])?;
    let node_ns = agents.namespace_id(&node.name)?;
    let socket = agents.layout(&node.name).default_csi_socket();

    let plugin_pid = wait_for("the csi-plugin process in the node namespace", Duration::from_secs(60), || {
        Ok(namespace_pids(&node_ns).into_iter().find(|p| cmdline(*p).starts_with(&plugin.display().to_string())))
    })?;
    let args = cmdline(plugin_pid);
    assert!(args.contains(&format!("--endpoint unix://{}", socket.display())), "{args}");
    assert!(args.contains(&format!("--node-id {}", node.name)), "{args}");

    let rt = tokio::runtime::Runtime::new()?;
    let client = {
        let _in_runtime = rt.enter();
        CsiClient::new(socket.clone())?
    };
    let stage = wait_for("the plugin to answer NodeGetCapabilities", Duration::from_secs(60), || {
        Ok(rt.block_on(client.supports_stage()).ok())
    })?;
    assert!(stage, "fuse.csi.fluid.io must advertise STAGE_UNSTAGE_VOLUME (kubelet stages before publishing)");

    agents.stop()?;
    assert!(std::fs::metadata(format!("/proc/{plugin_pid}")).is_err(), "csi-plugin outlived its agent");
    assert!(namespace_pids(&node_ns).is_empty());
    drop(rt);
    Ok(())
}

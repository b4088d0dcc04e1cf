//! The node agent calls CSI like kubelet: for pods (of any origin) whose claim is bound to a
//! `fuse.csi.fluid.io` PV it stages the volume once per node at kubelet's staging path, publishes it to
//! each pod's volume dir (retrying while the driver answers Unavailable), and on deletion unpublishes,
//! unstaging only after the last pod on the node. The driver here is the test's own recording CSI node
//! server on a unix socket, so the agent's requests are what is checked; the real plugin is exercised
//! by the scenario tests.

use anyhow::{Context, Result};
use csi_plugin::proto::node_server::{Node, NodeServer};
use csi_plugin::proto::node_service_capability::{Rpc, Type, rpc};
use csi_plugin::proto::*;
use ferrofluid_api::keys::CSI_DRIVER_NAME;
use ferrofluid_e2e::TempDir;
use ferrofluid_e2e::agent::harness::{Csi, KwokNode, NodeAgents, wait_for};
use ferrofluid_e2e::agent::status::{self, PodRecord};
use ferrofluid_e2e::{TestNamespace, kubectl_ok};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::{Request, Response, Status};

const WAIT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, PartialEq)]
enum Call {
    Stage { volume: String, staging: String, context: HashMap<String, String> },
    Publish { volume: String, staging: String, target: String, readonly: bool, context: HashMap<String, String> },
    Unpublish { volume: String, target: String },
    Unstage { volume: String, staging: String },
}

/// Records every call; the first NodePublish of each target answers Unavailable (FUSE "not ready").
#[derive(Default, Clone)]
struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
    refused_once: Arc<Mutex<HashSet<String>>>,
}

impl Recorder {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn push(&self, call: Call) {
        if let Ok(mut c) = self.calls.lock() {
            c.push(call);
        }
    }
}

#[tonic::async_trait]
impl Node for Recorder {
    async fn node_stage_volume(
        &self,
        r: Request<NodeStageVolumeRequest>,
    ) -> Result<Response<NodeStageVolumeResponse>, Status> {
        let r = r.into_inner();
        self.push(Call::Stage { volume: r.volume_id, staging: r.staging_target_path, context: r.volume_context });
        Ok(Response::new(NodeStageVolumeResponse {}))
    }

    async fn node_unstage_volume(
        &self,
        r: Request<NodeUnstageVolumeRequest>,
    ) -> Result<Response<NodeUnstageVolumeResponse>, Status> {
        let r = r.into_inner();
        self.push(Call::Unstage { volume: r.volume_id, staging: r.staging_target_path });
        Ok(Response::new(NodeUnstageVolumeResponse {}))
    }

    async fn node_publish_volume(
        &self,
        r: Request<NodePublishVolumeRequest>,
    ) -> Result<Response<NodePublishVolumeResponse>, Status> {
        let r = r.into_inner();
        let first = self.refused_once.lock().map(|mut s| s.insert(r.target_path.clone())).unwrap_or(false);
        self.push(Call::Publish {
            volume: r.volume_id,
            staging: r.staging_target_path,
            target: r.target_path,
            readonly: r.readonly,
            context: r.volume_context,
        });
        if first {
            return Err(Status::unavailable("fuse mount not ready yet"));
        }
        Ok(Response::new(NodePublishVolumeResponse {}))
    }

    async fn node_unpublish_volume(
        &self,
        r: Request<NodeUnpublishVolumeRequest>,
    ) -> Result<Response<NodeUnpublishVolumeResponse>, Status> {
        let r = r.into_inner();
        self.push(Call::Unpublish { volume: r.volume_id, target: r.target_path });
        Ok(Response::new(NodeUnpublishVolumeResponse {}))
    }

    async fn node_get_capabilities(
        &self,
        _: Request<NodeGetCapabilitiesRequest>,
    ) -> Result<Response<NodeGetCapabilitiesResponse>, Status> {
        let stage =
            NodeServiceCapability { r#type: Some(Type::Rpc(Rpc { r#type: rpc::Type::StageUnstageVolume as i32 })) };
        Ok(Response::new(NodeGetCapabilitiesResponse { capabilities: vec![stage] }))
    }
}

/// Deletes the test's cluster-scoped PV on drop.
struct Pv(String);

impl Drop for Pv {
    fn drop(&mut self) {
        let _ = ferrofluid_e2e::kubectl(&["delete", "pv", &self.0, "--wait=false"], None);
    }
}

fn uid(ns: &str, pod: &str) -> Result<String> {
    let uid = kubectl_ok(&["-n", ns, "get", "pod", pod, "-o", "jsonpath={.metadata.uid}"], None)?;
    Ok(uid.trim().to_string())
}

#[test]
fn agent_stages_and_publishes_fluid_volumes_like_kubelet() -> Result<()> {
    let pid = std::process::id();
    let dir = TempDir(std::env::temp_dir().join(format!("ferrofluid-agent-csi-{pid}")));
    std::fs::create_dir_all(&dir.0)?;
    let socket = dir.0.join("fake-csi.sock");
    let recorder = Recorder::default();
    let rt = tokio::runtime::Runtime::new()?;
    let listener = rt.block_on(async { tokio::net::UnixListener::bind(&socket) })?;
    let server = tonic::transport::Server::builder()
        .add_service(NodeServer::new(recorder.clone()))
        .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener));
    rt.spawn(server);

    let node = KwokNode::private(&format!("agent-csi-{pid}"), &format!("127.0.1.{}", 150 + pid % 50))?;
    let ns = TestNamespace::new("agent-csi")?;
    let pv_name = format!("agent-csi-{pid}");
    let _pv = Pv(pv_name.clone());
    let mut agents = NodeAgents::start(&dir.0.join("nodes"), &[&node.name], Csi::Socket(socket.clone()), &[])?;
    let layout = agents.layout(&node.name);

    let objects = format!(
        r#"apiVersion: v1
kind: PersistentVolume
metadata: {{name: {pv}}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteMany]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: fluid
  claimRef: {{namespace: {ns}, name: data}}
  csi:
    driver: {driver}
    volumeHandle: {pv}
    volumeAttributes: {{fluid_path: /runtime-mnt/juicefs/{ns}/data/juicefs-fuse, mount_type: JuiceFS}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data, namespace: {ns}}}
spec:
  storageClassName: fluid
  volumeName: {pv}
  accessModes: [ReadWriteMany]
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: app-a, namespace: {ns}}}
spec:
  nodeName: {node}
  containers: [{{name: app, image: nginx, volumeMounts: [{{name: data, mountPath: /data}}]}}]
  volumes: [{{name: data, persistentVolumeClaim: {{claimName: data}}}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: app-b, namespace: {ns}}}
spec:
  nodeName: {node}
  containers: [{{name: app, image: nginx, volumeMounts: [{{name: data, mountPath: /data}}]}}]
  volumes: [{{name: data, persistentVolumeClaim: {{claimName: data, readOnly: true}}}}]
"#,
        pv = pv_name,
        ns = ns.name,
        node = node.name,
        driver = CSI_DRIVER_NAME,
    );
    kubectl_ok(&["apply", "-f", "-"], Some(&objects))?;
    let (uid_a, uid_b) = (uid(&ns.name, "app-a")?, uid(&ns.name, "app-b")?);
    let staging = layout.csi_staging(CSI_DRIVER_NAME, &pv_name).display().to_string();
    let target_a = layout.csi_target(&uid_a, &pv_name).display().to_string();
    let target_b = layout.csi_target(&uid_b, &pv_name).display().to_string();

    for pod in ["app-a", "app-b"] {
        wait_for(&format!("{pod}'s volume published"), WAIT, || {
            let path = layout.pod_status(&ns.name, pod);
            if !path.exists() {
                return Ok(None);
            }
            let r: PodRecord = status::read(&path)?;
            Ok((r.csi_volumes == vec![pv_name.clone()]).then_some(()))
        })?;
    }
    let calls = recorder.calls();
    let stages: Vec<&Call> = calls.iter().filter(|c| matches!(c, Call::Stage { .. })).collect();
    assert_eq!(stages.len(), 1, "one NodeStage per volume and node: {calls:#?}");
    let Call::Stage { volume, staging: stage_path, context } = stages[0] else { unreachable!() };
    assert_eq!(volume, &pv_name);
    assert_eq!(stage_path, &staging);
    assert_eq!(context.get("mount_type").map(String::as_str), Some("JuiceFS"));
    assert_eq!(
        context.get("fluid_path").map(String::as_str),
        Some(format!("/runtime-mnt/juicefs/{}/data/juicefs-fuse", ns.name).as_str())
    );
    let first_publish = calls.iter().position(|c| matches!(c, Call::Publish { .. })).context("no publish")?;
    let stage_at = calls.iter().position(|c| matches!(c, Call::Stage { .. })).context("no stage")?;
    assert!(stage_at < first_publish, "NodeStage must precede NodePublish: {calls:#?}");
    for (target, readonly) in [(&target_a, false), (&target_b, true)] {
        let publishes: Vec<&Call> =
            calls.iter().filter(|c| matches!(c, Call::Publish { target: t, .. } if t == target)).collect();
        assert!(publishes.len() >= 2, "publish to {target} not retried after Unavailable: {calls:#?}");
        for p in publishes {
            let Call::Publish { volume, staging: s, readonly: ro, context, .. } = p else { unreachable!() };
            assert_eq!(volume, &pv_name);
            assert_eq!(s, &staging);
            assert_eq!(*ro, readonly, "readonly of {target}");
            assert_eq!(context.get("mount_type").map(String::as_str), Some("JuiceFS"));
        }
    }
    // kubelet creates the staging dir and the target's parent; both live in the node's namespace only.
    let parent_a = PathBuf::from(&target_a).parent().context("target parent")?.display().to_string();
    for path in [&staging, &parent_a] {
        let probe = agents.exec(&node.name, &["test", "-d", path])?;
        assert!(probe.status.success(), "{path} missing inside the node");
        assert!(!PathBuf::from(path).exists(), "{path} exists on the host");
    }

    // The first pod goes: unpublished, but the volume stays staged for the second.
    kubectl_ok(&["-n", &ns.name, "delete", "pod", "app-a", "--wait=false"], None)?;
    wait_for("app-a torn down", WAIT, || {
        let r: PodRecord = status::read(&layout.pod_status(&ns.name, "app-a"))?;
        Ok((r.phase == "stopped").then_some(()))
    })?;
    let calls = recorder.calls();
    assert!(calls.contains(&Call::Unpublish { volume: pv_name.clone(), target: target_a.clone() }), "{calls:#?}");
    assert!(!calls.iter().any(|c| matches!(c, Call::Unstage { .. })), "unstaged while app-b uses it: {calls:#?}");
    assert!(!calls.iter().any(|c| matches!(c, Call::Unpublish { target, .. } if *target == target_b)));

    // The last pod goes: unpublished, then unstaged.
    kubectl_ok(&["-n", &ns.name, "delete", "pod", "app-b", "--wait=false"], None)?;
    wait_for("app-b torn down", WAIT, || {
        let r: PodRecord = status::read(&layout.pod_status(&ns.name, "app-b"))?;
        Ok((r.phase == "stopped").then_some(()))
    })?;
    let calls = recorder.calls();
    let unpublish_b = calls
        .iter()
        .position(|c| *c == Call::Unpublish { volume: pv_name.clone(), target: target_b.clone() })
        .context("app-b not unpublished")?;
    let unstage = calls
        .iter()
        .position(|c| *c == Call::Unstage { volume: pv_name.clone(), staging: staging.clone() })
        .context("volume not unstaged after its last pod")?;
    assert!(unpublish_b < unstage, "unstaged before unpublishing: {calls:#?}");
    let probe = agents.exec(&node.name, &["test", "-e", &staging])?;
    assert!(!probe.status.success(), "staging dir left behind after unstage");

    agents.stop()?;
    Ok(())
}

//! Shared harness of the `csi_*` tests: the csi-plugin runs in a private mount namespace of its own
//! (`unshare -m --propagation private`), with temporary mount and kubelet roots; JuiceFS FUSE clients are
//! started inside that namespace (`nsenter -t <plugin pid> -m`), so every mount the test makes vanishes
//! with the namespace and nothing ever touches the host's mount table. File checks run through the same
//! `nsenter`; the namespace's mount table is read from `/proc/<plugin pid>/mountinfo`.

#![allow(dead_code)]

use anyhow::{Context, Result, bail};
use csi_plugin::proto::controller_client::ControllerClient;
use csi_plugin::proto::identity_client::IdentityClient;
use csi_plugin::proto::node_client::NodeClient;
use csi_plugin::proto::volume_capability::access_mode::Mode;
use csi_plugin::proto::volume_capability::{AccessMode, AccessType, MountVolume};
use csi_plugin::proto::{
    NodePublishVolumeRequest, NodeStageVolumeRequest, NodeUnpublishVolumeRequest, NodeUnstageVolumeRequest,
    VolumeCapability,
};
use ferrofluid_e2e::redis::{RedisServer, free_port};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint, Uri};

/// The kwok node the plugin acts as (its own Node is the only one it patches).
pub const NODE: &str = "node-3";

/// Fails loudly when a prerequisite is missing.
pub fn require_tools() {
    for tool in ["juicefs", "redis-server", "unshare", "nsenter"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        assert!(found, "{tool} is not on PATH (hack/setup.sh installs it; add ~/.cache/ferrofluid/bin to PATH)");
    }
}

pub struct Plugin {
    pub work: PathBuf,
    pub mount_root: PathBuf,
    pub kubelet_root: PathBuf,
    pub socket: PathBuf,
    pub http_port: u16,
    pub log: PathBuf,
    child: Option<Child>,
    juicefs: Vec<Juicefs>,
}

impl Plugin {
    /// Starts the plugin in a new private mount namespace (FUSE recovery every second, NodePublish waiting
    /// at most `publish_timeout`); waits for its socket.
    pub fn start(tag: &str, publish_timeout: &str) -> Result<Self> {
        require_tools();
        let work = std::env::temp_dir().join(format!("ff-csi-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        let mount_root = work.join("runtime-mnt");
        let kubelet_root = work.join("kubelet");
        std::fs::create_dir_all(&mount_root)?;
        std::fs::create_dir_all(kubelet_root.join("pods"))?;
        let socket = work.join("csi.sock");
        let http_port = free_port()?;
        let log = work.join("csi-plugin.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "--"])
            .arg(ferrofluid_e2e::bin_path("csi-plugin"))
            .arg("--endpoint")
            .arg(format!("unix://{}", socket.display()))
            .args(["--node-id", NODE, "--fuse-recovery-period", "1s", "--publish-timeout", publish_timeout])
            .arg("--mount-root")
            .arg(&mount_root)
            .arg("--kubelet-root")
            .arg(&kubelet_root)
            .arg("--kubeconfig")
            .arg(ferrofluid_e2e::kubeconfig())
            .args(["--http-addr", &format!("127.0.0.1:{http_port}")])
            .env("RUST_LOG", "info,kube=warn")
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .spawn()
            .context("starting unshare … csi-plugin")?;
        let mut plugin =
            Self { work, mount_root, kubelet_root, socket, http_port, log, child: Some(child), juicefs: Vec::new() };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !plugin.socket.exists() {
            let exited = plugin.child.as_mut().map(|c| matches!(c.try_wait(), Ok(Some(_)))).unwrap_or(true);
            if exited || Instant::now() > deadline {
                bail!("csi-plugin did not create its socket:\n{}", plugin.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(plugin)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn node(&self) -> Result<NodeClient<Channel>> {
        Ok(NodeClient::new(self.channel().await?))
    }

    pub async fn identity(&self) -> Result<IdentityClient<Channel>> {
        Ok(IdentityClient::new(self.channel().await?))
    }

    pub async fn controller(&self) -> Result<ControllerClient<Channel>> {
        Ok(ControllerClient::new(self.channel().await?))
    }

    async fn channel(&self) -> Result<Channel> {
        let socket = self.socket.clone();
        // The URI is required by the API but unused: the connector always dials the socket.
        Ok(Endpoint::try_from("http://[::1]:50051")?
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let socket = socket.clone();
                async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(socket).await?)) }
            }))
            .await?)
    }

    /// `juicefs format` of a new file system on a local-directory bucket.
    pub fn format(&self, redis: &RedisServer, db: u32, name: &str) -> Result<String> {
        let meta = redis.meta_url(db);
        let out = Command::new("juicefs")
            .args(["format", "--storage", "file", "--bucket"])
            .arg(self.work.join(format!("bucket-{name}")))
            .args([&meta, name])
            .output()?;
        if !out.status.success() {
            bail!("juicefs format failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(meta)
    }

    /// Starts `juicefs mount` at `fluid_path` inside the plugin's namespace, in a process group of its
    /// own (JuiceFS runs a supervisor and a FUSE server), and waits until the mount appears.
    pub fn mount_juicefs(&mut self, meta: &str, fluid_path: &Path) -> Result<usize> {
        std::fs::create_dir_all(fluid_path)?;
        let idx = self.juicefs.len();
        let log = self.work.join(format!("juicefs-{idx}.log"));
        let out = std::fs::File::create(&log)?;
        let child = Command::new("nsenter")
            .args(["-t", &self.pid().to_string(), "-m", "--", "juicefs", "mount", meta])
            .arg(fluid_path)
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .process_group(0)
            .spawn()
            .context("starting juicefs mount")?;
        self.juicefs.push(Juicefs { child: Some(child) });
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.is_fuse_mounted(fluid_path)? {
            if Instant::now() > deadline {
                bail!("juicefs did not mount {}:\n{}", fluid_path.display(), std::fs::read_to_string(&log)?);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(idx)
    }

    /// SIGKILL to the whole JuiceFS process group: the FUSE connection dies, mounts turn ENOTCONN.
    pub fn kill_juicefs(&mut self, idx: usize) {
        if let Some(j) = self.juicefs.get_mut(idx) {
            j.kill();
        }
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`) to a JuiceFS process group: a stopped client hangs every
    /// request on its mount, as a wedged or network-stalled client does.
    pub fn freeze_juicefs(&mut self, idx: usize, stop: bool) {
        if let Some(c) = self.juicefs.get(idx).and_then(|j| j.child.as_ref()) {
            let signal = if stop { "-STOP" } else { "-CONT" };
            let _ = Command::new("kill").args([signal, "--", &format!("-{}", c.id())]).status();
        }
    }

    /// The plugin process's thread count.
    pub fn threads(&self) -> Result<usize> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|n| n.trim().parse().ok())
            .context("no Threads line")
    }

    /// The plugin namespace's mount table, as (mount point, device, fs type, options) tuples.
    pub fn mounts(&self) -> Result<Vec<(PathBuf, String, String, String)>> {
        let text = std::fs::read_to_string(format!("/proc/{}/mountinfo", self.pid()))?;
        Ok(csi_plugin::mountinfo::parse(&text)
            .into_iter()
            .map(|m| (m.mount_point, m.device, m.fs_type, m.options))
            .collect())
    }

    pub fn mounts_at(&self, path: &Path) -> Result<usize> {
        Ok(self.mounts()?.iter().filter(|m| m.0 == path).count())
    }

    pub fn is_fuse_mounted(&self, path: &Path) -> Result<bool> {
        Ok(self.mounts()?.iter().any(|m| m.0 == path && m.2.starts_with("fuse")))
    }

    /// Runs a shell snippet inside the plugin's mount namespace.
    pub fn sh(&self, script: &str) -> Result<Output> {
        Ok(Command::new("nsenter").args(["-t", &self.pid().to_string(), "-m", "--", "sh", "-c", script]).output()?)
    }

    /// The staging path of `volume`, where kubelet would ask for it.
    pub fn staging(&self, volume: &str) -> PathBuf {
        self.kubelet_root.join(format!("plugins/kubernetes.io/csi/fuse.csi.fluid.io/{volume}/globalmount"))
    }

    /// A pod's target path for `volume`, where kubelet would ask for it.
    pub fn target(&self, pod: &str, volume: &str) -> PathBuf {
        self.kubelet_root.join(format!("pods/{pod}/volumes/kubernetes.io~csi/{volume}/mount"))
    }

    /// The contents of `file` as the plugin's namespace sees it (trimmed), `None` when it cannot be read.
    pub fn read(&self, file: &Path) -> Result<Option<String>> {
        let out = self.sh(&format!("cat '{}'", file.display()))?;
        Ok(out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()))
    }

    /// Writes `text` to `file` inside the plugin's namespace; whether that succeeded.
    pub fn write(&self, file: &Path, text: &str) -> Result<bool> {
        Ok(self.sh(&format!("echo '{text}' > '{}'", file.display()))?.status.success())
    }

    /// Whether `stat` of `path` in the plugin's namespace fails with ENOTCONN (a dead FUSE mount or a bind of one).
    pub fn is_stale(&self, path: &Path) -> Result<bool> {
        let out = self.sh(&format!("stat '{}'", path.display()))?;
        Ok(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not connected"))
    }

    /// Polls `check` until it holds or `limit` passes.
    pub fn eventually(&self, what: &str, limit: Duration, mut check: impl FnMut() -> Result<bool>) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if check()? {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("timed out waiting for {what}; plugin log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// GET /metrics from the plugin's HTTP server.
    pub fn metrics(&self) -> Result<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.http_port))?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut body = String::new();
        s.read_to_string(&mut body)?;
        Ok(body)
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        for j in &mut self.juicefs {
            j.kill();
        }
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && !matches!(c.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // Every process of the namespace is gone, so are its mounts: only plain directories remain.
        if std::thread::panicking() {
            eprintln!("csi-plugin log:\n{}", self.log_text());
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

struct Juicefs {
    child: Option<Child>,
}

impl Juicefs {
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", c.id())]).status();
            let _ = c.wait();
        }
    }
}

/// The volume attributes the runtime-controller writes on a PV.
pub fn volume_context(fluid_path: &Path, namespace: &str, name: &str) -> HashMap<String, String> {
    use ferrofluid_api::keys::*;
    HashMap::from([
        (ATTR_FLUID_PATH.to_string(), fluid_path.display().to_string()),
        (ATTR_MOUNT_TYPE.to_string(), MOUNT_TYPE_JUICEFS.to_string()),
        (ATTR_RUNTIME_NAMESPACE.to_string(), namespace.to_string()),
        (ATTR_RUNTIME_NAME.to_string(), name.to_string()),
    ])
}

pub fn capability(mode: Mode) -> VolumeCapability {
    VolumeCapability {
        access_mode: Some(AccessMode { mode: mode as i32 }),
        access_type: Some(AccessType::Mount(MountVolume::default())),
    }
}

pub fn stage_request(volume_id: &str, staging: &Path, ctx: &HashMap<String, String>) -> NodeStageVolumeRequest {
    NodeStageVolumeRequest {
        volume_id: volume_id.into(),
        staging_target_path: staging.display().to_string(),
        volume_capability: Some(capability(Mode::MultiNodeMultiWriter)),
        volume_context: ctx.clone(),
        ..Default::default()
    }
}

pub fn unstage_request(volume_id: &str, staging: &Path) -> NodeUnstageVolumeRequest {
    NodeUnstageVolumeRequest { volume_id: volume_id.into(), staging_target_path: staging.display().to_string() }
}

pub fn publish_request(
    volume_id: &str,
    staging: &Path,
    target: &Path,
    ctx: &HashMap<String, String>,
    read_only: bool,
) -> NodePublishVolumeRequest {
    NodePublishVolumeRequest {
        volume_id: volume_id.into(),
        staging_target_path: staging.display().to_string(),
        target_path: target.display().to_string(),
        volume_capability: Some(capability(Mode::MultiNodeMultiWriter)),
        readonly: read_only,
        volume_context: ctx.clone(),
        ..Default::default()
    }
}

pub fn unpublish_request(volume_id: &str, target: &Path) -> NodeUnpublishVolumeRequest {
    NodeUnpublishVolumeRequest { volume_id: volume_id.into(), target_path: target.display().to_string() }
}

/// The value of `key` on node `node`, if set.
pub async fn node_label(client: &kube::Client, node: &str, key: &str) -> Result<Option<String>> {
    let api: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
    Ok(api.get(node).await?.metadata.labels.and_then(|l| l.get(key).cloned()))
}

/// Removes a node label on drop, so a failing test leaves no label behind.
pub struct LabelGuard {
    pub node: String,
    pub key: String,
}

impl Drop for LabelGuard {
    fn drop(&mut self) {
        let _ = ferrofluid_e2e::kubectl(&["label", "node", &self.node, &format!("{}-", self.key)], None);
    }
}

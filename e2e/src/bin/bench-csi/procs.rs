//! The processes the benchmark runs, all in its own private mount namespace: a JuiceFS FUSE client
//! (`juicefs mount`, foreground, in a process group of its own) and the csi-plugin. Each is stopped
//! on drop; mounts are detached by [`detach_under`].

use anyhow::{Context, Result, bail};
use csi_plugin::proto::node_client::NodeClient;
use ferrofluid_e2e::redis::free_port;
use hyper_util::rt::TokioIo;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint, Uri};

/// `juicefs format` of a new file system `name` on a local-directory bucket.
pub fn format(meta: &str, bucket: &Path, name: &str) -> Result<()> {
    let out = Command::new("juicefs")
        .args(["format", "--storage", "file", "--bucket"])
        .arg(bucket)
        .args([meta, name])
        .output()?;
    if !out.status.success() {
        bail!("juicefs format failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

pub struct JuiceFs {
    child: Option<Child>,
    pub mount_point: PathBuf,
}

impl JuiceFs {
    /// `juicefs mount` at `mount_point`, caching in `cache_dir`; waits until the mount is in mountinfo.
    /// No usage report, metrics on a free loopback port, no metadata backup.
    pub fn mount(meta: &str, mount_point: &Path, cache_dir: &Path, log: &Path) -> Result<Self> {
        std::fs::create_dir_all(mount_point)?;
        let out = std::fs::File::create(log)?;
        let child = Command::new("juicefs")
            .args(["mount", "--no-usage-report", "--backup-meta", "0", "--metrics"])
            .arg(format!("127.0.0.1:{}", free_port()?))
            .arg("--cache-dir")
            .arg(cache_dir)
            .arg(meta)
            .arg(mount_point)
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .process_group(0)
            .spawn()
            .context("starting juicefs mount")?;
        let fs = Self { child: Some(child), mount_point: mount_point.to_path_buf() };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !is_fuse_mount(mount_point)? {
            if Instant::now() > deadline {
                bail!("juicefs did not mount {}:\n{}", mount_point.display(), std::fs::read_to_string(log)?);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(fs)
    }
}

impl Drop for JuiceFs {
    fn drop(&mut self) {
        // MNT_FORCE on a FUSE mount aborts its connection first: a juicefs thread blocked in a request on
        // its own mount when SIGKILL arrives would otherwise wait for an answer forever, and the process
        // (holding the connection) would never go.
        let flags = rustix::mount::UnmountFlags::FORCE | rustix::mount::UnmountFlags::DETACH;
        let _ = rustix::mount::unmount(&self.mount_point, flags);
        if let Some(mut c) = self.child.take() {
            // The whole process group (juicefs may fork helpers).
            let _ = rustix::process::kill_process_group(
                rustix::process::Pid::from_child(&c),
                rustix::process::Signal::KILL,
            );
            let _ = c.wait();
        }
    }
}

/// Whether `path` is the mount point of a `fuse.juicefs` mount in this namespace.
pub fn is_fuse_mount(path: &Path) -> Result<bool> {
    let table = csi_plugin::mountinfo::read_self()?;
    Ok(table.iter().any(|m| m.mount_point == path && m.fs_type == "fuse.juicefs"))
}

/// Detaches (`MNT_DETACH`) every mount at or below `dir`, deepest first.
pub fn detach_under(dir: &Path) {
    let Ok(table) = csi_plugin::mountinfo::read_self() else { return };
    let mut points: Vec<PathBuf> = table.into_iter().map(|m| m.mount_point).filter(|p| p.starts_with(dir)).collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        let _ = rustix::mount::unmount(&p, rustix::mount::UnmountFlags::DETACH);
    }
}

/// The csi-plugin with temporary mount and kubelet roots under the work directory.
pub struct Plugin {
    child: Option<Child>,
    pub socket: PathBuf,
    pub http: std::net::SocketAddr,
    pub mount_root: PathBuf,
    pub kubelet_root: PathBuf,
}

impl Plugin {
    /// Starts `bin` as node `node`, with its defaults (FUSE recovery every 5 s, log level info) but a
    /// 10 s publish timeout; waits for its socket.
    pub fn start(bin: &Path, work: &Path, node: &str, kubeconfig: &Path) -> Result<Self> {
        let mount_root = work.join("runtime-mnt");
        let kubelet_root = work.join("kubelet");
        std::fs::create_dir_all(&mount_root)?;
        std::fs::create_dir_all(kubelet_root.join("pods"))?;
        let socket = work.join("csi.sock");
        let http: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        // A socket left by an earlier plugin would look ready before this one listens.
        let _ = std::fs::remove_file(&socket);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(work.join("csi-plugin.log"))?;
        let child = Command::new(bin)
            .arg("--endpoint")
            .arg(format!("unix://{}", socket.display()))
            .args(["--node-id", node, "--publish-timeout", "10s", "--http-addr", &http.to_string()])
            .arg("--mount-root")
            .arg(&mount_root)
            .arg("--kubelet-root")
            .arg(&kubelet_root)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut plugin = Self { child: Some(child), socket, http, mount_root, kubelet_root };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !plugin.socket.exists() {
            let exited = plugin.child.as_mut().is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))));
            if exited || Instant::now() > deadline {
                bail!("csi-plugin did not create its socket (log: {})", work.join("csi-plugin.log").display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(plugin)
    }

    /// A gRPC client of the plugin's socket (kubelet's side).
    pub async fn node(&self) -> Result<NodeClient<Channel>> {
        let socket = self.socket.clone();
        // The URI is required by the API but unused: the connector always dials the socket.
        let channel = Endpoint::try_from("http://[::1]:50051")?
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let socket = socket.clone();
                async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(socket).await?)) }
            }))
            .await?;
        Ok(NodeClient::new(channel))
    }

    /// The plugin's `ferrofluid_api_requests_total`, by (verb, resource).
    pub fn requests(&self) -> Result<crate::stats::Requests> {
        ferrofluid_e2e::http::api_requests(self.http)
    }

    /// The staging path of `volume`, where kubelet would ask for it.
    pub fn staging(&self, volume: &str) -> PathBuf {
        self.kubelet_root.join(format!("plugins/kubernetes.io/csi/fuse.csi.fluid.io/{volume}/globalmount"))
    }

    /// A pod's target path for `volume`, where kubelet would ask for it.
    pub fn target(&self, pod: &str, volume: &str) -> PathBuf {
        self.kubelet_root.join(format!("pods/{pod}/volumes/kubernetes.io~csi/{volume}/mount"))
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = rustix::process::kill_process(rustix::process::Pid::from_child(&c), rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && !matches!(c.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

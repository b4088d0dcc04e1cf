//! The gRPC server on kubelet's unix socket.

use crate::driver::Driver;
use crate::proto::controller_server::ControllerServer;
use crate::proto::identity_server::IdentityServer;
use crate::proto::node_server::NodeServer;
use anyhow::{Context, bail};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tokio_stream::wrappers::UnixListenerStream;
use tokio_util::sync::CancellationToken;

/// `unix:///a/b.sock` or `unix:/a/b.sock` → `/a/b.sock`; anything else is refused.
pub fn socket_path(endpoint: &str) -> anyhow::Result<PathBuf> {
    let rest = endpoint
        .strip_prefix("unix://")
        .or_else(|| endpoint.strip_prefix("unix:"))
        .with_context(|| format!("endpoint {endpoint:?} is not unix:///path"))?;
    if !rest.starts_with('/') {
        bail!("endpoint {endpoint:?} must name an absolute socket path");
    }
    Ok(PathBuf::from(rest))
}

/// Creates the socket's directory (0750 when created here) and removes a stale socket, but never any
/// other kind of file.
pub fn prepare_socket(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            std::fs::remove_file(path).with_context(|| format!("removing stale socket {}", path.display()))?;
        }
        Ok(_) => bail!("{} exists and is not a socket; refusing to remove it", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", path.display())),
    }
    Ok(())
}

/// Serves Identity and Node (and Controller, when the driver is configured to) on `path` until
/// `shutdown`; the socket is removed afterwards.
pub async fn serve(
    driver: Driver,
    path: PathBuf,
    shutdown: CancellationToken,
    bound: impl FnOnce(),
) -> anyhow::Result<()> {
    prepare_socket(&path)?;
    let listener = tokio::net::UnixListener::bind(&path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("restricting {}", path.display()))?;
    tracing::info!(socket = %path.display(), "serving CSI");
    bound();
    let result = tonic::transport::Server::builder()
        .add_service(IdentityServer::new(driver.clone()))
        .add_service(NodeServer::new(driver.clone()))
        .add_optional_service(driver.cfg.controller_service.then(|| ControllerServer::new(driver)))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown.cancelled())
        .await;
    let _ = std::fs::remove_file(&path);
    result.context("CSI gRPC server")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(socket_path("unix:///csi/csi.sock").expect("ok"), PathBuf::from("/csi/csi.sock"));
        assert_eq!(socket_path("unix:/csi/csi.sock").expect("ok"), PathBuf::from("/csi/csi.sock"));
        assert!(socket_path("tcp://127.0.0.1:10000").is_err());
        assert!(socket_path("unix://relative.sock").is_err());
    }

    #[test]
    fn only_sockets_are_removed() {
        let dir = std::env::temp_dir().join(format!("csi-sock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let file = dir.join("not-a-socket");
        std::fs::write(&file, b"keep").expect("write");
        assert!(prepare_socket(&file).is_err());
        assert!(file.exists());
        let sock = dir.join("stale.sock");
        let l = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
        drop(l);
        prepare_socket(&sock).expect("stale socket removed");
        assert!(!sock.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

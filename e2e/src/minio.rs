//! A private MinIO server for one test (JuiceFS `storage: minio`), built from its Go module by
//! `hack/build-tools.sh minio`, on a free loopback port; stopped and its data removed on drop. The root
//! credentials reach it through its environment, never its arguments.

use crate::redis::free_port;
use crate::{TempDir, tool_path};
use anyhow::{Context, Result, bail};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct MinioServer {
    pub port: u16,
    pub access_key: String,
    pub secret_key: String,
    child: Child,
    _data: TempDir,
}

impl MinioServer {
    /// A server whose root user is `access_key` with password `secret_key`.
    pub fn start(access_key: &str, secret_key: &str) -> Result<Self> {
        let port = free_port()?;
        let data = TempDir::new("ferrofluid-minio")?;
        let mut child = Command::new(tool_path("minio"))
            .args(["server", "--quiet", "--address", &format!("127.0.0.1:{port}")])
            .arg(&data.0)
            .env("MINIO_ROOT_USER", access_key)
            .env("MINIO_ROOT_PASSWORD", secret_key)
            .env("MINIO_BROWSER", "off")
            .env("MINIO_UPDATE", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting minio (hack/build-tools.sh minio)")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || child.try_wait()?.is_some() {
                let _ = child.kill();
                let _ = child.wait();
                bail!("minio did not listen on 127.0.0.1:{port}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self { port, access_key: access_key.into(), secret_key: secret_key.into(), child, _data: data })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for MinioServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! A private Redis server for one test (the JuiceFS metadata engine), on a free loopback port,
//! stopped and its files removed on drop.

use anyhow::{Context, Result, bail};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    child: Child,
    dir: PathBuf,
    persistence: &'static [&'static str],
    extra: Vec<String>,
}

/// No snapshots, no append-only file: the data lives as long as the process.
const EPHEMERAL: &[&str] = &["--save", "", "--appendonly", "no"];
/// Every acknowledged write in the append-only file, so a killed server restarts with its data.
const DURABLE: &[&str] = &["--save", "", "--appendonly", "yes", "--appendfsync", "always"];

impl RedisServer {
    pub fn start() -> Result<Self> {
        Self::start_with(EPHEMERAL, &[])
    }

    /// A server that requires `password` (`requirepass`).
    pub fn start_with_password(password: &str) -> Result<Self> {
        Self::start_with(EPHEMERAL, &["--requirepass", password])
    }

    /// A server that keeps its data across a [`RedisServer::kill`] and [`RedisServer::start_again`]
    /// (append-only file).
    pub fn start_durable() -> Result<Self> {
        Self::start_with(DURABLE, &[])
    }

    fn start_with(persistence: &'static [&'static str], extra: &[&str]) -> Result<Self> {
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("ferrofluid-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let extra = extra.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let child = spawn(port, &dir, persistence, &extra)?;
        Ok(Self { port, child, dir, persistence, extra })
    }

    /// SIGKILL (a crash: nothing is flushed beyond what each write already did).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// After [`RedisServer::kill`]: the same server again on the same port and directory, listening.
    pub fn start_again(&mut self) -> Result<()> {
        self.child = spawn(self.port, &self.dir, self.persistence, &self.extra)?;
        Ok(())
    }

    /// JuiceFS meta URL for database `db`.
    pub fn meta_url(&self, db: u32) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts redis-server on `port` and waits until it listens.
fn spawn(port: u16, dir: &Path, persistence: &[&str], extra: &[String]) -> Result<Child> {
    let mut child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(persistence)
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting redis-server (installed by hack/install-deps.sh)")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("redis-server did not listen on 127.0.0.1:{port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child)
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

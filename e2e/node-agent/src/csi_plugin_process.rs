//! The node's own csi-plugin, run (and restarted with backoff if it exits) inside the node's mount
//! namespace, so the mounts it makes are the node's mounts.

use crate::ctx::Backoff;
use crate::process::{self, ProcessSpec};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub struct PluginConfig {
    pub binary: PathBuf,
    pub socket: PathBuf,
    pub node: String,
    pub kubeconfig: Option<PathBuf>,
    pub log: PathBuf,
}

/// `--endpoint unix://<socket> --node-id <node> [--kubeconfig <path>] --http-addr 127.0.0.1:<free port>`.
pub fn argv(cfg: &PluginConfig, http_port: u16) -> Vec<String> {
    let mut argv = vec![
        cfg.binary.display().to_string(),
        "--endpoint".into(),
        format!("unix://{}", cfg.socket.display()),
        "--node-id".into(),
        cfg.node.clone(),
    ];
    if let Some(kc) = &cfg.kubeconfig {
        argv.push("--kubeconfig".into());
        argv.push(kc.display().to_string());
    }
    argv.push("--http-addr".into());
    argv.push(format!("127.0.0.1:{http_port}"));
    argv
}

/// Runs the plugin until `cancel` fires, then stops it (SIGTERM, SIGKILL after 10 s).
pub async fn run(cfg: PluginConfig, backoff: Backoff, cancel: CancellationToken) {
    let mut delay: Option<Duration> = None;
    loop {
        if let Some(dir) = cfg.socket.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let spec = match free_port() {
            Ok(port) => ProcessSpec {
                argv: argv(&cfg, port),
                env: std::env::vars().collect(),
                cwd: PathBuf::from("/"),
                log: cfg.log.clone(),
                termination: None,
            },
            Err(e) => {
                tracing::error!(error = %e, "no free loopback port for the csi-plugin");
                return;
            }
        };
        match process::spawn(&spec) {
            Err(e) => tracing::error!(error = %e, "csi-plugin failed to start"),
            Ok(mut child) => {
                let started = Instant::now();
                tracing::info!(pid = child.id(), socket = %cfg.socket.display(), "csi-plugin started");
                let pid = child.id();
                tokio::select! {
                    st = child.wait() => {
                        process::reap_group(pid);
                        tracing::error!(status = ?st, "csi-plugin exited; restarting");
                        if started.elapsed() >= backoff.reset_after {
                            delay = None;
                        }
                    }
                    _ = cancel.cancelled() => {
                        let st = process::terminate(&mut child, Duration::from_secs(10)).await;
                        tracing::info!(status = ?st, "csi-plugin stopped");
                        return;
                    }
                }
            }
        }
        let d = backoff.next(delay);
        delay = Some(d);
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = cancel.cancelled() => return,
        }
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

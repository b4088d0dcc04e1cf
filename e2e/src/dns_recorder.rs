//! The local cluster's DNS recorder (`hack/dns-recorder.py`), as `hack/local-cluster.sh` leaves it:
//! under `<dir of FERROFLUID_KUBECONFIG>/cluster/`, `resolv.conf` is the file bound over
//! `/etc/resolv.conf` in every control-plane process's mount namespace (it names only the recorder) and
//! `dns-queries.log` holds one line per datagram the recorder received.

use anyhow::{Context, Result, bail, ensure};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// DNS response code REFUSED, the recorder's answer to every query.
pub const REFUSED: u8 = 5;

pub struct Recorder {
    /// The cluster's state directory (`.local/cluster`).
    pub state: PathBuf,
    /// The only nameserver of the control plane's resolv.conf.
    pub addr: Ipv4Addr,
}

impl Recorder {
    /// The recorder of the cluster `FERROFLUID_KUBECONFIG` belongs to; fails unless its resolv.conf
    /// names exactly one nameserver, on loopback.
    pub fn of_local_cluster() -> Result<Self> {
        let kubeconfig = crate::kubeconfig();
        let state = kubeconfig.parent().context("kubeconfig has no directory")?.join("cluster");
        let text = std::fs::read_to_string(state.join("resolv.conf"))
            .with_context(|| format!("no {}/resolv.conf: cluster started without a DNS recorder", state.display()))?;
        let servers: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("nameserver")).map(str::trim).collect();
        let [server] = servers[..] else { bail!("want exactly one nameserver in resolv.conf, got {servers:?}") };
        let addr: Ipv4Addr = server.parse().with_context(|| format!("nameserver {server}"))?;
        ensure!(addr.is_loopback(), "the control plane's nameserver {addr} is not loopback");
        Ok(Self { state, addr })
    }

    pub fn resolv_conf(&self) -> PathBuf {
        self.state.join("resolv.conf")
    }

    pub fn log_path(&self) -> PathBuf {
        self.state.join("dns-queries.log")
    }

    /// Every line of the query log.
    pub fn log_lines(&self) -> Result<Vec<String>> {
        let text = std::fs::read_to_string(self.log_path())
            .with_context(|| format!("reading {}", self.log_path().display()))?;
        Ok(text.lines().map(str::to_owned).collect())
    }

    /// Sends one A query for `name` (dot-separated labels, no trailing dot) from 127.0.0.1 and returns
    /// the answer's response code; fails when no matching answer comes within 3 s.
    pub fn query(&self, name: &str) -> Result<u8> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        socket.set_read_timeout(Some(Duration::from_secs(3)))?;
        socket.connect(SocketAddr::from((self.addr, 53)))?;
        let id = (std::process::id() as u16).to_be_bytes();
        socket.send(&query_packet(id, name)?)?;
        let mut buf = [0u8; 512];
        let n =
            socket.recv(&mut buf).with_context(|| format!("no answer from the DNS recorder at {}:53", self.addr))?;
        ensure!(n >= 12 && buf[0..2] == id && buf[2] & 0x80 != 0, "not an answer to our query: {:?}", &buf[..n]);
        Ok(buf[3] & 0x0f)
    }
}

/// A standard query (recursion desired) for `name`, type A, class IN.
fn query_packet(id: [u8; 2], name: &str) -> Result<Vec<u8>> {
    let mut p = Vec::from(id);
    p.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        ensure!(!label.is_empty() && label.len() < 64, "bad DNS label {label:?} in {name}");
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.extend_from_slice(&[0, 0, 1, 0, 1]);
    Ok(p)
}

/// The pid `hack/local-cluster.sh` recorded for a component, and that it is that component.
pub fn component_pid(state: &Path, component: &str) -> Result<u32> {
    let file = state.join("run").join(format!("{component}.pid"));
    let pid: u32 = std::fs::read_to_string(&file)
        .with_context(|| format!("reading {}", file.display()))?
        .trim()
        .parse()
        .with_context(|| format!("pid in {}", file.display()))?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).with_context(|| format!("{component} (pid {pid})"))?;
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    ensure!(
        Path::new(std::str::from_utf8(argv0)?).file_name() == Some(component.as_ref()),
        "pid {pid} recorded for {component} is {:?}",
        String::from_utf8_lossy(&cmdline)
    );
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_packet_is_a_standard_a_query() {
        let p = query_packet([0xab, 0xcd], "x.example").expect("packet");
        let header = [0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        assert_eq!(p[..12], header);
        assert_eq!(p[12..], *b"\x01x\x07example\x00\x00\x01\x00\x01");
        assert!(query_packet([0, 0], "a..b").is_err());
    }
}

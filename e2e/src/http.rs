//! Plain HTTP/1.0 GETs against the components' `/healthz`, `/readyz` and `/metrics` (loopback only),
//! and reading Prometheus exposition text.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// GET `path`; the body when the answer is 200 (the answer ends when the server closes).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nhost: {addr}\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, body) = answer.split_once("\r\n\r\n").context("no HTTP header end")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("GET {path} answered {head}");
    }
    Ok(body.to_string())
}

/// Value of the series `name{labels}` in exposition text (labels in the encoder's sorted order).
pub fn metric_value(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok())
}

/// `ferrofluid_api_requests_total` of a component, by `(verb, resource)`.
pub fn api_requests(addr: SocketAddr) -> Result<BTreeMap<(String, String), f64>> {
    let text = http_get(addr, "/metrics")?;
    let mut out = BTreeMap::new();
    for line in text.lines().filter_map(|l| l.strip_prefix("ferrofluid_api_requests_total{")) {
        let Some((labels, value)) = line.split_once("} ") else { continue };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
        };
        if let (Some(verb), Some(resource), Ok(v)) = (label("verb"), label("resource"), value.trim().parse::<f64>()) {
            out.insert((verb, resource), v);
        }
    }
    Ok(out)
}

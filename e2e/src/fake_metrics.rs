//! A stand-in for a JuiceFS client's metrics endpoint: serves the current text as `/metrics` (any path)
//! on an address of the pod it stands in for, until dropped. Tests change the text to change what the
//! metrics-collector reads.

use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The exposition a JuiceFS client would give with these readings.
pub fn exposition(cached_bytes: u64, hits: u64, misses: u64, used_space: u64) -> String {
    format!(
        "# TYPE juicefs_blockcache_bytes gauge\njuicefs_blockcache_bytes {cached_bytes}\n\
         # TYPE juicefs_blockcache_hits counter\njuicefs_blockcache_hits {hits}\n\
         # TYPE juicefs_blockcache_miss counter\njuicefs_blockcache_miss {misses}\n\
         # TYPE juicefs_used_space gauge\njuicefs_used_space {used_space}\n"
    )
}

pub struct MetricsEndpoint {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsEndpoint {
    /// Serves `body` (read at each request) on `addr`.
    pub fn serve(addr: SocketAddr, body: Arc<Mutex<String>>) -> Result<Self> {
        let listener = TcpListener::bind(addr).with_context(|| format!("binding the metrics address {addr}"))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let thread = std::thread::spawn(move || {
            while !halt.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let text = body.lock().map(|b| b.clone()).unwrap_or_default();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        Ok(Self { stop, thread: Some(thread) })
    }

    /// Serves a fixed `body`.
    pub fn fixed(addr: SocketAddr, body: String) -> Result<Self> {
        Self::serve(addr, Arc::new(Mutex::new(body)))
    }
}

impl Drop for MetricsEndpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

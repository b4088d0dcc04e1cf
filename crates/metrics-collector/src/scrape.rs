//! Fetching one metrics endpoint over plain HTTP, bounded in time and size, and reading it.

use crate::exposition::{self, ExpositionError, JuiceFsReading};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("answered HTTP {0}")]
    Status(reqwest::StatusCode),
    #[error("answer larger than {0} bytes")]
    TooLarge(usize),
    #[error("answer is not UTF-8 text")]
    NotText,
    #[error(transparent)]
    Exposition(#[from] ExpositionError),
}

/// An HTTP client for metrics endpoints (pod IPs: never through a proxy).
#[derive(Clone)]
pub struct Scraper {
    client: reqwest::Client,
    timeout: Duration,
    max_body: usize,
}

impl Scraper {
    pub fn new(timeout: Duration, max_body: usize) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(timeout)
            .pool_max_idle_per_host(1)
            .user_agent(concat!("ferrofluid-metrics-collector/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, timeout, max_body })
    }

    /// Fetches and reads `url`. The whole exchange (connect, headers, body) is bounded by the timeout, so
    /// an endpoint that accepts and never answers costs one timeout, not a stalled round.
    pub async fn scrape(&self, url: &str) -> Result<JuiceFsReading, ScrapeError> {
        let text = tokio::time::timeout(self.timeout, self.fetch(url))
            .await
            .map_err(|_| ScrapeError::Timeout(self.timeout))??;
        Ok(exposition::parse(&text)?)
    }

    async fn fetch(&self, url: &str) -> Result<String, ScrapeError> {
        let mut resp = self.client.get(url).send().await?;
        if !resp.status().is_success() {
            return Err(ScrapeError::Status(resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            if body.len() + chunk.len() > self.max_body {
                return Err(ScrapeError::TooLarge(self.max_body));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| ScrapeError::NotText)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Serves `body` with `status` to every connection on a loopback port.
    async fn serve(status: &'static str, body: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    let head =
                        format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(&body).await;
                });
            }
        });
        format!("http://{addr}/metrics")
    }

    fn scraper() -> Scraper {
        Scraper::new(Duration::from_millis(500), 1 << 20).expect("client")
    }

    #[tokio::test]
    async fn reads_a_juicefs_answer() {
        let url = serve("200 OK", include_bytes!("../tests/fixtures/juicefs-1.4.2-metrics.txt").to_vec()).await;
        let r = scraper().scrape(&url).await.expect("scrape");
        assert_eq!(r.hits, 5);
    }

    #[tokio::test]
    async fn failures_are_errors_not_readings() {
        let garbage = serve("200 OK", b"<html>hello</html>".to_vec()).await;
        assert!(matches!(scraper().scrape(&garbage).await, Err(ScrapeError::Exposition(_))));
        let binary = serve("200 OK", vec![0xff, 0xfe, 0x00]).await;
        assert!(matches!(scraper().scrape(&binary).await, Err(ScrapeError::NotText)));
        let not_found = serve("404 Not Found", Vec::new()).await;
        assert!(matches!(scraper().scrape(&not_found).await, Err(ScrapeError::Status(_))));
        let huge = serve("200 OK", vec![b'#'; 2 << 20]).await;
        assert!(matches!(scraper().scrape(&huge).await, Err(ScrapeError::TooLarge(_))));
    }

    #[tokio::test]
    async fn a_listener_that_never_answers_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/metrics", listener.local_addr().expect("addr"));
        let err = scraper().scrape(&url).await.expect_err("must not succeed");
        assert!(matches!(err, ScrapeError::Timeout(_)), "{err}");
        drop(listener);
    }
}

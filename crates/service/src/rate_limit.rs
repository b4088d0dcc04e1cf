//! Client-side request rate limit as a tower layer: a token bucket that refills at `qps` tokens per
//! second up to `burst`. A request waits in `poll_ready` only while the bucket is empty, so bursts of
//! up to `burst` requests go out at once and the long-run rate stays at `qps`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

#[derive(Clone, Copy, Debug)]
pub struct TokenBucketLayer {
    qps: f64,
    burst: f64,
}

impl TokenBucketLayer {
    pub fn new(qps: f64, burst: u32) -> Self {
        Self { qps, burst: f64::from(burst.max(1)) }
    }
}

impl<S> Layer<S> for TokenBucketLayer {
    type Service = TokenBucket<S>;
    fn layer(&self, inner: S) -> Self::Service {
        TokenBucket { inner, qps: self.qps, burst: self.burst, tokens: self.burst, last: Instant::now(), sleep: None }
    }
}

pub struct TokenBucket<S> {
    inner: S,
    qps: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<S> TokenBucket<S> {
    fn refill(&mut self) {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.qps).min(self.burst);
        self.last = now;
    }
}

impl<S, R> Service<R> for TokenBucket<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        loop {
            if let Some(sleep) = self.sleep.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.sleep = None;
            }
            self.refill();
            if self.tokens >= 1.0 {
                return self.inner.poll_ready(cx);
            }
            let wait = Duration::from_secs_f64((1.0 - self.tokens) / self.qps);
            self.sleep = Some(Box::pin(tokio::time::sleep(wait)));
        }
    }

    fn call(&mut self, req: R) -> Self::Future {
        self.tokens -= 1.0;
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test(start_paused = true)]
    async fn bursts_then_paces() {
        let svc = tower::service_fn(|_: ()| async { Ok::<_, std::convert::Infallible>(Instant::now()) });
        let mut svc = TokenBucketLayer::new(10.0, 5).layer(svc);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..15 {
            times.push(svc.ready().await.expect("ready").call(()).await.expect("call") - start);
        }
        // The first 5 go at once; the next 10 at 10 per second.
        assert!(times[4] < Duration::from_millis(1), "{times:?}");
        assert!(times[14] >= Duration::from_millis(990) && times[14] < Duration::from_millis(1100), "{times:?}");
    }
}

//! Client-side request rate limit as a tower layer over `governor`'s GCRA limiter: `qps` requests per
//! second on average, bursts of up to `burst`. A request waits in `poll_ready` only while the limiter
//! says no, for exactly as long as it says, so bursts go out at once and the long-run rate stays at
//! `qps`. (governor decides; this layer only turns its answer into a tower back-pressure wait.)

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;
use tower::{Layer, Service};

#[derive(Clone)]
pub struct RateLimitLayer {
    limiter: Arc<DefaultDirectRateLimiter>,
}

impl RateLimitLayer {
    /// `None` for a limit that does not limit (`qps` zero, negative or not finite).
    pub fn new(qps: f64, burst: u32) -> Option<Self> {
        if !(qps.is_finite() && qps > 0.0) {
            return None;
        }
        let period = Duration::from_secs_f64(1.0 / qps).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::new(burst.max(1))?);
        Some(Self { limiter: Arc::new(RateLimiter::direct(quota)) })
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RateLimit { inner, limiter: self.limiter.clone(), permit: false, sleep: None }
    }
}

pub struct RateLimit<S> {
    inner: S,
    limiter: Arc<DefaultDirectRateLimiter>,
    /// The limiter said yes for the next `call`.
    permit: bool,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<S, R> Service<R> for RateLimit<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        loop {
            if self.permit {
                return self.inner.poll_ready(cx);
            }
            if let Some(sleep) = self.sleep.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.sleep = None;
            }
            match self.limiter.check() {
                Ok(()) => self.permit = true,
                Err(not_until) => {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    self.sleep = Some(Box::pin(tokio::time::sleep(wait)));
                }
            }
        }
    }

    fn call(&mut self, req: R) -> Self::Future {
        self.permit = false;
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tower::ServiceExt;

    #[test]
    fn the_burst_goes_at_once() {
        // One request per second: the burst of 5 is there at once, the 6th is not.
        let layer = RateLimitLayer::new(1.0, 5).expect("limits");
        for i in 0..5 {
            assert!(layer.limiter.check().is_ok(), "request {i} of the burst refused");
        }
        assert!(layer.limiter.check().is_err(), "the burst is 5");
    }

    #[tokio::test]
    async fn then_requests_are_paced() {
        let svc = tower::service_fn(|_: ()| async { Ok::<_, std::convert::Infallible>(Instant::now()) });
        let mut svc = RateLimitLayer::new(100.0, 5).expect("limits").layer(svc);
        let start = Instant::now();
        let mut last = start;
        for _ in 0..15 {
            last = svc.ready().await.expect("ready").call(()).await.expect("call");
        }
        // After the burst of 5, 10 more at 100 per second cannot take less than ~100 ms.
        assert!(last - start >= Duration::from_millis(95), "{:?}", last - start);
    }

    #[test]
    fn no_limit_for_zero_or_nonsense() {
        assert!(RateLimitLayer::new(0.0, 10).is_none());
        assert!(RateLimitLayer::new(-1.0, 10).is_none());
        assert!(RateLimitLayer::new(f64::NAN, 10).is_none());
        assert!(RateLimitLayer::new(0.5, 0).is_some(), "burst 0 means 1");
    }
}

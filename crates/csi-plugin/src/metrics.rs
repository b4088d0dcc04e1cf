//! Prometheus metrics: per-RPC call counts, latencies and errors (by gRPC code), and FUSE recoveries.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use std::time::Instant;

#[derive(Clone)]
pub struct CsiMetrics {
    calls: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
    recoveries: IntCounterVec,
}

impl CsiMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let calls = IntCounterVec::new(Opts::new("ferrofluid_csi_calls_total", "CSI calls, by method"), &["method"])?;
        let errors = IntCounterVec::new(
            Opts::new("ferrofluid_csi_errors_total", "CSI calls that failed, by method and gRPC code"),
            &["method", "code"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("ferrofluid_csi_call_duration_seconds", "Time spent in one CSI call")
                .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0]),
            &["method"],
        )?;
        let recoveries = IntCounterVec::new(
            Opts::new("ferrofluid_csi_fuse_recoveries_total", "Stale bind mounts re-bound after a FUSE restart"),
            &["result"],
        )?;
        for c in [&calls, &errors, &recoveries] {
            registry.register(Box::new(c.clone()))?;
        }
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { calls, errors, duration, recoveries })
    }

    /// Runs one RPC body, counting it, timing it and counting its error code.
    pub async fn observe<T>(
        &self,
        method: &str,
        body: impl Future<Output = Result<T, tonic::Status>>,
    ) -> Result<T, tonic::Status> {
        self.calls.with_label_values(&[method]).inc();
        let start = Instant::now();
        let out = body.await;
        self.duration.with_label_values(&[method]).observe(start.elapsed().as_secs_f64());
        match &out {
            Ok(_) => tracing::debug!(method, "ok"),
            Err(s) => {
                self.errors.with_label_values(&[method, &format!("{:?}", s.code())]).inc();
                tracing::warn!(method, code = ?s.code(), message = s.message(), "call failed");
            }
        }
        out
    }

    pub fn recovery(&self, ok: bool) {
        self.recoveries.with_label_values(&[if ok { "succeeded" } else { "failed" }]).inc();
    }
}

//! Prometheus metrics: per-RPC call counts, latencies and errors (by gRPC code), and FUSE recoveries.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};
use std::time::Instant;

#[derive(Clone)]
pub struct CsiMetrics {
    calls: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
    recoveries: IntCounterVec,
    fs_in_flight: IntGauge,
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
        let fs_in_flight = IntGauge::new(
            "ferrofluid_csi_fs_calls_in_flight",
            "stat/statvfs calls on FUSE paths still running: each stays blocked while its FUSE client hangs (at most one per path)",
        )?;
        for c in [&calls, &errors, &recoveries] {
            registry.register(Box::new(c.clone()))?;
        }
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(fs_in_flight.clone()))?;
        Ok(Self { calls, errors, duration, recoveries, fs_in_flight })
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

    pub fn fs_in_flight(&self, n: usize) {
        self.fs_in_flight.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn recovery(&self, ok: bool) {
        self.recoveries.with_label_values(&[if ok { "succeeded" } else { "failed" }]).inc();
    }
}

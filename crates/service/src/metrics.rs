//! Prometheus metrics every controller exports about its reconcile loop.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use std::time::Instant;

#[derive(Clone)]
pub struct ReconcileMetrics {
    reconciliations: IntCounterVec,
    failures: IntCounterVec,
    duration: HistogramVec,
}

impl ReconcileMetrics {
    /// Registers `ferrofluid_reconciliations_total`, `ferrofluid_reconcile_errors_total` and
    /// `ferrofluid_reconcile_duration_seconds`, all labelled by `controller`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let reconciliations = IntCounterVec::new(
            Opts::new("ferrofluid_reconciliations_total", "Reconciliations run, by controller"),
            &["controller"],
        )?;
        let failures = IntCounterVec::new(
            Opts::new("ferrofluid_reconcile_errors_total", "Reconciliations that failed, by controller and error kind"),
            &["controller", "error"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("ferrofluid_reconcile_duration_seconds", "Time spent in one reconciliation")
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["controller"],
        )?;
        registry.register(Box::new(reconciliations.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { reconciliations, failures, duration })
    }

    /// Starts timing one reconciliation; the measurement is recorded when the guard drops.
    pub fn start(&self, controller: &str) -> ReconcileTimer {
        self.reconciliations.with_label_values(&[controller]).inc();
        ReconcileTimer { histogram: self.duration.with_label_values(&[controller]), start: Instant::now() }
    }

    pub fn failure(&self, controller: &str, error_kind: &str) {
        self.failures.with_label_values(&[controller, error_kind]).inc();
    }
}

pub struct ReconcileTimer {
    histogram: prometheus::Histogram,
    start: Instant,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

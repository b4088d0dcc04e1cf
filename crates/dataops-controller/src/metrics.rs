//! Metrics of the data operations themselves (besides the reconcile loop's): how many ended, how, and
//! how long they ran. Counted by the pass that writes the final status.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct OperationMetrics {
    finished: IntCounterVec,
    duration: HistogramVec,
    jobs_created: IntCounterVec,
}

impl OperationMetrics {
    /// Registers `ferrofluid_dataops_finished_total{kind,phase}`,
    /// `ferrofluid_dataops_duration_seconds{kind,phase}` and `ferrofluid_dataops_jobs_created_total{kind}`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let finished = IntCounterVec::new(
            Opts::new("ferrofluid_dataops_finished_total", "Data operations that ended, by kind and final phase"),
            &["kind", "phase"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "ferrofluid_dataops_duration_seconds",
                "Time from a data operation's start to its end, by kind and final phase",
            )
            .buckets(vec![1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0]),
            &["kind", "phase"],
        )?;
        let jobs_created = IntCounterVec::new(
            Opts::new("ferrofluid_dataops_jobs_created_total", "Jobs created for data operations, by kind"),
            &["kind"],
        )?;
        registry.register(Box::new(finished.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(jobs_created.clone()))?;
        Ok(Self { finished, duration, jobs_created })
    }

    pub fn finished(&self, kind: &str, phase: &str, seconds: f64) {
        self.finished.with_label_values(&[kind, phase]).inc();
        self.duration.with_label_values(&[kind, phase]).observe(seconds);
    }

    pub fn job_created(&self, kind: &str) {
        self.jobs_created.with_label_values(&[kind]).inc();
    }
}

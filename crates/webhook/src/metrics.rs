//! The webhook's own metrics: reviews answered, by outcome, and how long each took.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct WebhookMetrics {
    reviews: IntCounterVec,
    duration: HistogramVec,
}

impl WebhookMetrics {
    /// Registers `ferrofluid_webhook_reviews_total{outcome}` and
    /// `ferrofluid_webhook_review_duration_seconds{outcome}` (outcome `patched`, `unchanged` or `error`).
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let reviews = IntCounterVec::new(
            Opts::new("ferrofluid_webhook_reviews_total", "Pod admission reviews answered, by outcome"),
            &["outcome"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("ferrofluid_webhook_review_duration_seconds", "Time to answer a pod admission review")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5]),
            &["outcome"],
        )?;
        registry.register(Box::new(reviews.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { reviews, duration })
    }

    pub fn observe(&self, outcome: &str, seconds: f64) {
        self.reviews.with_label_values(&[outcome]).inc();
        self.duration.with_label_values(&[outcome]).observe(seconds);
    }
}

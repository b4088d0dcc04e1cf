//! The scrape round: plan targets from the caches, scrape them with bounded concurrency, derive each
//! dataset's cache state, update the Prometheus series, and apply status where a value changed.

use crate::cache_states::{DatasetCache, aggregate};
use crate::discovery::Stores;
use crate::exposition::JuiceFsReading;
use crate::metrics::{CollectorMetrics, CounterDelta};
use crate::scrape::Scraper;
use crate::status::{Desired, StatusWriter, dataset_patch_for, dataset_shows, runtime_patch, runtime_shows};
use crate::targets::{DatasetPlan, Target, TargetKind, plan};
use ferrofluid_api::{Dataset, DatasetKey, JuiceFSRuntime};
use futures::{StreamExt, stream};
use kube::runtime::reflector::ObjectRef;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How many status applies run at once.
const WRITE_CONCURRENCY: usize = 8;

/// Growth of the counters from `prev` to `now`; a counter that went down restarted (new process), so all
/// of its current value is new.
pub fn counter_delta(prev: Option<&JuiceFsReading>, now: &JuiceFsReading) -> CounterDelta {
    let grow = |before: Option<u64>, after: u64| match before {
        Some(b) if after >= b => after - b,
        _ => after,
    };
    CounterDelta {
        hits: grow(prev.map(|p| p.hits), now.hits),
        misses: grow(prev.map(|p| p.misses), now.misses),
        hit_bytes: grow(prev.map(|p| p.hit_bytes), now.hit_bytes),
        miss_bytes: grow(prev.map(|p| p.miss_bytes), now.miss_bytes),
    }
}

#[derive(Debug)]
struct TargetState {
    /// Last good reading: a failing target keeps contributing it until it answers again or its pod goes.
    last: Option<JuiceFsReading>,
    failing: bool,
}

/// Last status bodies applied per dataset: an unchanged body is not applied again.
#[derive(Default)]
struct Written {
    runtime: Option<Value>,
    dataset: Option<Value>,
}

#[derive(Clone, Copy, Debug)]
enum Resource {
    Runtime,
    Dataset,
}

impl Resource {
    fn as_str(self) -> &'static str {
        match self {
            Resource::Runtime => "juicefsruntime",
            Resource::Dataset => "dataset",
        }
    }
}

pub struct Collector {
    pub stores: Stores,
    pub scraper: Scraper,
    pub writer: StatusWriter,
    pub metrics: CollectorMetrics,
    pub concurrency: usize,
    targets: HashMap<String, TargetState>,
    written: HashMap<DatasetKey, Written>,
    known: BTreeSet<DatasetKey>,
}

impl Collector {
    pub fn new(
        stores: Stores,
        scraper: Scraper,
        writer: StatusWriter,
        metrics: CollectorMetrics,
        concurrency: usize,
    ) -> Self {
        Self {
            stores,
            scraper,
            writer,
            metrics,
            concurrency: concurrency.max(1),
            targets: HashMap::new(),
            written: HashMap::new(),
            known: BTreeSet::new(),
        }
    }

    /// Runs a round every `interval` until `stop` is cancelled (a round in flight is abandoned).
    pub async fn run(mut self, interval: Duration, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.round() => {}
            }
        }
    }

    /// One round over every live dataset.
    pub async fn round(&mut self) {
        let runtimes = self.stores.runtimes.state();
        let pods = self.stores.pods.state();
        let plans = plan(runtimes.iter().map(|r| r.as_ref()), pods.iter().map(|p| p.as_ref()));
        self.forget_gone(&plans);

        let targets: Vec<Target> = plans.values().flat_map(|p| p.targets.iter().cloned()).collect();
        let scraper = &self.scraper;
        let results: Vec<_> = stream::iter(targets)
            .map(|t| async move {
                let start = Instant::now();
                let result = scraper.scrape(&t.url()).await;
                (t, result, start.elapsed())
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        for (target, result, took) in results {
            self.record_scrape(&target, result, took);
        }

        let mut desired = Vec::new();
        for (key, plan) in &plans {
            if let Some(cache) = self.update_series(key, plan) {
                desired
                    .push((key.clone(), Desired { cache_states: cache.cache_states(), ufs_total: cache.ufs_total() }));
            }
        }
        self.write_statuses(desired).await;
    }

    fn forget_gone(&mut self, plans: &BTreeMap<DatasetKey, DatasetPlan>) {
        let gone: Vec<DatasetKey> = self.known.iter().filter(|k| !plans.contains_key(*k)).cloned().collect();
        for key in gone {
            tracing::info!(namespace = %key.namespace, dataset = %key.name, "runtime gone: dropping its series");
            self.metrics.forget(&key);
            self.written.remove(&key);
            self.known.remove(&key);
        }
        self.known.extend(plans.keys().cloned());
        let live: HashSet<&str> = plans.values().flat_map(|p| p.targets.iter().map(|t| t.pod.as_str())).collect();
        self.targets.retain(|pod, _| live.contains(pod.as_str()));
    }

    fn record_scrape(
        &mut self,
        target: &Target,
        result: Result<JuiceFsReading, crate::scrape::ScrapeError>,
        took: Duration,
    ) {
        self.metrics.scraped(&target.dataset, target.kind, took.as_secs_f64(), result.is_ok());
        let state = self.targets.entry(target.pod.clone()).or_insert(TargetState { last: None, failing: false });
        match result {
            Ok(reading) => {
                if state.failing {
                    tracing::info!(pod = %target.pod, url = %target.url(), "scrape recovered");
                }
                let delta = counter_delta(state.last.as_ref(), &reading);
                self.metrics.add_counters(&target.dataset, delta);
                state.last = Some(reading);
                state.failing = false;
            }
            Err(e) => {
                // Warn once per failure streak; the error counter tracks every failure.
                if state.failing {
                    tracing::debug!(pod = %target.pod, url = %target.url(), error = %e, "scrape failed");
                } else {
                    tracing::warn!(pod = %target.pod, url = %target.url(), error = %e, "scrape failed");
                }
                state.failing = true;
            }
        }
    }

    fn update_series(&self, key: &DatasetKey, plan: &DatasetPlan) -> Option<DatasetCache> {
        for kind in TargetKind::ALL {
            self.metrics.set_targets(key, kind, plan.targets.iter().filter(|t| t.kind == kind).count());
        }
        self.metrics.set_capacity(key, plan.capacity_bytes);
        let readings = plan.targets.iter().filter_map(|t| self.targets.get(&t.pod).and_then(|s| s.last.as_ref()));
        let cache = aggregate(readings, plan.capacity_bytes)?;
        self.metrics.set_cache(key, &cache);
        Some(cache)
    }

    /// Applies the bodies that differ from what was last applied and from what the object already shows.
    async fn write_statuses(&mut self, desired: Vec<(DatasetKey, Desired)>) {
        let mut pending: Vec<(DatasetKey, Resource, Value)> = Vec::new();
        for (key, want) in desired {
            let written = self.written.entry(key.clone()).or_default();
            let runtime_ref = ObjectRef::<JuiceFSRuntime>::new(&key.name).within(&key.namespace);
            if let Some(rt) = self.stores.runtimes.get(&runtime_ref) {
                let patch = runtime_patch(&key, &want.cache_states);
                if written.runtime.as_ref() != Some(&patch) {
                    if runtime_shows(&rt, &want.cache_states) {
                        written.runtime = Some(patch);
                    } else {
                        pending.push((key.clone(), Resource::Runtime, patch));
                    }
                }
            }
            let dataset_ref = ObjectRef::<Dataset>::new(&key.name).within(&key.namespace);
            if let Some(ds) = self.stores.datasets.get(&dataset_ref) {
                let patch = dataset_patch_for(&key, &want, &ds);
                if written.dataset.as_ref() != Some(&patch) {
                    if dataset_shows(&ds, &patch) {
                        written.dataset = Some(patch);
                    } else {
                        pending.push((key.clone(), Resource::Dataset, patch));
                    }
                }
            }
        }
        let writer = &self.writer;
        let results: Vec<_> = stream::iter(pending)
            .map(|(key, resource, patch)| async move {
                let result = match resource {
                    Resource::Runtime => writer.apply_runtime(&key, &patch).await,
                    Resource::Dataset => writer.apply_dataset(&key, &patch).await,
                };
                (key, resource, patch, result)
            })
            .buffer_unordered(WRITE_CONCURRENCY)
            .collect()
            .await;
        for (key, resource, patch, result) in results {
            self.metrics.status_write(resource.as_str(), result.is_ok());
            match result {
                Ok(()) => {
                    tracing::debug!(namespace = %key.namespace, name = %key.name, resource = resource.as_str(), "cache state written");
                    let written = self.written.entry(key).or_default();
                    match resource {
                        Resource::Runtime => written.runtime = Some(patch),
                        Resource::Dataset => written.dataset = Some(patch),
                    }
                }
                Err(e) => tracing::warn!(
                    namespace = %key.namespace, name = %key.name, resource = resource.as_str(), error = %e,
                    "could not write the cache state; retrying next round"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(hits: u64, misses: u64) -> JuiceFsReading {
        JuiceFsReading { hits, misses, hit_bytes: hits * 10, miss_bytes: misses * 10, ..Default::default() }
    }

    #[test]
    fn first_reading_counts_in_full() {
        assert_eq!(
            counter_delta(None, &reading(5, 3)),
            CounterDelta { hits: 5, misses: 3, hit_bytes: 50, miss_bytes: 30 }
        );
    }

    #[test]
    fn growth_counts_the_difference() {
        assert_eq!(
            counter_delta(Some(&reading(5, 3)), &reading(7, 3)),
            CounterDelta { hits: 2, misses: 0, hit_bytes: 20, miss_bytes: 0 }
        );
    }

    #[test]
    fn a_restarted_client_counts_from_zero() {
        assert_eq!(
            counter_delta(Some(&reading(50, 30)), &reading(2, 1)),
            CounterDelta { hits: 2, misses: 1, hit_bytes: 20, miss_bytes: 10 }
        );
    }
}

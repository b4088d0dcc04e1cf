//! The custom metrics API (`custom.metrics.k8s.io/v1beta2`) the collector serves for the
//! HorizontalPodAutoscaler, pure: which metrics exist, their values from an object's
//! `status.cacheStates`, and the JSON bodies of discovery, values and errors. Values come from the status
//! the leader writes, so every replica answers the same.

use ferrofluid_api::CacheStates;
use serde_json::{Value, json};

pub const GROUP: &str = "custom.metrics.k8s.io";
pub const VERSION: &str = "v1beta2";

/// The kinds whose objects have cache metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    Dataset,
    JuiceFSRuntime,
}

impl Object {
    pub const ALL: [Object; 2] = [Object::Dataset, Object::JuiceFSRuntime];

    /// The resource as the custom metrics API names it.
    pub fn resource(self) -> &'static str {
        match self {
            Object::Dataset => "datasets.data.fluid.io",
            Object::JuiceFSRuntime => "juicefsruntimes.data.fluid.io",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Object::Dataset => "Dataset",
            Object::JuiceFSRuntime => "JuiceFSRuntime",
        }
    }

    pub fn parse(resource: &str) -> Option<Object> {
        Object::ALL.into_iter().find(|o| o.resource() == resource)
    }
}

/// One metric of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Cached bytes ÷ cache capacity, in percent (0–100, above when caches overfill): Fluid's name.
    CapacityUsedRate,
    /// Cached bytes ÷ the file system's used space, in percent (`cachedPercentage`).
    CachedPercentage,
    /// Block reads served from cache ÷ all block reads, 0–1 (`cacheHitRatio`).
    CacheHitRatio,
    /// Cached bytes.
    CachedBytes,
}

impl Metric {
    pub const ALL: [Metric; 4] =
        [Metric::CapacityUsedRate, Metric::CachedPercentage, Metric::CacheHitRatio, Metric::CachedBytes];

    pub fn name(self) -> &'static str {
        match self {
            Metric::CapacityUsedRate => "capacity_used_rate",
            Metric::CachedPercentage => "cached_percentage",
            Metric::CacheHitRatio => "cache_hit_ratio",
            Metric::CachedBytes => "cached_bytes",
        }
    }

    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The value from an object's cache states, when they say it.
    pub fn value(self, states: &CacheStates) -> Option<f64> {
        let cached = states.cached.as_deref().and_then(parse_bytes);
        match self {
            Metric::CapacityUsedRate => {
                let capacity = states.cache_capacity.as_deref().and_then(parse_bytes).filter(|c| *c > 0.0)?;
                Some(cached? / capacity * 100.0)
            }
            Metric::CachedPercentage => states.cached_percentage.as_deref().and_then(parse_percent),
            Metric::CacheHitRatio => states.cache_hit_ratio.as_deref().and_then(parse_percent).map(|p| p / 100.0),
            Metric::CachedBytes => cached,
        }
    }
}

/// Bytes from the status's binary-unit form (`0.00B`, `8.01MiB`, `40.00GiB`).
pub fn parse_bytes(s: &str) -> Option<f64> {
    const UNITS: [(&str, f64); 7] = [
        ("EiB", 1152921504606846976.0),
        ("PiB", 1125899906842624.0),
        ("TiB", 1099511627776.0),
        ("GiB", 1073741824.0),
        ("MiB", 1048576.0),
        ("KiB", 1024.0),
        ("B", 1.0),
    ];
    let (number, scale) = UNITS.iter().find_map(|(u, scale)| s.strip_suffix(u).map(|n| (n, *scale)))?;
    number.trim().parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0).map(|n| n * scale)
}

/// A percentage from `85.0%`.
pub fn parse_percent(s: &str) -> Option<f64> {
    s.strip_suffix('%')?.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A value as a Kubernetes quantity, in thousandths (`95000m`): what the HPA compares to its target.
pub fn quantity(value: f64) -> String {
    format!("{}m", (value * 1000.0).round() as i64)
}

/// What a request path asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// `/apis/custom.metrics.k8s.io/v1beta2`: the metrics there are.
    Discovery,
    /// `…/namespaces/<ns>/<resource>/<name>/<metric>`: one object's metric.
    Object { namespace: &'a str, resource: &'a str, name: &'a str, metric: &'a str },
    /// Anything else under the group version (lists by selector, cluster-scoped objects).
    Unsupported,
}

/// Parses the path of a request the API server passed on (the `/apis/<group>/<version>` prefix included).
pub fn route(path: &str) -> Option<Request<'_>> {
    let rest = path.strip_prefix("/apis/")?.strip_prefix(GROUP)?.strip_prefix('/')?.strip_prefix(VERSION)?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return Some(Request::Discovery);
    }
    let parts: Vec<&str> = rest.strip_prefix('/')?.split('/').collect();
    Some(match parts.as_slice() {
        ["namespaces", namespace, resource, name, metric] if *name != "*" => {
            Request::Object { namespace, resource, name, metric }
        }
        _ => Request::Unsupported,
    })
}

/// The discovery document: each metric of each kind, namespaced, `get` only.
pub fn discovery() -> Value {
    let resources: Vec<Value> = Object::ALL
        .iter()
        .flat_map(|o| {
            Metric::ALL.iter().map(move |m| {
                json!({"name": format!("{}/{}", o.resource(), m.name()), "singularName": "", "namespaced": true,
                       "kind": "MetricValueList", "verbs": ["get"]})
            })
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{GROUP}/{VERSION}"), "resources": resources})
}

/// The answer for one object's metric.
pub fn value_list(object: Object, namespace: &str, name: &str, metric: Metric, value: f64, now: &str) -> Value {
    json!({
        "kind": "MetricValueList",
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": {},
        "items": [{
            "describedObject": {"kind": object.kind(), "namespace": namespace, "name": name, "apiVersion": "data.fluid.io/v1alpha1"},
            "metric": {"name": metric.name()},
            "timestamp": now,
            "value": quantity(value),
        }],
    })
}

/// An OpenAPI v2 document without paths: the API server merges every aggregated API's into its own, and
/// logs an error for one that has none. (The metric values are described by discovery, not OpenAPI.)
pub fn openapi_v2() -> Value {
    json!({"swagger": "2.0", "info": {"title": "ferrofluid custom metrics", "version": VERSION}, "paths": {}})
}

/// A `Status` failure the API server passes to its client as is.
pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
           "reason": reason, "code": code})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(cached: &str, capacity: &str, pct: &str, hit: &str) -> CacheStates {
        CacheStates {
            cached: Some(cached.into()),
            cache_capacity: Some(capacity.into()),
            cached_percentage: Some(pct.into()),
            cache_hit_ratio: Some(hit.into()),
            ..Default::default()
        }
    }

    #[test]
    fn values_come_from_the_status_strings() {
        let s = states("972.80MiB", "1.00GiB", "50.0%", "85.0%");
        let rate = Metric::CapacityUsedRate.value(&s).expect("rate");
        assert!((rate - 95.0).abs() < 0.01, "{rate}");
        assert_eq!(Metric::CachedPercentage.value(&s), Some(50.0));
        assert_eq!(Metric::CacheHitRatio.value(&s), Some(0.85));
        assert_eq!(Metric::CachedBytes.value(&s), Some(972.8 * 1048576.0));
        assert_eq!(quantity(rate), "95000m");
        assert_eq!(quantity(0.85), "850m");
        // Without a capacity (a malformed quota) there is no used rate; a zero capacity is no capacity.
        let none = CacheStates { cached: Some("1.00MiB".into()), ..Default::default() };
        assert_eq!(Metric::CapacityUsedRate.value(&none), None);
        assert_eq!(Metric::CapacityUsedRate.value(&states("1.00MiB", "0.00B", "", "")), None);
        for bad in ["", "1.0", "x GiB", "-1.00GiB", "NaNGiB"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
        assert_eq!(parse_bytes("0.00B"), Some(0.0));
        assert_eq!(parse_bytes("2.00KiB"), Some(2048.0));
    }

    #[test]
    fn paths_route_to_what_they_ask() {
        let p = "/apis/custom.metrics.k8s.io/v1beta2";
        assert_eq!(route(p), Some(Request::Discovery));
        assert_eq!(route(&format!("{p}/")), Some(Request::Discovery));
        assert_eq!(
            route(&format!("{p}/namespaces/a/datasets.data.fluid.io/d/capacity_used_rate")),
            Some(Request::Object {
                namespace: "a",
                resource: "datasets.data.fluid.io",
                name: "d",
                metric: "capacity_used_rate"
            })
        );
        assert_eq!(
            route(&format!("{p}/namespaces/a/datasets.data.fluid.io/*/capacity_used_rate")),
            Some(Request::Unsupported)
        );
        assert_eq!(route(&format!("{p}/datasets.data.fluid.io/d/x")), Some(Request::Unsupported));
        assert_eq!(route("/apis/custom.metrics.k8s.io/v1beta1"), None);
        assert_eq!(route("/apis/other/v1beta2"), None);
        assert_eq!(Metric::parse("cache_hit_ratio"), Some(Metric::CacheHitRatio));
        assert_eq!(Metric::parse("nope"), None);
    }

    #[test]
    fn bodies_have_the_api_shapes() {
        let d = discovery();
        assert_eq!(d["groupVersion"], "custom.metrics.k8s.io/v1beta2");
        let names: Vec<&str> =
            d["resources"].as_array().expect("list").iter().filter_map(|r| r["name"].as_str()).collect();
        assert!(names.contains(&"datasets.data.fluid.io/capacity_used_rate"), "{names:?}");
        assert!(names.contains(&"juicefsruntimes.data.fluid.io/cache_hit_ratio"), "{names:?}");
        let v = value_list(Object::Dataset, "a", "d", Metric::CapacityUsedRate, 95.0, "2026-12-06T00:00:00Z");
        assert_eq!(v["items"][0]["value"], "95000m");
        assert_eq!(v["items"][0]["describedObject"]["kind"], "Dataset");
        assert_eq!(status(404, "NotFound", "x")["code"], 404);
        assert_eq!(Object::parse("juicefsruntimes.data.fluid.io"), Some(Object::JuiceFSRuntime));
        assert_eq!(Object::parse("pods"), None);
    }
}

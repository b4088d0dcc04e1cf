//! Types shared by Dataset and the runtimes: secrets references, conditions, cache states, phases.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A named value taken from a Secret (e.g. `metaurl`, `access-key`, `secret-key`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EncryptOption {
    /// Option name, e.g. `metaurl`, `access-key`, `secret-key`.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Where the value comes from.
    pub value_from: EncryptOptionSource,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EncryptOptionSource {
    /// A key of a Secret in the dataset's namespace.
    pub secret_key_ref: SecretKeySelector,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySelector {
    /// Name of the Secret.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Key within the Secret.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// A condition on a Dataset or runtime (`type`, `status`, `reason`, `message`, times).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Ready`, `RuntimeScheduled`, `Validated`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// One-word CamelCase reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Last time the condition was updated (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<String>,
    /// Last time the condition's status changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// Cache state of a dataset or runtime, as strings shown by `kubectl get` (Fluid's `cacheStates` map).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheStates {
    /// Total cache capacity, e.g. `40.00GiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_capacity: Option<String>,
    /// Bytes cached, e.g. `1.20GiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<String>,
    /// Cached bytes over the dataset's size, e.g. `12.5%`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_percentage: Option<String>,
    /// Cache hits over all block reads, e.g. `83.3%`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_hit_ratio: Option<String>,
    /// Bytes served from cache over all bytes read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_throughput_ratio: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_hit_ratio: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_hit_ratio: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_throughput_ratio: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_throughput_ratio: Option<String>,
}

/// Labels and annotations added to generated pods.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `True`/`False`/`Unknown` as condition statuses.
pub const CONDITION_TRUE: &str = "True";
pub const CONDITION_FALSE: &str = "False";
pub const CONDITION_UNKNOWN: &str = "Unknown";

/// Builds a condition, keeping the existing one's transition time when its status did not change, so
/// that writing the same state again produces the same object (no self-triggered reconciles).
pub fn condition(
    existing: &[Condition],
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    now: &str,
) -> Condition {
    let status = if status { CONDITION_TRUE } else { CONDITION_FALSE };
    let previous = existing.iter().find(|c| c.type_ == type_);
    let unchanged = previous.is_some_and(|c| c.status == status);
    let message = message.into();
    let same_text =
        previous.is_some_and(|c| c.reason.as_deref() == Some(reason) && c.message.as_deref() == Some(&message));
    let transition = match previous {
        Some(c) if unchanged => c.last_transition_time.clone(),
        _ => Some(now.to_string()),
    };
    let update = match previous {
        Some(c) if unchanged && same_text => c.last_update_time.clone(),
        _ => Some(now.to_string()),
    };
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_update_time: update,
        last_transition_time: transition,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_keeps_times_when_nothing_changed() {
        let first = condition(&[], "Ready", true, "WorkersReady", "all ready", "t1");
        assert_eq!(first.last_transition_time.as_deref(), Some("t1"));
        let again = condition(std::slice::from_ref(&first), "Ready", true, "WorkersReady", "all ready", "t2");
        assert_eq!(again, first, "same state must produce the same condition");
        let reworded = condition(std::slice::from_ref(&first), "Ready", true, "WorkersReady", "2 of 2", "t3");
        assert_eq!(reworded.last_transition_time.as_deref(), Some("t1"));
        assert_eq!(reworded.last_update_time.as_deref(), Some("t3"));
        let flipped = condition(&[reworded], "Ready", false, "NoWorkers", "0 of 2", "t4");
        assert_eq!(flipped.last_transition_time.as_deref(), Some("t4"));
        assert_eq!(flipped.status, CONDITION_FALSE);
    }
}

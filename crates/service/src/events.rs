//! One event publisher for every component: Kubernetes events through kube's recorder
//! (`events.k8s.io/v1`), best-effort — a failed publish is logged, never an error of the caller.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
}

impl Events {
    /// Events reported as coming from `component` (e.g. `ferrofluid-runtime-controller`).
    pub fn new(client: kube::Client, component: &str) -> Self {
        Self { recorder: Recorder::new(client, Reporter::from(component)) }
    }

    /// Events from one instance of `component`, e.g. the csi-plugin on node `instance`.
    pub fn of_instance(client: kube::Client, component: &str, instance: &str) -> Self {
        let reporter = Reporter { controller: component.into(), instance: Some(instance.into()) };
        Self { recorder: Recorder::new(client, reporter) }
    }

    pub async fn publish(&self, object: &ObjectReference, type_: EventType, reason: &str, note: impl Into<String>) {
        let ev =
            Event { type_, reason: reason.into(), note: Some(note.into()), action: reason.into(), secondary: None };
        if let Err(e) = self.recorder.publish(&ev, object).await {
            tracing::warn!(error = %e, reason, "could not publish event");
        }
    }

    pub async fn normal(&self, object: &ObjectReference, reason: &str, note: impl Into<String>) {
        self.publish(object, EventType::Normal, reason, note).await;
    }

    pub async fn warning(&self, object: &ObjectReference, reason: &str, note: impl Into<String>) {
        self.publish(object, EventType::Warning, reason, note).await;
    }
}

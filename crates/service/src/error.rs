//! Errors from API calls, carrying the step of the reconcile that made the call.

/// A kube API error and the step that made the call, e.g. `get dataset: ApiError NotFound …`.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {source}")]
pub struct KubeError {
    pub step: &'static str,
    #[source]
    pub source: kube::Error,
}

/// Attaches the step name to a kube result: `api.get(name).await.step("get dataset")?`.
pub trait Step<T> {
    fn step(self, step: &'static str) -> Result<T, KubeError>;
}

impl<T> Step<T> for Result<T, kube::Error> {
    fn step(self, step: &'static str) -> Result<T, KubeError> {
        self.map_err(|source| KubeError { step, source })
    }
}

/// The `reason` of the cause the API server gives when it refuses to create an object in a namespace
/// that is being deleted (NamespaceLifecycle admission).
pub const NAMESPACE_TERMINATING: &str = "NamespaceTerminating";

impl KubeError {
    /// Whether the call was refused because its namespace is being deleted: nothing new can be created
    /// there any more, so waiting for such an object would hold the namespace's deletion forever.
    pub fn namespace_terminating(&self) -> bool {
        match &self.source {
            kube::Error::Api(status) => {
                status.details.as_ref().is_some_and(|d| d.causes.iter().any(|c| c.reason == NAMESPACE_TERMINATING))
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> KubeError {
        let status: kube::core::Status = serde_json::from_str(body).expect("status");
        KubeError { step: "create job", source: kube::Error::Api(status.boxed()) }
    }

    #[test]
    fn a_refusal_in_a_terminating_namespace_is_recognised_by_its_cause() {
        // As kube-apiserver's NamespaceLifecycle admission answers (seen on the real-node rig).
        let terminating = refused(
            r#"{"status":"Failure","message":"jobs.batch \"x\" is forbidden: unable to create new content in namespace ns because it is being terminated","reason":"Forbidden","details":{"name":"x","group":"batch","kind":"jobs","causes":[{"reason":"NamespaceTerminating","message":"namespace ns is being terminated","field":"metadata.namespace"}]},"code":403}"#,
        );
        assert!(terminating.namespace_terminating());
        let rbac = refused(
            r#"{"status":"Failure","message":"jobs.batch is forbidden: User \"u\" cannot create resource","reason":"Forbidden","details":{"group":"batch","kind":"jobs"},"code":403}"#,
        );
        assert!(!rbac.namespace_terminating());
    }
}

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

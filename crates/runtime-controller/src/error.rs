//! Reconcile errors, one variant per kind of failure, each saying which step failed.

pub use ferrofluid_service::error::{KubeError, Step};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error("waiting: {0}")]
    Waiting(String),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("{0} has no namespace")]
    NoNamespace(String),
}

impl Error {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Waiting(_) => "waiting",
            Error::Finalizer(_) => "finalizer",
            Error::NoNamespace(_) => "input",
        }
    }
}

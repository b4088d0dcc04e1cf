//! Reconcile errors, one variant per kind of failure, each saying which step failed.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{step}: {source}")]
    Kube {
        step: &'static str,
        #[source]
        source: kube::Error,
    },
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
            Error::Kube { .. } => "kube",
            Error::Waiting(_) => "waiting",
            Error::Finalizer(_) => "finalizer",
            Error::NoNamespace(_) => "input",
        }
    }
}

/// Attaches the step name to a kube error.
pub trait Step<T> {
    fn step(self, step: &'static str) -> Result<T, Error>;
}

impl<T> Step<T> for Result<T, kube::Error> {
    fn step(self, step: &'static str) -> Result<T, Error> {
        self.map_err(|source| Error::Kube { step, source })
    }
}

//! One error type for every RPC, each variant mapped to the `tonic::Status` code that tells kubelet whether
//! to retry (Unavailable, Aborted) or to surface the problem (InvalidArgument, AlreadyExists, …).

use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum CsiError {
    /// The request is malformed or names a path the driver must not touch.
    #[error("{0}")]
    InvalidArgument(String),
    /// The named object does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The target is already published with different arguments.
    #[error("{0}")]
    AlreadyExists(String),
    /// Another call for the same volume or target is in progress; retry.
    #[error("{0}")]
    Aborted(String),
    /// Not ready yet (the FUSE mount has not appeared, the API server is unreachable); retry.
    #[error("{0}")]
    Unavailable(String),
    /// The node is not in a state where the call can succeed (e.g. the volume is still published).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A system call failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A Kubernetes API call failed.
    #[error("{context}: {source}")]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },
}

impl CsiError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        CsiError::Io { context: context.into(), source }
    }

    pub fn kube(context: impl Into<String>, source: kube::Error) -> Self {
        CsiError::Kube { context: context.into(), source }
    }

    pub fn code(&self) -> Code {
        match self {
            CsiError::InvalidArgument(_) => Code::InvalidArgument,
            CsiError::NotFound(_) => Code::NotFound,
            CsiError::AlreadyExists(_) => Code::AlreadyExists,
            CsiError::Aborted(_) => Code::Aborted,
            CsiError::Unavailable(_) => Code::Unavailable,
            CsiError::FailedPrecondition(_) => Code::FailedPrecondition,
            CsiError::Io { source, .. } => match source.raw_os_error() {
                // A hung or dead FUSE connection, or a busy mount: transient from kubelet's point of view.
                Some(libc::ENOTCONN) | Some(libc::EBUSY) | Some(libc::EAGAIN) | Some(libc::ETIMEDOUT) => {
                    Code::Unavailable
                }
                Some(libc::EACCES) | Some(libc::EPERM) => Code::PermissionDenied,
                _ => Code::Internal,
            },
            CsiError::Kube { source, .. } => match source {
                kube::Error::Api(s) if s.code == 403 => Code::PermissionDenied,
                kube::Error::Api(s) if s.code == 404 => Code::NotFound,
                kube::Error::Api(s) if s.code == 409 || s.code == 429 || s.code >= 500 => Code::Unavailable,
                kube::Error::Api(_) => Code::Internal,
                // Transport errors, timeouts: the API server may come back.
                _ => Code::Unavailable,
            },
        }
    }
}

impl From<CsiError> for Status {
    fn from(e: CsiError) -> Self {
        Status::new(e.code(), e.to_string())
    }
}

pub type Result<T, E = CsiError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_precise() {
        assert_eq!(CsiError::InvalidArgument("x".into()).code(), Code::InvalidArgument);
        assert_eq!(CsiError::Aborted("x".into()).code(), Code::Aborted);
        let enotconn = std::io::Error::from_raw_os_error(libc::ENOTCONN);
        assert_eq!(CsiError::io("stat", enotconn).code(), Code::Unavailable);
        let eperm = std::io::Error::from_raw_os_error(libc::EPERM);
        assert_eq!(CsiError::io("mount", eperm).code(), Code::PermissionDenied);
        let einval = std::io::Error::from_raw_os_error(libc::EINVAL);
        assert_eq!(CsiError::io("mount", einval).code(), Code::Internal);
        let status: Status = CsiError::AlreadyExists("busy".into()).into();
        assert_eq!(status.code(), Code::AlreadyExists);
        assert_eq!(status.message(), "busy");
    }
}

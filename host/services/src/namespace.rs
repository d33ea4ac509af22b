//! The `containerd-namespace` request header, checked the way containerd
//! checks it before any namespaced handler runs (`docs/wire-facts.md#namespace-header`).

use rcontainerd_api::headers::NAMESPACE as HEADER;
use rcontainerd_pkg::errdefs::Error;
use rcontainerd_pkg::identifiers;
use tonic::{Request, Status};

use crate::status::IntoStatus;

/// The namespace a request was made in (inserted as a request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace(pub String);

/// The namespace named by `metadata`, validated.
pub fn from_metadata(metadata: &tonic::metadata::MetadataMap) -> Result<String, Error> {
    let value = metadata
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if value.is_empty() {
        return Err(Error::failed_precondition("namespace is required"));
    }
    identifiers::validate(value).map_err(|e| e.context("namespace validation"))?;
    Ok(value.to_string())
}

/// The namespace of a request to a namespaced service: the one the
/// interceptor validated, or (served without it) the header checked here.
#[allow(clippy::result_large_err)]
pub fn of<T>(request: &Request<T>) -> Result<String, Status> {
    match request.extensions().get::<Namespace>() {
        Some(ns) => Ok(ns.0.clone()),
        None => from_metadata(request.metadata()).map_err(Error::into_status),
    }
}

/// The lease named by the `containerd-lease` header, if any: what a call
/// creates is attached to it.
pub fn lease<T>(request: &Request<T>) -> Option<String> {
    request
        .metadata()
        .get(rcontainerd_api::headers::LEASE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// tonic interceptor for namespaced services: refuses requests without a
/// valid namespace and records it for the handler.
#[allow(clippy::result_large_err)]
pub fn require(mut request: Request<()>) -> Result<Request<()>, Status> {
    let ns = from_metadata(request.metadata()).map_err(Error::into_status)?;
    request.extensions_mut().insert(Namespace(ns));
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn with(value: Option<&str>) -> Request<()> {
        let mut r = Request::new(());
        if let Some(v) = value {
            r.metadata_mut().insert(HEADER, v.parse().unwrap());
        }
        r
    }

    #[test]
    fn missing_header_is_failed_precondition() {
        let s = require(with(None)).unwrap_err();
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(s.message(), "namespace is required: failed precondition");
    }

    #[test]
    fn invalid_namespace_is_invalid_argument() {
        let s = require(with(Some("Bad Name!"))).unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s
            .message()
            .starts_with("namespace validation: identifier \"Bad Name!\" must match"));
    }

    #[test]
    fn valid_namespace_is_recorded() {
        let r = require(with(Some("k8s.io"))).unwrap();
        assert_eq!(
            r.extensions().get::<Namespace>(),
            Some(&Namespace("k8s.io".into()))
        );
    }
}

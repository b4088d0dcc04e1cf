//! CSI Controller, minimal. ferrofluid's volumes are provisioned statically: the runtime-controller
//! writes each PV with its attributes, and no external-provisioner talks to this service in a cluster.
//! It exists so conformance tools (csi-sanity) can drive the Node service end to end: `CreateVolume`
//! registers a volume whose context is its parameters (which must hold the attributes NodeStage and
//! NodePublish require: `fluid_path`, `runtime_namespace`, `runtime_name`), in memory;
//! `DeleteVolume` forgets it. Nothing is provisioned on any storage.

use crate::driver::Driver;
use crate::error::CsiError;
use crate::proto::controller_server::Controller;
use crate::proto::controller_service_capability::{Rpc, Type, rpc};
use crate::proto::*;
use crate::validate;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use tonic::{Request, Response, Status};

#[derive(Clone, Debug, PartialEq)]
struct Registered {
    capacity_bytes: i64,
    context: HashMap<String, String>,
}

/// Volumes registered through CreateVolume, by name (which is also the volume id).
#[derive(Default)]
pub struct StaticVolumes {
    volumes: Mutex<BTreeMap<String, Registered>>,
}

impl StaticVolumes {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Registered>> {
        self.volumes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn requested_capacity(range: Option<&CapacityRange>) -> Result<i64, CsiError> {
    let Some(r) = range else { return Ok(0) };
    if r.required_bytes < 0 || r.limit_bytes < 0 || (r.limit_bytes > 0 && r.required_bytes > r.limit_bytes) {
        return Err(CsiError::InvalidArgument(format!(
            "invalid capacity range: required {} limit {}",
            r.required_bytes, r.limit_bytes
        )));
    }
    Ok(r.required_bytes)
}

#[tonic::async_trait]
impl Controller for Driver {
    async fn create_volume(
        &self,
        request: Request<CreateVolumeRequest>,
    ) -> Result<Response<CreateVolumeResponse>, Status> {
        let req = request.into_inner();
        self.metrics
            .observe("CreateVolume", async {
                let name = validate::required(&req.name, "name")?.to_string();
                validate::capabilities(&req.volume_capabilities)?;
                if req.volume_content_source.is_some() {
                    return Err(Status::invalid_argument("volume content sources are not supported"));
                }
                validate::parse_attrs(&req.parameters)?;
                let capacity_bytes = requested_capacity(req.capacity_range.as_ref())?;
                let wanted = Registered { capacity_bytes, context: req.parameters.clone() };
                let mut volumes = self.volumes.lock();
                match volumes.get(&name) {
                    Some(existing) if *existing != wanted => {
                        return Err(Status::already_exists(format!(
                            "volume {name} exists with other parameters or capacity"
                        )));
                    }
                    Some(_) => {}
                    None => {
                        volumes.insert(name.clone(), wanted);
                    }
                }
                Ok(Response::new(CreateVolumeResponse {
                    volume: Some(Volume {
                        capacity_bytes,
                        volume_id: name,
                        volume_context: req.parameters,
                        ..Default::default()
                    }),
                }))
            })
            .await
    }

    async fn delete_volume(
        &self,
        request: Request<DeleteVolumeRequest>,
    ) -> Result<Response<DeleteVolumeResponse>, Status> {
        let req = request.into_inner();
        self.metrics
            .observe("DeleteVolume", async {
                validate::required(&req.volume_id, "volume id")?;
                self.volumes.lock().remove(&req.volume_id);
                Ok(Response::new(DeleteVolumeResponse {}))
            })
            .await
    }

    async fn validate_volume_capabilities(
        &self,
        request: Request<ValidateVolumeCapabilitiesRequest>,
    ) -> Result<Response<ValidateVolumeCapabilitiesResponse>, Status> {
        let req = request.into_inner();
        self.metrics
            .observe("ValidateVolumeCapabilities", async {
                validate::required(&req.volume_id, "volume id")?;
                validate::capabilities(&req.volume_capabilities)?;
                if !self.volumes.lock().contains_key(&req.volume_id) {
                    return Err(Status::not_found(format!("volume {} is not known", req.volume_id)));
                }
                Ok(Response::new(ValidateVolumeCapabilitiesResponse {
                    confirmed: Some(validate_volume_capabilities_response::Confirmed {
                        volume_context: req.volume_context,
                        volume_capabilities: req.volume_capabilities,
                        parameters: req.parameters,
                        mutable_parameters: Default::default(),
                    }),
                    message: String::new(),
                }))
            })
            .await
    }

    async fn controller_get_capabilities(
        &self,
        _request: Request<ControllerGetCapabilitiesRequest>,
    ) -> Result<Response<ControllerGetCapabilitiesResponse>, Status> {
        self.metrics
            .observe("ControllerGetCapabilities", async {
                Ok(Response::new(ControllerGetCapabilitiesResponse {
                    capabilities: vec![ControllerServiceCapability {
                        r#type: Some(Type::Rpc(Rpc { r#type: rpc::Type::CreateDeleteVolume as i32 })),
                    }],
                }))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_ranges() {
        assert_eq!(requested_capacity(None).expect("ok"), 0);
        let r = |required_bytes, limit_bytes| CapacityRange { required_bytes, limit_bytes };
        assert_eq!(requested_capacity(Some(&r(1 << 30, 0))).expect("ok"), 1 << 30);
        assert!(requested_capacity(Some(&r(10, 5))).is_err());
        assert!(requested_capacity(Some(&r(-1, 0))).is_err());
    }
}

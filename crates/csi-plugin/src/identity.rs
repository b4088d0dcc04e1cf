//! CSI Identity: the driver's name (which PVs name as their driver), its capabilities, and Probe.

use crate::driver::Driver;
use crate::proto::identity_server::Identity;
use crate::proto::plugin_capability::{Service, Type, service};
use crate::proto::*;
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl Identity for Driver {
    async fn get_plugin_info(
        &self,
        _request: Request<GetPluginInfoRequest>,
    ) -> Result<Response<GetPluginInfoResponse>, Status> {
        self.metrics
            .observe("GetPluginInfo", async {
                Ok(Response::new(GetPluginInfoResponse {
                    name: ferrofluid_api::keys::CSI_DRIVER_NAME.to_string(),
                    vendor_version: env!("CARGO_PKG_VERSION").to_string(),
                    manifest: Default::default(),
                }))
            })
            .await
    }

    async fn get_plugin_capabilities(
        &self,
        _request: Request<GetPluginCapabilitiesRequest>,
    ) -> Result<Response<GetPluginCapabilitiesResponse>, Status> {
        self.metrics
            .observe("GetPluginCapabilities", async {
                // The Controller service is advertised only when it is served.
                let controller = self.cfg.controller_service.then_some(PluginCapability {
                    r#type: Some(Type::Service(Service { r#type: service::Type::ControllerService as i32 })),
                });
                Ok(Response::new(GetPluginCapabilitiesResponse { capabilities: controller.into_iter().collect() }))
            })
            .await
    }

    async fn probe(&self, _request: Request<ProbeRequest>) -> Result<Response<ProbeResponse>, Status> {
        self.metrics
            .observe("Probe", async {
                // Ready once serving: the mount root must exist for any publish to work.
                let ready = self.cfg.mount_root.is_dir() && self.cfg.kubelet_root.is_dir();
                if !ready {
                    return Err(Status::failed_precondition(format!(
                        "mount root {} or kubelet root {} is missing",
                        self.cfg.mount_root.display(),
                        self.cfg.kubelet_root.display()
                    )));
                }
                Ok(Response::new(ProbeResponse { ready: Some(true) }))
            })
            .await
    }
}

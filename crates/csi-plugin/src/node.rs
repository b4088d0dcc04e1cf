//! The CSI Node service. The operations themselves live in `stage.rs` and `publish.rs`; this file
//! validates nothing, it only wires RPCs to them with metrics.

use crate::driver::Driver;
use crate::proto::node_server::Node;
use crate::proto::node_service_capability::rpc::Type as RpcType;
use crate::proto::node_service_capability::{Rpc, Type};
use crate::proto::*;
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl Node for Driver {
    async fn node_stage_volume(
        &self,
        request: Request<NodeStageVolumeRequest>,
    ) -> Result<Response<NodeStageVolumeResponse>, Status> {
        let req = request.into_inner();
        self.metrics.observe("NodeStageVolume", async { Ok(Response::new(self.stage(req).await?)) }).await
    }

    async fn node_unstage_volume(
        &self,
        request: Request<NodeUnstageVolumeRequest>,
    ) -> Result<Response<NodeUnstageVolumeResponse>, Status> {
        let req = request.into_inner();
        self.metrics.observe("NodeUnstageVolume", async { Ok(Response::new(self.unstage(req).await?)) }).await
    }

    async fn node_publish_volume(
        &self,
        request: Request<NodePublishVolumeRequest>,
    ) -> Result<Response<NodePublishVolumeResponse>, Status> {
        let req = request.into_inner();
        self.metrics.observe("NodePublishVolume", async { Ok(Response::new(self.publish(req).await?)) }).await
    }

    async fn node_unpublish_volume(
        &self,
        request: Request<NodeUnpublishVolumeRequest>,
    ) -> Result<Response<NodeUnpublishVolumeResponse>, Status> {
        let req = request.into_inner();
        self.metrics.observe("NodeUnpublishVolume", async { Ok(Response::new(self.unpublish(req).await?)) }).await
    }

    async fn node_get_capabilities(
        &self,
        _request: Request<NodeGetCapabilitiesRequest>,
    ) -> Result<Response<NodeGetCapabilitiesResponse>, Status> {
        self.metrics
            .observe("NodeGetCapabilities", async {
                Ok(Response::new(NodeGetCapabilitiesResponse {
                    capabilities: [RpcType::StageUnstageVolume, RpcType::GetVolumeStats, RpcType::VolumeCondition]
                        .into_iter()
                        .map(|t| NodeServiceCapability { r#type: Some(Type::Rpc(Rpc { r#type: t as i32 })) })
                        .collect(),
                }))
            })
            .await
    }

    async fn node_get_volume_stats(
        &self,
        request: Request<NodeGetVolumeStatsRequest>,
    ) -> Result<Response<NodeGetVolumeStatsResponse>, Status> {
        let req = request.into_inner();
        self.metrics.observe("NodeGetVolumeStats", async { Ok(Response::new(self.volume_stats(req).await?)) }).await
    }

    async fn node_get_info(
        &self,
        _request: Request<NodeGetInfoRequest>,
    ) -> Result<Response<NodeGetInfoResponse>, Status> {
        self.metrics
            .observe("NodeGetInfo", async {
                Ok(Response::new(NodeGetInfoResponse {
                    node_id: self.cfg.node_id.clone(),
                    max_volumes_per_node: 0,
                    accessible_topology: None,
                }))
            })
            .await
    }
}

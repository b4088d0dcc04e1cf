//! Server-side apply, the one way ferrofluid's components write: each with its own field manager,
//! forced only where the component is the sole owner of the fields it names.

use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt::Debug;

/// `fields` (a JSON object: `metadata`, `spec`, `status`, …) as an apply body of kind `K`.
pub fn body<K: Resource<DynamicType = ()>>(mut fields: Value) -> Value {
    fields["apiVersion"] = K::api_version(&()).into();
    fields["kind"] = K::kind(&()).into();
    fields
}

/// Applies `status` (the component's whole set of status fields) to the named object's status
/// subresource, forced: each status field has exactly one owning component.
pub async fn status<K, S>(api: &Api<K>, manager: &str, name: &str, status: &S) -> kube::Result<K>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
    S: Serialize,
{
    let body = body::<K>(serde_json::json!({ "status": status }));
    api.patch_status(name, &PatchParams::apply(manager).force(), &Patch::Apply(body)).await
}

/// Applies `fields` (already in the shape of `K`, without `apiVersion`/`kind`) to the named object;
/// `force` takes the fields over from another manager.
pub async fn fields<K>(api: &Api<K>, manager: &str, name: &str, fields: Value, force: bool) -> kube::Result<K>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    let params = if force { PatchParams::apply(manager).force() } else { PatchParams::apply(manager) };
    api.patch(name, &params, &Patch::Apply(body::<K>(fields))).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    #[test]
    fn bodies_carry_the_kind() {
        let b = body::<ConfigMap>(serde_json::json!({"metadata": {"name": "x"}}));
        assert_eq!(b["apiVersion"], "v1");
        assert_eq!(b["kind"], "ConfigMap");
        assert_eq!(b["metadata"]["name"], "x");
    }
}

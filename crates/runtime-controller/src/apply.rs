//! Server-side apply of whole objects and of status, with this controller's field manager.

use crate::context::MANAGER;
use crate::error::{Error, Step};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

fn params() -> PatchParams {
    PatchParams::apply(MANAGER).force()
}

/// Applies `obj` (name from its metadata) and returns the object as stored, with its status.
pub async fn object<K>(api: &Api<K>, obj: &K, step: &'static str) -> Result<K, Error>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    let mut body = serde_json::to_value(obj).map_err(|e| Error::Waiting(format!("{step}: {e}")))?;
    body["apiVersion"] = K::api_version(&()).into();
    body["kind"] = K::kind(&()).into();
    Ok(api.patch(&name, &params(), &Patch::Apply(body)).await.step(step)?)
}

/// Applies only `status` of the named object through the status subresource.
pub async fn status<K, S>(api: &Api<K>, name: &str, status: &S, step: &'static str) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
    S: Serialize,
{
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(name, &params(), &Patch::Apply(body)).await.step(step)?;
    Ok(())
}

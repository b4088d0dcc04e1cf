//! One JuiceFSRuntime's reconcile: wait for the watch caches, then set up (`setup.rs`, which adds the
//! finalizer with its first write) or, on deletion, tear down (`teardown.rs`) behind the finalizer — the
//! shared scaffold's pass. Failures back
//! off per runtime (exponentially, with jitter); an API refusal (403, 422, an admission denial) also
//! shows in the runtime's `Ready` condition and a Warning event naming the step and the object.

use crate::context::Context;
use crate::error::Error;
use crate::setup::blocked;
use crate::{setup, teardown};
use ferrofluid_api::JuiceFSRuntime;
use ferrofluid_api::keys;
use ferrofluid_service::reconcile::Adding;
use kube::runtime::controller::Action;
use std::sync::Arc;
use std::time::Duration;

pub async fn reconcile(rt: Arc<JuiceFSRuntime>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.stores.ready().await.map_err(Error::Cache)?;
    let c: &Context = &ctx;
    let result = c
        .scaffold
        .finalized(
            &c.client,
            keys::FINALIZER_RUNTIME,
            Adding::ByApply,
            rt.clone(),
            move |rt| async move { setup::setup(&rt, c).await },
            move |rt| async move { teardown::teardown(&rt, c).await },
        )
        .await;
    if let Err(e) = &result
        && let Some(why) = e.refusal()
    {
        // Best effort: the error is returned (and retried) whatever happens here.
        let _ = blocked(&ctx, &rt, "ApiError", why, Duration::ZERO).await;
    }
    result
}

pub fn error_policy(rt: Arc<JuiceFSRuntime>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.scaffold.error_policy(rt.as_ref(), error)
}

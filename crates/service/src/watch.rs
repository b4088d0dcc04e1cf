//! Watch caches and the change streams that wake reconciles, shared by the controllers: a reflector
//! per kind whose events pass only when a fingerprint of the fields that matter changed (deletions
//! always pass), so status writes — a controller's own or another component's — wake nothing.

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt::Debug;

/// The objects of a watch whose fingerprint changed, and every deleted one. (kube's predicate filter
/// would also drop a deletion whose fingerprint equals the last update's.)
///
/// Watch errors are logged and go no further: the watch's own backoff retries it. Passed on, they would
/// reach kube's `Controller`, which backs off *all* its trigger streams together — one shared backoff,
/// growing to 30 s while any watch keeps failing, during which no watch is polled. After an API server
/// restart every watch fails at once; each is then polled only when that shared backoff wakes, too
/// rarely to finish its reconnect before the server drops the half-open connection, which fails it again:
/// the caches stayed stale indefinitely (docs/reliability.md, the kube-apiserver row).
pub fn changes<K, S>(events: S, fingerprint: fn(&K) -> u64) -> impl Stream<Item = Result<K, watcher::Error>> + Send
where
    K: Resource<DynamicType = ()> + Send + 'static,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
{
    let mut seen: HashMap<String, u64> = HashMap::new();
    let key = |k: &K| {
        let m = k.meta();
        m.uid.clone().unwrap_or_else(|| format!("{}/{}", m.namespace.as_deref().unwrap_or(""), k.name_any()))
    };
    events.flat_map(move |event| {
        let out: Vec<Result<K, watcher::Error>> = match event {
            Err(e) => {
                tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying with backoff");
                vec![]
            }
            Ok(watcher::Event::Apply(k) | watcher::Event::InitApply(k)) => {
                let print = fingerprint(&k);
                if seen.insert(key(&k), print) == Some(print) { vec![] } else { vec![Ok(k)] }
            }
            Ok(watcher::Event::Delete(k)) => {
                seen.remove(&key(&k));
                vec![Ok(k)]
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => vec![],
        };
        futures::stream::iter(out)
    })
}

/// A reflector over `api`: its cache (objects trimmed by `trim`), and its change stream filtered by
/// `fingerprint`. The cache is only kept current while the stream is polled.
pub fn reflect<K>(
    api: Api<K>,
    cfg: watcher::Config,
    fingerprint: fn(&K) -> u64,
    trim: fn(&mut K),
) -> (Store<K>, BoxStream<'static, Result<K, watcher::Error>>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let events = watcher(api, cfg).default_backoff().modify(trim);
    (reader, changes(reflector::reflector(writer, events), fingerprint).boxed())
}

/// Drops what the cache does not need: managed fields.
pub fn no_managed_fields<K: Resource>(k: &mut K) {
    k.meta_mut().managed_fields = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn map(name: &str, version: &str) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cm.metadata.uid = Some(name.into());
        cm.data = Some([("v".to_string(), version.to_string())].into());
        cm
    }

    fn fingerprint(cm: &ConfigMap) -> u64 {
        cm.data.as_ref().and_then(|d| d.get("v")).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    #[tokio::test]
    async fn watch_errors_stop_here_and_the_stream_goes_on() {
        let events = futures::stream::iter(vec![
            Ok(watcher::Event::Apply(map("a", "1"))),
            Err(watcher::Error::NoResourceVersion),
            Ok(watcher::Event::Apply(map("a", "1"))),
            Ok(watcher::Event::Apply(map("a", "2"))),
            Err(watcher::Error::NoResourceVersion),
            Ok(watcher::Event::Delete(map("a", "2"))),
        ]);
        let out: Vec<_> = changes(events, fingerprint).collect().await;
        let versions: Vec<u64> = out.iter().map(|r| r.as_ref().map(fingerprint).expect("no error passes")).collect();
        assert_eq!(versions, vec![1, 2, 2], "first sight, a change, the deletion; errors dropped");
    }
}

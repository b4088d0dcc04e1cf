//! A container's environment, resolved as kubelet resolves it: `envFrom` first, then `env` in order
//! (later entries override earlier ones), literal values with `$(VAR)` expansion against what is
//! defined so far, and `valueFrom` from Secrets, ConfigMaps and the pod's own fields.
//!
//! Pure: [`referenced`] says which Secrets and ConfigMaps to fetch, the caller fetches them, and
//! [`resolve`] builds the environment from the pod and what was fetched.

use crate::expand::expand;
use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVarSource, Pod, Secret};
use std::collections::{BTreeMap, BTreeSet};

/// Secrets and ConfigMaps (in the pod's namespace) a container's environment reads.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Refs {
    pub secrets: BTreeSet<String>,
    pub config_maps: BTreeSet<String>,
}

/// Secret and ConfigMap contents by name; a name that could not be found is absent.
#[derive(Debug, Default)]
pub struct Fetched {
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
}

impl Fetched {
    pub fn add_secret(&mut self, name: &str, secret: &Secret) {
        let mut data: BTreeMap<String, String> = secret.string_data.clone().unwrap_or_default();
        for (k, v) in secret.data.iter().flatten() {
            data.insert(k.clone(), String::from_utf8_lossy(&v.0).into_owned());
        }
        self.secrets.insert(name.to_string(), data);
    }

    pub fn add_config_map(&mut self, name: &str, cm: &ConfigMap) {
        let mut data: BTreeMap<String, String> = cm.data.clone().unwrap_or_default();
        for (k, v) in cm.binary_data.iter().flatten() {
            data.insert(k.clone(), String::from_utf8_lossy(&v.0).into_owned());
        }
        self.config_maps.insert(name.to_string(), data);
    }
}

/// Why a container's environment cannot be built (kubelet: `CreateContainerConfigError`).
/// Messages name objects and keys, never values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("secret {0:?} not found")]
    SecretNotFound(String),
    #[error("key {key:?} not found in secret {name:?}")]
    SecretKeyNotFound { name: String, key: String },
    #[error("configmap {0:?} not found")]
    ConfigMapNotFound(String),
    #[error("key {key:?} not found in configmap {name:?}")]
    ConfigMapKeyNotFound { name: String, key: String },
    #[error("env {var}: unsupported fieldRef {path:?}")]
    UnsupportedField { var: String, path: String },
    #[error("env {var}: field {path:?} is not set yet")]
    FieldNotSet { var: String, path: String },
    #[error("env {0}: resourceFieldRef is not supported by the node agent")]
    ResourceField(String),
    #[error("env {0}: valueFrom names no source")]
    EmptySource(String),
}

/// The Secrets and ConfigMaps `container` reads through `env` and `envFrom`.
pub fn referenced(container: &Container) -> Refs {
    let mut refs = Refs::default();
    for from in container.env_from.iter().flatten() {
        if let Some(s) = &from.secret_ref {
            refs.secrets.insert(s.name.clone());
        }
        if let Some(c) = &from.config_map_ref {
            refs.config_maps.insert(c.name.clone());
        }
    }
    for var in container.env.iter().flatten() {
        if let Some(src) = &var.value_from {
            if let Some(s) = &src.secret_key_ref {
                refs.secrets.insert(s.name.clone());
            }
            if let Some(c) = &src.config_map_key_ref {
                refs.config_maps.insert(c.name.clone());
            }
        }
    }
    refs
}

/// The container's environment variables in definition order, each name once (last definition wins).
pub fn resolve(pod: &Pod, container: &Container, fetched: &Fetched) -> Result<Vec<(String, String)>, EnvError> {
    let mut env = OrderedEnv::default();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or("");
        if let Some(s) = &from.secret_ref {
            match fetched.secrets.get(&s.name) {
                Some(data) => data.iter().for_each(|(k, v)| env.set(format!("{prefix}{k}"), v.clone())),
                None if s.optional == Some(true) => {}
                None => return Err(EnvError::SecretNotFound(s.name.clone())),
            }
        }
        if let Some(c) = &from.config_map_ref {
            match fetched.config_maps.get(&c.name) {
                Some(data) => data.iter().for_each(|(k, v)| env.set(format!("{prefix}{k}"), v.clone())),
                None if c.optional == Some(true) => {}
                None => return Err(EnvError::ConfigMapNotFound(c.name.clone())),
            }
        }
    }
    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            None => Some(expand(var.value.as_deref().unwrap_or(""), |n| env.get(n).map(str::to_string))),
            Some(src) => value_from(pod, &var.name, src, fetched)?,
        };
        if let Some(value) = value {
            env.set(var.name.clone(), value);
        }
    }
    Ok(env.vars)
}

/// `None` when an optional source is missing (the variable is then left out, as kubelet does).
fn value_from(pod: &Pod, var: &str, src: &EnvVarSource, fetched: &Fetched) -> Result<Option<String>, EnvError> {
    if let Some(s) = &src.secret_key_ref {
        let optional = s.optional == Some(true);
        return match fetched.secrets.get(&s.name) {
            None if optional => Ok(None),
            None => Err(EnvError::SecretNotFound(s.name.clone())),
            Some(data) => match data.get(&s.key) {
                Some(v) => Ok(Some(v.clone())),
                None if optional => Ok(None),
                None => Err(EnvError::SecretKeyNotFound { name: s.name.clone(), key: s.key.clone() }),
            },
        };
    }
    if let Some(c) = &src.config_map_key_ref {
        let optional = c.optional == Some(true);
        return match fetched.config_maps.get(&c.name) {
            None if optional => Ok(None),
            None => Err(EnvError::ConfigMapNotFound(c.name.clone())),
            Some(data) => match data.get(&c.key) {
                Some(v) => Ok(Some(v.clone())),
                None if optional => Ok(None),
                None => Err(EnvError::ConfigMapKeyNotFound { name: c.name.clone(), key: c.key.clone() }),
            },
        };
    }
    if let Some(f) = &src.field_ref {
        return field(pod, var, &f.field_path).map(Some);
    }
    if src.resource_field_ref.is_some() {
        return Err(EnvError::ResourceField(var.to_string()));
    }
    Err(EnvError::EmptySource(var.to_string()))
}

/// The downward-API fields kubelet supports for env vars.
fn field(pod: &Pod, var: &str, path: &str) -> Result<String, EnvError> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let not_set = || EnvError::FieldNotSet { var: var.to_string(), path: path.to_string() };
    let value = match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()),
        "status.hostIP" => status.and_then(|s| s.host_ip.clone()),
        "status.podIPs" => status
            .and_then(|s| s.pod_ips.as_ref())
            .map(|ips| ips.iter().map(|i| i.ip.clone()).collect::<Vec<_>>().join(",")),
        "status.hostIPs" => status
            .and_then(|s| s.host_ips.as_ref())
            .map(|ips| ips.iter().map(|i| i.ip.clone()).collect::<Vec<_>>().join(",")),
        _ => {
            if let Some(key) = subscript(path, "metadata.labels") {
                return Ok(meta.labels.as_ref().and_then(|m| m.get(key).cloned()).unwrap_or_default());
            }
            if let Some(key) = subscript(path, "metadata.annotations") {
                return Ok(meta.annotations.as_ref().and_then(|m| m.get(key).cloned()).unwrap_or_default());
            }
            return Err(EnvError::UnsupportedField { var: var.to_string(), path: path.to_string() });
        }
    };
    value.filter(|v| !v.is_empty()).ok_or_else(not_set)
}

/// `metadata.labels['key']` → `key`.
fn subscript<'a>(path: &'a str, base: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(base)?.strip_prefix('[')?.strip_suffix(']')?;
    rest.strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
}

/// Env vars in first-definition order; redefining a name replaces its value in place.
#[derive(Default)]
struct OrderedEnv {
    vars: Vec<(String, String)>,
}

impl OrderedEnv {
    fn set(&mut self, name: String, value: String) {
        match self.vars.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.vars.push((name, value)),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// `command` + `args` with `$(VAR)` expanded against the container's environment.
pub fn argv(container: &Container, env: &[(String, String)]) -> Vec<String> {
    let lookup = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    container.command.iter().flatten().chain(container.args.iter().flatten()).map(|a| expand(a, lookup)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "w-0", "namespace": "default", "uid": "u1", "labels": {"role": "juicefs-worker"}},
            "spec": {"nodeName": "node-1", "containers": [{
                "name": "c",
                "command": ["sh", "-c"],
                "args": ["juicefs mount $(METAURL) /m --metrics $(POD_IP):9567 $$(LITERAL) $(MISSING)"],
                "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
                "env": [
                    {"name": "GREETING", "value": "hello"},
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "ROLE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['role']"}}},
                    {"name": "METAURL", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "metaurl"}}},
                    {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": true}}},
                    {"name": "SIZE", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "size"}}},
                    {"name": "ADDR", "value": "$(POD_IP):$(CM_port)"},
                    {"name": "GREETING", "value": "$(GREETING) again"}
                ]
            }]},
            "status": {"podIP": "127.128.0.7", "hostIP": "127.0.1.1"}
        }))
        .expect("pod")
    }

    fn fetched() -> Fetched {
        let mut f = Fetched::default();
        f.secrets.insert("sec".into(), [("metaurl".to_string(), "redis://127.0.0.1:6379/1".to_string())].into());
        f.config_maps.insert(
            "cm".into(),
            [("size".to_string(), "1024".to_string()), ("port".to_string(), "9000".to_string())].into(),
        );
        f
    }

    #[test]
    fn resolves_like_kubelet() {
        let p = pod();
        let c = &p.spec.as_ref().expect("spec").containers[0];
        assert_eq!(
            referenced(c),
            Refs { secrets: ["sec".to_string(), "nope".to_string()].into(), config_maps: ["cm".to_string()].into() }
        );
        let env = resolve(&p, c, &fetched()).expect("env");
        let get = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("GREETING"), Some("hello again"));
        assert_eq!(get("POD_IP"), Some("127.128.0.7"));
        assert_eq!(get("HOST_IP"), Some("127.0.1.1"));
        assert_eq!(get("NODE"), Some("node-1"));
        assert_eq!(get("ROLE"), Some("juicefs-worker"));
        assert_eq!(get("METAURL"), Some("redis://127.0.0.1:6379/1"));
        assert_eq!(get("OPT"), None);
        assert_eq!(get("SIZE"), Some("1024"));
        assert_eq!(get("CM_port"), Some("9000"));
        assert_eq!(get("ADDR"), Some("127.128.0.7:9000"));
        assert_eq!(env.iter().filter(|(k, _)| k == "GREETING").count(), 1);
        assert_eq!(
            argv(c, &env),
            vec![
                "sh".to_string(),
                "-c".to_string(),
                "juicefs mount redis://127.0.0.1:6379/1 /m --metrics 127.128.0.7:9567 $(LITERAL) $(MISSING)"
                    .to_string()
            ]
        );
    }

    #[test]
    fn missing_sources_are_errors_unless_optional() {
        let p = pod();
        let c = &p.spec.as_ref().expect("spec").containers[0];
        let mut f = fetched();
        f.secrets.clear();
        assert_eq!(resolve(&p, c, &f), Err(EnvError::SecretNotFound("sec".into())));
        let mut f = fetched();
        f.secrets.insert("sec".into(), BTreeMap::new());
        assert_eq!(resolve(&p, c, &f), Err(EnvError::SecretKeyNotFound { name: "sec".into(), key: "metaurl".into() }));
        let mut no_ip = pod();
        no_ip.status = None;
        let c = &no_ip.spec.as_ref().expect("spec").containers[0];
        assert_eq!(
            resolve(&no_ip, c, &fetched()),
            Err(EnvError::FieldNotSet { var: "POD_IP".into(), path: "status.podIP".into() })
        );
    }
}

//! Decoding, defaulting and validation of the built-in kinds, with Kubernetes' rules and wording.
//!
//! [`admit`] decodes a body through the k8s-openapi type of its kind (rejecting wrong JSON types
//! and dropping unknown fields, as the apiserver's decoder does), applies Kubernetes' defaults,
//! validates, and re-encodes. [`validate_update`] adds the update-only rules (immutable fields).
//! The module is self-contained: it depends on nothing else in the crate.

pub(crate) mod common;
mod defaults;
mod kinds;
mod pod;
mod quantity;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    Binding, ConfigMap, Endpoints, Event, Namespace, Node, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};

pub use pod::pod_qos_class;

/// One cause of a 422 Invalid answer (`metav1.StatusCause`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldError {
    /// The field path, e.g. `spec.containers[0].name`.
    pub field: String,
    /// Kubernetes' CauseType: `FieldValueRequired`, `FieldValueInvalid`,
    /// `FieldValueNotSupported`, `FieldValueForbidden`, `FieldValueDuplicate`,
    /// `FieldValueTooLong` or `FieldValueNotFound`.
    pub reason: &'static str,
    /// The message as Kubernetes words it, e.g. `Required value` or
    /// `Invalid value: "Foo_": a lowercase RFC 1123 subdomain must consist of ...`.
    pub message: String,
}

/// Why a body was not admitted.
#[derive(Clone, Debug, PartialEq)]
pub enum AdmitError {
    /// The body does not decode as the kind (wrong JSON types, malformed quantities): 400.
    BadRequest(String),
    /// The object is invalid: 422 with these causes.
    Invalid(Vec<FieldError>),
}

/// Metadata the server sets: passed through verbatim from the input.
const SERVER_META: &[&str] = &[
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

fn decode_error<T: k8s_openapi::Resource>(msg: impl std::fmt::Display) -> AdmitError {
    let version = T::API_VERSION.rsplit('/').next().unwrap_or(T::API_VERSION);
    AdmitError::BadRequest(format!(
        "{kind} in version \"{version}\" cannot be handled as a {kind}: {msg}",
        kind = T::KIND
    ))
}

/// Decodes `raw` as `T`, runs `prepare` (defaults; an error is a decode error), validates, and
/// re-encodes with the server-set metadata of `raw` preserved.
fn run<T>(
    raw: &Value,
    prepare: impl FnOnce(&mut T) -> Result<(), &'static str>,
    validate: impl FnOnce(&T) -> Vec<FieldError>,
) -> Result<Value, AdmitError>
where
    T: DeserializeOwned + Serialize + k8s_openapi::Resource,
{
    let mut typed = T::deserialize(raw).map_err(decode_error::<T>)?;
    prepare(&mut typed).map_err(decode_error::<T>)?;
    let errs = validate(&typed);
    if !errs.is_empty() {
        return Err(AdmitError::Invalid(errs));
    }
    let mut out = serde_json::to_value(&typed).map_err(decode_error::<T>)?;
    let raw_meta = raw.get("metadata").and_then(Value::as_object);
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in SERVER_META {
            match raw_meta.and_then(|m| m.get(*f)).filter(|v| !v.is_null()) {
                Some(v) => meta.insert((*f).to_string(), v.clone()),
                None => meta.remove(*f),
            };
        }
    }
    Ok(out)
}

fn quantities(
    map: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
) -> Result<(), &'static str> {
    for q in map.into_iter().flat_map(|m| m.values()) {
        quantity::parse(&q.0)?;
    }
    Ok(())
}

/// Decodes `obj` as `kind`, applies Kubernetes' defaults, validates, and returns the object
/// re-encoded (apiVersion and kind set). Server-set metadata (uid, resourceVersion,
/// creationTimestamp, generation, managedFields, deletion fields) pass through as in `obj`.
/// For cluster-scoped kinds (`namespaced == false`) `metadata.namespace` is cleared, as the
/// apiserver does; namespaced kinds require it. Kinds this module does not know pass through
/// unchanged.
pub fn admit(kind: &str, mut obj: Value, namespaced: bool) -> Result<Value, AdmitError> {
    if !obj.is_object() {
        return Err(AdmitError::BadRequest(format!(
            "couldn't decode {kind}: the body must be a JSON object"
        )));
    }
    if !namespaced {
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("namespace");
        }
    }
    let raw = &obj;
    match kind {
        "Pod" => run::<Pod>(
            raw,
            |p| {
                if let Some(s) = p.spec.as_ref() {
                    pod::check_quantities(s)?;
                }
                defaults::pod(p);
                Ok(())
            },
            |p| kinds::pod(p, namespaced),
        ),
        "Namespace" => run::<Namespace>(
            raw,
            |n| {
                defaults::namespace(n);
                Ok(())
            },
            kinds::namespace,
        ),
        "Node" => run::<Node>(
            raw,
            |n| {
                if let Some(s) = n.status.as_ref() {
                    quantities(s.capacity.as_ref())?;
                    quantities(s.allocatable.as_ref())?;
                }
                defaults::node(n);
                Ok(())
            },
            kinds::node,
        ),
        "Service" => run::<Service>(
            raw,
            |s| {
                defaults::service(s);
                Ok(())
            },
            kinds::service,
        ),
        "Endpoints" => run::<Endpoints>(
            raw,
            |e| {
                defaults::endpoints(e);
                Ok(())
            },
            kinds::endpoints,
        ),
        "ConfigMap" => run::<ConfigMap>(raw, |_| Ok(()), kinds::config_map),
        "Secret" => run::<Secret>(
            raw,
            |s| {
                defaults::secret(s);
                Ok(())
            },
            kinds::secret,
        ),
        "ServiceAccount" => run::<ServiceAccount>(raw, |_| Ok(()), kinds::service_account),
        "Event" => run::<Event>(raw, |_| Ok(()), kinds::event),
        "Binding" => run::<Binding>(raw, |_| Ok(()), kinds::binding),
        "Deployment" => run::<Deployment>(
            raw,
            |d| {
                if let Some(s) = d.spec.as_ref().and_then(|s| s.template.spec.as_ref()) {
                    pod::check_quantities(s)?;
                }
                defaults::deployment(d);
                Ok(())
            },
            |d| kinds::deployment(d, raw, namespaced),
        ),
        "ReplicaSet" => run::<ReplicaSet>(
            raw,
            |r| {
                let spec = r
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .and_then(|t| t.spec.as_ref());
                if let Some(s) = spec {
                    pod::check_quantities(s)?;
                }
                defaults::replica_set(r);
                Ok(())
            },
            |r| kinds::replica_set(r, raw, namespaced),
        ),
        "Scale" => run::<Scale>(raw, |_| Ok(()), |s| kinds::scale(s, namespaced)),
        "Lease" => run::<Lease>(raw, |_| Ok(()), |l| kinds::lease(l, namespaced)),
        "Role" => run::<Role>(raw, |_| Ok(()), kinds::role),
        "ClusterRole" => run::<ClusterRole>(raw, |_| Ok(()), kinds::cluster_role),
        "RoleBinding" => run::<RoleBinding>(
            raw,
            |b| {
                defaults::role_binding(b);
                Ok(())
            },
            kinds::role_binding,
        ),
        "ClusterRoleBinding" => run::<ClusterRoleBinding>(
            raw,
            |b| {
                defaults::cluster_role_binding(b);
                Ok(())
            },
            kinds::cluster_role_binding,
        ),
        _ => Ok(obj),
    }
}

/// The update-only rules, on top of [`admit`] of the new object (both objects admitted):
/// metadata.name/namespace/uid immutable (and no new finalizers while deleting) for every kind;
/// Pod: spec immutable but for container images, activeDeadlineSeconds (may only decrease),
/// tolerations (additions) and terminationGracePeriodSeconds (negative to 1);
/// Deployment/ReplicaSet: spec.selector; Service: spec.clusterIP(s) once set; Secret: type, and
/// data when `immutable`; ConfigMap: data/binaryData when `immutable`; RoleBinding and
/// ClusterRoleBinding: roleRef; Node: podCIDRs and providerID once set.
pub fn validate_update(kind: &str, old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = kinds::meta_update(old, new);
    errs.extend(match kind {
        "Pod" => pod::validate_pod_update(old, new),
        "Deployment" | "ReplicaSet" => kinds::workload_update(old, new),
        "Service" => kinds::service_update(old, new),
        "Secret" => kinds::secret_update(old, new),
        "ConfigMap" => kinds::config_map_update(old, new),
        "RoleBinding" | "ClusterRoleBinding" => kinds::binding_update(old, new),
        "Node" => kinds::node_update(old, new),
        _ => Vec::new(),
    });
    errs
}

fn name_rule(kind: &str) -> common::NameRule {
    match kind {
        "Namespace" => common::NameRule::Label,
        "Service" => common::NameRule::Dns1035,
        "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding" | "Event" => {
            common::NameRule::PathSegment
        }
        _ => common::NameRule::Subdomain,
    }
}

/// Kubernetes' name validation for `kind`: the messages (empty when valid). Most kinds: DNS-1123
/// subdomain; Namespace: DNS-1123 label; Service: DNS-1035 label (as Kubernetes 1.33); RBAC kinds
/// and Event: path segment name.
pub fn validate_name(kind: &str, name: &str) -> Vec<String> {
    name_rule(kind).errors(name, false)
}

/// Whether `s` is a DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters).
pub fn is_dns1123_label(s: &str) -> bool {
    common::dns1123_label_errors(s).is_empty()
}

/// Whether `s` is a DNS-1123 subdomain (dot-separated labels, at most 253 characters).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    common::dns1123_subdomain_errors(s).is_empty()
}

/// Whether two objects differ in anything but `metadata` and `status` (to bump
/// metadata.generation). Objects without `spec` (ConfigMap, RBAC, ...) never count as changed.
pub fn spec_changed(old: &Value, new: &Value) -> bool {
    if old.get("spec").is_none() && new.get("spec").is_none() {
        return false;
    }
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
        return old != new;
    };
    o.keys()
        .chain(n.keys())
        .filter(|k| !matches!(k.as_str(), "metadata" | "status"))
        .any(|k| {
            let norm = |v: Option<&Value>| v.map(pod::normalized).unwrap_or(Value::Null);
            let (a, b) = (norm(o.get(k)), norm(n.get(k)));
            let empty = |v: &Value| v.is_null() || v.as_object().is_some_and(|m| m.is_empty());
            a != b && !(empty(&a) && empty(&b))
        })
}

#[cfg(test)]
mod tests;

//! Create-time validation of every kind but Pod's spec details (see `pod.rs`): core/v1 here,
//! the workload kinds in `workloads`, RBAC in `rbac`, and the update rules of the kinds that
//! have some in `updates`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy, ReplicaSet};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    Binding, ConfigMap, Endpoints, Event, Namespace, Node, Pod, PodSpec, PodTemplateSpec, Secret,
    Service, ServiceAccount, ServiceSpec,
};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::common::*;
use super::pod::{normalized, validate_pod_spec, SpecOpts};
use super::FieldError;

const MAX_SECRET_SIZE: usize = 1024 * 1024;
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

mod rbac;
mod updates;
mod workloads;

pub use rbac::*;
pub use updates::*;
pub use workloads::*;

// ---------------------------------------------------------------------------------------------
// core/v1
// ---------------------------------------------------------------------------------------------

pub fn pod(p: &Pod, namespaced: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&p.metadata, namespaced, NameRule::Subdomain);
    let empty = PodSpec::default();
    errs.extend(validate_pod_spec(
        p.spec.as_ref().unwrap_or(&empty),
        "spec",
        SpecOpts { template: false },
    ));
    errs
}

pub fn namespace(n: &Namespace) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&n.metadata, false, NameRule::Label);
    for f in n.spec.iter().flat_map(|s| s.finalizers.iter().flatten()) {
        for m in qualified_name_errors(f) {
            errs.push(invalid("spec.finalizers", q(f), &m));
        }
    }
    errs
}

pub fn node(n: &Node) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&n.metadata, false, NameRule::Subdomain);
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for (i, t) in n
        .spec
        .iter()
        .flat_map(|s| s.taints.iter().flatten())
        .enumerate()
    {
        let p = index("spec.taints", i);
        if t.key.is_empty() {
            errs.push(required(&child(&p, "key"), ""));
        }
        for m in qualified_name_errors(&t.key) {
            if !t.key.is_empty() {
                errs.push(invalid(&child(&p, "key"), q(&t.key), &m));
            }
        }
        let v = t.value.as_deref().unwrap_or("");
        for m in label_value_errors(v) {
            errs.push(invalid(&child(&p, "value"), q(v), &m));
        }
        match t.effect.as_str() {
            "NoSchedule" | "PreferNoSchedule" | "NoExecute" => {}
            "" => errs.push(required(&child(&p, "effect"), "")),
            other => errs.push(not_supported(
                &child(&p, "effect"),
                q(other),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            )),
        }
        if !seen.insert((t.key.clone(), t.effect.clone())) {
            errs.push(duplicate(
                &p,
                format!(
                    "core.Taint{{Key:{}, Value:{}, Effect:{}}}",
                    q(&t.key),
                    q(v),
                    q(&t.effect)
                ),
            ));
        }
    }
    errs
}

pub fn service_account(s: &ServiceAccount) -> Vec<FieldError> {
    validate_object_meta(&s.metadata, true, NameRule::Subdomain)
}

pub fn config_map(c: &ConfigMap) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&c.metadata, true, NameRule::Subdomain);
    let data = c.data.clone().unwrap_or_default();
    let binary = c.binary_data.clone().unwrap_or_default();
    let mut total = 0usize;
    for (k, v) in &data {
        let p = key("data", k);
        for m in config_key_errors(k) {
            errs.push(invalid(&p, q(k), &m));
        }
        if binary.contains_key(k) {
            errs.push(invalid(&p, q(k), "duplicate of key present in binaryData"));
        }
        total += v.len();
    }
    for (k, v) in &binary {
        let p = key("binaryData", k);
        for m in config_key_errors(k) {
            errs.push(invalid(&p, q(k), &m));
        }
        if data.contains_key(k) {
            errs.push(invalid(&p, q(k), "duplicate of key present in data"));
        }
        total += v.0.len();
    }
    if total > MAX_SECRET_SIZE {
        errs.push(too_long("", MAX_SECRET_SIZE));
    }
    errs
}

pub fn secret(s: &Secret) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&s.metadata, true, NameRule::Subdomain);
    let data = s.data.clone().unwrap_or_default();
    let mut total = 0usize;
    for (k, v) in &data {
        for m in config_key_errors(k) {
            errs.push(invalid(&key("data", k), q(k), &m));
        }
        total += v.0.len();
    }
    if total > MAX_SECRET_SIZE {
        errs.push(too_long("data", MAX_SECRET_SIZE));
    }
    let need = |errs: &mut Vec<FieldError>, k: &str| {
        if !data.contains_key(k) {
            errs.push(required(&key("data", k), ""));
        }
    };
    match s.type_.as_deref().unwrap_or("") {
        "kubernetes.io/service-account-token" => {
            let name = s
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .map_or("", String::as_str);
            if name.is_empty() {
                errs.push(required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                ));
            }
        }
        t @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
            let k = if t == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            match data.get(k) {
                None => errs.push(required(&key("data", k), "")),
                Some(b) => {
                    if let Err(e) = serde_json::from_slice::<serde_json::Map<String, Value>>(&b.0) {
                        errs.push(invalid(
                            &key("data", k),
                            q("<secret contents redacted>"),
                            &e.to_string(),
                        ));
                    }
                }
            }
        }
        "kubernetes.io/basic-auth"
            if !data.contains_key("username") && !data.contains_key("password") =>
        {
            need(&mut errs, "username");
            need(&mut errs, "password");
        }
        "kubernetes.io/ssh-auth" if data.get("ssh-privatekey").is_none_or(|v| v.0.is_empty()) => {
            errs.push(required(&key("data", "ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            need(&mut errs, "tls.crt");
            need(&mut errs, "tls.key");
        }
        _ => {}
    }
    errs
}

fn is_ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

pub fn endpoints(e: &Endpoints) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&e.metadata, true, NameRule::Subdomain);
    for (i, ss) in e.subsets.iter().flatten().enumerate() {
        let p = index("subsets", i);
        let addrs = ss.addresses.as_deref().unwrap_or_default();
        let not_ready = ss.not_ready_addresses.as_deref().unwrap_or_default();
        if addrs.is_empty() && not_ready.is_empty() {
            errs.push(required(
                &p,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (field, list) in [("addresses", addrs), ("notReadyAddresses", not_ready)] {
            for (j, a) in list.iter().enumerate() {
                let ap = index(&child(&p, field), j);
                match a.ip.parse::<IpAddr>() {
                    Err(_) => errs.push(invalid(&child(&ap, "ip"), q(&a.ip), IP_MSG)),
                    Ok(ip) => {
                        let special = if ip.is_unspecified() {
                            Some("may not be unspecified (0.0.0.0)")
                        } else if ip.is_loopback() {
                            Some("may not be in the loopback range (127.0.0.0/8, ::1/128)")
                        } else if match ip {
                            IpAddr::V4(v4) => v4.is_link_local(),
                            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
                        } {
                            Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
                        } else {
                            None
                        };
                        if let Some(m) = special {
                            errs.push(invalid(&child(&ap, "ip"), q(&a.ip), m));
                        }
                    }
                }
                if let Some(h) = a.hostname.as_deref().filter(|h| !h.is_empty()) {
                    for m in dns1123_label_errors(h) {
                        errs.push(invalid(&child(&ap, "hostname"), q(h), &m));
                    }
                }
                if let Some(n) = a.node_name.as_deref() {
                    for m in dns1123_subdomain_errors(n) {
                        errs.push(invalid(&child(&ap, "nodeName"), q(n), &m));
                    }
                }
            }
        }
        let ports = ss.ports.as_deref().unwrap_or_default();
        for (j, port) in ports.iter().enumerate() {
            let pp = index(&child(&p, "ports"), j);
            let name = port.name.as_deref().unwrap_or("");
            if ports.len() > 1 && name.is_empty() {
                errs.push(required(&child(&pp, "name"), ""));
            } else if !name.is_empty() {
                for m in dns1123_label_errors(name) {
                    errs.push(invalid(&child(&pp, "name"), q(name), &m));
                }
            }
            for m in port_num_errors(i64::from(port.port)) {
                errs.push(invalid(&child(&pp, "port"), port.port.to_string(), &m));
            }
            protocol(port.protocol.as_deref(), &child(&pp, "protocol"), &mut errs);
        }
    }
    errs
}

fn protocol(p: Option<&str>, path: &str, errs: &mut Vec<FieldError>) {
    match p.unwrap_or("") {
        "TCP" | "UDP" | "SCTP" => {}
        "" => errs.push(required(path, "")),
        other => errs.push(not_supported(path, q(other), &["SCTP", "TCP", "UDP"])),
    }
}

fn externally_accessible(spec: &ServiceSpec) -> bool {
    match spec.type_.as_deref() {
        Some("LoadBalancer") | Some("NodePort") => true,
        Some("ClusterIP") => spec.external_ips.as_ref().is_some_and(|e| !e.is_empty()),
        _ => false,
    }
}

pub fn service(s: &Service) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&s.metadata, true, NameRule::Dns1035);
    let empty = ServiceSpec::default();
    let spec = s.spec.as_ref().unwrap_or(&empty);
    let ty = spec.type_.as_deref().unwrap_or("");
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let ports = spec.ports.as_deref().unwrap_or_default();
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(required("spec.ports", ""));
    }
    match ty {
        "ClusterIP" | "NodePort" | "LoadBalancer" => {}
        "ExternalName" => {
            if spec.cluster_ips.as_ref().is_some_and(|c| !c.is_empty()) {
                errs.push(forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_families.as_ref().is_some_and(|c| !c.is_empty()) {
                errs.push(forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_family_policy.is_some() {
                errs.push(forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            let name = spec.external_name.as_deref().unwrap_or("");
            let cname = name.strip_suffix('.').unwrap_or(name);
            if cname.is_empty() {
                errs.push(required("spec.externalName", ""));
            } else {
                for m in dns1123_subdomain_errors(cname) {
                    errs.push(invalid("spec.externalName", q(cname), &m));
                }
            }
        }
        "" => errs.push(required("spec.type", "")),
        other => errs.push(not_supported(
            "spec.type",
            q(other),
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = index("spec.ports", i);
        let name = p.name.as_deref().unwrap_or("");
        if ports.len() > 1 && name.is_empty() {
            errs.push(required(&child(&pp, "name"), ""));
        } else if !name.is_empty() {
            for m in dns1123_label_errors(name) {
                errs.push(invalid(&child(&pp, "name"), q(name), &m));
            }
            if !names.insert(name) {
                errs.push(duplicate(&child(&pp, "name"), q(name)));
            }
        }
        for m in port_num_errors(i64::from(p.port)) {
            errs.push(invalid(&child(&pp, "port"), p.port.to_string(), &m));
        }
        protocol(p.protocol.as_deref(), &child(&pp, "protocol"), &mut errs);
        match &p.target_port {
            Some(IntOrString::Int(t)) => {
                for m in port_num_errors(i64::from(*t)) {
                    errs.push(invalid(&child(&pp, "targetPort"), t.to_string(), &m));
                }
            }
            Some(IntOrString::String(t)) => {
                for m in port_name_errors(t) {
                    errs.push(invalid(&child(&pp, "targetPort"), q(t), &m));
                }
            }
            None => {}
        }
        if let Some(np) = p.node_port.filter(|n| *n != 0) {
            if ty == "ClusterIP" {
                errs.push(forbidden(
                    &child(&pp, "nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            } else {
                for m in port_num_errors(i64::from(np)) {
                    errs.push(invalid(&child(&pp, "nodePort"), np.to_string(), &m));
                }
            }
        }
    }
    errs.extend(validate_labels(spec.selector.as_ref(), "spec.selector"));
    match spec.session_affinity.as_deref().unwrap_or("") {
        "ClientIP" | "None" => {}
        "" => errs.push(required("spec.sessionAffinity", "")),
        other => errs.push(not_supported(
            "spec.sessionAffinity",
            q(other),
            &["ClientIP", "None"],
        )),
    }
    for (i, ip) in spec.cluster_ips.iter().flatten().enumerate() {
        if (i == 0 && ip == "None") || ip.is_empty() {
            continue;
        }
        if !is_ip(ip) {
            errs.push(invalid(&index("spec.clusterIPs", i), q(ip), IP_MSG));
        }
    }
    if let Some(p) = spec.ip_family_policy.as_deref() {
        if !matches!(p, "SingleStack" | "PreferDualStack" | "RequireDualStack") {
            errs.push(not_supported(
                "spec.ipFamilyPolicy",
                q(p),
                &["PreferDualStack", "RequireDualStack", "SingleStack"],
            ));
        }
    }
    for (i, f) in spec.ip_families.iter().flatten().enumerate() {
        if !matches!(f.as_str(), "IPv4" | "IPv6") {
            errs.push(not_supported(
                &index("spec.ipFamilies", i),
                q(f),
                &["IPv4", "IPv6"],
            ));
        }
    }
    if let Some(p) = spec.internal_traffic_policy.as_deref() {
        if !matches!(p, "Cluster" | "Local") {
            errs.push(not_supported(
                "spec.internalTrafficPolicy",
                q(p),
                &["Cluster", "Local"],
            ));
        }
    }
    if let Some(p) = spec
        .external_traffic_policy
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        if !externally_accessible(spec) {
            errs.push(invalid(
                "spec.externalTrafficPolicy",
                q(p),
                "may only be set for externally-accessible services",
            ));
        } else if !matches!(p, "Cluster" | "Local") {
            errs.push(not_supported(
                "spec.externalTrafficPolicy",
                q(p),
                &["Cluster", "Local"],
            ));
        }
    }
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        if !is_ip(ip) {
            errs.push(invalid(&index("spec.externalIPs", i), q(ip), IP_MSG));
        }
    }
    errs
}

pub fn event(e: &Event) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&e.metadata, true, NameRule::PathSegment);
    let ns = e.metadata.namespace.as_deref().unwrap_or("");
    let io_ns = e.involved_object.namespace.as_deref().unwrap_or("");
    let mismatch = || {
        invalid(
            "involvedObject.namespace",
            q(io_ns),
            "does not match event.namespace",
        )
    };
    if e.event_time.is_none() {
        if io_ns.is_empty() {
            if !ns.is_empty() && ns != "default" {
                errs.push(mismatch());
            }
        } else if ns != io_ns {
            errs.push(mismatch());
        }
    } else {
        if io_ns.is_empty() && ns != "default" && ns != "kube-system" {
            errs.push(mismatch());
        }
        let rc = e.reporting_component.as_deref().unwrap_or("");
        if rc.is_empty() {
            errs.push(required("reportingController", ""));
        }
        for m in qualified_name_errors(rc) {
            errs.push(invalid("reportingController", q(rc), &m));
        }
        let ri = e.reporting_instance.as_deref().unwrap_or("");
        if ri.is_empty() {
            errs.push(required("reportingInstance", ""));
        }
        if ri.len() > 128 {
            errs.push(invalid(
                "reportingInstance",
                q(""),
                "can have at most 128 characters",
            ));
        }
        let action = e.action.as_deref().unwrap_or("");
        if action.is_empty() {
            errs.push(required("action", ""));
        }
        if action.len() > 128 {
            errs.push(invalid("action", q(""), "can have at most 128 characters"));
        }
        let reason = e.reason.as_deref().unwrap_or("");
        if reason.is_empty() {
            errs.push(required("reason", ""));
        }
        if reason.len() > 128 {
            errs.push(invalid("reason", q(""), "can have at most 128 characters"));
        }
        if e.message.as_deref().unwrap_or("").len() > 1024 {
            errs.push(invalid(
                "message",
                q(""),
                "can have at most 1024 characters",
            ));
        }
    }
    errs
}

pub fn binding(b: &Binding) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let kind = b.target.kind.as_deref().unwrap_or("");
    if !kind.is_empty() && kind != "Node" {
        errs.push(not_supported("target.kind", q(kind), &["Node", "<empty>"]));
    }
    if b.target.name.as_deref().is_none_or(str::is_empty) {
        errs.push(required("target.name", ""));
    }
    errs
}

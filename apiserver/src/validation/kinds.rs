//! Create-time validation of every kind but Pod's spec details (see `pod.rs`), and the update
//! rules of the kinds that have some.

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

// ---------------------------------------------------------------------------------------------
// apps/v1, autoscaling/v1, coordination/v1
// ---------------------------------------------------------------------------------------------

fn nonnegative(v: Option<i32>, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(v) = v.filter(|v| *v < 0) {
        errs.push(invalid(
            path,
            v.to_string(),
            "must be greater than or equal to 0",
        ));
    }
}

/// The selector checks shared by Deployment and ReplicaSet, then the template.
fn workload_selector_and_template(
    selector: &LabelSelector,
    selector_present: bool,
    template: &PodTemplateSpec,
    errs: &mut Vec<FieldError>,
) {
    if !selector_present {
        errs.push(required("spec.selector", ""));
    } else {
        errs.extend(validate_label_selector(selector, "spec.selector"));
        if selector_is_empty(selector) {
            errs.push(invalid(
                "spec.selector",
                go_label_selector(selector),
                "empty selector is invalid for deployment",
            ));
        }
    }
    if selector_present && !selector_convertible(selector) {
        errs.push(invalid(
            "spec.selector",
            go_label_selector(selector),
            "invalid label selector",
        ));
        return;
    }
    let labels = template.metadata.as_ref().and_then(|m| m.labels.as_ref());
    // A missing selector converts to "nothing", which matches no labels.
    let nonempty = !selector_present || !selector_is_empty(selector);
    if nonempty && (!selector_present || !selector_matches(selector, labels)) {
        errs.push(invalid(
            "spec.template.metadata.labels",
            go_map(labels),
            "`selector` does not match template `labels`",
        ));
    }
    if let Some(meta) = template.metadata.as_ref() {
        errs.extend(validate_labels(
            meta.labels.as_ref(),
            "spec.template.metadata.labels",
        ));
        for k in meta.annotations.iter().flat_map(|a| a.keys()) {
            for m in qualified_name_errors(&k.to_lowercase()) {
                errs.push(invalid("spec.template.metadata.annotations", q(k), &m));
            }
        }
    }
    let empty = PodSpec::default();
    let spec = template.spec.as_ref().unwrap_or(&empty);
    errs.extend(validate_pod_spec(
        spec,
        "spec.template.spec",
        SpecOpts { template: true },
    ));
    let rp = spec.restart_policy.as_deref().unwrap_or("");
    if rp != "Always" {
        errs.push(not_supported(
            "spec.template.spec.restartPolicy",
            q(rp),
            &["Always"],
        ));
    }
    if let Some(a) = spec.active_deadline_seconds {
        errs.push(invalid(
            "spec.template.spec.activeDeadlineSeconds",
            a.to_string(),
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        ));
    }
}

fn selector_present(raw: &Value) -> bool {
    raw.pointer("/spec/selector").is_some_and(|s| !s.is_null())
}

fn int_or_percent(v: Option<&IntOrString>) -> Option<i64> {
    match v? {
        IntOrString::Int(i) => Some(i64::from(*i)),
        IntOrString::String(s) => s.strip_suffix('%').and_then(|n| n.parse().ok()),
    }
}

fn validate_strategy(s: &DeploymentStrategy, errs: &mut Vec<FieldError>) {
    match s.type_.as_deref().unwrap_or("") {
        "Recreate" => {
            if s.rolling_update.is_some() {
                errs.push(forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match s.rolling_update.as_ref() {
            None => errs.push(required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                for (name, v) in [
                    ("maxUnavailable", &ru.max_unavailable),
                    ("maxSurge", &ru.max_surge),
                ] {
                    let p = format!("spec.strategy.rollingUpdate.{name}");
                    match v {
                        Some(IntOrString::String(s)) => {
                            let ok = s.strip_suffix('%').is_some_and(|n| {
                                !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit())
                            });
                            if !ok {
                                errs.push(invalid(
                                    &p,
                                    go_int_or_string(&IntOrString::String(s.clone())),
                                    &regex_error(
                                        "a valid percent string must be a numeric string followed by an ending '%'",
                                        "[0-9]+%",
                                        &["1%", "93%"],
                                    ),
                                ));
                            }
                        }
                        Some(IntOrString::Int(i)) if *i < 0 => {
                            errs.push(invalid(
                                &p,
                                i.to_string(),
                                "must be greater than or equal to 0",
                            ));
                        }
                        _ => {}
                    }
                }
                if int_or_percent(ru.max_unavailable.as_ref()) == Some(0)
                    && int_or_percent(ru.max_surge.as_ref()) == Some(0)
                {
                    errs.push(invalid(
                        "spec.strategy.rollingUpdate.maxUnavailable",
                        ru.max_unavailable
                            .as_ref()
                            .map_or("null".into(), go_int_or_string),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                if let Some(IntOrString::String(s)) = &ru.max_unavailable {
                    if int_or_percent(ru.max_unavailable.as_ref()).is_some_and(|p| p > 100) {
                        errs.push(invalid(
                            "spec.strategy.rollingUpdate.maxUnavailable",
                            go_int_or_string(&IntOrString::String(s.clone())),
                            "must not be greater than 100%",
                        ));
                    }
                }
            }
        },
        other => errs.push(not_supported(
            "spec.strategy",
            format!("apps.DeploymentStrategy{{Type:{}}}", q(other)),
            &["Recreate", "RollingUpdate"],
        )),
    }
}

pub fn deployment(d: &Deployment, raw: &Value, namespaced: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&d.metadata, namespaced, NameRule::Subdomain);
    let spec = d.spec.clone().unwrap_or_default();
    nonnegative(spec.replicas, "spec.replicas", &mut errs);
    workload_selector_and_template(
        &spec.selector,
        selector_present(raw),
        &spec.template,
        &mut errs,
    );
    if let Some(s) = spec.strategy.as_ref() {
        validate_strategy(s, &mut errs);
    }
    nonnegative(spec.min_ready_seconds, "spec.minReadySeconds", &mut errs);
    nonnegative(
        spec.revision_history_limit,
        "spec.revisionHistoryLimit",
        &mut errs,
    );
    if let Some(p) = spec.progress_deadline_seconds {
        if p <= 0 {
            errs.push(invalid(
                "spec.progressDeadlineSeconds",
                p.to_string(),
                "must be greater than zero",
            ));
        }
        if p <= spec.min_ready_seconds.unwrap_or(0) {
            errs.push(invalid(
                "spec.progressDeadlineSeconds",
                p.to_string(),
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

pub fn replica_set(r: &ReplicaSet, raw: &Value, namespaced: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&r.metadata, namespaced, NameRule::Subdomain);
    let spec = r.spec.clone().unwrap_or_default();
    nonnegative(spec.replicas, "spec.replicas", &mut errs);
    nonnegative(spec.min_ready_seconds, "spec.minReadySeconds", &mut errs);
    let template = spec.template.clone().unwrap_or_default();
    workload_selector_and_template(&spec.selector, selector_present(raw), &template, &mut errs);
    errs
}

pub fn scale(s: &Scale, namespaced: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&s.metadata, namespaced, NameRule::Subdomain);
    nonnegative(
        s.spec.as_ref().and_then(|s| s.replicas),
        "spec.replicas",
        &mut errs,
    );
    errs
}

pub fn lease(l: &Lease, namespaced: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&l.metadata, namespaced, NameRule::Subdomain);
    if let Some(spec) = l.spec.as_ref() {
        if let Some(d) = spec.lease_duration_seconds.filter(|d| *d <= 0) {
            errs.push(invalid(
                "spec.leaseDurationSeconds",
                d.to_string(),
                "must be greater than 0",
            ));
        }
        if let Some(t) = spec.lease_transitions.filter(|t| *t < 0) {
            errs.push(invalid(
                "spec.leaseTransitions",
                t.to_string(),
                "must be greater than or equal to 0",
            ));
        }
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// rbac.authorization.k8s.io/v1
// ---------------------------------------------------------------------------------------------

fn policy_rule(rule: &PolicyRule, namespaced: bool, path: &str, errs: &mut Vec<FieldError>) {
    if rule.verbs.is_empty() {
        errs.push(required(
            &child(path, "verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = rule.non_resource_urls.as_deref().unwrap_or_default();
    let groups = rule.api_groups.as_deref().unwrap_or_default();
    let resources = rule.resources.as_deref().unwrap_or_default();
    let names = rule.resource_names.as_deref().unwrap_or_default();
    if !urls.is_empty() {
        let p = child(path, "nonResourceURLs");
        if namespaced {
            errs.push(invalid(
                &p,
                go_strings(Some(urls)),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !groups.is_empty() || !resources.is_empty() || !names.is_empty() {
            errs.push(invalid(
                &p,
                go_strings(Some(urls)),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return;
    }
    if groups.is_empty() {
        errs.push(required(
            &child(path, "apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if resources.is_empty() {
        errs.push(required(
            &child(path, "resources"),
            "resource rules must supply at least one resource",
        ));
    }
}

pub fn role(r: &Role) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&r.metadata, true, NameRule::PathSegment);
    for (i, rule) in r.rules.iter().flatten().enumerate() {
        policy_rule(rule, true, &index("rules", i), &mut errs);
    }
    errs
}

pub fn cluster_role(r: &ClusterRole) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&r.metadata, false, NameRule::PathSegment);
    for (i, rule) in r.rules.iter().flatten().enumerate() {
        policy_rule(rule, false, &index("rules", i), &mut errs);
    }
    if let Some(agg) = r.aggregation_rule.as_ref() {
        let sels = agg.cluster_role_selectors.as_deref().unwrap_or_default();
        if sels.is_empty() {
            errs.push(required(
                "aggregationRule.clusterRoleSelectors",
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, s) in sels.iter().enumerate() {
            errs.extend(validate_label_selector(
                s,
                &index("aggregationRule.clusterRoleSelectors", i),
            ));
        }
    }
    errs
}

fn role_ref(r: &RoleRef, kinds: &[&str], errs: &mut Vec<FieldError>) {
    if r.api_group != RBAC_GROUP {
        errs.push(not_supported(
            "roleRef.apiGroup",
            q(&r.api_group),
            &[RBAC_GROUP],
        ));
    }
    if !kinds.contains(&r.kind.as_str()) {
        errs.push(not_supported("roleRef.kind", q(&r.kind), kinds));
    }
    if r.name.is_empty() {
        errs.push(required("roleRef.name", ""));
    } else {
        for m in path_segment_name_errors(&r.name) {
            errs.push(invalid("roleRef.name", q(&r.name), &m));
        }
    }
}

fn subject(s: &Subject, namespaced: bool, path: &str, errs: &mut Vec<FieldError>) {
    if s.name.is_empty() {
        errs.push(required(&child(path, "name"), ""));
    }
    let group = s.api_group.as_deref().unwrap_or("");
    match s.kind.as_str() {
        "ServiceAccount" => {
            if !s.name.is_empty() {
                for m in dns1123_subdomain_errors(&s.name) {
                    errs.push(invalid(&child(path, "name"), q(&s.name), &m));
                }
            }
            if !group.is_empty() {
                errs.push(not_supported(&child(path, "apiGroup"), q(group), &[""]));
            }
            if !namespaced && s.namespace.as_deref().is_none_or(str::is_empty) {
                errs.push(required(&child(path, "namespace"), ""));
            }
        }
        "User" | "Group" => {
            if group != RBAC_GROUP {
                errs.push(not_supported(
                    &child(path, "apiGroup"),
                    q(group),
                    &[RBAC_GROUP],
                ));
            }
        }
        other => errs.push(not_supported(
            &child(path, "kind"),
            q(other),
            &["ServiceAccount", "User", "Group"],
        )),
    }
}

pub fn role_binding(b: &RoleBinding) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&b.metadata, true, NameRule::PathSegment);
    role_ref(&b.role_ref, &["Role", "ClusterRole"], &mut errs);
    for (i, s) in b.subjects.iter().flatten().enumerate() {
        subject(s, true, &index("subjects", i), &mut errs);
    }
    errs
}

pub fn cluster_role_binding(b: &ClusterRoleBinding) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&b.metadata, false, NameRule::PathSegment);
    role_ref(&b.role_ref, &["ClusterRole"], &mut errs);
    for (i, s) in b.subjects.iter().flatten().enumerate() {
        subject(s, false, &index("subjects", i), &mut errs);
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Update rules
// ---------------------------------------------------------------------------------------------

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// `ValidateObjectMetaUpdate`: name, namespace, uid (when given) immutable; no new finalizers
/// once deleting.
pub fn meta_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (field, ptr) in [
        ("metadata.name", "/metadata/name"),
        ("metadata.namespace", "/metadata/namespace"),
    ] {
        if str_at(old, ptr) != str_at(new, ptr) {
            errs.push(invalid(field, q(str_at(new, ptr)), "field is immutable"));
        }
    }
    let new_uid = str_at(new, "/metadata/uid");
    if !new_uid.is_empty() && new_uid != str_at(old, "/metadata/uid") {
        errs.push(invalid("metadata.uid", q(new_uid), "field is immutable"));
    }
    if old
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        let strings = |v: &Value| -> Vec<String> {
            v.pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let old_f: BTreeSet<String> = strings(old).into_iter().collect();
        let added: Vec<String> = strings(new)
            .into_iter()
            .filter(|f| !old_f.contains(f))
            .collect();
        if !added.is_empty() {
            errs.push(forbidden(
                "metadata.finalizers",
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers {}",
                    go_strings(Some(&added))
                ),
            ));
        }
    }
    errs
}

fn selector_of(v: &Value) -> LabelSelector {
    v.pointer("/spec/selector")
        .cloned()
        .and_then(|s| serde_json::from_value(s).ok())
        .unwrap_or_default()
}

/// apps/v1: spec.selector is immutable.
pub fn workload_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let o = old.pointer("/spec/selector").map(normalized);
    let n = new.pointer("/spec/selector").map(normalized);
    if o.unwrap_or(Value::Null) != n.unwrap_or(Value::Null) {
        return vec![invalid(
            "spec.selector",
            go_label_selector(&selector_of(new)),
            "field is immutable",
        )];
    }
    Vec::new()
}

fn strings_at(v: &Value, ptr: &str) -> Vec<String> {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Service: the cluster IP may not change once set (except to/from ExternalName). A new object
/// without clusterIP is accepted (the caller carries the old one over, as Kubernetes does).
pub fn service_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let (ot, nt) = (str_at(old, "/spec/type"), str_at(new, "/spec/type"));
    if ot == "ExternalName" || nt == "ExternalName" {
        return Vec::new();
    }
    let (oip, nip) = (
        str_at(old, "/spec/clusterIP"),
        str_at(new, "/spec/clusterIP"),
    );
    if oip == "None" && nip == "None" {
        return Vec::new();
    }
    let old_ips = {
        let v = strings_at(old, "/spec/clusterIPs");
        if v.is_empty() && !oip.is_empty() {
            vec![oip.to_string()]
        } else {
            v
        }
    };
    let new_ips = {
        let v = strings_at(new, "/spec/clusterIPs");
        if v.is_empty() && !nip.is_empty() {
            vec![nip.to_string()]
        } else {
            v
        }
    };
    let mut errs = Vec::new();
    if new_ips.is_empty() {
        return errs;
    }
    for (i, ip) in old_ips.iter().enumerate() {
        if new_ips.get(i).is_some_and(|n| n != ip) {
            errs.push(invalid(
                &index("spec.clusterIPs", i),
                go_strings(Some(&new_ips)),
                "may not change once set",
            ));
        }
    }
    errs
}

/// Secret: type immutable; with `immutable: true`, data and the flag itself are frozen.
pub fn secret_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (ot, nt) = (str_at(old, "/type"), str_at(new, "/type"));
    if ot != nt {
        errs.push(invalid("type", q(nt), "field is immutable"));
    }
    errs.extend(frozen_data(old, new, &["data"]));
    errs
}

/// ConfigMap: with `immutable: true`, data, binaryData and the flag itself are frozen.
pub fn config_map_update(old: &Value, new: &Value) -> Vec<FieldError> {
    frozen_data(old, new, &["data", "binaryData"])
}

fn frozen_data(old: &Value, new: &Value, fields: &[&str]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return errs;
    }
    if new.get("immutable").and_then(Value::as_bool) != Some(true) {
        errs.push(forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
    for f in fields {
        let o = old.get(*f).map(normalized).unwrap_or(Value::Null);
        let n = new.get(*f).map(normalized).unwrap_or(Value::Null);
        let empty = |v: &Value| v.is_null() || v.as_object().is_some_and(|o| o.is_empty());
        if o != n && !(empty(&o) && empty(&n)) {
            errs.push(forbidden(f, "field is immutable when `immutable` is set"));
        }
    }
    errs
}

/// RoleBinding / ClusterRoleBinding: roleRef may not change.
pub fn binding_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let o = old.get("roleRef").map(normalized).unwrap_or(Value::Null);
    let n = new.get("roleRef").map(normalized).unwrap_or(Value::Null);
    if o != n {
        let s = |k: &str| str_at(new, &format!("/roleRef/{k}")).to_string();
        return vec![invalid(
            "roleRef",
            format!(
                "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
                q(&s("apiGroup")),
                q(&s("kind")),
                q(&s("name"))
            ),
            "cannot change roleRef",
        )];
    }
    Vec::new()
}

/// Node: podCIDRs and providerID may only go from unset to set.
pub fn node_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let old_cidrs = strings_at(old, "/spec/podCIDRs");
    if !old_cidrs.is_empty() && old_cidrs != strings_at(new, "/spec/podCIDRs") {
        errs.push(forbidden(
            "spec.podCIDRs",
            "node updates may not change podCIDR except from \"\" to valid",
        ));
    }
    let op = str_at(old, "/spec/providerID");
    if !op.is_empty() && op != str_at(new, "/spec/providerID") {
        errs.push(forbidden(
            "spec.providerID",
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    errs
}

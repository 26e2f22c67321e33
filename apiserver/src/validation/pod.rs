//! Pod validation (`ValidatePodSpec` and what it calls), QoS class, and pod update rules.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EphemeralContainer, Lifecycle, PodSpec, Probe,
    ResourceRequirements, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use serde_json::Value;

use super::common::*;
use super::quantity::{self, Quantity};
use super::FieldError;

/// Checks every quantity a pod spec holds parses (the decoder rejects bad ones in Kubernetes).
pub fn check_quantities(spec: &PodSpec) -> Result<(), &'static str> {
    let mut reqs: Vec<&ResourceRequirements> = Vec::new();
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        reqs.extend(c.resources.iter());
    }
    for c in spec.ephemeral_containers.iter().flatten() {
        reqs.extend(c.resources.iter());
    }
    reqs.extend(spec.resources.iter());
    let mut lists: Vec<&BTreeMap<String, K8sQuantity>> = Vec::new();
    for r in reqs {
        lists.extend(r.limits.iter());
        lists.extend(r.requests.iter());
    }
    lists.extend(spec.overhead.iter());
    for list in lists {
        for q in list.values() {
            quantity::parse(&q.0)?;
        }
    }
    for v in spec.volumes.iter().flatten() {
        if let Some(q) = v.empty_dir.as_ref().and_then(|e| e.size_limit.as_ref()) {
            quantity::parse(&q.0)?;
        }
    }
    Ok(())
}

/// Options distinguishing a pod from a pod template.
#[derive(Clone, Copy)]
pub struct SpecOpts {
    /// A workload's pod template (no ephemeral containers).
    pub template: bool,
}

/// `ValidatePodSpec` (the commonly hit subset).
pub fn validate_pod_spec(spec: &PodSpec, path: &str, opts: SpecOpts) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if opts.template
        && spec
            .ephemeral_containers
            .as_ref()
            .is_some_and(|e| !e.is_empty())
    {
        errs.push(forbidden(
            &child(path, "ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    let volumes = validate_volumes(
        spec.volumes.as_deref().unwrap_or_default(),
        &child(path, "volumes"),
        &mut errs,
    );

    // Regular containers.
    let cpath = child(path, "containers");
    if spec.containers.is_empty() {
        errs.push(required(&cpath, ""));
    }
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (i, c) in spec.containers.iter().enumerate() {
        let p = index(&cpath, i);
        validate_container(&ContainerView::from(c), &volumes, &p, &mut errs);
        if !names.insert(c.name.as_str()) {
            errs.push(duplicate(&child(&p, "name"), q(&c.name)));
        }
        if let Some(lp) = c.liveness_probe.as_ref() {
            if lp.success_threshold.unwrap_or(1) != 1 {
                errs.push(invalid(
                    &child(&child(&p, "livenessProbe"), "successThreshold"),
                    lp.success_threshold.unwrap_or(0).to_string(),
                    "must be 1",
                ));
            }
        }
        if let Some(sp) = c.startup_probe.as_ref() {
            if sp.success_threshold.unwrap_or(1) != 1 {
                errs.push(invalid(
                    &child(&child(&p, "startupProbe"), "successThreshold"),
                    sp.success_threshold.unwrap_or(0).to_string(),
                    "must be 1",
                ));
            }
        }
        if c.restart_policy.is_some() {
            errs.push(forbidden(
                &child(&p, "restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }

    // Init containers: names unique across regular and init containers.
    let ipath = child(path, "initContainers");
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        let p = index(&ipath, i);
        validate_container(&ContainerView::from(c), &volumes, &p, &mut errs);
        if let Some(rp) = c.restart_policy.as_deref() {
            if rp != "Always" {
                errs.push(not_supported(
                    &child(&p, "restartPolicy"),
                    q(rp),
                    &["Always"],
                ));
            }
        }
        if names.contains(c.name.as_str()) {
            errs.push(duplicate(&child(&p, "name"), q(&c.name)));
        } else if !c.name.is_empty() {
            names.insert(c.name.as_str());
        }
    }

    // Ephemeral containers.
    let epath = child(path, "ephemeralContainers");
    for (i, c) in spec.ephemeral_containers.iter().flatten().enumerate() {
        let p = index(&epath, i);
        validate_container(&ContainerView::from(c), &volumes, &p, &mut errs);
        if names.contains(c.name.as_str()) {
            errs.push(duplicate(&child(&p, "name"), q(&c.name)));
        } else if !c.name.is_empty() {
            names.insert(c.name.as_str());
        }
    }

    match spec.restart_policy.as_deref().unwrap_or("") {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(required(&child(path, "restartPolicy"), "")),
        other => errs.push(not_supported(
            &child(path, "restartPolicy"),
            q(other),
            &["Always", "OnFailure", "Never"],
        )),
    }
    let dns = spec.dns_policy.as_deref().unwrap_or("");
    match dns {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(required(&child(path, "dnsPolicy"), "")),
        other => errs.push(not_supported(
            &child(path, "dnsPolicy"),
            q(other),
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    errs.extend(validate_labels(
        spec.node_selector.as_ref(),
        &child(path, "nodeSelector"),
    ));
    if dns == "None" && spec.dns_config.is_none() {
        errs.push(required(
            &child(path, "dnsConfig"),
            "must provide `dnsConfig` when `dnsPolicy` is None",
        ));
    }
    if let Some(sa) = spec
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        for m in dns1123_subdomain_errors(sa) {
            errs.push(invalid(&child(path, "serviceAccountName"), q(sa), &m));
        }
    }
    if let Some(n) = spec.node_name.as_deref().filter(|s| !s.is_empty()) {
        for m in dns1123_subdomain_errors(n) {
            errs.push(invalid(&child(path, "nodeName"), q(n), &m));
        }
    }
    if let Some(ads) = spec.active_deadline_seconds {
        if !(1..=i64::from(i32::MAX)).contains(&ads) {
            errs.push(invalid(
                &child(path, "activeDeadlineSeconds"),
                ads.to_string(),
                "must be between 1 and 2147483647, inclusive",
            ));
        }
    }
    for (field, value) in [("hostname", &spec.hostname), ("subdomain", &spec.subdomain)] {
        if let Some(v) = value.as_deref().filter(|s| !s.is_empty()) {
            for m in dns1123_label_errors(v) {
                errs.push(invalid(&child(path, field), q(v), &m));
            }
        }
    }
    errs.extend(validate_tolerations(
        spec.tolerations.as_deref().unwrap_or_default(),
        &child(path, "tolerations"),
    ));
    if let Some(pc) = spec
        .priority_class_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        for m in dns1123_subdomain_errors(pc) {
            errs.push(invalid(&child(path, "priorityClassName"), q(pc), &m));
        }
    }
    if let Some(pp) = spec.preemption_policy.as_deref() {
        if !matches!(pp, "PreemptLowerPriority" | "Never") {
            errs.push(not_supported(
                &child(path, "preemptionPolicy"),
                q(pp),
                &["Never", "PreemptLowerPriority"],
            ));
        }
    }
    errs
}

/// The parts of `Container` and `EphemeralContainer` that validation reads.
struct ContainerView<'a> {
    name: &'a str,
    image: Option<&'a str>,
    pull_policy: Option<&'a str>,
    termination_message_policy: Option<&'a str>,
    ports: &'a [ContainerPort],
    env: &'a [EnvVar],
    volume_mounts: &'a [VolumeMount],
    resources: Option<&'a ResourceRequirements>,
    probes: [(&'static str, Option<&'a Probe>); 3],
    lifecycle: Option<&'a Lifecycle>,
}

impl<'a> From<&'a Container> for ContainerView<'a> {
    fn from(c: &'a Container) -> Self {
        ContainerView {
            name: &c.name,
            image: c.image.as_deref(),
            pull_policy: c.image_pull_policy.as_deref(),
            termination_message_policy: c.termination_message_policy.as_deref(),
            ports: c.ports.as_deref().unwrap_or_default(),
            env: c.env.as_deref().unwrap_or_default(),
            volume_mounts: c.volume_mounts.as_deref().unwrap_or_default(),
            resources: c.resources.as_ref(),
            probes: [
                ("livenessProbe", c.liveness_probe.as_ref()),
                ("readinessProbe", c.readiness_probe.as_ref()),
                ("startupProbe", c.startup_probe.as_ref()),
            ],
            lifecycle: c.lifecycle.as_ref(),
        }
    }
}

impl<'a> From<&'a EphemeralContainer> for ContainerView<'a> {
    fn from(c: &'a EphemeralContainer) -> Self {
        ContainerView {
            name: &c.name,
            image: c.image.as_deref(),
            pull_policy: c.image_pull_policy.as_deref(),
            termination_message_policy: c.termination_message_policy.as_deref(),
            ports: c.ports.as_deref().unwrap_or_default(),
            env: c.env.as_deref().unwrap_or_default(),
            volume_mounts: c.volume_mounts.as_deref().unwrap_or_default(),
            resources: c.resources.as_ref(),
            // Ephemeral containers may not have probes: not validated here.
            probes: [
                ("livenessProbe", None),
                ("readinessProbe", None),
                ("startupProbe", None),
            ],
            lifecycle: None,
        }
    }
}

/// `validateContainerCommon`.
fn validate_container(
    c: &ContainerView<'_>,
    volumes: &BTreeSet<String>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let name_path = child(path, "name");
    if c.name.is_empty() {
        errs.push(required(&name_path, ""));
    } else {
        for m in dns1123_label_errors(c.name) {
            errs.push(invalid(&name_path, q(c.name), &m));
        }
    }
    if c.image.is_none_or(str::is_empty) {
        errs.push(required(&child(path, "image"), ""));
    }
    match c.termination_message_policy.unwrap_or("") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(required(&child(path, "terminationMessagePolicy"), "")),
        other => errs.push(not_supported(
            &child(path, "terminationMessagePolicy"),
            q(other),
            &["File", "FallbackToLogsOnError"],
        )),
    }
    validate_container_ports(c.ports, &child(path, "ports"), errs);
    for (i, e) in c.env.iter().enumerate() {
        let p = child(&index(&child(path, "env"), i), "name");
        if e.name.is_empty() {
            errs.push(required(&p, ""));
            errs.push(invalid(
                &p,
                q(&e.name),
                "environment variable name must be non-empty",
            ));
        } else if e
            .name
            .chars()
            .any(|ch| !(' '..='~').contains(&ch) || ch == '=')
        {
            errs.push(invalid(
                &p,
                q(&e.name),
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            ));
        }
    }
    let mut mount_points: BTreeSet<&str> = BTreeSet::new();
    for (i, m) in c.volume_mounts.iter().enumerate() {
        let p = index(&child(path, "volumeMounts"), i);
        if m.name.is_empty() {
            errs.push(required(&child(&p, "name"), ""));
        }
        if !volumes.contains(&m.name) {
            errs.push(not_found(&child(&p, "name"), q(&m.name)));
        }
        if m.mount_path.is_empty() {
            errs.push(required(&child(&p, "mountPath"), ""));
        }
        if !mount_points.insert(m.mount_path.as_str()) {
            errs.push(invalid(
                &child(&p, "mountPath"),
                q(&m.mount_path),
                "must be unique",
            ));
        }
    }
    match c.pull_policy.unwrap_or("") {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(required(&child(path, "imagePullPolicy"), "")),
        other => errs.push(not_supported(
            &child(path, "imagePullPolicy"),
            q(other),
            &["Always", "IfNotPresent", "Never"],
        )),
    }
    if let Some(r) = c.resources {
        validate_resources(r, &child(path, "resources"), errs);
    }
    for (name, probe) in c.probes {
        if let Some(p) = probe {
            validate_probe(p, &child(path, name), name == "readinessProbe", errs);
        }
    }
    if let Some(l) = c.lifecycle {
        for (name, h) in [("postStart", &l.post_start), ("preStop", &l.pre_stop)] {
            if let Some(h) = h {
                let n = [
                    h.exec.is_some(),
                    h.http_get.is_some(),
                    h.tcp_socket.is_some(),
                    h.sleep.is_some(),
                ]
                .iter()
                .filter(|b| **b)
                .count();
                if n == 0 {
                    errs.push(required(
                        &child(&child(path, "lifecycle"), name),
                        "must specify a handler type",
                    ));
                }
            }
        }
    }
}

fn validate_probe(p: &Probe, path: &str, readiness: bool, errs: &mut Vec<FieldError>) {
    let handlers = [
        ("exec", p.exec.is_some()),
        ("httpGet", p.http_get.is_some()),
        ("tcpSocket", p.tcp_socket.is_some()),
        ("grpc", p.grpc.is_some()),
    ];
    let mut n = 0;
    for (name, set) in handlers {
        if set {
            n += 1;
            if n > 1 {
                errs.push(forbidden(
                    &child(path, name),
                    "may not specify more than 1 handler type",
                ));
            }
        }
    }
    if n == 0 {
        errs.push(required(path, "must specify a handler type"));
    }
    for (name, v) in [
        ("initialDelaySeconds", p.initial_delay_seconds),
        ("timeoutSeconds", p.timeout_seconds),
        ("periodSeconds", p.period_seconds),
        ("successThreshold", p.success_threshold),
        ("failureThreshold", p.failure_threshold),
    ] {
        if let Some(v) = v.filter(|v| *v < 0) {
            errs.push(invalid(
                &child(path, name),
                v.to_string(),
                "must be greater than or equal to 0",
            ));
        }
    }
    if readiness && p.termination_grace_period_seconds.is_some() {
        errs.push(invalid(
            &child(path, "terminationGracePeriodSeconds"),
            p.termination_grace_period_seconds.unwrap_or(0).to_string(),
            "must not be set for readinessProbes",
        ));
    }
}

/// `validateContainerPorts`.
fn validate_container_ports(ports: &[ContainerPort], path: &str, errs: &mut Vec<FieldError>) {
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let ip = index(path, i);
        if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
            let msgs = port_name_errors(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(invalid(&child(&ip, "name"), q(name), &m));
                }
            } else if !names.insert(name) {
                errs.push(duplicate(&child(&ip, "name"), q(name)));
            }
        }
        if p.container_port == 0 {
            errs.push(required(&child(&ip, "containerPort"), ""));
        } else {
            for m in port_num_errors(i64::from(p.container_port)) {
                errs.push(invalid(
                    &child(&ip, "containerPort"),
                    p.container_port.to_string(),
                    &m,
                ));
            }
        }
        if let Some(hp) = p.host_port.filter(|h| *h != 0) {
            for m in port_num_errors(i64::from(hp)) {
                errs.push(invalid(&child(&ip, "hostPort"), hp.to_string(), &m));
            }
        }
        match p.protocol.as_deref().unwrap_or("") {
            "TCP" | "UDP" | "SCTP" => {}
            "" => errs.push(required(&child(&ip, "protocol"), "")),
            other => errs.push(not_supported(
                &child(&ip, "protocol"),
                q(other),
                &["SCTP", "TCP", "UDP"],
            )),
        }
    }
}

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_huge_pages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

fn is_extended_resource(name: &str) -> bool {
    !is_native_resource(name)
        && !name.starts_with("requests.")
        && qualified_name_errors(&format!("requests.{name}")).is_empty()
}

/// `ValidateContainerResourceRequirements`.
fn validate_resources(r: &ResourceRequirements, path: &str, errs: &mut Vec<FieldError>) {
    let lim_path = child(path, "limits");
    let req_path = child(path, "requests");
    let empty = BTreeMap::new();
    let limits = r.limits.as_ref().unwrap_or(&empty);
    let requests = r.requests.as_ref().unwrap_or(&empty);
    let check_name_and_value =
        |name: &str, value: &K8sQuantity, p: &str, errs: &mut Vec<FieldError>| {
            let name_errs = qualified_name_errors(name);
            if !name_errs.is_empty() {
                for m in name_errs {
                    errs.push(invalid(p, q(name), &m));
                }
            } else if !name.contains('/') {
                let standard =
                    matches!(name, "cpu" | "memory" | "ephemeral-storage") || is_huge_pages(name);
                if !standard {
                    errs.push(invalid(
                        p,
                        q(name),
                        "must be a standard resource for containers",
                    ));
                }
            } else if !is_native_resource(name) && !is_extended_resource(name) {
                errs.push(invalid(
                    p,
                    q(name),
                    "doesn't follow extended resource name standard",
                ));
            }
            if let Ok(v) = quantity::parse(&value.0) {
                if v < Quantity::ZERO {
                    errs.push(invalid(
                        p,
                        q(&value.0),
                        "must be greater than or equal to 0",
                    ));
                }
                if is_extended_resource(name) && !v.is_integer() {
                    errs.push(invalid(p, q(&value.0), "must be an integer"));
                }
            }
        };
    for (name, value) in limits {
        check_name_and_value(name, value, &key(&lim_path, name), errs);
    }
    for (name, value) in requests {
        check_name_and_value(name, value, &key(&req_path, name), errs);
        let overcommit = is_native_resource(name) && !is_huge_pages(name);
        match limits.get(name) {
            Some(limit) => {
                let (Ok(rq), Ok(lq)) = (quantity::parse(&value.0), quantity::parse(&limit.0))
                else {
                    continue;
                };
                if rq != lq && !overcommit {
                    errs.push(invalid(
                        &req_path,
                        q(&value.0),
                        &format!("must be equal to {name} limit of {}", limit.0),
                    ));
                } else if rq > lq {
                    errs.push(invalid(
                        &req_path,
                        q(&value.0),
                        &format!("must be less than or equal to {name} limit of {}", limit.0),
                    ));
                }
            }
            None if !overcommit => errs.push(required(
                &lim_path,
                "Limit must be set for non overcommitable resources",
            )),
            None => {}
        }
    }
}

/// `ValidateVolumes`: returns the names of the valid volumes.
fn validate_volumes(
    volumes: &[Volume],
    path: &str,
    errs: &mut Vec<FieldError>,
) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let p = index(path, i);
        let mut el = Vec::new();
        let sources: Vec<String> = serde_json::to_value(v)
            .ok()
            .and_then(|j| {
                j.as_object()
                    .map(|o| o.keys().filter(|k| *k != "name").cloned().collect())
            })
            .unwrap_or_default();
        if sources.is_empty() {
            el.push(required(&p, "must specify a volume type"));
        }
        for s in sources.iter().skip(1) {
            el.push(forbidden(
                &child(&p, s),
                "may not specify more than 1 volume type",
            ));
        }
        if let Some(s) = v.secret.as_ref() {
            if s.secret_name.as_deref().is_none_or(str::is_empty) {
                el.push(required(&child(&child(&p, "secret"), "secretName"), ""));
            }
        }
        if let Some(h) = v.host_path.as_ref() {
            if h.path.is_empty() {
                el.push(required(&child(&child(&p, "hostPath"), "path"), ""));
            }
        }
        if let Some(c) = v.persistent_volume_claim.as_ref() {
            if c.claim_name.is_empty() {
                el.push(required(
                    &child(&child(&p, "persistentVolumeClaim"), "claimName"),
                    "",
                ));
            }
        }
        let name_path = child(&p, "name");
        if v.name.is_empty() {
            el.push(required(&name_path, ""));
        } else {
            for m in dns1123_label_errors(&v.name) {
                el.push(invalid(&name_path, q(&v.name), &m));
            }
        }
        if names.contains(&v.name) {
            el.push(duplicate(&name_path, q(&v.name)));
        }
        if el.is_empty() {
            names.insert(v.name.clone());
        } else {
            errs.extend(el);
        }
    }
    names
}

fn go_toleration(t: &Toleration) -> String {
    format!(
        "core.Toleration{{Key:{}, Operator:{}, Value:{}, Effect:{}, TolerationSeconds:{}}}",
        q(t.key.as_deref().unwrap_or("")),
        q(t.operator.as_deref().unwrap_or("")),
        q(t.value.as_deref().unwrap_or("")),
        q(t.effect.as_deref().unwrap_or("")),
        match t.toleration_seconds {
            Some(s) => format!("(*int64)({s})"),
            None => "(*int64)(nil)".into(),
        }
    )
}

/// `ValidateTolerations`.
pub fn validate_tolerations(tolerations: &[Toleration], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, t) in tolerations.iter().enumerate() {
        let p = index(path, i);
        let key_ = t.key.as_deref().unwrap_or("");
        let op = t.operator.as_deref().unwrap_or("");
        let value = t.value.as_deref().unwrap_or("");
        let effect = t.effect.as_deref().unwrap_or("");
        if !key_.is_empty() {
            for m in qualified_name_errors(key_) {
                errs.push(invalid(&child(&p, "key"), q(key_), &m));
            }
        }
        if key_.is_empty() && op != "Exists" {
            errs.push(invalid(
                &child(&p, "operator"),
                q(op),
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(invalid(
                &child(&p, "effect"),
                q(effect),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = label_value_errors(value);
                if !msgs.is_empty() {
                    errs.push(invalid(&child(&p, "operator"), q(value), &msgs.join(";")));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(invalid(
                        &child(&p, "operator"),
                        go_toleration(t),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(not_supported(
                &child(&p, "operator"),
                q(other),
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute")
        {
            errs.push(not_supported(
                &child(&p, "effect"),
                q(effect),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// QoS
// ---------------------------------------------------------------------------------------------

/// The pod's QoS class (`BestEffort`, `Burstable`, `Guaranteed`) from its containers' cpu and
/// memory requests and limits, as Kubernetes' `ComputePodQOS` (requests default to limits).
pub fn pod_qos_class(pod: &Value) -> &'static str {
    let spec = pod.get("spec");
    let containers = ["containers", "initContainers"].into_iter().flat_map(|f| {
        spec.and_then(|s| s.get(f))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    });
    let mut requests: BTreeMap<&str, Quantity> = BTreeMap::new();
    let mut limits: BTreeMap<&str, Quantity> = BTreeMap::new();
    let mut guaranteed = true;
    let read = |c: &Value, which: &str, res: &str| -> Option<Quantity> {
        c.get("resources")
            .and_then(|r| r.get(which))
            .and_then(|m| m.get(res))
            .and_then(|v| match v {
                Value::String(s) => quantity::parse(s).ok(),
                Value::Number(n) => quantity::parse(&n.to_string()).ok(),
                _ => None,
            })
    };
    for c in containers {
        let mut found_limits = 0;
        for res in ["cpu", "memory"] {
            let limit = read(c, "limits", res);
            let request = read(c, "requests", res).or(limit);
            if let Some(r) = request.filter(|r| *r > Quantity::ZERO) {
                let e = requests.entry(res).or_insert(Quantity::ZERO);
                *e = e.saturating_add(r);
            }
            if let Some(l) = limit.filter(|l| *l > Quantity::ZERO) {
                found_limits += 1;
                let e = limits.entry(res).or_insert(Quantity::ZERO);
                *e = e.saturating_add(l);
            }
        }
        if found_limits < 2 {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests.iter().all(|(k, r)| limits.get(k) == Some(r))
        && requests.len() == limits.len()
    {
        return "Guaranteed";
    }
    "Burstable"
}

// ---------------------------------------------------------------------------------------------
// Update
// ---------------------------------------------------------------------------------------------

/// Drops nulls, empty objects and empty arrays (Kubernetes' semantic equality treats nil and
/// empty alike).
pub fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), normalized(v)))
                .filter(|(_, v)| !is_empty_json(v))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

fn is_empty_json(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

const POD_UPDATE_MSG: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

fn list<'a>(spec: &'a Value, field: &str) -> &'a [Value] {
    spec.get(field)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// `ValidatePodUpdate`'s spec rules.
pub fn validate_pod_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let empty = Value::Object(Default::default());
    let old_spec = old.get("spec").unwrap_or(&empty);
    let new_spec = new.get("spec").unwrap_or(&empty);

    for field in ["containers", "initContainers"] {
        let path = format!("spec.{field}");
        let (o, n) = (list(old_spec, field), list(new_spec, field));
        if o.len() != n.len() {
            errs.push(forbidden(
                &path,
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        for (i, c) in n.iter().enumerate() {
            let image = c.get("image").and_then(Value::as_str).unwrap_or("");
            if image.is_empty() {
                errs.push(required(&child(&index(&path, i), "image"), ""));
            } else if image.trim() != image {
                errs.push(invalid(
                    &child(&index(&path, i), "image"),
                    q(image),
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }

    let old_ads = old_spec
        .get("activeDeadlineSeconds")
        .and_then(Value::as_i64);
    match new_spec
        .get("activeDeadlineSeconds")
        .and_then(Value::as_i64)
    {
        Some(n) => {
            if !(0..=i64::from(i32::MAX)).contains(&n) {
                errs.push(invalid(
                    "spec.activeDeadlineSeconds",
                    n.to_string(),
                    "must be between 0 and 2147483647, inclusive",
                ));
                return errs;
            }
            if old_ads.is_some_and(|o| o < n) {
                errs.push(invalid(
                    "spec.activeDeadlineSeconds",
                    n.to_string(),
                    "must be less than or equal to previous value",
                ));
                return errs;
            }
        }
        None => {
            if old_ads.is_some() {
                errs.push(invalid(
                    "spec.activeDeadlineSeconds",
                    "null",
                    "must not update from a positive integer to nil value",
                ));
            }
        }
    }

    let mut munged = new_spec.clone();
    if let Some(m) = munged.as_object_mut() {
        for field in ["containers", "initContainers"] {
            let olds = list(old_spec, field).to_vec();
            if let Some(arr) = m.get_mut(field).and_then(Value::as_array_mut) {
                for (c, o) in arr.iter_mut().zip(olds.iter()) {
                    if let Some(c) = c.as_object_mut() {
                        match o.get("image") {
                            Some(img) => c.insert("image".into(), img.clone()),
                            None => c.remove("image"),
                        };
                    }
                }
            }
        }
        for field in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            match old_spec.get(field) {
                Some(v) => m.insert(field.into(), v.clone()),
                None => m.remove(field),
            };
        }
        let old_tgps = old_spec
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64);
        let new_tgps = m
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64);
        if old_tgps.is_some_and(|o| o < 0) && new_tgps == Some(1) {
            if let Some(o) = old_spec.get("terminationGracePeriodSeconds") {
                m.insert("terminationGracePeriodSeconds".into(), o.clone());
            }
        }
    }
    let (munged, old_n) = (normalized(&munged), normalized(old_spec));
    if munged != old_n {
        let mut diff = String::new();
        if let (Some(m), Some(o)) = (munged.as_object(), old_n.as_object()) {
            let keys: BTreeSet<&String> = m.keys().chain(o.keys()).collect();
            for k in keys {
                if m.get(k) != o.get(k) {
                    let show = |v: Option<&Value>| v.map_or("null".to_string(), Value::to_string);
                    diff.push_str(&format!(
                        "\n  spec.{k}: {} -> {}",
                        show(o.get(k)),
                        show(m.get(k))
                    ));
                }
            }
        }
        errs.push(forbidden("spec", &format!("{POD_UPDATE_MSG}{diff}")));
    }

    // Tolerations: only additions (an existing one may change its tolerationSeconds).
    let new_tols = list(new_spec, "tolerations");
    for old_t in list(old_spec, "tolerations") {
        let found = new_tols.iter().any(|n| {
            let mut o = old_t.clone();
            if let Some(obj) = o.as_object_mut() {
                match n.get("tolerationSeconds") {
                    Some(s) => obj.insert("tolerationSeconds".into(), s.clone()),
                    None => obj.remove("tolerationSeconds"),
                };
            }
            normalized(&o) == normalized(n)
        });
        if !found {
            errs.push(forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }
    errs
}

//! Kubernetes' defaulting (the `SetDefaults_*` functions of the v1 API groups, plus the few
//! defaults the create strategies and default admission plugins add).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentStrategy, ReplicaSet, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, Endpoints, EnvVar, EphemeralContainer,
    HTTPGetAction, Lifecycle, LifecycleHandler, LoadBalancerStatus, Namespace, NamespaceSpec,
    NamespaceStatus, Node, Pod, PodSecurityContext, PodSpec, PodStatus, Probe,
    ResourceRequirements, Secret, Service, ServiceSpec, ServiceStatus, Volume,
};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::ByteString;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn set<T>(slot: &mut Option<T>, value: T) {
    if slot.is_none() {
        *slot = Some(value);
    }
}

fn set_str(slot: &mut Option<String>, value: &str) {
    if slot.as_deref().is_none_or(str::is_empty) {
        *slot = Some(value.to_string());
    }
}

/// Pod: `SetDefaults_Pod` + `SetDefaults_PodSpec` + the Priority admission plugin + the create
/// strategy's initial status phase.
pub fn pod(p: &mut Pod) {
    let spec = p.spec.get_or_insert_with(Default::default);
    pod_spec(spec);
    // Limits without requests: requests default to limits (Pod only, not templates).
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        if let Some(res) = c.resources.as_mut() {
            if let Some(limits) = res.limits.clone() {
                let requests = res.requests.get_or_insert_with(BTreeMap::new);
                for (k, v) in limits {
                    requests.entry(k).or_insert(v);
                }
            }
        }
    }
    set(&mut spec.enable_service_links, true);
    if spec.host_network == Some(true) {
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            for port in c.ports.iter_mut().flatten() {
                if port.host_port.unwrap_or(0) == 0 {
                    port.host_port = Some(port.container_port);
                }
            }
        }
    }
    // Priority admission: the two system classes, else the (absent) global default, 0.
    if spec.priority.is_none() {
        spec.priority = Some(match spec.priority_class_name.as_deref() {
            Some("system-node-critical") => 2_000_001_000,
            Some("system-cluster-critical") => 2_000_000_000,
            _ => 0,
        });
    }
    set_str(&mut spec.preemption_policy, "PreemptLowerPriority");
    let status = p.status.get_or_insert_with(PodStatus::default);
    set_str(&mut status.phase, "Pending");
}

/// `SetDefaults_PodSpec` and the defaults of everything a pod spec holds (templates included).
pub fn pod_spec(spec: &mut PodSpec) {
    set_str(&mut spec.dns_policy, "ClusterFirst");
    set_str(&mut spec.restart_policy, "Always");
    set(&mut spec.security_context, PodSecurityContext::default());
    set(&mut spec.termination_grace_period_seconds, 30);
    set_str(&mut spec.scheduler_name, "default-scheduler");
    // v1 conversion: the deprecated serviceAccount mirrors serviceAccountName.
    if spec
        .service_account_name
        .as_deref()
        .is_none_or(str::is_empty)
    {
        if let Some(sa) = spec.service_account.clone().filter(|s| !s.is_empty()) {
            spec.service_account_name = Some(sa);
        }
    }
    if let Some(sa) = spec.service_account_name.clone().filter(|s| !s.is_empty()) {
        spec.service_account = Some(sa);
    }
    for c in spec.containers.iter_mut() {
        container(c);
    }
    for c in spec.init_containers.iter_mut().flatten() {
        container(c);
    }
    for c in spec.ephemeral_containers.iter_mut().flatten() {
        ephemeral_container(c);
    }
    for v in spec.volumes.iter_mut().flatten() {
        volume(v);
    }
}

/// The image pull policy Kubernetes defaults for an image: `Always` for `:latest` or no tag
/// (and no digest), else `IfNotPresent`.
pub fn pull_policy(image: &str) -> &'static str {
    if image.is_empty() {
        return "IfNotPresent";
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = last.split_once(':').map(|(_, t)| t);
    let path = match name.split_once('/') {
        // The first component is a registry host when it has a '.' or ':' or is localhost.
        Some((host, rest)) if host.contains(['.', ':']) || host == "localhost" => rest,
        _ => name,
    };
    if path.bytes().any(|c| c.is_ascii_uppercase()) {
        // Not a valid reference: Kubernetes' parser fails and reads no tag.
        return "IfNotPresent";
    }
    match tag {
        Some("latest") => "Always",
        Some(_) => "IfNotPresent",
        None if digest => "IfNotPresent",
        None => "Always",
    }
}

fn container_common(
    image: Option<&str>,
    pull: &mut Option<String>,
    path: &mut Option<String>,
    policy: &mut Option<String>,
    resources: &mut Option<ResourceRequirements>,
) {
    if pull.as_deref().is_none_or(str::is_empty) {
        *pull = Some(pull_policy(image.unwrap_or("")).to_string());
    }
    set_str(path, "/dev/termination-log");
    set_str(policy, "File");
    set(resources, ResourceRequirements::default());
}

fn container(c: &mut Container) {
    container_common(
        c.image.as_deref(),
        &mut c.image_pull_policy,
        &mut c.termination_message_path,
        &mut c.termination_message_policy,
        &mut c.resources,
    );
    ports(c.ports.as_mut());
    env(c.env.as_mut());
    probes(
        [
            c.liveness_probe.as_mut(),
            c.readiness_probe.as_mut(),
            c.startup_probe.as_mut(),
        ],
        c.lifecycle.as_mut(),
    );
}

fn ephemeral_container(c: &mut EphemeralContainer) {
    container_common(
        c.image.as_deref(),
        &mut c.image_pull_policy,
        &mut c.termination_message_path,
        &mut c.termination_message_policy,
        &mut c.resources,
    );
    ports(c.ports.as_mut());
    env(c.env.as_mut());
    probes(
        [
            c.liveness_probe.as_mut(),
            c.readiness_probe.as_mut(),
            c.startup_probe.as_mut(),
        ],
        c.lifecycle.as_mut(),
    );
}

fn ports(ports: Option<&mut Vec<ContainerPort>>) {
    for p in ports.into_iter().flatten() {
        set_str(&mut p.protocol, "TCP");
    }
}

fn env(env: Option<&mut Vec<EnvVar>>) {
    for e in env.into_iter().flatten() {
        if let Some(f) = e.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
            set_str(&mut f.api_version, "v1");
        }
    }
}

fn http_get(h: &mut HTTPGetAction) {
    set_str(&mut h.path, "/");
    set_str(&mut h.scheme, "HTTP");
}

fn probes(probes: [Option<&mut Probe>; 3], lifecycle: Option<&mut Lifecycle>) {
    for p in probes.into_iter().flatten() {
        for (slot, v) in [
            (&mut p.timeout_seconds, 1),
            (&mut p.period_seconds, 10),
            (&mut p.success_threshold, 1),
            (&mut p.failure_threshold, 3),
        ] {
            if slot.unwrap_or(0) == 0 {
                *slot = Some(v);
            }
        }
        if let Some(h) = p.http_get.as_mut() {
            http_get(h);
        }
    }
    if let Some(l) = lifecycle {
        let handlers: [Option<&mut LifecycleHandler>; 2] =
            [l.post_start.as_mut(), l.pre_stop.as_mut()];
        for h in handlers.into_iter().flatten() {
            if let Some(g) = h.http_get.as_mut() {
                http_get(g);
            }
        }
    }
}

fn volume(v: &mut Volume) {
    let empty = serde_json::to_value(&*v)
        .ok()
        .and_then(|j| j.as_object().map(|o| o.keys().all(|k| k == "name")))
        .unwrap_or(false);
    if empty {
        v.empty_dir = Some(EmptyDirVolumeSource::default());
    }
    if let Some(s) = v.secret.as_mut() {
        set(&mut s.default_mode, 0o644);
    }
    if let Some(s) = v.config_map.as_mut() {
        set(&mut s.default_mode, 0o644);
    }
    if let Some(s) = v.downward_api.as_mut() {
        set(&mut s.default_mode, 0o644);
        for item in s.items.iter_mut().flatten() {
            if let Some(f) = item.field_ref.as_mut() {
                set_str(&mut f.api_version, "v1");
            }
        }
    }
    if let Some(s) = v.projected.as_mut() {
        set(&mut s.default_mode, 0o644);
    }
    if let Some(s) = v.host_path.as_mut() {
        set(&mut s.type_, String::new());
    }
}

/// apps/v1 `SetDefaults_Deployment` (template: pod spec defaults).
pub fn deployment(d: &mut Deployment) {
    let spec = d.spec.get_or_insert_with(Default::default);
    set(&mut spec.replicas, 1);
    let strategy = spec
        .strategy
        .get_or_insert_with(DeploymentStrategy::default);
    set_str(&mut strategy.type_, "RollingUpdate");
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        let ru = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDeployment::default);
        set(&mut ru.max_unavailable, IntOrString::String("25%".into()));
        set(&mut ru.max_surge, IntOrString::String("25%".into()));
    }
    set(&mut spec.revision_history_limit, 10);
    set(&mut spec.progress_deadline_seconds, 600);
    pod_spec(spec.template.spec.get_or_insert_with(PodSpec::default));
}

/// apps/v1 `SetDefaults_ReplicaSet` (template: pod spec defaults).
pub fn replica_set(r: &mut ReplicaSet) {
    let spec = r.spec.get_or_insert_with(Default::default);
    set(&mut spec.replicas, 1);
    let template = spec.template.get_or_insert_with(Default::default);
    pod_spec(template.spec.get_or_insert_with(PodSpec::default));
}

fn externally_accessible(spec: &ServiceSpec) -> bool {
    match spec.type_.as_deref() {
        Some("LoadBalancer") | Some("NodePort") => true,
        Some("ClusterIP") => spec.external_ips.as_ref().is_some_and(|e| !e.is_empty()),
        _ => false,
    }
}

/// `SetDefaults_Service` plus the create strategy's IP family and cluster IP normalization.
pub fn service(s: &mut Service) {
    let spec = s.spec.get_or_insert_with(ServiceSpec::default);
    set_str(&mut spec.session_affinity, "None");
    if spec.session_affinity.as_deref() == Some("None") {
        spec.session_affinity_config = None;
    }
    set_str(&mut spec.type_, "ClusterIP");
    for p in spec.ports.iter_mut().flatten() {
        set_str(&mut p.protocol, "TCP");
        let unset = match &p.target_port {
            None => true,
            Some(IntOrString::Int(0)) => true,
            Some(IntOrString::String(s)) => s.is_empty(),
            _ => false,
        };
        if unset {
            p.target_port = Some(IntOrString::Int(p.port));
        }
    }
    if externally_accessible(spec) {
        set_str(&mut spec.external_traffic_policy, "Cluster");
    }
    let ty = spec.type_.clone().unwrap_or_default();
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        set_str(&mut spec.internal_traffic_policy, "Cluster");
    }
    if ty == "LoadBalancer" {
        set(&mut spec.allocate_load_balancer_node_ports, true);
    }
    // clusterIP and clusterIPs[0] mirror each other.
    let ip = spec.cluster_ip.clone().unwrap_or_default();
    let ips = spec.cluster_ips.clone().unwrap_or_default();
    if !ip.is_empty() && ips.is_empty() {
        spec.cluster_ips = Some(vec![ip]);
    } else if ip.is_empty() && !ips.is_empty() {
        spec.cluster_ip = ips.first().cloned();
    }
    if ty != "ExternalName" {
        set_str(&mut spec.ip_family_policy, "SingleStack");
        if spec.ip_families.as_ref().is_none_or(Vec::is_empty) {
            let v6 = spec
                .cluster_ip
                .as_deref()
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
            spec.ip_families = Some(vec![if v6 { "IPv6" } else { "IPv4" }.to_string()]);
        }
    }
    let status = s.status.get_or_insert_with(ServiceStatus::default);
    set(&mut status.load_balancer, LoadBalancerStatus::default());
}

/// Secret: type Opaque; `stringData` merged into `data` (its values win) and dropped.
pub fn secret(s: &mut Secret) {
    set_str(&mut s.type_, "Opaque");
    if let Some(sd) = s.string_data.take() {
        let data = s.data.get_or_insert_with(BTreeMap::new);
        for (k, v) in sd {
            data.insert(k, ByteString(v.into_bytes()));
        }
    }
}

/// Namespace: the `kubernetes.io/metadata.name` label, the `kubernetes` finalizer, phase Active.
pub fn namespace(n: &mut Namespace) {
    if let Some(name) = n.metadata.name.clone().filter(|s| !s.is_empty()) {
        n.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert("kubernetes.io/metadata.name".into(), name);
    }
    let spec = n.spec.get_or_insert_with(NamespaceSpec::default);
    set(&mut spec.finalizers, vec!["kubernetes".to_string()]);
    let status = n.status.get_or_insert_with(NamespaceStatus::default);
    set_str(&mut status.phase, "Active");
}

/// Node: `SetDefaults_NodeStatus` (allocatable defaults to capacity).
pub fn node(n: &mut Node) {
    if let Some(status) = n.status.as_mut() {
        if status.allocatable.is_none() {
            status.allocatable = status.capacity.clone();
        }
    }
}

/// Endpoints: ports' protocol TCP.
pub fn endpoints(e: &mut Endpoints) {
    for ss in e.subsets.iter_mut().flatten() {
        for p in ss.ports.iter_mut().flatten() {
            set_str(&mut p.protocol, "TCP");
        }
    }
}

fn role_ref(r: &mut RoleRef) {
    if r.api_group.is_empty() {
        r.api_group = RBAC_GROUP.into();
    }
}

fn subjects(subjects: Option<&mut Vec<Subject>>) {
    for s in subjects.into_iter().flatten() {
        if s.api_group.as_deref().is_none_or(str::is_empty)
            && matches!(s.kind.as_str(), "User" | "Group")
        {
            s.api_group = Some(RBAC_GROUP.into());
        }
    }
}

/// RBAC: roleRef.apiGroup and User/Group subjects' apiGroup default to the RBAC group.
pub fn role_binding(b: &mut RoleBinding) {
    role_ref(&mut b.role_ref);
    subjects(b.subjects.as_mut());
}

pub fn cluster_role_binding(b: &mut ClusterRoleBinding) {
    role_ref(&mut b.role_ref);
    subjects(b.subjects.as_mut());
}

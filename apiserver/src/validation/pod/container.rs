//! Containers (`validateContainers` and what it calls): the common fields, probes, ports,
//! resources.

use super::*;

/// The parts of `Container` and `EphemeralContainer` that validation reads.
pub(super) struct ContainerView<'a> {
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
pub(super) fn validate_container(
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

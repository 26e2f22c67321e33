//! Pod validation: `ValidatePodSpec` here, what it calls for containers and for volumes and
//! tolerations in `container` and `volumes`; the QoS class in `qos`; pod update rules in
//! `update`.

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

mod container;
mod qos;
mod update;
mod volumes;

use container::{validate_container, ContainerView};
pub use qos::pod_qos_class;
pub use update::{normalized, validate_pod_update};
use volumes::validate_tolerations;
use volumes::validate_volumes;

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

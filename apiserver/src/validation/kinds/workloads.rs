//! apps/v1 (Deployment, ReplicaSet), autoscaling/v1 (Scale), coordination/v1 (Lease).

use super::*;

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

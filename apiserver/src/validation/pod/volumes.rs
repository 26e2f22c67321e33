//! Volumes and tolerations.

use super::*;

/// `ValidateVolumes`: returns the names of the valid volumes.
pub(super) fn validate_volumes(
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

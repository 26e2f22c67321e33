//! Pod update rules: what an update may change.

use super::*;

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

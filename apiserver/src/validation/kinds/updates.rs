//! Update rules: what an update may not change.

use super::*;

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

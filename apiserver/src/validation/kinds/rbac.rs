//! rbac.authorization.k8s.io/v1.

use super::*;

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

//! authorization.k8s.io/v1: SelfSubjectAccessReview, SubjectAccessReview,
//! LocalSubjectAccessReview and SelfSubjectRulesReview — "may this user do that?" asked of the
//! apiserver's own authorizer (what `kubectl auth can-i` sends). Nothing is stored: a review is
//! created, answered in its status, and forgotten, as in Kubernetes.

use std::collections::BTreeMap;

use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};

use super::{json_response, read_json, Api, AuthorizationMode, CachePolicy};
use crate::auth::{self, Attributes, Decision, UserInfo};
use crate::request::RequestInfo;
use crate::status::{ApiError, ApiResult};

/// The group and the kinds it serves: (plural, kind, namespaced).
pub const GROUP: &str = "authorization.k8s.io";
pub const RESOURCES: &[(&str, &str, bool)] = &[
    (
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
        true,
    ),
    ("selfsubjectaccessreviews", "SelfSubjectAccessReview", false),
    ("selfsubjectrulesreviews", "SelfSubjectRulesReview", false),
    ("subjectaccessreviews", "SubjectAccessReview", false),
];

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// 422 Invalid with one field cause, as Kubernetes reports a bad review.
fn invalid(kind: &str, field: &str, value: &str, detail: &str) -> ApiError {
    let message = format!("Invalid value: \"{value}\": {detail}");
    let mut e = ApiError::new(
        422,
        "Invalid",
        format!("{kind}.{GROUP} \"\" is invalid: {field}: {message}"),
    );
    e.details = Some(json!({
        "group": GROUP,
        "kind": kind,
        "causes": [{ "reason": "FieldValueInvalid", "message": message, "field": field }],
    }));
    e
}

/// The user a SubjectAccessReview asks about: exactly what its spec says (no implied groups).
fn spec_user(spec: &Value) -> UserInfo {
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let extra: BTreeMap<String, Vec<String>> = spec
        .get("extra")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), strings(Some(v))))
                .collect()
        })
        .unwrap_or_default();
    UserInfo {
        name: s(spec, "user").to_string(),
        uid: s(spec, "uid").to_string(),
        groups: strings(spec.get("groups")),
        extra,
    }
}

/// Decides one review's attributes for `user`.
fn decide(api: &Api, user: &UserInfo, spec: &Value) -> Decision {
    if api.authz == AuthorizationMode::AlwaysAllow {
        return Decision::Allow;
    }
    let policy = CachePolicy(api);
    if let Some(ra) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
        let attrs = Attributes {
            user,
            verb: s(ra, "verb"),
            resource_request: true,
            api_group: s(ra, "group"),
            resource: s(ra, "resource"),
            subresource: s(ra, "subresource"),
            namespace: s(ra, "namespace"),
            name: s(ra, "name"),
            path: "",
        };
        return auth::authorize(&attrs, &policy);
    }
    let nra = spec
        .get("nonResourceAttributes")
        .cloned()
        .unwrap_or(Value::Null);
    let attrs = Attributes {
        user,
        verb: s(&nra, "verb"),
        resource_request: false,
        api_group: "",
        resource: "",
        subresource: "",
        namespace: "",
        name: "",
        path: s(&nra, "path"),
    };
    auth::authorize(&attrs, &policy)
}

fn status_of(decision: Decision) -> Value {
    match decision {
        Decision::Allow => json!({ "allowed": true }),
        Decision::Deny { reason } if reason.is_empty() => json!({ "allowed": false }),
        Decision::Deny { reason } => json!({ "allowed": false, "reason": reason }),
    }
}

/// The answer: the review as sent, with its status.
fn answer(mut body: Value, kind: &str, status: Value) -> Response {
    body["apiVersion"] = json!(format!("{GROUP}/v1"));
    body["kind"] = json!(kind);
    if !body.get("metadata").is_some_and(Value::is_object) {
        body["metadata"] = json!({});
    }
    body["metadata"]["creationTimestamp"] = Value::Null;
    body["status"] = status;
    json_response(StatusCode::CREATED, &body)
}

/// Creates (answers) a review.
pub fn create(
    api: &Api,
    info: &RequestInfo,
    user: &UserInfo,
    body: &[u8],
    ct: &str,
) -> ApiResult<Response> {
    let Some(&(_, kind, namespaced)) = RESOURCES.iter().find(|r| r.0 == info.resource) else {
        return Err(ApiError::path_not_found());
    };
    if info.version != "v1" || namespaced == info.namespace.is_empty() || !info.name.is_empty() {
        return Err(ApiError::path_not_found());
    }
    if info.verb != "create" {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} {})",
            info.verb, info.path
        )));
    }
    let body = read_json(body, ct)?;
    let body_kind = s(&body, "kind");
    let body_version = s(&body, "apiVersion");
    if (!body_kind.is_empty() && body_kind != kind)
        || (!body_version.is_empty() && body_version != format!("{GROUP}/v1"))
    {
        return Err(ApiError::bad_request(format!(
            "the body's kind {body_version}/{body_kind} does not match the resource {GROUP}/v1, Kind={kind}"
        )));
    }
    let spec = body.get("spec").cloned().unwrap_or(json!({}));
    if kind == "SelfSubjectRulesReview" {
        let namespace = s(&spec, "namespace");
        let (rules, incomplete) = auth::rules_for(user, namespace, &CachePolicy(api));
        let (non_resource, resource): (Vec<Value>, Vec<Value>) = rules.into_iter().partition(|r| {
            r.get("nonResourceURLs")
                .is_some_and(|u| u.as_array().is_some_and(|a| !a.is_empty()))
        });
        let resource_rules: Vec<Value> = resource
            .into_iter()
            .map(|r| {
                let mut out = json!({ "verbs": r.get("verbs").cloned().unwrap_or(json!([])) });
                for k in ["apiGroups", "resources", "resourceNames"] {
                    if let Some(v) = r
                        .get(k)
                        .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
                    {
                        out[k] = v.clone();
                    }
                }
                out
            })
            .collect();
        let non_resource_rules: Vec<Value> = non_resource
            .into_iter()
            .map(|r| json!({ "verbs": r.get("verbs").cloned().unwrap_or(json!([])), "nonResourceURLs": r["nonResourceURLs"].clone() }))
            .collect();
        let status = json!({
            "resourceRules": resource_rules,
            "nonResourceRules": non_resource_rules,
            "incomplete": incomplete,
        });
        return Ok(answer(body, kind, status));
    }
    let has_res = spec.get("resourceAttributes").is_some_and(Value::is_object);
    let has_non_res = spec
        .get("nonResourceAttributes")
        .is_some_and(Value::is_object);
    if has_res == has_non_res {
        return Err(invalid(
            kind,
            "spec.resourceAttributes",
            "null",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    let decision = match kind {
        "SelfSubjectAccessReview" => decide(api, user, &spec),
        _ => {
            let subject = spec_user(&spec);
            if subject.name.is_empty() && subject.groups.is_empty() {
                return Err(invalid(
                    kind,
                    "spec.user",
                    "",
                    "at least one of user or group must be specified",
                ));
            }
            if kind == "LocalSubjectAccessReview" {
                let ns = spec
                    .pointer("/resourceAttributes/namespace")
                    .and_then(Value::as_str);
                if has_non_res || ns != Some(info.namespace.as_str()) {
                    return Err(invalid(
                        kind,
                        "spec.resourceAttributes.namespace",
                        ns.unwrap_or(""),
                        "must match metadata.namespace",
                    ));
                }
            }
            decide(api, &subject, &spec)
        }
    };
    Ok(answer(body, kind, status_of(decision)))
}

/// The APIResourceList entries of the group, for discovery.
pub fn discovery_entries() -> Vec<Value> {
    RESOURCES
        .iter()
        .map(|(plural, kind, namespaced)| {
            json!({ "name": plural, "singularName": plural.trim_end_matches('s'), "namespaced": namespaced, "kind": kind, "verbs": ["create"] })
        })
        .collect()
}

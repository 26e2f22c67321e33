//! Non-resource paths: discovery (/api, /apis, /api/v1, /apis/<group>[/<version>]), /version,
//! health checks and /metrics.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderValue, StatusCode};
use serde_json::{json, Value};

use super::{json_response, Api};
use crate::registry::{Resource, GROUPS, RESOURCES};
use crate::request::RequestInfo;
use crate::status::ApiError;

fn text(code: StatusCode, body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Every resource serves every verb.
fn verbs(_res: &Resource) -> Vec<&'static str> {
    vec![
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ]
}

/// An APIResourceList for one group/version: each resource and its subresources.
fn resource_list(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": verbs(r),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        resources.push(entry);
        for sub in r.subresources {
            let (kind, verbs, extra): (&str, Vec<&str>, Option<(&str, &str)>) = match *sub {
                "status" => (r.kind, vec!["get", "patch", "update"], None),
                "binding" => ("Binding", vec!["create"], None),
                "scale" => (
                    "Scale",
                    vec!["get", "patch", "update"],
                    Some(("autoscaling", "v1")),
                ),
                "finalize" => (r.kind, vec!["update"], None),
                _ => continue,
            };
            let mut e = json!({
                "name": format!("{}/{}", r.plural, sub),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if let Some((g, v)) = extra {
                e["group"] = json!(g);
                e["version"] = json!(v);
            }
            resources.push(e);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources })
}

fn api_group(group: &str) -> Value {
    let gv = format!("{group}/v1");
    json!({
        "name": group,
        "versions": [{ "groupVersion": gv, "version": "v1" }],
        "preferredVersion": { "groupVersion": gv, "version": "v1" },
    })
}

/// Answers a non-resource request.
pub async fn non_resource(api: &Api, info: &RequestInfo, method: &http::Method) -> Response {
    let path = info.path.trim_end_matches('/');
    if method != http::Method::GET && method != http::Method::HEAD {
        return ApiError::method_not_allowed("only GET is served on this path").into();
    }
    let ok = StatusCode::OK;
    match path {
        "/api" => json_response(
            ok,
            &json!({ "kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": "" }] }),
        ),
        "/api/v1" => json_response(ok, &resource_list("", "v1")),
        "/apis" => json_response(
            ok,
            &json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": GROUPS.iter().map(|g| api_group(g)).collect::<Vec<_>>() }),
        ),
        "/version" => json_response(ok, &api.version),
        "/healthz" | "/livez" => text(ok, "ok".into()),
        "/readyz" => readyz(api).await,
        "/metrics" => text(ok, api.metrics.render()),
        _ => {
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            match parts.as_slice() {
                ["apis", g] if GROUPS.contains(g) => {
                    let mut v = api_group(g);
                    v["kind"] = json!("APIGroup");
                    v["apiVersion"] = json!("v1");
                    json_response(ok, &v)
                }
                ["apis", g, "v1"] if GROUPS.contains(g) => {
                    json_response(ok, &resource_list(g, "v1"))
                }
                ["readyz", check] | ["livez", check] | ["healthz", check] => {
                    if *check == "etcd" {
                        readyz(api).await
                    } else {
                        text(ok, "ok".into())
                    }
                }
                _ => ApiError::path_not_found().into(),
            }
        }
    }
}

impl From<ApiError> for Response {
    fn from(e: ApiError) -> Response {
        axum::response::IntoResponse::into_response(e)
    }
}

/// Ready when the store answers and every watch cache has its first list.
async fn readyz(api: &Api) -> Response {
    let store = tokio::time::timeout(Duration::from_secs(2), api.store.current_revision()).await;
    let mut report = String::new();
    let mut healthy = true;
    match store {
        Ok(Ok(_)) => report.push_str("[+]etcd ok\n"),
        Ok(Err(e)) => {
            healthy = false;
            report.push_str(&format!("[-]etcd failed: {e}\n"));
        }
        Err(_) => {
            healthy = false;
            report.push_str("[-]etcd failed: no answer within 2s\n");
        }
    }
    let not_ready: Vec<&str> = api
        .caches
        .values()
        .filter(|c| !c.ready())
        .map(|c| c.resource.plural)
        .collect();
    if api.bootstrapped.load(std::sync::atomic::Ordering::Acquire) {
        report.push_str("[+]poststarthook/rbac/bootstrap-roles ok\n");
    } else {
        healthy = false;
        report.push_str("[-]poststarthook/rbac/bootstrap-roles failed: not finished\n");
    }
    if not_ready.is_empty() {
        report.push_str("[+]watch-cache ok\n");
    } else {
        healthy = false;
        report.push_str(&format!(
            "[-]watch-cache failed: not ready: {}\n",
            not_ready.join(",")
        ));
    }
    if healthy {
        report.push_str("readyz check passed\n");
        text(StatusCode::OK, report)
    } else {
        report.push_str("readyz check failed\n");
        text(StatusCode::INTERNAL_SERVER_ERROR, report)
    }
}

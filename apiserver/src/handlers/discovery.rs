//! Non-resource paths: discovery (/api, /apis, /api/v1, /apis/<group>[/<version>]), /version,
//! health checks and /metrics.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderValue, StatusCode};
use serde_json::{json, Value};

use super::{access, json_response, Api};
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

/// The verbs of a resource's main endpoint.
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

/// A subresource's kind, verbs and (when not the parent's) group/version.
type Subresource = (
    &'static str,
    Vec<&'static str>,
    Option<(&'static str, &'static str)>,
);

fn subresource(res: &Resource, sub: &str) -> Option<Subresource> {
    Some(match sub {
        "status" => (res.kind, vec!["get", "patch", "update"], None),
        "binding" => ("Binding", vec!["create"], None),
        "scale" => (
            "Scale",
            vec!["get", "patch", "update"],
            Some(("autoscaling", "v1")),
        ),
        "finalize" => (res.kind, vec!["update"], None),
        _ => return None,
    })
}

/// Every group under /apis, in discovery order: the resource table's, then the virtual
/// authorization.k8s.io (access reviews).
fn groups() -> impl Iterator<Item = &'static str> {
    GROUPS.iter().copied().chain(std::iter::once(access::GROUP))
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
            let Some((kind, verbs, extra)) = subresource(r, sub) else {
                continue;
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
    if group == access::GROUP {
        resources = access::discovery_entries();
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

/// The media type of aggregated discovery (one document for every group/version), which
/// clients ask for first and which is answered only when asked for.
const AGGREGATED_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// Which aggregated discovery version the Accept header asks for, if any (the first listed).
fn wants_aggregated(accept: &str) -> Option<&'static str> {
    for part in accept.split(',') {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        let has = |p: &str| params.iter().any(|x| x.eq_ignore_ascii_case(p));
        if params.first() == Some(&"application/json")
            && has("g=apidiscovery.k8s.io")
            && has("as=APIGroupDiscoveryList")
        {
            if has("v=v2") {
                return Some("v2");
            }
            if has("v=v2beta1") {
                return Some("v2beta1");
            }
        }
        if params
            .first()
            .is_some_and(|t| *t == "application/json" || *t == "*/*" || *t == "application/*")
            && params.len() == 1
        {
            return None;
        }
    }
    None
}

/// One group's entry in an APIGroupDiscoveryList.
fn aggregated_group(group: &str) -> Value {
    let resources: Vec<Value> = if group == access::GROUP {
        access::RESOURCES
            .iter()
            .map(|(plural, kind, namespaced)| {
                json!({
                    "resource": plural,
                    "responseKind": { "group": group, "version": "v1", "kind": kind },
                    "scope": if *namespaced { "Namespaced" } else { "Cluster" },
                    "singularResource": plural.trim_end_matches('s'),
                    "verbs": ["create"],
                })
            })
            .collect()
    } else {
        RESOURCES
            .iter()
            .filter(|r| r.group == group && r.version == "v1")
            .map(|r| {
                let mut e = json!({
                    "resource": r.plural,
                    "responseKind": { "group": r.group, "version": r.version, "kind": r.kind },
                    "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                    "singularResource": r.singular,
                    "verbs": verbs(r),
                });
                if !r.short_names.is_empty() {
                    e["shortNames"] = json!(r.short_names);
                }
                if !r.categories.is_empty() {
                    e["categories"] = json!(r.categories);
                }
                let subs: Vec<Value> = r
                    .subresources
                    .iter()
                    .filter_map(|sub| {
                        let (kind, verbs, extra) = subresource(r, sub)?;
                        let (g, v) = extra.unwrap_or((r.group, r.version));
                        Some(json!({
                            "subresource": sub,
                            "responseKind": { "group": g, "version": v, "kind": kind },
                            "verbs": verbs,
                        }))
                    })
                    .collect();
                if !subs.is_empty() {
                    e["subresources"] = json!(subs);
                }
                e
            })
            .collect()
    };
    let mut metadata = json!({ "creationTimestamp": null });
    if !group.is_empty() {
        metadata["name"] = json!(group);
    }
    json!({
        "metadata": metadata,
        "versions": [{ "version": "v1", "resources": resources, "freshness": "Current" }],
    })
}

fn aggregated(version: &str, groups: Vec<Value>) -> Response {
    let body = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": groups,
    });
    let mut resp = json_response(StatusCode::OK, &body);
    let ct = if version == "v2" {
        AGGREGATED_V2
    } else {
        AGGREGATED_V2BETA1
    };
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    resp.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    resp
}

/// Answers a non-resource request.
pub async fn non_resource(
    api: &Api,
    info: &RequestInfo,
    method: &http::Method,
    accept: &str,
) -> Response {
    let path = info.path.trim_end_matches('/');
    if method != http::Method::GET && method != http::Method::HEAD {
        return ApiError::method_not_allowed("only GET is served on this path").into();
    }
    let ok = StatusCode::OK;
    let wanted = wants_aggregated(accept);
    match path {
        "/api" => match wanted {
            Some(v) => aggregated(v, vec![aggregated_group("")]),
            None => json_response(
                ok,
                &json!({ "kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": "" }] }),
            ),
        },
        "/api/v1" => json_response(ok, &resource_list("", "v1")),
        "/apis" => match wanted {
            Some(v) => aggregated(v, groups().map(aggregated_group).collect()),
            None => json_response(
                ok,
                &json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups().map(api_group).collect::<Vec<_>>() }),
            ),
        },
        "/version" => json_response(ok, &api.version),
        "/healthz" | "/livez" => text(ok, "ok".into()),
        "/readyz" => readyz(api).await,
        "/metrics" => text(ok, api.metrics.render()),
        _ => {
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            match parts.as_slice() {
                ["apis", g] if groups().any(|x| x == *g) => {
                    let mut v = api_group(g);
                    v["kind"] = json!("APIGroup");
                    v["apiVersion"] = json!("v1");
                    json_response(ok, &v)
                }
                ["apis", g, "v1"] if groups().any(|x| x == *g) => {
                    json_response(ok, &resource_list(g, "v1"))
                }
                ["openapi", ..] => super::openapi::serve(&parts[1..], accept),
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

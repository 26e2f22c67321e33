//! HTTP handling: one entry point parses the request (RequestInfo), authenticates,
//! authorizes, dispatches to the verb's handler and records metrics and a log line.

mod access;
mod discovery;
mod field_validation;
mod impersonate;
mod list;
mod negotiate;
mod objects;
mod openapi;
mod patch;
mod watch;

pub use objects::now;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderValue, Request, StatusCode};
use serde_json::Value;

use crate::auth::{self, Attributes, Authenticator, Decision, PolicySource, UserInfo};
use crate::cache::Cache;
use crate::metrics::Metrics;
use crate::registry::{self, Resource};
use crate::request::{self, RequestInfo};
use crate::status::{ApiError, ApiResult};
use crate::storage::Store;

/// How requests are authorized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthorizationMode {
    /// Kubernetes RBAC (Roles, ClusterRoles and their bindings), plus the node rule.
    #[value(name = "RBAC")]
    Rbac,
    /// Every authenticated request is allowed.
    #[value(name = "AlwaysAllow")]
    AlwaysAllow,
}

/// Everything a handler needs.
pub struct Api {
    pub store: Store,
    pub caches: HashMap<&'static str, Arc<Cache>>,
    pub metrics: Metrics,
    pub authn: Authenticator,
    pub authz: AuthorizationMode,
    /// How often a watcher that asked for bookmarks gets one.
    pub bookmark_interval: Duration,
    /// How long a watcher lingers after an event to gather more into one write.
    pub coalesce: Duration,
    /// The version /version reports.
    pub version: Value,
    /// Set once the bootstrap namespaces and RBAC policy exist and the caches have them.
    pub bootstrapped: Arc<std::sync::atomic::AtomicBool>,
}

impl Api {
    pub fn cache(&self, res: &Resource) -> &Arc<Cache> {
        // Every row of the resource table has a cache (built from the same table at startup).
        &self.caches[res.plural]
    }
}

/// A JSON response from a value.
pub fn json_response(code: StatusCode, v: &Value) -> Response {
    bytes_response(code, Bytes::from(serde_json::to_vec(v).unwrap_or_default()))
}

/// A JSON response from already-encoded bytes.
pub fn bytes_response(code: StatusCode, body: Bytes) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The query string as a map (last value wins).
pub fn query_map(uri: &http::Uri) -> HashMap<String, String> {
    uri.query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// Largest request body accepted, as kube-apiserver (3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Reads a request body, at most [`MAX_BODY`] bytes (413 beyond).
pub async fn read_body(body: Body) -> ApiResult<Bytes> {
    axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::too_large())
}

/// Decodes a JSON body.
pub fn read_json(bytes: &[u8], content_type: &str) -> ApiResult<Value> {
    let ct = content_type.split(';').next().unwrap_or("").trim();
    if ct == crate::protobuf::MEDIA_TYPE {
        return crate::protobuf::decode(bytes).map_err(|e| {
            ApiError::bad_request(format!(
                "the object provided is unrecognized or malformed: {e}"
            ))
        });
    }
    if ct == "application/yaml" {
        return serde_yaml::from_slice::<Value>(bytes).map_err(|e| {
            ApiError::bad_request(format!(
                "the object provided is unrecognized or malformed: {e}"
            ))
        });
    }
    if !(ct.is_empty() || ct == "application/json" || ct == "*/*" || ct.ends_with("+json")) {
        return Err(ApiError::unsupported_media_type(ct));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized or malformed: {e}"
        ))
    })
}

/// Decodes a body that may be empty (DELETE options).
pub fn read_optional_json(bytes: &[u8], content_type: &str) -> ApiResult<Option<Value>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if content_type.split(';').next().unwrap_or("").trim() == crate::protobuf::MEDIA_TYPE {
        return crate::protobuf::decode(bytes)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("malformed DeleteOptions: {e}")));
    }
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("malformed DeleteOptions: {e}")))
}

/// The policy the authorizer reads: the RBAC objects and pods, from the watch caches.
struct CachePolicy<'a>(&'a Api);

impl CachePolicy<'_> {
    fn objects(&self, plural: &str, prefix: &str) -> Vec<Arc<Value>> {
        self.0
            .caches
            .get(plural)
            .map(|c| {
                c.under(prefix)
                    .into_iter()
                    .map(|o| o.value.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn one(&self, plural: &str, key: &str) -> Option<Arc<Value>> {
        self.0
            .caches
            .get(plural)
            .and_then(|c| c.get(key))
            .map(|o| o.value.clone())
    }
}

impl PolicySource for CachePolicy<'_> {
    fn cluster_role_bindings(&self) -> Vec<Arc<Value>> {
        self.objects("clusterrolebindings", "/registry/clusterrolebindings/")
    }

    fn role_bindings(&self, namespace: &str) -> Vec<Arc<Value>> {
        self.objects(
            "rolebindings",
            &format!("/registry/rolebindings/{namespace}/"),
        )
    }

    fn cluster_role(&self, name: &str) -> Option<Arc<Value>> {
        self.one("clusterroles", &format!("/registry/clusterroles/{name}"))
    }

    fn role(&self, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.one("roles", &format!("/registry/roles/{namespace}/{name}"))
    }

    fn pod_node_name(&self, namespace: &str, name: &str) -> Option<String> {
        let pod = self.one("pods", &format!("/registry/pods/{namespace}/{name}"))?;
        pod.pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }
}

fn bearer_token(req: &Request<Body>) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Authenticates: a valid bearer token, or 401.
fn authenticate(api: &Api, req: &Request<Body>) -> ApiResult<UserInfo> {
    let Some(token) = bearer_token(req) else {
        return Err(ApiError::unauthorized());
    };
    api.authn.authenticate(token).map_err(|e| {
        tracing::debug!(error = %e, "token rejected");
        ApiError::unauthorized()
    })
}

/// The name a create is about, for the node rule only: Kubernetes' NodeRestriction lets a
/// node create just its own Node and Lease. (For everyone else a create has no name, so
/// RBAC resourceNames rules never match creates, as in Kubernetes.)
fn create_name(user: &UserInfo, info: &RequestInfo, body: &[u8], ct: &str) -> Option<String> {
    if info.verb != "create"
        || !info.name.is_empty()
        || !user.groups.iter().any(|g| g == "system:nodes")
    {
        return None;
    }
    let v = read_json(body, ct).ok()?;
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn authorize(
    api: &Api,
    user: &UserInfo,
    info: &RequestInfo,
    body: &[u8],
    ct: &str,
) -> ApiResult<()> {
    if api.authz == AuthorizationMode::AlwaysAllow {
        return Ok(());
    }
    let name = create_name(user, info, body, ct);
    let attrs = Attributes {
        user,
        verb: &info.verb,
        resource_request: info.is_resource,
        api_group: &info.group,
        resource: &info.resource,
        subresource: &info.subresource,
        namespace: &info.namespace,
        name: name.as_deref().unwrap_or(&info.name),
        path: &info.path,
    };
    match auth::authorize(&attrs, &CachePolicy(api)) {
        Decision::Allow => Ok(()),
        Decision::Deny { reason } => Err(ApiError::forbidden(auth::forbidden_message(
            &attrs, &reason,
        ))),
    }
}

/// The single entry point.
pub async fn handle(State(api): State<Arc<Api>>, req: Request<Body>) -> Response {
    let start = Instant::now();
    let query = query_map(req.uri());
    let path = req.uri().path().to_string();
    let info = request::parse(req.method(), &path, &query);
    let user = match authenticate(&api, &req)
        .and_then(|u| impersonate::effective_user(&api, u, req.headers()))
    {
        Ok(u) => u,
        Err(e) => return finish(&api, &info, None, start, e.into_response()),
    };
    let ct = content_type(&req);
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let is_get = req.method() == http::Method::GET || req.method() == http::Method::HEAD;
    let (parts, body) = req.into_parts();
    let body = if is_get {
        Bytes::new()
    } else {
        match read_body(body).await {
            Ok(b) => b,
            Err(e) => return finish(&api, &info, Some(&user), start, e.into_response()),
        }
    };
    if let Err(e) = authorize(&api, &user, &info, &body, &ct) {
        return finish(&api, &info, Some(&user), start, e.into_response());
    }
    let resp = if info.is_resource {
        let headers = RequestHeaders {
            content_type: &ct,
            accept: &accept,
            user_agent: &user_agent,
        };
        match resource_request(&api, &info, &query, &user, &headers, &body).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        }
    } else {
        discovery::non_resource(&api, &info, &parts.method, &accept).await
    };
    finish(&api, &info, Some(&user), start, resp)
}

fn finish(
    api: &Api,
    info: &RequestInfo,
    user: Option<&UserInfo>,
    start: Instant,
    resp: Response,
) -> Response {
    let code = resp.status().as_u16();
    let elapsed = start.elapsed();
    let resource = if info.subresource.is_empty() {
        info.resource.clone()
    } else {
        format!("{}/{}", info.resource, info.subresource)
    };
    let verb = info.verb.to_uppercase();
    api.metrics.request(&verb, &resource, code, elapsed);
    let user = user.map(|u| u.name.as_str()).unwrap_or("");
    if code >= 500 {
        tracing::warn!(target: "strata_apiserver::http", verb = %info.verb, path = %info.path, code, user, latency_ms = elapsed.as_millis() as u64, "request");
    } else {
        tracing::debug!(target: "strata_apiserver::http", verb = %info.verb, path = %info.path, code, user, latency_ms = elapsed.as_millis() as u64, "request");
    }
    resp
}

fn content_type(req: &Request<Body>) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The request headers the resource handlers read.
struct RequestHeaders<'a> {
    content_type: &'a str,
    accept: &'a str,
    user_agent: &'a str,
}

async fn resource_request(
    api: &Api,
    info: &RequestInfo,
    query: &HashMap<String, String>,
    user: &UserInfo,
    headers: &RequestHeaders<'_>,
    body: &[u8],
) -> ApiResult<Response> {
    let (ct, accept, user_agent) = (headers.content_type, headers.accept, headers.user_agent);
    if info.group == access::GROUP {
        return access::create(api, info, user, body, ct);
    }
    if !registry::serves_version(&info.group, &info.version) {
        return Err(ApiError::path_not_found());
    }
    let Some(res) = registry::lookup(&info.group, &info.version, &info.resource) else {
        return Err(ApiError::path_not_found());
    };
    // Namespaced resources addressed by name need a namespace; cluster-scoped ones have none.
    let namespace = if res.plural == "namespaces" {
        ""
    } else {
        info.namespace.as_str()
    };
    let by_name = !matches!(
        info.verb.as_str(),
        "list" | "watch" | "create" | "deletecollection"
    );
    if (res.namespaced && by_name && namespace.is_empty())
        || (!res.namespaced && !namespace.is_empty())
        || (res.namespaced && info.verb == "create" && namespace.is_empty())
    {
        return Err(ApiError::path_not_found());
    }
    if !info.subresource.is_empty() && !res.has_subresource(&info.subresource) {
        return Err(ApiError::path_not_found());
    }
    let name = info.name.as_str();
    let sub = info.subresource.as_str();
    let ctx = objects::Ctx {
        api,
        res,
        namespace,
        query,
        user,
        user_agent,
    };
    // Reads may be answered as a Table or as metadata only.
    let target = match (info.verb.as_str(), sub) {
        ("get" | "list" | "watch", "" | "status") => negotiate::target(accept, query)?,
        _ => negotiate::Target::Object,
    };
    // Unknown and duplicate fields in a JSON body (fieldValidation).
    let mut warnings = Vec::new();
    if matches!(
        (info.verb.as_str(), sub),
        ("create", "") | ("update", "" | "status")
    ) && !ct.starts_with(crate::protobuf::MEDIA_TYPE)
    {
        let directive = field_validation::FieldValidation::parse(
            query.get("fieldValidation").map(String::as_str),
        )
        .map_err(ApiError::bad_request)?;
        // Duplicates are found in JSON text; YAML's decoder refuses them itself.
        let raw = (!ct.starts_with("application/yaml")).then_some(body);
        if let Ok(value) = read_json(body, ct) {
            let node = crate::schema::get().root(res);
            warnings = field_validation::check(directive, node, &value, raw).map_err(|e| {
                ApiError::bad_request(format!(
                    "{} in version \"{}\" cannot be handled as a {}: {e}",
                    res.kind, res.version, res.kind
                ))
            })?;
        }
    }
    let resp = match (info.verb.as_str(), sub) {
        ("get", "" | "status") => objects::get(&ctx, name).await,
        ("get", "scale") => objects::get_scale(&ctx, name).await,
        ("list", "") => list::list(&ctx).await,
        ("watch", "") => watch::watch(&ctx, name).await,
        ("create", "") => objects::create(&ctx, read_json(body, ct)?).await,
        ("create", "binding") => objects::bind(&ctx, name, read_json(body, ct)?).await,
        ("update", "") => objects::update(&ctx, name, read_json(body, ct)?).await,
        ("update", "status") => objects::update_status(&ctx, name, read_json(body, ct)?).await,
        ("update", "finalize") => objects::finalize(&ctx, name, read_json(body, ct)?).await,
        ("update", "scale") => objects::update_scale(&ctx, name, read_json(body, ct)?).await,
        ("patch", "" | "status" | "scale") => patch::patch(&ctx, name, sub, ct, body).await,
        ("delete", "") => objects::delete(&ctx, name, read_optional_json(body, ct)?).await,
        ("deletecollection", "") => {
            objects::delete_collection(&ctx, read_optional_json(body, ct)?).await
        }
        (verb, _) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({verb} {})",
            info.path
        ))),
    }?;
    let mut resp = resp;
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(&format!("299 - {}", go_quote(&w))) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    match info.verb.as_str() {
        "watch" => Ok(negotiate::convert_watch(res, target, resp)),
        "get" | "list" => negotiate::convert(res, target, resp).await,
        _ => Ok(resp),
    }
}

/// A string quoted as Go's %q writes it (Warning header texts are quoted this way).
fn go_quote(s: &str) -> String {
    crate::validation::common::q(s)
}

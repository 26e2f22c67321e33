//! /openapi/v3 (an index and one OpenAPI 3.0 document per group/version) and /openapi/v2 (one
//! Swagger 2.0 document), built from the resource table and the schema type graph, as
//! kube-apiserver publishes them. kubectl reads them to validate (`fieldValidation` declared on
//! every PATCH tells it the server validates), to compute `apply` patches
//! (`x-kubernetes-patch-*`), and to `explain` (descriptions, found by
//! `x-kubernetes-group-version-kind`).
//!
//! Documents are built once, on first use, and served as shared bytes; the v3 index links each
//! document with a content hash, so clients cache it until the server's API changes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha512};

use super::access;
use crate::registry::{Resource, RESOURCES};
use crate::schema::{self, Schema, REF_PREFIX};
use crate::status::ApiError;

/// The version documents report (the Kubernetes API level Strata serves).
const API_VERSION: &str = "v1.33.0";

fn r(name: &str) -> Value {
    json!({ "$ref": format!("{REF_PREFIX}{name}") })
}

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";

/// A query parameter as kube-apiserver declares it.
fn query(name: &str, ty: &str, description: &str) -> Value {
    json!({ "name": name, "in": "query", "description": description, "schema": { "type": ty, "uniqueItems": true } })
}

fn p_dry_run() -> Value {
    query("dryRun", "string", "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed")
}

fn p_field_manager() -> Value {
    query("fieldManager", "string", "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.")
}

fn p_field_validation() -> Value {
    query("fieldValidation", "string", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.")
}

fn list_params() -> Vec<Value> {
    vec![
        query("allowWatchBookmarks", "boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored."),
        query("continue", "string", "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize."),
        query("fieldSelector", "string", "A selector to restrict the list of returned objects by their fields. Defaults to everything."),
        query("labelSelector", "string", "A selector to restrict the list of returned objects by their labels. Defaults to everything."),
        query("limit", "integer", "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results."),
        query("resourceVersion", "string", "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details. Defaults to unset"),
        query("resourceVersionMatch", "string", "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details. Defaults to unset"),
        query("sendInitialEvents", "boolean", "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection. Once all such events have been sent, a synthetic \"Bookmark\" event will be sent."),
        query("timeoutSeconds", "integer", "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity."),
        query("watch", "boolean", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion."),
    ]
}

fn delete_params() -> Vec<Value> {
    vec![
        p_dry_run(),
        query("gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately."),
        query("propagationPolicy", "string", "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground."),
    ]
}

const JSON_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

fn content(types: &[&str], schema: &Value) -> Value {
    Value::Object(
        types
            .iter()
            .map(|t| ((*t).to_string(), json!({ "schema": schema })))
            .collect(),
    )
}

fn responses(codes: &[u16], schema: &Value) -> Value {
    let mut m = Map::new();
    for c in codes {
        let desc = match c {
            200 => "OK",
            201 => "Created",
            202 => "Accepted",
            _ => "",
        };
        m.insert(
            c.to_string(),
            json!({ "description": desc, "content": content(JSON_TYPES, schema) }),
        );
    }
    m.insert("401".into(), json!({ "description": "Unauthorized" }));
    Value::Object(m)
}

/// "rbac.authorization.k8s.io" -> "RbacAuthorization" (kube's operation id style), "" -> "Core".
fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    let base = group.strip_suffix(".k8s.io").unwrap_or(group);
    base.split('.')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The tag of a group/version: "core_v1", "rbacAuthorization_v1".
fn tag(group: &str, version: &str) -> String {
    let g = group_camel(group);
    let mut c = g.chars();
    let lower = c
        .next()
        .map(|f| f.to_lowercase().collect::<String>() + c.as_str())
        .unwrap_or_default();
    format!("{lower}_{version}")
}

struct Op<'a> {
    verb: &'static str,
    action: &'static str,
    id: String,
    description: String,
    params: Vec<Value>,
    body: Option<(Vec<&'a str>, Value)>,
    codes: &'static [u16],
    response: Value,
    gvk: (&'a str, &'a str, &'a str),
}

fn operation(op: Op<'_>, group: &str, version: &str) -> (String, Value) {
    let mut o = json!({
        "tags": [tag(group, version)],
        "description": op.description,
        "operationId": op.id,
        "parameters": op.params,
        "responses": responses(op.codes, &op.response),
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": { "group": op.gvk.0, "version": op.gvk.1, "kind": op.gvk.2 },
    });
    if let Some((types, schema)) = op.body {
        o["requestBody"] = json!({ "content": content(&types, &schema), "required": true });
    }
    (op.verb.to_string(), o)
}

fn path_params(namespaced: bool, named: bool) -> Vec<Value> {
    let mut v = Vec::new();
    if named {
        v.push(json!({ "name": "name", "in": "path", "description": "name of the object", "required": true, "schema": { "type": "string", "uniqueItems": true } }));
    }
    if namespaced {
        v.push(json!({ "name": "namespace", "in": "path", "description": "object name and auth scope, such as for teams and projects", "required": true, "schema": { "type": "string", "uniqueItems": true } }));
    }
    v.push(query("pretty", "string", "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget)."));
    v
}

fn base(res: &Resource) -> String {
    if res.group.is_empty() {
        format!("/api/{}", res.version)
    } else {
        format!("/apis/{}/{}", res.group, res.version)
    }
}

/// Names and schemas shared by one resource's operations.
#[derive(Clone)]
struct Ids<'a> {
    res: &'a Resource,
    /// "CoreV1Namespaced" style prefix of operation ids (after the verb).
    prefix: String,
    gvk: (&'a str, &'a str, &'a str),
}

impl Ids<'_> {
    fn op(
        &self,
        (verb, action, id_verb): (&'static str, &'static str, &str),
        suffix: &str,
        description: String,
        params: Vec<Value>,
        body: Option<(Vec<&'static str>, Value)>,
        (codes, response): (&'static [u16], Value),
    ) -> (String, Value) {
        operation(
            Op {
                verb,
                action,
                id: format!("{id_verb}{}{}{suffix}", self.prefix, self.res.kind),
                description,
                params,
                body,
                codes,
                response,
                gvk: self.gvk,
            },
            self.res.group,
            self.res.version,
        )
    }

    /// read, replace and patch of the object or of one of its subresources (`what` names it
    /// in descriptions, `suffix` in operation ids), answered with `schema`.
    fn read_replace_patch(&self, suffix: &str, what: &str, schema: &Value) -> Vec<(String, Value)> {
        let kind = self.res.kind;
        vec![
            self.op(
                ("get", "get", "read"),
                suffix,
                format!("read {what}the specified {kind}"),
                vec![],
                None,
                (&[200], schema.clone()),
            ),
            self.op(
                ("put", "put", "replace"),
                suffix,
                format!("replace {what}the specified {kind}"),
                write_params(),
                Some((vec!["*/*"], schema.clone())),
                (&[200, 201], schema.clone()),
            ),
            self.op(
                ("patch", "patch", "patch"),
                suffix,
                format!("partially update {what}the specified {kind}"),
                patch_params(),
                Some((PATCH_TYPES.to_vec(), r(&format!("{META}.Patch")))),
                (&[200, 201], schema.clone()),
            ),
        ]
    }
}

fn write_params() -> Vec<Value> {
    vec![p_dry_run(), p_field_manager(), p_field_validation()]
}

fn patch_params() -> Vec<Value> {
    let mut p = write_params();
    p.push(query("force", "boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests."));
    p
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn path_item(params: Vec<Value>, ops: Vec<(String, Value)>) -> Value {
    let mut item = Map::new();
    item.insert("parameters".into(), json!(params));
    item.extend(ops);
    Value::Object(item)
}

/// Every path of one resource (collection, object, subresources) into `paths`.
fn resource_paths(res: &Resource, paths: &mut BTreeMap<String, Value>) {
    let root = Schema::root_name(res);
    let obj = r(&root);
    let list = r(&Schema::list_name(res));
    let status = r(&format!("{META}.Status"));
    let delete_options = r(&format!("{META}.DeleteOptions"));
    let scope = if res.namespaced { "Namespaced" } else { "" };
    let kind = res.kind;
    let ids = Ids {
        res,
        prefix: format!(
            "{}{}{scope}",
            group_camel(res.group),
            capitalized(res.version)
        ),
        gvk: (res.group, res.version, res.kind),
    };
    let base = base(res);
    let collection = if res.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", res.plural)
    } else {
        format!("{base}/{}", res.plural)
    };

    // The collection: list, create, deletecollection.
    let ops = vec![
        ids.op(
            ("get", "list", "list"),
            "",
            format!("list or watch objects of kind {kind}"),
            list_params(),
            None,
            (&[200], list.clone()),
        ),
        ids.op(
            ("post", "post", "create"),
            "",
            format!("create a {kind}"),
            write_params(),
            Some((vec!["*/*"], obj.clone())),
            (&[200, 201, 202], obj.clone()),
        ),
        operation(
            Op {
                verb: "delete",
                action: "deletecollection",
                id: format!(
                    "delete{}{}Collection{scope}{kind}",
                    group_camel(res.group),
                    capitalized(res.version)
                ),
                description: format!("delete collection of {kind}"),
                params: [delete_params(), list_params()].concat(),
                body: Some((vec!["*/*"], delete_options.clone())),
                codes: &[200],
                response: status.clone(),
                gvk: ids.gvk,
            },
            res.group,
            res.version,
        ),
    ];
    paths.insert(
        collection.clone(),
        path_item(path_params(res.namespaced, false), ops),
    );

    // Namespaced kinds are also listed across namespaces.
    if res.namespaced {
        let all = operation(
            Op {
                verb: "get",
                action: "list",
                id: format!(
                    "list{}{}{kind}ForAllNamespaces",
                    group_camel(res.group),
                    capitalized(res.version)
                ),
                description: format!("list or watch objects of kind {kind}"),
                params: list_params(),
                body: None,
                codes: &[200],
                response: list,
                gvk: ids.gvk,
            },
            res.group,
            res.version,
        );
        paths.insert(
            format!("{base}/{}", res.plural),
            path_item(path_params(false, false), vec![all]),
        );
    }

    // The object: read, replace, patch, delete.
    let mut ops = ids.read_replace_patch("", "", &obj);
    ops.push(ids.op(
        ("delete", "delete", "delete"),
        "",
        format!("delete a {kind}"),
        delete_params(),
        Some((vec!["*/*"], delete_options)),
        (&[200, 202], status),
    ));
    let object_path = format!("{collection}/{{name}}");
    paths.insert(
        object_path.clone(),
        path_item(path_params(res.namespaced, true), ops),
    );

    for sub in res.subresources {
        let suffix = capitalized(sub);
        let (schema, sub_ids) = match *sub {
            "scale" => (
                r("io.k8s.api.autoscaling.v1.Scale"),
                Ids {
                    gvk: ("autoscaling", "v1", "Scale"),
                    ..ids.clone()
                },
            ),
            "binding" => (
                r("io.k8s.api.core.v1.Binding"),
                Ids {
                    gvk: ("", "v1", "Binding"),
                    ..ids.clone()
                },
            ),
            _ => (obj.clone(), ids.clone()),
        };
        let ops = match *sub {
            "binding" => vec![sub_ids.op(
                ("post", "post", "create"),
                &suffix,
                format!("create binding of a {kind}"),
                write_params(),
                Some((vec!["*/*"], schema.clone())),
                (&[200, 201, 202], schema),
            )],
            "finalize" => vec![sub_ids.op(
                ("put", "put", "replace"),
                &suffix,
                format!("replace finalize of the specified {kind}"),
                write_params(),
                Some((vec!["*/*"], schema.clone())),
                (&[200, 201], schema),
            )],
            _ => sub_ids.read_replace_patch(&suffix, &format!("{sub} of "), &schema),
        };
        paths.insert(
            format!("{object_path}/{sub}"),
            path_item(path_params(res.namespaced, true), ops),
        );
    }
}

/// The access reviews: create only.
fn access_paths(paths: &mut BTreeMap<String, Value>) {
    for (plural, kind, namespaced) in access::RESOURCES {
        let prefix = format!("/apis/{}/v1", access::GROUP);
        let path = if *namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{plural}")
        } else {
            format!("{prefix}/{plural}")
        };
        let s = r(&format!("io.k8s.api.authorization.v1.{kind}"));
        let ns = if *namespaced { "Namespaced" } else { "" };
        let mut item = Map::new();
        item.insert("parameters".into(), json!(path_params(*namespaced, false)));
        let (verb, o) = operation(
            Op {
                verb: "post",
                action: "post",
                id: format!("createAuthorizationV1{ns}{kind}"),
                description: format!("create a {kind}"),
                params: write_params(),
                body: Some((vec!["*/*"], s.clone())),
                codes: &[200, 201, 202],
                response: s,
                gvk: (access::GROUP, "v1", kind),
            },
            access::GROUP,
            "v1",
        );
        item.insert(verb, o);
        paths.insert(path, Value::Object(item));
    }
}

/// The names of every definition `roots` refer to, transitively.
fn reachable(
    defs: &Map<String, Value>,
    roots: impl IntoIterator<Item = String>,
) -> BTreeSet<String> {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if k == "$ref" {
                        if let Some(name) = v.as_str().and_then(|s| s.strip_prefix(REF_PREFIX)) {
                            out.push(name.to_string());
                        }
                    } else {
                        refs(v, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = roots.into_iter().collect();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(def) = defs.get(&name) {
            refs(def, &mut todo);
        }
    }
    seen
}

/// The Patch body type kube-apiserver declares for PATCH requests.
fn patch_definition() -> Value {
    json!({ "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.", "type": "object" })
}

fn definitions_for(paths: &BTreeMap<String, Value>) -> Map<String, Value> {
    let defs = schema::get().definitions();
    let mut roots = Vec::new();
    let doc = Value::Object(paths.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    let mut stack = vec![&doc];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if k == "$ref" {
                        if let Some(n) = v.as_str().and_then(|s| s.strip_prefix(REF_PREFIX)) {
                            roots.push(n.to_string());
                        }
                    } else {
                        stack.push(v);
                    }
                }
            }
            Value::Array(a) => stack.extend(a.iter()),
            _ => {}
        }
    }
    let mut out = Map::new();
    for name in reachable(defs, roots) {
        if let Some(d) = defs.get(&name) {
            out.insert(name, d.clone());
        } else if name == format!("{META}.Patch") {
            out.insert(name, patch_definition());
        }
    }
    out
}

/// One group/version's OpenAPI v3 document.
fn v3_document(group: &str, version: &str) -> Value {
    let mut paths = BTreeMap::new();
    if group == access::GROUP {
        access_paths(&mut paths);
    } else {
        for res in RESOURCES
            .iter()
            .filter(|r| r.group == group && r.version == version)
        {
            resource_paths(res, &mut paths);
        }
    }
    let schemas = definitions_for(&paths);
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": API_VERSION },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "BearerToken": { "type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header" } },
        },
    })
}

/// Rewrites a v3 document fragment for Swagger 2.0: `#/definitions/` references, request
/// bodies as `in: body` parameters, parameter schemas flattened.
fn to_v2(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                match k.as_str() {
                    "$ref" => {
                        let s = v
                            .as_str()
                            .unwrap_or("")
                            .replace(REF_PREFIX, "#/definitions/");
                        out.insert(k.clone(), json!(s));
                    }
                    "requestBody" => {}
                    "content" => {
                        if let Some(schema) = v
                            .as_object()
                            .and_then(|c| c.values().next())
                            .and_then(|c| c.get("schema"))
                        {
                            out.insert("schema".into(), to_v2(schema));
                        }
                    }
                    "parameters" => {
                        let mut params: Vec<Value> = v
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .map(|p| {
                                        let mut p = to_v2(p);
                                        if let Some(s) =
                                            p.as_object_mut().and_then(|o| o.remove("schema"))
                                        {
                                            if let Some(o) = p.as_object_mut() {
                                                for (sk, sv) in
                                                    s.as_object().cloned().unwrap_or_default()
                                                {
                                                    o.insert(sk, sv);
                                                }
                                            }
                                        }
                                        p
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        if let Some(body) = m.get("requestBody") {
                            let schema = body
                                .get("content")
                                .and_then(Value::as_object)
                                .and_then(|c| c.values().next())
                                .and_then(|c| c.get("schema"))
                                .map(to_v2)
                                .unwrap_or(json!({}));
                            params.push(json!({ "name": "body", "in": "body", "required": true, "schema": schema }));
                        }
                        out.insert(k.clone(), json!(params));
                    }
                    _ => {
                        out.insert(k.clone(), to_v2(v));
                    }
                }
            }
            // An operation whose body had no parameters list yet.
            if m.contains_key("requestBody") && !m.contains_key("parameters") {
                let schema = m["requestBody"]
                    .get("content")
                    .and_then(Value::as_object)
                    .and_then(|c| c.values().next())
                    .and_then(|c| c.get("schema"))
                    .map(to_v2)
                    .unwrap_or(json!({}));
                out.insert(
                    "parameters".into(),
                    json!([{ "name": "body", "in": "body", "required": true, "schema": schema }]),
                );
            }
            if m.contains_key("x-kubernetes-action") {
                let consumes: Vec<&str> =
                    if m.get("x-kubernetes-action").and_then(Value::as_str) == Some("patch") {
                        PATCH_TYPES.to_vec()
                    } else {
                        vec!["*/*"]
                    };
                out.insert("consumes".into(), json!(consumes));
                out.insert("produces".into(), json!(JSON_TYPES));
                out.insert("schemes".into(), json!(["https"]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(to_v2).collect()),
        other => other.clone(),
    }
}

fn v2_document() -> Value {
    let mut paths = BTreeMap::new();
    for res in RESOURCES {
        resource_paths(res, &mut paths);
    }
    access_paths(&mut paths);
    let defs = definitions_for(&paths);
    json!({
        "swagger": "2.0",
        "info": { "title": "Kubernetes", "version": API_VERSION },
        "paths": to_v2(&json!(paths)),
        "definitions": to_v2(&Value::Object(defs)),
        "securityDefinitions": { "BearerToken": { "type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header" } },
        "security": [{ "BearerToken": [] }],
    })
}

/// A built document: its bytes and content hash.
struct Doc {
    bytes: Bytes,
    hash: String,
}

impl Doc {
    fn new(v: &Value) -> Doc {
        let bytes = Bytes::from(serde_json::to_vec(v).unwrap_or_default());
        let hash = Sha512::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        Doc { bytes, hash }
    }
}

/// The group/versions with a v3 document, by URL path ("api/v1", "apis/apps/v1").
static V3: LazyLock<BTreeMap<String, Doc>> = LazyLock::new(|| {
    let mut gvs: BTreeSet<(&str, &str)> = RESOURCES.iter().map(|r| (r.group, r.version)).collect();
    gvs.insert((access::GROUP, "v1"));
    gvs.into_iter()
        .map(|(g, v)| {
            let path = if g.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{g}/{v}")
            };
            (path, Doc::new(&v3_document(g, v)))
        })
        .collect()
});

static V2: LazyLock<Doc> = LazyLock::new(|| Doc::new(&v2_document()));

fn json_bytes(body: Bytes, content_type: &'static str, etag: Option<&str>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(tag) = etag.and_then(|t| HeaderValue::from_str(&format!("\"{t}\"")).ok()) {
        h.insert(header::ETAG, tag);
    }
    resp
}

/// Serves /openapi/<rest>.
pub fn serve(path: &[&str], accept: &str) -> Response {
    match path {
        ["v3"] => {
            let paths: Map<String, Value> = V3
                .iter()
                .map(|(p, d)| {
                    (
                        p.clone(),
                        json!({ "serverRelativeURL": format!("/openapi/v3/{p}?hash={}", d.hash) }),
                    )
                })
                .collect();
            super::json_response(StatusCode::OK, &json!({ "paths": paths }))
        }
        ["v3", rest @ ..] => match V3.get(&rest.join("/")) {
            Some(doc) => {
                let mut resp = json_bytes(doc.bytes.clone(), "application/json", Some(&doc.hash));
                // A hashed URL names this exact content: clients may cache it for good.
                resp.headers_mut().insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, immutable"),
                );
                resp
            }
            None => ApiError::path_not_found().into(),
        },
        ["v2"] => {
            // kubectl asks for the protobuf (gnostic) encoding first; it falls back to the v3
            // documents, which it prefers, when this one is not acceptable.
            let wants_json = accept.is_empty()
                || accept.split(',').any(|a| {
                    let t = a.split(';').next().unwrap_or("").trim();
                    t == "application/json" || t == "*/*" || t == "application/*"
                });
            if !wants_json {
                return ApiError::new(
                    406,
                    "NotAcceptable",
                    "only the following media types are accepted: application/json",
                )
                .into();
            }
            json_bytes(V2.bytes.clone(), "application/json", Some(&V2.hash))
        }
        _ => ApiError::path_not_found().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(path: &str) -> Value {
        serde_json::from_slice(&V3[path].bytes).expect("document JSON")
    }

    #[test]
    fn every_patch_declares_field_validation_and_its_kind() {
        for (path, d) in V3.iter() {
            let v: Value = serde_json::from_slice(&d.bytes).expect("json");
            let mut patches = 0;
            for (p, item) in v["paths"].as_object().expect("paths") {
                if let Some(op) = item.get("patch") {
                    patches += 1;
                    let params = op["parameters"].as_array().expect("params");
                    assert!(
                        params
                            .iter()
                            .any(|x| x["name"] == "fieldValidation" && x["in"] == "query"),
                        "{p}"
                    );
                    assert!(
                        op["x-kubernetes-group-version-kind"]["kind"].is_string(),
                        "{p}"
                    );
                }
            }
            if !path.contains("authorization.k8s.io") {
                assert!(patches > 0, "{path}");
            }
        }
    }

    #[test]
    fn documents_are_self_contained() {
        for (path, d) in V3.iter() {
            let v: Value = serde_json::from_slice(&d.bytes).expect("json");
            let schemas = v["components"]["schemas"].as_object().expect("schemas");
            let text = String::from_utf8_lossy(&d.bytes);
            for piece in text.split("\"$ref\":\"").skip(1) {
                let target = piece.split('"').next().unwrap_or("");
                let name = target.strip_prefix(REF_PREFIX).expect("v3 ref");
                assert!(schemas.contains_key(name), "{path}: dangling {name}");
            }
        }
        let v2 = String::from_utf8_lossy(&V2.bytes).to_string();
        assert!(!v2.contains(REF_PREFIX));
    }

    #[test]
    fn pods_are_explained_and_patched_by_their_schema() {
        let core = doc("api/v1");
        let pod = &core["components"]["schemas"]["io.k8s.api.core.v1.Pod"];
        assert_eq!(pod["x-kubernetes-group-version-kind"][0]["kind"], "Pod");
        let spec = &core["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"];
        assert_eq!(
            spec["properties"]["containers"]["x-kubernetes-patch-merge-key"],
            "name"
        );
        let op = &core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
        assert_eq!(op["operationId"], "patchCoreV1NamespacedPod");
        let apps = doc("apis/apps/v1");
        assert!(
            apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["put"]
                .is_object()
        );
        assert_eq!(
            group_camel("rbac.authorization.k8s.io"),
            "RbacAuthorization"
        );
        assert_eq!(
            tag("rbac.authorization.k8s.io", "v1"),
            "rbacAuthorization_v1"
        );
    }
}

//! Single-object verbs: get, create, update (main, status, finalize) here; delete and
//! deletecollection in `deletion`; pods/binding and scale in `subresources` (patch is in
//! `handlers::patch`). Every write is a Txn guarded by the key's mod_revision.

use std::collections::HashMap;

use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Map, Value};

use super::patch::FieldManager;
use super::{bytes_response, json_response, Api};
use crate::auth::UserInfo;
use crate::cache::{set_resource_version, Obj};
use crate::registry::Resource;
use crate::status::{self, ApiError, ApiResult};
use crate::storage::{StoreError, Written};
use crate::validation::{self, AdmitError};

mod deletion;
mod subresources;

pub use deletion::{delete, delete_collection};
pub use subresources::{bind, get_scale, update_scale};

/// One request's context.
pub struct Ctx<'a> {
    pub api: &'a Api,
    pub res: &'static Resource,
    pub namespace: &'a str,
    pub query: &'a HashMap<String, String>,
    #[allow(dead_code)]
    pub user: &'a UserInfo,
    /// The User-Agent header: the default field manager is derived from it.
    pub user_agent: &'a str,
}

impl Ctx<'_> {
    fn key(&self, name: &str) -> String {
        self.res.key(self.namespace, name)
    }
}

/// Maps a store failure to the Status clients see.
pub fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Unavailable(m) => ApiError::timeout(format!(
            "The store did not answer in time (the apiserver will retry when it is reachable): {m}"
        )),
        StoreError::Compacted => {
            ApiError::expired("The resourceVersion for the provided list is too old.")
        }
        StoreError::FutureRevision => ApiError::timeout("Too large resource version"),
        StoreError::Other(m) => ApiError::internal(m),
    }
}

/// Now, as Kubernetes writes times (RFC 3339, seconds, UTC).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn later(seconds: i64) -> String {
    let t = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(seconds))
        .unwrap_or_else(|_| jiff::Timestamp::now());
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub(super) fn meta_mut(v: &mut Value) -> &mut Map<String, Value> {
    if !v.get("metadata").is_some_and(Value::is_object) {
        v["metadata"] = json!({});
    }
    match v.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable!("metadata was just made an object"),
    }
}

pub(super) fn meta_str<'v>(v: &'v Value, field: &str) -> &'v str {
    v.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn finalizers(v: &Value) -> Vec<String> {
    v.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether anything still holds the object back from deletion.
fn has_finalizers(res: &Resource, v: &Value) -> bool {
    !finalizers(v).is_empty()
        || (res.kind == "Namespace"
            && v.pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty()))
}

/// The stored form: the object without its resourceVersion (the key's mod_revision is).
pub(super) fn encode_for_store(v: &Value) -> ApiResult<Bytes> {
    let mut v = v.clone();
    meta_mut(&mut v).remove("resourceVersion");
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .map_err(|e| ApiError::internal(e.to_string()))
}

pub(super) fn stamped(mut v: Value, rv: i64) -> Value {
    set_resource_version(&mut v, rv);
    v
}

pub(super) fn respond(code: StatusCode, v: &Value) -> Response {
    json_response(code, v)
}

/// `dryRun=All` from the query string or DeleteOptions.
pub(super) fn dry_run(ctx: &Ctx<'_>, options: Option<&Value>) -> ApiResult<bool> {
    let mut values: Vec<String> = Vec::new();
    if let Some(v) = ctx.query.get("dryRun") {
        values.push(v.clone());
    }
    if let Some(arr) = options
        .and_then(|o| o.get("dryRun"))
        .and_then(Value::as_array)
    {
        values.extend(arr.iter().filter_map(|v| v.as_str().map(str::to_string)));
    }
    for v in &values {
        if v != "All" {
            return Err(ApiError::bad_request(format!(
                "Invalid dryRun value: \"{v}\": supported values: \"All\""
            )));
        }
    }
    Ok(!values.is_empty())
}

fn admit(res: &Resource, name: &str, obj: Value) -> ApiResult<Value> {
    match validation::admit(res.kind, obj, res.namespaced) {
        Ok(v) => Ok(v),
        Err(AdmitError::BadRequest(m)) => Err(ApiError::bad_request(m)),
        Err(AdmitError::Invalid(causes)) => Err(ApiError::invalid(res, name, &causes)),
    }
}

/// Checks apiVersion/kind of a body against the endpoint, filling them when absent (as the
/// apiserver's decoder does with the endpoint's default kind).
pub(super) fn check_kind(obj: &mut Value, api_version: &str, kind: &str) -> ApiResult<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => obj["apiVersion"] = json!(api_version),
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )))
        }
    }
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => obj["kind"] = json!(kind),
        Some(k) if k == kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({kind})"
            )))
        }
    }
    Ok(())
}

/// The namespace in the body must agree with the URL; it is filled from the URL when absent.
pub(super) fn check_namespace(ctx: &Ctx<'_>, obj: &mut Value) -> ApiResult<()> {
    let meta = meta_mut(obj);
    if ctx.res.namespaced {
        match meta.get("namespace").and_then(Value::as_str) {
            None | Some("") => {
                meta.insert("namespace".into(), json!(ctx.namespace));
            }
            Some(ns) if ns == ctx.namespace => {}
            Some(_) => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ))
            }
        }
    } else {
        meta.remove("namespace");
    }
    Ok(())
}

/// How long a namespace check waits for the namespaces cache before reading the store.
const NAMESPACE_CACHE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A namespaced object's namespace must exist (and not be terminating, for creates).
async fn require_namespace(ctx: &Ctx<'_>, creating: Option<&str>) -> ApiResult<()> {
    if !ctx.res.namespaced {
        return Ok(());
    }
    let key = format!("/registry/namespaces/{}", ctx.namespace);
    // Read-your-writes: a namespace this apiserver just deleted (made Terminating) must be seen
    // so by the next create, so the cache is first brought up to this process's own writes.
    let cache = match ctx.api.caches.get("namespaces") {
        Some(c)
            if c.wait_for(ctx.api.store.written_revision(), NAMESPACE_CACHE_WAIT)
                .await =>
        {
            Some(c)
        }
        _ => None,
    };
    let ns = match cache.and_then(|c| c.get(&key)) {
        Some(o) => Some(o.value.clone()),
        // The cache may not have caught up with a namespace created a moment ago.
        None => match ctx.api.store.get(&key).await.map_err(store_error)?.0 {
            Some(kv) => Some(
                Obj::decode(&key, &kv.value, kv.mod_revision)
                    .map_err(ApiError::internal)?
                    .value,
            ),
            None => None,
        },
    };
    let Some(ns) = ns else {
        return Err(ApiError::namespace_not_found(ctx.namespace));
    };
    if let Some(name) = creating {
        if ns.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(ApiError::forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {} because it is being terminated",
                ctx.res.qualified(),
                name,
                ctx.namespace
            )));
        }
    }
    Ok(())
}

const GENERATE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn generate_name(base: &str) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    // Kubernetes keeps at most 58 characters of the base (names are ASCII once validated;
    // cut on a character boundary so odd input cannot panic here).
    let mut cut = base.len().min(58);
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    let base = &base[..cut];
    let suffix: String = (0..5)
        .map(|_| GENERATE_ALPHABET[rng.random_range(0..GENERATE_ALPHABET.len())] as char)
        .collect();
    format!("{base}{suffix}")
}

/// Reads one object from the store.
pub(super) async fn read(ctx: &Ctx<'_>, name: &str) -> ApiResult<Option<(Value, i64)>> {
    let key = ctx.key(name);
    let (kv, _) = ctx.api.store.get(&key).await.map_err(store_error)?;
    match kv {
        None => Ok(None),
        Some(kv) => {
            let obj = Obj::decode(&key, &kv.value, kv.mod_revision).map_err(ApiError::internal)?;
            Ok(Some(((*obj.value).clone(), kv.mod_revision)))
        }
    }
}

/// GET of one object: from the store (linearizable) unless resourceVersion=0 allows the cache.
pub async fn get(ctx: &Ctx<'_>, name: &str) -> ApiResult<Response> {
    if ctx.query.get("resourceVersion").map(String::as_str) == Some("0") {
        if let Some(o) = ctx.api.cache(ctx.res).get(&ctx.key(name)) {
            return Ok(bytes_response(StatusCode::OK, o.json.clone()));
        }
    }
    let key = ctx.key(name);
    let (kv, _) = ctx.api.store.get(&key).await.map_err(store_error)?;
    let Some(kv) = kv else {
        return Err(ApiError::not_found(ctx.res, name));
    };
    let obj = Obj::decode(&key, &kv.value, kv.mod_revision).map_err(ApiError::internal)?;
    Ok(bytes_response(StatusCode::OK, obj.json))
}

/// POST: create.
pub async fn create(ctx: &Ctx<'_>, obj: Value) -> ApiResult<Response> {
    let manager = FieldManager::for_write(ctx, "", "CreateOptions")?;
    create_object(ctx, obj, Some(&manager)).await
}

/// Creates an object; `manager` records the create in managedFields (an apply that creates
/// has recorded its own entry already).
pub(super) async fn create_object(
    ctx: &Ctx<'_>,
    mut obj: Value,
    manager: Option<&FieldManager>,
) -> ApiResult<Response> {
    let res = ctx.res;
    check_kind(&mut obj, &res.api_version(), res.kind)?;
    check_namespace(ctx, &mut obj)?;
    let dry = dry_run(ctx, None)?;
    let mut name = meta_str(&obj, "name").to_string();
    if name.is_empty() {
        let base = meta_str(&obj, "generateName").to_string();
        if base.is_empty() {
            return Err(ApiError::invalid(
                res,
                "",
                &[validation::FieldError {
                    field: "metadata.name".into(),
                    reason: "FieldValueRequired",
                    message: "Required value: name or generateName is required".into(),
                }],
            ));
        }
        name = generate_name(&base);
        meta_mut(&mut obj).insert("name".into(), json!(name));
    }
    require_namespace(ctx, Some(&name)).await?;
    {
        let meta = meta_mut(&mut obj);
        for f in [
            "resourceVersion",
            "uid",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            meta.remove(f);
        }
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(now()));
        if res.has_spec {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
    }
    // Status is the system's to write; a new object starts with none (plus defaults). Nodes
    // are the exception, as in Kubernetes: a kubelet registers its node with its status.
    if res.has_status() && res.kind != "Node" {
        if let Some(o) = obj.as_object_mut() {
            o.remove("status");
        }
    }
    let mut obj = admit(res, &name, obj)?;
    if res.kind == "Pod" {
        let qos = validation::pod_qos_class(&obj);
        obj["status"]["qosClass"] = json!(qos);
    }
    if let Some(m) = manager {
        m.record(res, &json!({}), &mut obj);
    }
    if dry {
        // A dry run still tells the truth about names that are taken.
        if ctx
            .api
            .store
            .get(&ctx.key(&name))
            .await
            .map_err(store_error)?
            .0
            .is_some()
        {
            return Err(ApiError::already_exists(res, &name));
        }
        return Ok(respond(StatusCode::CREATED, &obj));
    }
    let bytes = encode_for_store(&obj)?;
    match ctx
        .api
        .store
        .create(&ctx.key(&name), bytes)
        .await
        .map_err(store_error)?
    {
        Written::Ok(rev) => Ok(respond(StatusCode::CREATED, &stamped(obj, rev))),
        Written::Conflict(_) => Err(ApiError::already_exists(res, &name)),
    }
}

/// What an update step decided.
pub(super) enum Step {
    /// Write this object.
    Write(Value),
    /// Nothing to write; answer with the current object.
    Unchanged,
    /// The object is finished (terminating, no finalizers left): delete it.
    Delete(Value),
}

/// Reads, transforms and writes one object, retrying on concurrent writes unless the caller
/// pinned a resourceVersion (then a stale one is a 409 Conflict). Returns the object written
/// (with its new resourceVersion) and whether it was deleted.
pub(super) async fn guaranteed_update<F>(
    ctx: &Ctx<'_>,
    name: &str,
    precondition: Option<i64>,
    dry: bool,
    mut f: F,
) -> ApiResult<(Value, bool)>
where
    F: FnMut(Value) -> ApiResult<Step>,
{
    let res = ctx.res;
    let key = ctx.key(name);
    for _ in 0..16 {
        let Some((current, rev)) = read(ctx, name).await? else {
            return Err(ApiError::not_found(res, name));
        };
        if let Some(want) = precondition {
            if want != rev {
                return Err(ApiError::conflict(res, name, ApiError::MODIFIED));
            }
        }
        let step = f(current.clone())?;
        let (written, deleted) = match step {
            Step::Unchanged => return Ok((current, false)),
            Step::Write(new) => {
                if dry {
                    return Ok((new, false));
                }
                let bytes = encode_for_store(&new)?;
                (
                    ctx.api
                        .store
                        .update(&key, bytes, rev)
                        .await
                        .map_err(store_error)?,
                    (new, false),
                )
            }
            Step::Delete(last) => {
                if dry {
                    return Ok((last, true));
                }
                (
                    ctx.api.store.delete(&key, rev).await.map_err(store_error)?,
                    (last, true),
                )
            }
        };
        match written {
            Written::Ok(new_rev) => return Ok((stamped(deleted.0, new_rev), deleted.1)),
            Written::Conflict(None) => return Err(ApiError::not_found(res, name)),
            Written::Conflict(Some(_)) if precondition.is_some() => {
                return Err(ApiError::conflict(res, name, ApiError::MODIFIED))
            }
            Written::Conflict(Some(_)) => continue,
        }
    }
    Err(ApiError::conflict(res, name, ApiError::MODIFIED))
}

/// A resourceVersion precondition: empty or "0" means none (an unconditional update, as in
/// Kubernetes).
pub(super) fn parse_rv(s: &str) -> ApiResult<Option<i64>> {
    if s.is_empty() || s == "0" {
        return Ok(None);
    }
    s.parse::<i64>().map(Some).map_err(|_| {
        ApiError::bad_request(format!(
            "invalid resourceVersion \"{s}\": must be an integer"
        ))
    })
}

/// Fields of the old object an update may not change through the main endpoint.
pub(super) fn carry_server_fields(res: &Resource, old: &Value, new: &mut Value) {
    let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let meta = meta_mut(new);
    for f in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old_meta.get(f) {
            Some(v) => {
                meta.insert(f.into(), v.clone());
            }
            None => {
                meta.remove(f);
            }
        }
    }
    meta.remove("selfLink");
    // A namespace's finalizers change only through /finalize.
    if res.kind == "Namespace" {
        match old.pointer("/spec/finalizers") {
            Some(f) => {
                if !new.get("spec").is_some_and(Value::is_object) {
                    new["spec"] = json!({});
                }
                new["spec"]["finalizers"] = f.clone();
            }
            None => {
                if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.remove("finalizers");
                }
            }
        }
    }
    // A service's cluster IP is kept when an update leaves it out.
    if res.kind == "Service" {
        for f in ["clusterIP", "clusterIPs"] {
            if let Some(v) = old.pointer(&format!("/spec/{f}")) {
                if new.pointer(&format!("/spec/{f}")).is_none() && new["spec"].is_object() {
                    new["spec"][f] = v.clone();
                }
            }
        }
    }
    if res.has_status() {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
    }
}

/// Whether an update that leaves the object terminating without finalizers deletes it
/// (Kubernetes' ShouldDeleteDuringUpdate: only once the grace period is over).
fn finished_terminating(res: &Resource, old: &Value, new: &Value) -> bool {
    old.pointer("/metadata/deletionTimestamp").is_some()
        && old
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            == 0
        && !has_finalizers(res, new)
}

/// Admits an updated object and bumps its generation when its spec changed.
pub(super) fn admit_update(
    res: &Resource,
    name: &str,
    old: &Value,
    new: Value,
    manager: Option<&FieldManager>,
) -> ApiResult<Step> {
    let mut new = admit(res, name, new)?;
    let errs = validation::validate_update(res.kind, old, &new);
    if !errs.is_empty() {
        return Err(ApiError::invalid(res, name, &errs));
    }
    if res.has_spec && validation::spec_changed(old, &new) {
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta_mut(&mut new).insert("generation".into(), json!(generation + 1));
    }
    if let Some(m) = manager {
        m.record(res, old, &mut new);
    }
    let mut old_cmp = old.clone();
    meta_mut(&mut old_cmp).remove("resourceVersion");
    let mut new_cmp = new.clone();
    meta_mut(&mut new_cmp).remove("resourceVersion");
    if old_cmp == new_cmp {
        return Ok(Step::Unchanged);
    }
    if finished_terminating(res, old, &new) {
        return Ok(Step::Delete(new));
    }
    Ok(Step::Write(new))
}

fn body_precondition(obj: &Value) -> ApiResult<Option<i64>> {
    parse_rv(meta_str(obj, "resourceVersion"))
}

pub(super) fn check_body_name(obj: &Value, name: &str) -> ApiResult<()> {
    let body_name = meta_str(obj, "name");
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    Ok(())
}

pub(super) fn update_answer(res: (Value, bool)) -> Response {
    respond(StatusCode::OK, &res.0)
}

/// PUT on the main endpoint.
pub async fn update(ctx: &Ctx<'_>, name: &str, mut obj: Value) -> ApiResult<Response> {
    let res = ctx.res;
    check_kind(&mut obj, &res.api_version(), res.kind)?;
    check_namespace(ctx, &mut obj)?;
    check_body_name(&obj, name)?;
    meta_mut(&mut obj).insert("name".into(), json!(name));
    let precondition = body_precondition(&obj)?;
    let dry = dry_run(ctx, None)?;
    let manager = FieldManager::for_write(ctx, "", "UpdateOptions")?;
    let out = guaranteed_update(ctx, name, precondition, dry, |old| {
        let mut new = obj.clone();
        carry_server_fields(res, &old, &mut new);
        admit_update(res, name, &old, new, Some(&manager))
    })
    .await?;
    Ok(update_answer(out))
}

/// PUT on /status: only status changes.
pub async fn update_status(ctx: &Ctx<'_>, name: &str, mut obj: Value) -> ApiResult<Response> {
    let res = ctx.res;
    check_kind(&mut obj, &res.api_version(), res.kind)?;
    check_body_name(&obj, name)?;
    let precondition = body_precondition(&obj)?;
    let dry = dry_run(ctx, None)?;
    let status = obj.get("status").cloned();
    let manager = FieldManager::for_write(ctx, "status", "UpdateOptions")?;
    let out = guaranteed_update(ctx, name, precondition, dry, |old| {
        let mut new = old.clone();
        match &status {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        admit_update(res, name, &old, new, Some(&manager))
    })
    .await?;
    Ok(update_answer(out))
}

/// PUT on namespaces/<name>/finalize: only spec.finalizers changes.
pub async fn finalize(ctx: &Ctx<'_>, name: &str, mut obj: Value) -> ApiResult<Response> {
    let res = ctx.res;
    check_kind(&mut obj, &res.api_version(), res.kind)?;
    check_body_name(&obj, name)?;
    let precondition = body_precondition(&obj)?;
    let dry = dry_run(ctx, None)?;
    let fin = obj
        .pointer("/spec/finalizers")
        .cloned()
        .unwrap_or_else(|| json!([]));
    let manager = FieldManager::for_write(ctx, "finalize", "UpdateOptions")?;
    let out = guaranteed_update(ctx, name, precondition, dry, |old| {
        let mut new = old.clone();
        if !new.get("spec").is_some_and(Value::is_object) {
            new["spec"] = json!({});
        }
        new["spec"]["finalizers"] = fin.clone();
        admit_update(res, name, &old, new, Some(&manager))
    })
    .await?;
    Ok(update_answer(out))
}

/// The autoscaling/v1 Scale of a deployment or replica set.
pub(super) fn scale_of(obj: &Value) -> Value {
    let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let selector = obj
        .pointer("/spec/selector")
        .map(selector_string)
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": { "replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0) },
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        },
    })
}

/// A metav1.LabelSelector as the string form Scale.status.selector carries.
fn selector_string(sel: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        let mut kv: Vec<_> = m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        kv.sort();
        parts.extend(kv);
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_selector_string() {
        let sel = json!({"matchLabels": {"b": "2", "a": "1"}, "matchExpressions": [{"key": "t", "operator": "In", "values": ["x", "y"]}]});
        assert_eq!(selector_string(&sel), "a=1,b=2,t in (x,y)");
    }

    #[test]
    fn generated_names_have_five_suffix_characters() {
        let n = generate_name("web-");
        assert_eq!(n.len(), 9);
        assert!(n.starts_with("web-"));
    }
}

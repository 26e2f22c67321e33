//! PATCH (merge, JSON, strategic merge and server-side apply patches) on the main resource
//! and the status and scale subresources, and the field manager every write records in
//! metadata.managedFields.
//!
//! The patch itself is applied by the pure functions of [`crate::patch`] inside the same
//! guaranteed update as a PUT (so a concurrent write makes it re-read and re-apply); the
//! patched object then goes through the same server-field carrying, admission and
//! generation logic. Errors answer with kube-apiserver's statuses: a JSON patch that does not
//! apply is 422 with its generic message, a malformed strategic directive 400, an apply
//! conflict 409 with one FieldManagerConflict cause per field.

use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Map, Value};

use super::field_validation::{self, FieldValidation};
use super::objects::{
    admit_update, carry_server_fields, check_kind, check_namespace, create_object, dry_run,
    guaranteed_update, meta_str, parse_rv, read, respond, scale_of, update_answer, Ctx,
};
use crate::patch::apply::{self, ApplyError};
use crate::patch::json_patch::{self, JsonPatchError};
use crate::patch::managed::{self, Writer};
use crate::patch::merge::merge_patch;
use crate::patch::strategic::{strategic_merge_patch, SmpError};
use crate::patch::{typed, PatchType};
use crate::registry::Resource;
use crate::schema;
use crate::status::{ApiError, ApiResult};
use crate::validation;

/// Longest field manager name kube-apiserver accepts.
const FIELD_MANAGER_MAX: usize = 128;

/// Who a write is recorded for, and what its endpoint tracks.
pub struct FieldManager {
    manager: String,
    api_version: String,
    subresource: &'static str,
    now: String,
    ignored: &'static [&'static str],
    only: &'static [&'static str],
}

/// The field manager kube-apiserver derives from a User-Agent: the text before the first
/// `/`, printable characters only, at most 128 bytes ("kubectl/v1.32.0 (linux/amd64)" is
/// "kubectl").
pub fn manager_from_user_agent(user_agent: &str) -> String {
    let product = user_agent.split('/').next().unwrap_or("");
    let mut out = String::new();
    for c in product.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > FIELD_MANAGER_MAX {
            break;
        }
        out.push(c);
    }
    out
}

impl FieldManager {
    /// The field manager of a write: the `fieldManager` parameter, else derived from the
    /// User-Agent. `options` names the request's options kind in errors ("CreateOptions",
    /// "UpdateOptions", "PatchOptions").
    pub fn for_write(
        ctx: &Ctx<'_>,
        subresource: &'static str,
        options: &str,
    ) -> ApiResult<FieldManager> {
        let given = ctx.query.get("fieldManager").cloned().unwrap_or_default();
        check_field_manager(&given, options)?;
        let manager = if given.is_empty() {
            manager_from_user_agent(ctx.user_agent)
        } else {
            given
        };
        let (ignored, only): (&'static [&'static str], &'static [&'static str]) = match subresource
        {
            "" if ctx.res.has_status() => (&["status"], &[]),
            "status" => (&[], &["status"]),
            "finalize" | "scale" => (&[], &["spec"]),
            _ => (&[], &[]),
        };
        Ok(FieldManager {
            manager,
            api_version: ctx.res.api_version(),
            subresource,
            now: super::now(),
            ignored,
            only,
        })
    }

    fn writer(&self) -> Writer<'_> {
        Writer {
            manager: &self.manager,
            api_version: &self.api_version,
            subresource: self.subresource,
            now: &self.now,
            ignored: self.ignored,
            only: self.only,
        }
    }

    /// Records an Update that turned `old` into `new` (`{}` for a create).
    pub fn record(&self, res: &Resource, old: &Value, new: &mut Value) {
        managed::record_update(old, new, schema::get().root(res), &self.writer());
    }
}

/// A 422 on the request's options, as kube-apiserver words it.
fn options_invalid(kind: &str, field: &str, reason: &'static str, message: String) -> ApiError {
    let mut e = ApiError::new(
        422,
        "Invalid",
        format!("{kind}.meta.k8s.io \"\" is invalid: {field}: {message}"),
    );
    e.details = Some(json!({
        "group": "meta.k8s.io",
        "kind": kind,
        "causes": [{ "reason": reason, "message": message, "field": field }],
    }));
    e
}

fn check_field_manager(manager: &str, kind: &str) -> ApiResult<()> {
    if manager.len() > FIELD_MANAGER_MAX {
        return Err(options_invalid(
            kind,
            "fieldManager",
            "FieldValueTooLong",
            format!("Too long: may not be more than {FIELD_MANAGER_MAX} bytes"),
        ));
    }
    if let Some((i, c)) = manager.char_indices().find(|(_, c)| c.is_control()) {
        return Err(options_invalid(
            kind,
            "fieldManager",
            "FieldValueInvalid",
            format!(
                "Invalid value: {manager:?}: invalid character U+{:04X} (at position {i})",
                c as u32
            ),
        ));
    }
    Ok(())
}

/// A decoded patch body.
enum Body {
    Merge(Value),
    Json(Vec<Map<String, Value>>),
    Strategic(Value),
    Apply(Value),
}

fn decode(pt: PatchType, body: &[u8]) -> ApiResult<Body> {
    let object = |v: Value, what: &str| -> ApiResult<Value> {
        if v.is_object() {
            Ok(v)
        } else {
            Err(ApiError::bad_request(format!(
                "{what} must be a JSON object"
            )))
        }
    };
    match pt {
        PatchType::Merge => serde_json::from_slice(body)
            .map(Body::Merge)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}"))),
        PatchType::Json => json_patch::decode(body)
            .map(Body::Json)
            .map_err(json_patch_error),
        PatchType::Strategic => {
            let v: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            object(v, "a strategic merge patch").map(Body::Strategic)
        }
        PatchType::Apply => {
            let v: Value = serde_yaml::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            object(v, "an apply configuration").map(Body::Apply)
        }
    }
}

/// kube-apiserver's answer to a JSON patch that does not apply: 422 with the generic
/// message (the library's reason is only logged).
fn json_patch_error(e: JsonPatchError) -> ApiError {
    match e {
        JsonPatchError::Decode(m) => ApiError::bad_request(m),
        JsonPatchError::TooManyOperations(_) => {
            ApiError::new(413, "RequestEntityTooLarge", e.to_string())
        }
        JsonPatchError::Apply(m) => {
            tracing::debug!(error = %m, "JSON patch does not apply");
            unprocessable()
        }
    }
}

fn unprocessable() -> ApiError {
    let mut e = ApiError::new(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
    );
    e.details = Some(json!({}));
    e
}

fn smp_error(e: SmpError) -> ApiError {
    match e {
        SmpError::BadRequest(m) => ApiError::bad_request(m),
        SmpError::Invalid(m) => {
            tracing::debug!(error = %m, "strategic merge patch refused");
            unprocessable()
        }
        // A plain error in kube-apiserver: 500 with reason Unknown ("").
        SmpError::Internal(m) => ApiError::new(500, "", m),
    }
}

fn apply_error(e: ApplyError) -> ApiError {
    match e {
        ApplyError::Conflicts(conflicts) => {
            let mut err = ApiError::new(409, "Conflict", ApplyError::conflict_message(&conflicts));
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|(m, p)| {
                    json!({ "type": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": p })
                })
                .collect();
            err.details = Some(json!({ "causes": causes }));
            err
        }
        ApplyError::BadRequest(m) => ApiError::bad_request(m),
        ApplyError::Internal(m) => ApiError::new(500, "", m),
        ApplyError::Schema(m) => ApiError::new(500, "", m),
    }
}

/// The `force` parameter (only for apply).
fn force_param(ctx: &Ctx<'_>, pt: PatchType) -> ApiResult<bool> {
    let Some(v) = ctx.query.get("force") else {
        return Ok(false);
    };
    let force = match v.as_str() {
        "true" | "1" | "True" | "TRUE" | "t" | "T" => true,
        "false" | "0" | "False" | "FALSE" | "f" | "F" | "" => false,
        other => {
            return Err(ApiError::bad_request(format!(
                "strconv.ParseBool: parsing {other:?}: invalid syntax"
            )))
        }
    };
    if pt != PatchType::Apply {
        return Err(options_invalid(
            "PatchOptions",
            "force",
            "FieldValueForbidden",
            "Forbidden: may not be specified for non-apply patch".into(),
        ));
    }
    Ok(force)
}

/// Checks an apply configuration against the endpoint before it is merged.
fn check_apply_config(ctx: &Ctx<'_>, name: &str, cfg: &mut Value, creating: bool) -> ApiResult<()> {
    let res = ctx.res;
    let gv = res.api_version();
    let version = cfg.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if version != gv {
        return Err(ApiError::bad_request(format!(
            "Incorrect version specified in apply patch. Specified patch version: {version}, expected: {gv}"
        )));
    }
    check_kind(cfg, &gv, res.kind)?;
    let cfg_name = meta_str(cfg, "name");
    if (!cfg_name.is_empty() || creating) && cfg_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({cfg_name}) does not match the name on the URL ({name})"
        )));
    }
    // The namespace is filled from the URL when absent, as for the patched object.
    check_namespace(ctx, cfg)
}

/// A patch that set metadata.resourceVersion must name the current one.
fn check_patched_version(
    res: &Resource,
    name: &str,
    old: &Value,
    patched: &Value,
) -> ApiResult<()> {
    let want = meta_str(patched, "resourceVersion");
    if !want.is_empty() && want != meta_str(old, "resourceVersion") {
        return Err(ApiError::conflict(res, name, ApiError::MODIFIED));
    }
    Ok(())
}

/// PATCH on the main resource, /status or /scale.
pub async fn patch(
    ctx: &Ctx<'_>,
    name: &str,
    sub: &str,
    content_type: &str,
    body: &[u8],
) -> ApiResult<Response> {
    let res = ctx.res;
    let Some(pt) = PatchType::from_content_type(content_type) else {
        let ct = content_type.split(';').next().unwrap_or("").trim();
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct})"),
        ));
    };
    let force = force_param(ctx, pt)?;
    let sub: &'static str = match sub {
        "status" => "status",
        "scale" => "scale",
        _ => "",
    };
    if pt == PatchType::Apply && ctx.query.get("fieldManager").is_none_or(|m| m.is_empty()) {
        return Err(options_invalid(
            "PatchOptions",
            "fieldManager",
            "FieldValueRequired",
            "Required value: is required for apply patch".into(),
        ));
    }
    let manager = FieldManager::for_write(ctx, sub, "PatchOptions")?;
    let validation = FieldValidation::parse(ctx.query.get("fieldValidation").map(String::as_str))
        .map_err(ApiError::bad_request)?;
    let raw = body;
    let mut body = decode(pt, body)?;
    let dry = dry_run(ctx, None)?;
    if sub == "scale" {
        return patch_scale(ctx, name, &body, &manager, dry).await;
    }
    let root = schema::get().root(res);
    if let Body::Apply(cfg) = &mut body {
        let exists = read(ctx, name).await?.is_some();
        check_apply_config(ctx, name, cfg, !exists)?;
        if !exists {
            if !sub.is_empty() {
                return Err(ApiError::not_found(res, name));
            }
            let obj = apply::apply(&json!({}), cfg, root, &manager.writer(), force)
                .map_err(apply_error)?;
            return create_object(ctx, obj, None).await;
        }
    }
    // A merge patch that names a resourceVersion is a precondition (no retries).
    let precondition = match &body {
        Body::Merge(p) => parse_rv(
            p.pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or(""),
        )?,
        _ => None,
    };
    let mut warnings: Vec<String> = Vec::new();
    let out = guaranteed_update(ctx, name, precondition, dry, |old| {
        warnings.clear();
        let mut patched = match &body {
            Body::Merge(p) => {
                let mut t = old.clone();
                merge_patch(&mut t, p);
                t
            }
            Body::Json(ops) => json_patch::apply(&old, ops).map_err(json_patch_error)?,
            Body::Strategic(p) => strategic_merge_patch(&old, p, root).map_err(smp_error)?,
            Body::Apply(cfg) => {
                apply::apply(&old, cfg, root, &manager.writer(), force).map_err(apply_error)?
            }
        };
        if !matches!(body, Body::Merge(_)) {
            check_patched_version(res, name, &old, &patched)?;
        }
        if !matches!(body, Body::Apply(_)) {
            warnings = strict_check(validation, root, &patched, raw, pt)?;
        }
        check_kind(&mut patched, &res.api_version(), res.kind)?;
        if meta_str(&patched, "name") != name {
            return Err(ApiError::bad_request("the patch may not change the name"));
        }
        check_namespace(ctx, &mut patched)?;
        let mut new = if sub == "status" {
            let mut n = old.clone();
            n["status"] = patched.get("status").cloned().unwrap_or(Value::Null);
            if let (Body::Apply(_), Some(mf)) =
                (&body, patched.pointer("/metadata/managedFields").cloned())
            {
                n["metadata"]["managedFields"] = mf;
            }
            n
        } else {
            patched
        };
        if sub.is_empty() {
            carry_server_fields(res, &old, &mut new);
        }
        let record = match body {
            Body::Apply(_) => None,
            _ => Some(&manager),
        };
        admit_update(res, name, &old, new, record)
    })
    .await?;
    Ok(with_warnings(update_answer(out), &warnings))
}

/// fieldValidation on a patched object: unknown fields (and duplicate fields in a JSON
/// patch body) are warnings, or with Strict a 422 naming the patched object, as
/// kube-apiserver answers.
fn strict_check(
    validation: FieldValidation,
    root: schema::Node<'_>,
    patched: &Value,
    raw: &[u8],
    pt: PatchType,
) -> ApiResult<Vec<String>> {
    let raw_json = matches!(pt, PatchType::Merge | PatchType::Strategic).then_some(raw);
    field_validation::check(validation, root, patched, raw_json).map_err(|e| {
        let quoted = crate::validation::common::q(&patched.to_string());
        let mut err = ApiError::new(
            422,
            "Invalid",
            format!(" \"\" is invalid: patch: Invalid value: {quoted}: {e}"),
        );
        err.details = Some(json!({
            "causes": [{ "reason": "FieldValueInvalid", "message": format!("Invalid value: {quoted}: {e}"), "field": "patch" }],
        }));
        err
    })
}

/// Adds `Warning: 299 - "<text>"` headers.
fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = format!("299 - {}", crate::validation::common::q(w));
        if let Ok(v) = http::HeaderValue::from_str(&text) {
            resp.headers_mut().append(http::header::WARNING, v);
        }
    }
    resp
}

/// PATCH on <deployments|replicasets>/<name>/scale: the patch applies to the Scale object;
/// its spec.replicas is written to the parent.
async fn patch_scale(
    ctx: &Ctx<'_>,
    name: &str,
    body: &Body,
    manager: &FieldManager,
    dry: bool,
) -> ApiResult<Response> {
    let res = ctx.res;
    let node = schema::get().node("io.k8s.api.autoscaling.v1.Scale");
    let (obj, _) = guaranteed_update(ctx, name, None, dry, |old| {
        let scale = scale_of(&old);
        let patched = match body {
            Body::Merge(p) => {
                let mut t = scale.clone();
                merge_patch(&mut t, p);
                t
            }
            Body::Json(ops) => json_patch::apply(&scale, ops).map_err(json_patch_error)?,
            Body::Strategic(p) => strategic_merge_patch(&scale, p, node).map_err(smp_error)?,
            Body::Apply(cfg) => {
                typed::merge(&scale, cfg, node).map_err(|e| ApiError::new(500, "", e))?
            }
        };
        check_patched_version(res, name, &scale, &patched)?;
        let replicas = scale_replicas(res, name, &patched)?;
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(replicas);
        admit_update(res, name, &old, new, Some(manager))
    })
    .await?;
    Ok(respond(StatusCode::OK, &scale_of(&obj)))
}

fn scale_replicas(res: &Resource, name: &str, scale: &Value) -> ApiResult<i64> {
    let invalid = |reason: &'static str, message: String| {
        ApiError::invalid(
            res,
            name,
            &[validation::FieldError {
                field: "spec.replicas".into(),
                reason,
                message,
            }],
        )
    };
    match scale.pointer("/spec/replicas").and_then(Value::as_i64) {
        None => Err(invalid("FieldValueRequired", "Required value".into())),
        Some(r) if r < 0 => Err(invalid(
            "FieldValueInvalid",
            format!("Invalid value: {r}: must be greater than or equal to 0"),
        )),
        Some(r) => Ok(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_field_manager_is_the_user_agent_product() {
        assert_eq!(
            manager_from_user_agent("kubectl/v1.32.0 (linux/amd64) kubernetes/70d3cc9"),
            "kubectl"
        );
        assert_eq!(
            manager_from_user_agent("Go-http-client/2.0"),
            "Go-http-client"
        );
        assert_eq!(manager_from_user_agent(""), "");
        assert_eq!(manager_from_user_agent(&"x".repeat(300)).len(), 128);
        assert_eq!(manager_from_user_agent("a\u{7}b/1"), "ab");
    }

    #[test]
    fn conflicts_answer_with_one_cause_per_field() {
        let e = apply_error(ApplyError::Conflicts(vec![
            ("\"a\" using apps/v1".into(), ".spec.replicas".into()),
            ("\"b\"".into(), ".metadata.labels.x".into()),
        ]));
        assert_eq!(e.code, 409);
        assert_eq!(e.reason, "Conflict");
        assert_eq!(
            e.message,
            "Apply failed with 2 conflicts: conflicts with \"a\" using apps/v1:\n- .spec.replicas\nconflicts with \"b\":\n- .metadata.labels.x"
        );
        let causes = &e.details.as_ref().expect("details")["causes"];
        assert_eq!(
            causes[0],
            json!({"type": "FieldManagerConflict", "message": "conflict with \"a\" using apps/v1", "field": ".spec.replicas"})
        );
    }
}

//! DELETE of one object (grace periods, finalizers, propagation policy) and deletecollection.

use super::*;

fn delete_options(ctx: &Ctx<'_>, body: Option<&Value>) -> ApiResult<(Option<i64>, String)> {
    let mut grace = body
        .and_then(|b| b.get("gracePeriodSeconds"))
        .and_then(Value::as_i64);
    if let Some(g) = ctx.query.get("gracePeriodSeconds") {
        grace =
            Some(g.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid gracePeriodSeconds \"{g}\""))
            })?);
    }
    let mut policy = body
        .and_then(|b| b.get("propagationPolicy"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(p) = ctx.query.get("propagationPolicy") {
        policy = p.clone();
    }
    if body
        .and_then(|b| b.get("orphanDependents"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        policy = "Orphan".into();
    }
    if !matches!(policy.as_str(), "" | "Orphan" | "Background" | "Foreground") {
        return Err(ApiError::bad_request(format!(
            "propagationPolicy: Unsupported value: \"{policy}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
        )));
    }
    Ok((grace, policy))
}

/// DELETE of one object: graceful for pods on a node, finalizers honoured, preconditions
/// checked. Answers with the object (still present, now terminating) or the deleted object.
pub async fn delete(ctx: &Ctx<'_>, name: &str, options: Option<Value>) -> ApiResult<Response> {
    let dry = dry_run(ctx, options.as_ref())?;
    let (grace, policy) = delete_options(ctx, options.as_ref())?;
    let pre_uid = options
        .as_ref()
        .and_then(|o| o.pointer("/preconditions/uid"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let pre_rv = options
        .as_ref()
        .and_then(|o| o.pointer("/preconditions/resourceVersion"))
        .and_then(Value::as_str)
        .map(parse_rv)
        .transpose()?
        .flatten();
    let (obj, deleted) = delete_one(ctx, name, grace, &policy, pre_uid, pre_rv, dry).await?;
    if deleted && !matches!(ctx.res.kind, "Pod" | "Service" | "Namespace") {
        let mut details =
            json!({ "name": name, "kind": ctx.res.plural, "uid": meta_str(&obj, "uid") });
        if !ctx.res.group.is_empty() {
            details["group"] = json!(ctx.res.group);
        }
        let mut s = status::success(200);
        s["details"] = details;
        return Ok(respond(StatusCode::OK, &s));
    }
    Ok(respond(StatusCode::OK, &obj))
}

#[allow(clippy::too_many_arguments)]
async fn delete_one(
    ctx: &Ctx<'_>,
    name: &str,
    grace: Option<i64>,
    policy: &str,
    pre_uid: Option<String>,
    pre_rv: Option<i64>,
    dry: bool,
) -> ApiResult<(Value, bool)> {
    let res = ctx.res;
    let key = ctx.key(name);
    for _ in 0..16 {
        let Some((current, rev)) = read(ctx, name).await? else {
            return Err(ApiError::not_found(res, name));
        };
        if let Some(uid) = &pre_uid {
            let have = meta_str(&current, "uid");
            if uid != have {
                return Err(ApiError::conflict(
                    res,
                    name,
                    &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"),
                ));
            }
        }
        if let Some(want) = pre_rv {
            if want != rev {
                return Err(ApiError::conflict(
                    res,
                    name,
                    &format!("Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rev}"),
                ));
            }
        }
        let mut obj = current.clone();
        // Pods bound to a node are deleted gracefully: the kubelet stops the containers and
        // finishes the deletion with gracePeriodSeconds=0.
        let mut grace_left = 0;
        if res.kind == "Pod" {
            let bound = !current
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty();
            let phase = current
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("");
            let default_grace = current
                .pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(30);
            let g = grace.unwrap_or(default_grace).max(0);
            if bound && !matches!(phase, "Succeeded" | "Failed") {
                grace_left = g;
            }
        }
        let policy_finalizer = match policy {
            "Foreground" => Some("foregroundDeletion"),
            "Orphan" => Some("orphan"),
            _ => None,
        };
        let terminating = current.pointer("/metadata/deletionTimestamp").is_some();
        let holds = has_finalizers(res, &current) || policy_finalizer.is_some();
        let step = if grace_left > 0 {
            let existing = current
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64);
            if terminating && existing.is_some_and(|e| e <= grace_left) {
                return Ok((current, false));
            }
            let meta = meta_mut(&mut obj);
            meta.insert("deletionTimestamp".into(), json!(later(grace_left)));
            meta.insert("deletionGracePeriodSeconds".into(), json!(grace_left));
            Some(obj)
        } else if holds {
            if terminating
                && policy_finalizer.is_none_or(|f| finalizers(&current).iter().any(|x| x == f))
            {
                let meta = meta_mut(&mut obj);
                if meta
                    .get("deletionGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    == Some(0)
                {
                    return Ok((current, false));
                }
                meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            } else {
                let meta = meta_mut(&mut obj);
                if !terminating {
                    meta.insert("deletionTimestamp".into(), json!(now()));
                }
                meta.insert("deletionGracePeriodSeconds".into(), json!(0));
                if let Some(f) = policy_finalizer {
                    let mut fins = finalizers(&current);
                    if !fins.iter().any(|x| x == f) {
                        fins.push(f.to_string());
                    }
                    meta.insert("finalizers".into(), json!(fins));
                }
                if res.kind == "Namespace" {
                    obj["status"]["phase"] = json!("Terminating");
                }
            }
            Some(obj)
        } else {
            None
        };
        let written = match step {
            Some(new) => {
                if dry {
                    return Ok((new, false));
                }
                let bytes = encode_for_store(&new)?;
                match ctx
                    .api
                    .store
                    .update(&key, bytes, rev)
                    .await
                    .map_err(store_error)?
                {
                    Written::Ok(r) => return Ok((stamped(new, r), false)),
                    w => w,
                }
            }
            None => {
                if dry {
                    return Ok((current, true));
                }
                match ctx.api.store.delete(&key, rev).await.map_err(store_error)? {
                    Written::Ok(r) => return Ok((stamped(current, r), true)),
                    w => w,
                }
            }
        };
        match written {
            Written::Conflict(None) => return Err(ApiError::not_found(res, name)),
            Written::Conflict(Some(_)) if pre_rv.is_some() => {
                return Err(ApiError::conflict(res, name, ApiError::MODIFIED))
            }
            _ => continue,
        }
    }
    Err(ApiError::conflict(res, name, ApiError::MODIFIED))
}

/// DELETE on a collection: deletes every object matching the selectors.
pub async fn delete_collection(ctx: &Ctx<'_>, options: Option<Value>) -> ApiResult<Response> {
    let dry = dry_run(ctx, options.as_ref())?;
    let (grace, policy) = delete_options(ctx, options.as_ref())?;
    let filter = crate::handlers::list::filter_from_query(ctx)?;
    let (objs, _) = crate::handlers::list::read_all_from_store(ctx, &filter).await?;
    let mut items = Vec::new();
    for o in objs {
        let name = meta_str(&o.value, "name").to_string();
        // A collection across namespaces deletes each object in its own namespace.
        let namespace = meta_str(&o.value, "namespace").to_string();
        let one = Ctx {
            namespace: if ctx.res.namespaced { &namespace } else { "" },
            ..*ctx
        };
        match delete_one(&one, &name, grace, &policy, None, None, dry).await {
            Ok((v, _)) => items.push(v),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({
        "kind": ctx.res.list_kind(),
        "apiVersion": ctx.res.api_version(),
        "metadata": {},
        "items": items,
    });
    Ok(respond(StatusCode::OK, &list))
}

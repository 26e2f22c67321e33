//! Subresources that are their own verbs: pods/binding and the Scale of workloads.

use super::*;

/// POST pods/<name>/binding: assigns the pod to a node, only if it has none.
pub async fn bind(ctx: &Ctx<'_>, name: &str, mut binding: Value) -> ApiResult<Response> {
    check_kind(&mut binding, "v1", "Binding")?;
    check_body_name(&binding, name)?;
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if node.is_empty() {
        return Err(ApiError::invalid(
            ctx.res,
            name,
            &[validation::FieldError {
                field: "target.name".into(),
                reason: "FieldValueRequired",
                message: "Required value".into(),
            }],
        ));
    }
    let annotations = binding
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned();
    let dry = dry_run(ctx, None)?;
    let bind_conflict = |why: String| {
        ApiError::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on pods/binding \"{name}\": {why}"),
        )
    };
    guaranteed_update(ctx, name, None, dry, |old| {
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(bind_conflict(format!(
                "pod {name} is being deleted, cannot be assigned to a host"
            )));
        }
        let current = old
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !current.is_empty() {
            return Err(bind_conflict(format!(
                "pod {name} is already assigned to node \"{current}\""
            )));
        }
        let mut new = old.clone();
        new["spec"]["nodeName"] = json!(node);
        if let Some(a) = &annotations {
            let meta = meta_mut(&mut new);
            let anns = meta.entry("annotations").or_insert_with(|| json!({}));
            if let Some(m) = anns.as_object_mut() {
                for (k, v) in a {
                    m.insert(k.clone(), v.clone());
                }
            }
        }
        let cond = json!({
            "type": "PodScheduled",
            "status": "True",
            "lastProbeTime": null,
            "lastTransitionTime": now(),
        });
        if !new.get("status").is_some_and(Value::is_object) {
            new["status"] = json!({});
        }
        let conds = new["status"]
            .as_object_mut()
            .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
        if let Some(Value::Array(list)) = conds {
            list.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
            list.push(cond);
        }
        Ok(Step::Write(new))
    })
    .await?;
    Ok(respond(StatusCode::CREATED, &status::success(201)))
}

/// GET <deployments|replicasets>/<name>/scale.
pub async fn get_scale(ctx: &Ctx<'_>, name: &str) -> ApiResult<Response> {
    let Some((obj, _)) = read(ctx, name).await? else {
        return Err(ApiError::not_found(ctx.res, name));
    };
    Ok(respond(StatusCode::OK, &scale_of(&obj)))
}

async fn scale_to(
    ctx: &Ctx<'_>,
    name: &str,
    replicas: Option<i64>,
    precondition: Option<i64>,
    dry: bool,
) -> ApiResult<Response> {
    let Some(replicas) = replicas else {
        return Err(ApiError::invalid(
            ctx.res,
            name,
            &[validation::FieldError {
                field: "spec.replicas".into(),
                reason: "FieldValueRequired",
                message: "Required value".into(),
            }],
        ));
    };
    if replicas < 0 {
        return Err(ApiError::invalid(
            ctx.res,
            name,
            &[validation::FieldError {
                field: "spec.replicas".into(),
                reason: "FieldValueInvalid",
                message: format!("Invalid value: {replicas}: must be greater than or equal to 0"),
            }],
        ));
    }
    let res = ctx.res;
    let manager = FieldManager::for_write(ctx, "scale", "UpdateOptions")?;
    let (obj, _) = guaranteed_update(ctx, name, precondition, dry, |old| {
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(replicas);
        admit_update(res, name, &old, new, Some(&manager))
    })
    .await?;
    Ok(respond(StatusCode::OK, &scale_of(&obj)))
}

/// PUT <deployments|replicasets>/<name>/scale.
pub async fn update_scale(ctx: &Ctx<'_>, name: &str, mut scale: Value) -> ApiResult<Response> {
    check_kind(&mut scale, "autoscaling/v1", "Scale")?;
    check_body_name(&scale, name)?;
    let precondition = body_precondition(&scale)?;
    let dry = dry_run(ctx, None)?;
    let replicas = scale.pointer("/spec/replicas").and_then(Value::as_i64);
    scale_to(ctx, name, replicas, precondition, dry).await
}

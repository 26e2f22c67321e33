use serde_json::{json, Value};

use super::*;
use crate::patch::managed::record_update;
use crate::patch::testutil::{deployment, deployments, entry, writer};

#[test]
fn apply_conflicts_with_other_owners_unless_forced() {
    let mut live = deployment(1, json!({"app": "d"}));
    record_update(
        &json!({}),
        &mut live,
        deployments(),
        &writer("kubectl-client-side-apply", "t1"),
    );
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d"}, "spec": {"replicas": 3}});
    let err = apply(
        &live,
        &config,
        deployments(),
        &writer("kubectl", "t2"),
        false,
    )
    .expect_err("conflict");
    let ApplyError::Conflicts(c) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        c,
        &vec![(
            "\"kubectl-client-side-apply\" using apps/v1".to_string(),
            ".spec.replicas".to_string()
        )]
    );
    assert_eq!(
        ApplyError::conflict_message(c),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
    // The same value is no conflict: both own it.
    let same = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d"}, "spec": {"replicas": 1}});
    let out = apply(&live, &same, deployments(), &writer("kubectl", "t2"), false).expect("shared");
    assert_eq!(
        entry(&out, "kubectl").expect("applier")["fieldsV1"],
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(
        entry(&out, "kubectl-client-side-apply").expect("old")["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_some()
    );
    // Forced: the field changes hands.
    let out = apply(
        &live,
        &config,
        deployments(),
        &writer("kubectl", "t2"),
        true,
    )
    .expect("forced");
    assert_eq!(out["spec"]["replicas"], 3);
    assert_eq!(
        entry(&out, "kubectl").expect("applier")["operation"],
        "Apply"
    );
    assert!(
        entry(&out, "kubectl-client-side-apply").expect("old")["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_none()
    );
}

#[test]
fn apply_removes_what_the_applier_stops_specifying_unless_someone_else_owns_it() {
    let node = deployments();
    let cfg = |labels: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "labels": labels}})
    };
    let first = apply(
        &json!({}),
        &cfg(json!({"x": "1", "y": "2", "z": "3"})),
        node,
        &writer("m", "t1"),
        false,
    )
    .expect("create");
    assert_eq!(
        first["metadata"]["labels"],
        json!({"x": "1", "y": "2", "z": "3"})
    );
    // Another manager takes z over by updating it.
    let mut other = first.clone();
    other["metadata"]["labels"]["z"] = json!("4");
    record_update(&first, &mut other, node, &writer("o", "t2"));
    let second = apply(
        &other,
        &cfg(json!({"x": "1"})),
        node,
        &writer("m", "t3"),
        false,
    )
    .expect("apply");
    assert_eq!(second["metadata"]["labels"], json!({"x": "1", "z": "4"}));
    assert_eq!(
        entry(&second, "m").expect("m")["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:x": {}}}})
    );
}

#[test]
fn apply_refuses_managed_fields_in_the_configuration() {
    let cfg = json!({"metadata": {"name": "d", "managedFields": []}});
    assert_eq!(
        apply(&json!({}), &cfg, deployments(), &writer("m", "t"), false),
        Err(ApplyError::BadRequest(
            "metadata.managedFields must be nil".into()
        ))
    );
}

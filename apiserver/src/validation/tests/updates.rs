//! What an update may change.

use super::*;

// --- Updates ---

fn admitted_pod() -> Value {
    let mut p = pod(json!({"containers": [{"name": "c", "image": "nginx:1"}],
        "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}]}));
    p["metadata"]["uid"] = json!("u1");
    ok("Pod", p, true)
}

#[test]
fn pod_update_image_allowed() {
    let old = admitted_pod();
    let mut new = old.clone();
    new["spec"]["containers"][0]["image"] = json!("nginx:2");
    new["spec"]["activeDeadlineSeconds"] = json!(100);
    new["spec"]["tolerations"] = json!([
        {"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10},
        {"key": "other", "operator": "Exists"}
    ]);
    new["metadata"]["labels"] = json!({"x": "y"});
    new["status"] = json!({"phase": "Running"});
    let new = ok("Pod", new, true);
    assert_eq!(validate_update("Pod", &old, &new), vec![]);
}

#[test]
fn pod_update_spec_forbidden() {
    let old = admitted_pod();
    let mut new = old.clone();
    new["spec"]["restartPolicy"] = json!("Never");
    let errs = validate_update("Pod", &old, &new);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].field, "spec");
    assert_eq!(errs[0].reason, "FieldValueForbidden");
    assert!(errs[0].message.starts_with(
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
    ));
    assert!(errs[0].message.contains("spec.restartPolicy"));

    let mut new = old.clone();
    new["spec"]["containers"]
        .as_array_mut()
        .expect("containers")
        .push(json!({"name": "d", "image": "x"}));
    assert_eq!(
        validate_update("Pod", &old, &new),
        vec![FieldError {
            field: "spec.containers".into(),
            reason: "FieldValueForbidden",
            message: "Forbidden: pod updates may not add or remove containers".into()
        }]
    );

    let mut new = old.clone();
    new["spec"]["tolerations"] = json!([{"key": "k2", "operator": "Exists"}]);
    let errs = validate_update("Pod", &old, &new);
    assert!(has(
        &errs,
        "spec.tolerations",
        "FieldValueForbidden",
        "Forbidden: existing toleration can not be modified except its tolerationSeconds"
    ));

    let mut with_deadline = old.clone();
    with_deadline["spec"]["activeDeadlineSeconds"] = json!(10);
    let mut new = with_deadline.clone();
    new["spec"]["activeDeadlineSeconds"] = json!(20);
    assert!(has(
        &validate_update("Pod", &with_deadline, &new),
        "spec.activeDeadlineSeconds",
        "FieldValueInvalid",
        "Invalid value: 20: must be less than or equal to previous value"
    ));
}

#[test]
fn metadata_update_rules() {
    let old = admitted_pod();
    let mut new = old.clone();
    new["metadata"]["name"] = json!("other");
    new["metadata"]["uid"] = json!("u2");
    let errs = validate_update("ConfigMap", &old, &new);
    assert!(has(
        &errs,
        "metadata.name",
        "FieldValueInvalid",
        "Invalid value: \"other\": field is immutable"
    ));
    assert!(has(
        &errs,
        "metadata.uid",
        "FieldValueInvalid",
        "Invalid value: \"u2\": field is immutable"
    ));
    // A body without uid keeps the old one.
    let mut new = old.clone();
    new["metadata"].as_object_mut().expect("meta").remove("uid");
    assert_eq!(validate_update("Pod", &old, &new), vec![]);
    // No new finalizers while deleting.
    let mut deleting = old.clone();
    deleting["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
    let mut new = deleting.clone();
    new["metadata"]["finalizers"] = json!(["example.com/f"]);
    assert!(validate_update("Pod", &deleting, &new)
        .iter()
        .any(|e| e.field == "metadata.finalizers" && e.reason == "FieldValueForbidden"));
}

#[test]
fn workload_selector_immutable() {
    let old = ok(
        "Deployment",
        deployment(
            json!({"matchLabels": {"app": "a"}}),
            json!({"app": "a", "v": "1"}),
        ),
        true,
    );
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(5);
    assert_eq!(validate_update("Deployment", &old, &new), vec![]);
    new["spec"]["selector"] = json!({"matchLabels": {"app": "a", "v": "1"}});
    assert_eq!(
        validate_update("Deployment", &old, &new),
        vec![FieldError {
            field: "spec.selector".into(),
            reason: "FieldValueInvalid",
            message: "Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"a\", \"v\":\"1\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable".into()
        }]
    );
}

#[test]
fn service_cluster_ip_immutable() {
    let old = ok(
        "Service",
        json!({"metadata": {"name": "s", "namespace": "d"}, "spec": {"clusterIP": "10.0.0.5", "ports": [{"port": 80}]}}),
        true,
    );
    assert_eq!(old["spec"]["clusterIPs"], json!(["10.0.0.5"]));
    let mut new = old.clone();
    new["spec"]["clusterIP"] = json!("10.0.0.6");
    new["spec"]["clusterIPs"] = json!(["10.0.0.6"]);
    assert!(has(
        &validate_update("Service", &old, &new),
        "spec.clusterIPs[0]",
        "FieldValueInvalid",
        "Invalid value: []string{\"10.0.0.6\"}: may not change once set"
    ));
    let mut same = old.clone();
    same["spec"]["ports"][0]["port"] = json!(81);
    assert_eq!(validate_update("Service", &old, &same), vec![]);
}

#[test]
fn immutable_secret_and_config_map() {
    let old = ok(
        "Secret",
        json!({"metadata": {"name": "s", "namespace": "d"}, "immutable": true, "data": {"a": "YQ=="}}),
        true,
    );
    let mut new = old.clone();
    new["data"] = json!({"a": "Yg=="});
    assert!(has(
        &validate_update("Secret", &old, &new),
        "data",
        "FieldValueForbidden",
        "Forbidden: field is immutable when `immutable` is set"
    ));
    let mut new = old.clone();
    new["type"] = json!("kubernetes.io/tls");
    assert!(has(
        &validate_update("Secret", &old, &new),
        "type",
        "FieldValueInvalid",
        "Invalid value: \"kubernetes.io/tls\": field is immutable"
    ));
    let old = json!({"metadata": {"name": "c"}, "immutable": true, "data": {"a": "1"}});
    let mut new = old.clone();
    new["immutable"] = json!(false);
    new["data"] = json!({"a": "2"});
    let errs = validate_update("ConfigMap", &old, &new);
    assert!(has(
        &errs,
        "immutable",
        "FieldValueForbidden",
        "Forbidden: field is immutable when `immutable` is set"
    ));
    assert!(has(
        &errs,
        "data",
        "FieldValueForbidden",
        "Forbidden: field is immutable when `immutable` is set"
    ));
    // Mutable ConfigMaps change freely.
    let old = json!({"metadata": {"name": "c"}, "data": {"a": "1"}});
    assert_eq!(
        validate_update(
            "ConfigMap",
            &old,
            &json!({"metadata": {"name": "c"}, "data": {"a": "2"}})
        ),
        vec![]
    );
}

#[test]
fn role_ref_immutable() {
    let old = ok(
        "RoleBinding",
        json!({"metadata": {"name": "b", "namespace": "d"}, "roleRef": {"kind": "Role", "name": "r"}}),
        true,
    );
    let mut new = old.clone();
    new["roleRef"]["name"] = json!("r2");
    assert_eq!(
        validate_update("RoleBinding", &old, &new),
        vec![FieldError {
            field: "roleRef".into(),
            reason: "FieldValueInvalid",
            message: "Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"r2\"}: cannot change roleRef".into()
        }]
    );
}

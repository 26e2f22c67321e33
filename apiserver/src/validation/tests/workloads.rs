//! Metadata, Deployments and ReplicaSets, Services.

use super::*;

// --- Metadata ---

#[test]
fn metadata_rules() {
    let mut obj = simple_pod();
    obj["metadata"] = json!({
        "name": "Bad_Name", "namespace": "default",
        "labels": {"a b": "ok", "good": "bad value"},
        "annotations": {"Example.com/Key": "fine", "/x": "y"}
    });
    let c = causes("Pod", obj, true);
    assert_has(
        &c,
        "metadata.name",
        "FieldValueInvalid",
        "Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    );
    assert_has(
        &c,
        "metadata.labels",
        "FieldValueInvalid",
        "Invalid value: \"a b\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
    );
    assert!(c.iter().any(|e| e.field == "metadata.labels"
        && e.message
            .starts_with("Invalid value: \"bad value\": a valid label must be an empty string")));
    assert_has(
        &c,
        "metadata.annotations",
        "FieldValueInvalid",
        "Invalid value: \"/x\": prefix part must be non-empty",
    );
    assert!(!c.iter().any(|e| e.message.contains("Example.com")));
}

#[test]
fn metadata_name_and_namespace_required() {
    let mut obj = simple_pod();
    obj["metadata"] = json!({});
    let c = causes("Pod", obj, true);
    assert_has(
        &c,
        "metadata.name",
        "FieldValueRequired",
        "Required value: name or generateName is required",
    );
    assert_has(
        &c,
        "metadata.namespace",
        "FieldValueRequired",
        "Required value",
    );
}

#[test]
fn cluster_scoped_namespace_cleared() {
    let ns = ok(
        "Namespace",
        json!({"metadata": {"name": "team-a", "namespace": "x"}}),
        false,
    );
    assert!(ns["metadata"].get("namespace").is_none());
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team-a"
    );
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(ns["kind"], "Namespace");
}

#[test]
fn server_metadata_preserved_and_unknown_fields_dropped() {
    let mut obj = simple_pod();
    obj["metadata"]["creationTimestamp"] = json!("2024-05-01T10:00:00.123456Z");
    obj["metadata"]["resourceVersion"] = json!("42");
    obj["metadata"]["uid"] = json!("u-1");
    obj["metadata"]["generation"] = json!(3);
    obj["metadata"]["managedFields"] = json!([{"manager": "kubectl", "operation": "Apply"}]);
    obj["spec"]["bogus"] = json!(1);
    obj["extra"] = json!(true);
    let p = ok("Pod", obj, true);
    assert_eq!(
        p["metadata"]["creationTimestamp"],
        "2024-05-01T10:00:00.123456Z"
    );
    assert_eq!(p["metadata"]["resourceVersion"], "42");
    assert_eq!(p["metadata"]["uid"], "u-1");
    assert_eq!(p["metadata"]["generation"], 3);
    assert_eq!(p["metadata"]["managedFields"][0]["manager"], "kubectl");
    assert!(p["spec"].get("bogus").is_none());
    assert!(p.get("extra").is_none());
}

// --- Deployments and ReplicaSets ---

#[test]
fn deployment_defaults() {
    let d = ok(
        "Deployment",
        deployment(json!({"matchLabels": {"app": "a"}}), json!({"app": "a"})),
        true,
    );
    let s = &d["spec"];
    assert_eq!(s["replicas"], 1);
    assert_eq!(
        s["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
    assert_eq!(s["revisionHistoryLimit"], 10);
    assert_eq!(s["progressDeadlineSeconds"], 600);
    let t = &s["template"]["spec"];
    assert_eq!(t["restartPolicy"], "Always");
    assert_eq!(t["dnsPolicy"], "ClusterFirst");
    assert_eq!(t["containers"][0]["imagePullPolicy"], "Always");
    assert!(t.get("enableServiceLinks").is_none());
    assert!(t.get("priority").is_none());
    assert_eq!(d["apiVersion"], "apps/v1");
}

#[test]
fn deployment_selector_must_match_template() {
    let c = causes(
        "Deployment",
        deployment(json!({"matchLabels": {"app": "a"}}), json!({"app": "b"})),
        true,
    );
    assert_eq!(
        c,
        vec![FieldError {
            field: "spec.template.metadata.labels".into(),
            reason: "FieldValueInvalid",
            message: "Invalid value: map[string]string{\"app\":\"b\"}: `selector` does not match template `labels`".into(),
        }]
    );
}

#[test]
fn deployment_selector_required_and_non_empty() {
    let mut d = deployment(json!(null), json!({"app": "a"}));
    d["spec"]["selector"] = Value::Null;
    let c = causes("Deployment", d, true);
    assert_has(&c, "spec.selector", "FieldValueRequired", "Required value");
    assert!(c.iter().any(|e| e.field == "spec.template.metadata.labels"));
    let c = causes(
        "Deployment",
        deployment(json!({}), json!({"app": "a"})),
        true,
    );
    assert_has(
        &c,
        "spec.selector",
        "FieldValueInvalid",
        "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment",
    );
    let c = causes(
        "Deployment",
        deployment(
            json!({"matchExpressions": [{"key": "app", "operator": "Bad"}]}),
            json!({"app": "a"}),
        ),
        true,
    );
    assert_has(
        &c,
        "spec.selector.matchExpressions[0].operator",
        "FieldValueInvalid",
        "Invalid value: \"Bad\": not a valid selector operator",
    );
}

#[test]
fn deployment_template_rules() {
    let mut d = deployment(json!({"matchLabels": {"app": "a"}}), json!({"app": "a"}));
    d["spec"]["replicas"] = json!(-1);
    d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    d["spec"]["template"]["spec"]["containers"][0]["name"] = json!("");
    let c = causes("Deployment", d, true);
    assert_has(
        &c,
        "spec.replicas",
        "FieldValueInvalid",
        "Invalid value: -1: must be greater than or equal to 0",
    );
    assert_has(
        &c,
        "spec.template.spec.restartPolicy",
        "FieldValueNotSupported",
        "Unsupported value: \"Never\": supported values: \"Always\"",
    );
    assert_has(
        &c,
        "spec.template.spec.containers[0].name",
        "FieldValueRequired",
        "Required value",
    );
}

#[test]
fn deployment_wrong_type_is_bad_request() {
    let e = admit(
        "Deployment",
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "n"},
               "spec": {"replicas": "x"}}),
        true,
    );
    match e {
        Err(AdmitError::BadRequest(m)) => {
            assert!(
                m.starts_with("Deployment in version \"v1\" cannot be handled as a Deployment: "),
                "{m}"
            );
            assert!(m.contains("invalid type"), "{m}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn replica_set_defaults_and_selector() {
    let mut rs = deployment(json!({"matchLabels": {"app": "a"}}), json!({"app": "a"}));
    rs["apiVersion"] = json!("apps/v1");
    rs["kind"] = json!("ReplicaSet");
    let r = ok("ReplicaSet", rs.clone(), true);
    assert_eq!(r["spec"]["replicas"], 1);
    assert_eq!(r["spec"]["template"]["spec"]["restartPolicy"], "Always");
    assert!(r["spec"].get("strategy").is_none());
    rs["spec"]["template"]["metadata"]["labels"] = json!({"app": "z"});
    let c = causes("ReplicaSet", rs, true);
    assert!(c.iter().any(|e| e.field == "spec.template.metadata.labels"));
}

// --- Service ---

#[test]
fn service_defaults() {
    let s = ok(
        "Service",
        json!({"metadata": {"name": "web", "namespace": "default"},
               "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        true,
    );
    let spec = &s["spec"];
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["ports"][0]["protocol"], "TCP");
    assert_eq!(spec["ports"][0]["targetPort"], 80);
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert_eq!(s["kind"], "Service");
}

#[test]
fn service_rules() {
    let c = causes(
        "Service",
        json!({"metadata": {"name": "1web", "namespace": "default"}, "spec": {}}),
        true,
    );
    assert!(c.iter().any(|e| e.field == "metadata.name"
        && e.message
            .contains("a DNS-1035 label must consist of lower case alphanumeric characters")));
    assert_has(&c, "spec.ports", "FieldValueRequired", "Required value");
    let c = causes(
        "Service",
        json!({"metadata": {"name": "web", "namespace": "default"},
               "spec": {"type": "Weird", "ports": [{"port": 80}, {"port": 0, "name": "a"}]}}),
        true,
    );
    assert_has(
        &c,
        "spec.ports[0].name",
        "FieldValueRequired",
        "Required value",
    );
    assert_has(
        &c,
        "spec.ports[1].port",
        "FieldValueInvalid",
        "Invalid value: 0: must be between 1 and 65535, inclusive",
    );
    assert_has(
        &c,
        "spec.type",
        "FieldValueNotSupported",
        "Unsupported value: \"Weird\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
    );
    let c = causes(
        "Service",
        json!({"metadata": {"name": "web", "namespace": "default"},
               "spec": {"ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "a"}]}}),
        true,
    );
    assert_has(
        &c,
        "spec.ports[1].name",
        "FieldValueDuplicate",
        "Duplicate value: \"a\"",
    );
    // Headless and ExternalName services need no ports.
    ok(
        "Service",
        json!({"metadata": {"name": "h", "namespace": "d"}, "spec": {"clusterIP": "None"}}),
        true,
    );
    let e = ok(
        "Service",
        json!({"metadata": {"name": "e", "namespace": "d"},
               "spec": {"type": "ExternalName", "externalName": "example.com"}}),
        true,
    );
    assert!(e["spec"].get("ipFamilyPolicy").is_none());
}

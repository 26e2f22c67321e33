use serde_json::{json, Value};

use super::*;

fn pod(spec: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": spec
    })
}

fn simple_pod() -> Value {
    pod(json!({"containers": [{"name": "c", "image": "nginx:1.25"}]}))
}

fn deployment(selector: Value, labels: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {
            "selector": selector,
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}
            }
        }
    })
}

fn ok(kind: &str, obj: Value, namespaced: bool) -> Value {
    match admit(kind, obj, namespaced) {
        Ok(v) => v,
        Err(e) => panic!("{kind} not admitted: {e:?}"),
    }
}

fn causes(kind: &str, obj: Value, namespaced: bool) -> Vec<FieldError> {
    match admit(kind, obj, namespaced) {
        Err(AdmitError::Invalid(c)) => c,
        other => panic!("{kind}: expected Invalid, got {other:?}"),
    }
}

fn has(causes: &[FieldError], field: &str, reason: &str, message: &str) -> bool {
    causes
        .iter()
        .any(|c| c.field == field && c.reason == reason && c.message == message)
}

fn assert_has(causes: &[FieldError], field: &str, reason: &str, message: &str) {
    assert!(
        has(causes, field, reason, message),
        "missing {field} {reason} {message:?} in {causes:#?}"
    );
}

// --- Pod defaults ---

#[test]
fn pod_defaults() {
    let p = ok("Pod", simple_pod(), true);
    let s = &p["spec"];
    assert_eq!(s["restartPolicy"], "Always");
    assert_eq!(s["dnsPolicy"], "ClusterFirst");
    assert_eq!(s["schedulerName"], "default-scheduler");
    assert_eq!(s["terminationGracePeriodSeconds"], 30);
    assert_eq!(s["securityContext"], json!({}));
    assert_eq!(s["enableServiceLinks"], true);
    assert_eq!(s["preemptionPolicy"], "PreemptLowerPriority");
    assert_eq!(s["priority"], 0);
    let c = &s["containers"][0];
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["resources"], json!({}));
    assert_eq!(p["status"]["phase"], "Pending");
    assert_eq!(p["apiVersion"], "v1");
    assert_eq!(p["kind"], "Pod");
}

#[test]
fn pod_defaults_keep_given_values_and_status() {
    let mut obj = pod(json!({
        "restartPolicy": "Never",
        "containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
            "livenessProbe": {"httpGet": {"port": 80}}}],
        "volumes": [{"name": "v"}, {"name": "s", "secret": {"secretName": "x"}}]
    }));
    obj["status"] = json!({"phase": "Running"});
    let p = ok("Pod", obj, true);
    assert_eq!(p["spec"]["restartPolicy"], "Never");
    assert_eq!(p["status"]["phase"], "Running");
    let c = &p["spec"]["containers"][0];
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
               "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(p["spec"]["volumes"][0]["emptyDir"], json!({}));
    assert_eq!(p["spec"]["volumes"][1]["secret"]["defaultMode"], 420);
}

#[test]
fn image_pull_policy_defaults() {
    for (image, want) in [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("localhost:5000/nginx", "Always"),
        ("localhost:5000/nginx:v1", "IfNotPresent"),
        (
            "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "IfNotPresent",
        ),
        ("registry.k8s.io/pause:3.9", "IfNotPresent"),
    ] {
        assert_eq!(defaults::pull_policy(image), want, "{image}");
    }
}

#[test]
fn pod_requests_default_to_limits_and_qos() {
    let p = ok(
        "Pod",
        pod(json!({"containers": [{"name": "c", "image": "i",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]})),
        true,
    );
    assert_eq!(
        p["spec"]["containers"][0]["resources"]["requests"],
        json!({"cpu": "1", "memory": "1Gi"})
    );
    assert_eq!(pod_qos_class(&p), "Guaranteed");
    assert_eq!(pod_qos_class(&ok("Pod", simple_pod(), true)), "BestEffort");
    let burstable = pod(json!({"containers": [{"name": "c", "image": "i",
        "resources": {"requests": {"cpu": "100m"}}}]}));
    assert_eq!(pod_qos_class(&ok("Pod", burstable, true)), "Burstable");
    let mixed = pod(json!({"containers": [
        {"name": "a", "image": "i", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
        {"name": "b", "image": "i", "resources": {"requests": {"cpu": "1000m", "memory": "1Gi"},
            "limits": {"cpu": "1", "memory": "1Gi"}}}]}));
    assert_eq!(pod_qos_class(&ok("Pod", mixed, true)), "Guaranteed");
    let lower = pod(json!({"containers": [{"name": "a", "image": "i",
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}}]}));
    assert_eq!(pod_qos_class(&ok("Pod", lower, true)), "Burstable");
}

// --- Pod validation ---

#[test]
fn pod_requires_containers() {
    let c = causes("Pod", pod(json!({})), true);
    assert_eq!(
        c,
        vec![FieldError {
            field: "spec.containers".into(),
            reason: "FieldValueRequired",
            message: "Required value".into()
        }]
    );
    let c = causes(
        "Pod",
        json!({"metadata": {"name": "p", "namespace": "default"}}),
        true,
    );
    assert_has(
        &c,
        "spec.containers",
        "FieldValueRequired",
        "Required value",
    );
}

#[test]
fn pod_container_rules() {
    let c = causes(
        "Pod",
        pod(json!({"restartPolicy": "Sometimes", "containers": [
            {"name": "Foo_", "image": "i"},
            {"name": "b"},
            {"name": "b", "image": "i", "ports": [{"containerPort": 70000}, {"containerPort": 0}]},
        ]})),
        true,
    );
    assert_has(
        &c,
        "spec.containers[0].name",
        "FieldValueInvalid",
        "Invalid value: \"Foo_\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
    );
    assert_has(
        &c,
        "spec.containers[1].image",
        "FieldValueRequired",
        "Required value",
    );
    assert_has(
        &c,
        "spec.containers[2].name",
        "FieldValueDuplicate",
        "Duplicate value: \"b\"",
    );
    assert_has(
        &c,
        "spec.containers[2].ports[0].containerPort",
        "FieldValueInvalid",
        "Invalid value: 70000: must be between 1 and 65535, inclusive",
    );
    assert_has(
        &c,
        "spec.containers[2].ports[1].containerPort",
        "FieldValueRequired",
        "Required value",
    );
    assert_has(
        &c,
        "spec.restartPolicy",
        "FieldValueNotSupported",
        "Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
    );
}

#[test]
fn pod_resource_rules() {
    let c = causes(
        "Pod",
        pod(
            json!({"containers": [{"name": "c", "image": "i", "resources": {
            "requests": {"cpu": "2", "memory": "-1", "foo": "1"},
            "limits": {"cpu": "1"}}}]}),
        ),
        true,
    );
    assert_has(
        &c,
        "spec.containers[0].resources.requests",
        "FieldValueInvalid",
        "Invalid value: \"2\": must be less than or equal to cpu limit of 1",
    );
    assert_has(
        &c,
        "spec.containers[0].resources.requests[memory]",
        "FieldValueInvalid",
        "Invalid value: \"-1\": must be greater than or equal to 0",
    );
    assert_has(
        &c,
        "spec.containers[0].resources.requests[foo]",
        "FieldValueInvalid",
        "Invalid value: \"foo\": must be a standard resource for containers",
    );
}

#[test]
fn pod_bad_quantity_is_bad_request() {
    let e = admit(
        "Pod",
        pod(json!({"containers": [{"name": "c", "image": "i",
            "resources": {"limits": {"cpu": "one"}}}]})),
        true,
    );
    assert_eq!(
        e,
        Err(AdmitError::BadRequest(
            "Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'".into()
        ))
    );
}

#[test]
fn pod_volume_mounts_and_tolerations() {
    let c = causes(
        "Pod",
        pod(json!({
            "containers": [{"name": "c", "image": "i", "volumeMounts": [{"name": "missing", "mountPath": "/x"}]}],
            "tolerations": [{"key": "k", "operator": "Exists", "value": "v"}, {"operator": "Equal", "value": "x"}]
        })),
        true,
    );
    assert_has(
        &c,
        "spec.containers[0].volumeMounts[0].name",
        "FieldValueNotFound",
        "Not found: \"missing\"",
    );
    assert!(c.iter().any(|e| e.field == "spec.tolerations[0].operator"
        && e.message
            .ends_with("value must be empty when `operator` is 'Exists'")));
    assert!(c.iter().any(|e| e.field == "spec.tolerations[1].operator"
        && e.message
            .starts_with("Invalid value: \"Equal\": operator must be Exists when `key` is empty")));
}

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

// --- Secrets, ConfigMaps ---

#[test]
fn secret_defaults_and_string_data() {
    let s = ok(
        "Secret",
        json!({"metadata": {"name": "s", "namespace": "d"},
               "data": {"a": "YQ=="}, "stringData": {"b": "bee", "a": "override"}}),
        true,
    );
    assert_eq!(s["type"], "Opaque");
    assert_eq!(s["data"], json!({"a": "b3ZlcnJpZGU=", "b": "YmVl"}));
    assert!(s.get("stringData").is_none());
}

#[test]
fn secret_rules() {
    let c = causes(
        "Secret",
        json!({"metadata": {"name": "s", "namespace": "d"}, "data": {"bad key": "YQ=="}}),
        true,
    );
    assert_has(
        &c,
        "data[bad key]",
        "FieldValueInvalid",
        "Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
    );
    let big = "a".repeat(1024 * 1024 + 1);
    let c = causes(
        "Secret",
        json!({"metadata": {"name": "s", "namespace": "d"}, "stringData": {"k": big}}),
        true,
    );
    assert_has(
        &c,
        "data",
        "FieldValueTooLong",
        "Too long: may not be more than 1048576 bytes",
    );
    let c = causes(
        "Secret",
        json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/tls", "data": {}}),
        true,
    );
    assert_has(&c, "data[tls.crt]", "FieldValueRequired", "Required value");
    let e = admit(
        "Secret",
        json!({"metadata": {"name": "s", "namespace": "d"}, "data": {"a": "not base64!"}}),
        true,
    );
    assert!(matches!(e, Err(AdmitError::BadRequest(_))), "{e:?}");
}

#[test]
fn config_map_rules() {
    let c = causes(
        "ConfigMap",
        json!({"metadata": {"name": "c", "namespace": "d"}, "data": {"..x": "1", "ok": "2"},
               "binaryData": {"ok": "YQ=="}}),
        true,
    );
    assert!(c
        .iter()
        .any(|e| e.field == "data[..x]" && e.message.ends_with("must not start with '..'")));
    assert_has(
        &c,
        "data[ok]",
        "FieldValueInvalid",
        "Invalid value: \"ok\": duplicate of key present in binaryData",
    );
    ok(
        "ConfigMap",
        json!({"metadata": {"name": "c", "namespace": "d"}, "data": {"a.b": "x"}}),
        true,
    );
}

// --- Other kinds ---

#[test]
fn namespace_name_is_a_label() {
    let c = causes("Namespace", json!({"metadata": {"name": "a.b"}}), false);
    assert_has(
        &c,
        "metadata.name",
        "FieldValueInvalid",
        "Invalid value: \"a.b\": must not contain dots",
    );
    let c = causes("Namespace", json!({"metadata": {"name": "Abc"}}), false);
    assert!(c[0]
        .message
        .contains("a lowercase RFC 1123 label must consist"));
}

#[test]
fn rbac_rules() {
    let c = causes(
        "Role",
        json!({"metadata": {"name": "r", "namespace": "d"},
               "rules": [{"verbs": [], "apiGroups": [""], "resources": ["pods"]}, {"verbs": ["get"]}]}),
        true,
    );
    assert_has(
        &c,
        "rules[0].verbs",
        "FieldValueRequired",
        "Required value: verbs must contain at least one value",
    );
    assert_has(
        &c,
        "rules[1].apiGroups",
        "FieldValueRequired",
        "Required value: resource rules must supply at least one api group",
    );
    let b = ok(
        "RoleBinding",
        json!({"metadata": {"name": "b", "namespace": "d"},
               "roleRef": {"kind": "Role", "name": "r"},
               "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "sa"}]}),
        true,
    );
    assert_eq!(b["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(b["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
    let c = causes(
        "ClusterRoleBinding",
        json!({"metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": "r"},
               "subjects": [{"kind": "Robot", "name": "x"}, {"kind": "ServiceAccount", "name": "sa"}]}),
        false,
    );
    assert_has(
        &c,
        "roleRef.kind",
        "FieldValueNotSupported",
        "Unsupported value: \"Role\": supported values: \"ClusterRole\"",
    );
    assert_has(
        &c,
        "subjects[0].kind",
        "FieldValueNotSupported",
        "Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
    );
    assert_has(
        &c,
        "subjects[1].namespace",
        "FieldValueRequired",
        "Required value",
    );
    let c = causes("ClusterRole", json!({"metadata": {"name": "a/b"}}), false);
    assert_has(
        &c,
        "metadata.name",
        "FieldValueInvalid",
        "Invalid value: \"a/b\": may not contain '/'",
    );
    ok(
        "ClusterRole",
        json!({"metadata": {"name": "system:controller:x"}, "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]}),
        false,
    );
}

#[test]
fn event_lease_node_binding_scale() {
    let c = causes(
        "Event",
        json!({"metadata": {"name": "e", "namespace": "a"}, "involvedObject": {"kind": "Pod", "namespace": "b"}}),
        true,
    );
    assert_has(
        &c,
        "involvedObject.namespace",
        "FieldValueInvalid",
        "Invalid value: \"b\": does not match event.namespace",
    );
    ok(
        "Event",
        json!({"metadata": {"name": "e.1", "namespace": "a"}, "involvedObject": {"kind": "Pod", "namespace": "a"}, "reason": "X"}),
        true,
    );
    let c = causes(
        "Lease",
        json!({"metadata": {"name": "l", "namespace": "d"}, "spec": {"leaseDurationSeconds": 0}}),
        true,
    );
    assert_has(
        &c,
        "spec.leaseDurationSeconds",
        "FieldValueInvalid",
        "Invalid value: 0: must be greater than 0",
    );
    ok(
        "Lease",
        json!({"metadata": {"name": "l", "namespace": "d"}, "spec": {"holderIdentity": "me", "renewTime": "2024-01-01T00:00:00.000000Z"}}),
        true,
    );
    let n = ok(
        "Node",
        json!({"metadata": {"name": "n1"}, "status": {"capacity": {"cpu": "4", "pods": "110"}}}),
        false,
    );
    assert_eq!(
        n["status"]["allocatable"],
        json!({"cpu": "4", "pods": "110"})
    );
    let c = causes(
        "Binding",
        json!({"metadata": {"name": "p"}, "target": {"kind": "Pod"}}),
        true,
    );
    assert_has(
        &c,
        "target.kind",
        "FieldValueNotSupported",
        "Unsupported value: \"Pod\": supported values: \"Node\", \"<empty>\"",
    );
    assert_has(&c, "target.name", "FieldValueRequired", "Required value");
    let c = causes(
        "Scale",
        json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "d", "namespace": "n"}, "spec": {"replicas": -2}}),
        true,
    );
    assert_has(
        &c,
        "spec.replicas",
        "FieldValueInvalid",
        "Invalid value: -2: must be greater than or equal to 0",
    );
    assert_eq!(admit("Widget", json!({"a": 1}), true), Ok(json!({"a": 1})));
}

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

// --- Helpers ---

#[test]
fn spec_changed_ignores_metadata_and_status() {
    let old = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"replicas": 1}, "status": {"replicas": 0}});
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({"x": "2"});
    new["status"] = json!({"replicas": 1});
    assert!(!spec_changed(&old, &new));
    new["spec"]["replicas"] = json!(2);
    assert!(spec_changed(&old, &new));
    let cm = json!({"metadata": {"name": "c"}, "data": {"a": "1"}});
    assert!(!spec_changed(
        &cm,
        &json!({"metadata": {"name": "c"}, "data": {"a": "2"}})
    ));
}

#[test]
fn names() {
    assert!(validate_name("Pod", "a.b-c").is_empty());
    assert!(!validate_name("Pod", "A").is_empty());
    assert_eq!(
        validate_name("Namespace", "a.b"),
        vec!["must not contain dots".to_string()]
    );
    assert!(!validate_name("Service", "1abc").is_empty());
    assert!(validate_name("Service", "abc-1").is_empty());
    assert!(validate_name("ClusterRole", "system:Admin").is_empty());
    assert_eq!(
        validate_name("Role", ".."),
        vec!["may not be '..'".to_string()]
    );
    assert_eq!(
        validate_name("RoleBinding", "a/b%"),
        vec![
            "may not contain '/'".to_string(),
            "may not contain '%'".to_string()
        ]
    );
    assert_eq!(
        validate_name("Pod", &"a".repeat(254)),
        vec!["must be no more than 253 characters".to_string()]
    );
    assert!(validate_name("Node", "node-1.example.com").is_empty());
    assert!(is_dns1123_label("abc-1"));
    assert!(!is_dns1123_label("abc.1"));
    assert!(!is_dns1123_label(&"a".repeat(64)));
    assert!(!is_dns1123_label("-a"));
    assert!(!is_dns1123_label(""));
    assert!(is_dns1123_subdomain("a.b.c"));
    assert!(!is_dns1123_subdomain("a..b"));
    assert!(!is_dns1123_subdomain("A.b"));
    assert!(!is_dns1123_subdomain(""));
}

#[test]
fn realistic_deployment_admits() {
    let d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system", "creationTimestamp": null,
            "labels": {"k8s-app": "kube-dns"}, "annotations": {"deployment.kubernetes.io/revision": "1"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"k8s-app": "kube-dns"}, "creationTimestamp": null},
                "spec": {
                    "priorityClassName": "system-cluster-critical",
                    "serviceAccountName": "coredns",
                    "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                                    {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchExpressions": [
                            {"key": "k8s-app", "operator": "In", "values": ["kube-dns"]}]},
                            "topologyKey": "kubernetes.io/hostname"}}]}},
                    "containers": [{
                        "name": "coredns", "image": "registry.k8s.io/coredns/coredns:v1.11.1",
                        "args": ["-conf", "/etc/coredns/Corefile"],
                        "resources": {"limits": {"memory": "170Mi"}, "requests": {"cpu": "100m", "memory": "70Mi"}},
                        "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": true}],
                        "ports": [{"containerPort": 53, "name": "dns", "protocol": "UDP"},
                                  {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                                  {"containerPort": 9153, "name": "metrics"}],
                        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                        "securityContext": {"allowPrivilegeEscalation": false,
                            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}, "readOnlyRootFilesystem": true},
                        "livenessProbe": {"httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"},
                            "initialDelaySeconds": 60, "timeoutSeconds": 5, "successThreshold": 1, "failureThreshold": 5},
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}}
                    }],
                    "dnsPolicy": "Default",
                    "volumes": [{"name": "config-volume", "configMap": {"name": "coredns",
                        "items": [{"key": "Corefile", "path": "Corefile"}]}}]
                }
            }
        }
    });
    let out = ok("Deployment", d, true);
    let t = &out["spec"]["template"]["spec"];
    assert_eq!(
        t["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["apiVersion"],
        "v1"
    );
    assert_eq!(t["containers"][0]["ports"][2]["protocol"], "TCP");
    assert_eq!(t["volumes"][0]["configMap"]["defaultMode"], 420);
    assert_eq!(t["serviceAccount"], "coredns");
    assert_eq!(
        out["spec"]["strategy"]["rollingUpdate"],
        json!({"maxUnavailable": 1, "maxSurge": "25%"})
    );
    assert!(out["metadata"].get("creationTimestamp").is_none());
    let mut rs = out.clone();
    rs["kind"] = json!("ReplicaSet");
    rs["spec"].as_object_mut().expect("spec").remove("strategy");
    ok("ReplicaSet", rs, true);
}

//! Pod defaults and validation.

use super::*;

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

//! Secrets, ConfigMaps and the other kinds.

use super::*;

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

use serde_json::{json, Value};

use super::*;
use crate::registry;
use crate::schema;

fn root(group: &str, plural: &str) -> Node<'static> {
    schema::get().root(registry::lookup(group, "v1", plural).expect("resource"))
}

fn nginx_config() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "labels": {"app": "nginx"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]}
            }
        }
    })
}

#[test]
fn the_field_set_of_an_apply_configuration_is_kubernetes_own() {
    let set = to_field_set(&nginx_config(), root("apps", "deployments")).expect("set");
    // What kube-apiserver records for `kubectl apply --server-side` of this manifest
    // (before it strips apiVersion, kind and metadata.name).
    assert_eq!(
        set.to_fields_v1(),
        json!({
            "f:apiVersion": {}, "f:kind": {},
            "f:metadata": {"f:labels": {"f:app": {}}, "f:name": {}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                        ".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                    }}}
                }
            }
        })
    );
}

#[test]
fn sets_and_keyless_items() {
    let pod =
        json!({"metadata": {"finalizers": ["a", "b"]}, "spec": {"containers": [{"image": "x"}]}});
    assert!(to_field_set(&pod, root("", "pods")).is_err());
    let pod = json!({"metadata": {"finalizers": ["a", "b"]}});
    assert_eq!(
        to_field_set(&pod, root("", "pods"))
            .expect("set")
            .to_fields_v1(),
        json!({"f:metadata": {"f:finalizers": {"v:\"a\"": {}, "v:\"b\"": {}}}})
    );
}

#[test]
fn compare_reports_added_modified_and_removed_with_intermediate_nodes() {
    let node = root("", "pods");
    let old = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [{"name": "c", "image": "1"}]}});
    let new = json!({"metadata": {"labels": {"a": "9"}, "annotations": {"x": "y"}}, "spec": {"containers": [{"name": "c", "image": "2"}, {"name": "d"}]}});
    let c = compare(&old, &new, node).expect("compare");
    assert_eq!(
        c.modified.to_fields_v1(),
        json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {"f:image": {}}}}})
    );
    assert_eq!(
        c.added.to_fields_v1(),
        json!({"f:metadata": {"f:annotations": {".": {}, "f:x": {}}},
               "f:spec": {"f:containers": {"k:{\"name\":\"d\"}": {".": {}, "f:name": {}}}}})
    );
    assert_eq!(
        c.removed.to_fields_v1(),
        json!({"f:metadata": {"f:labels": {"f:b": {}}}})
    );
    // Atomic values compare whole.
    let old = json!({"spec": {"selector": {"matchLabels": {"a": "1"}}}});
    let new = json!({"spec": {"selector": {"matchLabels": {"a": "2"}}}});
    let c = compare(&old, &new, root("apps", "deployments")).expect("compare");
    assert_eq!(
        c.modified.to_fields_v1(),
        json!({"f:spec": {"f:selector": {}}})
    );
}

#[test]
fn merge_keeps_live_items_and_takes_the_configuration_values() {
    let node = root("apps", "deployments");
    let live = json!({"spec": {"replicas": 1, "paused": true, "template": {"spec": {"containers": [
        {"name": "a", "image": "1"}, {"name": "b", "image": "2"}
    ]}}}});
    let config = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [
        {"name": "c", "image": "3"}, {"name": "a", "image": "9"}
    ]}}}});
    assert_eq!(
        merge(&live, &config, node).expect("merge"),
        json!({"spec": {"replicas": 3, "paused": true, "template": {"spec": {"containers": [
            {"name": "c", "image": "3"}, {"name": "a", "image": "9"}, {"name": "b", "image": "2"}
        ]}}}})
    );
}

#[test]
fn remove_follows_keys_and_values() {
    let node = root("", "pods");
    let mut pod = json!({"metadata": {"finalizers": ["a", "b"]}, "spec": {"containers": [
        {"name": "a", "image": "1"}, {"name": "b", "image": "2"}
    ]}});
    remove(
        &mut pod,
        node,
        &[
            fieldpath::field("metadata"),
            fieldpath::field("finalizers"),
            fieldpath::value(&json!("a")),
        ],
    );
    remove(
        &mut pod,
        node,
        &[
            fieldpath::field("spec"),
            fieldpath::field("containers"),
            "k:{\"name\":\"b\"}".into(),
        ],
    );
    remove(
        &mut pod,
        node,
        &[
            fieldpath::field("spec"),
            fieldpath::field("containers"),
            "k:{\"name\":\"a\"}".into(),
            fieldpath::field("image"),
        ],
    );
    remove(
        &mut pod,
        node,
        &[fieldpath::field("nope"), fieldpath::field("x")],
    );
    assert_eq!(
        pod,
        json!({"metadata": {"finalizers": ["b"]}, "spec": {"containers": [{"name": "a"}]}})
    );
}

#[test]
fn complete_adds_go_zero_values() {
    let mut d = json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}});
    complete(&mut d, root("apps", "deployments"));
    assert_eq!(d["spec"]["strategy"], json!({}));
    assert_eq!(d["spec"]["selector"], Value::Null);
    assert_eq!(d["status"], json!({}));
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["resources"],
        json!({})
    );
    assert_eq!(d["metadata"]["creationTimestamp"], Value::Null);
}

#[test]
fn undeclared_fields_are_found_with_their_path() {
    let node = root("apps", "deployments");
    assert_eq!(undeclared_field(&nginx_config(), node), None);
    let mut cfg = nginx_config();
    cfg["spec"]["template"]["spec"]["containers"][0]["imag"] = json!("x");
    assert_eq!(
        undeclared_field(&cfg, node).as_deref(),
        Some(".spec.template.spec.containers[0].imag")
    );
    // Map keys (labels) are not fields.
    let cfg = json!({"metadata": {"labels": {"anything": "x"}}});
    assert_eq!(undeclared_field(&cfg, node), None);
}

//! Cases after apimachinery's strategicpatch tests (their `mergingList` is PodSpec.containers
//! here: merge key `name`; `value`/`other` are `image`/`workingDir`), on the real schemas.

use serde_json::{json, Value};

use super::*;
use crate::registry;
use crate::schema;

fn pod(original: Value, patch: Value) -> Result<Value> {
    let pods = registry::lookup("", "v1", "pods").expect("pods");
    strategic_merge_patch(&original, &patch, schema::get().root(pods))
}

fn spec(containers: Value) -> Value {
    json!({"spec": {"containers": containers}})
}

#[test]
fn merges_lists_of_maps_by_merge_key_in_the_set_element_order() {
    let current = spec(json!([
        {"name": "1", "workingDir": "a"},
        {"name": "2", "image": "2", "workingDir": "b"}
    ]));
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "4"}, {"name": "1"}, {"name": "2"}, {"name": "3"}],
        "containers": [{"name": "4", "image": "4"}, {"name": "3", "image": "3"}]
    }});
    assert_eq!(
        pod(current, patch),
        Ok(spec(json!([
            {"name": "4", "image": "4"},
            {"name": "1", "workingDir": "a"},
            {"name": "2", "image": "2", "workingDir": "b"},
            {"name": "3", "image": "3"}
        ])))
    );
}

#[test]
fn set_element_order_keeps_server_only_items_in_place() {
    let current = spec(json!([
        {"name": "1", "workingDir": "a"},
        {"name": "3", "image": "3"},
        {"name": "4", "image": "4"},
        {"name": "2", "image": "2"},
        {"name": "9"}
    ]));
    let patch = json!({"spec": {"$setElementOrder/containers": [
        {"name": "4"}, {"name": "2"}, {"name": "3"}, {"name": "1"}
    ]}});
    assert_eq!(
        pod(current, patch),
        Ok(spec(json!([
            {"name": "4", "image": "4"},
            {"name": "2", "image": "2"},
            {"name": "3", "image": "3"},
            {"name": "1", "workingDir": "a"},
            {"name": "9"}
        ])))
    );
}

#[test]
fn merging_an_existing_item_changes_only_its_fields() {
    let current = spec(json!([
        {"name": "a", "image": "1", "args": ["x"]},
        {"name": "b", "image": "2"}
    ]));
    // args has no merge strategy: replaced, not merged.
    let patch = spec(json!([{"name": "a", "image": "3", "args": ["y"], "workingDir": null}]));
    assert_eq!(
        pod(current, patch),
        Ok(spec(json!([
            {"name": "a", "image": "3", "args": ["y"]},
            {"name": "b", "image": "2"}
        ])))
    );
}

#[test]
fn a_new_item_without_an_order_comes_before_the_server_items() {
    let current = spec(json!([{"name": "a"}, {"name": "b"}]));
    let patch = spec(json!([{"name": "c", "image": "x", "workingDir": null}]));
    assert_eq!(
        pod(current, patch),
        // The new item is taken as sent (nulls too; decoding the object drops them).
        Ok(spec(
            json!([{"name": "c", "image": "x", "workingDir": null}, {"name": "a"}, {"name": "b"}])
        ))
    );
}

#[test]
fn patch_directives_in_lists() {
    let current = spec(json!([{"name": "a"}, {"name": "b"}]));
    assert_eq!(
        pod(
            current.clone(),
            spec(json!([{"name": "a", "$patch": "delete"}]))
        ),
        Ok(spec(json!([{"name": "b"}])))
    );
    assert_eq!(
        pod(
            current.clone(),
            spec(json!([{"name": "c"}, {"$patch": "replace"}]))
        ),
        Ok(spec(json!([{"name": "c"}])))
    );
    assert!(matches!(
        pod(current.clone(), spec(json!([{"$patch": "merge"}]))),
        Err(SmpError::Internal(_))
    ));
    // Deleting requires the merge key.
    assert!(matches!(
        pod(current, spec(json!([{"$patch": "delete"}]))),
        Err(SmpError::Internal(m)) if m.contains("does not contain declared merge key: name")
    ));
}

#[test]
fn patch_directives_in_maps_and_null_deletes() {
    let current = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "name": "p"}});
    assert_eq!(
        pod(
            current.clone(),
            json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}})
        ),
        Ok(json!({"metadata": {"labels": {"c": "3"}, "name": "p"}}))
    );
    assert_eq!(
        pod(
            current.clone(),
            json!({"metadata": {"labels": {"$patch": "delete"}}})
        ),
        Ok(json!({"metadata": {"labels": {}, "name": "p"}}))
    );
    assert_eq!(
        pod(
            current.clone(),
            json!({"metadata": {"labels": {"a": null, "d": "4"}}})
        ),
        Ok(json!({"metadata": {"labels": {"b": "2", "d": "4"}, "name": "p"}}))
    );
    assert!(matches!(
        pod(current, json!({"metadata": {"$patch": "frob"}})),
        Err(SmpError::Internal(_))
    ));
}

#[test]
fn primitive_lists_with_merge_strategy_are_sets() {
    let current = json!({"metadata": {"finalizers": ["a", "b"]}});
    assert_eq!(
        pod(
            current.clone(),
            json!({"metadata": {"finalizers": ["b", "c"]}})
        ),
        Ok(json!({"metadata": {"finalizers": ["a", "b", "c"]}}))
    );
    assert_eq!(
        pod(
            current.clone(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a", "x"]}})
        ),
        Ok(json!({"metadata": {"finalizers": ["b"]}}))
    );
    // Deleting from a list that is not there adds nothing.
    assert_eq!(
        pod(
            json!({"metadata": {}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})
        ),
        Ok(json!({"metadata": {}}))
    );
    assert_eq!(
        pod(
            current.clone(),
            json!({"metadata": {
                "$setElementOrder/finalizers": ["c", "b", "a"], "finalizers": ["c"]
            }})
        ),
        Ok(json!({"metadata": {"finalizers": ["c", "b", "a"]}}))
    );
    assert_eq!(
        pod(
            current,
            json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}})
        ),
        Err(SmpError::BadRequest(BAD_PRIMITIVE_LIST.into()))
    );
}

#[test]
fn integer_merge_keys_and_nested_merging_lists() {
    let current = spec(json!([{"name": "a", "ports": [
        {"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "protocol": "TCP"}
    ], "env": [{"name": "X", "value": "1"}]}]));
    let patch = spec(json!([{"name": "a",
        "ports": [{"containerPort": 80, "name": "http"}],
        "env": [{"name": "Y", "value": "2"}]
    }]));
    assert_eq!(
        pod(current, patch),
        Ok(spec(json!([{"name": "a", "ports": [
            {"containerPort": 80, "protocol": "TCP", "name": "http"},
            {"containerPort": 443, "protocol": "TCP"}
        ], "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}]}])))
    );
}

#[test]
fn retain_keys_clears_unlisted_fields() {
    let deployments = registry::lookup("apps", "v1", "deployments").expect("deployments");
    let root = schema::get().root(deployments);
    let current = json!({"spec": {"strategy": {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}
    }}});
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    assert_eq!(
        strategic_merge_patch(&current, &patch, root),
        Ok(json!({"spec": {"strategy": {"type": "Recreate"}}}))
    );
    let bad = json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}});
    assert_eq!(
        strategic_merge_patch(&current, &bad, root),
        Err(SmpError::BadRequest(BAD_RETAIN_KEYS.into()))
    );
    // Volumes are "merge,retainKeys": merged by name.
    let pods = registry::lookup("", "v1", "pods").expect("pods");
    let current = json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}});
    let patch = json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/x"}}]}});
    assert_eq!(
        strategic_merge_patch(&current, &patch, schema::get().root(pods)),
        Ok(json!({"spec": {"volumes": [{"name": "v", "hostPath": {"path": "/x"}}]}}))
    );
}

#[test]
fn unknown_fields_merge_as_maps_and_replace_as_lists() {
    let current = json!({"x": {"a": 1, "l": [1, 2]}});
    assert_eq!(
        pod(current, json!({"x": {"b": 2, "l": [3]}})),
        Ok(json!({"x": {"a": 1, "b": 2, "l": [3]}}))
    );
}

#[test]
fn malformed_patches_are_refused_as_kubernetes_does() {
    let current = spec(json!([{"name": "a"}]));
    assert_eq!(
        pod(spec(json!([])), spec(json!([[1]]))),
        Err(SmpError::Invalid(NO_LIST_OF_LISTS.into()))
    );
    assert!(matches!(
        pod(current.clone(), spec(json!([[1]]))),
        Err(SmpError::Internal(m)) if m.contains("list element types are not identical")
    ));
    assert_eq!(
        pod(current.clone(), json!({"spec": {"$setElementOrder": []}})),
        Err(SmpError::BadRequest(BAD_SET_ELEMENT_ORDER.into()))
    );
    assert!(matches!(
        pod(current.clone(), spec(json!([{"image": "x"}]))),
        Err(SmpError::Internal(m)) if m.contains("does not contain declared merge key")
    ));
    // The patch list must follow $setElementOrder's relative order.
    assert!(matches!(
        pod(current, json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "b"}, {"name": "a"}]
        }})),
        Err(SmpError::Internal(m)) if m.contains("doesn't match $setElementOrder list")
    ));
    assert!(matches!(
        pod(json!({}), json!([1])),
        Err(SmpError::BadRequest(_))
    ));
}

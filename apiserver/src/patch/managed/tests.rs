use serde_json::{json, Value};

use super::*;
use crate::patch::testutil::{deployment, deployments, entry, writer};

#[test]
fn a_create_records_every_field_it_set() {
    let mut obj = deployment(1, json!({"app": "d"}));
    record_update(
        &json!({}),
        &mut obj,
        deployments(),
        &writer("kubectl-create", "2026-01-01T00:00:00Z"),
    );
    let e = entry(&obj, "kubectl-create").expect("entry");
    assert_eq!(e["operation"], "Update");
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert_eq!(e["time"], "2026-01-01T00:00:00Z");
    // As kube-apiserver writes it: labels is a new map ("."), spec and template exist in the
    // zero Deployment (no "."), every container gets "resources: {}".
    assert_eq!(
        e["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {
                        ".": {}, "f:image": {}, "f:name": {}, "f:resources": {}
                    }}}
                }
            }
        })
    );
}

#[test]
fn updates_take_ownership_of_what_they_change() {
    let mut obj = deployment(1, json!({"app": "d", "team": "x"}));
    record_update(&json!({}), &mut obj, deployments(), &writer("a", "t1"));
    let mut new = obj.clone();
    new["metadata"]["labels"]["team"] = json!("y");
    new["spec"]["replicas"] = json!(1);
    record_update(&obj, &mut new, deployments(), &writer("b", "t2"));
    let a = entry(&new, "a").expect("a");
    let b = entry(&new, "b").expect("b");
    assert!(a["fieldsV1"]["f:metadata"]["f:labels"]
        .get("f:team")
        .is_none());
    assert_eq!(
        b["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:team": {}}}})
    );
    // A write that changes nothing touches no entry.
    let mut same = new.clone();
    record_update(&new, &mut same, deployments(), &writer("c", "t3"));
    assert!(entry(&same, "c").is_none());
    assert_eq!(entry(&same, "b").expect("b")["time"], "t2");
    // Entries are sorted by operation, then time.
    let names: Vec<&Value> = same["metadata"]["managedFields"]
        .as_array()
        .expect("list")
        .iter()
        .map(|e| &e["manager"])
        .collect();
    assert_eq!(names, vec!["a", "b"]);
}

#[test]
fn client_written_managed_fields_are_kept_and_reset_with_an_empty_entry() {
    let mut live = deployment(1, json!({"app": "d"}));
    record_update(&json!({}), &mut live, deployments(), &writer("a", "t1"));
    let mut reset = live.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    record_update(&live, &mut reset, deployments(), &writer("b", "t2"));
    assert!(reset["metadata"].get("managedFields").is_none());
    // Garbage from a client falls back to the live object's entries.
    let mut bad = live.clone();
    bad["metadata"]["managedFields"] = json!([{"operation": "Frob"}]);
    record_update(&live, &mut bad, deployments(), &writer("b", "t2"));
    assert_eq!(
        bad["metadata"]["managedFields"],
        live["metadata"]["managedFields"]
    );
}

#[test]
fn at_most_ten_update_managers_are_kept() {
    let mut obj = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {}}});
    for i in 0..12 {
        let mut next = obj.clone();
        next["metadata"]["labels"][format!("l{i}")] = json!("v");
        record_update(
            &obj,
            &mut next,
            deployments(),
            &writer(&format!("m{i:02}"), &format!("t{i:02}")),
        );
        obj = next;
    }
    let list = obj["metadata"]["managedFields"].as_array().expect("list");
    assert_eq!(list.len(), 10);
    let ancient = entry(&obj, "ancient-changes").expect("ancient");
    assert!(ancient["fieldsV1"]["f:metadata"]["f:labels"]
        .get("f:l0")
        .is_some());
}

use serde_json::{json, Value};

use super::*;
use crate::registry::{self, RESOURCES};

fn prop(def: &str, field: &str) -> &'static Value {
    get()
        .definition(def)
        .and_then(|d| d.pointer(&format!("/properties/{field}")))
        .unwrap_or_else(|| panic!("{def}.{field} is missing"))
}

fn ext(def: &str, field: &str, key: &str) -> Option<&'static Value> {
    prop(def, field).get(key)
}

#[test]
fn every_extension_row_names_a_generated_property() {
    assert!(get().unmatched.is_empty(), "{:?}", get().unmatched);
}

#[test]
fn every_reference_resolves() {
    fn walk(v: &Value, missing: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    if get().resolve(r).is_none() {
                        missing.push(r.to_string());
                    }
                }
                m.values().for_each(|v| walk(v, missing));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, missing)),
            _ => {}
        }
    }
    let mut missing = Vec::new();
    for d in get().definitions().values() {
        walk(d, &mut missing);
    }
    assert!(missing.is_empty(), "{missing:?}");
}

#[test]
fn every_served_kind_has_a_root_with_its_group_version_kind() {
    for res in RESOURCES {
        let name = Schema::root_name(res);
        let def = get()
            .definition(&name)
            .unwrap_or_else(|| panic!("no definition {name}"));
        assert_eq!(
            def["x-kubernetes-group-version-kind"],
            json!([{ "group": res.group, "kind": res.kind, "version": res.version }]),
            "{name}"
        );
        // Upstream does not require metadata on top-level kinds (k8s-openapi does).
        let required = def.get("required").and_then(Value::as_array);
        assert!(
            !required.is_some_and(|r| r.contains(&json!("metadata"))),
            "{name} requires metadata"
        );
        let list = get().definition(&Schema::list_name(res)).expect("list");
        assert_eq!(
            list["x-kubernetes-group-version-kind"][0]["kind"],
            json!(res.list_kind())
        );
        assert_eq!(get().root(res).shape(), Shape::Struct);
    }
    let scale = get()
        .definition("io.k8s.api.autoscaling.v1.Scale")
        .expect("scale");
    assert_eq!(
        scale["x-kubernetes-group-version-kind"],
        json!([{ "group": "autoscaling", "kind": "Scale", "version": "v1" }])
    );
    let deploy = registry::lookup("apps", "v1", "deployments").expect("deployments");
    assert_eq!(Schema::root_name(deploy), "io.k8s.api.apps.v1.Deployment");
}

#[test]
fn extensions_match_the_go_struct_tags() {
    let pod_spec = "io.k8s.api.core.v1.PodSpec";
    assert_eq!(
        ext(pod_spec, "containers", "x-kubernetes-patch-strategy"),
        Some(&json!("merge"))
    );
    assert_eq!(
        ext(pod_spec, "containers", "x-kubernetes-patch-merge-key"),
        Some(&json!("name"))
    );
    assert_eq!(
        ext(pod_spec, "volumes", "x-kubernetes-patch-strategy"),
        Some(&json!("merge,retainKeys"))
    );
    let container = "io.k8s.api.core.v1.Container";
    assert_eq!(
        ext(container, "ports", "x-kubernetes-patch-merge-key"),
        Some(&json!("containerPort"))
    );
    assert_eq!(
        ext(container, "ports", "x-kubernetes-list-map-keys"),
        Some(&json!(["containerPort", "protocol"]))
    );
    assert_eq!(
        ext(container, "env", "x-kubernetes-patch-merge-key"),
        Some(&json!("name"))
    );
    assert_eq!(
        ext(container, "volumeMounts", "x-kubernetes-patch-merge-key"),
        Some(&json!("mountPath"))
    );
    assert_eq!(
        ext(container, "command", "x-kubernetes-list-type"),
        Some(&json!("atomic"))
    );
    let meta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
    assert_eq!(
        ext(meta, "ownerReferences", "x-kubernetes-patch-merge-key"),
        Some(&json!("uid"))
    );
    assert_eq!(
        ext(meta, "finalizers", "x-kubernetes-patch-strategy"),
        Some(&json!("merge"))
    );
    assert_eq!(
        ext(meta, "finalizers", "x-kubernetes-list-type"),
        Some(&json!("set"))
    );
    assert_eq!(
        ext(
            "io.k8s.api.core.v1.PodStatus",
            "conditions",
            "x-kubernetes-patch-merge-key"
        ),
        Some(&json!("type"))
    );
    assert_eq!(
        ext(
            "io.k8s.api.apps.v1.DeploymentSpec",
            "strategy",
            "x-kubernetes-patch-strategy"
        ),
        Some(&json!("retainKeys"))
    );
    assert_eq!(
        ext(
            "io.k8s.api.core.v1.ServiceSpec",
            "ports",
            "x-kubernetes-patch-merge-key"
        ),
        Some(&json!("port"))
    );
    assert_eq!(
        ext(pod_spec, "nodeSelector", "x-kubernetes-map-type"),
        Some(&json!("atomic"))
    );
    // Embedded structs are flattened: EphemeralContainer carries EphemeralContainerCommon's.
    assert_eq!(
        ext(
            "io.k8s.api.core.v1.EphemeralContainer",
            "env",
            "x-kubernetes-patch-merge-key"
        ),
        Some(&json!("name"))
    );
    assert_eq!(
        get()
            .definition("io.k8s.api.core.v1.LocalObjectReference")
            .expect("ref")["x-kubernetes-map-type"],
        json!("atomic")
    );
    assert_eq!(
        ext("io.k8s.api.core.v1.ContainerPort", "protocol", "default"),
        Some(&json!("TCP"))
    );
}

#[test]
fn navigation_follows_fields_items_and_values() {
    let pods = registry::lookup("", "v1", "pods").expect("pods");
    let root = get().root(pods);
    let containers = root.field("spec").field("containers");
    assert_eq!(containers.shape(), Shape::List);
    assert_eq!(containers.list_type(), ListType::Map(vec!["name"]));
    let ports = containers.items().field("ports");
    assert_eq!(
        ports.list_type(),
        ListType::Map(vec!["containerPort", "protocol"])
    );
    assert_eq!(
        ports.items().field("protocol").default_value(),
        Some(&json!("TCP"))
    );
    let labels = root.field("metadata").field("labels");
    assert_eq!(labels.shape(), Shape::Map);
    assert_eq!(labels.values().shape(), Shape::Scalar);
    assert_eq!(
        root.field("metadata").field("finalizers").list_type(),
        ListType::Set
    );
    assert_eq!(root.field("nope").shape(), Shape::Untyped);
    assert!(root
        .field("spec")
        .field("imagePullSecrets")
        .items()
        .map_atomic());
    let selector = get()
        .root(registry::lookup("apps", "v1", "deployments").expect("deployments"))
        .field("spec")
        .field("selector");
    assert!(selector.map_atomic());
    assert_eq!(
        selector.definition_name(),
        Some("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector")
    );
    let port = root
        .field("spec")
        .field("containers")
        .items()
        .field("ports")
        .items();
    assert_eq!(port.field("containerPort").shape(), Shape::Scalar);
}

#[test]
fn the_v2_form_uses_definitions_references_beside_their_siblings() {
    let v2 = get().definitions_v2();
    let text = serde_json::to_string(&v2).expect("encode");
    assert!(!text.contains("#/components/schemas/"));
    let spec = &v2["io.k8s.api.core.v1.Pod"]["properties"]["spec"];
    assert_eq!(
        spec["$ref"],
        json!("#/definitions/io.k8s.api.core.v1.PodSpec")
    );
    assert!(spec.get("allOf").is_none());
    assert!(spec["description"].is_string());
    assert_eq!(
        v2["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]["items"]["$ref"],
        json!("#/definitions/io.k8s.api.core.v1.Container")
    );
    assert_eq!(v2.len(), get().definitions().len());
}

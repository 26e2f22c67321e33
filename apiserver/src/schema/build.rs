//! Building the definitions map: every served kind's k8s-openapi schema (and everything it
//! references) through schemars with OpenAPI v3 settings, then Kubernetes' own additions.
//!
//! k8s-openapi's `JsonSchema` impls carry the descriptions and types but not the OpenAPI
//! extensions that kube-apiserver publishes from the Go struct tags and markers; those come
//! from [`super::extensions`]. List kinds have no `JsonSchema` impl, so their definitions are
//! written here in the shape kube-apiserver publishes (`items` required, `ListMeta` metadata).

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::authorization::v1::{
    LocalSubjectAccessReview, SelfSubjectAccessReview, SelfSubjectRulesReview, SubjectAccessReview,
};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    Binding, ConfigMap, Endpoints, Event, Namespace, Node, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    APIGroup, APIGroupList, APIResourceList, APIVersions, DeleteOptions, ListMeta, Status,
    WatchEvent,
};

use super::extensions::{FIELD_EXTENSIONS, KEY_DEFAULTS, TYPE_EXTENSIONS};
use crate::registry::{Resource, RESOURCES};

/// Where v3 documents keep their schemas; every `$ref` in the map points here.
pub const REF_PREFIX: &str = "#/components/schemas/";

/// Adds the schema of a served kind (and its references) to the generator. Every row of the
/// resource table must have a case here; the schema tests check that.
fn add_kind(gen: &mut SchemaGenerator, group: &str, kind: &str) -> bool {
    fn add<T: JsonSchema>(gen: &mut SchemaGenerator) -> bool {
        gen.subschema_for::<T>();
        true
    }
    match (group, kind) {
        ("", "Namespace") => add::<Namespace>(gen),
        ("", "Node") => add::<Node>(gen),
        ("", "Pod") => add::<Pod>(gen),
        ("", "Service") => add::<Service>(gen),
        ("", "Endpoints") => add::<Endpoints>(gen),
        ("", "ConfigMap") => add::<ConfigMap>(gen),
        ("", "Secret") => add::<Secret>(gen),
        ("", "ServiceAccount") => add::<ServiceAccount>(gen),
        ("", "Event") => add::<Event>(gen),
        ("apps", "Deployment") => add::<Deployment>(gen),
        ("apps", "ReplicaSet") => add::<ReplicaSet>(gen),
        ("coordination.k8s.io", "Lease") => add::<Lease>(gen),
        ("rbac.authorization.k8s.io", "Role") => add::<Role>(gen),
        ("rbac.authorization.k8s.io", "RoleBinding") => add::<RoleBinding>(gen),
        ("rbac.authorization.k8s.io", "ClusterRole") => add::<ClusterRole>(gen),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => add::<ClusterRoleBinding>(gen),
        _ => false,
    }
}

/// The kinds served besides the resource table's rows: subresource bodies (pods/binding,
/// <x>/scale), the access reviews, and the meta types every document refers to.
fn add_others(gen: &mut SchemaGenerator) {
    gen.subschema_for::<Binding>();
    gen.subschema_for::<Scale>();
    gen.subschema_for::<SelfSubjectAccessReview>();
    gen.subschema_for::<SubjectAccessReview>();
    gen.subschema_for::<LocalSubjectAccessReview>();
    gen.subschema_for::<SelfSubjectRulesReview>();
    gen.subschema_for::<Status>();
    gen.subschema_for::<DeleteOptions>();
    gen.subschema_for::<WatchEvent<Pod>>();
    gen.subschema_for::<ListMeta>();
    gen.subschema_for::<APIResourceList>();
    gen.subschema_for::<APIGroupList>();
    gen.subschema_for::<APIGroup>();
    gen.subschema_for::<APIVersions>();
}

/// The definition name of a built-in kind, as kube-apiserver names it:
/// `io.k8s.api.<first label of the group, "core" for "">.<version>.<Kind>`.
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let package = if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    };
    format!("io.k8s.api.{package}.{version}.{kind}")
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind, "version": version })
}

/// The `<Kind>List` definition kube-apiserver publishes for a resource.
fn list_definition(res: &Resource) -> Value {
    let item = definition_name(res.group, res.version, res.kind);
    json!({
        "description": format!("{}List is a list of {}.", res.kind, res.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
                "type": "string",
            },
            "items": {
                "description": format!("List of {}.", res.plural),
                "type": "array",
                "items": { "$ref": format!("{REF_PREFIX}{item}") },
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                "type": "string",
            },
            "metadata": {
                "allOf": [{ "$ref": format!("{REF_PREFIX}io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta") }],
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            },
        },
        "x-kubernetes-group-version-kind": [gvk(res.group, res.version, &res.list_kind())],
    })
}

/// What building found wrong with the extension table: rows naming a definition or field
/// the generated schemas lack (the schema tests require none).
#[derive(Debug, Default)]
pub struct Unmatched {
    pub rows: Vec<String>,
}

/// Builds the definitions map with every extension injected.
pub fn build() -> (Map<String, Value>, Unmatched) {
    let mut gen = SchemaSettings::openapi3().into_generator();
    for res in RESOURCES {
        add_kind(&mut gen, res.group, res.kind);
    }
    add_others(&mut gen);
    let mut defs = gen.take_definitions(true);
    for res in RESOURCES {
        let name = definition_name(res.group, res.version, &res.list_kind());
        defs.insert(name, list_definition(res));
    }
    let mut unmatched = Unmatched::default();
    for row in FIELD_EXTENSIONS {
        let prop = defs
            .get_mut(row.definition)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(row.field))
            .and_then(Value::as_object_mut);
        let Some(prop) = prop else {
            unmatched
                .rows
                .push(format!("{}.{}", row.definition, row.field));
            continue;
        };
        row.write(prop);
    }
    for (definition, field, default) in KEY_DEFAULTS {
        let prop = defs
            .get_mut(*definition)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(*field))
            .and_then(Value::as_object_mut);
        match (prop, serde_json::from_str::<Value>(default)) {
            (Some(prop), Ok(v)) => {
                prop.insert("default".into(), v);
            }
            _ => unmatched.rows.push(format!("{definition}.{field} default")),
        }
    }
    for (definition, key, value) in TYPE_EXTENSIONS {
        match defs.get_mut(*definition).and_then(Value::as_object_mut) {
            Some(d) => {
                d.insert((*key).to_string(), json!(value));
            }
            None => unmatched.rows.push((*definition).to_string()),
        }
    }
    // Roots: the group-version-kind of each served kind; `metadata` is not required upstream.
    let mut roots: Vec<(String, Value)> = RESOURCES
        .iter()
        .map(|r| {
            (
                definition_name(r.group, r.version, r.kind),
                json!([gvk(r.group, r.version, r.kind)]),
            )
        })
        .collect();
    roots.push((
        "io.k8s.api.core.v1.Binding".into(),
        json!([gvk("", "v1", "Binding")]),
    ));
    roots.push((
        "io.k8s.api.autoscaling.v1.Scale".into(),
        json!([gvk("autoscaling", "v1", "Scale")]),
    ));
    for kind in [
        "SelfSubjectAccessReview",
        "SubjectAccessReview",
        "LocalSubjectAccessReview",
        "SelfSubjectRulesReview",
    ] {
        roots.push((
            definition_name("authorization.k8s.io", "v1", kind),
            json!([gvk("authorization.k8s.io", "v1", kind)]),
        ));
    }
    // Options and events are shared by every served group version, as upstream lists them.
    let mut versions: Vec<(&str, &str)> = RESOURCES.iter().map(|r| (r.group, r.version)).collect();
    versions.push(("autoscaling", "v1"));
    versions.sort_unstable();
    versions.dedup();
    for kind in ["DeleteOptions", "WatchEvent"] {
        let list: Vec<Value> = versions.iter().map(|(g, v)| gvk(g, v, kind)).collect();
        roots.push((
            format!("io.k8s.apimachinery.pkg.apis.meta.v1.{kind}"),
            Value::Array(list),
        ));
    }
    roots.push((
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status".into(),
        json!([gvk("", "v1", "Status")]),
    ));
    for (name, kinds) in roots {
        let Some(d) = defs.get_mut(&name).and_then(Value::as_object_mut) else {
            unmatched.rows.push(name);
            continue;
        };
        d.insert("x-kubernetes-group-version-kind".into(), kinds);
        let emptied = match d.get_mut("required").and_then(Value::as_array_mut) {
            Some(req) => {
                req.retain(|f| f != "metadata");
                req.is_empty()
            }
            None => false,
        };
        if emptied {
            d.remove("required");
        }
    }
    // IntOrString as kube-apiserver publishes it (kubectl explain prints the format).
    if let Some(d) = defs
        .get_mut("io.k8s.apimachinery.pkg.util.intstr.IntOrString")
        .and_then(Value::as_object_mut)
    {
        d.insert("type".into(), json!("string"));
        d.insert("format".into(), json!("int-or-string"));
    }
    (defs, unmatched)
}

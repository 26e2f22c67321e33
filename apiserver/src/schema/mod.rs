//! The schema type graph of every kind the apiserver serves.
//!
//! Built once (lazily, it is large) from k8s-openapi's schemas with Kubernetes' OpenAPI
//! extensions added ([`extensions`]): the same definitions kube-apiserver publishes, named
//! like "io.k8s.api.core.v1.PodSpec", with OpenAPI v3 references
//! (`#/components/schemas/<name>`). Two users:
//! - the OpenAPI documents (/openapi/v2, /openapi/v3): [`Schema::definitions`] and
//!   [`Schema::root_name`];
//! - the patch engine: strategic merge patch and server-side apply walk an object and its
//!   schema together with [`Node`] (field, list item and map value navigation, and the
//!   patch/list/map metadata read from the extensions).

mod build;
pub mod extensions;
mod node;
pub mod zero;

use std::sync::LazyLock;

use serde_json::{Map, Value};

use crate::registry::Resource;

pub use build::{definition_name, REF_PREFIX};
pub use node::{ListType, Node, Shape};

/// The definitions and what building them found amiss.
pub struct Schema {
    definitions: Map<String, Value>,
    /// Extension rows that named no generated definition or field (empty; tested).
    pub unmatched: Vec<String>,
    zero: std::collections::HashMap<&'static str, Vec<(&'static str, Value)>>,
}

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    let (definitions, unmatched) = build::build();
    let mut zero: std::collections::HashMap<&'static str, Vec<(&'static str, Value)>> =
        std::collections::HashMap::new();
    for (definition, field, value) in zero::ZERO_FIELDS {
        let value = serde_json::from_str(value).expect("the zero-value table holds JSON");
        zero.entry(*definition).or_default().push((*field, value));
    }
    Schema {
        definitions,
        unmatched: unmatched.rows,
        zero,
    }
});

/// The schema graph (built on first use).
pub fn get() -> &'static Schema {
    &SCHEMA
}

impl Schema {
    /// Every definition by name, extensions injected. `$ref`s are OpenAPI v3 style
    /// (`#/components/schemas/<name>`); a v2 document rewrites them to `#/definitions/`.
    pub fn definitions(&self) -> &Map<String, Value> {
        &self.definitions
    }

    /// The definitions in OpenAPI v2 form (for /openapi/v2): `#/definitions/<name>`
    /// references, and a reference with sibling keywords written as `$ref` beside them
    /// (as kube-apiserver's v2 document does) rather than v3's one-element `allOf`.
    pub fn definitions_v2(&self) -> Map<String, Value> {
        self.definitions
            .iter()
            .map(|(k, v)| (k.clone(), to_v2(v)))
            .collect()
    }

    /// One definition by name.
    pub fn definition(&self, name: &str) -> Option<&Value> {
        self.definitions.get(name)
    }

    /// The root definition name of a resource's kind, e.g. "io.k8s.api.apps.v1.Deployment".
    pub fn root_name(res: &Resource) -> String {
        definition_name(res.group, res.version, res.kind)
    }

    /// The root definition name of a resource's list kind, e.g. "io.k8s.api.core.v1.PodList".
    pub fn list_name(res: &Resource) -> String {
        definition_name(res.group, res.version, &res.list_kind())
    }

    /// The root node of a resource's kind.
    pub fn root(&'static self, res: &Resource) -> Node<'static> {
        self.node(&Self::root_name(res))
    }

    /// The node of a named definition (untyped when there is no such definition).
    pub fn node(&'static self, name: &str) -> Node<'static> {
        match self.definitions.get_key_value(name) {
            Some((name, def)) => Node::named(self, name, def),
            None => Node::untyped(self),
        }
    }

    /// Resolves a `$ref` to its definition.
    #[cfg(test)]
    fn resolve(&self, reference: &str) -> Option<&Value> {
        let name = reference.strip_prefix(REF_PREFIX)?;
        self.definitions.get(name)
    }

    fn resolve_named<'a>(&'a self, reference: &str) -> Option<(&'a str, &'a Value)> {
        let name = reference.strip_prefix(REF_PREFIX)?;
        self.definitions
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
    }

    /// The Go zero-value fields of a definition (see [`zero`]).
    pub fn zero_fields(&self, definition: &str) -> &[(&'static str, Value)] {
        self.zero
            .get(definition)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// Rewrites one schema into OpenAPI v2 form (see [`Schema::definitions_v2`]).
fn to_v2(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, child) in m {
                match (k.as_str(), child) {
                    ("$ref", Value::String(r)) => {
                        let name = r.strip_prefix(REF_PREFIX).unwrap_or(r);
                        out.insert(k.clone(), Value::String(format!("#/definitions/{name}")));
                    }
                    ("allOf", Value::Array(items))
                        if items.len() == 1
                            && items[0]
                                .as_object()
                                .is_some_and(|o| o.len() == 1 && o.contains_key("$ref")) =>
                    {
                        if let Value::Object(r) = to_v2(&items[0]) {
                            out.extend(r);
                        }
                    }
                    _ => {
                        out.insert(k.clone(), to_v2(child));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(to_v2).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests;

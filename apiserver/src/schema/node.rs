//! Navigation of the type graph: a [`Node`] is one position in a kind's schema (a property,
//! a list item, a map value), with the metadata the patch engine reads there.
//!
//! Extensions sit where kube-apiserver puts them: patch strategy, merge key and list type on
//! the property (the "site"), `x-kubernetes-map-type` either on the property or on the
//! referenced definition (the "target", e.g. LocalObjectReference is atomic everywhere).
//! Anything the schema does not describe is [`Shape::Untyped`]: maps of it merge key by key
//! and lists of it are atomic, as structured-merge-diff treats deduced types.

use serde_json::Value;

use super::Schema;

/// What kind of value a node holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// An object with declared properties.
    Struct,
    /// An object with arbitrary keys (`additionalProperties`), e.g. labels.
    Map,
    List,
    Scalar,
    /// Not described (unknown fields, RawExtension, FieldsV1).
    Untyped,
}

/// How a list merges in server-side apply (`x-kubernetes-list-type`, or, where a list has
/// none, derived from its patch strategy as Kubernetes' schema converter does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListType<'s> {
    Atomic,
    /// A set of scalars, identified by value.
    Set,
    /// A map of objects, identified by these key fields.
    Map(Vec<&'s str>),
}

/// One position in the type graph.
#[derive(Clone, Copy)]
pub struct Node<'s> {
    schema: &'s Schema,
    /// The schema at this position (a property or `items`), where extensions are set.
    site: Option<&'s Value>,
    /// The schema after following `$ref`.
    target: Option<&'s Value>,
    /// The definition name of the target, when it is a named type.
    name: Option<&'s str>,
}

impl std::fmt::Debug for Node<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("shape", &self.shape())
            .field("definition", &self.definition_name())
            .finish()
    }
}

fn reference(v: &Value) -> Option<&str> {
    if let Some(r) = v.get("$ref").and_then(Value::as_str) {
        return Some(r);
    }
    match v.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
        Some([one]) => one.get("$ref").and_then(Value::as_str),
        _ => None,
    }
}

impl<'s> Node<'s> {
    pub(super) fn new(schema: &'s Schema, site: Option<&'s Value>, v: &'s Value) -> Node<'s> {
        let (name, target) = match reference(v).map(|r| schema.resolve_named(r)) {
            Some(Some((name, def))) => (Some(name), Some(def)),
            Some(None) => (None, None),
            None => (None, Some(v)),
        };
        Node {
            schema,
            site: site.or(Some(v)),
            target,
            name,
        }
    }

    pub(super) fn named(schema: &'s Schema, name: &'s str, def: &'s Value) -> Node<'s> {
        Node {
            schema,
            site: Some(def),
            target: Some(def),
            name: Some(name),
        }
    }

    pub(super) fn untyped(schema: &'s Schema) -> Node<'s> {
        Node {
            schema,
            site: None,
            target: None,
            name: None,
        }
    }

    fn at(&self, v: Option<&'s Value>) -> Node<'s> {
        match v {
            Some(v) => Node::new(self.schema, Some(v), v),
            None => Node::untyped(self.schema),
        }
    }

    /// The name of the definition this node refers to, if it is a named type.
    pub fn definition_name(&self) -> Option<&'s str> {
        self.name
    }

    /// The Go zero-value fields of this node's type (none for unnamed types).
    pub fn zero_fields(&self) -> &'s [(&'static str, Value)] {
        match self.name {
            Some(n) => self.schema.zero_fields(n),
            None => &[],
        }
    }

    /// An extension (or other keyword), looked up on the site first, then the target.
    pub fn extension(&self, key: &str) -> Option<&'s Value> {
        self.site
            .and_then(|s| s.get(key))
            .or_else(|| self.target.and_then(|t| t.get(key)))
    }

    pub fn shape(&self) -> Shape {
        let Some(t) = self.target else {
            return Shape::Untyped;
        };
        match t.get("type").and_then(Value::as_str) {
            Some("array") => Shape::List,
            Some("object") if t.get("properties").is_some() => Shape::Struct,
            Some("object") if t.get("additionalProperties").is_some() => Shape::Map,
            Some("object") => Shape::Untyped,
            Some("string" | "integer" | "number" | "boolean") => Shape::Scalar,
            _ if t.get("x-kubernetes-int-or-string").is_some() => Shape::Scalar,
            _ if t.get("properties").is_some() => Shape::Struct,
            _ => Shape::Untyped,
        }
    }

    /// Whether the struct declares this property.
    pub fn has_field(&self, name: &str) -> bool {
        self.target
            .and_then(|t| t.get("properties"))
            .and_then(|p| p.get(name))
            .is_some()
    }

    /// The node of a property (struct), of a value (map), or untyped.
    pub fn field(&self, name: &str) -> Node<'s> {
        match self.shape() {
            Shape::Struct => self.at(self
                .target
                .and_then(|t| t.get("properties"))
                .and_then(|p| p.get(name))),
            Shape::Map => self.values(),
            _ => Node::untyped(self.schema),
        }
    }

    /// The node of a list's items.
    pub fn items(&self) -> Node<'s> {
        self.at(self.target.and_then(|t| t.get("items")))
    }

    /// The node of a map's values.
    pub fn values(&self) -> Node<'s> {
        self.at(self
            .target
            .and_then(|t| t.get("additionalProperties"))
            .filter(|v| v.is_object()))
    }

    /// `x-kubernetes-patch-strategy`, split at commas ("merge,retainKeys").
    pub fn patch_strategies(&self) -> Vec<&'s str> {
        self.extension("x-kubernetes-patch-strategy")
            .and_then(Value::as_str)
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `x-kubernetes-patch-merge-key`.
    pub fn merge_key(&self) -> Option<&'s str> {
        self.extension("x-kubernetes-patch-merge-key")
            .and_then(Value::as_str)
    }

    /// How the list merges in server-side apply.
    pub fn list_type(&self) -> ListType<'s> {
        match self
            .extension("x-kubernetes-list-type")
            .and_then(Value::as_str)
        {
            Some("set") => return ListType::Set,
            Some("map") => {
                let keys: Vec<&'s str> = self
                    .extension("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                return ListType::Map(keys);
            }
            Some(_) => return ListType::Atomic,
            None => {}
        }
        if self.patch_strategies().contains(&"merge") {
            return match self.merge_key() {
                Some(k) => ListType::Map(vec![k]),
                None => ListType::Set,
            };
        }
        ListType::Atomic
    }

    /// Whether a struct or map is atomic (`x-kubernetes-map-type: atomic`).
    pub fn map_atomic(&self) -> bool {
        self.extension("x-kubernetes-map-type")
            .and_then(Value::as_str)
            == Some("atomic")
    }

    /// The published default of this node (list-map keys such as ContainerPort.protocol).
    pub fn default_value(&self) -> Option<&'s Value> {
        self.extension("default")
    }
}

//! Field paths and sets of them, in structured-merge-diff's model and Kubernetes' FieldsV1
//! wire format.
//!
//! A path element is kept in its serialized form, which is also its FieldsV1 key:
//! `f:<field>` (a struct field or map key), `k:{"name":"x"}` (an associative list item,
//! its key fields as a JSON object with sorted keys), `v:<json>` (a set item) and `i:<n>`
//! (a list index). A [`Set`] is a tree: at each level, the elements that are members
//! themselves and the subtrees below; in FieldsV1 a member with children carries `".": {}`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// A set of field paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Set {
    members: BTreeSet<String>,
    children: BTreeMap<String, Set>,
}

/// The element of a struct field or map key.
pub fn field(name: &str) -> String {
    format!("f:{name}")
}

/// The element of an associative list item with these key fields.
pub fn key(fields: &Map<String, Value>) -> String {
    // serde_json's Map is sorted by key, as Kubernetes writes key fields.
    format!("k:{}", Value::Object(fields.clone()))
}

/// The element of a set item.
pub fn value(v: &Value) -> String {
    format!("v:{v}")
}

impl Set {
    pub fn new() -> Set {
        Set::default()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(Set::is_empty)
    }

    /// Adds a path (a non-empty list of elements).
    pub fn insert(&mut self, path: &[String]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub fn contains(&self, path: &[String]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.contains(rest)),
        }
    }

    /// Whether the set holds a path strictly below `path`.
    pub fn has_descendant(&self, path: &[String]) -> bool {
        match path {
            [] => !self.is_empty(),
            [first, rest @ ..] => self
                .children
                .get(first)
                .is_some_and(|c| c.has_descendant(rest)),
        }
    }

    pub fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (k, c) in &other.children {
            let merged = match out.children.get(k) {
                Some(mine) => mine.union(c),
                None => c.clone(),
            };
            out.children.insert(k.clone(), merged);
        }
        out
    }

    pub fn difference(&self, other: &Set) -> Set {
        let mut out = Set {
            members: self.members.difference(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            let d = match other.children.get(k) {
                Some(o) => c.difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    pub fn intersection(&self, other: &Set) -> Set {
        let mut out = Set {
            members: self.members.intersection(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            if let Some(o) = other.children.get(k) {
                let i = c.intersection(o);
                if !i.is_empty() {
                    out.children.insert(k.clone(), i);
                }
            }
        }
        out
    }

    /// Removes every path that starts with one of these top-level elements.
    pub fn without_top_level(&self, elements: &[String]) -> Set {
        let mut out = self.clone();
        for e in elements {
            out.members.remove(e);
            out.children.remove(e);
        }
        out
    }

    /// Keeps only the paths that start with one of these top-level elements.
    pub fn only_top_level(&self, elements: &[String]) -> Set {
        let mut out = Set::new();
        for e in elements {
            if self.members.contains(e) {
                out.members.insert(e.clone());
            }
            if let Some(c) = self.children.get(e) {
                out.children.insert(e.clone(), c.clone());
            }
        }
        out
    }

    /// Every member path, in order.
    pub fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        let keys: BTreeSet<&String> = self.members.iter().chain(self.children.keys()).collect();
        for k in keys {
            prefix.push(k.clone());
            if self.members.contains(k) {
                out.push(prefix.clone());
            }
            if let Some(c) = self.children.get(k) {
                c.collect(prefix, out);
            }
            prefix.pop();
        }
    }

    /// The FieldsV1 form (`{"f:metadata":{"f:labels":{".":{},"f:app":{}}}}`).
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        for k in &self.members {
            m.insert(k.clone(), Value::Object(Map::new()));
        }
        for (k, c) in &self.children {
            if c.is_empty() {
                continue;
            }
            let Value::Object(mut inner) = c.to_fields_v1() else {
                continue;
            };
            if self.members.contains(k) {
                inner.insert(".".into(), Value::Object(Map::new()));
            }
            m.insert(k.clone(), Value::Object(inner));
        }
        Value::Object(m)
    }

    /// Parses FieldsV1.
    pub fn from_fields_v1(v: &Value) -> Result<Set, String> {
        let Value::Object(m) = v else {
            return Err("FieldsV1 must be a JSON object".into());
        };
        let mut out = Set::new();
        for (k, child) in m {
            if k == "." {
                continue;
            }
            if !(k.starts_with("f:")
                || k.starts_with("k:")
                || k.starts_with("v:")
                || k.starts_with("i:"))
            {
                return Err(format!("invalid path element {k:?}"));
            }
            let Value::Object(cm) = child else {
                return Err(format!("the value of {k:?} must be a JSON object"));
            };
            if cm.is_empty() || cm.contains_key(".") {
                out.members.insert(k.clone());
            }
            let sub = Set::from_fields_v1(child)?;
            if !sub.is_empty() {
                out.children.insert(k.clone(), sub);
            }
        }
        Ok(out)
    }
}

/// A path as Kubernetes prints it in conflict messages:
/// `.spec.containers[name="nginx"].image`, `.metadata.finalizers[="x"]`.
pub fn display(path: &[String]) -> String {
    let mut out = String::new();
    for e in path {
        if let Some(f) = e.strip_prefix("f:") {
            out.push('.');
            out.push_str(f);
        } else if let Some(k) = e.strip_prefix("k:") {
            let fields: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
            let parts: Vec<String> = fields.iter().map(|(n, v)| format!("{n}={v}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = e.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        } else if let Some(i) = e.strip_prefix("i:") {
            out.push_str(&format!("[{i}]"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(elems: &[&str]) -> Vec<String> {
        elems.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fields_v1_round_trips_with_dot_for_members_with_children() {
        let v = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}}}}
        });
        let set = Set::from_fields_v1(&v).expect("parse");
        assert!(set.contains(&p(&["f:metadata", "f:labels"])));
        assert!(set.contains(&p(&["f:metadata", "f:labels", "f:app"])));
        assert!(!set.contains(&p(&["f:metadata"])));
        assert_eq!(set.to_fields_v1(), v);
        assert_eq!(set.paths().len(), 4);
        assert!(Set::from_fields_v1(&json!({"x": {}})).is_err());
    }

    #[test]
    fn set_algebra() {
        let mut a = Set::new();
        a.insert(&p(&["f:spec", "f:replicas"]));
        a.insert(&p(&["f:spec", "f:paused"]));
        let mut b = Set::new();
        b.insert(&p(&["f:spec", "f:replicas"]));
        b.insert(&p(&["f:metadata", "f:labels", "f:a"]));
        assert_eq!(
            a.intersection(&b).paths(),
            vec![p(&["f:spec", "f:replicas"])]
        );
        assert_eq!(a.difference(&b).paths(), vec![p(&["f:spec", "f:paused"])]);
        assert_eq!(a.union(&b).paths().len(), 3);
        assert!(b.has_descendant(&p(&["f:metadata"])));
        assert!(!b.has_descendant(&p(&["f:spec", "f:replicas"])));
        assert!(a.difference(&a).is_empty());
        assert_eq!(
            b.without_top_level(&[field("metadata")]).paths(),
            vec![p(&["f:spec", "f:replicas"])]
        );
    }

    #[test]
    fn paths_print_as_kubernetes_does() {
        let k = key(
            &serde_json::from_value(json!({"protocol": "TCP", "containerPort": 80})).expect("map"),
        );
        assert_eq!(k, "k:{\"containerPort\":80,\"protocol\":\"TCP\"}");
        assert_eq!(
            display(&[field("spec"), field("ports"), k, field("name")]),
            ".spec.ports[containerPort=80,protocol=\"TCP\"].name"
        );
        assert_eq!(
            display(&[field("metadata"), field("finalizers"), value(&json!("x"))]),
            ".metadata.finalizers[=\"x\"]"
        );
    }
}

//! Typed walks over an object and its schema, after structured-merge-diff's typed package:
//! the field set an object specifies ([`to_field_set`]), the fields that differ between two
//! versions ([`compare`]), the merge of an applied configuration into the live object
//! ([`merge`]) and removal of paths ([`remove`]).
//!
//! How a position behaves comes from the schema ([`Node`]): scalars and atomic lists/maps
//! are leaves; structs and maps are granular (one path per key); lists of type `map` or
//! `set` are associative (one path per item, `k:{...}` or `v:...`). What the schema does not
//! describe is deduced from the value: objects are granular, lists atomic.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};

use super::fieldpath::{self, Set};
use super::json_patch::json_equal;
use crate::schema::{ListType, Node, Shape};

/// How a position merges and is tracked.
enum Rel<'s> {
    Leaf,
    Granular,
    Associative(ListType<'s>, Node<'s>),
}

fn rel<'s>(node: Node<'s>, sample: &Value) -> Rel<'s> {
    match node.shape() {
        Shape::Struct | Shape::Map if sample.is_object() => {
            if node.map_atomic() {
                Rel::Leaf
            } else {
                Rel::Granular
            }
        }
        Shape::List if sample.is_array() => match node.list_type() {
            ListType::Atomic => Rel::Leaf,
            lt => Rel::Associative(lt, node.items()),
        },
        Shape::Untyped if sample.is_object() => Rel::Granular,
        _ => Rel::Leaf,
    }
}

fn is_empty_container(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

/// The path element of an item of an associative list.
pub fn item_element(list: &ListType<'_>, items: Node<'_>, item: &Value) -> Result<String, String> {
    match list {
        ListType::Set => Ok(fieldpath::value(item)),
        ListType::Map(keys) => {
            let Value::Object(m) = item else {
                return Err(if item.is_null() {
                    "associative list with keys may not have a null element".into()
                } else {
                    "associative list with keys may not have non-map elements".into()
                });
            };
            let mut fields = Map::new();
            for k in keys {
                if let Some(v) = m.get(*k) {
                    fields.insert((*k).to_string(), v.clone());
                } else if let Some(d) = items.field(k).default_value() {
                    fields.insert((*k).to_string(), d.clone());
                }
            }
            if !keys.is_empty() && fields.is_empty() {
                return Err(format!(
                    "associative list with keys has an element that omits all key fields {keys:?} (and doesn't have default values for any key fields)"
                ));
            }
            Ok(fieldpath::key(&fields))
        }
        ListType::Atomic => Err("invalid indexing of non-associative list".into()),
    }
}

/// The field node of a key of an object at `node` (struct field, map value or untyped).
fn child<'s>(node: Node<'s>, key: &str) -> Node<'s> {
    node.field(key)
}

/// The first field of `v` (as printed in conflicts, `.spec.foo`) that a struct of the schema
/// does not declare; server-side apply refuses such configurations.
pub fn undeclared_field(v: &Value, node: Node<'_>) -> Option<String> {
    fn walk(v: &Value, node: Node<'_>, path: &mut Vec<String>) -> Option<String> {
        match (v, node.shape()) {
            (Value::Object(m), Shape::Struct) => {
                for (k, val) in m {
                    path.push(fieldpath::field(k));
                    if !node.has_field(k) {
                        return Some(fieldpath::display(path));
                    }
                    if let Some(f) = walk(val, node.field(k), path) {
                        return Some(f);
                    }
                    path.pop();
                }
                None
            }
            (Value::Object(m), Shape::Map) => {
                for (k, val) in m {
                    path.push(fieldpath::field(k));
                    if let Some(f) = walk(val, node.values(), path) {
                        return Some(f);
                    }
                    path.pop();
                }
                None
            }
            (Value::Array(a), Shape::List) => {
                let items = node.items();
                for (i, val) in a.iter().enumerate() {
                    path.push(format!("i:{i}"));
                    if let Some(f) = walk(val, items, path) {
                        return Some(f);
                    }
                    path.pop();
                }
                None
            }
            _ => None,
        }
    }
    walk(v, node, &mut Vec::new())
}

/// Every field `v` sets, as structured-merge-diff's ToFieldSet.
pub fn to_field_set(v: &Value, node: Node<'_>) -> Result<Set, String> {
    let mut set = Set::new();
    walk_set(v, node, &mut Vec::new(), &mut set)?;
    Ok(set)
}

fn walk_set(
    v: &Value,
    node: Node<'_>,
    path: &mut Vec<String>,
    set: &mut Set,
) -> Result<(), String> {
    match rel(node, v) {
        Rel::Leaf => set.insert(path),
        Rel::Associative(lt, items) => {
            let list = v.as_array().map(Vec::as_slice).unwrap_or_default();
            let mut seen = HashSet::new();
            let mut dups = HashSet::new();
            let mut elements = Vec::with_capacity(list.len());
            for item in list {
                let pe = item_element(&lt, items, item)?;
                if !seen.insert(pe.clone()) && dups.insert(pe.clone()) {
                    path.push(pe.clone());
                    set.insert(path);
                    path.pop();
                }
                elements.push(pe);
            }
            for (item, pe) in list.iter().zip(elements) {
                if dups.contains(&pe) {
                    continue;
                }
                path.push(pe);
                walk_set(item, items, path, set)?;
                set.insert(path);
                path.pop();
            }
        }
        Rel::Granular => {
            let Some(m) = v.as_object() else {
                return Ok(());
            };
            for (k, val) in m {
                let c = child(node, k);
                path.push(fieldpath::field(k));
                walk_set(val, c, path, set)?;
                let declared = node.shape() == Shape::Struct && node.has_field(k);
                if is_empty_container(Some(val)) && !val.is_array() || !declared {
                    set.insert(path);
                }
                path.pop();
            }
        }
    }
    Ok(())
}

/// The fields that differ between two versions of an object.
#[derive(Debug, Default)]
pub struct Comparison {
    pub added: Set,
    pub modified: Set,
    pub removed: Set,
}

impl Comparison {
    /// Modified and added: what an applier must own or conflict on.
    pub fn changed(&self) -> Set {
        self.modified.union(&self.added)
    }
}

/// Compares `old` with `new`, as structured-merge-diff's Compare.
pub fn compare(old: &Value, new: &Value, node: Node<'_>) -> Result<Comparison, String> {
    let mut c = Comparison::default();
    cmp(Some(old), Some(new), node, &mut Vec::new(), &mut c)?;
    Ok(c)
}

fn leaf(l: Option<&Value>, r: Option<&Value>, path: &[String], c: &mut Comparison) {
    match (l, r) {
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        (Some(a), Some(b)) if !json_equal(a, b) => c.modified.insert(path),
        _ => {}
    }
}

fn cmp(
    l: Option<&Value>,
    r: Option<&Value>,
    node: Node<'_>,
    path: &mut Vec<String>,
    c: &mut Comparison,
) -> Result<(), String> {
    let sample = match (l, r) {
        (_, Some(v)) if !v.is_null() => v,
        (Some(v), _) => v,
        (_, Some(v)) => v,
        (None, None) => return Ok(()),
    };
    let both_empty = is_empty_container(l) && is_empty_container(r);
    // Different kinds of value on the two sides compare as a leaf.
    let mismatch = matches!((l, r), (Some(a), Some(b)) if !a.is_null() && !b.is_null()
        && (a.is_object() != b.is_object() || a.is_array() != b.is_array()));
    match rel(node, sample) {
        _ if mismatch => {
            leaf(l, r, path, c);
            return Ok(());
        }
        Rel::Leaf => {
            leaf(l, r, path, c);
            return Ok(());
        }
        _ if both_empty => {
            leaf(l, r, path, c);
            return Ok(());
        }
        Rel::Associative(lt, items) => {
            let empty = Vec::new();
            let ll = l.and_then(Value::as_array).unwrap_or(&empty);
            let rl = r.and_then(Value::as_array).unwrap_or(&empty);
            let mut order: Vec<String> = Vec::new();
            let mut lmap: HashMap<String, Vec<&Value>> = HashMap::new();
            let mut rmap: HashMap<String, Vec<&Value>> = HashMap::new();
            for item in ll {
                let pe = item_element(&lt, items, item)?;
                if !lmap.contains_key(&pe) {
                    order.push(pe.clone());
                }
                lmap.entry(pe).or_default().push(item);
            }
            for item in rl {
                let pe = item_element(&lt, items, item)?;
                if !lmap.contains_key(&pe) && !rmap.contains_key(&pe) {
                    order.push(pe.clone());
                }
                rmap.entry(pe).or_default().push(item);
            }
            for pe in order {
                let lv = lmap.get(&pe).map(Vec::as_slice).unwrap_or_default();
                let rv = rmap.get(&pe).map(Vec::as_slice).unwrap_or_default();
                path.push(pe);
                match (lv.len(), rv.len()) {
                    (0..=1, 0..=1) => {
                        cmp(lv.first().copied(), rv.first().copied(), items, path, c)?
                    }
                    (2.., 2..) => {
                        let same = lv.len() == rv.len()
                            && lv.iter().zip(rv).all(|(a, b)| json_equal(a, b));
                        if !same {
                            c.modified.insert(path);
                        }
                    }
                    (2.., _) => {
                        if let Some(first) = rv.first() {
                            cmp(None, Some(first), items, path, c)?;
                        }
                        c.removed.insert(path);
                    }
                    (_, _) => {
                        if let Some(first) = lv.first() {
                            cmp(Some(first), None, items, path, c)?;
                        }
                        c.added.insert(path);
                    }
                }
                path.pop();
            }
        }
        Rel::Granular => {
            let empty = Map::new();
            let lm = l.and_then(Value::as_object).unwrap_or(&empty);
            let rm = r.and_then(Value::as_object).unwrap_or(&empty);
            let keys: std::collections::BTreeSet<&String> = lm.keys().chain(rm.keys()).collect();
            for k in keys {
                path.push(fieldpath::field(k));
                cmp(lm.get(k), rm.get(k), child(node, k), path, c)?;
                path.pop();
            }
        }
    }
    match (l, r) {
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        _ => {}
    }
    Ok(())
}

/// Fills in the Go zero-value fields of every typed struct in `v` (see
/// [`crate::schema::zero`]), so comparisons see objects as kube-apiserver's typed ones.
pub fn complete(v: &mut Value, node: Node<'_>) {
    match v {
        Value::Object(m) if node.shape() == Shape::Struct => {
            for (field, zero) in node.zero_fields() {
                if !m.contains_key(*field) {
                    m.insert((*field).to_string(), zero.clone());
                }
            }
            for (k, val) in m.iter_mut() {
                complete(val, node.field(k));
            }
        }
        Value::Object(m) if node.shape() == Shape::Map => {
            let values = node.values();
            m.values_mut().for_each(|val| complete(val, values));
        }
        Value::Array(a) if node.shape() == Shape::List => {
            let items = node.items();
            a.iter_mut().for_each(|val| complete(val, items));
        }
        _ => {}
    }
}

/// Merges an applied configuration into the live object, as structured-merge-diff's Merge:
/// the configuration's values win, granular maps merge key by key, associative lists merge
/// item by item (configuration order first, live-only items kept in place).
pub fn merge(live: &Value, config: &Value, node: Node<'_>) -> Result<Value, String> {
    merge_values(Some(live), config, node)
}

fn merge_values(l: Option<&Value>, r: &Value, node: Node<'_>) -> Result<Value, String> {
    let Some(l) = l else {
        return Ok(r.clone());
    };
    if is_empty_container(Some(l)) && is_empty_container(Some(r)) {
        return Ok(r.clone());
    }
    match rel(node, r) {
        Rel::Leaf => Ok(r.clone()),
        Rel::Granular => {
            let (Some(lm), Some(rm)) = (l.as_object(), r.as_object()) else {
                return Ok(r.clone());
            };
            let mut out = lm.clone();
            for (k, rv) in rm {
                let merged = merge_values(lm.get(k), rv, child(node, k))?;
                out.insert(k.clone(), merged);
            }
            Ok(Value::Object(out))
        }
        Rel::Associative(lt, items) => {
            let (Some(ll), Some(rl)) = (l.as_array(), r.as_array()) else {
                return Ok(r.clone());
            };
            merge_lists(ll, rl, &lt, items).map(Value::Array)
        }
    }
}

fn merge_lists(
    ll: &[Value],
    rl: &[Value],
    lt: &ListType<'_>,
    items: Node<'_>,
) -> Result<Vec<Value>, String> {
    let mut rhs: Vec<String> = Vec::with_capacity(rl.len());
    let mut robs: HashMap<String, &Value> = HashMap::new();
    for item in rl {
        let pe = item_element(lt, items, item)?;
        if robs.insert(pe.clone(), item).is_some() {
            return Err(format!("duplicate entries for key {pe}"));
        }
        rhs.push(pe);
    }
    let mut lhs: Vec<String> = Vec::with_capacity(ll.len());
    let mut lobs: HashMap<String, &Value> = HashMap::new();
    for item in ll {
        let pe = item_element(lt, items, item)?;
        lobs.entry(pe.clone()).or_insert(item);
        lhs.push(pe);
    }
    let mut shared: VecDeque<&String> = rhs.iter().filter(|pe| lobs.contains_key(*pe)).collect();
    let mut next_shared = shared.pop_front();
    let mut merged_rhs: HashSet<&String> = HashSet::new();
    let mut out = Vec::with_capacity(ll.len().max(rl.len()));
    let (mut li, mut ri) = (0, 0);
    while li < lhs.len() || ri < rhs.len() {
        if li < lhs.len() && ri < rhs.len() {
            let pe = &lhs[li];
            if *pe == rhs[ri] {
                merged_rhs.insert(pe);
                out.push(merge_values(lobs.get(pe).copied(), robs[pe], items)?);
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if robs.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < lhs.len() {
            let pe = &lhs[li];
            if !robs.contains_key(pe) {
                out.push(ll[li].clone());
                li += 1;
                continue;
            } else if merged_rhs.contains(pe) {
                li += 1;
            }
        }
        if ri < rhs.len() {
            let pe = &rhs[ri];
            merged_rhs.insert(pe);
            out.push(merge_values(lobs.get(pe).copied(), robs[pe], items)?);
            ri += 1;
            if next_shared.is_some_and(|n| n == pe) {
                next_shared = shared.pop_front();
            }
        }
    }
    Ok(out)
}

/// Removes the value at `path` (and everything below it) from `v`; a path that is not there
/// is ignored.
pub fn remove(v: &mut Value, node: Node<'_>, path: &[String]) {
    let [first, rest @ ..] = path else {
        return;
    };
    if let Some(name) = first.strip_prefix("f:") {
        let Some(m) = v.as_object_mut() else {
            return;
        };
        if rest.is_empty() {
            m.remove(name);
        } else if let Some(c) = m.get_mut(name) {
            remove(c, child(node, name), rest);
        }
        return;
    }
    let Some(list) = v.as_array_mut() else {
        return;
    };
    let lt = node.list_type();
    let items = node.items();
    let Some(i) = list
        .iter()
        .position(|item| item_element(&lt, items, item).is_ok_and(|pe| pe == *first))
    else {
        return;
    };
    if rest.is_empty() {
        list.remove(i);
    } else {
        remove(&mut list[i], items, rest);
    }
}

#[cfg(test)]
mod tests;

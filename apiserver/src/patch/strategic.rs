//! Strategic merge patch, as kube-apiserver applies it to the built-in kinds
//! (apimachinery's strategicpatch.StrategicMergeMapPatch with MergeParallelList and
//! IgnoreUnmatchedNulls), driven by the schema's patch metadata instead of Go struct tags.
//!
//! - Maps merge key by key; `null` deletes a key.
//! - Lists whose patch strategy is `merge` merge by their merge key (lists of objects) or as
//!   sets (lists of scalars); other lists are replaced. Fields the schema does not know merge
//!   as maps and replace as lists.
//! - Directives: `$patch: replace|delete` in a map, `$patch: delete|replace` items in a merging
//!   list, `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>`, `$retainKeys`.
//! - Order: the patch's items keep their relative order (or `$setElementOrder`'s), the
//!   server-only items keep theirs, interleaved by their positions in the live list.

use serde_json::{Map, Value};

use super::json_patch::json_equal;
use crate::schema::Node;

mod order;
use order::{normalize_order, partition};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// Why a strategic merge patch was not applied, with the status kube-apiserver answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmpError {
    /// A malformed directive (400 BadRequest).
    BadRequest(String),
    /// Lists of lists, or content outside `$retainKeys` (422 Invalid).
    Invalid(String),
    /// Anything else the Go code reports as a plain error (500).
    Internal(String),
}

type Result<T> = std::result::Result<T, SmpError>;

const BAD_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const BAD_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const BAD_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";
const NO_LIST_OF_LISTS: &str = "lists of lists are not supported";

/// Applies `patch` (a JSON object) to `original` (a JSON object) of the kind at `node`.
pub fn strategic_merge_patch(original: &Value, patch: &Value, node: Node<'_>) -> Result<Value> {
    let Value::Object(patch) = patch else {
        return Err(SmpError::BadRequest(
            "the strategic merge patch must be a JSON object".into(),
        ));
    };
    let original = match original {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    merge_map(original, patch.clone(), node).map(Value::Object)
}

/// The JSON types Go tells apart after decoding (ints and floats are different types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Int,
    Float,
    Str,
    List,
    Map,
}

fn kind_is_map(k: Kind) -> bool {
    k == Kind::Map
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) if n.is_f64() => Kind::Float,
        Value::Number(_) => Kind::Int,
        Value::String(_) => Kind::Str,
        Value::Array(_) => Kind::List,
        Value::Object(_) => Kind::Map,
    }
}

fn no_merge_key(m: &Map<String, Value>, key: &str) -> SmpError {
    SmpError::Internal(format!(
        "map: {} does not contain declared merge key: {key}",
        Value::Object(m.clone())
    ))
}

fn bad_arg(expected: &str, actual: &Value) -> SmpError {
    SmpError::Internal(format!(
        "expected a {expected}, but received a {:?}",
        kind(actual)
    ))
}

/// Splits a patch strategy list into (has retainKeys, the other strategy).
fn retain_keys_strategy<'a>(strategies: &[&'a str]) -> Result<(bool, &'a str)> {
    match strategies {
        [] => Ok((false, "")),
        ["retainKeys"] => Ok((true, "")),
        [one] => Ok((false, one)),
        ["retainKeys", other] | [other, "retainKeys"] => Ok((true, other)),
        _ => Err(SmpError::Internal(format!(
            "unexpected patch strategy: {strategies:?}"
        ))),
    }
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    node: Node<'_>,
) -> Result<Map<String, Value>> {
    if let Some(d) = patch.get(DIRECTIVE) {
        return match d.as_str() {
            Some("replace") => {
                patch.remove(DIRECTIVE);
                Ok(patch)
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(SmpError::Internal(format!(
                "unknown patch type: {d} in map: {}",
                Value::Object(patch.clone())
            ))),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_element_orders(&mut original, &mut patch, node)?;
    let keys: Vec<String> = patch.keys().cloned().collect();
    for k in keys {
        let Some(patch_v) = patch.remove(&k) else {
            continue;
        };
        let (key, delete_list) = match k.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            Some(rest) => match rest.strip_prefix('/') {
                Some(key) => (key.to_string(), true),
                None => return Err(SmpError::BadRequest(BAD_PRIMITIVE_LIST.into())),
            },
            None => (k, false),
        };
        if patch_v.is_null() {
            original.remove(&key);
            continue;
        }
        let same_kind = original
            .get(&key)
            .is_some_and(|o| kind(o) == kind(&patch_v));
        if !same_kind {
            // Absent from the original, or a different type: the patch value wins.
            if !delete_list {
                let mut v = patch_v;
                discard_nulls(&mut v);
                match remove_directives(v) {
                    Some(v) => original.insert(key, v),
                    None => original.remove(&key),
                };
            }
            continue;
        }
        let child = node.field(&key);
        let (_, strategy) = retain_keys_strategy(&child.patch_strategies())?;
        let orig_v = original.remove(&key).unwrap_or(Value::Null);
        let merged = match (orig_v, patch_v) {
            (Value::Object(o), Value::Object(p)) => {
                if strategy == "replace" {
                    Some(Value::Object(p))
                } else {
                    Some(Value::Object(merge_map(o, p, child)?))
                }
            }
            (Value::Array(o), Value::Array(p)) => Some(Value::Array(merge_slice_handler(
                o,
                p,
                child,
                strategy,
                delete_list,
            )?)),
            (_, p) => remove_directives(p),
        };
        if let Some(v) = merged {
            original.insert(key, v);
        }
    }
    Ok(original)
}

/// `$retainKeys`: keys of the original not listed are cleared; the patch may only set listed
/// keys.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<()> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(SmpError::BadRequest(BAD_RETAIN_KEYS.into()));
    };
    let listed = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !listed(k) {
            return Err(SmpError::BadRequest(BAD_RETAIN_KEYS.into()));
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// `$setElementOrder/<list>`: merges the list and orders it as the directive says.
fn merge_element_orders(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    node: Node<'_>,
) -> Result<()> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for k in keys {
        let order_v = patch.remove(&k).unwrap_or(Value::Null);
        let Value::Array(order) = order_v else {
            return Err(bad_arg("[]interface {}", &order_v));
        };
        let Some(list_key) = k
            .strip_prefix(SET_ELEMENT_ORDER)
            .and_then(|r| r.strip_prefix('/'))
            .map(str::to_string)
        else {
            return Err(SmpError::BadRequest(BAD_SET_ELEMENT_ORDER.into()));
        };
        let original_list = match original.get(&list_key) {
            None => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return Err(bad_arg("[]interface {}", other)),
        };
        let patch_list = match patch.get(&list_key) {
            None => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return Err(bad_arg("[]interface {}", other)),
        };
        let child = node.field(&list_key);
        let (_, strategy) = retain_keys_strategy(&child.patch_strategies())?;
        let merge_key = child.merge_key().unwrap_or("");
        validate_set_order(patch_list.as_deref().unwrap_or(&[]), &order, merge_key)?;
        let merged = match (&original_list, &patch_list) {
            (Some(o), None) => o.clone(),
            (None, Some(p)) => match remove_directives(Value::Array(p.clone())) {
                Some(Value::Array(v)) => v,
                _ => continue,
            },
            (Some(o), Some(p)) => {
                merge_slice_handler(o.clone(), p.clone(), child, strategy, false)?
            }
            (None, None) => continue,
        };
        let (in_order, server_only) = partition(&merged, &order, merge_key)?;
        let element_kind = slice_kind(&[
            original_list.as_deref().unwrap_or(&[]),
            patch_list.as_deref().unwrap_or(&[]),
        ])?;
        let both = normalize_order(
            in_order,
            server_only,
            &order,
            original_list.as_deref().unwrap_or(&[]),
            merge_key,
            element_kind,
        )?;
        original.insert(list_key.clone(), Value::Array(both));
        patch.remove(&list_key);
    }
    Ok(())
}

/// The patch list's items must appear in `$setElementOrder` in the same relative order.
fn validate_set_order(patch: &[Value], order: &[Value], merge_key: &str) -> Result<()> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<&Value> = if merge_key.is_empty() {
        patch.iter().collect()
    } else {
        let mut keep = Vec::new();
        for v in patch {
            let Value::Object(m) = v else {
                return Err(bad_arg("map[string]interface {}", v));
            };
            if m.get(DIRECTIVE).and_then(Value::as_str) != Some("delete") {
                keep.push(v);
            }
        }
        keep
    };
    let (mut p, mut s) = (0, 0);
    while p < non_delete.len() && s < order.len() {
        if non_delete[p].get(DIRECTIVE).is_some() {
            p += 1;
            continue;
        }
        if merge_key_equal(non_delete[p], &order[s], merge_key)? {
            p += 1;
        }
        s += 1;
    }
    if p < non_delete.len() && s >= order.len() {
        return Err(SmpError::Internal(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}\n",
            Value::Array(patch.to_vec()),
            Value::Array(order.to_vec())
        )));
    }
    Ok(())
}

fn merge_key_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool> {
    if merge_key.is_empty() {
        return Ok(json_equal(left, right));
    }
    let (Value::Object(l), Value::Object(r)) = (left, right) else {
        return Err(bad_arg(
            "map[string]interface {}",
            if left.is_object() { right } else { left },
        ));
    };
    let lk = l.get(merge_key).ok_or_else(|| no_merge_key(l, merge_key))?;
    let rk = r.get(merge_key).ok_or_else(|| no_merge_key(r, merge_key))?;
    Ok(json_equal(lk, rk))
}

fn merge_slice_handler(
    original: Vec<Value>,
    patch: Vec<Value>,
    node: Node<'_>,
    strategy: &str,
    delete_list: bool,
) -> Result<Vec<Value>> {
    if strategy == "merge" || delete_list {
        merge_slice(original, patch, node, delete_list)
    } else {
        Ok(patch)
    }
}

/// The common element type of the lists (lists of lists are refused).
fn slice_kind(lists: &[&[Value]]) -> Result<Kind> {
    let mut found: Option<Kind> = None;
    for v in lists.iter().flat_map(|l| l.iter()) {
        let k = kind(v);
        match found {
            None if k == Kind::List => return Err(SmpError::Invalid(NO_LIST_OF_LISTS.into())),
            None => found = Some(k),
            Some(f) if f != k => {
                return Err(SmpError::Internal(format!(
                    "list element types are not identical: {}",
                    Value::Array(lists.iter().flat_map(|l| l.iter().cloned()).collect())
                )))
            }
            Some(_) => {}
        }
    }
    found.ok_or_else(|| SmpError::Internal("no elements in any of the given slices".into()))
}

fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    node: Node<'_>,
    delete_list: bool,
) -> Result<Vec<Value>> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let element_kind = slice_kind(&[&original, &patch])?;
    let merge_key = node.merge_key().unwrap_or("");
    let (original, patch, merged) = if element_kind != Kind::Map {
        if delete_list {
            return Ok(original
                .into_iter()
                .filter(|v| !patch.iter().any(|d| json_equal(d, v)))
                .collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(patch.iter()) {
            if !merged.iter().any(|m| json_equal(m, v)) {
                merged.push(v.clone());
            }
        }
        (original, patch, merged)
    } else {
        if merge_key.is_empty() {
            return Err(SmpError::Internal(format!(
                "cannot merge lists without merge key for {}",
                node.definition_name().unwrap_or("")
            )));
        }
        let (original, patch) = special_elements(original, patch, merge_key)?;
        let merged = merge_by_key(original.clone(), &patch, merge_key, node.items())?;
        (original, patch, merged)
    };
    let (patch_items, server_only) = partition(&merged, &patch, merge_key)?;
    normalize_order(
        patch_items,
        server_only,
        &patch,
        &original,
        merge_key,
        element_kind,
    )
}

/// Handles `$patch` items of a merging list: `delete` removes the matching items, `replace`
/// makes the patch's other items the whole list.
fn special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for v in patch {
        let Value::Object(m) = &v else {
            return Err(bad_arg("map[string]interface {}", &v));
        };
        match m.get(DIRECTIVE) {
            None => plain.push(v),
            Some(d) => match d.as_str() {
                Some("delete") => {
                    let key = m.get(merge_key).ok_or_else(|| no_merge_key(m, merge_key))?;
                    original.retain(|o| !o.get(merge_key).is_some_and(|k| json_equal(k, key)));
                }
                Some("replace") => replace = true,
                Some("merge") => {
                    return Err(SmpError::Internal(
                        "merging lists cannot yet be specified in the patch".into(),
                    ))
                }
                _ => {
                    return Err(SmpError::Internal(format!(
                        "unknown patch type: {d} in map: {v}"
                    )))
                }
            },
        }
    }
    if replace {
        Ok((plain, Vec::new()))
    } else {
        Ok((original, plain))
    }
}

/// Merges each patch item into the original item with the same merge key, or appends it.
fn merge_by_key(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    items: Node<'_>,
) -> Result<Vec<Value>> {
    for v in patch {
        let Value::Object(p) = v else {
            return Err(bad_arg("map[string]interface {}", v));
        };
        let key = p.get(merge_key).ok_or_else(|| no_merge_key(p, merge_key))?;
        let found = find_by_key(&original, merge_key, key)?;
        match found {
            Some(i) => {
                let o = match std::mem::take(&mut original[i]) {
                    Value::Object(o) => o,
                    _ => Map::new(),
                };
                original[i] = Value::Object(merge_map(o, p.clone(), items)?);
            }
            None => original.push(v.clone()),
        }
    }
    Ok(original)
}

fn find_by_key(list: &[Value], merge_key: &str, key: &Value) -> Result<Option<usize>> {
    for (i, v) in list.iter().enumerate() {
        let Value::Object(m) = v else {
            return Err(SmpError::Internal(format!(
                "value for key {i} is not a map"
            )));
        };
        if m.get(merge_key).is_some_and(|k| json_equal(k, key)) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// Drops `$patch` directives (and the maps and items that carry one).
fn remove_directives(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if m.contains_key(DIRECTIVE) {
                return None;
            }
            Some(Value::Object(
                m.into_iter()
                    .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                    .collect(),
            ))
        }
        Value::Array(a) => Some(Value::Array(
            a.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// Removes `null` members everywhere (a null for a key the original lacks means nothing).
fn discard_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(discard_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests;

//! The order of a merged list, as apimachinery's strategic merge keeps it: the items the
//! patch (or `$setElementOrder`) names in the patch's order, the server-only items in the live
//! order, interleaved so that a server-only item stays before a patch item the live list has
//! after it.

use serde_json::Value;

use super::{bad_arg, kind_is_map, no_merge_key, Kind, Result, DIRECTIVE};
use crate::patch::json_patch::json_equal;

/// Splits `merged` into the items present in `by` and the others (server-only).
pub(super) fn partition(
    merged: &[Value],
    by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut inside = Vec::new();
    let mut outside = Vec::new();
    for v in merged {
        let present = if merge_key.is_empty() {
            by.iter().any(|b| json_equal(b, v))
        } else {
            let Value::Object(m) = v else {
                return Err(bad_arg("map[string]interface {}", v));
            };
            let key = m.get(merge_key).ok_or_else(|| no_merge_key(m, merge_key))?;
            by.iter()
                .any(|b| b.get(merge_key).is_some_and(|k| json_equal(k, key)))
        };
        if present {
            inside.push(v.clone());
        } else {
            outside.push(v.clone());
        }
    }
    Ok((inside, outside))
}

/// The position of an item in `order` (by merge key for maps, by value for scalars).
fn position(order: &[Value], v: &Value, merge_key: &str, element_kind: Kind) -> Option<usize> {
    let key = |x: &Value| -> Option<Value> {
        if kind_is_map(element_kind) {
            Some(x.get(merge_key).cloned().unwrap_or(Value::Null))
        } else {
            Some(x.clone())
        }
    };
    let want = key(v)?;
    order
        .iter()
        .position(|o| key(o).is_some_and(|k| json_equal(&k, &want)))
}

/// Orders the patch items by `patch_order` and the server-only items by `server_order`,
/// then interleaves them: a server-only item goes before a patch item when the live list
/// has it earlier.
pub(super) fn normalize_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    element_kind: Kind,
) -> Result<Vec<Value>> {
    let patch = sort_by_order(patch, patch_order, merge_key, element_kind)?;
    let server_only = sort_by_order(server_only, server_order, merge_key, element_kind)?;
    let mut out = Vec::with_capacity(patch.len() + server_only.len());
    let (mut i, mut j) = (0, 0);
    while i < server_only.len() || j < patch.len() {
        if i >= server_only.len() {
            out.push(patch[j].clone());
            j += 1;
        } else if j >= patch.len() {
            out.push(server_only[i].clone());
            i += 1;
        } else {
            let li = position(server_order, &server_only[i], merge_key, element_kind);
            let ri = position(server_order, &patch[j], merge_key, element_kind);
            match (li, ri) {
                (Some(l), Some(r)) if l < r => {
                    out.push(server_only[i].clone());
                    i += 1;
                }
                _ => {
                    out.push(patch[j].clone());
                    j += 1;
                }
            }
        }
    }
    Ok(out)
}

fn sort_by_order(
    items: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    element_kind: Kind,
) -> Result<Vec<Value>> {
    let mut items = items;
    let mut deleted = Vec::new();
    if kind_is_map(element_kind) {
        for v in items.iter().chain(order.iter()) {
            let Value::Object(m) = v else {
                return Err(bad_arg("map[string]interface {}", v));
            };
            if !m.contains_key(merge_key) {
                return Err(no_merge_key(m, merge_key));
            }
        }
        let (keep, del): (Vec<Value>, Vec<Value>) = items
            .into_iter()
            .partition(|v| v.get(DIRECTIVE).and_then(Value::as_str) != Some("delete"));
        items = keep;
        deleted = del;
    }
    items.sort_by_key(|v| position(order, v, merge_key, element_kind).unwrap_or(usize::MAX));
    items.extend(deleted);
    Ok(items)
}

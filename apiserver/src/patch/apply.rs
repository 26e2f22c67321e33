//! Server-side apply (`application/apply-patch+yaml`), after structured-merge-diff's
//! Updater.Apply and kube-apiserver's field manager: merge the configuration into the live
//! object, give the applier exactly the fields it specifies, prune what it stopped
//! specifying and nobody else owns, and refuse (or, forced, take over) changes to fields
//! other managers own.

use serde_json::{json, Value};

use super::fieldpath::{self, Set};
use super::managed::{compare_typed, strip_meta, Entry, Managed, Writer};
use super::typed;
use crate::schema::Node;

/// Why an apply failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ApplyError {
    /// Fields owned by other managers would change: (manager as displayed, path as printed).
    Conflicts(Vec<(String, String)>),
    /// The configuration is malformed (400).
    BadRequest(String),
    /// The object or configuration does not fit the schema (500, as kube-apiserver).
    Internal(String),
    /// The configuration names a field the schema does not declare (kube-apiserver: 500
    /// "failed to create typed patch object (...): .spec.x: field not declared in schema").
    Schema(String),
}

impl ApplyError {
    /// Kubernetes' conflict message: "Apply failed with 1 conflict: conflict with "m": .a.b".
    pub fn conflict_message(conflicts: &[(String, String)]) -> String {
        if let [(m, p)] = conflicts {
            return format!("Apply failed with 1 conflict: conflict with {m}: {p}");
        }
        let mut managers: Vec<&String> = conflicts.iter().map(|(m, _)| m).collect();
        managers.sort();
        managers.dedup();
        let mut lines = Vec::new();
        for m in managers {
            lines.push(format!("conflicts with {m}:"));
            for (_, p) in conflicts.iter().filter(|(n, _)| n == m) {
                lines.push(format!("- {p}"));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    }
}

/// Server-side apply of `config` by `writer` to `live` (`{}` when the object does not exist
/// yet). Returns the new object with its managedFields.
pub fn apply(
    live: &Value,
    config: &Value,
    node: Node<'_>,
    writer: &Writer<'_>,
    force: bool,
) -> Result<Value, ApplyError> {
    if config.pointer("/metadata/managedFields").is_some() {
        return Err(ApplyError::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let mut managed = Managed::decode(live).unwrap_or_default();
    let me = writer.entry("Apply", Set::new());
    let last = managed
        .position(&me)
        .map(|i| managed.entries[i].fields.clone())
        .unwrap_or_default();
    let mut base = live.clone();
    if let Some(m) = base.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    let mut merged = typed::merge(&base, config, node).map_err(ApplyError::Internal)?;
    if let Some(field) = typed::undeclared_field(config, node) {
        return Err(ApplyError::Schema(format!(
            "failed to create typed patch object ({}; {}, Kind={}): {field}: field not declared in schema",
            object_name(config),
            config.get("apiVersion").and_then(Value::as_str).unwrap_or(""),
            config.get("kind").and_then(Value::as_str).unwrap_or(""),
        )));
    }
    let applied = writer.filter(&typed::to_field_set(config, node).map_err(ApplyError::Internal)?);
    // Prune: what the applier specified last time and nobody (the applier included) owns now.
    let others: Vec<&Entry> = managed
        .entries
        .iter()
        .filter(|e| !e.same_identity(&me))
        .collect();
    let owned = |p: &[String]| {
        applied.contains(p)
            || applied.has_descendant(p)
            || others
                .iter()
                .any(|e| e.fields.contains(p) || e.fields.has_descendant(p))
    };
    let mut stale: Vec<Vec<String>> = last.paths().into_iter().filter(|p| !owned(p)).collect();
    stale.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in &stale {
        typed::remove(&mut merged, node, p);
    }
    // Conflicts: other managers' fields this apply changes.
    let c = compare_typed(&base, &merged, node).map_err(ApplyError::Internal)?;
    let changed = writer.filter(&c.changed());
    let removed = writer.filter(&c.removed);
    let mut conflicts = Vec::new();
    for e in &others {
        for p in e.fields.intersection(&changed).paths() {
            conflicts.push((e.display(), fieldpath::display(&p)));
        }
    }
    if !force && !conflicts.is_empty() {
        conflicts.sort();
        return Err(ApplyError::Conflicts(conflicts));
    }
    let object_changed = c.changed().union(&c.removed) != Set::new();
    let previous_time = managed
        .position(&me)
        .and_then(|i| managed.entries[i].time.clone());
    for e in &mut managed.entries {
        if !e.same_identity(&me) {
            e.fields = e.fields.difference(&changed).difference(&removed);
        }
    }
    managed
        .entries
        .retain(|e| !e.same_identity(&me) && !e.fields.is_empty());
    let mine = strip_meta(&applied);
    if !mine.is_empty() {
        let mut entry = writer.entry("Apply", mine);
        if !object_changed {
            // Only a change of the object stamps the applier's time (a new co-owner of
            // unchanged fields gets none, as in kube-apiserver).
            entry.time = previous_time;
        }
        managed.entries.push(entry);
    }
    if merged.get("metadata").is_none() {
        merged["metadata"] = json!({});
    }
    managed.write(&mut merged);
    Ok(merged)
}

/// "namespace/name" of an object ("/name" for cluster-scoped ones), as kube-apiserver
/// names it in messages.
fn object_name(v: &Value) -> String {
    let meta = |f: &str| {
        v.pointer(&format!("/metadata/{f}"))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    format!("{}/{}", meta("namespace"), meta("name"))
}

#[cfg(test)]
mod tests;

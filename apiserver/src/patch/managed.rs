//! metadata.managedFields: who owns which fields, kept up to date by every write, and
//! server-side apply on top of it. After kube-apiserver's field manager (apimachinery's
//! managedfields/internal) over structured-merge-diff's Updater:
//!
//! - An Update (create, update, any non-apply patch) gives its manager the fields it added
//!   or changed and takes them from everyone else; removed fields leave every set.
//! - An Apply merges the configuration into the live object, gives the applier exactly the
//!   fields the configuration specifies, removes fields the applier specified last time and
//!   nobody owns any more, and fails with conflicts when it would change a field another
//!   manager owns (unless forced, which takes the fields over).
//! - Entries are keyed by manager, operation, API version (Update only) and subresource; the
//!   time changes when the entry's manager changed the object; apiVersion, kind and the
//!   server-set metadata are never tracked; at most ten Update entries are kept (older ones
//!   are merged into "ancient-changes").
//!
//! Apply itself is in [`super::apply`].

use serde_json::{json, Map, Value};

use super::fieldpath::{self, Set};
use super::typed;
use crate::schema::Node;

/// kube-apiserver's cap on Update entries.
const MAX_UPDATE_MANAGERS: usize = 10;

/// One managedFields entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub manager: String,
    /// "Apply" or "Update".
    pub operation: String,
    pub api_version: String,
    pub subresource: String,
    pub time: Option<String>,
    pub fields: Set,
}

impl Entry {
    pub(super) fn same_identity(&self, other: &Entry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == "Apply" || self.api_version == other.api_version)
    }

    /// How conflict messages name the manager: `"kubectl" using apps/v1` for updates.
    pub fn display(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {:?}", self.subresource);
        }
        if self.operation == "Update" {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }
}

/// Every entry of an object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Managed {
    pub entries: Vec<Entry>,
}

fn str_of<'v>(m: &'v Map<String, Value>, k: &str) -> &'v str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

impl Managed {
    /// Reads `metadata.managedFields` (absent is empty).
    pub fn decode(obj: &Value) -> Result<Managed, String> {
        let Some(list) = obj.pointer("/metadata/managedFields") else {
            return Ok(Managed::default());
        };
        let list = match list {
            Value::Null => return Ok(Managed::default()),
            Value::Array(a) => a,
            _ => return Err("managedFields must be a list".into()),
        };
        let mut out = Managed::default();
        for (i, e) in list.iter().enumerate() {
            let Value::Object(m) = e else {
                return Err(format!("managed fields entry {i} is not an object"));
            };
            let operation = str_of(m, "operation");
            if !matches!(operation, "Apply" | "Update") {
                return Err("operation must be `Apply` or `Update`".into());
            }
            if str_of(m, "apiVersion").is_empty() {
                return Err("apiVersion must not be empty".into());
            }
            match str_of(m, "fieldsType") {
                "FieldsV1" => {}
                "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
                t => {
                    return Err(format!(
                        "invalid fieldsType {t:?} in managed fields entry {i}"
                    ))
                }
            }
            let fields = match m.get("fieldsV1") {
                None | Some(Value::Null) => Set::new(),
                Some(v) => Set::from_fields_v1(v)?,
            };
            out.entries.push(Entry {
                manager: str_of(m, "manager").to_string(),
                operation: operation.to_string(),
                api_version: str_of(m, "apiVersion").to_string(),
                subresource: str_of(m, "subresource").to_string(),
                time: m.get("time").and_then(Value::as_str).map(str::to_string),
                fields,
            });
        }
        Ok(out)
    }

    /// The `managedFields` list, sorted as Kubernetes sorts it (operation, time, manager,
    /// apiVersion, subresource); `None` when there are no entries.
    pub fn encode(&self) -> Option<Value> {
        if self.entries.is_empty() {
            return None;
        }
        let mut entries = self.entries.clone();
        entries.sort_by(|p, q| {
            (
                &p.operation,
                p.time.as_deref().unwrap_or(""),
                &p.manager,
                &p.api_version,
                &p.subresource,
            )
                .cmp(&(
                    &q.operation,
                    q.time.as_deref().unwrap_or(""),
                    &q.manager,
                    &q.api_version,
                    &q.subresource,
                ))
        });
        let list: Vec<Value> = entries
            .iter()
            .map(|e| {
                let mut v = json!({
                    "manager": e.manager,
                    "operation": e.operation,
                    "apiVersion": e.api_version,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": e.fields.to_fields_v1(),
                });
                if let Some(t) = &e.time {
                    v["time"] = json!(t);
                }
                if !e.subresource.is_empty() {
                    v["subresource"] = json!(e.subresource);
                }
                v
            })
            .collect();
        Some(Value::Array(list))
    }

    /// Writes the entries into `obj.metadata.managedFields` (removed when empty).
    pub fn write(&self, obj: &mut Value) {
        let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        match self.encode() {
            Some(list) => meta.insert("managedFields".into(), list),
            None => meta.remove("managedFields"),
        };
    }

    pub(super) fn position(&self, id: &Entry) -> Option<usize> {
        self.entries.iter().position(|e| e.same_identity(id))
    }
}

/// Who is writing, and what the endpoint ignores.
pub struct Writer<'a> {
    /// The field manager (already defaulted from the User-Agent for non-apply requests).
    pub manager: &'a str,
    /// The group version of the endpoint, e.g. "apps/v1".
    pub api_version: &'a str,
    /// "" for the main resource, "status" or "scale".
    pub subresource: &'a str,
    /// The time to stamp on changed entries (RFC 3339).
    pub now: &'a str,
    /// Top-level fields this endpoint does not write, e.g. "status" on the main resource of
    /// a kind with a status subresource; their changes are owned by nobody here.
    pub ignored: &'a [&'a str],
    /// When set, only these top-level fields are tracked (the status subresource).
    pub only: &'a [&'a str],
}

impl Writer<'_> {
    pub(super) fn entry(&self, operation: &str, fields: Set) -> Entry {
        Entry {
            manager: if self.manager.is_empty() {
                "unknown".into()
            } else {
                self.manager.to_string()
            },
            operation: operation.into(),
            api_version: self.api_version.into(),
            subresource: self.subresource.into(),
            time: Some(self.now.to_string()),
            fields,
        }
    }

    pub(super) fn filter(&self, set: &Set) -> Set {
        let ignored: Vec<String> = self.ignored.iter().map(|f| fieldpath::field(f)).collect();
        let set = set.without_top_level(&ignored);
        if self.only.is_empty() {
            return set;
        }
        let only: Vec<String> = self.only.iter().map(|f| fieldpath::field(f)).collect();
        set.only_top_level(&only)
    }
}

/// The fields kube-apiserver never tracks.
pub(super) fn strip_meta(set: &Set) -> Set {
    let mut strip = Set::new();
    for f in ["apiVersion", "kind", "metadata"] {
        strip.insert(&[fieldpath::field(f)]);
    }
    for f in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        strip.insert(&[fieldpath::field("metadata"), fieldpath::field(f)]);
    }
    set.difference(&strip)
}

pub(super) fn compare_typed(
    old: &Value,
    new: &Value,
    node: Node<'_>,
) -> Result<typed::Comparison, String> {
    let mut old = old.clone();
    let mut new = new.clone();
    for v in [&mut old, &mut new] {
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("managedFields");
        }
        typed::complete(v, node);
    }
    typed::compare(&old, &new, node)
}

/// The managed fields a write starts from: the new object's own when it carries valid,
/// non-empty ones (a client may rewrite them), a reset when it carries `[{}]`, the live
/// object's otherwise (subresources always use the live object's).
fn starting_point(live: &Value, new: &Value, subresource: &str) -> Result<Managed, String> {
    if !subresource.is_empty() {
        return Managed::decode(live);
    }
    if new.pointer("/metadata/managedFields") == Some(&json!([{}])) {
        return Ok(Managed::default());
    }
    match Managed::decode(new) {
        Ok(m) if !m.entries.is_empty() => Ok(m),
        _ => Managed::decode(live),
    }
}

/// Records an Update by `writer` that turned `live` into `new` (for a create, `live` is
/// `{}`), writing `new.metadata.managedFields`. As kube-apiserver's UpdateNoErrors, a
/// failure to compute ownership clears the object's managedFields rather than the write.
pub fn record_update(live: &Value, new: &mut Value, node: Node<'_>, writer: &Writer<'_>) {
    match update(live, new, node, writer) {
        Ok(m) => m.write(new),
        Err(e) => {
            tracing::debug!(error = %e, "managedFields not updated; cleared");
            if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
        }
    }
}

fn update(
    live: &Value,
    new: &Value,
    node: Node<'_>,
    writer: &Writer<'_>,
) -> Result<Managed, String> {
    let mut managed = starting_point(live, new, writer.subresource)?;
    let c = compare_typed(live, new, node)?;
    let changed = writer.filter(&c.changed());
    let removed = writer.filter(&c.removed);
    for e in &mut managed.entries {
        e.fields = e.fields.difference(&changed).difference(&removed);
    }
    managed.entries.retain(|e| !e.fields.is_empty());
    let mine = strip_meta(&changed);
    if !mine.is_empty() {
        let me = writer.entry("Update", mine);
        match managed.position(&me) {
            Some(i) => {
                let e = &mut managed.entries[i];
                e.fields = e.fields.union(&me.fields);
                e.time = me.time;
            }
            None => managed.entries.push(me),
        }
    }
    cap_update_managers(&mut managed);
    Ok(managed)
}

/// Keeps at most [`MAX_UPDATE_MANAGERS`] Update entries, merging the oldest into
/// "ancient-changes".
fn cap_update_managers(managed: &mut Managed) {
    let mut updaters: Vec<usize> = (0..managed.entries.len())
        .filter(|&i| managed.entries[i].operation == "Update")
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    updaters.sort_by(|&a, &b| {
        let (x, y) = (&managed.entries[a], &managed.entries[b]);
        (x.time.as_deref().unwrap_or(""), &x.manager)
            .cmp(&(y.time.as_deref().unwrap_or(""), &y.manager))
    });
    let excess = updaters.len() - MAX_UPDATE_MANAGERS + 1;
    let oldest: Vec<usize> = updaters[..excess].to_vec();
    let mut ancient = Entry {
        manager: "ancient-changes".into(),
        operation: "Update".into(),
        api_version: managed.entries[oldest[0]].api_version.clone(),
        subresource: String::new(),
        time: None,
        fields: Set::new(),
    };
    for &i in &oldest {
        ancient.fields = ancient.fields.union(&managed.entries[i].fields);
    }
    let mut i = 0;
    managed.entries.retain(|_| {
        let keep = !oldest.contains(&i);
        i += 1;
        keep
    });
    match managed.position(&ancient) {
        Some(p) => {
            let e = &mut managed.entries[p];
            e.fields = e.fields.union(&ancient.fields);
        }
        None => managed.entries.push(ancient),
    }
}

#[cfg(test)]
mod tests;

//! Field selectors and the per-kind fields they may name.

use std::fmt;

use serde_json::Value;

use crate::validation::common::q;

/// One term of a field selector: `field=value` or `field!=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FieldTerm {
    field: String,
    value: String,
    equal: bool,
}

/// A Kubernetes field selector (a conjunction of `=`/`==`/`!=` terms).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

/// The fields every kind without its own conversion function supports.
const DEFAULT_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

impl FieldSelector {
    /// Parses Kubernetes' field selector syntax (apimachinery `fields.ParseSelector`):
    /// comma-separated `a=b`, `a==b`, `a!=b` terms; in values `\,`, `\=` and `\\` escape
    /// the character. Every field must be in `allowed`, else the error is the apiserver's
    /// `field label not supported: <field>` (or, when `allowed` is exactly the default
    /// `metadata.name`/`metadata.namespace` pair, as for kinds without a field label conversion
    /// function, `"<field>" is not a known field selector: only "metadata.name", "metadata.namespace"`).
    pub fn parse(s: &str, allowed: &[&str]) -> Result<FieldSelector, String> {
        let mut parts = split_terms(s);
        parts.sort();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(part) else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let value = unescape_value(rhs)?;
            terms.push(FieldTerm {
                field: lhs.to_string(),
                value,
                equal: op != "!=",
            });
        }
        for t in &mut terms {
            // Backwards compatibility of old v1 clients (Pod's conversion function).
            if t.field == "spec.host" && allowed.contains(&"spec.nodeName") {
                t.field = "spec.nodeName".into();
            }
            if !allowed.contains(&t.field.as_str()) {
                if allowed == DEFAULT_FIELDS {
                    return Err(format!(
                        "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                        q(&t.field)
                    ));
                }
                return Err(format!("field label not supported: {}", t.field));
            }
        }
        Ok(FieldSelector { terms })
    }

    /// The selector that matches every object.
    pub fn everything() -> FieldSelector {
        FieldSelector { terms: Vec::new() }
    }

    /// Whether the selector has no term (matches everything).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether the object satisfies every term. A field is read by its dotted path; a missing
    /// field reads as `""` (so `spec.nodeName=` selects unbound pods), except the fields
    /// Kubernetes formats from non-pointer Go values: `spec.hostNetwork` and `spec.unschedulable`
    /// read `"false"`, `status.replicas` reads `"0"`. Event's `source` is `source.component`.
    /// Booleans and numbers compare by their string form.
    pub fn matches(&self, obj: &Value) -> bool {
        self.terms
            .iter()
            .all(|t| (field_value(obj, &t.field) == t.value) == t.equal)
    }

    /// The value the selector pins `field` to with `=`/`==`, if any.
    pub fn exact(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.equal && t.field == field)
            .map(|t| t.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if t.equal { "=" } else { "!=" };
            write!(f, "{}{op}{}", t.field, escape_value(&t.value))?;
        }
        Ok(())
    }
}

/// A field's value as the apiserver's `ToSelectableFields` functions give it.
fn field_value(obj: &Value, field: &str) -> String {
    let path = if field == "source" && obj.get("involvedObject").is_some() {
        "source.component"
    } else {
        field
    };
    let mut cur = Some(obj);
    for seg in path.split('.') {
        cur = cur.and_then(|c| c.get(seg));
    }
    match cur {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Null) | None => match field {
            "spec.hostNetwork" | "spec.unschedulable" => "false".into(),
            "status.replicas" => "0".into(),
            _ => String::new(),
        },
        Some(other) => other.to_string(),
    }
}

/// Splits on unescaped commas.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits a term at its first operator (`!=`, `==`, `=`).
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if rest.starts_with(op) {
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
    }
    None
}

/// apimachinery `fields.UnescapeValue`.
fn unescape_value(s: &str) -> Result<String, String> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{c}"
                    ))
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            // Kubernetes prints the rune with %v, i.e. as its code point.
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ))
            }
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".into());
    }
    Ok(out)
}

/// apimachinery `fields.EscapeValue`.
fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The field selector fields a kind supports (the apiserver's field label conversion functions;
/// kinds without one support `metadata.name` and `metadata.namespace`).
pub fn field_selector_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        "Event" => &[
            "metadata.name",
            "metadata.namespace",
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        "Secret" => &["metadata.name", "metadata.namespace", "type"],
        "Namespace" => &["metadata.name", "status.phase"],
        "Node" => &["metadata.name", "spec.unschedulable"],
        "ReplicaSet" | "ReplicationController" => {
            &["metadata.name", "metadata.namespace", "status.replicas"]
        }
        _ => DEFAULT_FIELDS,
    }
}

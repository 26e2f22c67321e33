//! Label selectors: requirements, their matching, the JSON form.

use std::fmt;

use serde_json::{Map, Value};

use super::parser::Parser;
use crate::validation::common::{go_strings, label_value_errors, q, qualified_name_errors};

/// A label requirement operator (apimachinery's `selection.Operator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One requirement of a label selector: `key op values`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Requirement {
    key: String,
    op: Op,
    /// Sorted and deduplicated, as apimachinery's `sets.String`.
    values: Vec<String>,
}

impl Requirement {
    /// apimachinery's `labels.NewRequirement`: validates the key, the operator/values pairing and
    /// every value (errors name the fields relative to the requirement: `key`, `values[i]`).
    pub(super) fn new(key: &str, op: Op, values: Vec<String>) -> Result<Requirement, String> {
        let mut errs = Vec::new();
        let key_errs = qualified_name_errors(key);
        if !key_errs.is_empty() {
            errs.push(format!(
                "key: Invalid value: {}: {}",
                q(key),
                key_errs.join("; ")
            ));
        }
        match op {
            Op::In | Op::NotIn => {
                if values.is_empty() {
                    errs.push(
                        "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
                            .to_string(),
                    );
                }
            }
            Op::Equals | Op::DoubleEquals | Op::NotEquals => {
                if values.len() != 1 {
                    errs.push(format!(
                        "values: Invalid value: {}: exact-match compatibility requires one single value",
                        go_strings(Some(&values))
                    ));
                }
            }
            Op::Exists | Op::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(format!(
                        "values: Invalid value: {}: values set must be empty for exists and does not exist",
                        go_strings(Some(&values))
                    ));
                }
            }
            Op::GreaterThan | Op::LessThan => {
                if values.len() != 1 {
                    errs.push(format!(
                        "values: Invalid value: {}: for 'Gt', 'Lt' operators, exactly one value is required",
                        go_strings(Some(&values))
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(format!(
                            "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                            q(v)
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let msgs = label_value_errors(v);
            if !msgs.is_empty() {
                errs.push(format!(
                    "values[{i}][{key}]: Invalid value: {}: {}",
                    q(v),
                    msgs.join("; ")
                ));
            }
        }
        let mut values = values;
        values.sort();
        values.dedup();
        match errs.len() {
            0 => Ok(Requirement {
                key: key.to_string(),
                op,
                values,
            }),
            1 => Err(errs.remove(0)),
            _ => Err(format!("[{}]", errs.join(", "))),
        }
    }

    fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let value = labels.and_then(|l| l.get(&self.key)).map(label_string);
        match self.op {
            Op::In | Op::Equals | Op::DoubleEquals => {
                value.is_some_and(|v| self.values.contains(&v))
            }
            Op::NotIn | Op::NotEquals => value.is_none_or(|v| !self.values.contains(&v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::GreaterThan | Op::LessThan => {
                let Some(have) = value.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let Some(want) = self.values.first().and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                if self.op == Op::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    /// apimachinery's `Requirement.String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = self.values.join(",");
        match self.op {
            Op::Exists => write!(f, "{}", self.key),
            Op::DoesNotExist => write!(f, "!{}", self.key),
            Op::Equals => write!(f, "{}={values}", self.key),
            Op::DoubleEquals => write!(f, "{}=={values}", self.key),
            Op::NotEquals => write!(f, "{}!={values}", self.key),
            Op::GreaterThan => write!(f, "{}>{values}", self.key),
            Op::LessThan => write!(f, "{}<{values}", self.key),
            Op::In => write!(f, "{} in ({values})", self.key),
            Op::NotIn => write!(f, "{} notin ({values})", self.key),
        }
    }
}

/// A label's value as a string (labels are strings; anything else compares by its JSON form).
fn label_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A Kubernetes label selector.
///
/// Three shapes exist, as in apimachinery: *everything* (no requirement: [`is_empty`] is true),
/// *nothing* (what a null `metav1.LabelSelector` converts to: matches no object, and is not
/// empty), and a list of requirements that must all hold.
///
/// [`is_empty`]: LabelSelector::is_empty
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelSelector {
    pub(super) requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    /// Parses Kubernetes' label selector string syntax (apimachinery `labels.Parse`).
    ///
    /// Comma-separated requirements: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`,
    /// `k` (exists), `!k` (does not exist), and `k>5` / `k<5` (integer comparison). An empty
    /// string matches everything. Errors carry Kubernetes' wording, e.g.
    /// `unable to parse requirement: found '', expected: identifier` or
    /// `found ')', expected: !, identifier, or 'end of string'`.
    pub fn parse(s: &str) -> Result<LabelSelector, String> {
        let mut p = Parser::new(s);
        let mut requirements = p.parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Converts a `metav1.LabelSelector` JSON object (`matchLabels`, `matchExpressions`) as
    /// `metav1.LabelSelectorAsSelector` does: JSON `null` gives the *nothing* selector (matches no
    /// object), `{}` gives *everything*. Invalid keys, values or operators are errors
    /// (e.g. `"Foo" is not a valid label selector operator`).
    pub fn from_json(sel: &Value) -> Result<LabelSelector, String> {
        let obj = match sel {
            Value::Null => return Ok(LabelSelector::nothing()),
            Value::Object(o) => o,
            other => return Err(format!("invalid label selector: {other}")),
        };
        let mut requirements = Vec::new();
        match obj.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let v = v.as_str().ok_or_else(|| {
                        format!("invalid label selector: matchLabels[{k}] must be a string")
                    })?;
                    requirements.push(Requirement::new(k, Op::Equals, vec![v.to_string()])?);
                }
            }
            Some(_) => return Err("invalid label selector: matchLabels must be an object".into()),
        }
        match obj.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(exprs)) => {
                for e in exprs {
                    let key = e.get("key").and_then(Value::as_str).unwrap_or("");
                    let op_str = e.get("operator").and_then(Value::as_str).unwrap_or("");
                    let op = match op_str {
                        "In" => Op::In,
                        "NotIn" => Op::NotIn,
                        "Exists" => Op::Exists,
                        "DoesNotExist" => Op::DoesNotExist,
                        other => {
                            return Err(format!(
                                "{} is not a valid label selector operator",
                                q(other)
                            ))
                        }
                    };
                    let values: Vec<String> = e
                        .get("values")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().map(label_string).collect())
                        .unwrap_or_default();
                    requirements.push(Requirement::new(key, op, values)?);
                }
            }
            Some(_) => {
                return Err("invalid label selector: matchExpressions must be an array".into())
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// The selector that matches every object.
    pub fn everything() -> LabelSelector {
        LabelSelector {
            requirements: Vec::new(),
            nothing: false,
        }
    }

    /// The selector that matches no object (apimachinery `labels.Nothing()`).
    pub fn nothing() -> LabelSelector {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Whether the selector has no requirement, i.e. matches everything (false for *nothing*).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether labels (an object's `metadata.labels`, possibly absent) satisfy every requirement.
    /// As in Kubernetes, `!=` and `notin` hold when the key is absent.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// [`matches`](LabelSelector::matches) on an object's `metadata.labels`.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.matches(
            obj.get("metadata")
                .and_then(|m| m.get("labels"))
                .and_then(Value::as_object),
        )
    }
}

impl fmt::Display for LabelSelector {
    /// The string syntax (apimachinery `Selector.String()`); *nothing* prints as an empty string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

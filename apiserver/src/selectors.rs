//! Kubernetes label and field selectors over JSON objects.
//!
//! [`LabelSelector`] follows apimachinery's `labels.Parse` (string syntax, including its error
//! messages) and `metav1.LabelSelectorAsSelector` (the JSON form); [`FieldSelector`] follows
//! `fields.ParseSelector` plus the per-kind field label conversion functions of the apiserver
//! ([`field_selector_fields`]).

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

use crate::validation::common::{go_strings, label_value_errors, q, qualified_name_errors};

// ---------------------------------------------------------------------------------------------
// Label selectors
// ---------------------------------------------------------------------------------------------

/// A label requirement operator (apimachinery's `selection.Operator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
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
struct Requirement {
    key: String,
    op: Op,
    /// Sorted and deduplicated, as apimachinery's `sets.String`.
    values: Vec<String>,
}

impl Requirement {
    /// apimachinery's `labels.NewRequirement`: validates the key, the operator/values pairing and
    /// every value (errors name the fields relative to the requirement: `key`, `values[i]`).
    fn new(key: &str, op: Op, values: Vec<String>) -> Result<Requirement, String> {
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
    requirements: Vec<Requirement>,
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
        let tokens = lex(s);
        let mut p = Parser { tokens, pos: 0 };
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

// --- lexer (apimachinery labels.Lexer) ---

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Error,
    End,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(s: &str) -> Option<Tok> {
    Some(match s {
        ")" => Tok::ClosedPar,
        "," => Tok::Comma,
        "!" => Tok::DoesNotExist,
        "==" => Tok::DoubleEquals,
        "=" => Tok::Equals,
        ">" => Tok::GreaterThan,
        "in" => Tok::In,
        "<" => Tok::LessThan,
        "!=" => Tok::NotEquals,
        "notin" => Tok::NotIn,
        "(" => Tok::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits the input into tokens, ending with `End` (or stopping at the first `Error`).
fn lex(s: &str) -> Vec<(Tok, String)> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        while i < b.len() && is_whitespace(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            out.push((Tok::End, String::new()));
            return out;
        }
        if is_special(b[i]) {
            // Longest match among the special-symbol tokens.
            let start = i;
            let mut last: Option<(Tok, usize)> = None;
            while i < b.len() && is_special(b[i]) {
                let cand = &s[start..=i];
                if let Some(t) = keyword(cand) {
                    last = Some((t, i + 1));
                } else if last.is_some() {
                    break;
                }
                i += 1;
            }
            match last {
                Some((t, end)) => {
                    out.push((t, s[start..end].to_string()));
                    i = end;
                }
                None => {
                    out.push((
                        Tok::Error,
                        format!("error expected: keyword found '{}'", &s[start..i]),
                    ));
                    return out;
                }
            }
        } else {
            let start = i;
            while i < b.len() && !is_special(b[i]) && !is_whitespace(b[i]) {
                i += 1;
            }
            let word = &s[start..i];
            let tok = keyword(word).unwrap_or(Tok::Identifier);
            out.push((tok, word.to_string()));
        }
    }
}

// --- parser (apimachinery labels.Parser) ---

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

struct Parser {
    tokens: Vec<(Tok, String)>,
    pos: usize,
}

impl Parser {
    fn item(&self) -> (Tok, String) {
        self.tokens
            .get(self.pos)
            .cloned()
            .unwrap_or((Tok::End, String::new()))
    }

    fn lookahead(&self, ctx: Ctx) -> (Tok, String) {
        let (mut t, l) = self.item();
        if ctx == Ctx::Values && matches!(t, Tok::In | Tok::NotIn) {
            t = Tok::Identifier;
        }
        (t, l)
    }

    fn consume(&mut self, ctx: Ctx) -> (Tok, String) {
        let r = self.lookahead(ctx);
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        r
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut reqs = Vec::new();
        loop {
            let (t, l) = self.lookahead(Ctx::Values);
            match t {
                Tok::Identifier | Tok::DoesNotExist => {
                    let r = self
                        .requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    let (t, l) = self.consume(Ctx::Values);
                    match t {
                        Tok::End => return Ok(reqs),
                        Tok::Comma => {
                            let (t2, l2) = self.lookahead(Ctx::Values);
                            if t2 != Tok::Identifier && t2 != Tok::DoesNotExist {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                    }
                }
                Tok::End => return Ok(reqs),
                _ => {
                    return Err(format!(
                        "found '{l}', expected: !, identifier, or 'end of string'"
                    ))
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let (key, op) = self.key_and_inferred_operator()?;
        if let Some(op) = op {
            return Requirement::new(&key, op, Vec::new());
        }
        let op = self.operator()?;
        let values = match op {
            Op::In | Op::NotIn => self.values()?,
            _ => self.exact_value()?,
        };
        Requirement::new(&key, op, values)
    }

    fn key_and_inferred_operator(&mut self) -> Result<(String, Option<Op>), String> {
        let mut op = None;
        let (mut t, mut l) = self.consume(Ctx::Values);
        if t == Tok::DoesNotExist {
            op = Some(Op::DoesNotExist);
            (t, l) = self.consume(Ctx::Values);
        }
        if t != Tok::Identifier {
            return Err(format!("found '{l}', expected: identifier"));
        }
        let errs = qualified_name_errors(&l);
        if !errs.is_empty() {
            return Err(format!(
                "<nil>: Invalid value: {}: {}",
                q(&l),
                errs.join("; ")
            ));
        }
        let (next, _) = self.lookahead(Ctx::Values);
        if (next == Tok::End || next == Tok::Comma) && op.is_none() {
            op = Some(Op::Exists);
        }
        Ok((l, op))
    }

    fn operator(&mut self) -> Result<Op, String> {
        let (t, l) = self.consume(Ctx::KeyAndOperator);
        Ok(match t {
            Tok::In => Op::In,
            Tok::Equals => Op::Equals,
            Tok::DoubleEquals => Op::DoubleEquals,
            Tok::GreaterThan => Op::GreaterThan,
            Tok::LessThan => Op::LessThan,
            Tok::NotIn => Op::NotIn,
            Tok::NotEquals => Op::NotEquals,
            _ => {
                return Err(format!(
                    "found '{l}', expected: in, notin, =, ==, !=, gt, lt"
                ))
            }
        })
    }

    fn values(&mut self) -> Result<Vec<String>, String> {
        let (t, l) = self.consume(Ctx::Values);
        if t != Tok::OpenPar {
            return Err(format!("found '{l}' expected: '('"));
        }
        let (t, l) = self.lookahead(Ctx::Values);
        match t {
            Tok::Identifier | Tok::Comma => {
                let s = self.identifiers_list()?;
                let (t, _) = self.consume(Ctx::Values);
                if t != Tok::ClosedPar {
                    return Err(format!("found '{l}', expected: ')'"));
                }
                Ok(s)
            }
            Tok::ClosedPar => {
                self.consume(Ctx::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{l}', expected: ',', ')' or identifier")),
        }
    }

    fn identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut s: BTreeSet<String> = BTreeSet::new();
        loop {
            let (t, l) = self.consume(Ctx::Values);
            match t {
                Tok::Identifier => {
                    s.insert(l);
                    let (t2, l2) = self.lookahead(Ctx::Values);
                    match t2 {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(s.into_iter().collect()),
                        _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if s.is_empty() {
                        s.insert(String::new());
                    }
                    let (t2, _) = self.lookahead(Ctx::Values);
                    if t2 == Tok::ClosedPar {
                        s.insert(String::new());
                        return Ok(s.into_iter().collect());
                    }
                    if t2 == Tok::Comma {
                        self.consume(Ctx::Values);
                        s.insert(String::new());
                    }
                }
                _ => return Err(format!("found '{l}', expected: ',', or identifier")),
            }
        }
    }

    fn exact_value(&mut self) -> Result<Vec<String>, String> {
        let (t, _) = self.lookahead(Ctx::Values);
        if t == Tok::End || t == Tok::Comma {
            return Ok(vec![String::new()]);
        }
        let (t, l) = self.consume(Ctx::Values);
        if t == Tok::Identifier {
            return Ok(vec![l]);
        }
        Err(format!("found '{l}', expected: identifier"))
    }
}

// ---------------------------------------------------------------------------------------------
// Field selectors
// ---------------------------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).expect("parse")
    }

    #[test]
    fn parse_all_operators() {
        let s = sel("a=1,b==2,c!=3,d in (x, y),e notin (z),f,!g,h>5,i<7");
        assert_eq!(s.requirements.len(), 9);
        assert_eq!(
            s.to_string(),
            "a=1,b==2,c!=3,d in (x,y),e notin (z),f,!g,h>5,i<7"
        );
        let l = labels(json!({"a":"1","b":"2","c":"4","d":"y","f":"","h":"6","i":"6"}));
        assert!(s.matches(Some(&l)));
    }

    #[test]
    fn whitespace_is_allowed() {
        let s = sel("  a = 1 ,  b  in  ( x ,y )  , ! c ");
        let l = labels(json!({"a":"1","b":"x"}));
        assert!(s.matches(Some(&l)));
        assert_eq!(s.to_string(), "a=1,b in (x,y),!c");
    }

    #[test]
    fn empty_matches_everything() {
        let s = sel("");
        assert!(s.is_empty());
        assert!(s.matches(None));
        assert!(sel("   ").is_empty());
        assert!(LabelSelector::everything().matches_object(&json!({})));
    }

    #[test]
    fn negative_operators_match_absent_keys() {
        assert!(sel("a!=1").matches(None));
        assert!(sel("a notin (1,2)").matches(Some(&labels(json!({"b":"1"})))));
        assert!(!sel("a notin (1,2)").matches(Some(&labels(json!({"a":"1"})))));
        assert!(sel("a notin (1,2)").matches(Some(&labels(json!({"a":"3"})))));
        assert!(!sel("a=1").matches(None));
        assert!(!sel("a in (1)").matches(None));
        assert!(sel("!a").matches(None));
        assert!(!sel("a").matches(None));
        assert!(!sel("a>1").matches(None));
    }

    #[test]
    fn matches_object_reads_metadata_labels() {
        let obj = json!({"metadata":{"labels":{"app":"web","tier":"fe"}}});
        assert!(sel("app=web,tier").matches_object(&obj));
        assert!(!sel("app=db").matches_object(&obj));
        assert!(sel("app=web").matches_object(&obj));
        assert!(!sel("app").matches_object(&json!({"metadata":{"labels":null}})));
    }

    #[test]
    fn empty_values() {
        let s = sel("a=");
        assert!(s.matches(Some(&labels(json!({"a":""})))));
        assert!(!s.matches(None));
        let s = sel("a in ()");
        assert!(s.matches(Some(&labels(json!({"a":""})))));
        let s = sel("a in (,b)");
        assert!(s.matches(Some(&labels(json!({"a":""})))));
        assert!(s.matches(Some(&labels(json!({"a":"b"})))));
    }

    #[test]
    fn in_as_a_value_or_key() {
        // In the Values context `in`/`notin` are identifiers.
        let s = sel("a=in");
        assert!(s.matches(Some(&labels(json!({"a":"in"})))));
        let s = sel("in=1");
        assert!(s.matches(Some(&labels(json!({"in":"1"})))));
    }

    #[test]
    fn parse_errors() {
        let e = |s: &str| LabelSelector::parse(s).expect_err(s);
        assert_eq!(e("a=1,"), "found '', expected: identifier after ','");
        assert_eq!(
            e("a in b"),
            "unable to parse requirement: found 'b' expected: '('"
        );
        assert_eq!(
            e("a in (b"),
            "unable to parse requirement: found '', expected: ',' or ')'"
        );
        assert_eq!(
            e("a b"),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(e("a=b c"), "found 'c', expected: ',' or 'end of string'");
        assert_eq!(
            e(")"),
            "found ')', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            e("a=!"),
            "unable to parse requirement: found '!', expected: identifier"
        );
        assert_eq!(
            e("x=a$"),
            "unable to parse requirement: values[0][x]: Invalid value: \"a$\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
        assert_eq!(
            e("a_b-=c"),
            "unable to parse requirement: <nil>: Invalid value: \"a_b-\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        assert!(e("a>b").contains("the value must be an integer"));
        assert!(e("a/b/c=1").contains("a qualified name must consist"));
        assert!(e(&format!("{}=1", "k".repeat(64)))
            .contains("name part must be no more than 63 characters"));
        assert!(e(&format!("k={}", "v".repeat(64))).contains("must be no more than 63 characters"));
        assert!(e("Foo_.com/x=1").contains("prefix part a lowercase RFC 1123 subdomain"));
    }

    #[test]
    fn prefixed_keys() {
        let s = sel("example.com/app=web,kubernetes.io/metadata.name");
        let l = labels(json!({"example.com/app":"web","kubernetes.io/metadata.name":"x"}));
        assert!(s.matches(Some(&l)));
    }

    #[test]
    fn from_json_semantics() {
        let null = LabelSelector::from_json(&Value::Null).expect("null");
        assert!(!null.is_empty());
        assert!(!null.matches(None));
        assert!(!null.matches_object(&json!({"metadata":{"labels":{"a":"b"}}})));
        let empty = LabelSelector::from_json(&json!({})).expect("empty");
        assert!(empty.is_empty());
        assert!(empty.matches(None));
        let s = LabelSelector::from_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["fe", "be"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "team", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]
        }))
        .expect("sel");
        assert_eq!(
            s.to_string(),
            "app=web,env notin (prod),!legacy,team,tier in (be,fe)"
        );
        assert!(s.matches(Some(&labels(json!({"app":"web","tier":"fe","team":"x"})))));
        assert!(!s.matches(Some(&labels(
            json!({"app":"web","tier":"fe","team":"x","env":"prod"})
        ))));
        assert!(!s.matches(Some(&labels(json!({"app":"web","tier":"fe"})))));
    }

    #[test]
    fn from_json_errors() {
        let e =
            LabelSelector::from_json(&json!({"matchExpressions":[{"key":"a","operator":"Foo"}]}))
                .expect_err("op");
        assert_eq!(e, "\"Foo\" is not a valid label selector operator");
        let e = LabelSelector::from_json(
            &json!({"matchExpressions":[{"key":"a","operator":"In","values":[]}]}),
        )
        .expect_err("empty in");
        assert!(e.contains("values set can't be empty"));
        let e = LabelSelector::from_json(
            &json!({"matchExpressions":[{"key":"a","operator":"Exists","values":["x"]}]}),
        )
        .expect_err("exists values");
        assert!(e.contains("values set must be empty"));
        let e = LabelSelector::from_json(&json!({"matchLabels":{"a b":"x"}})).expect_err("key");
        assert!(e.starts_with("key: Invalid value: \"a b\""));
    }

    #[test]
    fn lexer_errors() {
        // `=!` is no token: `=` matched, then `!` is a new token.
        let e = LabelSelector::parse("a=!b").expect_err("=!");
        assert_eq!(
            e,
            "unable to parse requirement: found '!', expected: identifier"
        );
        let e = LabelSelector::parse("a!!b").expect_err("!!");
        assert!(e.contains("found '!'"), "{e}");
    }

    fn pods_fields() -> &'static [&'static str] {
        field_selector_fields("Pod")
    }

    #[test]
    fn field_selector_basic() {
        let f = FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed", pods_fields())
            .expect("parse");
        assert_eq!(f.exact("spec.nodeName"), Some("n1"));
        assert_eq!(f.exact("status.phase"), None);
        assert!(f.matches(&json!({"spec":{"nodeName":"n1"},"status":{"phase":"Running"}})));
        assert!(!f.matches(&json!({"spec":{"nodeName":"n1"},"status":{"phase":"Failed"}})));
        assert!(!f.matches(&json!({"spec":{"nodeName":"n2"}})));
        let f = FieldSelector::parse("metadata.name==x", pods_fields()).expect("==");
        assert_eq!(f.exact("metadata.name"), Some("x"));
    }

    #[test]
    fn field_selector_missing_reads_empty() {
        let f = FieldSelector::parse("spec.nodeName=", pods_fields()).expect("parse");
        assert!(f.matches(&json!({"spec":{}})));
        assert!(!f.matches(&json!({"spec":{"nodeName":"n"}})));
        let f = FieldSelector::parse("spec.nodeName!=", pods_fields()).expect("parse");
        assert!(f.matches(&json!({"spec":{"nodeName":"n"}})));
    }

    #[test]
    fn field_selector_non_strings() {
        let f = FieldSelector::parse("spec.hostNetwork=true", pods_fields()).expect("parse");
        assert!(f.matches(&json!({"spec":{"hostNetwork":true}})));
        let f = FieldSelector::parse("spec.hostNetwork=false", pods_fields()).expect("parse");
        assert!(f.matches(&json!({"spec":{}})));
        let f = FieldSelector::parse("status.replicas=0", field_selector_fields("ReplicaSet"))
            .expect("parse");
        assert!(f.matches(&json!({"status":{}})));
        let f = FieldSelector::parse("status.replicas=3", field_selector_fields("ReplicaSet"))
            .expect("parse");
        assert!(f.matches(&json!({"status":{"replicas":3}})));
    }

    #[test]
    fn field_selector_unknown_field() {
        let e = FieldSelector::parse("spec.foo=bar", pods_fields()).expect_err("unknown");
        assert_eq!(e, "field label not supported: spec.foo");
        let e = FieldSelector::parse("data.x=y", field_selector_fields("ConfigMap"))
            .expect_err("unknown");
        assert_eq!(
            e,
            "\"data.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        let e = FieldSelector::parse("metadata.namespace=x", field_selector_fields("Node"))
            .expect_err("node ns");
        assert_eq!(e, "field label not supported: metadata.namespace");
    }

    #[test]
    fn field_selector_escaping() {
        let f = FieldSelector::parse(r"metadata.name=a\,b\=c\\d", pods_fields()).expect("parse");
        assert_eq!(f.exact("metadata.name"), Some(r"a,b=c\d"));
        assert_eq!(f.to_string(), r"metadata.name=a\,b\=c\\d");
        let e = FieldSelector::parse(r"metadata.name=a\x", pods_fields()).expect_err("esc");
        assert_eq!(e, r"invalid field selector: invalid escape sequence: \x");
        let e = FieldSelector::parse("metadata.name=a=b", pods_fields()).expect_err("=");
        assert_eq!(
            e,
            "invalid field selector: unescaped character in value: 61"
        );
        let e = FieldSelector::parse(r"metadata.name=a\", pods_fields()).expect_err("trailing");
        assert_eq!(e, r"invalid field selector: invalid escape sequence: \");
        let e = FieldSelector::parse("metadata.name", pods_fields()).expect_err("no op");
        assert_eq!(
            e,
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
        );
    }

    #[test]
    fn field_selector_empty_and_events() {
        let f = FieldSelector::parse("", pods_fields()).expect("empty");
        assert!(f.is_empty());
        assert!(f.matches(&json!({})));
        assert!(FieldSelector::everything().is_empty());
        let ev = json!({"involvedObject":{"kind":"Pod","name":"p"},"source":{"component":"kubelet"},"type":"Normal"});
        let f = FieldSelector::parse(
            "involvedObject.kind=Pod,involvedObject.name=p,source=kubelet,type=Normal",
            field_selector_fields("Event"),
        )
        .expect("event");
        assert!(f.matches(&ev));
        let f = FieldSelector::parse("spec.host=n1", pods_fields()).expect("spec.host");
        assert_eq!(f.exact("spec.nodeName"), Some("n1"));
    }
}

//! Field errors as Kubernetes words them (apimachinery `field.Error`), Go value formatting for
//! their messages, and the name/metadata checks of apimachinery's validation packages.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::FieldError;

// ---------------------------------------------------------------------------------------------
// Field errors
// ---------------------------------------------------------------------------------------------

fn with_detail(mut s: String, detail: &str) -> String {
    if !detail.is_empty() {
        s.push_str(": ");
        s.push_str(detail);
    }
    s
}

fn err(field: &str, reason: &'static str, message: String) -> FieldError {
    FieldError {
        field: field.to_string(),
        reason,
        message,
    }
}

/// `field.Required`: `Required value[: detail]`.
pub fn required(field: &str, detail: &str) -> FieldError {
    err(
        field,
        "FieldValueRequired",
        with_detail("Required value".into(), detail),
    )
}

/// `field.Invalid`: `Invalid value: <value>[: detail]`; `value` is already Go-formatted
/// (see [`q`] for strings).
pub fn invalid(field: &str, value: impl AsRef<str>, detail: &str) -> FieldError {
    err(
        field,
        "FieldValueInvalid",
        with_detail(format!("Invalid value: {}", value.as_ref()), detail),
    )
}

/// `field.NotSupported`: `Unsupported value: <value>: supported values: "a", "b"`.
pub fn not_supported(field: &str, value: impl AsRef<str>, valid: &[&str]) -> FieldError {
    let quoted: Vec<String> = valid.iter().map(|v| q(v)).collect();
    let detail = if quoted.is_empty() {
        String::new()
    } else {
        format!("supported values: {}", quoted.join(", "))
    };
    err(
        field,
        "FieldValueNotSupported",
        with_detail(format!("Unsupported value: {}", value.as_ref()), &detail),
    )
}

/// `field.Forbidden`: `Forbidden[: detail]`.
pub fn forbidden(field: &str, detail: &str) -> FieldError {
    err(
        field,
        "FieldValueForbidden",
        with_detail("Forbidden".into(), detail),
    )
}

/// `field.Duplicate`: `Duplicate value: <value>`.
pub fn duplicate(field: &str, value: impl AsRef<str>) -> FieldError {
    err(
        field,
        "FieldValueDuplicate",
        format!("Duplicate value: {}", value.as_ref()),
    )
}

/// `field.NotFound`: `Not found: <value>`.
pub fn not_found(field: &str, value: impl AsRef<str>) -> FieldError {
    err(
        field,
        "FieldValueNotFound",
        format!("Not found: {}", value.as_ref()),
    )
}

/// `field.TooLong`: `Too long: may not be more than <n> bytes`.
pub fn too_long(field: &str, max: usize) -> FieldError {
    let unit = if max == 1 { "byte" } else { "bytes" };
    err(
        field,
        "FieldValueTooLong",
        format!("Too long: may not be more than {max} {unit}"),
    )
}

/// Joins a field path and a child name.
pub fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// `path[i]`.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// `path[key]`.
pub fn key(path: &str, k: &str) -> String {
    format!("{path}[{k}]")
}

// ---------------------------------------------------------------------------------------------
// Go value formatting (what `%q` / `%#v` print in Kubernetes' messages)
// ---------------------------------------------------------------------------------------------

/// Go's `%q` of a string.
pub fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%#v` of a `[]string`.
pub fn go_strings(v: Option<&[String]>) -> String {
    match v {
        None => "[]string(nil)".into(),
        Some(v) => {
            let items: Vec<String> = v.iter().map(|s| q(s)).collect();
            format!("[]string{{{}}}", items.join(", "))
        }
    }
}

/// Go's `%#v` of a `map[string]string` (keys sorted, as Go prints them).
pub fn go_map(m: Option<&BTreeMap<String, String>>) -> String {
    match m {
        None => "map[string]string(nil)".into(),
        Some(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}:{}", q(k), q(v)))
                .collect();
            format!("map[string]string{{{}}}", items.join(", "))
        }
    }
}

/// Go's `%#v` of a `metav1.LabelSelector`.
pub fn go_label_selector(s: &LabelSelector) -> String {
    let exprs = match &s.match_expressions {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(e) => {
            let items: Vec<String> = e
                .iter()
                .map(|r| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        q(&r.key),
                        q(&r.operator),
                        go_strings(r.values.as_deref())
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{}}}",
        go_map(s.match_labels.as_ref()),
        exprs
    )
}

/// Go's `%#v` of an `intstr.IntOrString`.
pub fn go_int_or_string(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => format!("intstr.IntOrString{{Type:0, IntVal:{i}, StrVal:\"\"}}"),
        IntOrString::String(s) => {
            format!("intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}", q(s))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Name checks (apimachinery util/validation)
// ---------------------------------------------------------------------------------------------

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const CONFIG_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_KEY_ERR: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";

/// apimachinery `validation.RegexError`.
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut s = msg.to_string();
    if examples.is_empty() {
        return format!("{s} (regex used for validation is '{fmt}')");
    }
    s.push_str(" (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push('\'');
        s.push_str(e);
        s.push_str("', ");
    }
    s.push_str("regex used for validation is '");
    s.push_str(fmt);
    s.push_str("')");
    s
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// The character rules of a DNS-1123 label (no length limit).
fn dns1123_label_chars(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn dns1123_subdomain_chars(s: &str) -> bool {
    s.split('.').all(dns1123_label_chars)
}

/// apimachinery `validation.IsDNS1123Label`.
pub fn dns1123_label_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !dns1123_label_chars(s) {
        if dns1123_subdomain_chars(s) {
            errs.push("must not contain dots".into());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// apimachinery `validation.IsDNS1123Subdomain`.
pub fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !dns1123_subdomain_chars(s) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// apimachinery `validation.IsDNS1035Label`.
pub fn dns1035_label_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !(dns1123_label_chars(s) && s.as_bytes()[0].is_ascii_lowercase()) {
        errs.push(regex_error(
            DNS1035_LABEL_ERR,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// apimachinery `validation.IsQualifiedName`.
pub fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for m in dns1123_subdomain_errors(prefix) {
                    errs.push(format!("prefix part {m}"));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_error(63)));
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// apimachinery `validation.IsValidLabelValue`.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// apimachinery `validation.IsConfigMapKey`.
pub fn config_key_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_error(253));
    }
    if value.is_empty()
        || !value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
    {
        errs.push(regex_error(
            CONFIG_KEY_ERR,
            CONFIG_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if value == "." {
        errs.push("must not be '.'".into());
    } else if value == ".." {
        errs.push("must not be '..'".into());
    } else if value.starts_with("..") {
        errs.push("must not start with '..'".into());
    }
    errs
}

/// apimachinery `validation.IsValidPortName`.
pub fn port_name_errors(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push(max_len_error(15));
    }
    if port.is_empty()
        || !port
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !port.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".into());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".into());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".into());
    }
    errs
}

/// apimachinery `validation.IsValidPortNum`.
pub fn port_num_errors(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec!["must be between 1 and 65535, inclusive".into()]
    }
}

/// apimachinery `path.IsValidPathSegmentName` (RBAC and generic object names).
pub fn path_segment_name_errors(name: &str) -> Vec<String> {
    for bad in [".", ".."] {
        if name == bad {
            return vec![format!("may not be '{bad}'")];
        }
    }
    path_segment_prefix_errors(name)
}

/// apimachinery `path.IsValidPathSegmentPrefix`.
fn path_segment_prefix_errors(name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    for bad in ["/", "%"] {
        if name.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

/// How a kind validates its names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    Subdomain,
    Label,
    Dns1035,
    PathSegment,
}

impl NameRule {
    /// The messages for `name`; with `prefix` (generateName) a trailing dash is allowed.
    pub fn errors(self, name: &str, prefix: bool) -> Vec<String> {
        let masked;
        let name = if prefix && name.ends_with('-') {
            masked = format!("{}a", &name[..name.len() - 1]);
            masked.as_str()
        } else {
            name
        };
        match self {
            NameRule::Subdomain => dns1123_subdomain_errors(name),
            NameRule::Label => dns1123_label_errors(name),
            NameRule::Dns1035 => dns1035_label_errors(name),
            NameRule::PathSegment if prefix => path_segment_prefix_errors(name),
            NameRule::PathSegment => path_segment_name_errors(name),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Metadata
// ---------------------------------------------------------------------------------------------

/// `v1validation.ValidateLabels`.
pub fn validate_labels(labels: Option<&BTreeMap<String, String>>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels.into_iter().flatten() {
        for m in qualified_name_errors(k) {
            errs.push(invalid(path, q(k), &m));
        }
        for m in label_value_errors(v) {
            errs.push(invalid(path, q(v), &m));
        }
    }
    errs
}

/// `ValidateAnnotations`: qualified-name keys (case-insensitive), total size <= 256 KiB.
fn validate_annotations(ann: Option<&BTreeMap<String, String>>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0usize;
    for (k, v) in ann.into_iter().flatten() {
        for m in qualified_name_errors(&k.to_lowercase()) {
            errs.push(invalid(path, q(k), &m));
        }
        total += k.len() + v.len();
    }
    if total > 256 * 1024 {
        errs.push(too_long(path, 256 * 1024));
    }
    errs
}

/// `ValidateObjectMeta`, with the kind's name rule. `namespaced` requires a namespace.
pub fn validate_object_meta(
    meta: &ObjectMeta,
    namespaced: bool,
    rule: NameRule,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(g) = meta.generate_name.as_deref().filter(|g| !g.is_empty()) {
        for m in rule.errors(g, true) {
            errs.push(invalid("metadata.generateName", q(g), &m));
        }
    }
    match meta.name.as_deref() {
        None | Some("") => errs.push(required(
            "metadata.name",
            "name or generateName is required",
        )),
        Some(name) => {
            for m in rule.errors(name, false) {
                errs.push(invalid("metadata.name", q(name), &m));
            }
        }
    }
    if namespaced {
        match meta.namespace.as_deref() {
            None | Some("") => errs.push(required("metadata.namespace", "")),
            Some(ns) => {
                for m in dns1123_label_errors(ns) {
                    errs.push(invalid("metadata.namespace", q(ns), &m));
                }
            }
        }
    } else if meta.namespace.as_deref().is_some_and(|n| !n.is_empty()) {
        errs.push(forbidden("metadata.namespace", "not allowed on this type"));
    }
    if let Some(g) = meta.generation.filter(|g| *g < 0) {
        errs.push(invalid(
            "metadata.generation",
            g.to_string(),
            "must be greater than or equal to 0",
        ));
    }
    errs.extend(validate_labels(meta.labels.as_ref(), "metadata.labels"));
    errs.extend(validate_annotations(
        meta.annotations.as_ref(),
        "metadata.annotations",
    ));
    let mut controller: Option<String> = None;
    for r in meta.owner_references.iter().flatten() {
        let path = "metadata.ownerReferences";
        let version = r.api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            errs.push(invalid(
                &child(path, "apiVersion"),
                q(&r.api_version),
                "version must not be empty",
            ));
        }
        if r.kind.is_empty() {
            errs.push(invalid(
                &child(path, "kind"),
                q(&r.kind),
                "must not be empty",
            ));
        }
        if r.name.is_empty() {
            errs.push(invalid(
                &child(path, "name"),
                q(&r.name),
                "must not be empty",
            ));
        }
        if r.uid.is_empty() {
            errs.push(invalid(&child(path, "uid"), q(&r.uid), "must not be empty"));
        }
        if r.controller == Some(true) {
            let this = format!("{}/{}", r.kind, r.name);
            match &controller {
                Some(first) => errs.push(invalid(
                    path,
                    "[]v1.OwnerReference{...}",
                    &format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}"),
                )),
                None => controller = Some(this),
            }
        }
    }
    let finalizers = meta.finalizers.as_deref().unwrap_or_default();
    for f in finalizers {
        for m in qualified_name_errors(f) {
            errs.push(invalid("metadata.finalizers", q(f), &m));
        }
    }
    if finalizers.iter().any(|f| f == "orphan")
        && finalizers.iter().any(|f| f == "foregroundDeletion")
    {
        errs.push(invalid(
            "metadata.finalizers",
            go_strings(Some(finalizers)),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Label selectors (metav1 validation and matching)
// ---------------------------------------------------------------------------------------------

/// `unversionedvalidation.ValidateLabelSelector` (label values checked strictly).
pub fn validate_label_selector(sel: &LabelSelector, path: &str) -> Vec<FieldError> {
    let mut errs = validate_labels(sel.match_labels.as_ref(), &child(path, "matchLabels"));
    for (i, r) in sel.match_expressions.iter().flatten().enumerate() {
        let p = index(&child(path, "matchExpressions"), i);
        let values = r.values.as_deref().unwrap_or_default();
        match r.operator.as_str() {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(required(
                        &child(&p, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(forbidden(
                        &child(&p, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            op => errs.push(invalid(
                &child(&p, "operator"),
                q(op),
                "not a valid selector operator",
            )),
        }
        for m in qualified_name_errors(&r.key) {
            errs.push(invalid(&child(&p, "key"), q(&r.key), &m));
        }
        for (j, v) in values.iter().enumerate() {
            for m in label_value_errors(v) {
                errs.push(invalid(&index(&child(&p, "values"), j), q(v), &m));
            }
        }
    }
    errs
}

/// Whether `metav1.LabelSelectorAsSelector` accepts the selector.
pub fn selector_convertible(sel: &LabelSelector) -> bool {
    let labels_ok = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| qualified_name_errors(k).is_empty() && label_value_errors(v).is_empty());
    let exprs_ok = sel.match_expressions.iter().flatten().all(|r| {
        let values = r.values.as_deref().unwrap_or_default();
        let op_ok = match r.operator.as_str() {
            "In" | "NotIn" => !values.is_empty(),
            "Exists" | "DoesNotExist" => values.is_empty(),
            _ => false,
        };
        op_ok
            && qualified_name_errors(&r.key).is_empty()
            && values.iter().all(|v| label_value_errors(v).is_empty())
    });
    labels_ok && exprs_ok
}

/// Whether a selector has no requirement.
pub fn selector_is_empty(sel: &LabelSelector) -> bool {
    sel.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
        && sel.match_expressions.as_ref().is_none_or(Vec::is_empty)
}

/// Whether labels satisfy a (convertible) selector.
pub fn selector_matches(sel: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k));
    let labels_ok = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| get(k) == Some(v));
    let exprs_ok = sel.match_expressions.iter().flatten().all(|r| {
        let values: BTreeSet<&str> = r.values.iter().flatten().map(String::as_str).collect();
        let have = get(&r.key).map(String::as_str);
        match r.operator.as_str() {
            "In" => have.is_some_and(|v| values.contains(v)),
            "NotIn" => have.is_none_or(|v| !values.contains(v)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

//! Label selectors (`matchLabels`/`matchExpressions`, as ReplicaSets and Deployments select
//! pods) and node selector requirements (node affinity: In, NotIn, Exists, DoesNotExist, Gt,
//! Lt), matched the way apimachinery matches them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

pub type Labels = BTreeMap<String, String>;

/// Whether `labels` match `selector`. An empty selector matches everything; a malformed one
/// (an unknown operator, In with no values) matches nothing, as apimachinery's conversion
/// would have failed.
pub fn matches(selector: &LabelSelector, labels: &Labels) -> bool {
    for (k, v) in selector.match_labels.iter().flatten() {
        if labels.get(k) != Some(v) {
            return false;
        }
    }
    selector
        .match_expressions
        .iter()
        .flatten()
        .all(|r| requirement_matches(r, labels))
}

fn requirement_matches(r: &LabelSelectorRequirement, labels: &Labels) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    let have = labels.get(&r.key);
    match r.operator.as_str() {
        "In" => !values.is_empty() && have.is_some_and(|v| values.contains(v)),
        "NotIn" => !values.is_empty() && have.is_none_or(|v| !values.contains(v)),
        "Exists" => values.is_empty() && have.is_some(),
        "DoesNotExist" => values.is_empty() && have.is_none(),
        _ => false,
    }
}

/// Whether a selector selects nothing (nil) or everything (empty): ReplicaSets refuse both.
pub fn is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|e| e.is_empty())
}

/// A selector as its query-string form (`a=b,c in (d,e)`), for list calls and Scale status.
pub fn to_query(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for r in selector.match_expressions.iter().flatten() {
        let vals = r.values.clone().unwrap_or_default().join(",");
        parts.push(match r.operator.as_str() {
            "In" => format!("{} in ({vals})", r.key),
            "NotIn" => format!("{} notin ({vals})", r.key),
            "Exists" => r.key.clone(),
            "DoesNotExist" => format!("!{}", r.key),
            other => format!("{} {other} ({vals})", r.key),
        });
    }
    parts.join(",")
}

/// A node selector requirement against a node's labels (or, for `matchFields`, its name
/// under the key `metadata.name`).
pub fn node_requirement_matches(r: &NodeSelectorRequirement, labels: &Labels) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    let have = labels.get(&r.key);
    match r.operator.as_str() {
        "In" => have.is_some_and(|v| values.contains(v)),
        "NotIn" => have.is_none_or(|v| !values.contains(v)),
        "Exists" => have.is_some(),
        "DoesNotExist" => have.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), [want]) = (have, values) else {
                return false;
            };
            match (have.parse::<i64>(), want.parse::<i64>()) {
                (Ok(h), Ok(w)) => {
                    if r.operator == "Gt" {
                        h > w
                    } else {
                        h < w
                    }
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// A node selector term: all its expressions and fields match (an empty term matches nothing).
pub fn node_term_matches(term: &NodeSelectorTerm, labels: &Labels, node_name: &str) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let name_fields: Labels = [("metadata.name".to_string(), node_name.to_string())].into();
    exprs.iter().all(|r| node_requirement_matches(r, labels))
        && fields
            .iter()
            .all(|r| node_requirement_matches(r, &name_fields))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sel(v: serde_json::Value) -> LabelSelector {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn label_selectors() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        let cases = [
            (json!({}), true),
            (json!({"matchLabels": {"app": "web"}}), true),
            (json!({"matchLabels": {"app": "db"}}), false),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "x"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "app", "operator": "Exists"}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "app", "operator": "In", "values": []}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "app", "operator": "Bogus"}]}),
                false,
            ),
        ];
        for (s, want) in cases {
            assert_eq!(matches(&sel(s.clone()), &l), want, "{s}");
        }
        assert!(is_empty(&sel(json!({}))));
        assert!(!is_empty(&sel(json!({"matchLabels": {"a": "b"}}))));
        assert_eq!(
            to_query(&sel(json!({"matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "t", "operator": "In", "values": ["a", "b"]},
                                     {"key": "x", "operator": "DoesNotExist"}]}))),
            "app=web,t in (a,b),!x"
        );
    }

    #[test]
    fn node_selector_terms() {
        let l = labels(&[("zone", "a"), ("cores", "8")]);
        let term =
            |v: serde_json::Value| -> NodeSelectorTerm { serde_json::from_value(v).unwrap() };
        assert!(node_term_matches(
            &term(
                json!({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]})
            ),
            &l,
            "n1"
        ));
        assert!(node_term_matches(
            &term(
                json!({"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]})
            ),
            &l,
            "n1"
        ));
        assert!(!node_term_matches(
            &term(
                json!({"matchExpressions": [{"key": "cores", "operator": "Lt", "values": ["4"]}]})
            ),
            &l,
            "n1"
        ));
        assert!(!node_term_matches(
            &term(
                json!({"matchExpressions": [{"key": "zone", "operator": "Gt", "values": ["x"]}]})
            ),
            &l,
            "n1"
        ));
        assert!(node_term_matches(
            &term(
                json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]})
            ),
            &l,
            "n1"
        ));
        assert!(!node_term_matches(
            &term(
                json!({"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]})
            ),
            &l,
            "n1"
        ));
        assert!(!node_term_matches(&term(json!({})), &l, "n1"));
    }
}

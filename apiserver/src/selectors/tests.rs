//! Label and field selector parsing, printing and matching, with apimachinery's messages.

use super::*;
use serde_json::{json, Map, Value};

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
    let e = LabelSelector::from_json(&json!({"matchExpressions":[{"key":"a","operator":"Foo"}]}))
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
    let e =
        FieldSelector::parse("data.x=y", field_selector_fields("ConfigMap")).expect_err("unknown");
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

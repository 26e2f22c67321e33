//! Fixtures shared by the managed-fields and apply tests: a Deployment, its schema node, a
//! writer, and the managedFields entry of one manager.

use serde_json::{json, Value};

use super::managed::Writer;
use crate::registry;
use crate::schema::{self, Node};

pub fn deployments() -> Node<'static> {
    schema::get().root(registry::lookup("apps", "v1", "deployments").expect("deployments"))
}

pub fn writer<'a>(manager: &'a str, now: &'a str) -> Writer<'a> {
    Writer {
        manager,
        api_version: "apps/v1",
        subresource: "",
        now,
        ignored: &["status"],
        only: &[],
    }
}

pub fn entry<'v>(obj: &'v Value, manager: &str) -> Option<&'v Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager)
}

pub fn deployment(replicas: i64, labels: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default", "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "d"}},
                 "template": {"metadata": {"labels": {"app": "d"}},
                              "spec": {"containers": [{"name": "c", "image": "i"}]}}}
    })
}

//! Server-side printing: the Table (meta.k8s.io/v1) columns and cells of each kind, as
//! kube-apiserver's printers compute them (k8s.io/kubernetes/pkg/printers/internalversion), so
//! `kubectl get` shows what users know: pods `NAME READY STATUS RESTARTS AGE` (`-o wide` adds
//! IP, NODE, ...), nodes `NAME STATUS ROLES AGE VERSION`, deployments
//! `NAME READY UP-TO-DATE AVAILABLE AGE`, and so on.
//!
//! The server computes every column, wide ones included (priority 1); kubectl hides those
//! without `-o wide`. Ages are relative to now, in Kubernetes' human duration format.

use std::collections::BTreeSet;

use serde_json::{json, Value};

/// One column: name, type, format, priority.
type Column = (&'static str, &'static str, &'static str, u8);

const NAME: Column = ("Name", "string", "name", 0);
const AGE: Column = ("Age", "string", "", 0);

/// The column definitions of a kind.
pub fn columns(kind: &str) -> Vec<Column> {
    let wide = |n: &'static str| (n, "string", "", 1);
    let s = |n: &'static str| (n, "string", "", 0);
    let i = |n: &'static str| (n, "integer", "", 0);
    match kind {
        "Pod" => vec![
            NAME,
            s("Ready"),
            s("Status"),
            s("Restarts"),
            AGE,
            wide("IP"),
            wide("Node"),
            wide("Nominated Node"),
            wide("Readiness Gates"),
        ],
        "Node" => vec![
            NAME,
            s("Status"),
            s("Roles"),
            AGE,
            s("Version"),
            wide("Internal-IP"),
            wide("External-IP"),
            wide("OS-Image"),
            wide("Kernel-Version"),
            wide("Container-Runtime"),
        ],
        "Namespace" => vec![NAME, s("Status"), AGE],
        "Service" => vec![
            NAME,
            s("Type"),
            s("Cluster-IP"),
            s("External-IP"),
            s("Port(s)"),
            AGE,
            wide("Selector"),
        ],
        "Endpoints" => vec![NAME, s("Endpoints"), AGE],
        "ConfigMap" => vec![NAME, i("Data"), AGE],
        "Secret" => vec![NAME, s("Type"), i("Data"), AGE],
        "ServiceAccount" => vec![NAME, i("Secrets"), AGE],
        "Event" => vec![
            s("Last Seen"),
            s("Type"),
            s("Reason"),
            s("Object"),
            wide("Subobject"),
            wide("Source"),
            s("Message"),
            wide("First Seen"),
            ("Count", "string", "", 1),
            ("Name", "string", "name", 1),
        ],
        "Deployment" => vec![
            NAME,
            s("Ready"),
            i("Up-to-date"),
            i("Available"),
            AGE,
            wide("Containers"),
            wide("Images"),
            wide("Selector"),
        ],
        "ReplicaSet" => vec![
            NAME,
            i("Desired"),
            i("Current"),
            i("Ready"),
            AGE,
            wide("Containers"),
            wide("Images"),
            wide("Selector"),
        ],
        "Lease" => vec![NAME, s("Holder"), AGE],
        "Role" | "ClusterRole" => vec![NAME, s("Created At")],
        "RoleBinding" | "ClusterRoleBinding" => vec![
            NAME,
            s("Role"),
            AGE,
            wide("Users"),
            wide("Groups"),
            wide("ServiceAccounts"),
        ],
        _ => vec![NAME, ("Created At", "date", "", 0)],
    }
}

fn description(column: &str) -> &'static str {
    match column {
        "Name" => "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        "Age" | "Created At" => "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.",
        "Ready" => "The aggregate readiness state of this object.",
        "Status" => "The aggregate status of this object.",
        "Restarts" => "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        _ => "",
    }
}

/// The `columnDefinitions` of a Table of `kind`.
pub fn column_definitions(kind: &str) -> Value {
    Value::Array(
        columns(kind)
            .into_iter()
            .map(|(name, ty, format, priority)| {
                json!({ "name": name, "type": ty, "format": format, "description": description(name), "priority": priority })
            })
            .collect(),
    )
}

fn get<'a>(v: &'a Value, path: &str) -> &'a Value {
    v.pointer(path).unwrap_or(&Value::Null)
}

fn text(v: &Value, path: &str) -> String {
    get(v, path).as_str().unwrap_or("").to_string()
}

fn int(v: &Value, path: &str) -> i64 {
    get(v, path).as_i64().unwrap_or(0)
}

fn items<'a>(v: &'a Value, path: &str) -> &'a [Value] {
    get(v, path).as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn or_none(s: String) -> String {
    if s.is_empty() {
        "<none>".into()
    } else {
        s
    }
}

fn parse_time(s: &str) -> Option<jiff::Timestamp> {
    s.parse::<jiff::Timestamp>().ok()
}

/// Kubernetes' `duration.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Kubernetes' `translateTimestampSince`: "<unknown>" for a missing time.
fn since(now: jiff::Timestamp, ts: &str) -> String {
    match parse_time(ts) {
        Some(t) => human_duration(now.duration_since(t).as_secs()),
        None => "<unknown>".into(),
    }
}

fn age(now: jiff::Timestamp, obj: &Value) -> String {
    since(
        now,
        get(obj, "/metadata/creationTimestamp")
            .as_str()
            .unwrap_or(""),
    )
}

/// A label selector as `labels.Selector.String()` writes it: requirements sorted by key.
fn selector_string(sel: &Value) -> String {
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(m) = get(sel, "/matchLabels").as_object() {
        for (k, v) in m {
            reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    for e in items(sel, "/matchExpressions") {
        let key = text(e, "/key");
        let mut values: Vec<String> = items(e, "/values")
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        values.sort();
        let r = match text(e, "/operator").as_str() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        };
        reqs.push((key, r));
    }
    reqs.sort();
    reqs.into_iter()
        .map(|(_, r)| r)
        .collect::<Vec<_>>()
        .join(",")
}

/// A map of labels as `labels.FormatLabels`: "k=v,k2=v2", or "<none>".
fn format_labels(m: &Value) -> String {
    let Some(m) = m.as_object().filter(|m| !m.is_empty()) else {
        return "<none>".into();
    };
    let mut pairs: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    pairs.join(",")
}

fn containers_and_images(containers: &[Value]) -> (String, String) {
    let names: Vec<String> = containers.iter().map(|c| text(c, "/name")).collect();
    let images: Vec<String> = containers.iter().map(|c| text(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// The cells of one object's row.
pub fn cells(kind: &str, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let name = json!(text(obj, "/metadata/name"));
    match kind {
        "Pod" => pod_cells(obj, now),
        "Node" => node_cells(obj, now),
        "Namespace" => vec![
            name,
            json!(text(obj, "/status/phase")),
            json!(age(now, obj)),
        ],
        "Service" => service_cells(obj, now),
        "Endpoints" => vec![name, json!(format_endpoints(obj)), json!(age(now, obj))],
        "ConfigMap" => {
            let n = get(obj, "/data").as_object().map_or(0, |m| m.len())
                + get(obj, "/binaryData").as_object().map_or(0, |m| m.len());
            vec![name, json!(n), json!(age(now, obj))]
        }
        "Secret" => {
            let n = get(obj, "/data").as_object().map_or(0, |m| m.len());
            vec![
                name,
                json!(text(obj, "/type")),
                json!(n),
                json!(age(now, obj)),
            ]
        }
        "ServiceAccount" => vec![
            name,
            json!(items(obj, "/secrets").len()),
            json!(age(now, obj)),
        ],
        "Event" => event_cells(obj, now),
        "Deployment" => {
            let (c, i) = containers_and_images(items(obj, "/spec/template/spec/containers"));
            let desired = get(obj, "/spec/replicas").as_i64().unwrap_or(1);
            vec![
                name,
                json!(format!("{}/{}", int(obj, "/status/readyReplicas"), desired)),
                json!(int(obj, "/status/updatedReplicas")),
                json!(int(obj, "/status/availableReplicas")),
                json!(age(now, obj)),
                json!(c),
                json!(i),
                json!(selector_string(get(obj, "/spec/selector"))),
            ]
        }
        "ReplicaSet" => {
            let (c, i) = containers_and_images(items(obj, "/spec/template/spec/containers"));
            vec![
                name,
                json!(get(obj, "/spec/replicas").as_i64().unwrap_or(1)),
                json!(int(obj, "/status/replicas")),
                json!(int(obj, "/status/readyReplicas")),
                json!(age(now, obj)),
                json!(c),
                json!(i),
                json!(selector_string(get(obj, "/spec/selector"))),
            ]
        }
        "Lease" => vec![
            name,
            json!(text(obj, "/spec/holderIdentity")),
            json!(age(now, obj)),
        ],
        "Role" | "ClusterRole" => vec![name, json!(created_at(obj))],
        "RoleBinding" | "ClusterRoleBinding" => {
            let subjects = items(obj, "/subjects");
            let of = |k: &str| -> String {
                subjects
                    .iter()
                    .filter(|s| text(s, "/kind") == k)
                    .map(|s| {
                        if k == "ServiceAccount" {
                            format!("{}/{}", text(s, "/namespace"), text(s, "/name"))
                        } else {
                            text(s, "/name")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    text(obj, "/roleRef/kind"),
                    text(obj, "/roleRef/name")
                )),
                json!(age(now, obj)),
                json!(of("User")),
                json!(of("Group")),
                json!(of("ServiceAccount")),
            ]
        }
        _ => vec![name, json!(created_at(obj))],
    }
}

fn created_at(obj: &Value) -> String {
    parse_time(
        get(obj, "/metadata/creationTimestamp")
            .as_str()
            .unwrap_or(""),
    )
    .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
    .unwrap_or_default()
}

fn is_restartable_init(spec: &Value, name: &str) -> bool {
    items(spec, "/initContainers")
        .iter()
        .any(|c| text(c, "/name") == name && text(c, "/restartPolicy") == "Always")
}

fn has_condition(obj: &Value, ty: &str, status: &str) -> bool {
    items(obj, "/status/conditions")
        .iter()
        .any(|c| text(c, "/type") == ty && text(c, "/status") == status)
}

fn later(a: Option<jiff::Timestamp>, b: &Value) -> Option<jiff::Timestamp> {
    let t = b.as_str().and_then(parse_time);
    match (a, t) {
        (Some(a), Some(t)) => Some(a.max(t)),
        (a, t) => a.or(t),
    }
}

/// printPod: READY, STATUS (the reason users see: Running, Pending, ContainerCreating,
/// CrashLoopBackOff, Init:0/1, Completed, Terminating, ...), RESTARTS with the last restart.
fn pod_cells(pod: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let spec = get(pod, "/spec");
    let mut total = items(spec, "/containers").len();
    let mut ready = 0;
    let mut restarts = 0i64;
    let mut last_restart: Option<jiff::Timestamp> = None;
    let mut init_restarts = 0i64;
    let mut last_init_restart: Option<jiff::Timestamp> = None;
    let phase = text(pod, "/status/phase");
    let mut reason = phase.clone();
    let status_reason = text(pod, "/status/reason");
    if !status_reason.is_empty() {
        reason = status_reason.clone();
    }
    for c in items(pod, "/status/conditions") {
        if text(c, "/type") == "PodScheduled" && text(c, "/reason") == "SchedulingGated" {
            reason = "SchedulingGated".into();
        }
    }
    let init_specs = items(spec, "/initContainers");
    total += init_specs
        .iter()
        .filter(|c| text(c, "/restartPolicy") == "Always")
        .count();
    let mut initializing = false;
    for (i, c) in items(pod, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        let name = text(c, "/name");
        let restartable = is_restartable_init(spec, &name);
        restarts += int(c, "/restartCount");
        last_restart = later(last_restart, get(c, "/lastState/terminated/finishedAt"));
        if restartable {
            init_restarts += int(c, "/restartCount");
            last_init_restart = later(
                last_init_restart,
                get(c, "/lastState/terminated/finishedAt"),
            );
        }
        let terminated = get(c, "/state/terminated");
        let waiting_reason = text(c, "/state/waiting/reason");
        if terminated.is_object() && int(terminated, "/exitCode") == 0 {
            continue;
        }
        if restartable && get(c, "/started").as_bool() == Some(true) {
            if get(c, "/ready").as_bool() == Some(true) {
                ready += 1;
            }
            continue;
        }
        if terminated.is_object() {
            let r = text(terminated, "/reason");
            reason = if !r.is_empty() {
                format!("Init:{r}")
            } else if int(terminated, "/signal") != 0 {
                format!("Init:Signal:{}", int(terminated, "/signal"))
            } else {
                format!("Init:ExitCode:{}", int(terminated, "/exitCode"))
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }
    if !initializing || has_condition(pod, "Initialized", "True") {
        restarts = init_restarts;
        last_restart = last_init_restart;
        let mut has_running = false;
        for c in items(pod, "/status/containerStatuses").iter().rev() {
            restarts += int(c, "/restartCount");
            last_restart = later(last_restart, get(c, "/lastState/terminated/finishedAt"));
            let waiting = text(c, "/state/waiting/reason");
            let terminated = get(c, "/state/terminated");
            if !waiting.is_empty() {
                reason = waiting;
            } else if terminated.is_object() && !text(terminated, "/reason").is_empty() {
                reason = text(terminated, "/reason");
            } else if terminated.is_object() {
                reason = if int(terminated, "/signal") != 0 {
                    format!("Signal:{}", int(terminated, "/signal"))
                } else {
                    format!("ExitCode:{}", int(terminated, "/exitCode"))
                };
            } else if get(c, "/ready").as_bool() == Some(true)
                && get(c, "/state/running").is_object()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if has_condition(pod, "Ready", "True") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }
    let terminal = phase == "Succeeded" || phase == "Failed";
    if get(pod, "/metadata/deletionTimestamp").is_string() {
        if status_reason == "NodeLost" {
            reason = "Unknown".into();
        } else if !terminal {
            reason = "Terminating".into();
        }
    }
    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!(
            "{restarts} ({} ago)",
            human_duration(now.duration_since(t).as_secs())
        ),
        _ => restarts.to_string(),
    };
    let ip = items(pod, "/status/podIPs")
        .first()
        .map(|p| text(p, "/ip"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| text(pod, "/status/podIP"));
    let gates = items(spec, "/readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let t = gates
            .iter()
            .filter(|g| has_condition(pod, &text(g, "/conditionType"), "True"))
            .count();
        format!("{t}/{}", gates.len())
    };
    vec![
        json!(text(pod, "/metadata/name")),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_cell),
        json!(age(now, pod)),
        json!(or_none(ip)),
        json!(or_none(text(pod, "/spec/nodeName"))),
        json!(or_none(text(pod, "/status/nominatedNodeName"))),
        json!(readiness_gates),
    ]
}

/// printNode: Ready/NotReady/Unknown (+SchedulingDisabled), roles from the node-role labels.
fn node_cells(node: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let mut status: Vec<String> = Vec::new();
    if let Some(c) = items(node, "/status/conditions")
        .iter()
        .find(|c| text(c, "/type") == "Ready")
    {
        status.push(if text(c, "/status") == "True" {
            "Ready".into()
        } else {
            "NotReady".into()
        });
    }
    if status.is_empty() {
        status.push("Unknown".into());
    }
    if get(node, "/spec/unschedulable").as_bool() == Some(true) {
        status.push("SchedulingDisabled".into());
    }
    let mut roles = BTreeSet::new();
    if let Some(labels) = get(node, "/metadata/labels").as_object() {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_string());
                }
            } else if k == "kubernetes.io/role" {
                if let Some(v) = v.as_str().filter(|v| !v.is_empty()) {
                    roles.insert(v.to_string());
                }
            }
        }
    }
    let address = |ty: &str| {
        items(node, "/status/addresses")
            .iter()
            .find(|a| text(a, "/type") == ty)
            .map(|a| text(a, "/address"))
            .unwrap_or_else(|| "<none>".into())
    };
    let unknown = |s: String| {
        if s.is_empty() {
            "<unknown>".to_string()
        } else {
            s
        }
    };
    vec![
        json!(text(node, "/metadata/name")),
        json!(status.join(",")),
        json!(or_none(roles.into_iter().collect::<Vec<_>>().join(","))),
        json!(age(now, node)),
        json!(text(node, "/status/nodeInfo/kubeletVersion")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(unknown(text(node, "/status/nodeInfo/osImage"))),
        json!(unknown(text(node, "/status/nodeInfo/kernelVersion"))),
        json!(unknown(text(
            node,
            "/status/nodeInfo/containerRuntimeVersion"
        ))),
    ]
}

fn service_cells(svc: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let ty = {
        let t = text(svc, "/spec/type");
        if t.is_empty() {
            "ClusterIP".to_string()
        } else {
            t
        }
    };
    let cluster_ip = items(svc, "/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| Some(text(svc, "/spec/clusterIP")).filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "<none>".into());
    let external: Vec<String> = items(svc, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let external_ip = match ty.as_str() {
        "ClusterIP" | "NodePort" => or_none(external.join(",")),
        "LoadBalancer" => {
            let mut ips: Vec<String> = items(svc, "/status/loadBalancer/ingress")
                .iter()
                .map(|i| {
                    let ip = text(i, "/ip");
                    if ip.is_empty() {
                        text(i, "/hostname")
                    } else {
                        ip
                    }
                })
                .filter(|s| !s.is_empty())
                .collect();
            ips.extend(external);
            if ips.is_empty() {
                "<pending>".into()
            } else {
                ips.join(",")
            }
        }
        "ExternalName" => text(svc, "/spec/externalName"),
        _ => "<unknown>".into(),
    };
    let ports: Vec<String> = items(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let proto = {
                let p = text(p, "/protocol");
                if p.is_empty() {
                    "TCP".to_string()
                } else {
                    p
                }
            };
            let node_port = int(p, "/nodePort");
            if node_port != 0 {
                format!("{}:{node_port}/{proto}", int(p, "/port"))
            } else {
                format!("{}/{proto}", int(p, "/port"))
            }
        })
        .collect();
    vec![
        json!(text(svc, "/metadata/name")),
        json!(ty),
        json!(cluster_ip),
        json!(external_ip),
        json!(or_none(ports.join(","))),
        json!(age(now, svc)),
        json!(format_labels(get(svc, "/spec/selector"))),
    ]
}

/// formatEndpoints: up to three `ip:port`, then "+ N more...".
fn format_endpoints(ep: &Value) -> String {
    let subsets = items(ep, "/subsets");
    if subsets.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for ss in subsets {
        let addrs = items(ss, "/addresses");
        let ports = items(ss, "/ports");
        if ports.is_empty() {
            count += addrs.len();
            for a in addrs {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(text(a, "/ip"));
            }
            continue;
        }
        for p in ports {
            count += addrs.len();
            for a in addrs {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                let ip = text(a, "/ip");
                let port = int(p, "/port");
                list.push(if ip.contains(':') {
                    format!("[{ip}]:{port}")
                } else {
                    format!("{ip}:{port}")
                });
            }
        }
    }
    let s = list.join(",");
    if more {
        format!("{s} + {} more...", count - MAX)
    } else {
        s
    }
}

fn event_cells(ev: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let first_ts = text(ev, "/firstTimestamp");
    let first = if first_ts.is_empty() {
        since(now, &text(ev, "/eventTime"))
    } else {
        since(now, &first_ts)
    };
    let last_ts = text(ev, "/lastTimestamp");
    let mut last = if last_ts.is_empty() {
        first.clone()
    } else {
        since(now, &last_ts)
    };
    let mut count = int(ev, "/count");
    if get(ev, "/series").is_object() {
        last = since(now, &text(ev, "/series/lastObservedTime"));
        count = int(ev, "/series/count");
    } else if count == 0 {
        count = 1;
    }
    let kind = text(ev, "/involvedObject/kind").to_lowercase();
    let obj_name = text(ev, "/involvedObject/name");
    let target = if obj_name.is_empty() {
        kind
    } else {
        format!("{kind}/{obj_name}")
    };
    let component = {
        let c = text(ev, "/source/component");
        if c.is_empty() {
            text(ev, "/reportingComponent")
        } else {
            c
        }
    };
    let host = {
        let h = text(ev, "/source/host");
        if h.is_empty() {
            text(ev, "/reportingInstance")
        } else {
            h
        }
    };
    let source = match (component.is_empty(), host.is_empty()) {
        (true, _) => String::new(),
        (false, true) => component,
        (false, false) => format!("{component}, {host}"),
    };
    vec![
        json!(last),
        json!(text(ev, "/type")),
        json!(text(ev, "/reason")),
        json!(target),
        json!(text(ev, "/involvedObject/fieldPath")),
        json!(source),
        json!(text(ev, "/message").trim()),
        json!(first),
        json!(count.to_string()),
        json!(text(ev, "/metadata/name")),
    ]
}

/// Row conditions: a finished pod's row says so (kubectl uses it to dim completed pods).
pub fn row_conditions(kind: &str, obj: &Value) -> Option<Value> {
    if kind != "Pod" {
        return None;
    }
    match text(obj, "/status/phase").as_str() {
        "Succeeded" => Some(
            json!([{ "type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully." }]),
        ),
        "Failed" => Some(
            json!([{ "type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed." }]),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests;

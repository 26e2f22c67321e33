//! End-to-end: the real scheduler, controller-manager and kubelets (all `strata` processes)
//! over the real apiserver over a three-member store, doing what a cluster does: a Deployment
//! rolls out, scales, rolls to a new image without dropping below its allowed availability
//! while the store leader is killed -9; a dead kubelet's node goes NotReady and its pods come
//! back elsewhere; of two schedulers and two controller-managers only the lease holders act,
//! and the standbys take over when they die; the garbage collector orphans or deletes
//! dependents as asked and a deleted namespace is emptied before it goes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use strata_tests::components::{
    args, available, deployment, eventually, fast_leader_election, kubeconfig, pods, Component,
};
use strata_tests::kube::{ApiserverProc, Kube};
use strata_tests::Cluster;

const NS: &str = "default";
const LONG: Duration = Duration::from_secs(90);

/// A controller-manager with test timings (nodes declared dead after 4 s, evicted 2 s later).
fn controller_manager(api: &ApiserverProc, dir: &std::path::Path, name: &str) -> Component {
    let kc = kubeconfig(api, dir, "system:kube-controller-manager", &[]);
    let mut a = args(&["controller-manager", "--kubeconfig"]);
    a.push(kc.display().to_string());
    a.extend(args(&[
        "--node-monitor-period",
        "500ms",
        "--node-monitor-grace-period",
        "4s",
        "--pod-eviction-timeout",
        "2s",
    ]));
    a.extend(fast_leader_election());
    Component::start(dir, name, &a)
}

fn scheduler(api: &ApiserverProc, dir: &std::path::Path, name: &str) -> Component {
    let kc = kubeconfig(api, dir, "system:kube-scheduler", &[]);
    let mut a = args(&["scheduler", "--kubeconfig"]);
    a.push(kc.display().to_string());
    a.extend(fast_leader_election());
    Component::start(dir, name, &a)
}

/// A sim kubelet for `node` acting as system:node:<node>.
fn sim_kubelet(api: &ApiserverProc, dir: &std::path::Path, node: &str) -> Component {
    let kc = kubeconfig(api, dir, &format!("system:node:{node}"), &["system:nodes"]);
    let mut a = args(&["kubelet", "--kubeconfig"]);
    a.push(kc.display().to_string());
    a.extend(args(&[
        "--node-name",
        node,
        "--runtime",
        "sim",
        "--sim-startup-delay",
        "300ms",
    ]));
    a.extend(args(&[
        "--node-lease-duration-seconds",
        "2",
        "--node-status-update-frequency",
        "1s",
    ]));
    a.push("--root-dir".into());
    a.push(dir.join("kubelet").display().to_string());
    Component::start(dir, &format!("kubelet-{node}"), &a)
}

async fn ready_nodes(kube: &Kube) -> Vec<String> {
    let (code, list) = kube.get("/api/v1/nodes").await;
    if code != 200 {
        return vec![];
    }
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| {
            n["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        })
        .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

async fn deployment_status(kube: &Kube, name: &str) -> Value {
    let (_, d) = kube
        .get(&format!("/apis/apps/v1/namespaces/{NS}/deployments/{name}"))
        .await;
    d
}

/// The deployment reports every replica updated and available, nothing else.
async fn rolled_out(kube: &Kube, name: &str, replicas: i64) -> bool {
    let d = deployment_status(kube, name).await;
    let s = &d["status"];
    d["metadata"]["generation"] == s["observedGeneration"]
        && s["replicas"] == json!(replicas)
        && s["updatedReplicas"] == json!(replicas)
        && s["availableReplicas"] == json!(replicas)
        && pods(kube, NS, name)
            .await
            .iter()
            .filter(|p| available(p))
            .count() as i64
            == replicas
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_roll_out_scale_and_survive_store_leader_and_kubelet_failures() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let mut cluster = Cluster::start(&dir.join("store"), 3, &[]);
    let urls: Vec<String> = cluster.members.iter().map(|m| m.url()).collect();
    let api = ApiserverProc::start(&dir.join("api"), &urls.join(","), &[]).await;
    let admin = api.admin();
    let _sched = scheduler(&api, &dir.join("sched"), "scheduler");
    let _cm = controller_manager(&api, &dir.join("cm"), "controller-manager");
    let mut kubelets: BTreeMap<String, Component> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| (n.to_string(), sim_kubelet(&api, &dir.join(n), n)))
        .collect();
    eventually("three Ready nodes", LONG, || async {
        ready_nodes(&admin).await.len() == 3
    })
    .await;

    // 6 replicas over 3 nodes.
    let (code, body) = admin
        .post(
            &format!("/apis/apps/v1/namespaces/{NS}/deployments"),
            &deployment("web", 6, "web:1"),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    eventually("6 available pods", LONG, || rolled_out(&admin, "web", 6)).await;
    let spread: BTreeMap<String, usize> =
        pods(&admin, NS, "web")
            .await
            .iter()
            .fold(BTreeMap::new(), |mut m, p| {
                *m.entry(p["spec"]["nodeName"].as_str().unwrap_or("").to_string())
                    .or_insert(0) += 1;
                m
            });
    assert_eq!(
        spread.len(),
        3,
        "pods spread over all three nodes: {spread:?}"
    );
    assert!(
        spread.values().all(|n| *n == 2),
        "least-allocated scoring spreads 6 pods 2/2/2: {spread:?}"
    );

    // Scale up and down.
    let scale = |n: i64| {
        let admin = admin.clone();
        async move {
            let (code, body) = admin
                .merge_patch(
                    &format!("/apis/apps/v1/namespaces/{NS}/deployments/web"),
                    &json!({"spec": {"replicas": n}}),
                )
                .await;
            assert_eq!(code, 200, "{body}");
        }
    };
    scale(10).await;
    eventually("10 available pods", LONG, || rolled_out(&admin, "web", 10)).await;
    scale(2).await;
    eventually("2 pods left", LONG, || async {
        rolled_out(&admin, "web", 2).await
            && pods(&admin, NS, "web")
                .await
                .iter()
                .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                .count()
                == 2
    })
    .await;
    scale(6).await;
    eventually("6 available pods again", LONG, || {
        rolled_out(&admin, "web", 6)
    })
    .await;

    // A rolling update, watched: never fewer than replicas - maxUnavailable (6 - 1) available.
    let min_seen = Arc::new(AtomicI64::new(i64::MAX));
    let watching = Arc::new(AtomicBool::new(true));
    let monitor = {
        let (admin, min_seen, watching) = (admin.clone(), min_seen.clone(), watching.clone());
        tokio::spawn(async move {
            while watching.load(Ordering::Relaxed) {
                let (code, list) = admin
                    .get(&format!(
                        "/api/v1/namespaces/{NS}/pods?labelSelector=app%3Dweb"
                    ))
                    .await;
                if code == 200 {
                    let n = list["items"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|p| available(p))
                        .count() as i64;
                    min_seen.fetch_min(n, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let (code, body) = admin
        .merge_patch(&format!("/apis/apps/v1/namespaces/{NS}/deployments/web"), &json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "web:2", "command": ["sleep", "3600"], "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}}))
        .await;
    assert_eq!(code, 200, "{body}");
    // Kill -9 the store leader in the middle of it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let leader = cluster.wait_leader();
    cluster.members[leader].kill9();
    eventually("the rollout to web:2 to finish", LONG, || async {
        rolled_out(&admin, "web", 6).await
            && pods(&admin, NS, "web")
                .await
                .iter()
                .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                .all(|p| p["spec"]["containers"][0]["image"] == "web:2")
    })
    .await;
    watching.store(false, Ordering::Relaxed);
    monitor.await.expect("monitor");
    let min = min_seen.load(Ordering::Relaxed);
    assert!(
        min >= 5,
        "availability dropped to {min} during the rolling update (allowed: 5)"
    );
    cluster.members[leader].start();

    // Nothing lost: two ReplicaSets (revisions 1 and 2), the old one scaled to zero.
    let (_, rss) = admin
        .get(&format!("/apis/apps/v1/namespaces/{NS}/replicasets"))
        .await;
    let mut revs: Vec<(String, i64)> = rss["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                r["spec"]["replicas"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    revs.sort();
    assert_eq!(revs, vec![("1".to_string(), 0), ("2".to_string(), 6)]);
    let d = deployment_status(&admin, "web").await;
    let conds = d["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        conds
            .iter()
            .any(|c| c["type"] == "Available" && c["status"] == "True"),
        "{conds:?}"
    );
    assert!(
        conds
            .iter()
            .any(|c| c["type"] == "Progressing" && c["reason"] == "NewReplicaSetAvailable"),
        "{conds:?}"
    );

    // Kill a kubelet: its node goes Unknown and tainted, its pods come back elsewhere.
    let victim = pods(&admin, NS, "web")
        .await
        .iter()
        .filter_map(|p| p["spec"]["nodeName"].as_str().map(str::to_string))
        .next()
        .expect("a node with pods");
    kubelets.get_mut(&victim).expect("kubelet").kill9();
    eventually(
        "the dead node to become Ready=Unknown with the unreachable taint",
        LONG,
        || async {
            let (_, n) = admin.get(&format!("/api/v1/nodes/{victim}")).await;
            let unknown = n["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "Unknown")
            });
            let tainted = n["spec"]["taints"].as_array().is_some_and(|ts| {
                ts.iter().any(|t| {
                    t["key"] == "node.kubernetes.io/unreachable" && t["effect"] == "NoExecute"
                })
            });
            unknown && tainted
        },
    )
    .await;
    eventually("6 available pods on the two live nodes", LONG, || async {
        let ps = pods(&admin, NS, "web").await;
        let live: Vec<&Value> = ps.iter().filter(|p| available(p)).collect();
        live.len() == 6
            && live
                .iter()
                .all(|p| p["spec"]["nodeName"] != victim.as_str())
    })
    .await;
    for (name, k) in kubelets.iter_mut() {
        if name != &victim {
            assert!(k.is_running(), "kubelet {name} died:\n{}", k.log_text());
        }
    }
}

/// Creates the ClusterRoleBinding that lets `user` act as any node (hollow kubelets).
async fn bind_hollow(admin: &Kube, user: &str) {
    let (code, body) = admin
        .post(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": user},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:node"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
}

async fn lease_holder(kube: &Kube, name: &str) -> Option<String> {
    let (code, l) = kube
        .get(&format!(
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}"
        ))
        .await;
    (code == 200)
        .then(|| l["spec"]["holderIdentity"].as_str().map(str::to_string))
        .flatten()
}

/// Every reportingInstance of events with `reason`.
async fn reporters(kube: &Kube, reason: &str) -> Vec<String> {
    let (_, list) = kube.get(&format!("/api/v1/namespaces/{NS}/events")).await;
    let mut out: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["reason"] == reason)
        .filter_map(|e| e["reportingInstance"].as_str().map(str::to_string))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_lease_holders_act_standbys_take_over_and_objects_are_collected() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let cluster = Cluster::start(&dir.join("store"), 1, &[]);
    let api = ApiserverProc::start(&dir.join("api"), &cluster.members[0].url(), &[]).await;
    let admin = api.admin();
    let mut scheds = [
        scheduler(&api, &dir.join("s1"), "scheduler-1"),
        scheduler(&api, &dir.join("s2"), "scheduler-2"),
    ];
    let mut cms = [
        controller_manager(&api, &dir.join("c1"), "cm-1"),
        controller_manager(&api, &dir.join("c2"), "cm-2"),
    ];
    // Two hollow nodes in one kubelet process, acting through the system:node role.
    bind_hollow(&admin, "hollow").await;
    let kc = kubeconfig(&api, &dir.join("k"), "hollow", &[]);
    let mut a = args(&["kubelet", "--kubeconfig"]);
    a.push(kc.display().to_string());
    a.extend(args(&[
        "--node-name",
        "hollow",
        "--hollow-nodes",
        "2",
        "--sim-startup-delay",
        "100ms",
        "--node-lease-duration-seconds",
        "2",
    ]));
    let _kubelet = Component::start(&dir.join("k"), "kubelet", &a);
    eventually("two hollow nodes Ready", LONG, || async {
        ready_nodes(&admin).await.len() == 2
    })
    .await;

    let ids = |c: &[Component; 2]| -> [String; 2] {
        [
            c[0].identity().expect("identity logged"),
            c[1].identity().expect("identity logged"),
        ]
    };
    eventually("identities in the logs", LONG, || async {
        scheds
            .iter()
            .chain(cms.iter())
            .all(|c| c.identity().is_some())
    })
    .await;
    let (sched_ids, cm_ids) = (ids(&scheds), ids(&cms));
    eventually("both leases held", LONG, || async {
        lease_holder(&admin, "kube-scheduler")
            .await
            .is_some_and(|h| sched_ids.contains(&h))
            && lease_holder(&admin, "kube-controller-manager")
                .await
                .is_some_and(|h| cm_ids.contains(&h))
    })
    .await;
    let sched_leader = lease_holder(&admin, "kube-scheduler")
        .await
        .expect("holder");
    let cm_leader = lease_holder(&admin, "kube-controller-manager")
        .await
        .expect("holder");

    let (code, body) = admin
        .post(
            &format!("/apis/apps/v1/namespaces/{NS}/deployments"),
            &deployment("ha", 2, "ha:1"),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    eventually("2 available pods", LONG, || rolled_out(&admin, "ha", 2)).await;
    eventually("Scheduled and SuccessfulCreate events", LONG, || async {
        !reporters(&admin, "Scheduled").await.is_empty()
            && !reporters(&admin, "SuccessfulCreate").await.is_empty()
    })
    .await;
    assert_eq!(
        reporters(&admin, "Scheduled").await,
        vec![sched_leader.clone()],
        "only the scheduler holding the lease binds"
    );
    assert_eq!(
        reporters(&admin, "SuccessfulCreate").await,
        vec![cm_leader.clone()],
        "only the controller-manager holding the lease creates pods"
    );

    // Kill both leaders: the standbys take over and keep the cluster working.
    let si = sched_ids
        .iter()
        .position(|i| *i == sched_leader)
        .expect("leader is one of ours");
    let ci = cm_ids
        .iter()
        .position(|i| *i == cm_leader)
        .expect("leader is one of ours");
    scheds[si].kill9();
    cms[ci].kill9();
    let (new_sched, new_cm) = (sched_ids[1 - si].clone(), cm_ids[1 - ci].clone());
    eventually("the standbys to hold the leases", LONG, || async {
        lease_holder(&admin, "kube-scheduler").await.as_deref() == Some(new_sched.as_str())
            && lease_holder(&admin, "kube-controller-manager")
                .await
                .as_deref()
                == Some(new_cm.as_str())
    })
    .await;
    let (code, body) = admin
        .merge_patch(
            &format!("/apis/apps/v1/namespaces/{NS}/deployments/ha"),
            &json!({"spec": {"replicas": 4}}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    eventually("4 available pods under the new leaders", LONG, || {
        rolled_out(&admin, "ha", 4)
    })
    .await;
    let mut want = vec![sched_leader, new_sched];
    want.sort();
    assert_eq!(reporters(&admin, "Scheduled").await, want);
    let mut want = vec![cm_leader, new_cm];
    want.sort();
    assert_eq!(reporters(&admin, "SuccessfulCreate").await, want);

    // Garbage collection. Orphan: the Deployment goes, its ReplicaSet stays, unowned.
    let (code, body) = admin
        .delete_with(
            &format!("/apis/apps/v1/namespaces/{NS}/deployments/ha"),
            &json!({"propagationPolicy": "Orphan"}),
        )
        .await;
    assert!(code == 200 || code == 202, "{body}");
    eventually(
        "the deployment gone and its ReplicaSet orphaned",
        LONG,
        || async {
            let (dcode, _) = admin
                .get(&format!("/apis/apps/v1/namespaces/{NS}/deployments/ha"))
                .await;
            let (_, rss) = admin
                .get(&format!(
                    "/apis/apps/v1/namespaces/{NS}/replicasets?labelSelector=app%3Dha"
                ))
                .await;
            let items = rss["items"].as_array().cloned().unwrap_or_default();
            dcode == 404
                && items.len() == 1
                && items[0]["metadata"]["ownerReferences"]
                    .as_array()
                    .is_none_or(|o| o.is_empty())
        },
    )
    .await;
    assert_eq!(
        pods(&admin, NS, "ha")
            .await
            .iter()
            .filter(|p| available(p))
            .count(),
        4,
        "orphaned pods keep running"
    );
    // Foreground: the ReplicaSet waits for its pods to be gone.
    let (_, rss) = admin
        .get(&format!(
            "/apis/apps/v1/namespaces/{NS}/replicasets?labelSelector=app%3Dha"
        ))
        .await;
    let rs = rss["items"][0]["metadata"]["name"]
        .as_str()
        .expect("replica set")
        .to_string();
    let (code, body) = admin
        .delete_with(
            &format!("/apis/apps/v1/namespaces/{NS}/replicasets/{rs}"),
            &json!({"propagationPolicy": "Foreground"}),
        )
        .await;
    assert!(code == 200 || code == 202, "{body}");
    eventually("the ReplicaSet and its pods gone", LONG, || async {
        let (code, _) = admin
            .get(&format!("/apis/apps/v1/namespaces/{NS}/replicasets/{rs}"))
            .await;
        code == 404 && pods(&admin, NS, "ha").await.is_empty()
    })
    .await;
    // Namespace deletion: its content goes first, then the namespace.
    let (code, body) = admin
        .post(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = admin
        .post(
            "/apis/apps/v1/namespaces/doomed/deployments",
            &deployment("inside", 1, "x:1"),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    eventually("a pod running in the namespace", LONG, || async {
        pods(&admin, "doomed", "inside").await.iter().any(available)
    })
    .await;
    let (code, body) = admin.delete("/api/v1/namespaces/doomed").await;
    assert_eq!(code, 200, "{body}");
    eventually("the namespace and everything in it gone", LONG, || async {
        let (code, _) = admin.get("/api/v1/namespaces/doomed").await;
        code == 404
    })
    .await;

    for c in scheds.iter_mut().chain(cms.iter_mut()) {
        if c.is_running() {
            assert!(
                c.terminate(),
                "{} did not stop cleanly:\n{}",
                c.name,
                c.log_text()
            );
        }
    }
}

/// The container statuses of pod `name`.
async fn pod(kube: &Kube, name: &str) -> Value {
    let (_, p) = kube
        .get(&format!("/api/v1/namespaces/{NS}/pods/{name}"))
        .await;
    p
}

fn container_status(p: &Value) -> Value {
    p["status"]["containerStatuses"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_runtime_runs_restarts_probes_and_stops_real_processes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let work = dir.join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    let cluster = Cluster::start(&dir.join("store"), 1, &[]);
    let api = ApiserverProc::start(&dir.join("api"), &cluster.members[0].url(), &[]).await;
    let admin = api.admin();
    let kc = kubeconfig(&api, &dir.join("sched"), "system:kube-scheduler", &[]);
    let _sched = Component::start(
        &dir.join("sched"),
        "scheduler",
        &[
            String::from("scheduler"),
            "--kubeconfig".into(),
            kc.display().to_string(),
            "--leader-elect=false".into(),
        ],
    );
    let kc = kubeconfig(&api, &dir.join("k"), "system:node:p1", &["system:nodes"]);
    let mut a = args(&["kubelet", "--kubeconfig"]);
    a.push(kc.display().to_string());
    a.extend(args(&[
        "--node-name",
        "p1",
        "--runtime",
        "process",
        "--container-restart-backoff",
        "500ms",
        "--node-lease-duration-seconds",
        "4",
    ]));
    a.push("--root-dir".into());
    a.push(dir.join("kubelet").display().to_string());
    let mut kubelet = Component::start(&dir.join("k"), "kubelet", &a);
    eventually("the node Ready", LONG, || async {
        ready_nodes(&admin).await.len() == 1
    })
    .await;
    let w = work.display().to_string();
    let create = |name: &str, spec: Value| {
        let admin = admin.clone();
        let body =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec});
        async move {
            let (code, b) = admin
                .post(&format!("/api/v1/namespaces/{NS}/pods"), &body)
                .await;
            assert_eq!(code, 201, "{b}");
        }
    };
    // Fails every time: restarted with back-off, exit code and restart count reported.
    create(
        "crasher",
        json!({"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "none",
        "command": ["sh", "-c", "echo \"$GREETING $(POD)\" >> $DIR/crasher.out; exit 3"],
        "env": [{"name": "GREETING", "value": "hello"}, {"name": "DIR", "value": w},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]}),
    )
    .await;
    // Succeeds once.
    create("once", json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "none", "command": ["true"]}]})).await;
    // Long-running, ready only once a file exists, restarted when another appears; traps
    // SIGTERM on deletion.
    create("server", json!({"restartPolicy": "Always", "terminationGracePeriodSeconds": 10, "containers": [{"name": "c", "image": "none",
        "command": ["sh", "-c", format!("trap 'echo stopped $$$$ >> {w}/server.term; exit 0' TERM; echo $$$$ >> {w}/server.pids; while true; do sleep 0.2; done")],
        "readinessProbe": {"exec": {"command": ["test", "-f", format!("{w}/ready")]}, "periodSeconds": 1},
        "livenessProbe": {"exec": {"command": ["sh", "-c", format!("test ! -f {w}/sick")]}, "periodSeconds": 1, "failureThreshold": 2}}]})).await;

    eventually("crasher restarted twice with exit code 3", LONG, || async {
        let s = container_status(&pod(&admin, "crasher").await);
        s["restartCount"].as_i64().unwrap_or(0) >= 2
            && s["lastState"]["terminated"]["exitCode"] == 3
    })
    .await;
    let out = std::fs::read_to_string(work.join("crasher.out")).expect("crasher ran");
    assert!(
        out.lines().all(|l| l == "hello crasher"),
        "env and $(VAR) expansion: {out:?}"
    );
    let p = pod(&admin, "crasher").await;
    assert_eq!(
        p["status"]["phase"], "Running",
        "OnFailure restarts: still Running"
    );

    eventually("once Succeeded", LONG, || async {
        pod(&admin, "once").await["status"]["phase"] == "Succeeded"
    })
    .await;
    let p = pod(&admin, "once").await;
    let t = &container_status(&p)["state"]["terminated"];
    assert_eq!(
        (t["exitCode"].as_i64(), t["reason"].as_str()),
        (Some(0), Some("Completed")),
        "{p}"
    );
    assert_eq!(
        p["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
            .map(|c| c["reason"].clone()),
        Some(json!("PodCompleted"))
    );

    eventually("server Running but not Ready", LONG, || async {
        let p = pod(&admin, "server").await;
        p["status"]["phase"] == "Running"
            && container_status(&p)["ready"] == false
            && p["status"]["podIP"] == "127.0.0.1"
    })
    .await;
    std::fs::write(work.join("ready"), "").expect("ready file");
    eventually("server Ready", LONG, || async {
        available(&pod(&admin, "server").await)
    })
    .await;
    for c in [
        "PodScheduled",
        "Initialized",
        "ContainersReady",
        "Ready",
        "PodReadyToStartContainers",
    ] {
        let p = pod(&admin, "server").await;
        assert!(
            p["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|x| x["type"] == c && x["status"] == "True")),
            "{c}: {p}"
        );
    }
    std::fs::write(work.join("sick"), "").expect("sick file");
    eventually("server restarted by its liveness probe", LONG, || async {
        container_status(&pod(&admin, "server").await)["restartCount"]
            .as_i64()
            .unwrap_or(0)
            >= 1
    })
    .await;
    std::fs::remove_file(work.join("sick")).expect("cured");
    eventually("server Ready again", LONG, || async {
        available(&pod(&admin, "server").await)
    })
    .await;

    // Deletion: SIGTERM reaches the container, which exits; the kubelet deletes the pod.
    let (code, _) = admin
        .delete(&format!("/api/v1/namespaces/{NS}/pods/server"))
        .await;
    assert_eq!(code, 200);
    eventually("server gone from the API", LONG, || async {
        let (code, _) = admin
            .get(&format!("/api/v1/namespaces/{NS}/pods/server"))
            .await;
        code == 404
    })
    .await;
    let term = std::fs::read_to_string(work.join("server.term")).unwrap_or_default();
    let pids = std::fs::read_to_string(work.join("server.pids")).expect("pids");
    let last = pids.lines().last().expect("a pid");
    assert!(
        term.lines().any(|l| l == format!("stopped {last}")),
        "the last container got SIGTERM on deletion: {term:?} (pids {pids:?})"
    );
    for pid in pids.lines() {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} outlived its pod"
        );
    }
    // The kubelet stops cleanly and leaves no process behind.
    assert!(
        kubelet.terminate(),
        "kubelet did not stop cleanly:\n{}",
        kubelet.log_text()
    );
}

//! The real kubectl against `strata apiserver` over a real store: what users type, with
//! validation on (no --validate=false), default output, and the same answers they get from
//! kube-apiserver. Skips (with a message) where kubectl is not installed, never on CI.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use strata_tests::kube::ApiserverProc;
use strata_tests::{require_tool, StoreProc, DEADLINE};

struct Env {
    tmp: tempfile::TempDir,
    _store: StoreProc,
    api: ApiserverProc,
    kubeconfig: PathBuf,
}

/// A kubeconfig for `user` (in `groups`) at the apiserver, as `strata up` writes one.
fn kubeconfig(api: &ApiserverProc, dir: &Path, file: &str, token: &str) -> PathBuf {
    let path = dir.join(file);
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: strata\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: strata\n  context:\n    cluster: strata\n    user: u\n    namespace: default\ncurrent-context: strata\n",
        api.port,
        api.ca.display()
    );
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

async fn env() -> Option<Env> {
    if !require_tool("kubectl") {
        return None;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = StoreProc::start(&tmp.path().join("store"), &[]);
    let api = ApiserverProc::start(&tmp.path().join("api"), &store.url(), &[]).await;
    let token = api.token("admin", &["system:masters"]);
    let kubeconfig = kubeconfig(&api, tmp.path(), "admin.kubeconfig", &token);
    Some(Env {
        tmp,
        _store: store,
        api,
        kubeconfig,
    })
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Env {
    fn cmd(&self, kubeconfig: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.env("KUBECONFIG", kubeconfig)
            .env("HOME", self.tmp.path())
            .env_remove("KUBE_EDITOR")
            .arg("--cache-dir")
            .arg(self.tmp.path().join("kube-cache"))
            .args(["--request-timeout", "30s"])
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn run_as(&self, kubeconfig: &Path, args: &[&str], envs: &[(&str, &str)]) -> Out {
        let mut c = self.cmd(kubeconfig, args);
        for (k, v) in envs {
            c.env(k, v);
        }
        let out = c.output().expect("run kubectl");
        Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Out {
        self.run_as(&self.kubeconfig, args, &[])
    }

    /// Runs kubectl and requires success; returns stdout. Warnings on stderr are failures
    /// too: kubectl users should see none.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.ok, "kubectl {args:?} failed:\n{}\n{}", o.stdout, o.stderr);
        assert!(
            !o.stderr.to_lowercase().contains("warning"),
            "kubectl {args:?} warned:\n{}",
            o.stderr
        );
        o.stdout
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).expect("kubectl -o json prints JSON")
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.tmp.path().join(name);
        std::fs::write(&p, text).expect("write manifest");
        p.display().to_string()
    }

    /// Polls `args` until `pred` holds on its stdout.
    fn eventually(&self, args: &[&str], pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let o = self.run(args);
            if o.ok && pred(&o.stdout) {
                return o.stdout;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "kubectl {args:?} never matched; last:\n{}\n{}",
                o.stdout,
                o.stderr
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The first line (headers) of a table, split into column names.
fn headers(table: &str) -> Vec<String> {
    table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
        env:
        - {name: MODE, value: blue}
"#;

const POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: solo
  labels: {app: solo, tier: backend}
spec:
  nodeName: node-a
  containers:
  - name: main
    image: busybox:1.36
    command: [sleep, "3600"]
"#;

const NODE: &str = r#"apiVersion: v1
kind: Node
metadata:
  name: node-a
  labels: {node-role.kubernetes.io/worker: ""}
status:
  capacity: {cpu: "4", memory: 8Gi, pods: "110"}
  allocatable: {cpu: "4", memory: 8Gi, pods: "110"}
  nodeInfo: {kubeletVersion: v1.33.0, osImage: Strata, kernelVersion: "6.1", containerRuntimeVersion: "sim://1", architecture: amd64, operatingSystem: linux, bootID: b, machineID: m, systemUUID: s, kubeProxyVersion: ""}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_create_describe_and_discovery() {
    let Some(e) = env().await else { return };
    let node = e.write("node.yaml", NODE);
    let pod = e.write("pod.yaml", POD);
    let deploy = e.write("deploy.yaml", DEPLOYMENT);
    assert!(e
        .ok(&["create", "-f", &node])
        .contains("node/node-a created"));
    assert!(e.ok(&["create", "-f", &pod]).contains("pod/solo created"));
    assert!(e
        .ok(&["create", "-f", &deploy])
        .contains("deployment.apps/web created"));
    // Typed generators send protobuf bodies.
    e.ok(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=a=1",
        "--from-literal=b=2",
    ]);
    e.ok(&["create", "namespace", "team-a"]);
    e.ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=k=v",
        "-n",
        "team-a",
    ]);

    // Validation is on by default: an unknown field is refused, as kube-apiserver does.
    let bad = e.write(
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad}\nbogus: 1\n",
    );
    let o = e.run(&["create", "-f", &bad]);
    assert!(!o.ok);
    assert!(o.stderr.contains("unknown field \"bogus\""), "{}", o.stderr);

    // Tables as kubectl users know them.
    let pods = e.ok(&["get", "pods"]);
    assert_eq!(
        headers(&pods),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    assert!(pods.contains("solo"), "{pods}");
    let wide = e.ok(&["get", "pods", "-o", "wide"]);
    assert_eq!(
        headers(&wide),
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ]
    );
    assert!(wide.contains("node-a"), "{wide}");
    let nodes = e.ok(&["get", "nodes"]);
    assert_eq!(
        headers(&nodes),
        ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    );
    assert!(
        nodes.contains("worker") && nodes.contains("v1.33.0"),
        "{nodes}"
    );
    let deploys = e.ok(&["get", "deploy"]);
    assert_eq!(
        headers(&deploys),
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert!(deploys.contains("0/2"), "{deploys}");
    let cms = e.ok(&["get", "cm", "settings"]);
    assert_eq!(headers(&cms), ["NAME", "DATA", "AGE"]);
    assert!(cms.lines().nth(1).unwrap_or("").split_whitespace().nth(1) == Some("2"));

    // -o yaml / -o json / -A / -l / --field-selector / --show-labels.
    let yaml = e.ok(&["get", "pod", "solo", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: Pod") && yaml.contains("resourceVersion:"),
        "{yaml}"
    );
    let j = e.json(&["get", "deployment", "web"]);
    assert_eq!(j["spec"]["replicas"], 2);
    assert_eq!(j["spec"]["strategy"]["type"], "RollingUpdate");
    let all = e.ok(&["get", "secrets", "-A"]);
    assert_eq!(headers(&all)[0], "NAMESPACE");
    assert!(all.contains("team-a") && all.contains("creds"), "{all}");
    let labelled = e.json(&["get", "pods", "-l", "tier=backend"]);
    assert_eq!(labelled["items"].as_array().map(Vec::len), Some(1));
    let none = e.json(&["get", "pods", "-l", "tier in (frontend)"]);
    assert_eq!(none["items"].as_array().map(Vec::len), Some(0));
    let by_node = e.json(&["get", "pods", "--field-selector", "spec.nodeName=node-a"]);
    assert_eq!(by_node["items"][0]["metadata"]["name"], "solo");
    let o = e.run(&["get", "pods", "--field-selector", "spec.bogus=1"]);
    assert!(
        !o.ok && o.stderr.contains("field label not supported"),
        "{}",
        o.stderr
    );
    let shown = e.ok(&["get", "pods", "--show-labels"]);
    assert!(headers(&shown).contains(&"LABELS".to_string()));
    assert!(shown.contains("app=solo,tier=backend"), "{shown}");

    // describe reads the object and its events.
    let d = e.ok(&["describe", "pod", "solo"]);
    assert!(
        d.contains("Name:") && d.contains("solo") && d.contains("busybox:1.36"),
        "{d}"
    );
    let d = e.ok(&["describe", "node", "node-a"]);
    assert!(d.contains("node-a") && d.contains("Capacity:"), "{d}");
    let d = e.ok(&["describe", "deployment", "web"]);
    assert!(
        d.contains("RollingUpdateStrategy") && d.contains("nginx:1.27"),
        "{d}"
    );

    // Discovery and OpenAPI.
    let res = e.ok(&["api-resources"]);
    for line in [
        "pods ",
        "po ",
        "deployments ",
        "deploy ",
        "leases ",
        "clusterroles ",
    ] {
        assert!(res.contains(line), "{line}: {res}");
    }
    let ex = e.ok(&["explain", "pod.spec"]);
    assert!(
        ex.contains("containers") && ex.contains("<[]Container>"),
        "{ex}"
    );
    let ex = e.ok(&["explain", "deployment.spec.strategy.rollingUpdate"]);
    assert!(ex.contains("maxSurge"), "{ex}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_edit_patch_label_annotate_scale() {
    let Some(e) = env().await else { return };
    let deploy = e.write("deploy.yaml", DEPLOYMENT);
    assert!(e
        .ok(&["apply", "-f", &deploy])
        .contains("deployment.apps/web created"));
    assert!(e
        .ok(&["apply", "-f", &deploy])
        .contains("deployment.apps/web unchanged"));
    // A change: the image, one env var, and a second container port (merge by key).
    let changed = DEPLOYMENT
        .replace("nginx:1.27", "nginx:1.28")
        .replace("value: blue", "value: green")
        .replace(
            "        - containerPort: 80\n",
            "        - containerPort: 80\n        - containerPort: 443\n",
        );
    let changed = e.write("deploy2.yaml", &changed);
    assert!(e
        .ok(&["apply", "-f", &changed])
        .contains("deployment.apps/web configured"));
    let j = e.json(&["get", "deploy", "web"]);
    let c = &j["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "nginx:1.28");
    assert_eq!(c["env"][0]["value"], "green");
    assert_eq!(c["ports"].as_array().map(Vec::len), Some(2));
    assert_eq!(j["metadata"]["generation"], 2);

    // Server-side apply, twice, and a conflict with another manager.
    let cm = e.write(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa}\ndata: {a: \"1\"}\n",
    );
    assert!(e
        .ok(&["apply", "--server-side", "-f", &cm])
        .contains("configmap/ssa serverside-applied"));
    e.ok(&["apply", "--server-side", "-f", &cm]);
    let j = e.json(&["get", "cm", "ssa", "--show-managed-fields"]);
    let managers: Vec<&str> = j["metadata"]["managedFields"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["manager"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(managers, ["kubectl"], "{j}");
    let other = e.write(
        "cm2.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa}\ndata: {a: \"2\"}\n",
    );
    let o = e.run(&[
        "apply",
        "--server-side",
        "--field-manager",
        "other",
        "-f",
        &other,
    ]);
    assert!(!o.ok, "a conflicting apply must fail");
    assert!(
        o.stderr.contains("conflict") && o.stderr.contains(".data.a"),
        "{}",
        o.stderr
    );
    e.ok(&[
        "apply",
        "--server-side",
        "--field-manager",
        "other",
        "--force-conflicts",
        "-f",
        &other,
    ]);
    assert_eq!(e.json(&["get", "cm", "ssa"])["data"]["a"], "2");

    // edit through KUBE_EDITOR (kubectl sends a strategic merge patch).
    let o = e.run_as(
        &e.kubeconfig,
        &["edit", "deployment", "web"],
        &[("KUBE_EDITOR", "sed -i -e 's/replicas: 2/replicas: 3/'")],
    );
    assert!(o.ok, "edit: {}\n{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("deployment.apps/web edited"),
        "{}",
        o.stdout
    );
    assert_eq!(e.json(&["get", "deploy", "web"])["spec"]["replicas"], 3);

    // label, annotate, scale.
    e.ok(&["label", "deployment", "web", "team=core"]);
    e.ok(&["annotate", "deployment", "web", "owner=ops"]);
    let o = e.run(&["label", "deployment", "web", "team=other"]);
    assert!(
        !o.ok && o.stderr.contains("already has a value"),
        "{}",
        o.stderr
    );
    e.ok(&["label", "deployment", "web", "team=other", "--overwrite"]);
    e.ok(&["label", "deployment", "web", "team-"]);
    assert!(e
        .ok(&["scale", "deployment", "web", "--replicas=5"])
        .contains("scaled"));
    let j = e.json(&["get", "deploy", "web"]);
    assert_eq!(j["spec"]["replicas"], 5);
    assert_eq!(j["metadata"]["annotations"]["owner"], "ops");
    assert!(j["metadata"]["labels"].get("team").is_none());

    // patch in all three types.
    e.ok(&[
        "patch",
        "deployment",
        "web",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"minReadySeconds":5}}"#,
    ]);
    e.ok(&["patch", "deployment", "web", "--type", "json", "-p",
        r#"[{"op":"test","path":"/spec/replicas","value":5},{"op":"replace","path":"/spec/replicas","value":4}]"#]);
    let o = e.run(&[
        "patch",
        "deployment",
        "web",
        "--type",
        "json",
        "-p",
        r#"[{"op":"test","path":"/spec/replicas","value":99}]"#,
    ]);
    assert!(!o.ok, "a failed JSON patch test must fail");
    e.ok(&["patch", "deployment", "web", "--type", "strategic", "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","env":[{"name":"EXTRA","value":"1"}]}]}}}}"#]);
    let j = e.json(&["get", "deploy", "web"]);
    assert_eq!(j["spec"]["minReadySeconds"], 5);
    assert_eq!(j["spec"]["replicas"], 4);
    let env_names: Vec<&str> = j["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        env_names,
        ["EXTRA", "MODE"],
        "strategic merge keeps MODE: {j}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_delete_and_authorization() {
    let Some(e) = env().await else { return };
    e.ok(&["create", "configmap", "w1", "--from-literal=a=1"]);
    // get -w: ADDED for the existing object, then MODIFIED and DELETED.
    let mut watch = e
        .cmd(
            &e.kubeconfig,
            &["get", "configmaps", "-w", "--output-watch-events"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl get -w");
    let stdout = watch.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let wait_for = |want: &str| {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(want) => return,
                Ok(_) => {}
                Err(_) => panic!("kubectl get -w never printed {want}"),
            }
        }
    };
    wait_for("ADDED");
    e.ok(&["label", "configmap", "w1", "x=y"]);
    wait_for("MODIFIED");
    // delete --wait returns once the object is gone.
    assert!(e
        .ok(&["delete", "configmap", "w1", "--wait"])
        .contains("deleted"));
    wait_for("DELETED");
    let _ = watch.kill();
    let _ = watch.wait();
    let o = e.run(&["get", "configmap", "w1"]);
    assert!(!o.ok && o.stderr.contains("NotFound"), "{}", o.stderr);

    // auth can-i for the admin and for a user with no roles; a denied request.
    assert_eq!(e.ok(&["auth", "can-i", "create", "pods"]).trim(), "yes");
    let alice = kubeconfig(&e.api, e.tmp.path(), "alice", &e.api.token("alice", &[]));
    let o = e.run_as(&alice, &["auth", "can-i", "create", "pods"], &[]);
    assert_eq!(o.stdout.trim(), "no", "{}", o.stderr);
    let o = e.run_as(&alice, &["get", "pods"], &[]);
    assert!(!o.ok);
    assert!(
        o.stderr.contains("Forbidden")
            && o.stderr
                .contains("User \"alice\" cannot list resource \"pods\""),
        "{}",
        o.stderr
    );
    // A Role and RoleBinding later, alice may list pods in default but not elsewhere.
    e.ok(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get,list,watch",
        "--resource=pods",
    ]);
    e.ok(&[
        "create",
        "rolebinding",
        "alice-reads",
        "--role=pod-reader",
        "--user=alice",
    ]);
    e.eventually(&["auth", "can-i", "list", "pods", "--as", "alice"], |s| {
        s.trim() == "yes"
    });
    let o = e.run_as(&alice, &["get", "pods"], &[]);
    assert!(o.ok, "{}", o.stderr);
    let o = e.run_as(
        &alice,
        &["auth", "can-i", "list", "pods", "-n", "kube-system"],
        &[],
    );
    assert_eq!(o.stdout.trim(), "no");
}

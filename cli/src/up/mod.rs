//! `strata up`: a whole cluster on this machine from one command. Three store members with
//! TLS on client and peer links and client-certificate authentication, the apiserver over
//! them (HTTPS, RBAC), the scheduler and the controller-manager (each with its own identity,
//! leader-elected), and N kubelets: one process per node with the process runtime, each
//! acting as `system:node:<name>`, or one hollow process for all nodes with the sim runtime.
//! Everything is kept under one data directory (certificates, keys, store data, logs, an
//! admin kubeconfig); running `strata up` again on it resumes the same cluster. Ctrl-C stops
//! the components in reverse order, each with SIGTERM, and waits for them.

mod pki;
mod procs;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use strata_clients::kubelet::RuntimeKind;
use tokio::sync::mpsc;

use procs::Proc;

const ISSUER: &str = "https://strata.local";
const HOLLOW_USER: &str = "strata:hollow-kubelet";

#[derive(clap::Args, Debug)]
pub struct UpArgs {
    /// Where everything is kept; an existing directory resumes its cluster.
    #[arg(long, default_value = "strata-data")]
    pub data_dir: PathBuf,
    /// Store members (3 or 5 for a quorum that survives failures; default 3).
    #[arg(long)]
    pub members: Option<usize>,
    /// Nodes (kubelets).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// process: pods run their commands as local processes; sim: hollow nodes, nothing runs.
    #[arg(long, value_enum, default_value = "process")]
    pub runtime: RuntimeKind,
    /// The apiserver's HTTPS port.
    #[arg(long, default_value_t = 6443)]
    pub port: u16,
    /// Store client ports, one per member (default 2379, 22379, 32379, ...).
    #[arg(long, value_delimiter = ',')]
    pub store_client_ports: Vec<u16>,
    /// Store peer ports, one per member (default 2380, 22380, 32380, ...).
    #[arg(long, value_delimiter = ',')]
    pub store_peer_ports: Vec<u16>,
}

/// What a data directory was created with; later starts must agree.
#[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
struct Layout {
    members: usize,
    client_ports: Vec<u16>,
    peer_ports: Vec<u16>,
}

fn default_ports(base: u16, n: usize) -> Vec<u16> {
    (0..n).map(|i| base + (i as u16) * 10000).collect()
}

fn layout(args: &UpArgs, dir: &Path) -> Result<Layout, String> {
    let file = dir.join("layout.json");
    if let Ok(text) = std::fs::read_to_string(&file) {
        let old: Layout =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        if args.members.is_some_and(|m| m != old.members) {
            return Err(format!(
                "{} holds a {}-member cluster; --members cannot change it (use another --data-dir)",
                dir.display(),
                old.members
            ));
        }
        if !args.store_peer_ports.is_empty() && args.store_peer_ports != old.peer_ports {
            return Err(format!(
                "{} was created with store peer ports {:?}",
                dir.display(),
                old.peer_ports
            ));
        }
        let client_ports = if args.store_client_ports.is_empty() {
            old.client_ports.clone()
        } else {
            args.store_client_ports.clone()
        };
        return Ok(Layout {
            client_ports,
            ..old
        });
    }
    let members = args.members.unwrap_or(3);
    if members == 0 || members > 6 {
        return Err("--members must be between 1 and 6".into());
    }
    let client_ports = if args.store_client_ports.is_empty() {
        default_ports(2379, members)
    } else {
        args.store_client_ports.clone()
    };
    let peer_ports = if args.store_peer_ports.is_empty() {
        default_ports(2380, members)
    } else {
        args.store_peer_ports.clone()
    };
    if client_ports.len() != members || peer_ports.len() != members {
        return Err(format!(
            "give {members} --store-client-ports and --store-peer-ports"
        ));
    }
    let l = Layout {
        members,
        client_ports,
        peer_ports,
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let text = serde_json::to_string_pretty(&l).map_err(|e| e.to_string())?;
    std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(l)
}

fn token(key: &[u8], user: &str, groups: &[&str]) -> Result<String, String> {
    strata_apiserver::auth::mint(
        key,
        &strata_apiserver::auth::TokenRequest {
            subject: strata_apiserver::auth::Subject::User {
                name: user.into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
            },
            issuer: ISSUER.into(),
            audiences: vec![ISSUER.into()],
            ttl: Duration::from_secs(365 * 24 * 3600),
        },
    )
}

fn s(v: &str) -> String {
    v.to_string()
}

/// Waits until the apiserver answers /readyz (or a component died).
async fn wait_ready(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    deadline: Duration,
    procs: &[Proc],
) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if let Ok(r) = http
            .get(format!("{base}/readyz"))
            .bearer_auth(token)
            .send()
            .await
        {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if let Some(p) = procs.iter().find(|p| p.has_exited()) {
            return Err(format!(
                "{} exited during start-up; see {}",
                p.name,
                p.log.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(format!("the apiserver was not ready within {deadline:?}"))
}

async fn ready_nodes(http: &reqwest::Client, base: &str, token: &str) -> usize {
    let Ok(r) = http
        .get(format!("{base}/api/v1/nodes"))
        .bearer_auth(token)
        .send()
        .await
    else {
        return 0;
    };
    let Ok(v) = r.json::<serde_json::Value>().await else {
        return 0;
    };
    v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|n| {
                    n["status"]["conditions"].as_array().is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
                })
                .count()
        })
        .unwrap_or(0)
}

pub async fn run(
    args: UpArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let dir = std::path::absolute(&args.data_dir).map_err(|e| format!("--data-dir: {e}"))?;
    let resumed = dir.join("layout.json").exists();
    let layout = layout(&args, &dir)?;
    let logs = dir.join("logs");
    let pki = pki::ensure(&dir.join("pki"))?;
    let api_dir = dir.join("apiserver");
    std::fs::create_dir_all(&api_dir).map_err(|e| format!("{}: {e}", api_dir.display()))?;
    let sa_key = api_dir.join("sa.key");
    if !sa_key.exists() {
        std::fs::write(&sa_key, strata_apiserver::auth::generate_signing_key()?)
            .map_err(|e| format!("{}: {e}", sa_key.display()))?;
    }
    let tls = strata_apiserver::server::ensure_self_signed(&api_dir, &[s("127.0.0.1")])?;
    let key = std::fs::read(&sa_key).map_err(|e| format!("{}: {e}", sa_key.display()))?;
    let server = format!("https://127.0.0.1:{}", args.port);

    // Credentials: an admin kubeconfig for the user, one per component.
    let kc_dir = dir.join("kubeconfigs");
    std::fs::create_dir_all(&kc_dir).map_err(|e| format!("{}: {e}", kc_dir.display()))?;
    let write_kc = |path: &Path, user: &str, groups: &[&str]| -> Result<String, String> {
        let t = token(&key, user, groups)?;
        let yaml = strata_clients::connect::kubeconfig_yaml(&server, &tls.ca_cert, "strata", &t);
        std::fs::write(path, yaml).map_err(|e| format!("{}: {e}", path.display()))?;
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        Ok(t)
    };
    let admin_kc = dir.join("kubeconfig");
    let admin_token = write_kc(&admin_kc, "admin", &["system:masters"])?;
    let sched_kc = kc_dir.join("scheduler.kubeconfig");
    write_kc(&sched_kc, "system:kube-scheduler", &[])?;
    let cm_kc = kc_dir.join("controller-manager.kubeconfig");
    write_kc(&cm_kc, "system:kube-controller-manager", &[])?;
    let node_names: Vec<String> = (0..args.nodes).map(|i| format!("node-{i}")).collect();

    let rust_log = std::env::var("RUST_LOG").unwrap_or_else(|_| {
        s("info,raft=warn,h2=warn,tower=warn,hyper=warn,kube=warn,rustls=warn")
    });
    let (exit_tx, mut exit_rx) = mpsc::unbounded_channel();
    let mut procs: Vec<Proc> = Vec::new();

    // The store members.
    let peers: Vec<String> = (0..layout.members)
        .map(|i| format!("n{}=https://127.0.0.1:{}", i + 1, layout.peer_ports[i]))
        .collect();
    let tls_flags = |prefix: &str| -> Vec<String> {
        vec![
            format!("--{prefix}cert-file"),
            pki.member_cert.display().to_string(),
            format!("--{prefix}key-file"),
            pki.member_key.display().to_string(),
            format!("--{prefix}trusted-ca-file"),
            pki.ca_cert.display().to_string(),
            format!("--{prefix}client-cert-auth"),
        ]
    };
    for i in 0..layout.members {
        let name = format!("n{}", i + 1);
        let client = format!("https://127.0.0.1:{}", layout.client_ports[i]);
        let peer = format!("https://127.0.0.1:{}", layout.peer_ports[i]);
        let mut a = vec![
            s("store"),
            s("--name"),
            name.clone(),
            s("--data-dir"),
            dir.join("store").join(&name).display().to_string(),
        ];
        a.extend([
            s("--listen-client-urls"),
            client.clone(),
            s("--advertise-client-urls"),
            client,
        ]);
        a.extend([
            s("--listen-peer-urls"),
            peer.clone(),
            s("--initial-advertise-peer-urls"),
            peer,
        ]);
        a.extend([
            s("--initial-cluster"),
            peers.join(","),
            s("--initial-cluster-state"),
            s("new"),
        ]);
        a.extend([s("--auto-compaction-retention"), s("1h")]);
        a.extend(tls_flags(""));
        a.extend(tls_flags("peer-"));
        procs.push(Proc::spawn(
            &format!("store-{name}"),
            &a,
            &logs,
            &rust_log,
            exit_tx.clone(),
        )?);
    }
    // The apiserver.
    let etcd: Vec<String> = layout
        .client_ports
        .iter()
        .map(|p| format!("https://127.0.0.1:{p}"))
        .collect();
    let a = vec![
        s("apiserver"),
        s("--etcd-servers"),
        etcd.join(","),
        s("--etcd-cafile"),
        pki.ca_cert.display().to_string(),
        s("--etcd-certfile"),
        pki.client_cert.display().to_string(),
        s("--etcd-keyfile"),
        pki.client_key.display().to_string(),
        s("--bind-address"),
        s("127.0.0.1"),
        s("--secure-port"),
        args.port.to_string(),
        s("--cert-dir"),
        api_dir.display().to_string(),
        s("--service-account-key-file"),
        sa_key.display().to_string(),
        s("--service-account-issuer"),
        s(ISSUER),
        s("--authorization-mode"),
        s("RBAC"),
    ];
    procs.push(Proc::spawn(
        "apiserver",
        &a,
        &logs,
        &rust_log,
        exit_tx.clone(),
    )?);
    let ca = std::fs::read(&tls.ca_cert).map_err(|e| format!("{}: {e}", tls.ca_cert.display()))?;
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).map_err(|e| e.to_string())?)
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let result = async {
        wait_ready(
            &http,
            &server,
            &admin_token,
            Duration::from_secs(120),
            &procs,
        )
        .await?;
        procs.push(Proc::spawn(
            "scheduler",
            &[
                s("scheduler"),
                s("--kubeconfig"),
                sched_kc.display().to_string(),
            ],
            &logs,
            &rust_log,
            exit_tx.clone(),
        )?);
        procs.push(Proc::spawn(
            "controller-manager",
            &[
                s("controller-manager"),
                s("--kubeconfig"),
                cm_kc.display().to_string(),
            ],
            &logs,
            &rust_log,
            exit_tx.clone(),
        )?);
        let root = dir.join("kubelet").display().to_string();
        match args.runtime {
            RuntimeKind::Process => {
                for n in &node_names {
                    let kc = kc_dir.join(format!("kubelet-{n}.kubeconfig"));
                    write_kc(&kc, &format!("system:node:{n}"), &["system:nodes"])?;
                    let a = [
                        s("kubelet"),
                        s("--kubeconfig"),
                        kc.display().to_string(),
                        s("--node-name"),
                        n.clone(),
                        s("--runtime"),
                        s("process"),
                        s("--root-dir"),
                        root.clone(),
                    ];
                    procs.push(Proc::spawn(
                        &format!("kubelet-{n}"),
                        &a,
                        &logs,
                        &rust_log,
                        exit_tx.clone(),
                    )?);
                }
            }
            RuntimeKind::Sim if args.nodes > 0 => {
                // One process for every hollow node, acting through the system:node role.
                let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                    "metadata": {"name": HOLLOW_USER},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:node"},
                    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": HOLLOW_USER}]});
                let r = http
                    .post(format!(
                        "{server}/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
                    ))
                    .bearer_auth(&admin_token)
                    .json(&binding)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if !(r.status().is_success() || r.status().as_u16() == 409) {
                    return Err(format!(
                        "creating the hollow kubelets' role binding: {}",
                        r.status()
                    ));
                }
                let kc = kc_dir.join("hollow-kubelet.kubeconfig");
                write_kc(&kc, HOLLOW_USER, &[])?;
                let a = [
                    s("kubelet"),
                    s("--kubeconfig"),
                    kc.display().to_string(),
                    s("--node-name"),
                    s("node"),
                    s("--hollow-nodes"),
                    args.nodes.to_string(),
                    s("--root-dir"),
                    root.clone(),
                ];
                procs.push(Proc::spawn(
                    "kubelet-hollow",
                    &a,
                    &logs,
                    &rust_log,
                    exit_tx.clone(),
                )?);
            }
            RuntimeKind::Sim => {}
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while ready_nodes(&http, &server, &admin_token).await < args.nodes {
            if Instant::now() > deadline {
                return Err(format!(
                    "fewer than {} nodes Ready after 60 s; see {}",
                    args.nodes,
                    logs.display()
                ));
            }
            if let Some(p) = procs.iter().find(|p| p.has_exited()) {
                return Err(format!(
                    "{} exited during start-up; see {}",
                    p.name,
                    p.log.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok::<(), String>(())
    };
    tokio::pin!(shutdown);
    let outcome = tokio::select! {
        r = result => r,
        _ = &mut shutdown => Err("interrupted during start-up".into()),
    };
    if outcome.is_ok() {
        let what = if resumed { "resumed" } else { "is up" };
        println!(
            "\nStrata {what} in {:.1}s: {} store members (TLS, client certificates), the apiserver on {server},\n\
             the scheduler, the controller-manager and {} node(s) ({} runtime). Data and logs: {}\n\n  \
             export KUBECONFIG={}\n  kubectl get nodes\n  kubectl apply -f examples/deployment.yaml\n  kubectl get pods -o wide -w\n\n\
             Ctrl-C stops everything; `strata up --data-dir {}` again resumes this cluster.",
            started.elapsed().as_secs_f64(),
            layout.members,
            args.nodes,
            if args.runtime == RuntimeKind::Process { "process" } else { "sim" },
            dir.display(),
            admin_kc.display(),
            dir.display(),
        );
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some((name, how)) = exit_rx.recv() => eprintln!("strata up: {name} exited ({how}); the others keep running (log: {})", logs.join(format!("{name}.log")).display()),
            }
        }
    }
    eprintln!("strata up: stopping...");
    // Reverse order: kubelets, controllers, apiserver, then the store members one by one.
    for p in procs.iter_mut().rev() {
        p.stop(Duration::from_secs(20)).await;
    }
    eprintln!("strata up: stopped");
    outcome
}

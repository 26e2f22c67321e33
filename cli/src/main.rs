//! `strata`: one binary for every part of Strata. Each subcommand calls into its crate.

mod up;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's allocator: under 100 concurrent clients glibc's malloc and free were
/// about 15% of the store's CPU profile (requests, responses and key-values are many small
/// allocations on two threads pools).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Strata: a Kubernetes control-plane core (etcd-compatible store, apiserver, clients)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a store member: Raft-replicated MVCC key-value store speaking the etcd v3 gRPC API.
    Store(Box<strata_store::StoreConfig>),
    /// Run the Kubernetes-compatible apiserver over a store (or any etcd v3 endpoint).
    Apiserver(Box<strata_apiserver::ApiserverConfig>),
    /// Run the scheduler: binds pending pods to nodes (leader-elected).
    Scheduler(Box<strata_clients::scheduler::SchedulerConfig>),
    /// Run the controller-manager: Deployment, ReplicaSet, node lifecycle, garbage collector,
    /// namespace controllers (leader-elected).
    ControllerManager(Box<strata_clients::controllers::ControllerManagerConfig>),
    /// Run a kubelet (process or sim runtime), or many hollow ones with --hollow-nodes.
    Kubelet(Box<strata_clients::kubelet::KubeletConfig>),
    /// Start a whole cluster on this machine (store members, apiserver, scheduler,
    /// controller-manager, kubelets) with its data in one directory; Ctrl-C stops it.
    Up(up::UpArgs),
    /// Mint a bearer token (JWT) for a user and groups, or a service account.
    Token(TokenArgs),
    /// Load tool speaking the etcd v3 API (etcd benchmark style).
    Bench(strata_bench::BenchArgs),
    /// Fault injection against a cluster of real members, with linearizability, watch and
    /// durability checking of the recorded history.
    Chaos(strata_chaos::ChaosArgs),
}

#[derive(clap::Args)]
struct TokenArgs {
    /// Private key (PEM: RSA signs RS256, EC P-256 signs ES256); the apiserver's
    /// --service-account-key-file must hold it or its public key.
    #[arg(long)]
    key_file: std::path::PathBuf,
    /// The token's issuer (the apiserver's --service-account-issuer).
    #[arg(long, default_value = "https://strata.local")]
    issuer: String,
    /// Audiences (comma separated); defaults to the issuer.
    #[arg(long, value_delimiter = ',')]
    audience: Vec<String>,
    /// User name (sub).
    #[arg(long, conflicts_with = "service_account")]
    user: Option<String>,
    /// Group, repeatable (e.g. system:masters for an administrator).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// Service account as NAMESPACE:NAME.
    #[arg(long)]
    service_account: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 86400)]
    ttl: u64,
    /// Create --key-file with a new EC P-256 signing key when it does not exist yet.
    #[arg(long)]
    create_key: bool,
}

fn mint_token(args: TokenArgs) -> Result<(), String> {
    use strata_apiserver::auth::{generate_signing_key, mint, Subject, TokenRequest};
    if args.create_key && !args.key_file.exists() {
        let pem = generate_signing_key()?;
        std::fs::write(&args.key_file, pem)
            .map_err(|e| format!("--key-file {}: {e}", args.key_file.display()))?;
    }
    let key = std::fs::read(&args.key_file)
        .map_err(|e| format!("--key-file {}: {e}", args.key_file.display()))?;
    let subject = match (args.user, args.service_account) {
        (Some(name), None) => Subject::User {
            name,
            groups: args.groups,
        },
        (None, Some(sa)) => {
            let (namespace, name) = sa
                .split_once(':')
                .ok_or("--service-account takes NAMESPACE:NAME")?;
            Subject::ServiceAccount {
                namespace: namespace.to_string(),
                name: name.to_string(),
                uid: None,
            }
        }
        _ => return Err("give --user (with --group ...) or --service-account".into()),
    };
    let audiences = if args.audience.is_empty() {
        vec![args.issuer.clone()]
    } else {
        args.audience
    };
    let token = mint(
        &key,
        &TokenRequest {
            subject,
            issuer: args.issuer,
            audiences,
            ttl: std::time::Duration::from_secs(args.ttl),
        },
    )?;
    println!("{token}");
    Ok(())
}

/// Ctrl-C and SIGTERM, listened for from the start of the process.
///
/// The listeners are created in `main`, before the command runs: created later (when the
/// command's shutdown future was first polled, on a busy runtime possibly tens of milliseconds
/// in), a kubelet that `strata up` stopped right after starting it missed its SIGTERM and ran
/// on until it was killed, leaving its containers behind. (Blocking the signals instead is not
/// an option: children inherit the mask, and a container would ignore its SIGTERM.)
struct ShutdownSignals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    /// Creates the listeners (within `rt`).
    fn listen(rt: &tokio::runtime::Runtime) -> std::io::Result<Self> {
        let _in_runtime = rt.enter();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let int = signal(SignalKind::interrupt())?;
            let term = signal(SignalKind::terminate())?;
            Ok(Self { int, term })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Completes on Ctrl-C or SIGTERM.
    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,raft=warn,h2=warn,tower=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Servers and clients that stop cleanly on Ctrl-C or SIGTERM listen for them; the other
    // commands keep the signals' default action (they end the process).
    let stops_cleanly = matches!(
        cli.command,
        Command::Store(_)
            | Command::Apiserver(_)
            | Command::Scheduler(_)
            | Command::ControllerManager(_)
            | Command::Kubelet(_)
            | Command::Up(_)
    );
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strata: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let signals = if stops_cleanly {
        match ShutdownSignals::listen(&rt) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("strata: cannot listen for Ctrl-C and SIGTERM: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let shutdown = async move {
        match signals {
            Some(s) => s.wait().await,
            None => std::future::pending().await,
        }
    };
    let result: Result<(), String> = rt.block_on(async {
        match cli.command {
            Command::Store(cfg) => strata_store::run(*cfg, shutdown)
                .await
                .map_err(|e| e.to_string()),
            Command::Apiserver(cfg) => strata_apiserver::run(*cfg, shutdown).await,
            Command::Scheduler(cfg) => strata_clients::scheduler::run(*cfg, shutdown).await,
            Command::ControllerManager(cfg) => {
                strata_clients::controllers::run(*cfg, shutdown).await
            }
            Command::Kubelet(cfg) => strata_clients::kubelet::run(*cfg, shutdown).await,
            Command::Up(args) => up::run(args, shutdown).await,
            Command::Token(args) => mint_token(args),
            Command::Bench(args) => strata_bench::run(args).await,
            Command::Chaos(args) => match strata_chaos::main(args).await {
                Ok(true) => Ok(()),
                Ok(false) => Err("chaos: checks failed (see the report)".into()),
                Err(e) => Err(e),
            },
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strata: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

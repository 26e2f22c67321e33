//! `strata`: one binary for every part of Strata. Each subcommand calls into its crate.

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
    /// Load tool speaking the etcd v3 API (etcd benchmark style).
    Bench(strata_bench::BenchArgs),
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
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
    let result: Result<(), String> = rt.block_on(async {
        match cli.command {
            Command::Store(cfg) => strata_store::run(*cfg, shutdown_signal())
                .await
                .map_err(|e| e.to_string()),
            Command::Bench(args) => strata_bench::run(args).await,
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

//! One run, start to verdict: cluster up, traffic on, faults for the duration, traffic off,
//! every member restarted and read back, the history checked, the report written.
//!
//! Every task this starts is joined before `run` returns, and every child process is killed
//! (the cluster and apiserver handles kill theirs on drop too), so nothing outlives a run — also
//! when a step fails: the error is recorded, the rest of the run still collects what it can, and
//! the verdict is FAIL.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::apiserver::Apiserver;
use crate::check::{self, CheckOptions};
use crate::cluster::{Cluster, ClusterConfig};
use crate::faults::Injector;
use crate::history::{Clock, LeaderChange, Recorder};
use crate::report::Report;
use crate::scenario::{self, Schedule};
use crate::traffic::{self, kube::KubeTarget, watch::WatchSpec, Ctx};
use crate::{finish, progress, report, timeline, RunArgs};

pub struct RunResult {
    pub passed: bool,
    pub dir: PathBuf,
    pub report: Report,
}

pub async fn run(a: RunArgs) -> Result<RunResult, String> {
    let faults = scenario::faults(&a.scenario, a.kube)?;
    if a.op_timeout >= Duration::from_secs(10) {
        return Err(
            "--op-timeout must be under 10s (a lease cycle must end before its lease could expire)"
                .into(),
        );
    }
    if a.members < 3 {
        return Err("--members must be at least 3 (faults need a majority to survive)".into());
    }
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let seed = a.seed.unwrap_or_else(|| rand::rng().random());
    let dir = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("chaos-runs").join(format!("{}-{now_s}", a.scenario)));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let bin = match &a.strata_bin {
        Some(b) => b.clone(),
        None => {
            std::env::current_exe().map_err(|e| format!("cannot find the strata binary: {e}"))?
        }
    };
    let run_id = format!("{:08x}", (seed as u32) ^ (now_s as u32));
    let prefix = format!("/chaos/{run_id}/");
    let clock = Clock::new();
    let rec = Recorder::default();
    rec.with(|h| h.prefix = prefix.clone());
    let election = Duration::from_millis(a.election_timeout.unwrap_or(1000));
    let mut flags = vec![
        format!("--snapshot-count={}", a.snapshot_count),
        format!(
            "--experimental-snapshot-catchup-entries={}",
            (a.snapshot_count / 4).max(1)
        ),
        "--experimental-watch-progress-notify-interval=1s".to_string(),
    ];
    if let Some(h) = a.heartbeat_interval {
        flags.push(format!("--heartbeat-interval={h}"));
    }
    if let Some(e) = a.election_timeout {
        flags.push(format!("--election-timeout={e}"));
    }
    let cfg = ClusterConfig {
        bin: bin.clone(),
        dir: dir.clone(),
        members: a.members,
        mode: a.network,
        store_flags: flags,
    };
    if !a.quiet {
        eprintln!(
            "strata chaos: scenario {} for {:?}, {} members ({:?} network), seed {seed}, output in {}",
            a.scenario,
            a.duration,
            a.members,
            a.network,
            dir.display()
        );
    }
    let mut cluster = Cluster::start(cfg).await?;
    let mut errors = Vec::new();
    let drove = drive(
        &a,
        &mut cluster,
        &clock,
        &rec,
        seed,
        faults,
        election,
        &bin,
        &dir,
        &mut errors,
    )
    .await;
    if let Err(e) = drove {
        errors.push(e);
    }
    cluster.shutdown().await;
    if !a.keep_data {
        let _ = std::fs::remove_dir_all(dir.join("data"));
    }
    let end = clock.now();
    let mut h = rec.take();
    h.end = end;
    if !a.quiet {
        eprintln!(
            "strata chaos: checking {} operations and {} watch sessions...",
            h.ops.len() + h.kube_ops.len(),
            h.watches.len() + h.kube_watches.len()
        );
    }
    let opts = CheckOptions {
        budget: a.check_budget,
    };
    let h = Arc::new(h);
    let h2 = h.clone();
    let max_recovery = a.max_recovery.map(|d| d.as_secs_f64() * 1000.0);
    let (results, avail) = tokio::task::spawn_blocking(move || {
        let mut results = check::check_all(&h2, &opts);
        let avail = check::availability::measure(&h2, 250);
        results.push(check::availability::check(&avail, max_recovery));
        (results, avail)
    })
    .await
    .map_err(|e| e.to_string())?;
    let rep = Report::new(&a, seed, &h, results, avail, errors);
    report::write(&dir, &h, &rep)?;
    timeline::write(&dir.join("timeline.svg"), &h, &rep.availability, a.members)?;
    report::print(&rep, &dir);
    Ok(RunResult {
        passed: rep.passed,
        dir,
        report: rep,
    })
}

/// Everything between "cluster up" and "cluster down".
#[allow(clippy::too_many_arguments)]
async fn drive(
    a: &RunArgs,
    cluster: &mut Cluster,
    clock: &Clock,
    rec: &Recorder,
    seed: u64,
    faults: Vec<crate::faults::Fault>,
    election: Duration,
    bin: &std::path::Path,
    dir: &std::path::Path,
    errors: &mut Vec<String>,
) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let urls: Vec<String> = (0..cluster.len()).map(|i| cluster.client_url(i)).collect();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (hist_stop_tx, hist_stop_rx) = watch::channel(false);
    let prefix = rec.with(|h| h.prefix.clone());
    let ctx = Ctx::new(
        *clock,
        rec.clone(),
        &urls,
        prefix.clone(),
        a.op_timeout,
        stop_rx.clone(),
    )?;
    let hctx = Ctx::new(
        *clock,
        rec.clone(),
        &urls,
        prefix,
        a.op_timeout,
        hist_stop_rx,
    )?;
    let historian_rev = Arc::new(AtomicI64::new(0));
    let mut historian = JoinSet::new();
    historian.spawn(traffic::watch::historian(hctx, historian_rev.clone()));

    let leader_name = Arc::new(Mutex::new(None));
    let mut tasks = JoinSet::new();
    tasks.spawn(leader_monitor(
        urls.clone(),
        *clock,
        rec.clone(),
        leader_name.clone(),
        stop_rx.clone(),
    ));
    let mix = traffic::kv::Mix::default();
    for c in 0..a.clients {
        let member = c % urls.len();
        tasks.spawn(traffic::kv::run(
            ctx.clone(),
            c as u32 + 1,
            member,
            a.keys,
            4,
            mix,
            rng.random(),
        ));
    }
    tasks.spawn(traffic::probe::run(
        ctx.clone(),
        Duration::from_millis(20),
        Duration::from_secs(2),
        4,
    ));
    for w in 0..a.watchers {
        let spec = watch_spec(&ctx, w as u32 + 1, a.keys);
        tasks.spawn(traffic::watch::run(
            ctx.clone(),
            spec,
            w % urls.len(),
            rng.random(),
        ));
    }
    tasks.spawn(traffic::compact::run(
        ctx.clone(),
        historian_rev.clone(),
        a.compact_every,
        200,
    ));

    let mut api = None;
    if a.kube {
        let port = crate::cluster::ports::free_port()?;
        let server = Apiserver::launch(
            bin.to_path_buf(),
            dir.join("apiserver"),
            cluster.client_urls(),
            port,
        )
        .await?;
        let target = KubeTarget {
            base: server.base(),
            token: server.token.clone(),
            ca: server.ca(),
            namespace: format!(
                "chaos-{}",
                rec.with(|h| h
                    .prefix
                    .trim_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_string())
            ),
            objects: 6,
        };
        traffic::kube::create_namespace(&target).await?;
        rec.with(|h| h.kube_prefix = target.key_prefix());
        for k in 0..a.kube_clients {
            tasks.spawn(traffic::kube::run(
                ctx.clone(),
                target.clone(),
                1000 + k as u32,
                rng.random(),
            ));
        }
        for w in 0..2 {
            tasks.spawn(traffic::kube_watch::watcher(
                ctx.clone(),
                target.clone(),
                2000 + w,
            ));
        }
        api = Some(server);
    }

    let now = Arc::new(Mutex::new(String::new()));
    let mut progress_task = JoinSet::new();
    if !a.quiet {
        progress_task.spawn(progress::run(
            progress::Progress {
                clock: *clock,
                rec: rec.clone(),
                scenario: a.scenario.clone(),
                duration: a.duration,
                now: now.clone(),
                leader: leader_name.clone(),
            },
            stop_rx.clone(),
        ));
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::Relaxed);
        }
    });

    // Faults for the duration. Each heals itself; a step that fails (the cluster did not
    // recover) ends the fault phase and fails the run.
    let fault_result = async {
        let mut inj = Injector {
            cluster: &mut *cluster,
            apiserver: api.as_mut(),
            clock: *clock,
            rec: rec.clone(),
            rng: StdRng::seed_from_u64(rng.random()),
            hold: (a.hold_min, a.hold_max.max(a.hold_min)),
            election_timeout: election,
            now: now.clone(),
        };
        // Some traffic before the first fault.
        tokio::time::sleep(a.settle).await;
        let end = tokio::time::Instant::now() + a.duration;
        let mut sched = Schedule::new(faults, a.scenario == "all");
        while tokio::time::Instant::now() < end && !interrupted.load(Ordering::Relaxed) {
            inj.settle().await?;
            let f = sched.next(&mut inj.rng);
            inj.inject(f)
                .await
                .map_err(|e| format!("{}: {e}", f.name()))?;
            inj.settle().await?;
            tokio::time::sleep(a.settle).await;
        }
        Ok::<(), String>(())
    }
    .await;
    if let Err(e) = fault_result {
        errors.push(e);
    }
    if interrupted.load(Ordering::Relaxed) {
        errors.push("interrupted (Ctrl-C): the run is incomplete".into());
    }
    ctrl_c.abort();

    // Traffic off, apiserver off, then the final phase.
    stop_tx.send_replace(true);
    join_all(&mut tasks, Duration::from_secs(30)).await;
    join_all(&mut progress_task, Duration::from_secs(5)).await;
    if let Some(mut s) = api {
        s.stop().await;
    }
    let finished = async {
        let rev = finish::final_revision(cluster, &historian_rev).await?;
        hist_stop_tx.send_replace(true);
        join_all(&mut historian, Duration::from_secs(30)).await;
        finish::restart_and_read(cluster, rec, rev).await
    }
    .await;
    hist_stop_tx.send_replace(true);
    join_all(&mut historian, Duration::from_secs(30)).await;
    finished.map_err(|e| format!("final phase: {e}"))
}

/// Joins every task, aborting those still running after `grace`.
async fn join_all(set: &mut JoinSet<()>, grace: Duration) {
    let deadline = tokio::time::Instant::now() + grace;
    loop {
        match tokio::time::timeout_at(deadline, set.join_next()).await {
            Ok(Some(_)) => continue,
            Ok(None) => return,
            Err(_) => {
                set.abort_all();
                while set.join_next().await.is_some() {}
                return;
            }
        }
    }
}

/// Watcher `id`'s range and options: the whole KV range, one key, the lease range, ...
fn watch_spec(ctx: &Ctx, id: u32, keys: usize) -> WatchSpec {
    let p = &ctx.prefix;
    let (key, range_end) = match id % 4 {
        1 => (format!("{p}kv/"), format!("{p}kv0")),
        2 => (ctx.kv_key(id as usize % keys.max(1)), String::new()),
        3 => (format!("{p}lease/"), format!("{p}lease0")),
        _ => (p.clone(), format!("{}0", p.trim_end_matches('/'))),
    };
    WatchSpec {
        id,
        key,
        range_end,
        prev_kv: id % 2 == 1,
        progress_notify: true,
        require_leader: id.is_multiple_of(3),
        start_back: if id.is_multiple_of(2) { 50 } else { 0 },
        resume_every: Some((Duration::from_secs(2), Duration::from_secs(8))),
    }
}

/// Polls every member's /metrics for leadership and records each change.
async fn leader_monitor(
    urls: Vec<String>,
    clock: Clock,
    rec: Recorder,
    name: Arc<Mutex<Option<String>>>,
    mut stop: watch::Receiver<bool>,
) {
    let addrs: Vec<String> = urls
        .iter()
        .map(|u| u.trim_start_matches("http://").to_string())
        .collect();
    let mut last: Option<Option<usize>> = None;
    loop {
        let answers = futures::future::join_all(addrs.iter().map(|a| async move {
            let (code, body) = crate::cluster::http_get(a, "/metrics").await?;
            (code == 200).then(|| body.lines().any(|l| l == "etcd_server_is_leader 1"))
        }))
        .await;
        let leaders: Vec<usize> = (0..addrs.len())
            .filter(|i| answers[*i] == Some(true))
            .collect();
        let leader = (leaders.len() == 1).then(|| leaders[0]);
        if last != Some(leader) {
            let at = clock.now();
            rec.with(|h| h.leaders.push(LeaderChange { at, leader }));
            *name.lock() = leader.map(|l| format!("n{}", l + 1));
            last = Some(leader);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = crate::stop::raised(&mut stop) => return,
        }
    }
}

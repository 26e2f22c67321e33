//! `strata bench apiserver pods`: the write path of the Kubernetes API. Three phases over the
//! same `--total` pods, `--clients` requests in flight: create (POST), update (a JSON merge
//! patch of a label, so every update is a read-modify-write guarded by resourceVersion inside
//! the apiserver) and delete (gracePeriodSeconds=0: unscheduled pods go at once). Each phase
//! reports its rate and latencies; a phase's failures are counted by HTTP status.

use std::sync::Arc;

use serde_json::json;

use super::{Api, ApiserverArgs};
use crate::load::{drive, Op, Outcome};
use crate::progress::Progress;
use crate::Summary;

#[derive(Clone, Copy)]
enum Phase {
    Create,
    Update,
    Delete,
}

struct PodOp {
    api: Arc<Api>,
    ns: String,
    phase: Phase,
}

fn name(n: u64) -> String {
    format!("bench-pod-{n:06}")
}

impl Op for PodOp {
    async fn call(&mut self, n: u64) -> Outcome {
        let (method, path, body, ok) = match self.phase {
            Phase::Create => (
                reqwest::Method::POST,
                format!("/api/v1/namespaces/{}/pods", self.ns),
                Some(("application/json", super::pod(&name(n)).to_string())),
                201,
            ),
            Phase::Update => (
                reqwest::Method::PATCH,
                format!("/api/v1/namespaces/{}/pods/{}", self.ns, name(n)),
                Some((
                    "application/merge-patch+json",
                    json!({ "metadata": { "labels": { "bench-round": n.to_string() } } })
                        .to_string(),
                )),
                200,
            ),
            Phase::Delete => (
                reqwest::Method::DELETE,
                format!(
                    "/api/v1/namespaces/{}/pods/{}?gracePeriodSeconds=0",
                    self.ns,
                    name(n)
                ),
                None,
                200,
            ),
        };
        let mut req = self.api.req(method, &path);
        if let Some((ct, b)) = body {
            req = req.header("content-type", ct).body(b);
        }
        let r = match req.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::of(Err(format!("request: {e}"))),
        };
        let code = r.status().as_u16();
        // Read the whole answer (an HTTP/2 response dropped unread resets its stream).
        let _ = r.bytes().await;
        // DELETE answers 200 with the object, or 202 while a graceful deletion runs.
        let good = code == ok || (matches!(self.phase, Phase::Delete) && code == 202);
        Outcome::of(if good {
            Ok(())
        } else {
            Err(format!("HTTP {code}"))
        })
    }
}

pub(super) async fn pods(
    args: ApiserverArgs,
    json_out: bool,
    clients: usize,
    total: u64,
) -> Result<(), String> {
    let api = Arc::new(Api::new(&args, false)?);
    let ns = args.namespace.clone();
    let code = api
        .post(
            "/api/v1/namespaces",
            &json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } }),
        )
        .await?;
    if code != 201 && code != 409 {
        return Err(format!("creating namespace {ns}: HTTP {code}"));
    }
    let mut summary: Option<Summary> = None;
    for (label, phase) in [
        ("create", Phase::Create),
        ("update", Phase::Update),
        ("delete", Phase::Delete),
    ] {
        let ops = (0..clients)
            .map(|_| PodOp {
                api: api.clone(),
                ns: ns.clone(),
                phase,
            })
            .collect();
        let progress = Progress::start(label, total);
        let run = drive(ops, total, 0.0, 1, &progress).await?;
        let report = run.recorders[0].report(run.elapsed);
        match summary.as_mut() {
            None => {
                let mut s = Summary::new("apiserver-pods", report.clone());
                s.parts.insert(label.into(), report);
                summary = Some(s);
            }
            Some(s) => {
                s.parts.insert(label.into(), report);
            }
        }
    }
    let s = summary.ok_or("no phase ran")?;
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&s).map_err(|e| e.to_string())?
        );
    } else {
        for (label, r) in &s.parts {
            println!("\nPod {label}s: {:.0}/s", r.requests_per_sec);
            print!("{}", r.text());
        }
    }
    Ok(())
}

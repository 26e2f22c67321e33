//! `strata bench apiserver list`: latency of full (consistent) lists of a namespace holding
//! --objects pods.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::{ensure_pods, Api, ApiserverArgs};
use crate::report::Report;

pub(super) async fn list(
    args: ApiserverArgs,
    json_out: bool,
    objects: usize,
    total: u64,
) -> Result<(), String> {
    let api = Arc::new(Api::new(&args, false)?);
    let ns = args.namespace.clone();
    eprintln!("creating {objects} pods in {ns}");
    ensure_pods(&api, &ns, objects).await?;
    let mut h = hdrhistogram::Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    let mut errors = 0;
    let mut bytes = 0usize;
    let start = Instant::now();
    for _ in 0..total {
        let t = Instant::now();
        let r = api
            .req(
                reqwest::Method::GET,
                &format!("/api/v1/namespaces/{ns}/pods"),
            )
            .send()
            .await;
        match r {
            Ok(r) if r.status() == 200 => match r.bytes().await {
                Ok(b) => {
                    bytes = b.len();
                    let _ = h.record(t.elapsed().as_micros() as u64);
                }
                Err(_) => errors += 1,
            },
            _ => errors += 1,
        }
    }
    let report = Report::new(&h, errors, start.elapsed());
    if json_out {
        println!(
            "{:#}",
            json!({ "objects": objects, "list_bytes": bytes, "latency": report })
        );
    } else {
        println!(
            "List of {objects} pods ({} KiB), {total} times:",
            bytes / 1024
        );
        print!("{}", report.text());
    }
    Ok(())
}

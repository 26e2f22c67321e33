//! QoS class.

use super::*;

/// The pod's QoS class (`BestEffort`, `Burstable`, `Guaranteed`) from its containers' cpu and
/// memory requests and limits, as Kubernetes' `ComputePodQOS` (requests default to limits).
pub fn pod_qos_class(pod: &Value) -> &'static str {
    let spec = pod.get("spec");
    let containers = ["containers", "initContainers"].into_iter().flat_map(|f| {
        spec.and_then(|s| s.get(f))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    });
    let mut requests: BTreeMap<&str, Quantity> = BTreeMap::new();
    let mut limits: BTreeMap<&str, Quantity> = BTreeMap::new();
    let mut guaranteed = true;
    let read = |c: &Value, which: &str, res: &str| -> Option<Quantity> {
        c.get("resources")
            .and_then(|r| r.get(which))
            .and_then(|m| m.get(res))
            .and_then(|v| match v {
                Value::String(s) => quantity::parse(s).ok(),
                Value::Number(n) => quantity::parse(&n.to_string()).ok(),
                _ => None,
            })
    };
    for c in containers {
        let mut found_limits = 0;
        for res in ["cpu", "memory"] {
            let limit = read(c, "limits", res);
            let request = read(c, "requests", res).or(limit);
            if let Some(r) = request.filter(|r| *r > Quantity::ZERO) {
                let e = requests.entry(res).or_insert(Quantity::ZERO);
                *e = e.saturating_add(r);
            }
            if let Some(l) = limit.filter(|l| *l > Quantity::ZERO) {
                found_limits += 1;
                let e = limits.entry(res).or_insert(Quantity::ZERO);
                *e = e.saturating_add(l);
            }
        }
        if found_limits < 2 {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests.iter().all(|(k, r)| limits.get(k) == Some(r))
        && requests.len() == limits.len()
    {
        return "Guaranteed";
    }
    "Burstable"
}

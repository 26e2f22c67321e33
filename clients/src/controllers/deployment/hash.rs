//! The pod-template hash that names a Deployment's ReplicaSets (`web-7d4b9c8f5`) and labels
//! their pods (`pod-template-hash`), and template equality ignoring that label.
//!
//! Kubernetes hashes the template with FNV-32a over a deterministic dump of the Go struct
//! plus the collision count, then spells the 32-bit number's decimal digits in an alphabet
//! without vowels (`SafeEncodeString`). We hash the template's JSON instead (serde_json of the
//! k8s-openapi struct is deterministic: fields in declaration order, maps sorted), so the
//! names have the same shape but not the same value as kube-controller-manager's.

use k8s_openapi::api::core::v1::PodTemplateSpec;

pub const HASH_LABEL: &str = "pod-template-hash";

const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn fnv32a(data: &[u8], mut h: u32) -> u32 {
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(16_777_619);
    }
    h
}

/// The template without the hash label, as the hash and the comparison see it.
fn without_hash(t: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = t.clone();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(HASH_LABEL);
    }
    t
}

/// Kubernetes' `ComputeHash(template, collisionCount)`, spelled with `SafeEncodeString`.
pub fn compute(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let json = serde_json::to_vec(&without_hash(template)).unwrap_or_default();
    let mut h = fnv32a(&json, 2_166_136_261);
    if let Some(c) = collision_count {
        h = fnv32a(&(c as u32).to_le_bytes(), h);
    }
    h.to_string()
        .bytes()
        .map(|b| ALPHANUMS[b as usize % ALPHANUMS.len()] as char)
        .collect()
}

/// Whether two templates are the same but for the hash label (`EqualIgnoreHash`).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let (mut a, mut b) = (without_hash(a), without_hash(b));
    // An emptied label map and no labels are the same thing.
    for t in [&mut a, &mut b] {
        if let Some(m) = t.metadata.as_mut() {
            if m.labels.as_ref().is_some_and(|l| l.is_empty()) {
                m.labels = None;
            }
        }
    }
    a == b
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(image: &str, hash: Option<&str>) -> PodTemplateSpec {
        let mut labels = json!({"app": "web"});
        if let Some(h) = hash {
            labels[HASH_LABEL] = json!(h);
        }
        serde_json::from_value(json!({"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "c", "image": image}]}}))
        .unwrap()
    }

    #[test]
    fn hashes_are_stable_safe_and_ignore_the_hash_label() {
        let a = compute(&t("nginx:1", None), None);
        assert_eq!(a, compute(&t("nginx:1", Some("zzz")), None));
        assert_ne!(a, compute(&t("nginx:2", None), None));
        assert_ne!(a, compute(&t("nginx:1", None), Some(1)));
        assert!(!a.is_empty() && a.len() <= 10);
        assert!(a.bytes().all(|b| ALPHANUMS.contains(&b)));
    }

    #[test]
    fn equality_ignores_the_hash_label_only() {
        assert!(equal_ignore_hash(
            &t("nginx:1", Some("abc")),
            &t("nginx:1", None)
        ));
        assert!(!equal_ignore_hash(
            &t("nginx:1", Some("abc")),
            &t("nginx:2", Some("abc"))
        ));
    }

    #[test]
    fn fnv_matches_the_reference_vectors() {
        assert_eq!(fnv32a(b"", 2_166_136_261), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a", 2_166_136_261), 0xe40c_292c);
        assert_eq!(fnv32a(b"foobar", 2_166_136_261), 0xbf9c_f968);
    }
}

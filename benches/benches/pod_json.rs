//! Pod JSON decode and encode: what the apiserver does to every object it stores, lists and
//! sends to watchers. A realistic scheduled and running pod (about 3 KB), decoded to
//! `serde_json::Value` (the apiserver's representation), to the typed `k8s_openapi` Pod (what
//! clients built on kube-rs do), encoded back, and the watch cache's `Obj::decode` (decode,
//! stamp the resourceVersion, encode once for every watcher).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-7d4b9c6f5-x2k8p",
            "generateName": "web-7d4b9c6f5-",
            "namespace": "default",
            "uid": "6f0f4b2e-8a1c-4d8e-9b3a-2f5c7e9d1a40",
            "resourceVersion": "123456",
            "creationTimestamp": "2026-11-23T10:00:00Z",
            "labels": { "app": "web", "pod-template-hash": "7d4b9c6f5", "tier": "frontend" },
            "annotations": { "kubectl.kubernetes.io/restartedAt": "2026-11-23T09:59:00Z" },
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c6f5",
                "uid": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "controller": true,
                "blockOwnerDeletion": true
            }]
        },
        "spec": {
            "containers": [{
                "name": "web",
                "image": "registry.k8s.io/nginx:1.27",
                "ports": [{ "containerPort": 80, "protocol": "TCP", "name": "http" }],
                "env": [
                    { "name": "MODE", "value": "production" },
                    { "name": "POD_NAME", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } }
                ],
                "resources": {
                    "requests": { "cpu": "100m", "memory": "128Mi" },
                    "limits": { "cpu": "500m", "memory": "256Mi" }
                },
                "volumeMounts": [{ "name": "kube-api-access-abcde", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true }],
                "readinessProbe": { "httpGet": { "path": "/healthz", "port": 80, "scheme": "HTTP" }, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3 },
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent"
            }],
            "volumes": [{ "name": "kube-api-access-abcde", "projected": { "defaultMode": 420, "sources": [
                { "serviceAccountToken": { "expirationSeconds": 3607, "path": "token" } },
                { "configMap": { "name": "kube-root-ca.crt", "items": [{ "key": "ca.crt", "path": "ca.crt" }] } }
            ] } }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "nodeName": "node-3",
            "schedulerName": "default-scheduler",
            "tolerations": [
                { "key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300 },
                { "key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300 }
            ],
            "priority": 0,
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority"
        },
        "status": {
            "phase": "Running",
            "conditions": [
                { "type": "Initialized", "status": "True", "lastTransitionTime": "2026-11-23T10:00:01Z" },
                { "type": "Ready", "status": "True", "lastTransitionTime": "2026-11-23T10:00:05Z" },
                { "type": "ContainersReady", "status": "True", "lastTransitionTime": "2026-11-23T10:00:05Z" },
                { "type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-11-23T10:00:00Z" }
            ],
            "hostIP": "10.0.0.3",
            "podIP": "10.244.3.17",
            "podIPs": [{ "ip": "10.244.3.17" }],
            "startTime": "2026-11-23T10:00:01Z",
            "containerStatuses": [{
                "name": "web", "ready": true, "restartCount": 0, "started": true,
                "image": "registry.k8s.io/nginx:1.27",
                "imageID": "registry.k8s.io/nginx@sha256:0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a09080706050403020100",
                "containerID": "containerd://4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b",
                "state": { "running": { "startedAt": "2026-11-23T10:00:03Z" } },
                "lastState": {}
            }],
            "qosClass": "Burstable"
        }
    })
}

fn bench_pod_json(c: &mut Criterion) {
    let bytes = serde_json::to_vec(&pod()).expect("encode");
    let value: Value = serde_json::from_slice(&bytes).expect("decode");
    let typed: Pod = serde_json::from_slice(&bytes).expect("typed decode");
    let mut g = c.benchmark_group("pod_json");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("decode_value", |b| {
        b.iter(|| serde_json::from_slice::<Value>(&bytes).expect("decode"))
    });
    g.bench_function("encode_value", |b| {
        b.iter(|| serde_json::to_vec(&value).expect("encode"))
    });
    g.bench_function("decode_typed_k8s_openapi", |b| {
        b.iter(|| serde_json::from_slice::<Pod>(&bytes).expect("decode"))
    });
    g.bench_function("encode_typed_k8s_openapi", |b| {
        b.iter(|| serde_json::to_vec(&typed).expect("encode"))
    });
    g.bench_function("watch_cache_obj_decode", |b| {
        b.iter(|| {
            strata_apiserver::cache::Obj::decode("/registry/pods/default/web", &bytes, 123_457)
                .expect("decode")
        })
    });
    g.finish();
}

criterion_group!(benches, bench_pod_json);
criterion_main!(benches);

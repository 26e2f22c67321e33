//! Kubernetes-like traffic through the apiserver: ConfigMaps in the run's namespace, created,
//! updated with their resourceVersion, deleted with a resourceVersion precondition, read, listed
//! and watched (with bookmarks), the way controllers use the API.
//!
//! Each write carries a unique marker in `data.marker`, so the revision history (the store keys
//! `/registry/configmaps/<namespace>/<name>`) names the request behind every change, as values do
//! for the KV traffic. A delete carries a precondition on the resourceVersion it saw, which ties a
//! deletion in the history to the request that made it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::Ctx;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum KubeInput {
    Create {
        name: String,
        marker: String,
    },
    Update {
        name: String,
        marker: String,
        rv: i64,
    },
    Delete {
        name: String,
        rv: i64,
    },
    Get {
        name: String,
    },
    List,
}

impl KubeInput {
    pub fn name(&self) -> Option<&str> {
        match self {
            KubeInput::Create { name, .. }
            | KubeInput::Update { name, .. }
            | KubeInput::Delete { name, .. }
            | KubeInput::Get { name } => Some(name),
            KubeInput::List => None,
        }
    }

    pub fn marker(&self) -> Option<&str> {
        match self {
            KubeInput::Create { marker, .. } | KubeInput::Update { marker, .. } => Some(marker),
            _ => None,
        }
    }
}

/// An object as the API returned it: name, resourceVersion, marker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeObject {
    pub name: String,
    pub rv: i64,
    pub marker: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum KubeOutput {
    /// 200/201 with the object.
    Object {
        obj: KubeObject,
    },
    /// 200 to a delete.
    Deleted,
    /// A Status with this code and reason (404 NotFound, 409 AlreadyExists/Conflict, ...):
    /// the request was refused.
    Rejected {
        code: u16,
        reason: String,
    },
    List {
        rv: i64,
        items: Vec<KubeObject>,
    },
    /// A timeout, a broken connection or a 5xx: may or may not have been applied.
    Unknown {
        error: String,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KubeOp {
    pub client: u32,
    pub call: u64,
    pub ret: Option<u64>,
    pub input: KubeInput,
    pub output: KubeOutput,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeEvent {
    pub at: u64,
    /// ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.
    pub kind: String,
    pub rv: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obj: Option<KubeObject>,
    /// For ERROR: the Status code (410: the resourceVersion is too old).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
}

/// One watch request from `start_rv` until its stream ended.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KubeWatchSession {
    pub watcher: u32,
    pub start_rv: i64,
    pub events: Vec<KubeEvent>,
}

/// Where the traffic goes and what it needs.
#[derive(Clone)]
pub struct KubeTarget {
    pub base: String,
    pub token: String,
    pub ca: std::path::PathBuf,
    pub namespace: String,
    pub objects: usize,
}

impl KubeTarget {
    pub fn collection(&self) -> String {
        format!(
            "{}/api/v1/namespaces/{}/configmaps",
            self.base, self.namespace
        )
    }

    /// The store key prefix of the run's objects.
    pub fn key_prefix(&self) -> String {
        format!("/registry/configmaps/{}/", self.namespace)
    }

    pub fn client(&self, timeout: Duration) -> Result<reqwest::Client, String> {
        let ca = std::fs::read(&self.ca).map_err(|e| format!("apiserver CA: {e}"))?;
        let cert = reqwest::Certificate::from_pem(&ca).map_err(|e| e.to_string())?;
        reqwest::Client::builder()
            .add_root_certificate(cert)
            .tls_built_in_root_certs(false)
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())
    }
}

/// The marker and resourceVersion of an object in a response.
pub fn object_of(v: &Value) -> Option<KubeObject> {
    Some(KubeObject {
        name: v.pointer("/metadata/name")?.as_str()?.to_string(),
        rv: v
            .pointer("/metadata/resourceVersion")?
            .as_str()?
            .parse()
            .ok()?,
        marker: v
            .pointer("/data/marker")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    })
}

/// Creates the run's namespace (retrying while the apiserver settles).
pub async fn create_namespace(t: &KubeTarget) -> Result<(), String> {
    let c = t.client(Duration::from_secs(10))?;
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": t.namespace}});
    let mut last = String::new();
    for _ in 0..40 {
        match c
            .post(format!("{}/api/v1/namespaces", t.base))
            .bearer_auth(&t.token)
            .json(&body)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() || r.status().as_u16() == 409 => return Ok(()),
            Ok(r) => last = format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(format!("create namespace {}: {last}", t.namespace))
}

struct Client {
    ctx: Arc<Ctx>,
    t: KubeTarget,
    http: reqwest::Client,
    id: u32,
    seq: u64,
    /// Last resourceVersion seen per object (None: absent).
    seen: HashMap<String, Option<i64>>,
    rng: StdRng,
}

pub async fn run(ctx: Arc<Ctx>, t: KubeTarget, id: u32, seed: u64) {
    let Ok(http) = t.client(ctx.op_timeout) else {
        return;
    };
    let mut c = Client {
        ctx,
        t,
        http,
        id,
        seq: 0,
        seen: HashMap::new(),
        rng: StdRng::seed_from_u64(seed),
    };
    while !c.ctx.stopped() {
        let name = format!("cm-{}", c.rng.random_range(0..c.t.objects.max(1)));
        let roll = c.rng.random_range(0..100);
        let input = match c.seen.get(&name).copied().flatten() {
            _ if roll < 15 => KubeInput::Get { name },
            _ if roll < 25 => KubeInput::List,
            None => KubeInput::Create {
                marker: c.marker(),
                name,
            },
            Some(rv) if roll < 35 => KubeInput::Delete { name, rv },
            Some(rv) => KubeInput::Update {
                marker: c.marker(),
                name,
                rv,
            },
        };
        let ok = c.send(input).await;
        if !ok && !super::pause(&c.ctx, Duration::from_millis(50)).await {
            break;
        }
    }
}

impl Client {
    fn marker(&mut self) -> String {
        self.seq += 1;
        format!("km{}.{}", self.id, self.seq)
    }

    fn body(&self, name: &str, marker: &str, rv: Option<i64>) -> Value {
        let mut meta = json!({"name": name, "namespace": self.t.namespace});
        if let Some(rv) = rv {
            meta["resourceVersion"] = json!(rv.to_string());
        }
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"marker": marker}})
    }

    /// Sends one request, records it; whether it got a definite answer.
    async fn send(&mut self, input: KubeInput) -> bool {
        let coll = self.t.collection();
        let req = match &input {
            KubeInput::Create { name, marker } => {
                self.http.post(&coll).json(&self.body(name, marker, None))
            }
            KubeInput::Update { name, marker, rv } => self
                .http
                .put(format!("{coll}/{name}"))
                .json(&self.body(name, marker, Some(*rv))),
            KubeInput::Delete { name, rv } => self
                .http
                .delete(format!("{coll}/{name}"))
                .json(&json!({"preconditions": {"resourceVersion": rv.to_string()}})),
            KubeInput::Get { name } => self.http.get(format!("{coll}/{name}")),
            KubeInput::List => self.http.get(&coll),
        };
        let call = self.ctx.clock.now();
        let answer = async {
            let r = req.bearer_auth(&self.t.token).send().await?;
            let code = r.status().as_u16();
            let body = r.bytes().await?;
            Ok::<_, reqwest::Error>((code, body))
        }
        .await;
        let now = self.ctx.clock.now();
        let output = match answer {
            Err(e) => KubeOutput::Unknown {
                error: e.to_string(),
            },
            Ok((code, body)) => {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                decode(&input, code, &v)
            }
        };
        let ret = (!matches!(output, KubeOutput::Unknown { .. })).then_some(now);
        if let Some(name) = input.name() {
            match &output {
                KubeOutput::Object { obj } => {
                    self.seen.insert(name.to_string(), Some(obj.rv));
                }
                KubeOutput::Deleted => {
                    self.seen.insert(name.to_string(), None);
                }
                KubeOutput::Rejected { code: 404, .. } => {
                    self.seen.insert(name.to_string(), None);
                }
                // Learn the current version for the next update.
                KubeOutput::Rejected { code: 409, .. } | KubeOutput::Unknown { .. } => {
                    self.seen.remove(name);
                    if !matches!(input, KubeInput::Get { .. }) {
                        self.seen.insert(name.to_string(), None);
                        let _ = self.refresh(name).await;
                    }
                }
                _ => {}
            }
        }
        if let KubeOutput::List { items, .. } = &output {
            for o in items {
                self.seen.insert(o.name.clone(), Some(o.rv));
            }
        }
        self.ctx.rec.with(|h| {
            h.kube_ops.push(KubeOp {
                client: self.id,
                call,
                ret,
                input,
                output,
            });
        });
        ret.is_some()
    }

    /// A recorded GET of `name`, to learn its resourceVersion.
    async fn refresh(&mut self, name: &str) -> bool {
        Box::pin(self.send(KubeInput::Get {
            name: name.to_string(),
        }))
        .await
    }
}

fn decode(input: &KubeInput, code: u16, v: &Value) -> KubeOutput {
    let reason = || {
        v.get("reason")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    match code {
        200 | 201 => match input {
            KubeInput::Delete { .. } => KubeOutput::Deleted,
            KubeInput::List => {
                let rv = v
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok());
                let items = v
                    .get("items")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(object_of).collect());
                match (rv, items) {
                    (Some(rv), Some(items)) => KubeOutput::List { rv, items },
                    _ => KubeOutput::Unknown {
                        error: format!("list answered {code} without resourceVersion or items"),
                    },
                }
            }
            _ => match object_of(v) {
                Some(obj) => KubeOutput::Object { obj },
                None => KubeOutput::Unknown {
                    error: format!("{code} without an object"),
                },
            },
        },
        // 5xx (etcd timeouts, unavailability) and 429 may come after the write was sent.
        c if c >= 500 || c == 429 => KubeOutput::Unknown {
            error: format!("{c} {}", reason()),
        },
        c => KubeOutput::Rejected {
            code: c,
            reason: reason(),
        },
    }
}

//! Events (core/v1), as client-go's event recorder writes them: `Scheduled`,
//! `FailedScheduling`, `SuccessfulCreate`, `ScalingReplicaSet`, `NodeNotReady`, ... with the
//! component and the instance (leader-election identity) that acted, which is how one tells
//! which of two schedulers did the work.
//!
//! Recording never blocks the caller: events go through a bounded queue to one writer task
//! and are dropped (and counted) when it is full, because an event is a courtesy to the user,
//! never worth slowing scheduling down. Unlike client-go, repeated events are not aggregated
//! into one with a count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::{mpsc, watch};

const QUEUE: usize = 4096;

/// Records events for one component; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: Option<mpsc::Sender<Event>>,
    component: String,
    instance: String,
    dropped: Arc<AtomicU64>,
}

impl Recorder {
    /// A recorder for `component` (e.g. `default-scheduler`) acting as `instance`, and the
    /// task that writes its events until `shutdown`.
    pub fn new(
        client: Client,
        component: &str,
        instance: &str,
        shutdown: watch::Receiver<bool>,
    ) -> (
        Recorder,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = write_events(client, rx, shutdown);
        (
            Recorder {
                tx: Some(tx),
                component: component.to_string(),
                instance: instance.to_string(),
                dropped: Arc::new(AtomicU64::new(0)),
            },
            task,
        )
    }

    /// A recorder that records nothing (unit tests).
    pub fn disabled() -> Recorder {
        Recorder {
            tx: None,
            component: String::new(),
            instance: String::new(),
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Records a `Normal` event about `obj`.
    pub fn normal<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        reason: &str,
        action: &str,
        message: String,
    ) {
        self.record(obj, "Normal", reason, action, message);
    }

    /// Records a `Warning` event about `obj`.
    pub fn warning<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        reason: &str,
        action: &str,
        message: String,
    ) {
        self.record(obj, "Warning", reason, action, message);
    }

    fn record<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: &str,
        reason: &str,
        action: &str,
        message: String,
    ) {
        let Some(tx) = &self.tx else { return };
        let now = jiff::Timestamp::now();
        let involved = ObjectReference {
            api_version: Some(K::api_version(&()).to_string()),
            kind: Some(K::kind(&()).to_string()),
            name: Some(obj.name_any()),
            namespace: obj.namespace(),
            uid: obj.uid(),
            resource_version: obj.resource_version(),
            ..Default::default()
        };
        let namespace = obj.namespace().unwrap_or_else(|| "default".into());
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(format!("{}.{:x}", obj.name_any(), now.as_nanosecond())),
                namespace: Some(namespace),
                ..Default::default()
            },
            involved_object: involved,
            reason: Some(reason.to_string()),
            message: Some(message),
            type_: Some(type_.to_string()),
            action: Some(action.to_string()),
            count: Some(1),
            first_timestamp: Some(crate::pod::now()),
            last_timestamp: Some(crate::pod::now()),
            event_time: Some(MicroTime(now)),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        if tx.try_send(ev).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "event queue full; events dropped");
            }
        }
    }
}

/// Events written at once: enough to keep up with a scheduler binding a few hundred pods a
/// second, few enough not to crowd out the writes that matter.
const WRITERS: usize = 8;

async fn write_events(
    client: Client,
    mut rx: mpsc::Receiver<Event>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(WRITERS));
    let mut writes = tokio::task::JoinSet::new();
    loop {
        let ev = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => break,
            ev = rx.recv() => match ev { Some(ev) => ev, None => break },
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        while writes.try_join_next().is_some() {}
        let ns = ev
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let api: Api<Event> = Api::namespaced(client.clone(), &ns);
        writes.spawn(async move {
            if let Err(e) = api.create(&PostParams::default(), &ev).await {
                tracing::debug!(error = %e, reason = ?ev.reason, "could not record event");
            }
            drop(slot);
        });
    }
    // Stopping: events still being written are abandoned.
    writes.abort_all();
    while writes.join_next().await.is_some() {}
}

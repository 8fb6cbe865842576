//! `sync --watch`: event-driven converges that can run for months.
//!
//! One kube-runtime watcher per cluster (label selector, all namespaces) keeps a store of the
//! labelled Services; every change wakes the loop, which waits for a quiet `debounce` window
//! (latest wins, capped so a constant trickle cannot starve it), then runs ONE converge: one
//! commit and push per burst, never two in flight (the loop is sequential). A full converge also
//! runs every `resync`, repairing drift on Panorama. Watch loss is handled by the watcher (re-list
//! with backoff); a cluster that has never been listed is *frozen* (its Service objects held as
//! they are) because "unknown" must not read as "no Services", while the others keep converging.
//! A converge that failed or had writes refused is tried again with backoff (2 s doubling, at
//! most 5 min). On shutdown the in-flight converge finishes; none is started. After each
//! converge a verification pass runs off the loop (`verify_task`; the next converge aborts it).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ObjectReference, Service};
use kube::Resource;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::events::{Event as KEvent, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use pano_eks_core::{ClusterFacts, Facts, ProblemKind, ServiceState};
use tokio::sync::{mpsc, watch as tokio_watch};

use super::metrics::Metrics;
use super::verify_task::{EventTarget, Verifier};
use super::{Engine, Read, Report};
use crate::kube::service_facts;

/// One cluster whose Services are watched.
pub struct WatchedCluster {
    pub name: String,
    pub client: kube::Client,
}

pub struct WatchSetup {
    pub engine: Engine,
    pub clusters: Vec<WatchedCluster>,
    /// The AWS-side facts (subnets, firewalls), kept current by the caller (a replaced firewall
    /// changes the routes); Services come from the watches.
    pub base_facts: tokio_watch::Receiver<Facts>,
    pub label: String,
    pub debounce: Duration,
    pub resync: Duration,
    pub metrics: Metrics,
    /// `Some` in a replicated deployment: only the lease holder converges.
    pub leader: Option<tokio_watch::Receiver<bool>>,
    /// Record Kubernetes Events on Services whose state changes.
    pub events: bool,
    /// Called after every converge attempt (tests and benchmarks observe the loop through it).
    pub on_converge: Option<Box<dyn Fn(&Result<Report, String>) + Send + Sync>>,
}

struct ClusterWatch {
    name: String,
    store: Store<Service>,
    ready: Arc<AtomicBool>,
    recorder: Option<Recorder>,
    /// Events stop after the first 403: the role may not allow them.
    events_allowed: Arc<AtomicBool>,
}

/// Runs until `shutdown` resolves.
pub async fn run(setup: WatchSetup, shutdown: impl std::future::Future<Output = ()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut watches = Vec::new();
    for c in &setup.clusters {
        let api: Api<Service> = Api::all(c.client.clone());
        let (store, writer) = reflector::store();
        let ready = Arc::new(AtomicBool::new(false));
        let stream = reflector::reflector(writer, watcher(api, watcher::Config::default().labels(&setup.label))).default_backoff();
        let (tx, ready2, metrics, name) = (tx.clone(), ready.clone(), setup.metrics.clone(), c.name.clone());
        metrics.cluster_ready(&name, false);
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(watcher::Event::InitDone) => {
                        ready2.store(true, Ordering::SeqCst);
                        metrics.cluster_ready(&name, true);
                        let _ = tx.send(());
                    }
                    Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                    Ok(_) => {
                        let _ = tx.send(());
                    }
                    Err(e) => {
                        // The watcher re-lists with backoff; the store keeps the last known state.
                        tracing::warn!(cluster = %name, error = %e, "Service watch interrupted; re-listing");
                        metrics.cluster_ready(&name, false);
                    }
                }
            }
        });
        let recorder = setup
            .events
            .then(|| Recorder::new(c.client.clone(), Reporter { controller: "pano-eks".into(), instance: std::env::var("POD_NAME").ok() }));
        watches.push(ClusterWatch { name: c.name.clone(), store, ready, recorder, events_allowed: Arc::new(AtomicBool::new(true)) });
    }

    let mut last_states: BTreeMap<(String, String, String), ServiceState> = BTreeMap::new();
    let mut resync = tokio::time::interval(setup.resync);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut retry = Retry::new(setup.resync);
    let mut verifier = verifier(&setup, &watches);
    let mut leadership = setup.leader.clone();
    loop {
        let retry_due = retry.due();
        let done = tokio::select! {
            _ = &mut shutdown => break,
            // A replica that becomes the leader converges at once: changes it saw as a follower
            // were not written by anyone (and /metrics' leader gauge follows either way). It reads
            // everything: another replica wrote meanwhile.
            () = leadership_changed(&mut leadership) => converge_once(&setup, &watches, &mut last_states, &mut verifier, Read::Full).await,
            Some(()) = rx.recv() => {
                // Debounce: wait for a quiet window, at most 5 windows in total.
                let cap = Instant::now() + setup.debounce * 5;
                while Instant::now() < cap {
                    match tokio::time::timeout(setup.debounce, rx.recv()).await {
                        Ok(Some(())) => continue,
                        _ => break,
                    }
                }
                while rx.try_recv().is_ok() {}
                converge_once(&setup, &watches, &mut last_states, &mut verifier, Read::Cached).await
            }
            // The resync and a retry read everything (drift repair; a failure emptied the cache).
            _ = resync.tick() => converge_once(&setup, &watches, &mut last_states, &mut verifier, Read::Full).await,
            _ = retry_due => converge_once(&setup, &watches, &mut last_states, &mut verifier, Read::Full).await,
        };
        retry.after(done);
    }
    verifier.supersede();
    tracing::info!("sync --watch stopped");
}

/// Resolves when the leader gate flips (never without one, or once its elector is gone).
async fn leadership_changed(gate: &mut Option<tokio_watch::Receiver<bool>>) {
    let alive = match gate {
        Some(rx) => rx.changed().await.is_ok(),
        None => false,
    };
    if !alive {
        *gate = None;
        std::future::pending::<()>().await
    }
}

/// A converge that failed, or in which Panorama refused writes, is tried again without waiting
/// for a change or the resync: after 2 s, then doubling, at most 5 minutes (or the resync
/// period). A failure is usually transient (Panorama busy or restarting, a key another process
/// rotated at the wrong moment); a refusal may be (a reference that is about to appear).
struct Retry {
    next: Option<tokio::time::Instant>,
    wait: Duration,
    cap: Duration,
}

impl Retry {
    const FIRST: Duration = Duration::from_secs(2);

    fn new(resync: Duration) -> Retry {
        Retry { next: None, wait: Self::FIRST, cap: resync.min(Duration::from_secs(300)).max(Self::FIRST) }
    }

    /// Resolves when a retry is due (never, when none is).
    fn due(&self) -> impl std::future::Future<Output = ()> + use<> {
        let next = self.next;
        async move {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        }
    }

    fn after(&mut self, done: Outcome) {
        match done {
            Outcome::Done => (self.next, self.wait) = (None, Self::FIRST),
            Outcome::Retry => {
                tracing::info!(in_secs = self.wait.as_secs(), "trying the converge again");
                self.next = Some(tokio::time::Instant::now() + self.wait);
                self.wait = (self.wait * 2).min(self.cap);
            }
        }
    }
}

/// What a converge attempt asks of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Converged (or not ours to do: a follower).
    Done,
    /// Failed, or Panorama refused some writes: try again soon.
    Retry,
}

async fn converge_once(
    setup: &WatchSetup,
    watches: &[ClusterWatch],
    last: &mut BTreeMap<(String, String, String), ServiceState>,
    verifier: &mut Verifier,
    read: Read,
) -> Outcome {
    if let Some(l) = &setup.leader {
        let leading = *l.borrow();
        setup.metrics.set_leader(leading);
        if !leading {
            tracing::debug!("not the leader: not writing");
            // Another replica writes meanwhile: what we knew of Panorama is stale.
            setup.engine.forget_cache().await;
            return Outcome::Done;
        }
    }
    let base = setup.base_facts.borrow().clone();
    let mut facts = snapshot(&base, watches);
    // A cluster whose Services were never listed (unreachable since start) is frozen: its Service
    // objects stay as they are, and the other clusters keep converging. Once listed, the store
    // keeps its last known Services through reconnects.
    facts.frozen_clusters = watches.iter().filter(|w| !w.ready.load(Ordering::SeqCst)).map(|w| w.name.clone()).collect();
    for c in &facts.frozen_clusters {
        tracing::warn!(cluster = %c, "Services not listed yet (cluster unreachable?): its Service objects are held as they are");
    }
    verifier.supersede();
    let start = Instant::now();
    let converging = setup.metrics.converging();
    let result = setup.engine.converge_watched(&facts, read).await;
    if let Err(crate::sync::SyncError::Commit(crate::panorama::commit::CommitError::PushFailed { metric_target, devices, .. })) = &result {
        setup.metrics.pushed(metric_target, devices);
    }
    let result = result.map_err(|e| e.to_string());
    let secs = start.elapsed().as_secs_f64();
    match &result {
        Ok(r) => {
            setup.metrics.reconciled(secs, Some(r));
            let (c, u, d) = r.plan.counts();
            if c + u + d > 0 {
                tracing::info!(created = c, updated = u, deleted = d, commit = ?r.commit_job, ms = r.elapsed_ms, "converged");
            }
            record_events(watches, &r.plan, last).await;
            verifier.after_converge(&facts, r);
        }
        Err(e) => {
            setup.metrics.reconciled(secs, None);
            tracing::error!(error = %e, "converge failed; retrying soon, and at the next change or resync");
        }
    }
    drop(converging);
    let outcome = match &result {
        // Every refused write is a `refused` problem (core::panorama::refusals), with or without a Service.
        Ok(r) if !r.plan.problems.iter().any(|p| p.kind == ProblemKind::Refused) => Outcome::Done,
        _ => Outcome::Retry,
    };
    if let Some(cb) = &setup.on_converge {
        cb(&result);
    }
    outcome
}

/// The verification that follows each converge, off the loop (`verify_task`).
fn verifier(setup: &WatchSetup, watches: &[ClusterWatch]) -> Verifier {
    let targets = watches
        .iter()
        .map(|w| EventTarget {
            cluster: w.name.clone(),
            store: w.store.clone(),
            recorder: w.recorder.clone(),
            allowed: w.events_allowed.clone(),
        })
        .collect();
    Verifier::new(setup.engine.client.clone(), setup.engine.settings.clone(), setup.metrics.clone(), targets)
}

/// The facts of this instant: AWS-side facts plus every watched cluster's Services.
fn snapshot(base: &Facts, watches: &[ClusterWatch]) -> Facts {
    let mut facts = base.clone();
    for w in watches {
        let services = w.store.state().iter().filter_map(|s| service_facts(s)).collect();
        match facts.clusters.iter_mut().find(|c| c.name == w.name) {
            Some(c) => c.services = services,
            None => facts.clusters.push(ClusterFacts { name: w.name.clone(), subnets: vec![], services }),
        }
    }
    facts
}

/// One Event per Service whose state changed (Protected, Pending, Conflict, InvalidLabel,
/// Refused: Panorama refused a write it needs, with PAN-OS's message; Exposed: its own load
/// balancer is internet-facing and bypasses the firewalls).
async fn record_events(watches: &[ClusterWatch], plan: &pano_eks_core::Plan, last: &mut BTreeMap<(String, String, String), ServiceState>) {
    for s in &plan.services {
        let key = (s.cluster.clone(), s.namespace.clone(), s.name.clone());
        let state = if s.state == ServiceState::Planned { ServiceState::Protected } else { s.state };
        if last.get(&key) == Some(&state) {
            continue;
        }
        last.insert(key, state);
        let Some(w) = watches.iter().find(|w| w.name == s.cluster) else { continue };
        let (Some(rec), true) = (&w.recorder, w.events_allowed.load(Ordering::Relaxed)) else { continue };
        let Some(obj) = w
            .store
            .state()
            .into_iter()
            .find(|o| o.metadata.namespace.as_deref() == Some(&s.namespace) && o.metadata.name.as_deref() == Some(&s.name))
        else {
            continue;
        };
        let reference: ObjectReference = obj.object_ref(&());
        let (type_, reason) = match state {
            ServiceState::Protected | ServiceState::Planned => (EventType::Normal, "Protected"),
            ServiceState::Pending => (EventType::Normal, "Pending"),
            ServiceState::Conflict => (EventType::Warning, "Conflict"),
            ServiceState::Invalid => (EventType::Warning, "InvalidLabel"),
            ServiceState::Refused => (EventType::Warning, "Refused"),
            ServiceState::OverCapacity => (EventType::Warning, "OverCapacity"),
            ServiceState::Exposed => (EventType::Warning, "Exposed"),
        };
        let note = match &s.nat_rule {
            Some(rule) if reason == "Protected" => format!("protected by Panorama NAT rule {rule}"),
            _ => s.reason.clone(),
        };
        let mut evs = vec![KEvent { type_, reason: reason.into(), note: Some(note), action: "Sync".into(), secondary: None }];
        // Its former entries that a foreign rule or group still references (held, not deleted),
        // told with the state change that released them. A deleted Service has no object to
        // carry an Event: its holds are in the plan, `status` and the log.
        let subject = format!("{}/{}/{}", s.cluster, s.namespace, s.name);
        for p in plan.problems.iter().filter(|p| p.kind == pano_eks_core::ProblemKind::InUse && p.subject == subject) {
            evs.push(KEvent {
                type_: EventType::Warning,
                reason: "Held".into(),
                note: Some(p.message.clone()),
                action: "Sync".into(),
                secondary: None,
            });
        }
        for ev in &evs {
            if let Err(e) = rec.publish(ev, &reference).await {
                if matches!(&e, kube::Error::Api(a) if a.code == 403) {
                    tracing::warn!(cluster = %w.name, "the role may not create Events; Service events are off for this cluster");
                    w.events_allowed.store(false, Ordering::Relaxed);
                } else {
                    tracing::debug!(error = %e, "could not record an Event");
                }
                break;
            }
        }
    }
}

//! `sync --watch`'s verification (issue 15), off the converge loop. After every converge that
//! succeeded (a push or a resync) one pass asks each firewall whether the Services are really
//! protected (`panorama::verify`); its rows go to /metrics, failures to the log and, for a
//! check that concerns a Service, to a `VerifyFailed` Warning Event on that Service.
//!
//! A pass runs as its own task so that it never delays a change: the next converge aborts it
//! before it starts (its op calls would otherwise share Panorama's 5 slots with the converge's
//! writes), and the pass after that converge starts afresh. Aborting is safe: a pass only reads.
//! A pass that cannot run is logged, never fails a converge.
//!
//! After a converge from the watch cache a pass asks only what `core::verify::focus` picks (what
//! the converge wrote or changed, what failed last time, the firewall-wide checks) and joins the
//! last pass's other rows; after a full read it asks everything (docs/verify.md).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Service;
use kube::Resource;
use kube::runtime::events::{Event as KEvent, EventType, Recorder};
use kube::runtime::reflector::Store;
use pano_eks_core::verify::{self, Focus, Row, ServiceKey, Verified};
use pano_eks_core::{ClusterStatus, Facts, PlanSettings, ServiceStatus};

use super::Report;
use super::metrics::Metrics;
use crate::panorama::PanoramaClient;
use crate::panorama::verify::{Scope, run};

/// Where a cluster's `VerifyFailed` Events go (the watch's store finds the Service object).
#[derive(Clone)]
pub struct EventTarget {
    pub cluster: String,
    pub store: Store<Service>,
    pub recorder: Option<Recorder>,
    /// Cleared by the watch after the first 403: the role may not allow Events.
    pub allowed: Arc<AtomicBool>,
}

/// What a pass asks about, as the converge before it left things.
struct Subject {
    services: Vec<ServiceStatus>,
    clusters: Vec<ClusterStatus>,
    fqdns: BTreeMap<ServiceKey, String>,
}

/// The pass running now: what it asks, and the rows it has answered so far (`None` until its
/// firewall-wide rows came back: before that it has nothing to join).
struct InFlight {
    generation: u64,
    focus: Focus,
    subject: Arc<Subject>,
    rows: Option<Vec<Row>>,
}

/// What a pass compares with and joins.
#[derive(Default)]
struct State {
    /// Each member's policy version as the last finished pass saw it.
    seen: BTreeMap<String, u64>,
    /// The baseline of a device-group push of ours whose pass has not finished yet (it was
    /// superseded): kept for the next pass, so a push is never left unchecked.
    pending: Option<BTreeMap<String, u64>>,
    /// The pass allowed to record what it saw (an aborted one may still be mid-poll).
    current: u64,
    /// Every check's row as the passes left them (`None` until a pass answered anything).
    verified: Option<Verified>,
    /// What earlier passes were to ask and did not: the next pass asks it too.
    owed: Focus,
    in_flight: Option<InFlight>,
}

impl State {
    /// Joins what a pass answered into `verified`. A finished pass asked its whole focus (a
    /// Service it has no rows for sits on a firewall that failed its firewall-wide checks, and
    /// keeps none); one that was stopped answered only what it has rows for, and owes the rest.
    /// What the join finds missing is owed too. Returns the join's failed rows (for Events).
    fn join(&mut self, focus: &Focus, subject: &Subject, rows: Vec<Row>, finished: bool, metrics: &Metrics) -> Vec<Row> {
        let answered = if finished { focus.clone() } else { focus.answered(&rows) };
        let last = self.verified.take().unwrap_or_default();
        let (joined, missing) = verify::focus::merge(last, &answered, rows, &subject.services, &subject.clusters, &subject.fqdns);
        let mut owed = self.owed.without(&answered);
        owed.extend(&focus.without(&answered));
        owed.extend(&missing);
        self.owed = owed;
        metrics.verified(&joined.rows);
        let failed = joined.rows.iter().filter(|r| !r.ok).cloned().collect();
        self.verified = Some(joined);
        failed
    }
}

pub struct Verifier {
    client: PanoramaClient,
    settings: PlanSettings,
    metrics: Metrics,
    events: Arc<Vec<EventTarget>>,
    state: Arc<Mutex<State>>,
    running: Option<tokio::task::JoinHandle<()>>,
}

impl Verifier {
    pub fn new(client: PanoramaClient, settings: PlanSettings, metrics: Metrics, events: Vec<EventTarget>) -> Verifier {
        Verifier { client, settings, metrics, events: Arc::new(events), state: Arc::default(), running: None }
    }

    /// A converge is about to start: a pass still running is aborted (it would compete with the
    /// converge for Panorama's call slots, and its answers would be about the config before it).
    pub fn supersede(&mut self) {
        if let Some(h) = self.running.take()
            && !h.is_finished()
        {
            h.abort();
            tracing::info!("verification superseded by a converge; a new pass follows it");
        }
    }

    /// Whether a pass is running now (tests).
    pub fn running(&self) -> bool {
        self.running.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Starts the pass that follows a successful converge. Services the converge wrote count as
    /// protected (`core::verify::after_converge`); after a device-group push the firewalls it
    /// reported OK for must hold a newer policy version than the last pass saw. After a full read
    /// the pass asks about everything; after a converge from the cache only about what it wrote
    /// or changed and what failed last time (`core::verify::focus`), plus what earlier passes
    /// owe: what a stopped pass had not asked yet, what a firewall lacks rows for.
    pub fn after_converge(&mut self, facts: &Facts, report: &Report) {
        self.supersede();
        let pushed_ok: Vec<String> = report
            .pushes
            .iter()
            .filter(|p| p.target.starts_with("device-group/"))
            .flat_map(|p| p.devices.iter().filter(|d| d.2.eq_ignore_ascii_case("OK")).map(|d| d.0.clone()))
            .collect();
        let subject = Arc::new(Subject {
            services: verify::after_converge(&report.plan.services),
            clusters: report.plan.clusters.clone(),
            fqdns: verify::fqdns(facts),
        });
        let (generation, focus) = {
            let mut v = self.state.lock().expect("verify state lock");
            // The pass this converge stopped: what it answered is kept, the rest owed.
            if let Some(stopped) = v.in_flight.take() {
                match stopped.rows {
                    Some(rows) => {
                        let _ = v.join(&stopped.focus, &stopped.subject, rows, false, &self.metrics);
                    }
                    None => v.owed.extend(&stopped.focus),
                }
            }
            if report.pushes.iter().any(|p| p.target.starts_with("device-group/")) {
                let now = verify::before_push(&v.seen, &pushed_ok);
                // An earlier push still unchecked keeps its (older) baseline.
                let mut merged = v.pending.take().unwrap_or_default();
                for (s, n) in now {
                    merged.entry(s).or_insert(n);
                }
                v.pending = Some(merged);
            }
            v.current += 1;
            let mut focus = match &v.verified {
                Some(last) if report.confirmed.is_some() => {
                    verify::focus::focus(last, &report.plan.services, &report.plan.clusters, &subject.fqdns)
                }
                _ => Focus::all(&subject.services, &subject.clusters),
            };
            focus.extend(&std::mem::take(&mut v.owed));
            (v.current, focus)
        };
        let (client, settings, metrics, events, state) =
            (self.client.clone(), self.settings.clone(), self.metrics.clone(), self.events.clone(), self.state.clone());
        // Set before the converge's own gauge goes down, so a reader never sees both at 0 while
        // this pass is still to come.
        let verifying = self.metrics.verifying();
        self.running = Some(tokio::spawn(async move {
            let _verifying = verifying;
            let mut focus = focus;
            // A join can find rows missing (a firewall joined or came back): asked at once, twice at most.
            for round in 0..3 {
                let before = {
                    let mut v = state.lock().expect("verify state lock");
                    if v.current != generation {
                        return;
                    }
                    v.in_flight = Some(InFlight { generation, focus: focus.clone(), subject: subject.clone(), rows: None });
                    v.pending.clone()
                };
                let sink = |rows: &[Row]| {
                    let mut v = state.lock().expect("verify state lock");
                    if let Some(f) = v.in_flight.as_mut().filter(|f| f.generation == generation) {
                        f.rows.get_or_insert_with(Vec::new).extend_from_slice(rows);
                    }
                };
                let scope = Scope {
                    settings: &settings,
                    services: &subject.services,
                    clusters: &subject.clusters,
                    fqdns: &subject.fqdns,
                    before_push: before.as_ref(),
                    focus: Some(&focus),
                    sink: Some(&sink),
                };
                let report = match run(&client, &scope).await {
                    Ok(r) => r,
                    // What it answered before the failure joins at the next converge.
                    Err(e) => return tracing::warn!(error = %e, "verify after the converge could not run"),
                };
                let asked = report.rows.len();
                let (failed, owed) = {
                    let mut v = state.lock().expect("verify state lock");
                    if v.current != generation {
                        return;
                    }
                    v.in_flight = None;
                    let failed = v.join(&focus, &subject, report.rows, true, &metrics);
                    (v.seen, v.pending) = (report.versions, None);
                    (failed, v.owed.clone())
                };
                for r in &failed {
                    tracing::warn!(firewall = %r.serial, check = r.check.as_str(), subject = %r.subject, detail = %r.detail, "verify failed");
                }
                tracing::info!(asked, failed = failed.len(), calls = report.calls, "verified");
                verify_events(&events, &failed).await;
                // The last round leaves what is still owed to the next converge's pass.
                if owed.is_empty() || round == 2 {
                    return;
                }
                tracing::info!(
                    services = owed.services.len(),
                    clusters = owed.clusters.len(),
                    "a firewall lacks rows it should have (it joined or came back): asking for them"
                );
                focus = std::mem::take(&mut state.lock().expect("verify state lock").owed);
            }
        }));
    }
}

/// One `VerifyFailed` Warning Event per Service with a failed check, naming each firewall, check
/// and answer (at most 5, then how many more).
async fn verify_events(targets: &[EventTarget], rows: &[Row]) {
    let mut by_service: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for r in rows.iter().filter(|r| !r.ok) {
        if let Some(k) = &r.service {
            by_service.entry((k.cluster.clone(), k.namespace.clone(), k.name.clone())).or_default().push(format!(
                "{} {}: {}",
                r.serial,
                r.check.as_str(),
                r.detail
            ));
        }
    }
    for ((cluster, namespace, name), failures) in by_service {
        let Some(t) = targets.iter().find(|t| t.cluster == cluster) else { continue };
        let (Some(rec), true) = (&t.recorder, t.allowed.load(Ordering::Relaxed)) else { continue };
        let found = t
            .store
            .state()
            .into_iter()
            .find(|o| o.metadata.namespace.as_deref() == Some(&namespace) && o.metadata.name.as_deref() == Some(&name));
        let Some(obj) = found else { continue };
        let mut note = failures.iter().take(5).cloned().collect::<Vec<_>>().join("; ");
        if failures.len() > 5 {
            note.push_str(&format!("; and {} more (pano-eks verify)", failures.len() - 5));
        }
        // Events carry at most 1 KiB of note.
        note.truncate(note.char_indices().nth(1000).map_or(note.len(), |(i, _)| i));
        let ev =
            KEvent { type_: EventType::Warning, reason: "VerifyFailed".into(), note: Some(note), action: "Verify".into(), secondary: None };
        if let Err(e) = rec.publish(&ev, &obj.object_ref(&())).await {
            tracing::debug!(error = %e, "could not record a VerifyFailed Event");
        }
    }
}

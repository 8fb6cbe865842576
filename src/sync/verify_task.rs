//! `sync --watch`'s verification (issue 15), off the converge loop. After every converge that
//! succeeded (a push or a resync) one pass asks each firewall whether the Services are really
//! protected (`panorama::verify`); its rows go to /metrics, failures to the log and, for a
//! check that concerns a Service, to a `VerifyFailed` Warning Event on that Service.
//!
//! A pass runs as its own task so that it never delays a change: the next converge aborts it
//! before it starts (its op calls would otherwise share Panorama's 5 slots with the converge's
//! writes), and the pass after that converge starts afresh. Aborting is safe: a pass only reads.
//! A pass that cannot run is logged, never fails a converge.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Service;
use kube::Resource;
use kube::runtime::events::{Event as KEvent, EventType, Recorder};
use kube::runtime::reflector::Store;
use pano_eks_core::verify::{self, Row};
use pano_eks_core::{Facts, PlanSettings};

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

/// What `config-version` compares with.
#[derive(Default)]
struct Versions {
    /// Each member's policy version as the last finished pass saw it.
    seen: BTreeMap<String, u64>,
    /// The baseline of a device-group push of ours whose pass has not finished yet (it was
    /// superseded): kept for the next pass, so a push is never left unchecked.
    pending: Option<BTreeMap<String, u64>>,
    /// The pass allowed to record what it saw (an aborted one may still be mid-poll).
    current: u64,
}

pub struct Verifier {
    client: PanoramaClient,
    settings: PlanSettings,
    metrics: Metrics,
    events: Arc<Vec<EventTarget>>,
    versions: Arc<Mutex<Versions>>,
    running: Option<tokio::task::JoinHandle<()>>,
}

impl Verifier {
    pub fn new(client: PanoramaClient, settings: PlanSettings, metrics: Metrics, events: Vec<EventTarget>) -> Verifier {
        Verifier { client, settings, metrics, events: Arc::new(events), versions: Arc::default(), running: None }
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
    /// reported OK for must hold a newer policy version than the last pass saw.
    pub fn after_converge(&mut self, facts: &Facts, report: &Report) {
        self.supersede();
        let pushed_ok: Vec<String> = report
            .pushes
            .iter()
            .filter(|p| p.target.starts_with("device-group/"))
            .flat_map(|p| p.devices.iter().filter(|d| d.2.eq_ignore_ascii_case("OK")).map(|d| d.0.clone()))
            .collect();
        if report.pushes.iter().any(|p| p.target.starts_with("device-group/")) {
            let mut v = self.versions.lock().expect("versions lock");
            let now = verify::before_push(&v.seen, &pushed_ok);
            // An earlier push still unchecked keeps its (older) baseline.
            let mut merged = v.pending.take().unwrap_or_default();
            for (s, n) in now {
                merged.entry(s).or_insert(n);
            }
            v.pending = Some(merged);
        }
        let generation = {
            let mut v = self.versions.lock().expect("versions lock");
            v.current += 1;
            v.current
        };
        let (client, settings, metrics, events, versions) =
            (self.client.clone(), self.settings.clone(), self.metrics.clone(), self.events.clone(), self.versions.clone());
        let fqdns = verify::fqdns(facts);
        let services = verify::after_converge(&report.plan.services);
        let clusters = report.plan.clusters.clone();
        self.running = Some(tokio::spawn(async move {
            let before = versions.lock().expect("versions lock").pending.clone();
            let scope =
                Scope { settings: &settings, services: &services, clusters: &clusters, fqdns: &fqdns, before_push: before.as_ref() };
            match run(&client, &scope).await {
                Ok(report) => {
                    for r in report.rows.iter().filter(|r| !r.ok) {
                        tracing::warn!(firewall = %r.serial, check = r.check.as_str(), subject = %r.subject, detail = %r.detail, "verify failed");
                    }
                    tracing::info!(
                        rows = report.rows.len(),
                        failed = report.rows.iter().filter(|r| !r.ok).count(),
                        calls = report.calls,
                        "verified"
                    );
                    {
                        let mut v = versions.lock().expect("versions lock");
                        if v.current != generation {
                            return;
                        }
                        (v.seen, v.pending) = (report.versions.clone(), None);
                    }
                    metrics.verified(&report.rows);
                    verify_events(&events, &report.rows).await;
                }
                Err(e) => tracing::warn!(error = %e, "verify after the converge could not run"),
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

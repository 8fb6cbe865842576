//! Leader election on a coordination.k8s.io Lease, so that of several `sync --watch` replicas
//! only one writes to Panorama. The protocol client-go uses: the holder renews every
//! `lease/3`; anyone may take a lease whose `renewTime + leaseDurationSeconds` has passed; every
//! write carries the resourceVersion it read, so of two contenders exactly one wins (409 loses).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;

use super::KubeError;

#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

/// What one round observed or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Round {
    /// We hold the lease (acquired or renewed).
    Leader,
    /// Someone else holds a valid lease.
    Follower { holder: String },
}

impl LeaderElector {
    pub fn new(client: kube::Client, namespace: &str, name: &str, identity: &str, duration: Duration) -> LeaderElector {
        LeaderElector { api: Api::namespaced(client, namespace), name: name.into(), identity: identity.into(), duration }
    }

    /// One acquire-or-renew attempt.
    pub async fn round(&self) -> Result<Round, KubeError> {
        let now = Timestamp::now();
        let secs = i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX).max(1);
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.name.clone()), ..Default::default() },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(secs),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Round::Leader),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(Round::Follower { holder: "(just created by another replica)".into() }),
                Err(e) => Err(e.into()),
            };
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
            (Some(MicroTime(renew)), Some(d)) => renew.checked_add(SignedDuration::from_secs(i64::from(d))).map_or(true, |end| end < now),
            _ => true,
        };
        if !holder.is_empty() && holder != self.identity && !expired {
            return Ok(Round::Follower { holder });
        }
        if holder != self.identity {
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(self.identity.clone());
        spec.lease_duration_seconds = Some(secs);
        spec.renew_time = Some(MicroTime(now));
        // `replace` sends the resourceVersion we read: a concurrent winner makes this a 409.
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(Round::Leader),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Round::Follower { holder: "(lost a race)".into() }),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives the lease up (graceful shutdown) so a standby takes over at once, not after expiry.
    pub async fn release(&self) -> Result<(), KubeError> {
        if let Some(mut lease) = self.api.get_opt(&self.name).await? {
            let spec = lease.spec.get_or_insert_with(Default::default);
            if spec.holder_identity.as_deref() == Some(self.identity.as_str()) {
                spec.holder_identity = None;
                spec.renew_time = None;
                self.api.replace(&self.name, &PostParams::default(), &lease).await?;
            }
        }
        Ok(())
    }

    /// Graceful shutdown, once the last write is done: stops the renewals, then gives the lease
    /// up, so a standby takes over at its next round (≤ `duration/3`) instead of after expiry.
    /// Bounded: an unreachable API server leaves the lease to expire.
    pub async fn stop(&self, renewals: tokio::task::JoinHandle<()>) {
        renewals.abort();
        let _ = renewals.await;
        match tokio::time::timeout(Duration::from_secs(5), self.release()).await {
            Ok(Ok(())) => tracing::info!(identity = %self.identity, "released the lease"),
            Ok(Err(e)) => tracing::warn!(error = %e, "releasing the lease failed; it expires by itself"),
            Err(_) => tracing::warn!("releasing the lease timed out; it expires by itself"),
        }
    }

    /// Runs rounds every `duration/3` in the background; the receiver says whether we lead (and
    /// changes only when that does: `sync --watch` converges on a change).
    /// A leader that cannot renew within the lease duration steps down before anyone else may
    /// take over (renew deadline < lease duration), so two writers never overlap.
    pub fn spawn(self) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = watch::channel(false);
        let handle = tokio::spawn(async move {
            let period = self.duration / 3;
            let mut last_renew = tokio::time::Instant::now();
            loop {
                match self.round().await {
                    Ok(Round::Leader) => {
                        last_renew = tokio::time::Instant::now();
                        if !*tx.borrow() {
                            tracing::info!(identity = %self.identity, "became the leader: this replica writes to Panorama");
                        }
                        tx.send_if_modified(|v| !std::mem::replace(v, true));
                    }
                    Ok(Round::Follower { holder }) => {
                        if *tx.borrow() {
                            tracing::warn!(%holder, "lost the lease: stopping writes");
                        }
                        tx.send_if_modified(|v| std::mem::replace(v, false));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "lease renewal failed");
                        if last_renew.elapsed() > self.duration * 2 / 3 {
                            tx.send_if_modified(|v| std::mem::replace(v, false));
                        }
                    }
                }
                if tx.is_closed() {
                    let _ = self.release().await;
                    return;
                }
                tokio::time::sleep(period).await;
            }
        });
        (rx, handle)
    }
}

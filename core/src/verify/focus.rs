//! What `sync --watch` verifies after a converge from its cache, and how those answers join the
//! last pass's (issue 18: a change costs what it changes, on the firewalls too). A full pass over
//! 16,000 Services is 64,000 op calls; after one relabel only that Service's checks can have
//! changed, so the pass asks again about:
//! * the Services the converge wrote, and those whose checks depend on something that changed
//!   (port, NAT or security rule, FQDN) or appeared;
//! * the clusters whose subnets changed;
//! * every Service and cluster subnet that failed a check last time (a new FQDN resolves on the
//!   firewall some seconds after its push: it must not stay failed until the resync);
//! * on every firewall, the firewall-wide checks (connection, sync, policy version, interfaces)
//!   and the unclaimed port, which are one call each.
//!
//! Rows of the rest are kept from the last pass, but only on a firewall whose firewall-wide
//! checks pass now (an out-of-sync or disconnected firewall keeps nothing it was not asked
//! again). What a firewall that passes them lacks rows for (it joined, or came back; or the pass
//! was stopped by the next converge before it asked) is `missing` from the join and asked by the
//! next pass, so a full pass that changes keep interrupting still completes, piece by piece. A
//! full pass follows every full read (the resync, a retry, a new leader). Services are
//! independent on the firewall (each has its own port and its own rules), which is what makes
//! the kept rows valid; the full pass of each resync re-checks that.

use std::collections::{BTreeMap, BTreeSet};

use super::{Check, Row, ServiceKey, firewall_wide};
use crate::panorama::{ClusterStatus, ServiceState, ServiceStatus};

/// What one Service's probes depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Inputs {
    port: Option<u16>,
    nat_rule: Option<String>,
    security_rule: Option<String>,
    fqdn: Option<String>,
}

/// The watch's verification between passes: the rows of every check, and what they asked about.
#[derive(Clone, Debug, Default)]
pub struct Verified {
    services: BTreeMap<ServiceKey, Inputs>,
    clusters: BTreeMap<String, ClusterStatus>,
    pub rows: Vec<Row>,
}

/// The Services and clusters one pass asks about (the firewall-wide checks are always asked).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Focus {
    pub services: BTreeSet<ServiceKey>,
    pub clusters: BTreeSet<String>,
}

impl Focus {
    /// Adds another pass's focus (one that was superseded before it finished).
    pub fn extend(&mut self, other: &Focus) {
        self.services.extend(other.services.iter().cloned());
        self.clusters.extend(other.clusters.iter().cloned());
    }

    pub fn has_service(&self, k: &ServiceKey) -> bool {
        self.services.contains(k)
    }

    pub fn has_cluster(&self, name: &str) -> bool {
        self.clusters.contains(name)
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.clusters.is_empty()
    }

    /// Everything a full pass asks about: every Service with objects in Panorama, every cluster.
    pub fn all(services: &[ServiceStatus], clusters: &[ClusterStatus]) -> Focus {
        Focus {
            services: services.iter().filter(|s| checked(s)).map(ServiceKey::of).collect(),
            clusters: clusters.iter().map(|c| c.name.clone()).collect(),
        }
    }

    /// What of this focus a pass that did not finish answered: the Services and clusters it has
    /// rows for (on some firewall; one without rows on another is `missing` from the join).
    pub fn answered(&self, rows: &[Row]) -> Focus {
        let mut out = Focus::default();
        for r in rows {
            if let Some(k) = r.service.as_ref().filter(|k| self.has_service(k)) {
                out.services.insert(k.clone());
            }
            if let Some(c) = subnet_cluster(r).filter(|c| self.has_cluster(c)) {
                out.clusters.insert(c.to_owned());
            }
        }
        out
    }

    /// This focus without `other`'s Services and clusters.
    pub fn without(&self, other: &Focus) -> Focus {
        Focus {
            services: self.services.difference(&other.services).cloned().collect(),
            clusters: self.clusters.difference(&other.clusters).cloned().collect(),
        }
    }
}

/// A Service whose objects Panorama holds after the converge: it gets probes.
fn checked(s: &ServiceStatus) -> bool {
    matches!(s.state, ServiceState::Protected | ServiceState::Planned)
}

fn inputs(s: &ServiceStatus, fqdns: &BTreeMap<ServiceKey, String>) -> Inputs {
    Inputs {
        port: s.port,
        nat_rule: s.nat_rule.clone(),
        security_rule: s.security_rule.clone(),
        fqdn: fqdns.get(&ServiceKey::of(s)).cloned(),
    }
}

/// The cluster of a subnet row (`cluster/cidr`).
fn subnet_cluster(r: &Row) -> Option<&str> {
    matches!(r.check, Check::Route | Check::OutboundNat).then(|| r.subject.split_once('/').map_or(r.subject.as_str(), |(c, _)| c))
}

/// What the pass after a converge from the cache asks about. `services` are the plan's
/// statuses as the converge left them (`Planned` = written by it).
pub fn focus(last: &Verified, services: &[ServiceStatus], clusters: &[ClusterStatus], fqdns: &BTreeMap<ServiceKey, String>) -> Focus {
    let failed_services: BTreeSet<&ServiceKey> = last.rows.iter().filter(|r| !r.ok).filter_map(|r| r.service.as_ref()).collect();
    let failed_clusters: BTreeSet<&str> = last.rows.iter().filter(|r| !r.ok).filter_map(subnet_cluster).collect();
    let services = services
        .iter()
        .filter(|s| checked(s))
        .filter(|s| {
            let k = ServiceKey::of(s);
            s.state == ServiceState::Planned || last.services.get(&k) != Some(&inputs(s, fqdns)) || failed_services.contains(&k)
        })
        .map(ServiceKey::of)
        .collect();
    let clusters = clusters
        .iter()
        .filter(|c| last.clusters.get(&c.name) != Some(c) || failed_clusters.contains(c.name.as_str()))
        .map(|c| c.name.clone())
        .collect();
    Focus { services, clusters }
}

/// The firewalls whose firewall-wide checks all passed in `pass` (their probes were asked).
fn sound(pass: &[Row]) -> BTreeSet<&str> {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut failed: BTreeSet<&str> = BTreeSet::new();
    for r in pass.iter().filter(|r| firewall_wide(r.check)) {
        if r.check == Check::Interfaces && r.ok {
            seen.insert(&r.serial);
        }
        if !r.ok {
            failed.insert(&r.serial);
        }
    }
    seen.retain(|s| !failed.contains(s));
    seen
}

/// Joins a pass's rows with the last pass's (the last pass's rows that are kept move over).
/// `focus` is what the pass asked about ([`Focus::all`] for a full pass): its rows replace the
/// last ones of those Services and clusters; the last rows of the others are kept on every
/// firewall whose firewall-wide checks pass in this pass. Returns the join and what is missing
/// from it: the Services and clusters that lack rows on such a firewall (it joined the device
/// group or came back, or the pass stopped before asking them), for the next pass to ask. The
/// failed rows of the join are the pass's own: a row kept from the last pass passed (what failed
/// is in every focus).
pub fn merge(
    last: Verified,
    focus: &Focus,
    pass: Vec<Row>,
    services: &[ServiceStatus],
    clusters: &[ClusterStatus],
    fqdns: &BTreeMap<ServiceKey, String>,
) -> (Verified, Focus) {
    let now: BTreeMap<ServiceKey, Inputs> = services.iter().filter(|s| checked(s)).map(|s| (ServiceKey::of(s), inputs(s, fqdns))).collect();
    let subnets: BTreeSet<String> =
        clusters.iter().flat_map(|c| c.subnets.iter().map(move |sn| format!("{}/{}", c.name, sn.cidr))).collect();
    let mut rows = pass;
    let sound: BTreeSet<String> = sound(&rows).into_iter().map(str::to_owned).collect();
    let Verified { services: asked, rows: last_rows, .. } = last;
    let kept = last_rows.into_iter().filter(|r| sound.contains(&r.serial)).filter(|r| match (&r.service, subnet_cluster(r)) {
        (Some(k), _) => !focus.has_service(k) && now.get(k).is_some_and(|i| asked.get(k) == Some(i)),
        (None, Some(c)) => !focus.has_cluster(c) && subnets.contains(&r.subject),
        // Firewall-wide rows, the unclaimed port: asked again by every pass.
        (None, None) => false,
    });
    rows.extend(kept);
    rows.sort_by(|a, b| (&a.serial, a.check, &a.subject).cmp(&(&b.serial, b.check, &b.subject)));
    let missing = {
        let mut has: BTreeSet<(&str, &ServiceKey)> = BTreeSet::new();
        let mut routed: BTreeSet<(&str, &str)> = BTreeSet::new();
        for r in &rows {
            if let Some(k) = &r.service {
                has.insert((&r.serial, k));
            }
            if r.check == Check::Route {
                routed.insert((&r.serial, &r.subject));
            }
        }
        let lacks = |k: &ServiceKey| sound.iter().any(|fw| !has.contains(&(fw.as_str(), k)));
        let services =
            services.iter().filter(|s| checked(s) && s.nat_rule.is_some() && s.port.is_some()).map(ServiceKey::of).filter(lacks).collect();
        // Route probes exist for the subnets whose CIDR parses (`verify::probes`).
        let clusters = clusters
            .iter()
            .filter(|c| {
                c.subnets.iter().filter(|sn| sn.cidr.parse::<ipnet::Ipv4Net>().is_ok()).any(|sn| {
                    let subject = format!("{}/{}", c.name, sn.cidr);
                    sound.iter().any(|fw| !routed.contains(&(fw.as_str(), subject.as_str())))
                })
            })
            .map(|c| c.name.clone())
            .collect();
        Focus { services, clusters }
    };
    let clusters = clusters.iter().map(|c| (c.name.clone(), c.clone())).collect();
    (Verified { services: now, clusters, rows }, missing)
}

#[cfg(test)]
#[path = "focus_tests.rs"]
mod tests;

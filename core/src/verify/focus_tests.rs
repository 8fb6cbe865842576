use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use super::*;
use crate::PlanSettings;
use crate::panorama::SubnetStatus;
use crate::verify::{Answer, Device, Expect, Interface, MatchedRule, Probe, judge, probes, sides, sync_row};

fn settings() -> PlanSettings {
    PlanSettings::new("prod", "dg", "ts")
}

fn svc(name: &str, port: u16, state: ServiceState) -> ServiceStatus {
    ServiceStatus {
        cluster: "shop".into(),
        namespace: "default".into(),
        name: name.into(),
        port: Some(port),
        state,
        reason: String::new(),
        nat_rule: Some(format!("prod.in.shop.default.{name}")),
        address: Some(format!("prod.shop.default.{name}")),
        service_object: Some(format!("prod.tcp-{port}")),
        security_rule: None,
    }
}

fn k(name: &str) -> ServiceKey {
    ServiceKey { cluster: "shop".into(), namespace: "default".into(), name: name.into() }
}

fn cluster(cidrs: &[&str]) -> ClusterStatus {
    ClusterStatus {
        name: "shop".into(),
        tag: "pano-eks.prod.shop".into(),
        subnets: cidrs
            .iter()
            .map(|c| SubnetStatus {
                id: format!("subnet-{c}"),
                cidr: (*c).into(),
                outbound_rule: Some(format!("prod.out.shop.{c}")),
                routes: vec![format!("route-{c}")],
            })
            .collect(),
    }
}

fn fqdns(services: &[ServiceStatus]) -> BTreeMap<ServiceKey, String> {
    services.iter().map(|s| (k(&s.name), format!("internal-{}.elb.amazonaws.com", s.name))).collect()
}

/// The firewalls of these tests: each answers as `world` says.
struct World {
    firewalls: Vec<&'static str>,
    /// FQDNs a firewall has not resolved yet.
    unresolved: BTreeSet<ServiceKey>,
    /// Firewalls out of sync with Panorama.
    out_of_sync: BTreeSet<&'static str>,
}

impl World {
    fn answer(&self, p: &Probe) -> Answer {
        match &p.expect {
            Expect::Rule { name } => Answer::Rules { rules: vec![MatchedRule { name: name.clone(), action: Some("allow".into()) }] },
            Expect::Allow => Answer::Rules { rules: vec![MatchedRule { name: "allow-any".into(), action: Some("allow".into()) }] },
            Expect::Deny => Answer::Rules { rules: vec![] },
            Expect::Resolved if p.service.as_ref().is_some_and(|s| self.unresolved.contains(s)) => Answer::Resolved { addresses: vec![] },
            Expect::Resolved => Answer::Resolved { addresses: vec![Ipv4Addr::new(10, 9, 0, 1)] },
            Expect::NextHop { interface, nexthop } => Answer::Fib { interface: Some(interface.clone()), nexthop: Some(*nexthop) },
        }
    }

    /// What one pass of `src/panorama/verify.rs::run` yields against this world.
    fn pass(&self, services: &[ServiceStatus], clusters: &[ClusterStatus], focus: Option<&Focus>) -> Vec<Row> {
        let fq = fqdns(services);
        let after = crate::verify::after_converge(services);
        let ifaces = [
            Interface { name: "ethernet1/1".into(), zone: "untrust".into(), address: "10.0.1.10/24".parse().unwrap() },
            Interface { name: "ethernet1/2".into(), zone: "trust".into(), address: "10.0.2.10/24".parse().unwrap() },
        ];
        let mut rows = Vec::new();
        for fw in &self.firewalls {
            let status = if self.out_of_sync.contains(fw) { "Out of Sync" } else { "In Sync" };
            rows.push(sync_row(&Device {
                serial: (*fw).into(),
                hostname: (*fw).into(),
                connected: true,
                shared_policy_status: Some(status.into()),
                template_status: None,
                policy_version: Some(7),
            }));
            let (row, sides) = sides(fw, &ifaces, &settings());
            rows.push(row);
            let f = |key: &ServiceKey| fq.get(key).cloned();
            for p in probes(fw, &sides.unwrap(), &after, clusters, &f, &settings(), focus) {
                rows.push(judge(&p, &self.answer(&p)));
            }
        }
        rows.sort_by(|a, b| (&a.serial, a.check, &a.subject).cmp(&(&b.serial, b.check, &b.subject)));
        rows
    }

    fn full(&self, services: &[ServiceStatus], clusters: &[ClusterStatus]) -> Verified {
        let all = Focus::all(services, clusters);
        let (v, missing) = merge(Verified::default(), &all, self.pass(services, clusters, None), services, clusters, &fqdns(services));
        assert!(missing.is_empty(), "{missing:?}");
        v
    }

    /// The pass `sync --watch` makes after a converge from the cache, joined with the last.
    fn scoped(&self, last: &Verified, services: &[ServiceStatus], clusters: &[ClusterStatus]) -> (Focus, Verified, Focus) {
        let fq = fqdns(services);
        let focus = focus(last, services, clusters, &fq);
        let (v, missing) = merge(last.clone(), &focus, self.pass(services, clusters, Some(&focus)), services, clusters, &fq);
        (focus, v, missing)
    }
}

fn world() -> World {
    World { firewalls: vec!["S1", "S2"], unresolved: BTreeSet::new(), out_of_sync: BTreeSet::new() }
}

fn protected(names: &[(&str, u16)]) -> Vec<ServiceStatus> {
    names.iter().map(|(n, p)| svc(n, *p, ServiceState::Protected)).collect()
}

/// `n` protected Services `s00`, `s01`, … on ports from `port`.
fn numbered(n: u16, port: u16) -> Vec<ServiceStatus> {
    (0..n).map(|i| svc(&format!("s{i:02}"), port + i, ServiceState::Protected)).collect()
}

#[test]
fn focus_is_what_the_converge_wrote_changed_added_or_what_failed_last_time() {
    let w = world();
    let clusters = [cluster(&["192.168.110.0/24"])];
    let mut last = w.full(&protected(&[("web", 80), ("api", 81), ("cart", 82), ("gone", 83)]), &clusters);
    // cart failed last time (its FQDN was not resolved yet).
    for r in last.rows.iter_mut().filter(|r| r.service == Some(k("cart")) && r.check == Check::Fqdn) {
        r.ok = false;
    }
    let services = [
        svc("web", 80, ServiceState::Protected),   // as it was: not asked again
        svc("api", 8081, ServiceState::Planned),   // relabelled: written by this converge
        svc("cart", 82, ServiceState::Protected),  // failed last time
        svc("new", 84, ServiceState::Protected),   // not asked yet
        svc("pending", 85, ServiceState::Pending), // nothing in Panorama: never asked
    ];
    let f = focus(&last, &services, &clusters, &fqdns(&services));
    assert_eq!(f.services, BTreeSet::from([k("api"), k("cart"), k("new")]));
    assert!(f.clusters.is_empty(), "the cluster's subnets did not change");

    // A written Service with the same inputs (a drift repair) is asked again too, and a changed
    // FQDN (a new load balancer) is a change.
    let mut fq = fqdns(&services);
    fq.insert(k("web"), "internal-web-2.elb.amazonaws.com".into());
    let f = focus(&last, &services, &clusters, &fq);
    assert!(f.has_service(&k("web")));

    // A cluster whose subnets changed, or whose route failed, is asked again.
    let grown = [cluster(&["192.168.110.0/24", "192.168.111.0/24"])];
    assert_eq!(focus(&last, &services, &grown, &fqdns(&services)).clusters, BTreeSet::from(["shop".to_owned()]));
    for r in last.rows.iter_mut().filter(|r| r.check == Check::Route) {
        r.ok = false;
    }
    assert!(focus(&last, &services, &clusters, &fqdns(&services)).has_cluster("shop"));
}

#[test]
fn a_scoped_pass_asks_only_the_focus_and_the_firewall_wide_checks() {
    let w = world();
    let clusters = [cluster(&["192.168.110.0/24"])];
    let before = numbered(50, 1000);
    let last = w.full(&before, &clusters);
    let mut now = before.clone();
    now[7] = svc("s07", 2007, ServiceState::Planned);
    let f = focus(&last, &now, &clusters, &fqdns(&now));
    let pass = w.pass(&now, &clusters, Some(&f));
    // Per firewall: in-sync, interfaces, and s07's three checks (no `[sync.security]` here, so
    // no unclaimed-port probe; this world makes no config-version rows).
    let asked: BTreeSet<(&str, Check, &str)> = pass.iter().map(|r| (r.serial.as_str(), r.check, r.subject.as_str())).collect();
    for fw in ["S1", "S2"] {
        assert!(asked.contains(&(fw, Check::InboundNat, "shop/default/s07")));
        assert!(asked.contains(&(fw, Check::Fqdn, "shop/default/s07")));
    }
    assert!(!pass.iter().any(|r| r.service.as_ref().is_some_and(|s| s.name != "s07")), "only s07's Service checks are asked");
    assert!(!pass.iter().any(|r| r.check == Check::Route), "the subnets did not change");
    assert_eq!(pass.len(), 2 * (2 + 3), "{pass:#?}");
}

/// The joined rows after each step equal what a full pass would say at that moment: random
/// sequences of creates, relabels, deletes, subnet changes and FQDNs that resolve a pass late.
#[test]
fn joined_rows_equal_a_full_pass_after_every_step() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for _run in 0..20 {
        let mut w = world();
        let mut live: BTreeMap<String, u16> = (0..8).map(|i| (format!("s{i}"), 2000 + i as u16)).collect();
        let mut cidrs = vec!["192.168.110.0/24".to_owned()];
        let statuses = |live: &BTreeMap<String, u16>, written: &BTreeSet<String>| -> Vec<ServiceStatus> {
            live.iter()
                .map(|(n, p)| svc(n, *p, if written.contains(n) { ServiceState::Planned } else { ServiceState::Protected }))
                .collect()
        };
        let clusters_of = |cidrs: &[String]| vec![cluster(&cidrs.iter().map(String::as_str).collect::<Vec<_>>())];
        let mut v = w.full(&statuses(&live, &BTreeSet::new()), &clusters_of(&cidrs));
        for step in 0..30 {
            let mut written = BTreeSet::new();
            let resolved_now: Vec<ServiceKey> = w.unresolved.iter().cloned().collect();
            match next(5) {
                0 => {
                    let n = format!("n{step}");
                    live.insert(n.clone(), 3000 + step as u16);
                    // Its FQDN resolves on the firewall only after this pass.
                    w.unresolved.insert(k(&n));
                    written.insert(n);
                }
                1 if !live.is_empty() => {
                    let n = live.keys().nth(next(live.len() as u64) as usize).unwrap().clone();
                    live.insert(n.clone(), 4000 + step as u16);
                    written.insert(n);
                }
                2 if !live.is_empty() => {
                    let n = live.keys().nth(next(live.len() as u64) as usize).unwrap().clone();
                    live.remove(&n);
                }
                3 => cidrs.push(format!("192.168.{}.0/24", 120 + step)),
                _ => {}
            }
            let services = statuses(&live, &written);
            let clusters = clusters_of(&cidrs);
            let (_, joined, missing) = w.scoped(&v, &services, &clusters);
            assert!(missing.is_empty(), "step {step}: {missing:?}");
            assert_eq!(joined.rows, w.pass(&services, &clusters, None), "step {step}: joined rows differ from a full pass");
            v = joined;
            // What was unresolved before this pass resolves now (the next pass must ask again).
            for s in resolved_now {
                w.unresolved.remove(&s);
            }
        }
    }
}

#[test]
fn a_firewall_out_of_sync_keeps_only_what_it_was_asked_and_one_back_in_sync_needs_a_full_pass() {
    let mut w = world();
    let clusters = [cluster(&["192.168.110.0/24"])];
    let services = protected(&[("web", 80), ("api", 81)]);
    let last = w.full(&services, &clusters);
    w.out_of_sync.insert("S2");
    let (_, v, missing) = w.scoped(&last, &services, &clusters);
    assert!(missing.is_empty(), "S2 is not sound: nothing is expected of it");
    assert!(
        !v.rows.iter().any(|r| r.serial == "S2" && r.service.is_some()),
        "S2's Service rows of the last pass are not kept while it is out of sync"
    );
    assert!(v.rows.iter().any(|r| r.serial == "S1" && r.service == Some(k("web"))), "S1 keeps them");
    w.out_of_sync.clear();
    let (_, v, missing) = w.scoped(&v, &services, &clusters);
    assert_eq!(missing, Focus::all(&services, &clusters), "S2 is back and lacks every row: the next pass asks everything");
    let (v, missing) = merge(v, &missing.clone(), w.pass(&services, &clusters, Some(&missing)), &services, &clusters, &fqdns(&services));
    assert!(missing.is_empty());
    assert_eq!(v.rows, w.pass(&services, &clusters, None), "that pass made the join whole again");
}

#[test]
fn a_firewall_that_joined_is_asked_everything_by_the_next_pass() {
    let mut w = world();
    let clusters = [cluster(&["192.168.110.0/24"])];
    let services = protected(&[("web", 80)]);
    let last = w.full(&services, &clusters);
    w.firewalls.push("S3");
    let (_, v, missing) = w.scoped(&last, &services, &clusters);
    assert_eq!(missing, Focus::all(&services, &clusters));
    assert!(v.rows.iter().any(|r| r.serial == "S3" && r.check == Check::InSync));
}

#[test]
fn a_deleted_service_and_a_removed_subnet_leave_no_rows() {
    let w = world();
    let before = [cluster(&["192.168.110.0/24", "192.168.111.0/24"])];
    let last = w.full(&protected(&[("web", 80), ("gone", 81)]), &before);
    let services = protected(&[("web", 80)]);
    let after = [cluster(&["192.168.110.0/24"])];
    let (f, v, missing) = w.scoped(&last, &services, &after);
    assert!(missing.is_empty());
    assert!(f.services.is_empty());
    assert!(!v.rows.iter().any(|r| r.service == Some(k("gone"))));
    assert!(!v.rows.iter().any(|r| r.subject.contains("192.168.111.0")));
    assert_eq!(v.rows, w.pass(&services, &after, None));
}

/// A full pass stopped part-way (the next converge aborts it) keeps what it answered; the rest is
/// owed, and the pass that follows asks it: the join then equals a full pass.
#[test]
fn an_interrupted_full_pass_is_finished_by_the_next_pass() {
    let w = world();
    let clusters = [cluster(&["192.168.110.0/24"])];
    let services = numbered(20, 3000);
    let fq = fqdns(&services);
    let all = Focus::all(&services, &clusters);
    // What had come back when it was stopped: the firewall-wide rows, s00..s05 on both
    // firewalls, s06 on S1 only.
    let partial: Vec<Row> = w
        .pass(&services, &clusters, None)
        .into_iter()
        .filter(|r| match &r.service {
            None => subnet_cluster(r).is_none(),
            Some(k) => k.name.as_str() < "s06" || (k.name == "s06" && r.serial == "S1"),
        })
        .collect();
    let answered = all.answered(&partial);
    assert_eq!(answered.services.len(), 7);
    let (joined, missing) = merge(Verified::default(), &answered, partial, &services, &clusters, &fq);
    let mut owed = all.without(&answered);
    owed.extend(&missing);
    assert!(owed.has_service(&k("s06")) && owed.has_service(&k("s19")) && owed.has_cluster("shop"));
    assert!(!owed.has_service(&k("s00")));
    // The next pass (nothing changed since) asks what is owed.
    let mut f = focus(&joined, &services, &clusters, &fq);
    assert!(f.is_empty(), "nothing changed or failed: {f:?}");
    f.extend(&owed);
    let (joined, missing) = merge(joined, &f, w.pass(&services, &clusters, Some(&f)), &services, &clusters, &fq);
    assert!(missing.is_empty(), "{missing:?}");
    assert_eq!(joined.rows, w.pass(&services, &clusters, None));
}

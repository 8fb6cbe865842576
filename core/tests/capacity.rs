//! Capacity admission inside the planner: the Services that fit get objects (already-present
//! ones first, then the oldest), the rest are `over-capacity` with the limit named, and a plan
//! never writes past a limit.

mod common;
use common::*;
use pano_eks_core::capacity::{Capacity, Limits};
use pano_eks_core::panorama::model::SecurityRule;
use pano_eks_core::settings::SecuritySettings;
use pano_eks_core::*;

fn limited(fqdn: usize) -> PlanSettings {
    let mut s = settings();
    s.capacity = Some(Capacity {
        limits: Limits { fqdn_addresses: fqdn, addresses: 100, service_objects: 100, nat_rules: 100, security_rules: 100 },
        source: "memory tier 1".into(),
    });
    s
}

fn foreign_fqdn(name: &str) -> Address {
    Address {
        name: name.into(),
        value: AddressValue::Fqdn(format!("{name}.example.com")),
        description: None,
        tags: vec![],
        unmodelled: vec![],
    }
}

fn three() -> Facts {
    facts(
        vec![cluster(
            "shop",
            &["192.168.110.0/24"],
            vec![
                created(svc("default", "new", "83"), "2026-11-03T00:00:00Z"),
                created(svc("default", "old", "81"), "2026-11-01T00:00:00Z"),
                created(svc("default", "mid", "82"), "2026-11-02T00:00:00Z"),
            ],
        )],
        vec![fw("i-1", "10.0.2.0/24")],
    )
}

#[test]
fn a_plan_admits_exactly_the_room_left_and_writes_nothing_for_the_rest() {
    // Limit 3 FQDN objects; one foreign FQDN address already in the device group: room for 2.
    let observed = Observed { addresses: vec![foreign_fqdn("someone-else")], ..Default::default() };
    let p = plan(&limited(3), &three(), &observed).unwrap();
    assert_eq!(status(&p, "default", "old").state, ServiceState::Planned);
    assert_eq!(status(&p, "default", "mid").state, ServiceState::Planned);
    let new = status(&p, "default", "new");
    assert_eq!(new.state, ServiceState::OverCapacity);
    assert_eq!(new.reason, "over capacity: FQDN address objects: 3 on memory tier 1, 3 in use; admitted when room appears");
    assert_eq!(new.nat_rule, None);
    assert!(p.problems.iter().any(|q| q.kind == ProblemKind::OverCapacity && q.subject == "shop/default/new"), "{:?}", p.problems);
    let fqdn_writes = op_names(&p, Kind::Address);
    assert_eq!(fqdn_writes.len(), 2, "{fqdn_writes:?}");
    assert!(fqdn_writes.iter().all(|n| !n.contains("new")), "{fqdn_writes:?}");
    // Nothing to admit when the limits are unknown.
    let p = plan(&settings(), &three(), &observed).unwrap();
    assert!(p.services.iter().all(|s| s.state == ServiceState::Planned));
}

#[test]
fn admitted_services_stay_when_an_older_one_arrives_and_room_readmits() {
    let s = limited(2);
    // mid and new are protected first (old is not labelled yet).
    let mut f = three();
    f.clusters[0].services.retain(|x| x.name != "old");
    let mut o = Observed::default();
    o.apply(&plan(&s, &f, &o).unwrap().operations);
    // old (the oldest) is labelled now: it waits, nothing admitted is evicted.
    let p = plan(&s, &three(), &o).unwrap();
    assert_eq!(status(&p, "default", "old").state, ServiceState::OverCapacity);
    assert_eq!(status(&p, "default", "mid").state, ServiceState::Protected);
    assert_eq!(status(&p, "default", "new").state, ServiceState::Protected);
    assert!(p.is_noop(), "{:?}", p.operations);
    // new goes away: old is admitted in the same plan that deletes new's objects.
    let mut f = three();
    f.clusters[0].services.retain(|x| x.name != "new");
    let p = plan(&s, &f, &o).unwrap();
    assert_eq!(status(&p, "default", "old").state, ServiceState::Planned);
    let (c, _, d) = p.counts();
    assert!(c >= 3 && d >= 3, "old's objects created, new's deleted: {:?}", p.operations);
}

/// With `[sync.security]` every admitted Service also spends its allow rule and each subnet's
/// outbound security rule is in use; foreign rules of the device group's pre-rulebase count, our
/// own never as someone else's (they were counted twice: by the adapter's `elsewhere` read of
/// the pre-rulebase, and as the claims and fixed entries they are).
#[test]
fn security_rules_count_once_each_with_sync_security() {
    let mut s = limited(100);
    s.capacity.as_mut().unwrap().limits.security_rules = 4;
    s.security = Some(SecuritySettings::default());
    let any = || vec!["any".to_string()];
    let foreign = SecurityRule {
        name: "corp-allow".into(),
        from: any(),
        to: any(),
        source: any(),
        destination: any(),
        application: any(),
        service: any(),
        action: "allow".into(),
        profile_group: None,
        log_start: false,
        log_end: true,
        description: None,
        tags: vec!["corp".into()],
        disabled: false,
        unmodelled: vec![],
        uuid: None,
    };
    let start = Observed { security_rules: vec![foreign], ..Default::default() };
    // 4 rules: the foreign one, the subnet's outbound rule, old's and mid's allow rules.
    let p = plan(&s, &three(), &start).unwrap();
    assert_eq!(status(&p, "default", "old").state, ServiceState::Planned);
    assert_eq!(status(&p, "default", "mid").state, ServiceState::Planned);
    let new = status(&p, "default", "new");
    assert_eq!(new.state, ServiceState::OverCapacity);
    assert_eq!(new.reason, "over capacity: security rules: 4 on memory tier 1, 4 in use; admitted when room appears");
    let rules: std::collections::BTreeSet<String> = op_names(&p, Kind::SecurityRule).into_iter().map(|n| n.to_string()).collect();
    assert_eq!(rules.len(), 3, "outbound + two allow rules (created, then moved into place): {rules:?}");
    // Applied: our three rules are in the device group now and change nothing: the same two
    // stay, new still waits, nothing is written.
    let mut after = start.clone();
    after.apply(&p.operations);
    assert_eq!(after.security_rules.len(), 4);
    let again = plan(&s, &three(), &after).unwrap();
    assert_eq!(status(&again, "default", "old").state, ServiceState::Protected);
    assert_eq!(status(&again, "default", "mid").state, ServiceState::Protected);
    assert_eq!(status(&again, "default", "new").state, ServiceState::OverCapacity);
    assert!(again.is_noop(), "{:?}", again.operations);
    // Without [sync.security] no Service spends a rule: all three fit the same limit.
    let mut off = s.clone();
    off.security = None;
    let p = plan(&off, &three(), &start).unwrap();
    assert!(p.services.iter().all(|x| x.state == ServiceState::Planned), "{:?}", p.services);
}

//! Table tests of the sharded NLB front: room (the stack's listener counts), stable assignment,
//! the stack's port on front 1 without a slot, one port one Service over every front, the shared
//! security group's rules revoked once, the autoscaling group's budget, fronts made and removed.

use super::*;
use crate::front::nlb::NlbState;

fn ctx() -> NlbContext {
    NlbContext { default_listener_arn: "lst-1-80".into(), default_port: Some(80), public_tg_arn: "tg-public".into() }
}

fn svc(i: u32) -> String {
    format!("shop/default/svc{i:03}")
}

/// Services `range`, port 1000 + i, named so key order is number order.
fn wanted(range: std::ops::Range<u32>) -> Vec<NlbWanted> {
    range.map(|i| NlbWanted { service: svc(i), port: 1000 + i as u16, target_group: format!("pk-svc{i:03}") }).collect()
}

/// A fresh stack: front 1 with its listener TCP 80 → the stack's group, attached to the ASG.
fn base() -> NlbFrontsObserved {
    NlbFrontsObserved {
        fronts: vec![NlbFront {
            number: 1,
            name: "demo-exlb".into(),
            arn: "lb-1".into(),
            dns_name: "demo-exlb.elb".into(),
            listeners: vec![NlbListener { arn: "lst-1-80".into(), port: 80, forward: vec!["tg-public".into()], owner: None }],
        }],
        target_groups: vec![NlbTargetGroup { arn: "tg-public".into(), name: "demo-fw-public".into(), port: 81, owner: None, front: 1 }],
        asg_target_groups: BTreeSet::from(["tg-public".to_string()]),
        asg_instances: BTreeSet::from(["i-1".to_string()]),
        registered: BTreeMap::new(),
        ingress: BTreeMap::new(),
    }
}

/// What AWS shows after the plan, in the adapter's order (create, fronts, targets, remove).
fn applied(seen: &NlbFrontsObserved, p: &NlbShardedPlan) -> NlbFrontsObserved {
    let mut s = seen.clone();
    let arn = |n: &str| format!("arn-{n}");
    for a in &p.create {
        if let FrontAction::CreateFront { number, name } = a {
            s.fronts.push(NlbFront {
                number: *number,
                name: name.clone(),
                arn: format!("lb-{number}"),
                dns_name: format!("{name}.elb"),
                listeners: vec![],
            });
        }
    }
    for (n, fp) in &p.fronts {
        for a in &fp.actions {
            let front = s.fronts.iter_mut().find(|f| f.number == *n).unwrap();
            match a {
                NlbAction::CreateTargetGroup { service, name, port } => s.target_groups.push(NlbTargetGroup {
                    arn: arn(name),
                    name: name.clone(),
                    port: *port,
                    owner: Some(service.clone()),
                    front: *n,
                }),
                NlbAction::Attach { name } => {
                    s.asg_target_groups.insert(arn(name));
                }
                NlbAction::AuthorizeIngress { port, .. } => {
                    assert!(s.ingress.insert(*port, format!("sgr-{port}")).is_none(), "port {port} authorized twice");
                }
                NlbAction::RevokeIngress { port, .. } => {
                    assert!(s.ingress.remove(port).is_some(), "port {port} revoked twice");
                }
                NlbAction::CreateListener { service, port, target } => front.listeners.push(NlbListener {
                    arn: format!("lst-{n}-{port}"),
                    port: *port,
                    forward: vec![arn(target)],
                    owner: Some(service.clone()),
                }),
                NlbAction::ModifyListener { arn: a, target, .. } => {
                    front.listeners.iter_mut().find(|l| &l.arn == a).unwrap().forward = vec![arn(target)];
                }
                NlbAction::SetDefault { target } => {
                    assert_eq!(*n, 1, "only the stack's NLB has a default listener");
                    front.listeners.iter_mut().find(|l| l.port == 80).unwrap().forward =
                        vec![target.as_deref().map(arn).unwrap_or_else(|| "tg-public".into())]
                }
                NlbAction::DeleteListener { arn: a, .. } => front.listeners.retain(|l| &l.arn != a),
                NlbAction::Detach { name } => {
                    s.asg_target_groups.remove(&arn(name));
                }
                NlbAction::DeleteTargetGroup { name, .. } => {
                    assert!(s.target_groups.iter().any(|t| &t.name == name), "{name} deleted twice");
                    s.target_groups.retain(|t| &t.name != name)
                }
            }
        }
    }
    for t in &p.targets {
        let a = arn(&t.name);
        let set = s.registered.entry(a).or_default();
        set.extend(t.register.iter().cloned());
        for d in &t.deregister {
            set.remove(d);
        }
    }
    for a in &p.remove {
        if let FrontAction::DeleteFront { number, .. } = a {
            s.fronts.retain(|f| f.number != *number);
        }
    }
    // Unattached groups of ours are read for their targets; the others are not.
    let ours_unattached: BTreeSet<String> =
        s.target_groups.iter().filter(|t| t.owner.is_some() && !s.asg_target_groups.contains(&t.arn)).map(|t| t.arn.clone()).collect();
    s.registered.retain(|a, _| ours_unattached.contains(a));
    s
}

fn front_counts(p: &NlbShardedPlan) -> BTreeMap<u32, usize> {
    let mut out = BTreeMap::new();
    for s in &p.services {
        *out.entry(s.front).or_default() += 1;
    }
    out
}

fn listeners(s: &NlbFrontsObserved, n: u32) -> usize {
    s.fronts.iter().find(|f| f.number == n).map(|f| f.listeners.len()).unwrap_or(0)
}

#[test]
fn sixty_services_make_a_second_front_and_the_stack_listener_counts() {
    let p = plan("demo", &ctx(), &wanted(0..60), &base());
    assert_eq!(p.create, [FrontAction::CreateFront { number: 2, name: "demo-front-2".into() }]);
    assert_eq!(front_counts(&p), BTreeMap::from([(1, 49), (2, 11)]), "49 + the stack's listener = 50 on front 1");
    assert!(p.conflicts().next().is_none());
    assert!(p.outcomes().iter().all(|s| s.state == NlbState::Listening));
    // The firewall group: the stack's group + 49 attached; the other 11 registered directly.
    let attaches: usize = p.fronts.iter().map(|(_, f)| f.actions.iter().filter(|a| matches!(a, NlbAction::Attach { .. })).count()).sum();
    assert_eq!(attaches, 49);
    assert_eq!(p.targets.len(), 11);
    assert!(p.targets.iter().all(|t| t.front == 2 && t.register == ["i-1"] && t.deregister.is_empty()), "{:?}", p.targets);
    assert_eq!(p.services.iter().find(|s| s.service == svc(59)).unwrap().front_name, "demo-front-2");

    let after = applied(&base(), &p);
    assert_eq!((listeners(&after, 1), listeners(&after, 2)), (50, 11));
    assert_eq!(after.ingress.len(), 60, "one rule per Service port on the shared group");
    let again = plan("demo", &ctx(), &wanted(0..60), &after);
    assert!(again.create.is_empty() && again.remove.is_empty() && again.targets.is_empty(), "{again:?}");
    assert!(again.fronts.iter().all(|(_, f)| f.actions.is_empty()), "converged: {:?}", again.fronts);
    assert_eq!(served(&ctx(), &after).len(), 60);
}

#[test]
fn a_new_service_never_evicts_and_an_emptied_front_is_removed() {
    let first = applied(&base(), &plan("demo", &ctx(), &wanted(1..61), &base()));
    // svc000 sorts first but front 1 is full: it goes to front 2, nobody moves.
    let p = plan("demo", &ctx(), &wanted(0..61), &first);
    let front_of = |p: &NlbShardedPlan, i: u32| p.services.iter().find(|s| s.service == svc(i)).unwrap().front;
    assert_eq!(front_of(&p, 0), 2);
    assert_eq!(front_of(&p, 1), 1);
    assert_eq!(front_of(&p, 60), 2);
    let second = applied(&first, &p);
    // Front 2's Services go (svc000 and svc050..60): its listeners, groups and rules go, then it.
    let mut fewer = wanted(1..50);
    fewer.truncate(49);
    let p = plan("demo", &ctx(), &fewer, &second);
    assert_eq!(p.remove, [FrontAction::DeleteFront { number: 2, name: "demo-front-2".into(), arn: "lb-2".into() }]);
    let (_, f2) = p.fronts.iter().find(|(n, _)| *n == 2).unwrap();
    let deleted_listeners = f2.actions.iter().filter(|a| matches!(a, NlbAction::DeleteListener { .. })).count();
    let revoked = f2.actions.iter().filter(|a| matches!(a, NlbAction::RevokeIngress { .. })).count();
    assert_eq!((deleted_listeners, revoked), (12, 12));
    let third = applied(&second, &p);
    assert_eq!(third.fronts.len(), 1);
    assert_eq!(third.ingress.len(), 49);
    assert!(third.target_groups.iter().filter(|t| t.owner.is_some()).all(|t| t.front == 1));
    // Nothing wanted (`down`): everything of ours goes, the stack's listener back to its group.
    let down = applied(&third, &plan("demo", &ctx(), &[], &third));
    assert_eq!(down, NlbFrontsObserved { registered: BTreeMap::new(), ..base() });
}

#[test]
fn the_stack_listener_port_is_front_one_and_takes_no_slot() {
    let mut w = wanted(0..49);
    w.push(NlbWanted { service: "shop/default/web".into(), port: 80, target_group: "pk-web".into() });
    let p = plan("demo", &ctx(), &w, &base());
    assert!(p.create.is_empty(), "{:?}", p.create);
    let web = p.outcomes().into_iter().find(|s| s.port == 80).unwrap().clone();
    assert_eq!(web.state, NlbState::Default);
    let after = applied(&base(), &p);
    assert_eq!(listeners(&after, 1), 50);
    assert_eq!(served(&ctx(), &after).iter().find(|(s, _)| s == "shop/default/web"), Some(&("shop/default/web".to_string(), 1)));
}

#[test]
fn one_port_one_service_over_every_front() {
    let first = applied(&base(), &plan("demo", &ctx(), &wanted(0..55), &base()));
    // svc054 (front 2) holds port 1054; a new Service on that port follows it there and is refused.
    let mut w = wanted(0..55);
    w.push(NlbWanted { service: "shop/default/aaa".into(), port: 1054, target_group: "pk-aaa".into() });
    let p = plan("demo", &ctx(), &w, &first);
    let aaa = p.services.iter().find(|s| s.service == "shop/default/aaa").unwrap();
    assert_eq!(aaa.front, 2);
    let conflicts: Vec<&nlb::NlbService> = p.conflicts().collect();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].service, "shop/default/aaa");
    assert!(conflicts[0].reason.contains("svc054"), "{}", conflicts[0].reason);
    assert!(p.fronts.iter().all(|(_, f)| f.actions.is_empty()), "nothing changes for it");
    // New ones, no listener yet: the first by name holds the port, the other is refused beside it.
    let w = [
        NlbWanted { service: "shop/default/b".into(), port: 7000, target_group: "pk-b".into() },
        NlbWanted { service: "shop/default/a".into(), port: 7000, target_group: "pk-a".into() },
    ];
    let p = plan("demo", &ctx(), &w, &base());
    let states: Vec<(&str, NlbState)> = p.outcomes().iter().map(|s| (s.service.as_str(), s.state)).collect();
    assert_eq!(states, [("shop/default/a", NlbState::Listening), ("shop/default/b", NlbState::Conflict)]);
}

#[test]
fn a_port_handed_over_on_an_extra_front_converges_in_two_syncs() {
    // svc054's listener is on front 2; it goes and a new Service takes its port and lands on
    // front 2 as well (front 1 is full): as on one NLB, the old listener goes first and the new
    // one comes at the next sync; the rule on the shared group is planned by front 2 only
    // (never revoked or authorized twice: `applied` checks).
    let first = applied(&base(), &plan("demo", &ctx(), &wanted(0..55), &base()));
    let mut w = wanted(0..54);
    w.push(NlbWanted { service: "shop/default/zzz".into(), port: 1054, target_group: "pk-zzz".into() });
    let p = plan("demo", &ctx(), &w, &first);
    let second = applied(&first, &p);
    let p2 = plan("demo", &ctx(), &w, &second);
    let third = applied(&second, &p2);
    assert!(third.ingress.contains_key(&1054));
    assert_eq!(
        served(&ctx(), &third).into_iter().find(|(s, _)| s == "shop/default/zzz"),
        Some(("shop/default/zzz".to_string(), 2)),
        "{p:?}"
    );
    assert!(plan("demo", &ctx(), &w, &third).fronts.iter().all(|(_, f)| f.actions.is_empty()));
}

#[test]
fn an_empty_extra_front_with_a_listener_not_ours_is_kept_and_reported() {
    let mut seen = applied(&base(), &plan("demo", &ctx(), &wanted(0..50), &base()));
    seen.fronts[1].listeners.push(NlbListener { arn: "lst-manual".into(), port: 9999, forward: vec![], owner: None });
    let p = plan("demo", &ctx(), &wanted(0..49), &seen);
    assert!(p.remove.is_empty());
    assert!(p.problems[0].contains("lst-manual"), "{:?}", p.problems);
}

#[test]
fn a_replaced_firewall_is_registered_where_the_group_cannot_be_attached() {
    let first = applied(&base(), &plan("demo", &ctx(), &wanted(0..60), &base()));
    let mut replaced = first.clone();
    replaced.asg_instances = BTreeSet::from(["i-2".to_string()]);
    let p = plan("demo", &ctx(), &wanted(0..60), &replaced);
    assert_eq!(p.targets.len(), 11);
    assert!(p.targets.iter().all(|t| t.register == ["i-2"] && t.deregister == ["i-1"]), "{:?}", p.targets);
}

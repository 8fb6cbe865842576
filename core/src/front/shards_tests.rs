//! Table tests of the sharded front: names, stable assignment, room, the autoscaling group's
//! attachment budget, fronts made and removed, convergence.

use super::*;
use crate::front::alb::{Action, DEPLOYMENT_TAG, SERVICE_TAG};

fn ctx() -> AlbContext {
    AlbContext { deployment: "demo".into(), vpc_id: "vpc-1".into(), public_tg_arn: "tg-public".into() }
}

fn key(n: &str) -> ServiceKey {
    ServiceKey { cluster: "shop".into(), namespace: "default".into(), name: n.into() }
}

fn keys(range: std::ops::Range<u32>) -> Vec<ServiceKey> {
    range.map(|i| key(&format!("svc{i:03}"))).collect()
}

/// `n` Services with a host each, ports 1000.., named so key order is number order.
fn wanted(range: std::ops::Range<u32>) -> Vec<Wanted> {
    range
        .map(|i| Wanted { key: key(&format!("svc{i:03}")), port: 1000 + i as u16, host: Some(format!("h{i}.example.com")), path: None })
        .collect()
}

/// The world of a fresh stack: front 1 forwarding to the stack's group, attached to the ASG.
fn base() -> FrontsObserved {
    FrontsObserved {
        fronts: vec![Front {
            number: 1,
            name: "demo-exlb".into(),
            arn: "lb-1".into(),
            dns_name: "demo-exlb.elb".into(),
            listener_arn: Some("l-1".into()),
            rules: vec![],
            default_forward: vec!["tg-public".into()],
        }],
        target_groups: vec![TargetGroup {
            arn: "tg-public".into(),
            name: "demo-fw-public".into(),
            port: 81,
            vpc_id: "vpc-1".into(),
            tags: BTreeMap::from([(DEPLOYMENT_TAG.into(), "demo".into())]),
            health: None,
        }],
        asg_target_groups: BTreeSet::from(["tg-public".to_string()]),
        asg_instances: BTreeSet::from(["i-1".to_string(), "i-2".to_string()]),
        registered: BTreeMap::new(),
    }
}

fn ours(k: &ServiceKey, front: u32) -> BTreeMap<String, String> {
    BTreeMap::from([
        (DEPLOYMENT_TAG.to_string(), "demo".to_string()),
        (SERVICE_TAG.to_string(), k.to_string()),
        (FRONT_TAG.to_string(), front_tag_value(front)),
    ])
}

/// What AWS would show after the plan (the adapter's order: create, fronts, targets, remove).
fn applied(seen: &FrontsObserved, p: &ShardedPlan) -> FrontsObserved {
    let mut s = seen.clone();
    let arn = |name: &str| format!("arn-{name}");
    for a in &p.create {
        match a {
            FrontAction::CreateFront { number, name } => s.fronts.push(Front {
                number: *number,
                name: name.clone(),
                arn: format!("lb-{number}"),
                dns_name: format!("{name}.elb"),
                listener_arn: Some(format!("l-{number}")),
                rules: vec![],
                default_forward: vec![],
            }),
            FrontAction::CreateListener { number, .. } => {
                s.fronts.iter_mut().find(|f| f.number == *number).unwrap().listener_arn = Some(format!("l-{number}"))
            }
            FrontAction::DeleteFront { .. } => unreachable!("not a create"),
        }
    }
    for (n, plan) in &p.fronts {
        let fi = s.fronts.iter().position(|f| f.number == *n).expect("front exists");
        for a in &plan.actions {
            match a {
                Action::CreateTargetGroup { service, name, port, health } => s.target_groups.push(TargetGroup {
                    arn: arn(name),
                    name: name.clone(),
                    port: *port,
                    vpc_id: "vpc-1".into(),
                    tags: ours(service, *n),
                    health: Some(health.clone()),
                }),
                Action::Attach { name } => {
                    s.asg_target_groups.insert(arn(name));
                }
                Action::CreateRule { service, priority, hosts, paths, target } => s.fronts[fi].rules.push(Rule {
                    arn: format!("rule-{n}-{priority}"),
                    priority: *priority,
                    hosts: hosts.clone(),
                    paths: paths.clone(),
                    forward: vec![arn(target)],
                    tags: ours(service, *n),
                }),
                Action::DeleteRule { arn: a, .. } => s.fronts[fi].rules.retain(|r| &r.arn != a),
                Action::Detach { name } => {
                    s.asg_target_groups.remove(&arn(name));
                }
                Action::DeleteTargetGroup { name, .. } => {
                    s.target_groups.retain(|t| &t.name != name);
                    s.registered.remove(&arn(name));
                }
                other => panic!("not expected here: {other:?}"),
            }
        }
    }
    for t in &p.targets {
        let set = s.registered.entry(arn(&t.name)).or_default();
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
    s
}

fn count(p: &ShardedPlan, front: u32, pred: fn(&Action) -> bool) -> usize {
    p.fronts.iter().filter(|(n, _)| *n == front).flat_map(|(_, pl)| pl.actions.iter()).filter(|a| pred(a)).count()
}

#[test]
fn front_names_fit_32_characters_and_stay_unique() {
    assert_eq!(front_name("demo", 2), "demo-front-2");
    let long = "a-deployment-name-of-27-chr";
    for n in [2, 17, 999] {
        let name = front_name(long, n);
        assert!(name.len() <= LB_NAME_MAX, "{name}");
        assert!(name.ends_with(&format!("-front-{n}")) && !name.starts_with('-'), "{name}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !name.contains("--"), "{name}");
    }
    assert_ne!(front_name("a-deployment-name-of-27-chr", 2), front_name("a-deployment-name-of-27-chx", 2));
    assert_eq!(front_of(&BTreeMap::new()), 1, "a group from before sharding is front 1's");
    assert_eq!(front_of(&ours(&key("a"), 3)), 3);
    assert_eq!(extra_front_of("demo", &BTreeMap::from([(DEPLOYMENT_TAG.into(), "demo".into()), (FRONT_TAG.into(), "2".into())])), Some(2));
    assert_eq!(extra_front_of("demo", &BTreeMap::from([(DEPLOYMENT_TAG.into(), "other".into()), (FRONT_TAG.into(), "2".into())])), None);
    assert_eq!(extra_front_of("demo", &BTreeMap::from([(DEPLOYMENT_TAG.into(), "demo".into())])), None, "the stack's ALB");
}

#[test]
fn assignment_fills_the_lowest_front_keeps_held_services_and_opens_fronts_when_full() {
    // 130 new Services, front 1 with room 99 (the stack's default group counts): 99 + 31.
    let fronts = vec![(1, 99, BTreeSet::new())];
    let (a, created) = assign(&keys(0..130), &fronts);
    assert_eq!(created, vec![2]);
    assert_eq!(a.values().filter(|n| **n == 1).count(), 99);
    assert_eq!(a.values().filter(|n| **n == 2).count(), 31);
    assert_eq!(a[&key("svc000")], 1);
    assert_eq!(a[&key("svc129")], 2, "new ones in key order");

    // Held Services stay; a newcomer that sorts first never evicts one: it goes where room is.
    let held1: BTreeSet<ServiceKey> = keys(1..100).into_iter().collect();
    let held2: BTreeSet<ServiceKey> = keys(100..130).into_iter().collect();
    let fronts = vec![(1, 99, held1.clone()), (2, 100, held2.clone())];
    let mut want = keys(1..130);
    want.push(key("svc000"));
    let (a, created) = assign(&want, &fronts);
    assert!(created.is_empty());
    assert!(held1.iter().all(|k| a[k] == 1) && held2.iter().all(|k| a[k] == 2));
    assert_eq!(a[&key("svc000")], 2, "front 1 is full");

    // A Service of front 1 leaves: the next newcomer takes its slot (room re-used).
    let mut want = keys(2..130);
    want.push(key("zzz"));
    let (a, _) = assign(&want, &fronts);
    assert_eq!(a[&key("zzz")], 1);

    // Front 2's Services all leave: nothing is assigned to it (it is removed by the plan).
    let (a, created) = assign(&keys(1..100), &fronts);
    assert!(created.is_empty() && a.values().all(|n| *n == 1));

    // Fronts 2 and 3 exist, 2 emptied: a newcomer fills 2 before 3; a fourth front is number 2
    // again if 2 is gone.
    let fronts = vec![(1, 0, BTreeSet::new()), (3, 100, BTreeSet::new())];
    let (a, created) = assign(&keys(0..101), &fronts);
    assert_eq!(created, vec![2], "the lowest unused number");
    assert_eq!(a.values().filter(|n| **n == 3).count(), 100);
}

#[test]
fn room_counts_the_default_group_and_foreign_rules_and_their_groups() {
    let seen = base();
    let tgs: BTreeMap<&str, &TargetGroup> = seen.target_groups.iter().map(|t| (t.arn.as_str(), t)).collect();
    assert_eq!(room("demo", &seen.fronts[0], &tgs, "tg-public"), 99, "the stack's default target group is one of the 100");
    // While a Service holds the default action the stack's group still counts: it comes back
    // when that Service goes (perhaps in the run that fills the front).
    let held = Front { default_forward: vec!["arn-pk-web".into()], ..seen.fronts[0].clone() };
    let mut with_web = seen.target_groups.clone();
    with_web.push(TargetGroup {
        arn: "arn-pk-web".into(),
        name: "pk-web".into(),
        port: 84,
        vpc_id: "vpc-1".into(),
        tags: ours(&key("web"), 1),
        health: None,
    });
    let tgs_web: BTreeMap<&str, &TargetGroup> = with_web.iter().map(|t| (t.arn.as_str(), t)).collect();
    assert_eq!(room("demo", &held, &tgs_web, "tg-public"), 99);
    let mut f = seen.fronts[0].clone();
    f.rules = (0..5)
        .map(|i| Rule {
            arn: format!("foreign-{i}"),
            priority: i,
            hosts: vec![format!("x{i}")],
            paths: vec![],
            forward: vec![format!("tg-foreign-{}", i % 2)],
            tags: BTreeMap::new(),
        })
        .collect();
    assert_eq!(room("demo", &f, &tgs, "tg-public"), 95, "5 foreign rules (2 foreign groups + the default: 97 left)");
    let extra = Front { number: 2, default_forward: vec![], rules: vec![], ..f };
    assert_eq!(room("demo", &extra, &tgs, "tg-public"), 100, "an extra front's default is a fixed response");
}

#[test]
fn one_hundred_thirty_services_make_two_fronts_and_fit_the_autoscaling_group() {
    let want = wanted(0..130);
    let p = plan(&ctx(), &want, &base());
    assert_eq!(p.create, vec![FrontAction::CreateFront { number: 2, name: "demo-front-2".into() }]);
    let tg = |a: &Action| matches!(a, Action::CreateTargetGroup { .. });
    let rule = |a: &Action| matches!(a, Action::CreateRule { .. });
    let attach = |a: &Action| matches!(a, Action::Attach { .. });
    assert_eq!((count(&p, 1, tg), count(&p, 1, rule)), (99, 99));
    assert_eq!((count(&p, 2, tg), count(&p, 2, rule)), (31, 31));
    // 50 per ASG, the stack's group is one: 49 attached, 81 registered directly.
    assert_eq!(count(&p, 1, attach) + count(&p, 2, attach), 49);
    assert_eq!(p.targets.len(), 81);
    assert!(p.targets.iter().all(|t| t.register == vec!["i-1".to_string(), "i-2".to_string()] && t.deregister.is_empty()));
    assert_eq!(p.services.len(), 130);
    assert_eq!(p.services.iter().filter(|s| s.front_name == "demo-front-2").count(), 31);
    assert!(p.remove.is_empty() && p.problems.is_empty());

    // Applied: the next plan changes nothing.
    let after = applied(&base(), &p);
    let again = plan(&ctx(), &want, &after);
    assert!(again.create.is_empty() && again.targets.is_empty() && again.remove.is_empty(), "{again:?}");
    assert!(again.fronts.iter().all(|(_, pl)| pl.actions.is_empty()), "{:?}", again.fronts);
    assert_eq!(again.services, p.services, "nobody moved");
    assert_eq!(after.asg_target_groups.len(), TARGET_GROUPS_PER_ASG);

    // A firewall is replaced: the directly registered groups follow at the next converge.
    let mut replaced = after.clone();
    replaced.asg_instances = BTreeSet::from(["i-1".to_string(), "i-3".to_string()]);
    let r = plan(&ctx(), &want, &replaced);
    assert_eq!(r.targets.len(), 81);
    assert!(r.targets.iter().all(|t| t.register == vec!["i-3".to_string()] && t.deregister == vec!["i-2".to_string()]));
}

#[test]
fn the_last_services_of_an_extra_front_leaving_remove_it_and_its_groups() {
    let after = applied(&base(), &plan(&ctx(), &wanted(0..130), &base()));
    // The 40 last by key go: front 2's 31 and 9 of front 1's.
    let p = plan(&ctx(), &wanted(0..90), &after);
    assert!(p.create.is_empty());
    let del_tg = |a: &Action| matches!(a, Action::DeleteTargetGroup { .. });
    assert_eq!((count(&p, 1, del_tg), count(&p, 2, del_tg)), (9, 31));
    assert_eq!(p.remove, vec![FrontAction::DeleteFront { number: 2, name: "demo-front-2".into(), arn: "lb-2".into() }]);
    let end = applied(&after, &p);
    assert_eq!(end.fronts.len(), 1);
    assert_eq!(end.target_groups.len(), 91, "90 Services' groups and the stack's");
    // Room freed on the autoscaling group is used by groups registered directly before.
    let next = plan(&ctx(), &wanted(0..90), &end);
    let attaches: usize = next.fronts.iter().map(|(n, _)| count(&next, *n, |a| matches!(a, Action::Attach { .. }))).sum();
    assert_eq!(attaches, 50 - end.asg_target_groups.len());
    // `down`: nothing wanted, everything of ours goes; front 1 stays (the stack's).
    let down = plan(&ctx(), &[], &after);
    assert_eq!(down.remove.len(), 1);
    let gone = applied(&after, &down);
    assert_eq!(gone.target_groups.len(), 1);
    assert!(gone.fronts.iter().all(|f| f.rules.is_empty()) && gone.fronts.len() == 1);
}

#[test]
fn an_empty_extra_front_with_a_foreign_rule_is_kept_and_said_so() {
    let mut seen = base();
    seen.fronts.push(Front {
        number: 2,
        name: "demo-front-2".into(),
        arn: "lb-2".into(),
        dns_name: "x".into(),
        listener_arn: Some("l-2".into()),
        rules: vec![Rule { arn: "manual".into(), priority: 5, hosts: vec!["m".into()], ..Rule::default() }],
        default_forward: vec![],
    });
    let p = plan(&ctx(), &wanted(0..3), &seen);
    assert!(p.remove.is_empty());
    assert!(p.problems[0].contains("manual"), "{:?}", p.problems);
    assert!(p.services.iter().all(|s| s.front == 1));
    // An extra front left without its listener by an interrupted run gets one when it has Services.
    let mut seen = base();
    seen.fronts[0].rules =
        (0..100).map(|i| Rule { arn: format!("f{i}"), priority: i, hosts: vec![format!("f{i}")], ..Rule::default() }).collect();
    seen.fronts.push(Front { number: 2, name: "demo-front-2".into(), arn: "lb-2".into(), listener_arn: None, ..Front::default() });
    let p = plan(&ctx(), &wanted(0..1), &seen);
    assert_eq!(p.create, vec![FrontAction::CreateListener { number: 2, name: "demo-front-2".into() }]);
    assert_eq!(p.services[0].front, 2);
}

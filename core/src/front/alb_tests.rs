//! Table tests of the ALB planner: names, stable priorities, conflicts, the default action.
//! (Moved from `src/aws/alb_tests.rs` with their assertions unchanged.)

use super::*;

fn ctx() -> AlbContext {
    AlbContext { deployment: "demo".into(), vpc_id: "vpc-1".into(), public_tg_arn: "tg-public".into() }
}

fn key(n: &str) -> ServiceKey {
    ServiceKey { cluster: "shop".into(), namespace: "default".into(), name: n.into() }
}

fn w(n: &str, port: u16, host: Option<&str>, path: Option<&str>) -> Wanted {
    Wanted { key: key(n), port, host: host.map(Into::into), path: path.map(Into::into) }
}

fn ours(k: &ServiceKey) -> BTreeMap<String, String> {
    BTreeMap::from([(DEPLOYMENT_TAG.to_string(), "demo".to_string()), (SERVICE_TAG.to_string(), k.to_string())])
}

/// Observed state with the firewall stack's own target group as the listener default.
fn base() -> Observed {
    Observed {
        target_groups: vec![TargetGroup {
            arn: "tg-public".into(),
            name: "demo-fw-public".into(),
            port: 81,
            vpc_id: "vpc-1".into(),
            tags: BTreeMap::from([(DEPLOYMENT_TAG.into(), "demo".into())]),
            health: None,
        }],
        rules: vec![],
        default_forward: vec!["tg-public".into()],
        asg_target_groups: BTreeSet::from(["tg-public".to_string()]),
    }
}

fn our_tg(n: &str, port: u16) -> TargetGroup {
    let k = key(n);
    let name = tg_name("demo", &k, port);
    TargetGroup { arn: format!("arn-{name}"), name, port, vpc_id: "vpc-1".into(), tags: ours(&k), health: Some(service_health_check()) }
}

/// The observed state after applying a plan (what AWS would show), for convergence tests.
fn applied(seen: &Observed, p: &AlbPlan) -> Observed {
    let mut s = seen.clone();
    let arn = |name: &str| format!("arn-{name}");
    for a in &p.actions {
        match a {
            Action::CreateTargetGroup { service, name, port, health } => s.target_groups.push(TargetGroup {
                arn: arn(name),
                name: name.clone(),
                port: *port,
                vpc_id: "vpc-1".into(),
                tags: ours(service),
                health: Some(health.clone()),
            }),
            Action::ModifyHealthCheck { name, health, .. } => {
                s.target_groups.iter_mut().find(|t| &t.name == name).unwrap().health = Some(health.clone());
            }
            Action::Attach { name } => {
                s.asg_target_groups.insert(arn(name));
            }
            Action::CreateRule { service, priority, hosts, paths, target } => s.rules.push(Rule {
                arn: format!("rule-{priority}"),
                priority: *priority,
                hosts: hosts.clone(),
                paths: paths.clone(),
                forward: vec![arn(target)],
                tags: ours(service),
            }),
            Action::ModifyRule { arn: a, hosts, paths, target, .. } => {
                let r = s.rules.iter_mut().find(|r| &r.arn == a).unwrap();
                r.hosts = hosts.clone();
                r.paths = paths.clone();
                r.forward = vec![arn(target)];
            }
            Action::SetDefault { target } => s.default_forward = vec![target.as_deref().map(arn).unwrap_or_else(|| "tg-public".into())],
            Action::DeleteRule { arn: a, .. } => s.rules.retain(|r| &r.arn != a),
            Action::Detach { name } => {
                s.asg_target_groups.remove(&arn(name));
            }
            Action::DeleteTargetGroup { name, .. } => s.target_groups.retain(|t| &t.name != name),
        }
    }
    s
}

#[test]
fn target_group_names_fit_32_chars_are_valid_and_deterministic() {
    let long = ServiceKey { cluster: "c".into(), namespace: "ns".into(), name: "a-very-long-service-name-that-goes-on-and-on".into() };
    for (k, port) in [(key("frontend"), 82), (long.clone(), 65535), (key("x"), 1), (key("9--odd..name"), 8080)] {
        let n = tg_name("demo", &k, port);
        assert!(n.len() <= TG_NAME_MAX, "{n}");
        assert!(
            n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !n.contains("--") && !n.ends_with('-') && !n.starts_with('-'),
            "{n}"
        );
        assert_eq!(n, tg_name("demo", &k, port));
        assert!(n.contains(&format!("-{port}-")), "{n}");
    }
    assert_eq!(tg_name("demo", &key("frontend"), 82).len(), "pk-frontend-82-".len() + 8);
    assert_ne!(tg_name("demo", &key("a"), 82), tg_name("other", &key("a"), 82), "deployments do not collide");
    let other_ns = ServiceKey { namespace: "prod".into(), ..long.clone() };
    assert_ne!(tg_name("demo", &long, 82), tg_name("demo", &other_ns, 82), "the hash tells truncated names apart");
}

#[test]
fn a_protected_service_gets_target_group_attachment_and_rule_then_converges() {
    let want = vec![w("frontend", 82, Some("shop.example.com"), None), w("api", 83, None, Some("/api/*"))];
    let p = plan(&ctx(), &want, &base());
    let kinds: Vec<&str> = p
        .actions
        .iter()
        .map(|a| match a {
            Action::CreateTargetGroup { .. } => "create-tg",
            Action::Attach { .. } => "attach",
            Action::CreateRule { .. } => "create-rule",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, vec!["create-tg", "create-tg", "attach", "attach", "create-rule", "create-rule"]);
    assert!(p.services.iter().all(|s| s.state == AlbState::Routed), "{:?}", p.services);
    let prio = |p: &AlbPlan, n: &str| p.services.iter().find(|s| s.service.name == n).unwrap().priority.unwrap();
    assert_eq!(prio(&p, "api"), home_priority(&key("api")));
    // Applied, the next plan is empty: nothing moves.
    let after = applied(&base(), &p);
    let again = plan(&ctx(), &want, &after);
    assert!(again.actions.is_empty(), "{:?}", again.actions);
    assert_eq!(prio(&again, "api"), prio(&p, "api"));
    // The Service leaves: rule, attachment and target group go; the stack's TG stays.
    let gone = plan(&ctx(), &want[1..], &after);
    let end = applied(&after, &gone);
    assert!(end.target_groups.iter().all(|t| !t.name.contains("frontend")));
    assert!(end.rules.iter().all(|r| r.tags.get(SERVICE_TAG).map(String::as_str) != Some("shop/default/frontend")));
    assert!(end.asg_target_groups.contains("tg-public"));
    assert!(
        matches!(gone.actions[0], Action::DeleteRule { .. })
            && matches!(gone.actions[1], Action::Detach { .. })
            && matches!(gone.actions[2], Action::DeleteTargetGroup { .. }),
        "{:?}",
        gone.actions
    );
    let none = plan(&ctx(), &[], &end);
    assert!(applied(&end, &none).target_groups.len() == 1 && applied(&end, &none).rules.is_empty());
}

#[test]
fn priorities_are_stable_collisions_resolve_deterministically_and_existing_rules_never_move() {
    let k = key("frontend");
    let home = home_priority(&k);
    // Someone else's rule sits on our home slot: we take the next free one.
    let mut seen = base();
    seen.rules.push(Rule {
        arn: "foreign".into(),
        priority: home,
        hosts: vec!["other.example.com".into()],
        paths: vec![],
        forward: vec!["tg-x".into()],
        tags: BTreeMap::new(),
    });
    let want = vec![w("frontend", 82, Some("shop.example.com"), None)];
    let p = plan(&ctx(), &want, &seen);
    let expect = if home + 1 == PRIORITY_BASE + PRIORITY_SPAN { PRIORITY_BASE } else { home + 1 };
    assert_eq!(p.services[0].priority, Some(expect));
    assert_eq!(plan(&ctx(), &want, &seen), p, "same world, same plan");
    // Our rule exists at some other priority (placed by an earlier run): it stays there, even
    // when its home slot is free now, and its conditions are updated in place.
    let mut seen = base();
    let tg = our_tg("frontend", 82);
    seen.target_groups.push(tg.clone());
    seen.asg_target_groups.insert(tg.arn.clone());
    seen.rules.push(Rule {
        arn: "r1".into(),
        priority: 10_001,
        hosts: vec!["old.example.com".into()],
        paths: vec![],
        forward: vec![tg.arn.clone()],
        tags: ours(&k),
    });
    let p = plan(&ctx(), &want, &seen);
    assert_eq!(p.services[0].priority, Some(10_001));
    assert_eq!(
        p.actions,
        vec![Action::ModifyRule {
            service: k,
            arn: "r1".into(),
            priority: 10_001,
            hosts: vec!["shop.example.com".into()],
            paths: vec![],
            target: tg.name
        }]
    );
    // Two new Services hashing anywhere: assigned in key order, never the same priority.
    let many: Vec<Wanted> = (0..50).map(|i| w(&format!("svc{i}"), 1000 + i, Some(&format!("h{i}.example.com")), None)).collect();
    let p = plan(&ctx(), &many, &base());
    let prios: BTreeSet<u32> = p.services.iter().filter_map(|s| s.priority).collect();
    assert_eq!(prios.len(), 50);
    assert!(prios.iter().all(|p| (PRIORITY_BASE..PRIORITY_BASE + PRIORITY_SPAN).contains(p)));
}

#[test]
fn a_port_served_by_a_foreign_target_group_is_a_conflict_not_overwritten() {
    let mut seen = base();
    seen.target_groups.push(TargetGroup {
        arn: "tg-manual".into(),
        name: "frontend-demo".into(),
        port: 82,
        vpc_id: "vpc-1".into(),
        tags: BTreeMap::new(),
        health: None,
    });
    seen.asg_target_groups.insert("tg-manual".into());
    let p = plan(&ctx(), &[w("frontend", 82, Some("a.example.com"), None)], &seen);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(p.services[0].state, AlbState::Conflict);
    assert!(p.services[0].reason.contains("tg-manual"), "{}", p.services[0].reason);
    // The firewall stack's own target group (traffic on 81) serves port 81 too.
    let p = plan(&ctx(), &[w("frontend", 81, Some("a.example.com"), None)], &base());
    assert_eq!(p.services[0].state, AlbState::Conflict);
    // A foreign TG on the port that does NOT serve the firewalls is not in the way.
    let mut seen = base();
    seen.target_groups.push(TargetGroup {
        arn: "tg-idle".into(),
        name: "idle".into(),
        port: 82,
        vpc_id: "vpc-1".into(),
        tags: BTreeMap::new(),
        health: None,
    });
    assert_eq!(plan(&ctx(), &[w("frontend", 82, Some("a.example.com"), None)], &seen).services[0].state, AlbState::Routed);
    // Our name held by a target group not ours.
    let mut seen = base();
    let name = tg_name("demo", &key("frontend"), 82);
    seen.target_groups.push(TargetGroup { arn: "tg-squat".into(), name, port: 82, vpc_id: "vpc-1".into(), ..Default::default() });
    let p = plan(&ctx(), &[w("frontend", 82, Some("a.example.com"), None)], &seen);
    assert_eq!(p.services[0].state, AlbState::Conflict);
    assert!(p.actions.is_empty());
}

#[test]
fn a_host_or_path_rule_not_ours_is_a_conflict_and_our_old_rule_is_left_as_is() {
    let mut seen = base();
    seen.rules.push(Rule {
        arn: "manual".into(),
        priority: 5,
        hosts: vec!["shop.example.com".into()],
        paths: vec![],
        forward: vec!["tg-x".into()],
        tags: BTreeMap::new(),
    });
    let p = plan(&ctx(), &[w("frontend", 82, Some("shop.example.com"), None)], &seen);
    assert_eq!(p.services[0].state, AlbState::Conflict);
    assert!(p.services[0].reason.contains("manual") && p.services[0].reason.contains("host shop.example.com"), "{}", p.services[0].reason);
    assert!(!p.actions.iter().any(|a| matches!(a, Action::CreateRule { .. } | Action::ModifyRule { .. })), "{:?}", p.actions);
    // Same conditions wanted by two of our Services: the first by key keeps them.
    let p = plan(&ctx(), &[w("b", 82, Some("x.example.com"), None), w("a", 83, Some("x.example.com"), None)], &base());
    let st = |n: &str| p.services.iter().find(|s| s.service.name == n).unwrap().state;
    assert_eq!((st("a"), st("b")), (AlbState::Routed, AlbState::Conflict));
    // Our rule for the Service already existed; the annotation now collides: untouched, and
    // the target group it forwards to is not deleted under it.
    let mut seen = base();
    let old = our_tg("frontend", 82);
    seen.target_groups.push(old.clone());
    seen.asg_target_groups.insert(old.arn.clone());
    seen.rules.push(Rule {
        arn: "ours".into(),
        priority: 10_007,
        hosts: vec!["old.example.com".into()],
        paths: vec![],
        forward: vec![old.arn.clone()],
        tags: ours(&key("frontend")),
    });
    seen.rules.push(Rule {
        arn: "manual".into(),
        priority: 5,
        hosts: vec!["new.example.com".into()],
        paths: vec![],
        forward: vec!["tg-x".into()],
        tags: BTreeMap::new(),
    });
    let p = plan(&ctx(), &[w("frontend", 82, Some("new.example.com"), None)], &seen);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
}

#[test]
fn the_default_action_only_for_a_sole_service_without_host_or_path() {
    // One Service, no annotations: it takes the default action.
    let want = vec![w("frontend", 82, None, None)];
    let p = plan(&ctx(), &want, &base());
    let name = tg_name("demo", &key("frontend"), 82);
    assert_eq!(p.services[0].state, AlbState::Default);
    assert!(p.actions.contains(&Action::SetDefault { target: Some(name.clone()) }));
    let after = applied(&base(), &p);
    assert!(plan(&ctx(), &want, &after).actions.is_empty());
    // A second Service arrives: the first has no host/path, so it loses the default (back to
    // the stack's target group) and is reported; its target group stays attached.
    let two = vec![w("frontend", 82, None, None), w("api", 83, Some("api.example.com"), None)];
    let p2 = plan(&ctx(), &two, &after);
    assert!(p2.actions.contains(&Action::SetDefault { target: None }), "{:?}", p2.actions);
    let fe = p2.services.iter().find(|s| s.service.name == "frontend").unwrap();
    assert_eq!(fe.state, AlbState::NoRule);
    assert!(fe.reason.contains(HOST_ANNOTATION));
    assert!(!p2.actions.iter().any(|a| matches!(a, Action::DeleteTargetGroup { .. })));
    // A default action pointing somewhere not ours is never overwritten.
    let mut seen = base();
    seen.default_forward = vec!["tg-someone".into()];
    let p = plan(&ctx(), &want, &seen);
    assert_eq!(p.services[0].state, AlbState::Conflict);
    assert!(!p.actions.iter().any(|a| matches!(a, Action::SetDefault { .. })));
    // Everything leaves: the default goes back before our target group is deleted.
    let p = plan(&ctx(), &[], &after);
    let set = p.actions.iter().position(|a| a == &Action::SetDefault { target: None }).unwrap();
    let del = p.actions.iter().position(|a| matches!(a, Action::DeleteTargetGroup { .. })).unwrap();
    assert!(set < del, "{:?}", p.actions);
}

#[test]
fn a_new_label_port_moves_the_rule_to_a_new_target_group() {
    let want82 = vec![w("frontend", 82, Some("shop.example.com"), None)];
    let s1 = applied(&base(), &plan(&ctx(), &want82, &base()));
    let want90 = vec![w("frontend", 90, Some("shop.example.com"), None)];
    let p = plan(&ctx(), &want90, &s1);
    let new = tg_name("demo", &key("frontend"), 90);
    let old = tg_name("demo", &key("frontend"), 82);
    let pos = |f: &dyn Fn(&Action) -> bool| p.actions.iter().position(|a| f(a)).unwrap();
    let create = pos(&|a| matches!(a, Action::CreateTargetGroup { name, .. } if *name == new));
    let modify = pos(&|a| matches!(a, Action::ModifyRule { target, .. } if *target == new));
    let delete = pos(&|a| matches!(a, Action::DeleteTargetGroup { name, .. } if *name == old));
    assert!(create < modify && modify < delete, "{:?}", p.actions);
    let s2 = applied(&s1, &p);
    assert!(plan(&ctx(), &want90, &s2).actions.is_empty());
}

#[test]
fn other_deployments_and_untagged_resources_are_never_touched() {
    let mut seen = base();
    let mut t = our_tg("frontend", 82);
    t.tags.insert(DEPLOYMENT_TAG.into(), "other".into());
    seen.target_groups.push(t);
    seen.rules.push(Rule {
        arn: "x".into(),
        priority: 12,
        hosts: vec!["a".into()],
        paths: vec![],
        forward: vec![],
        tags: BTreeMap::from([(SERVICE_TAG.into(), "shop/default/frontend".into())]),
    });
    assert!(plan(&ctx(), &[], &seen).actions.is_empty());
}

#[test]
fn wanted_reads_protected_and_planned_services_with_their_annotations() {
    use crate::{ClusterFacts, ServiceFacts, ServiceStatus};
    let status = |n: &str, st: ServiceState, port: Option<u16>| ServiceStatus {
        cluster: "shop".into(),
        namespace: "default".into(),
        name: n.into(),
        port,
        state: st,
        reason: String::new(),
        nat_rule: None,
        address: None,
        service_object: None,
        security_rule: None,
    };
    let plan = Plan {
        operations: vec![],
        device_group_changed: false,
        template_changed: false,
        services: vec![
            status("a", ServiceState::Protected, Some(82)),
            status("b", ServiceState::Planned, Some(83)),
            status("c", ServiceState::Conflict, Some(84)),
            status("d", ServiceState::Pending, Some(85)),
        ],
        clusters: vec![],
        problems: vec![],
    };
    let svc: ServiceFacts = serde_json::from_value(serde_json::json!({
        "namespace": "default", "name": "a", "type": "LoadBalancer", "created": "2026-01-01T00:00:00Z",
        "annotations": {HOST_ANNOTATION: " shop.example.com ", PATH_ANNOTATION: ""}
    }))
    .unwrap();
    let facts = Facts {
        clusters: vec![ClusterFacts { name: "shop".into(), subnets: vec![], services: vec![svc] }],
        firewalls: vec![],
        ..Default::default()
    };
    let got = wanted(&plan, &facts);
    assert_eq!(got, vec![w("a", 82, Some("shop.example.com"), None), w("b", 83, None, None)]);
}

/// Issue 13: a Service's target group probes its own traffic port (through its NAT rule on the
/// firewall), never a copy of the firewall stack's group; groups an older version made with the
/// copied check (port 81, `/index.html`) are repointed.
#[test]
fn service_target_groups_probe_their_traffic_port() {
    let p = plan(&ctx(), &[w("frontend", 82, Some("a.example.com"), None)], &base());
    let health = p.actions.iter().find_map(|a| if let Action::CreateTargetGroup { health, .. } = a { Some(health.clone()) } else { None });
    let h = health.expect("a target group is created");
    assert_eq!((h.protocol.as_str(), h.port.as_str()), ("HTTP", "traffic-port"));
    assert_eq!((h.path.as_deref(), h.matcher.as_deref()), (Some("/"), Some("200-499")));

    let cases: &[(Option<HealthCheck>, bool)] = &[
        (Some(service_health_check()), false),
        (
            Some(HealthCheck { protocol: "HTTP".into(), port: "81".into(), path: Some("/index.html".into()), matcher: Some("200".into()) }),
            true,
        ),
        (Some(HealthCheck { port: "82".into(), ..service_health_check() }), true),
        (None, false),
    ];
    for (current, modify) in cases {
        let mut seen = base();
        let mut tg = our_tg("frontend", 82);
        tg.health = current.clone();
        seen.asg_target_groups.insert(tg.arn.clone());
        seen.target_groups.push(tg);
        let p = plan(&ctx(), &[w("frontend", 82, None, None)], &seen);
        let mods: Vec<&Action> = p.actions.iter().filter(|a| matches!(a, Action::ModifyHealthCheck { .. })).collect();
        assert_eq!(!mods.is_empty(), *modify, "{current:?}: {:?}", p.actions);
        let after = applied(&seen, &p);
        assert!(plan(&ctx(), &[w("frontend", 82, None, None)], &after).actions.is_empty(), "converges for {current:?}");
    }
}

/// Table: a resource is a Service's only with this deployment's tag and a well-formed Service tag.
#[test]
fn ownership_needs_this_deployments_tag_and_a_whole_service_key() {
    let tags = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>();
    let cases: &[(&[(&str, &str)], Option<ServiceKey>)] = &[
        (&[(DEPLOYMENT_TAG, "demo"), (SERVICE_TAG, "shop/default/frontend")], Some(key("frontend"))),
        (&[(DEPLOYMENT_TAG, "other"), (SERVICE_TAG, "shop/default/frontend")], None),
        (&[(SERVICE_TAG, "shop/default/frontend")], None),
        (&[(DEPLOYMENT_TAG, "demo")], None),
        (&[(DEPLOYMENT_TAG, "demo"), (SERVICE_TAG, "shop/default")], None),
        (&[(DEPLOYMENT_TAG, "demo"), (SERVICE_TAG, "shop//frontend")], None),
        (&[(DEPLOYMENT_TAG, "demo"), (SERVICE_TAG, "shop/default/a/b")], Some(key("a/b"))),
    ];
    for (t, want) in cases {
        assert_eq!(owner("demo", &tags(t)), *want, "{t:?}");
    }
}

//! Table tests for the planner: desired state, bad facts, conflicts, ownership, ordering.

mod common;

use std::collections::HashSet;

use common::*;
use pano_eks_core::panorama::naming::{NAME_MAX, ROUTE_NAME_MAX, TAG_NAME_MAX, is_safe_name};
use pano_eks_core::*;

#[test]
fn first_plan_creates_the_documented_objects() {
    let p = run(&shop(), &Observed::default());
    let names: Vec<(Kind, &str)> = p.operations.iter().map(|o| (o.kind(), o.name())).collect();
    let route = p.clusters[0].subnets[0].routes[0].clone();
    assert_eq!(
        names,
        vec![
            (Kind::Tag, "pano-eks"),
            (Kind::Tag, "pano-eks.prod.shop"),
            (Kind::Address, "prod.shop.default.frontend"),
            (Kind::Service, "prod.tcp-82"),
            (Kind::NatRule, "prod.in.shop.default.frontend"),
            (Kind::NatRule, "prod.out.shop.192.168.110.0_24"),
            (Kind::StaticRoute, route.as_str()),
        ]
    );
    assert!(p.operations.iter().all(|o| matches!(o, Operation::Create { .. })));
    assert!(p.device_group_changed && p.template_changed);
    assert!(p.problems.is_empty(), "{:?}", p.problems);

    let obj = |name: &str| p.operations.iter().find(|o| o.name() == name).unwrap().clone();
    let Operation::Create { object: Object::NatRule(rule) } = obj("prod.in.shop.default.frontend") else { panic!() };
    let tags = vec!["pano-eks".to_owned(), "pano-eks.prod.shop".to_owned()];
    assert_eq!(
        rule,
        NatRule {
            name: "prod.in.shop.default.frontend".into(),
            from: vec!["untrust".into()],
            to: "untrust".into(),
            source: vec!["any".into()],
            destination: vec!["any".into()],
            service: "prod.tcp-82".into(),
            to_interface: None,
            source_translation: Some(SourceTranslation::InterfaceAddress { interface: "ethernet1/2".into() }),
            destination_translation: Some(DestinationTranslation::Dynamic {
                address: "prod.shop.default.frontend".into(),
                port: Some(80),
                distribution: "round-robin".into(),
            }),
            description: Some("shop/default/frontend - managed by pano-eks (prod)".into()),
            tags: tags.clone(),
            disabled: false,
            unmodelled: vec![],
            uuid: None,
        }
    );
    let Operation::Create { object: Object::Address(addr) } = obj("prod.shop.default.frontend") else { panic!() };
    assert_eq!(addr.value, AddressValue::Fqdn("internal-frontend-1.elb.us-west-2.amazonaws.com".into()));
    assert_eq!(addr.tags, tags);
    let Operation::Create { object: Object::Service(s) } = obj("prod.tcp-82") else { panic!() };
    assert_eq!((s.protocol, s.port.as_str()), (Protocol::Tcp, "82"));
    let Operation::Create { object: Object::NatRule(out) } = obj("prod.out.shop.192.168.110.0_24") else { panic!() };
    assert_eq!(
        (out.from, out.to, out.source, out.service),
        (vec!["trust".into()], "untrust".into(), vec!["192.168.110.0/24".into()], "any".into())
    );
    assert_eq!(out.source_translation, Some(SourceTranslation::InterfaceAddress { interface: "ethernet1/1".into() }));
    assert_eq!(out.destination_translation, None);
    let Operation::Create { object: Object::StaticRoute(r) } = obj(&route) else { panic!() };
    assert_eq!(
        (r.destination.as_str(), r.nexthop, r.interface.as_deref(), r.metric),
        ("192.168.110.0/24", Some(NextHop::IpAddress("192.168.2.1".into())), Some("ethernet1/2"), 10)
    );
    assert!(route.starts_with("pke-") && route.contains("192.168.110.0_24") && route.len() <= 31, "{route}");

    let st = status(&p, "default", "frontend");
    assert_eq!((st.state, st.port, st.nat_rule.as_deref()), (ServiceState::Planned, Some(82), Some("prod.in.shop.default.frontend")));
}

#[test]
fn resync_of_converged_state_is_zero_operations() {
    let f = facts(
        vec![
            cluster("shop", &["192.168.110.0/24", "192.168.111.0/24"], vec![svc("default", "frontend", "82"), svc("web", "api", "83")]),
            cluster("blog", &["192.168.120.0/24"], vec![svc("default", "site", "84")]),
        ],
        vec![fw("i-1", "192.168.2.0/24"), fw("i-2", "192.168.3.0/24")],
    );
    let observed = converge(&f, &Observed::default());
    let p = run(&f, &observed);
    assert!(p.is_noop(), "{:#?}", p.operations);
    assert!(!p.device_group_changed && !p.template_changed);
    assert!(p.services.iter().all(|s| s.state == ServiceState::Protected), "{:?}", p.services);
    // Foreign entries and their order do not disturb a no-op.
    let mut noisy = observed.clone();
    noisy.addresses.insert(0, foreign_address("corp-dns", &[]));
    noisy.nat_rules.reverse();
    assert!(run(&f, &noisy).is_noop());
}

#[test]
fn two_firewalls_three_subnets_make_six_routes_and_shared_trust_subnets_dedupe() {
    let subnets = ["10.0.16.0/20", "10.0.32.0/20", "10.0.48.0/20"];
    let cases: Vec<(&str, Vec<FirewallFacts>, usize)> = vec![
        ("2 fw x 3 subnets", vec![fw("i-1", "10.0.1.0/24"), fw("i-2", "10.0.2.0/24")], 6),
        ("same trust subnet", vec![fw("i-1", "10.0.1.0/24"), fw("i-2", "10.0.1.0/24")], 3),
        ("one bad firewall", vec![fw("i-1", "10.0.1.0/24"), fw("i-2", "10.0.2.0/33")], 3),
        ("no firewalls", vec![], 0),
    ];
    for (case, fws, want) in cases {
        let p = run(&facts(vec![cluster("shop", &subnets, vec![])], fws), &Observed::default());
        let routes = op_names(&p, Kind::StaticRoute);
        assert_eq!(routes.len(), want, "{case}: {routes:?}");
        assert_eq!(routes.iter().collect::<HashSet<_>>().len(), want, "{case}: unique");
        let listed: usize = p.clusters[0].subnets.iter().map(|s| s.routes.len()).sum();
        assert_eq!(listed, want, "{case}: status lists the routes");
        assert!(routes.iter().all(|r| r.len() <= ROUTE_NAME_MAX && is_safe_name(r)), "{case}: {routes:?}");
        assert_eq!(op_names(&p, Kind::NatRule).len(), 3, "{case}: one outbound rule per subnet");
    }
    // Next hop is the first host of the trust subnet.
    let p = run(&facts(vec![cluster("shop", &["10.0.16.0/20"], vec![])], vec![fw("i-1", "10.0.1.0/24")]), &Observed::default());
    let Some(Operation::Create { object: Object::StaticRoute(r) }) = p.operations.iter().find(|o| o.kind() == Kind::StaticRoute) else {
        panic!()
    };
    assert_eq!(r.nexthop, Some(NextHop::IpAddress("10.0.1.1".into())));
}

#[test]
fn each_bad_fact_is_reported_with_its_service_and_does_not_block_the_good() {
    let mut no_host = svc("default", "no-host", "91");
    no_host.lb_hostname = None;
    let mut empty_host = svc("default", "empty-host", "92");
    empty_host.lb_hostname = Some(String::new());
    let mut cluster_ip = svc("default", "cluster-ip", "93");
    cluster_ip.service_type = "ClusterIP".into();
    let mut udp = svc("default", "udp-only", "94");
    udp.ports = vec![PortFacts { port: 53, protocol: "UDP".into() }];
    let mut no_ports = svc("default", "no-ports", "95");
    no_ports.ports = vec![];
    let mut bad_host = svc("default", "bad-host", "96");
    bad_host.lb_hostname = Some("not a host/name".into());
    let mut unlabelled = svc("default", "unlabelled", "97");
    unlabelled.labels.clear();
    let mut second_tcp = svc("default", "second-tcp", "98");
    second_tcp.ports = vec![PortFacts { port: 53, protocol: "UDP".into() }, PortFacts { port: 8443, protocol: "TCP".into() }];

    let table: Vec<(ServiceFacts, ServiceState, Option<ProblemKind>, Option<u16>)> = vec![
        (svc("default", "letters", "abc"), ServiceState::Invalid, Some(ProblemKind::InvalidLabel), None),
        (svc("default", "zero", "0"), ServiceState::Invalid, Some(ProblemKind::InvalidLabel), None),
        (svc("default", "too-big", "65536"), ServiceState::Invalid, Some(ProblemKind::InvalidLabel), None),
        (svc("default", "negative", "-1"), ServiceState::Invalid, Some(ProblemKind::InvalidLabel), None),
        (svc("default", "leading-zero", "082"), ServiceState::Invalid, Some(ProblemKind::InvalidLabel), None),
        (svc("default", "empty-label", ""), ServiceState::Invalid, Some(ProblemKind::InvalidLabel), None),
        (cluster_ip, ServiceState::Invalid, Some(ProblemKind::NotLoadBalancer), Some(93)),
        (udp, ServiceState::Invalid, Some(ProblemKind::NoTcpPort), Some(94)),
        (no_ports, ServiceState::Invalid, Some(ProblemKind::NoTcpPort), Some(95)),
        (bad_host, ServiceState::Invalid, Some(ProblemKind::InvalidHostname), Some(96)),
        (no_host, ServiceState::Pending, Some(ProblemKind::Pending), Some(91)),
        (empty_host, ServiceState::Pending, Some(ProblemKind::Pending), Some(92)),
        (svc("default", "max-port", "65535"), ServiceState::Planned, None, Some(65535)),
        (second_tcp, ServiceState::Planned, None, Some(98)),
    ];
    let mut services: Vec<ServiceFacts> = table.iter().map(|t| t.0.clone()).collect();
    services.push(svc("default", "good", "82"));
    services.push(unlabelled);
    let p = run(&facts(vec![cluster("shop", &[], services)], vec![]), &Observed::default());

    for (s, state, kind, port) in &table {
        let st = status(&p, &s.namespace, &s.name);
        assert_eq!((st.state, st.port), (*state, *port), "{}: {st:?}", s.name);
        let subject = format!("shop/default/{}", s.name);
        let found: Vec<ProblemKind> = p.problems.iter().filter(|x| x.subject == subject).map(|x| x.kind).collect();
        assert_eq!(found, kind.iter().copied().collect::<Vec<_>>(), "{}", s.name);
        if *state != ServiceState::Planned {
            assert!(!st.reason.is_empty() && st.nat_rule.is_none(), "{}: {st:?}", s.name);
        }
    }
    assert!(p.services.iter().all(|s| s.name != "unlabelled"), "unlabelled Services are not ours to report");
    assert_eq!(status(&p, "default", "good").state, ServiceState::Planned);
    assert_eq!(op_names(&p, Kind::Service), vec!["prod.tcp-65535", "prod.tcp-82", "prod.tcp-98"]);
    // The first TCP port is the translated port, even after a UDP one.
    let rule = p
        .operations
        .iter()
        .find_map(|o| match o {
            Operation::Create { object: Object::NatRule(r) } if r.name.ends_with("second-tcp") => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert!(matches!(rule.destination_translation, Some(DestinationTranslation::Dynamic { port: Some(8443), .. })));
}

#[test]
fn contested_label_port_goes_to_the_oldest_then_by_identity_and_never_flaps() {
    let a_old = created(svc("default", "a", "82"), "2026-01-01T00:00:00Z");
    let b_new = created(svc("default", "b", "82"), "2026-01-02T00:00:00Z");
    // Equal instants written differently: a tie, broken by cluster/namespace/name.
    let tie_x = created(svc("zeta", "x", "83"), "2026-01-01T01:00:00+01:00");
    let tie_y = created(svc("alpha", "y", "83"), "2026-01-01T00:00:00Z");
    // Across clusters: the older one in the later-named cluster wins.
    let early_blog = created(svc("default", "site", "84"), "2025-06-01T00:00:00Z");
    let late_shop = created(svc("default", "c", "84"), "2026-06-01T00:00:00Z");
    // A pending winner still holds its port (so readiness cannot flip the winner).
    let mut pending_old = created(svc("default", "p-old", "85"), "2025-01-01T00:00:00Z");
    pending_old.lb_hostname = None;
    let ready_new = created(svc("default", "p-new", "85"), "2026-01-01T00:00:00Z");

    let f = facts(
        vec![
            cluster("shop", &[], vec![b_new, a_old, tie_x, tie_y, late_shop, pending_old, ready_new]),
            cluster("blog", &[], vec![early_blog]),
        ],
        vec![],
    );
    let p = run(&f, &Observed::default());
    let state = |ns: &str, n: &str| status(&p, ns, n).state;
    assert_eq!(state("default", "a"), ServiceState::Planned);
    assert_eq!(state("default", "b"), ServiceState::Conflict);
    assert!(status(&p, "default", "b").reason.contains("shop/default/a"), "{:?}", status(&p, "default", "b"));
    assert_eq!(state("alpha", "y"), ServiceState::Planned);
    assert_eq!(state("zeta", "x"), ServiceState::Conflict);
    assert_eq!(state("default", "c"), ServiceState::Conflict);
    assert_eq!(status(&p, "default", "site").state, ServiceState::Planned);
    assert_eq!(state("default", "p-old"), ServiceState::Pending);
    assert_eq!(state("default", "p-new"), ServiceState::Conflict);
    assert_eq!(p.problems.iter().filter(|x| x.kind == ProblemKind::PortConflict).count(), 4);

    // Stability: reordering the facts changes nothing, and re-planning the result is a no-op.
    let mut shuffled = f.clone();
    shuffled.clusters.reverse();
    for c in &mut shuffled.clusters {
        c.services.reverse();
    }
    assert_eq!(run(&shuffled, &Observed::default()), p);
    let observed = converge(&f, &Observed::default());
    assert!(run(&shuffled, &observed).is_noop());
}

#[test]
fn cluster_limit_duplicate_and_invalid_clusters_are_reported() {
    let mut s = settings();
    s.max_clusters = 2;
    let f = facts(
        vec![
            cluster("c", &["10.3.0.0/16"], vec![svc("default", "web", "83")]),
            cluster("a", &["10.1.0.0/16"], vec![svc("default", "web", "81")]),
            cluster("b", &["10.2.0.0/16"], vec![]),
            cluster("bad.name", &[], vec![svc("default", "web", "84")]),
            cluster("a", &["10.9.0.0/16"], vec![]),
        ],
        vec![],
    );
    let p = plan(&s, &f, &Observed::default()).unwrap();
    let managed: Vec<&str> = p.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(managed, vec!["a", "b"]);
    let kinds: Vec<(String, ProblemKind)> = p.problems.iter().map(|x| (x.subject.clone(), x.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            ("a".into(), ProblemKind::DuplicateCluster),
            ("bad.name".into(), ProblemKind::InvalidCluster),
            ("c".into(), ProblemKind::TooManyClusters),
        ]
    );
    let c_web = p.services.iter().find(|x| x.cluster == "c").unwrap();
    assert_eq!((c_web.state, c_web.port), (ServiceState::Invalid, Some(83)));
    assert!(c_web.reason.contains("max_clusters"));
    assert_eq!(p.services.iter().find(|x| x.cluster == "bad.name").unwrap().state, ServiceState::Invalid);
    // The two "a" entries are merged.
    assert_eq!(
        op_names(&p, Kind::NatRule),
        vec!["prod.in.a.default.web", "prod.out.a.10.1.0.0_16", "prod.out.a.10.9.0.0_16", "prod.out.b.10.2.0.0_16"]
    );
}

#[test]
fn bad_subnets_and_firewalls_are_skipped_with_a_report() {
    let f = facts(
        vec![
            cluster("a", &["10.1.0.0/16", "10.1.0.0/16", "not-a-cidr", "10.1.2.3/16", "2001:db8::/32"], vec![]),
            cluster("b", &["10.1.0.0/16", "10.2.0.0/16"], vec![]),
        ],
        vec![fw("i-bad", "10.0.1.0"), fw("i-host", "10.0.1.5/24"), fw("i-narrow", "10.0.1.0/31"), fw("i-ok", "10.0.2.0/24")],
    );
    let p = run(&f, &Observed::default());
    let kinds: Vec<(String, ProblemKind)> = p.problems.iter().map(|x| (x.subject.clone(), x.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            ("a/subnet-a-2".into(), ProblemKind::InvalidSubnet),
            ("a/subnet-a-3".into(), ProblemKind::InvalidSubnet),
            ("a/subnet-a-4".into(), ProblemKind::InvalidSubnet),
            ("b/subnet-b-0".into(), ProblemKind::DuplicateSubnet),
            ("i-bad".into(), ProblemKind::InvalidFirewall),
            ("i-host".into(), ProblemKind::InvalidFirewall),
            ("i-narrow".into(), ProblemKind::InvalidFirewall),
        ]
    );
    assert_eq!(op_names(&p, Kind::NatRule), vec!["prod.out.a.10.1.0.0_16", "prod.out.b.10.2.0.0_16"]);
    assert_eq!(op_names(&p, Kind::StaticRoute).len(), 2);
}

#[test]
fn long_names_fit_the_limits_are_safe_and_unique() {
    let ns = "n".repeat(63);
    let long_cluster = format!("c{}", "l".repeat(99));
    let mut services = Vec::new();
    // Names sharing a long head so truncation alone would collide.
    for (i, suffix) in ["a", "b", "c"].iter().enumerate() {
        let mut s = svc(&ns, &format!("{}{suffix}", "s".repeat(62)), &(1000 + i).to_string());
        s.lb_hostname = Some(format!("internal-{i}.elb.us-west-2.amazonaws.com"));
        services.push(s);
    }
    let f = facts(
        vec![cluster(&long_cluster, &["192.168.100.128/25", "192.168.100.0/25"], services)],
        vec![fw("i-1", "192.168.200.0/24"), fw("i-2", "192.168.201.0/24")],
    );
    let p = run(&f, &Observed::default());
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    let limit = |k: Kind| match k {
        Kind::Tag => TAG_NAME_MAX,
        Kind::StaticRoute => ROUTE_NAME_MAX,
        _ => NAME_MAX,
    };
    let mut seen = HashSet::new();
    for op in &p.operations {
        let n = op.name();
        assert!(n.len() <= limit(op.kind()) && is_safe_name(n), "{:?} {n} ({})", op.kind(), n.len());
        assert!(seen.insert((op.kind(), n.to_owned())), "duplicate {n}");
    }
    assert_eq!(op_names(&p, Kind::Address).len(), 3);
    assert!(op_names(&p, Kind::NatRule).iter().all(|n| n.starts_with("prod.")), "deployment stays in rule names");
    let tag = &p.clusters[0].tag;
    assert!(tag.starts_with("pano-eks.prod.") && tag.len() <= TAG_NAME_MAX, "{tag}");
    // Deterministic, and still a no-op once applied.
    assert_eq!(run(&f, &Observed::default()), p);
    let observed = converge(&f, &Observed::default());
    assert!(run(&f, &observed).is_noop());
}

#[test]
fn foreign_entries_are_never_touched_even_with_our_names() {
    let mut observed = converge(&shop(), &Observed::default());
    // Look-alikes: our naming pattern, but no (or not all) ownership tags.
    observed.addresses.push(foreign_address("prod.shop.default.gone", &[]));
    observed.addresses.push(foreign_address("prod.shop.default.half", &["pano-eks"]));
    observed.addresses.push(foreign_address("prod.shop.default.other-half", &["pano-eks.prod.shop"]));
    observed.tags.push(Tag { name: "pano-eks.prod.old".into(), color: None, comments: Some("hand made".into()), unmodelled: vec![] });
    observed.static_routes.push(StaticRoute {
        name: "pke-zz-10.0.0.0_8".into(),
        destination: "10.0.0.0/8".into(),
        nexthop: Some(NextHop::Other("<discard/>".into())),
        interface: None,
        metric: 10,
        admin_dist: None,
        unmodelled: vec![],
    });
    let p = run(&shop(), &observed);
    assert!(p.is_noop(), "{:#?}", p.operations);
    // Removing every cluster still leaves them alone.
    let p = run(&facts(vec![], vec![]), &observed);
    let touched: HashSet<&str> = p.operations.iter().map(|o| o.name()).collect();
    for n in ["prod.shop.default.gone", "prod.shop.default.half", "prod.shop.default.other-half", "pano-eks.prod.old", "pke-zz-10.0.0.0_8"]
    {
        assert!(!touched.contains(n), "{n} touched");
    }
}

#[test]
fn desired_name_held_by_a_foreign_entry_is_a_conflict_and_not_written() {
    let f =
        facts(vec![cluster("shop", &["192.168.110.0/24"], vec![svc("default", "frontend", "82"), svc("default", "cart", "83")])], vec![]);
    let mut observed = Observed::default();
    observed.addresses.push(foreign_address("prod.shop.default.frontend", &["corp"]));
    observed.nat_rules.push(NatRule {
        name: "prod.out.shop.192.168.110.0_24".into(),
        from: vec!["trust".into()],
        to: "untrust".into(),
        source: vec!["192.168.110.0/24".into()],
        destination: vec!["any".into()],
        service: "any".into(),
        to_interface: None,
        source_translation: Some(SourceTranslation::Other("<static-ip/>".into())),
        destination_translation: None,
        description: None,
        tags: vec![],
        disabled: false,
        unmodelled: vec![],
        uuid: None,
    });
    let p = run(&f, &observed);
    let st = status(&p, "default", "frontend");
    assert_eq!(st.state, ServiceState::Conflict);
    assert!(
        st.reason.contains("address \"prod.shop.default.frontend\"") && st.reason.contains("not owned by deployment prod"),
        "{}",
        st.reason
    );
    let conflicts: Vec<&str> = p.problems.iter().filter(|x| x.kind == ProblemKind::NameConflict).map(|x| x.subject.as_str()).collect();
    assert_eq!(conflicts, vec!["shop/default/frontend", "shop/subnet-shop-0"]);
    // None of frontend's three objects, nor the outbound rule, is written; cart is.
    let written: Vec<&str> = p.operations.iter().map(|o| o.name()).collect();
    assert!(!written.iter().any(|n| n.contains("frontend") || *n == "prod.tcp-82" || n.starts_with("prod.out.")), "{written:?}");
    assert!(written.contains(&"prod.in.shop.default.cart"));
    assert_eq!(p.clusters[0].subnets[0].outbound_rule, None);
    assert!(deletes(&p).is_empty());
}

#[test]
fn removed_cluster_is_garbage_collected_and_other_deployments_are_untouched() {
    let two = facts(
        vec![
            cluster("shop", &["192.168.110.0/24"], vec![svc("default", "frontend", "82")]),
            cluster("blog", &["192.168.120.0/24"], vec![svc("default", "site", "84")]),
        ],
        vec![fw("i-1", "192.168.2.0/24")],
    );
    let mut observed = converge(&two, &Observed::default());
    // Another deployment ("dev") in the same device group and template.
    let dev = plan(&PlanSettings::new("dev", "eks-dg", "eks-tpl"), &two, &Observed::default()).unwrap();
    let before_dev = observed.len();
    let dev_only: Vec<Operation> = dev.operations.into_iter().filter(|o| o.name() != "pano-eks").collect();
    observed.apply(&dev_only);
    assert!(observed.len() > before_dev);

    let only_shop = facts(vec![two.clusters[0].clone()], two.firewalls.clone());
    let p = run(&only_shop, &observed);
    assert!(p.operations.iter().all(|o| matches!(o, Operation::Delete { .. })), "{:#?}", p.operations);
    let route = run(&two, &Observed::default()).clusters.iter().find(|c| c.name == "blog").unwrap().subnets[0].routes[0].clone();
    assert_eq!(
        deletes(&p),
        vec![
            (Kind::NatRule, "prod.in.blog.default.site".into()),
            (Kind::NatRule, "prod.out.blog.192.168.120.0_24".into()),
            (Kind::StaticRoute, route),
            (Kind::Address, "prod.blog.default.site".into()),
            (Kind::Service, "prod.tcp-84".into()),
            (Kind::Tag, "pano-eks.prod.blog".into()),
        ]
    );
    assert!(p.device_group_changed && p.template_changed);
    // Nothing of dev's is in the plan; applying it leaves dev's entries intact.
    assert!(p.operations.iter().all(|o| !o.name().starts_with("dev.") && !o.name().starts_with("pano-eks.dev.")));
    let mut after = observed.clone();
    after.apply(&p.operations);
    assert!(after.addresses.iter().any(|a| a.name == "dev.blog.default.site"));
    assert!(run(&only_shop, &after).is_noop());

    // Everything gone: our entries and tags are deleted; the marker stays while dev uses it.
    let p = run(&facts(vec![], vec![]), &after);
    let gone = deletes(&p);
    assert!(gone.contains(&(Kind::Tag, "pano-eks.prod.shop".into())));
    assert!(!gone.contains(&(Kind::Tag, "pano-eks".into())), "dev still references the marker");
    assert!(gone.iter().all(|(_, n)| !n.starts_with("dev.") && !n.starts_with("pano-eks.dev")));
    // Alone, the marker goes too.
    let alone = converge(&shop(), &Observed::default());
    assert!(deletes(&run(&facts(vec![], vec![]), &alone)).contains(&(Kind::Tag, "pano-eks".into())));
}

#[test]
fn tags_are_deleted_only_when_nothing_that_stays_references_them() {
    let two = facts(
        vec![cluster("shop", &[], vec![svc("default", "frontend", "82")]), cluster("blog", &[], vec![svc("default", "site", "84")])],
        vec![],
    );
    let mut observed = converge(&two, &Observed::default());
    // A hand-made object labelled with our blog tag (but not owned: no marker).
    observed.addresses.push(foreign_address("corp-blog-db", &["pano-eks.prod.blog"]));
    let p = run(&facts(vec![two.clusters[1].clone()], vec![]), &observed); // drop shop
    let tag_deletes: Vec<String> = deletes(&p).into_iter().filter(|(k, _)| *k == Kind::Tag).map(|(_, n)| n).collect();
    assert_eq!(tag_deletes, vec!["pano-eks.prod.shop".to_owned()]);
    let p = run(&facts(vec![], vec![]), &observed); // drop both
    let tag_deletes: Vec<String> = deletes(&p).into_iter().filter(|(k, _)| *k == Kind::Tag).map(|(_, n)| n).collect();
    assert_eq!(tag_deletes, vec!["pano-eks".to_owned(), "pano-eks.prod.shop".to_owned()], "blog tag still referenced");
}

#[test]
fn operations_are_ordered_upserts_by_dependency_then_deletes_in_reverse() {
    let old = facts(
        vec![
            cluster("shop", &["192.168.110.0/24"], vec![svc("default", "frontend", "82")]),
            cluster("old", &["192.168.130.0/24"], vec![svc("default", "legacy", "90")]),
        ],
        vec![fw("i-1", "192.168.2.0/24")],
    );
    let observed = converge(&old, &Observed::default());
    let new = facts(
        vec![
            cluster(
                "shop",
                &["192.168.110.0/24", "192.168.111.0/24"],
                vec![svc("default", "frontend", "82"), svc("default", "cart", "83")],
            ),
            cluster("new", &["192.168.140.0/24"], vec![svc("default", "api", "91")]),
        ],
        vec![fw("i-1", "192.168.2.0/24"), fw("i-2", "192.168.3.0/24")],
    );
    let p = run(&new, &observed);
    let rank = |o: &Operation| -> u8 {
        let up = !matches!(o, Operation::Delete { .. });
        match (up, o.kind()) {
            (true, Kind::Tag) => 0,
            (true, Kind::Address | Kind::Service) => 1,
            (true, Kind::NatRule | Kind::StaticRoute) => 2,
            (false, Kind::NatRule | Kind::StaticRoute) => 3,
            (false, Kind::Address | Kind::Service) => 4,
            (false, Kind::Tag) => 5,
            // Security kinds (off here): their own order is tested in core/tests/security.rs.
            (_, Kind::AddressGroup | Kind::SecurityRule) => unreachable!("security is off"),
        }
    };
    let ranks: Vec<u8> = p.operations.iter().map(rank).collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{ranks:?}");
    assert!(ranks.contains(&0) && ranks.contains(&5), "{ranks:?}");
    // Every rule is deleted before the address and service it references.
    let pos = |kind: Kind, name: &str| p.operations.iter().position(|o| o.kind() == kind && o.name() == name).unwrap();
    assert!(pos(Kind::NatRule, "prod.in.old.default.legacy") < pos(Kind::Address, "prod.old.default.legacy"));
    assert!(pos(Kind::NatRule, "prod.in.old.default.legacy") < pos(Kind::Service, "prod.tcp-90"));
    let mut after = observed.clone();
    after.apply(&p.operations);
    assert!(run(&new, &after).is_noop());
}

#[test]
fn content_changes_are_in_place_updates() {
    let observed = converge(&shop(), &Observed::default());
    let mut f = shop();
    f.clusters[0].services[0].lb_hostname = Some("internal-new-2.elb.us-west-2.amazonaws.com".into());
    let p = run(&f, &observed);
    assert_eq!(p.operations.len(), 1, "{:#?}", p.operations);
    let Operation::Update { object: Object::Address(a) } = &p.operations[0] else { panic!("{:?}", p.operations[0]) };
    assert_eq!(a.value, AddressValue::Fqdn("internal-new-2.elb.us-west-2.amazonaws.com".into()));
    assert!(p.device_group_changed && !p.template_changed);
    assert_eq!(status(&p, "default", "frontend").state, ServiceState::Planned);

    // Target port change: only the rule.
    let mut f = shop();
    f.clusters[0].services[0].ports[0].port = 8080;
    let p = run(&f, &observed);
    assert_eq!(
        p.operations.iter().map(|o| (o.kind(), matches!(o, Operation::Update { .. }))).collect::<Vec<_>>(),
        vec![(Kind::NatRule, true)]
    );

    // Label port change: new service object, rule updated, old service deleted after it.
    let mut f = shop();
    f.clusters[0].services[0].labels.insert("panw-tg-port".into(), "83".into());
    let p = run(&f, &observed);
    let summary: Vec<(Kind, String, &str)> = p
        .operations
        .iter()
        .map(|o| {
            let verb = match o {
                Operation::Create { .. } => "create",
                Operation::Update { .. } => "update",
                Operation::Delete { .. } => "delete",
                Operation::Move { .. } => "move",
            };
            (o.kind(), o.name().to_owned(), verb)
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (Kind::Service, "prod.tcp-83".into(), "create"),
            (Kind::NatRule, "prod.in.shop.default.frontend".into(), "update"),
            (Kind::Service, "prod.tcp-82".into(), "delete"),
        ]
    );

    // Stray content on an owned entry is rewritten; the same on a foreign entry is left alone.
    let mut drifted = observed.clone();
    drifted.addresses[0].unmodelled.push("<disable-override>yes</disable-override>".into());
    drifted.static_routes[0].admin_dist = Some(20);
    let p = run(&shop(), &drifted);
    assert_eq!(p.counts(), (0, 2, 0), "{:#?}", p.operations);
}

#[test]
fn a_rule_update_carries_the_observed_uuid_and_a_uuid_alone_is_no_change() {
    let mut observed = converge(&shop(), &Observed::default());
    for (i, r) in observed.nat_rules.iter_mut().enumerate() {
        r.uuid = Some(format!("uuid-{i}"));
    }
    // PAN-OS's uuid on every rule: nothing to write.
    assert!(run(&shop(), &observed).is_noop());
    // Inbound rule update (target port) and outbound rule update (drifted): both keep their uuid.
    let mut f = shop();
    f.clusters[0].services[0].ports[0].port = 8080;
    let out = observed.nat_rules.iter().position(|r| r.name.starts_with("prod.out.")).unwrap();
    observed.nat_rules[out].disabled = true;
    let p = run(&f, &observed);
    let updated: Vec<(String, Option<String>)> = p
        .operations
        .iter()
        .filter_map(|o| match o {
            Operation::Update { object: Object::NatRule(r) } => Some((r.name.clone(), r.uuid.clone())),
            _ => None,
        })
        .collect();
    let want: Vec<(String, Option<String>)> = observed
        .nat_rules
        .iter()
        .filter(|r| r.name == "prod.in.shop.default.frontend" || r.name.starts_with("prod.out."))
        .map(|r| (r.name.clone(), r.uuid.clone()))
        .collect();
    let (mut updated, mut want) = (updated, want);
    updated.sort();
    want.sort();
    assert_eq!(updated, want);
    assert!(want.iter().all(|(_, u)| u.is_some()));
    // A create has none: PAN-OS assigns it.
    let p = run(&shop(), &Observed::default());
    assert!(p.operations.iter().all(|o| !matches!(o, Operation::Create { object: Object::NatRule(r) } if r.uuid.is_some())));
}

#[test]
fn settings_are_validated() {
    for bad in ["", "Prod", "pro_d", "-prod", "prod-", "a.b", "abcdefghijklmnopqrstu"] {
        let mut s = settings();
        s.deployment = bad.into();
        assert!(matches!(plan(&s, &shop(), &Observed::default()), Err(SettingsError::Deployment(_))), "{bad:?}");
    }
    let mut s = settings();
    s.device_group = " ".into();
    assert_eq!(plan(&s, &shop(), &Observed::default()), Err(SettingsError::Empty("device_group")));
    let mut s = settings();
    s.max_clusters = 0;
    assert_eq!(plan(&s, &shop(), &Observed::default()), Err(SettingsError::MaxClusters));
    // Non-default zones, interfaces and label key flow through.
    let mut s = settings();
    s.label_key = "fw-port".into();
    s.trust_interface = "ethernet1/3".into();
    let mut f = shop();
    let labels = &mut f.clusters[0].services[0].labels;
    let v = labels.remove("panw-tg-port").unwrap();
    labels.insert("fw-port".into(), v);
    let p = plan(&s, &f, &Observed::default()).unwrap();
    assert_eq!(status(&p, "default", "frontend").state, ServiceState::Planned);
    assert!(
        p.operations
            .iter()
            .any(|o| matches!(o, Operation::Create { object: Object::StaticRoute(r) } if r.interface.as_deref() == Some("ethernet1/3")))
    );
}

#[test]
fn entries_a_foreign_rule_still_uses_are_kept_with_a_report() {
    let mut observed = converge(&shop(), &Observed::default());
    observed.nat_rules.push(NatRule {
        name: "corp-uses-ours".into(),
        from: vec!["untrust".into()],
        to: "untrust".into(),
        source: vec!["any".into()],
        destination: vec!["prod.shop.default.frontend".into()],
        service: "prod.tcp-82".into(),
        to_interface: None,
        source_translation: None,
        destination_translation: None,
        description: None,
        tags: vec!["corp".into()],
        disabled: false,
        unmodelled: vec![],
        uuid: None,
    });
    let p = run(&facts(vec![], vec![]), &observed);
    let gone = deletes(&p);
    assert!(!gone.iter().any(|(k, _)| matches!(k, Kind::Address | Kind::Service)), "{gone:?}");
    assert!(gone.contains(&(Kind::NatRule, "prod.in.shop.default.frontend".into())));
    assert!(!gone.iter().any(|(k, _)| *k == Kind::Tag), "kept entries still carry the tags: {gone:?}");
    // Reported against the Service the entries belonged to, naming what holds them.
    let in_use: Vec<(&str, &str)> =
        p.problems.iter().filter(|x| x.kind == ProblemKind::InUse).map(|x| (x.subject.as_str(), x.message.as_str())).collect();
    assert_eq!(in_use.len(), 2, "{in_use:#?}");
    assert!(in_use.iter().all(|(s, _)| *s == "shop/default/frontend"), "{in_use:#?}");
    assert!(in_use[0].1.contains("\"prod.shop.default.frontend\"") && in_use[1].1.contains("\"prod.tcp-82\""), "{in_use:#?}");
    assert!(in_use.iter().all(|(_, m)| m.contains("NAT rule \"corp-uses-ours\" (device group eks-dg pre-rulebase)")), "{in_use:#?}");
    let mut after = observed.clone();
    after.apply(&p.operations);
    assert!(run(&facts(vec![], vec![]), &after).is_noop());
}

#[test]
fn a_name_taken_over_by_a_foreign_entry_holds_what_we_already_own() {
    let mut observed = converge(&shop(), &Observed::default());
    // Someone replaced our address with their own entry of the same name.
    let i = observed.addresses.iter().position(|a| a.name == "prod.shop.default.frontend").unwrap();
    observed.addresses[i] = foreign_address("prod.shop.default.frontend", &["corp"]);
    let p = run(&shop(), &observed);
    assert!(p.is_noop(), "our rule and service are held, the foreign address untouched: {:#?}", p.operations);
    let st = status(&p, "default", "frontend");
    assert_eq!(st.state, ServiceState::Conflict);
    assert!(st.reason.contains("left as they are"), "{}", st.reason);
    // Once the clash is gone, the Service is simply written again.
    observed.addresses.remove(i);
    let p = run(&shop(), &observed);
    assert_eq!(p.counts(), (1, 0, 0), "{:#?}", p.operations);
}

#[test]
fn a_frozen_clusters_service_objects_are_held_while_the_others_converge() {
    // Two clusters protected, then shop's API cannot be listed: its Services are unknown.
    let both = facts(
        vec![
            cluster("shop", &["192.168.110.0/24"], vec![svc("default", "web", "82")]),
            cluster("blog", &["192.168.120.0/24"], vec![svc("default", "api", "83")]),
        ],
        vec![fw("i-a", "192.168.2.0/24")],
    );
    let state = converge(&both, &Observed::default());
    let mut unknown = both.clone();
    unknown.clusters[0].services.clear();
    unknown.clusters[1].services.push(svc("default", "new", "84"));

    // Without the freeze, "no Services" would delete shop's objects.
    let careless = run(&unknown, &state);
    assert!(careless.operations.iter().any(|o| matches!(o, Operation::Delete { name, .. } if name.contains("shop.default.web"))));

    unknown.frozen_clusters = vec!["shop".into()];
    let p = run(&unknown, &state);
    assert!(
        !p.operations.iter().any(|o| matches!(o, Operation::Delete { .. })),
        "nothing of the frozen cluster is deleted: {:#?}",
        p.operations
    );
    assert!(p.operations.iter().any(|o| o.name().contains("blog.default.new")), "the other cluster keeps converging");
    // shop's subnet entries (from AWS) are still managed: its outbound rule and route stay desired.
    let after = converge(&unknown, &state);
    assert!(after.nat_rules.iter().any(|r| r.name.contains("shop.default.web")), "held");
    assert!(after.nat_rules.iter().any(|r| r.name.contains("out.shop")), "outbound rule kept");
}

fn referrer(kind: ReferrerKind, name: &str, location: &str, uses: &[&str], tags: &[&str]) -> Referrer {
    Referrer {
        kind,
        name: name.into(),
        location: location.into(),
        names: uses.iter().map(|s| s.to_string()).collect(),
        tags: tags.iter().map(|s| s.to_string()).collect(),
    }
}

/// Two Services protected; then `frontend` is deleted while entries elsewhere still name its
/// objects. Each row: (case, referrers, entries held as (kind, name), what the problem names).
#[test]
fn entries_referenced_from_rules_groups_descendants_or_shared_are_held_and_reported_against_their_service() {
    use ReferrerKind::*;
    let two = facts(
        vec![cluster("shop", &["192.168.110.0/24"], vec![svc("default", "frontend", "82"), svc("default", "cart", "83")])],
        vec![fw("i-0abc", "192.168.2.0/24")],
    );
    let state = converge(&two, &Observed::default());
    let mut one = two.clone();
    one.clusters[0].services.retain(|s| s.name == "cart");
    let addr = "prod.shop.default.frontend";
    let port = "prod.tcp-82";
    type Row = (&'static str, Vec<Referrer>, Vec<(Kind, &'static str)>, &'static str);
    let rows: Vec<Row> = vec![
        (
            "security rule of another admin in our pre-rulebase",
            vec![referrer(SecurityRule, "allow-web", "device group eks-dg pre-rulebase", &["any", addr, "trust"], &[])],
            vec![(Kind::Address, addr)],
            "security rule \"allow-web\" (device group eks-dg pre-rulebase)",
        ),
        (
            "address group in a descendant device group",
            vec![referrer(AddressGroup, "web-servers", "device group eks-west", &[addr], &["corp"])],
            vec![(Kind::Address, addr)],
            "address group \"web-servers\" (device group eks-west)",
        ),
        (
            "service group in shared",
            vec![referrer(ServiceGroup, "web-ports", "shared", &[port], &[])],
            vec![(Kind::Service, port)],
            "service group \"web-ports\" (shared)",
        ),
        (
            "NAT rule of a post-rulebase names both",
            vec![referrer(NatRule, "corp-dnat", "device group eks-dg post-rulebase", &[addr, port], &[])],
            vec![(Kind::Address, addr), (Kind::Service, port)],
            "NAT rule \"corp-dnat\" (device group eks-dg post-rulebase)",
        ),
        (
            "an entry carrying our own marks holds nothing",
            vec![referrer(SecurityRule, "ours", "device group eks-dg pre-rulebase", &[addr], &["pano-eks", "pano-eks.prod.shop"])],
            vec![],
            "",
        ),
        ("nothing references them", vec![], vec![], ""),
    ];
    for (case, referrers, held, names) in rows {
        let mut observed = state.clone();
        observed.referrers = referrers;
        let p = run(&one, &observed);
        let gone = deletes(&p);
        for (kind, name) in [(Kind::NatRule, "prod.in.shop.default.frontend"), (Kind::Address, addr), (Kind::Service, port)] {
            let kept = held.contains(&(kind, name));
            assert_eq!(!gone.contains(&(kind, name.to_string())), kept, "{case}: {kind:?} {name} held={kept}: {gone:?}");
        }
        let in_use: Vec<&Problem> = p.problems.iter().filter(|x| x.kind == ProblemKind::InUse).collect();
        assert_eq!(in_use.len(), held.len(), "{case}: {in_use:#?}");
        for pr in &in_use {
            assert_eq!(pr.subject, "shop/default/frontend", "{case}: reported against the deleted Service");
            assert!(pr.message.contains(names) && pr.message.contains("not deleted"), "{case}: {}", pr.message);
        }
        // The other Service is untouched and protected; nothing else is held back.
        assert_eq!(status(&p, "default", "cart").state, ServiceState::Protected, "{case}");
        assert!(!gone.iter().any(|(k, _)| *k == Kind::Tag), "{case}: the cluster's tags stay in use: {gone:?}");
        // Stable while the reference stays; once it goes, the first sync deletes what was held.
        let mut after = observed.clone();
        after.apply(&p.operations);
        assert!(run(&one, &after).is_noop(), "{case}: a held entry is not retried while referenced");
        after.referrers.clear();
        let p = run(&one, &after);
        let gone: Vec<(Kind, String)> = deletes(&p);
        assert_eq!(gone.len(), held.len(), "{case}: {gone:?}");
        assert!(p.problems.iter().all(|x| x.kind != ProblemKind::InUse), "{case}");
        after.apply(&p.operations);
        assert!(run(&one, &after).is_noop(), "{case}");
    }
}

#[test]
fn a_tag_a_foreign_rule_or_group_still_names_is_held_and_reported() {
    let state = converge(&shop(), &Observed::default());
    let none = facts(vec![], vec![]);
    let careless = run(&none, &state);
    assert!(deletes(&careless).contains(&(Kind::Tag, "pano-eks.prod.shop".into())), "without a reference the cluster tag goes");
    for r in [
        referrer(ReferrerKind::SecurityRule, "tagged-by-us", "shared post-rulebase", &["any"], &["pano-eks.prod.shop"]),
        referrer(ReferrerKind::AddressGroup, "dynamic", "device group eks-dg", &["pano-eks.prod.shop"], &[]),
    ] {
        let mut observed = state.clone();
        observed.referrers = vec![r.clone()];
        let p = run(&none, &observed);
        let gone = deletes(&p);
        assert!(!gone.contains(&(Kind::Tag, "pano-eks.prod.shop".into())), "{r:?}: {gone:?}");
        assert!(gone.contains(&(Kind::Address, "prod.shop.default.frontend".into())), "the objects still go: {gone:?}");
        let held: Vec<&Problem> = p.problems.iter().filter(|x| x.kind == ProblemKind::InUse).collect();
        assert_eq!(held.len(), 1, "{held:#?}");
        assert_eq!(held[0].subject, "pano-eks.prod.shop");
        assert!(held[0].message.contains(&format!("{:?}", r.name)), "{}", held[0].message);
    }
}

#[test]
fn an_internet_facing_service_is_exposed_with_the_reason_and_the_others_are_not() {
    let ann = |mut s: ServiceFacts, pairs: &[(&str, &str)]| {
        s.annotations = pairs.iter().map(|(k, v)| (format!("service.beta.kubernetes.io/aws-load-balancer-{k}"), (*v).to_owned())).collect();
        s
    };
    let f = facts(
        vec![cluster(
            "shop",
            &["192.168.110.0/24"],
            vec![
                ann(svc("default", "open", "82"), &[("type", "external"), ("scheme", "internet-facing")]),
                ann(svc("default", "closed", "83"), &[("type", "external"), ("scheme", "internal")]),
                ann(svc("default", "legacy", "84"), &[("internal", "true")]),
                // No annotation: the cloud provider's default, internet-facing...
                ann(svc("default", "plain", "85"), &[]),
                // ...unless AWS reports its load balancer internal.
                ann(svc("default", "reported", "86"), &[]),
            ],
        )],
        vec![fw("i-1", "192.168.2.0/24")],
    );
    let mut f = f;
    f.load_balancers = vec![pano_eks_core::LoadBalancerFacts {
        name: "k8s-default-reported".into(),
        dns_name: "internal-reported-1.elb.us-west-2.amazonaws.com".into(),
        scheme: "internal".into(),
    }];
    let states = |p: &Plan| p.services.iter().map(|s| (s.name.clone(), s.state)).collect::<Vec<_>>();
    let want = |exposed_or_planned: ServiceState| {
        vec![
            ("closed".to_owned(), exposed_or_planned),
            ("legacy".to_owned(), exposed_or_planned),
            ("open".to_owned(), ServiceState::Exposed),
            ("plain".to_owned(), ServiceState::Exposed),
            ("reported".to_owned(), exposed_or_planned),
        ]
    };
    let p = run(&f, &Observed::default());
    assert_eq!(states(&p), want(ServiceState::Planned));
    // Its objects are still written (the firewall path works); only its state says the truth.
    assert!(p.operations.iter().any(|o| o.name() == "prod.in.shop.default.open"), "{:#?}", p.operations);
    let open = p.services.iter().find(|s| s.name == "open").unwrap();
    assert!(open.reason.contains("internet-facing") && open.reason.contains("aws-load-balancer-scheme"), "{}", open.reason);
    let problems: Vec<_> = p.problems.iter().filter(|x| x.kind == ProblemKind::Exposed).map(|x| x.subject.as_str()).collect();
    assert_eq!(problems, ["shop/default/open", "shop/default/plain"]);
    let plain = p.services.iter().find(|s| s.name == "plain").unwrap();
    assert!(plain.reason.contains("aws-load-balancer-internal is absent"), "{}", plain.reason);
    // Converged: still exposed, and a resync writes nothing.
    let observed = converge(&f, &Observed::default());
    let p = run(&f, &observed);
    assert!(p.is_noop(), "{:#?}", p.operations);
    assert_eq!(states(&p), want(ServiceState::Protected));
}

use super::*;

fn settings() -> PrepareSettings {
    PrepareSettings {
        deployment: "demo".into(),
        template: "T".into(),
        template_stack: "S".into(),
        device_group: "DG".into(),
        virtual_router: "vr-default".into(),
        untrust_interface: "ethernet1/1".into(),
        trust_interface: "ethernet1/2".into(),
        untrust_zone: "untrust".into(),
        trust_zone: "trust".into(),
        dns_primary: AWS_DNS.into(),
        untrust_subnets: vec!["192.168.11.0/24".into(), "192.168.1.0/24".into()],
        allow_all: false,
        adopt: false,
    }
}

/// Applies writes to a tree the way PAN-OS `set`/`edit`/`delete` do (merge, replace, remove).
fn apply(root: &mut Node, writes: &[Write]) {
    fn at<'a>(n: &'a mut Node, path: &[Seg]) -> &'a mut Node {
        let mut cur = n;
        for s in path {
            let i = match cur.children.iter().position(|c| c.seg() == *s) {
                Some(i) => i,
                None => {
                    let c = match s {
                        Seg::Tag(x) => Node::new(x),
                        Seg::Entry(x) => Node::entry(x),
                        Seg::Member(x) => Node::member(x),
                        Seg::Value(_) => unreachable!(),
                    };
                    cur.children.push(c);
                    cur.children.len() - 1
                }
            };
            cur = &mut cur.children[i];
        }
        cur
    }
    fn merge(into: &mut Node, el: &Node) {
        match into.children.iter_mut().find(|c| c.seg() == el.seg()) {
            Some(c) if el.children.is_empty() => c.text = el.text.clone(),
            Some(c) => {
                for k in &el.children {
                    merge(c, k);
                }
            }
            None => into.children.push(el.clone()),
        }
    }
    for w in writes {
        match w {
            Write::Set { parent, element } => merge(at(root, parent), element),
            Write::Edit { path, element } => *at(root, path) = element.clone(),
            Write::Delete { path } => {
                let (last, parent) = path.split_last().unwrap();
                let p = at(root, parent);
                p.children.retain(|c| c.seg() != *last);
            }
        }
    }
}

fn statuses(p: &PreparePlan) -> Vec<(String, Status)> {
    p.checks.iter().map(|c| (c.item.describe(), c.status.clone())).collect()
}

#[test]
fn a_fresh_panorama_gets_everything_and_a_second_run_nothing() {
    let s = settings();
    let mut root = Node::new("devices");
    let p = plan_prepare(&s, &root);
    assert!(p.checks.iter().all(|c| c.status == Status::Create), "{:#?}", statuses(&p));
    assert_eq!(p.checks.len(), 4 + 1 + 2 + 4 + 3 + 3 + 2);
    apply(&mut root, &p.writes);
    let again = plan_prepare(&s, &root);
    assert!(again.writes.is_empty(), "{:#?}", again.writes);
    assert!(again.checks.iter().all(|c| c.status == Status::Exists), "{:#?}", statuses(&again));
    // The shapes the guide asks for.
    let l = |p: &[Seg]| root.get(p).map(|_| ()).ok_or(());
    let t1 = tpl("T");
    assert_eq!(
        root.text_at(&join(
            t1.clone(),
            &[t("network"), t("interface"), t("ethernet"), e("ethernet1/1"), t("layer3"), t("dhcp-client"), t("create-default-route")]
        ))
        .as_deref(),
        Some("yes")
    );
    assert_eq!(
        root.text_at(&join(
            t1.clone(),
            &[t("network"), t("interface"), t("ethernet"), e("ethernet1/2"), t("layer3"), t("dhcp-client"), t("create-default-route")]
        ))
        .as_deref(),
        Some("no")
    );
    assert_eq!(root.members(&join(vsys("T"), &[t("zone"), e("untrust"), t("network"), t("layer3")])), ["ethernet1/1"]);
    assert_eq!(
        root.members(&join(t1.clone(), &[t("network"), t("virtual-router"), e("vr-default"), t("interface")])),
        ["ethernet1/1", "ethernet1/2"]
    );
    assert_eq!(root.members(&join(vsys("T"), &[t("import"), t("network"), t("virtual-router")])), ["vr-default"]);
    assert_eq!(root.members(&[t("template-stack"), e("S"), t("templates")]), ["T"]);
    assert!(l(&[t("device-group"), e("DG")]).is_ok());
    assert!(l(&[t("device-group"), e("DG"), t("pre-rulebase")]).is_err(), "no allow-all unless asked");
}

/// Every write names its own node (facts §11.1): an `edit` of a full entry or leaf xpath whose
/// element is that node, or a `set` of exactly one `<member>` on the list's own xpath; never
/// a container (`…/zone`) or an enclosing object (`…/zone/entry[@name='z']` for a member).
fn assert_own_xpaths(writes: &[Write]) {
    for w in writes {
        match w {
            Write::Edit { path, element } => {
                assert_eq!(path.last(), Some(&element.seg()), "edit names its element's own node: {w:?}");
                assert!(!element.is_member(), "members are set on their list: {w:?}");
                if element.tag != "entry" {
                    assert!(element.children.is_empty(), "a non-entry edit is a leaf: {w:?}");
                }
            }
            Write::Set { parent, element } => {
                assert!(element.is_member(), "only list members are written with set: {w:?}");
                assert!(matches!(parent.last(), Some(Seg::Tag(_))), "a member's set names the list: {w:?}");
            }
            Write::Delete { path } => {
                assert!(!matches!(path.last(), Some(Seg::Tag(_)) | None), "deletes name an entry or member: {w:?}")
            }
        }
    }
}

#[test]
fn every_write_is_on_the_written_nodes_own_xpath() {
    let s = PrepareSettings { allow_all: true, ..settings() };
    let fresh = plan_prepare(&s, &Node::new("devices"));
    assert!(fresh.writes.len() >= 15, "{:#?}", fresh.writes);
    assert_own_xpaths(&fresh.writes);
    // A zone is created as its entry, then its interface as one member of its layer3 list.
    let zone = join(vsys("T"), &[t("zone"), e("untrust")]);
    assert!(fresh.writes.contains(&Write::Edit {
        path: zone.clone(),
        element: Node::entry("untrust").with(Node::new("network").with(Node::new("layer3")))
    }));
    assert!(fresh.writes.contains(&Write::Set { parent: join(zone, &[t("network"), t("layer3")]), element: Node::member("ethernet1/1") }));
    // Adopting (a DNS leaf, an interface, zone membership, ECMP) stays on own xpaths too.
    let mut root = Node::new("devices");
    let base = tpl("T");
    apply(
        &mut root,
        &[
            Write::Edit {
                path: join(base.clone(), &[t("network"), t("virtual-router"), e("vr-default")]),
                element: Node::entry("vr-default").with(Node::new("interface").with(Node::member("ethernet1/2"))),
            },
            Write::Edit {
                path: join(base.clone(), &[t("deviceconfig"), t("system"), t("dns-setting"), t("servers"), t("primary")]),
                element: Node::leaf("primary", "8.8.8.8"),
            },
        ],
    );
    let adopt = plan_prepare(&PrepareSettings { adopt: true, ..s }, &root);
    assert_own_xpaths(&adopt.writes);
    assert!(adopt.writes.contains(&Write::Edit {
        path: join(base, &[t("network"), t("virtual-router"), e("vr-default"), t("ecmp"), t("enable")]),
        element: Node::leaf("enable", "yes")
    }));
}

#[test]
fn differences_are_reported_and_left_alone_unless_adopted() {
    let s = settings();
    let mut root = Node::new("devices");
    // Someone made ethernet1/1 a static layer-3 interface in zone dmz, a router without ECMP
    // holding ethernet1/2, and another DNS server.
    let base = tpl("T");
    apply(
        &mut root,
        &[
            Write::Set {
                parent: join(base.clone(), &[t("network"), t("interface"), t("ethernet")]),
                element: Node::entry("ethernet1/1").with(Node::new("layer3").with(Node::new("ip").with(Node::entry("10.0.0.1/24")))),
            },
            Write::Set {
                parent: join(vsys("T"), &[t("zone")]),
                element: Node::entry("dmz").with(Node::new("network").with(Node::new("layer3").with(Node::member("ethernet1/1")))),
            },
            Write::Set {
                parent: join(base.clone(), &[t("network"), t("virtual-router")]),
                element: Node::entry("vr-default").with(Node::new("interface").with(Node::member("ethernet1/2"))),
            },
            Write::Set {
                parent: join(base.clone(), &[t("deviceconfig"), t("system"), t("dns-setting"), t("servers")]),
                element: Node::leaf("primary", "8.8.8.8"),
            },
        ],
    );
    let before = root.clone();
    let p = plan_prepare(&s, &root);
    let diffs: Vec<String> = p
        .differences()
        .iter()
        .map(|c| match &c.status {
            Status::Differs(r) => r.clone(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(diffs.len(), 5, "{diffs:#?}");
    assert!(diffs.iter().any(|d| d.starts_with("ethernet1/1 is left alone, so it gets no probe profile")));
    assert!(diffs.iter().any(|d| d.starts_with("primary DNS server is 8.8.8.8")));
    assert!(diffs.iter().any(|d| d.starts_with("ethernet1/1 has static IP addresses")));
    assert!(diffs.iter().any(|d| d.starts_with("ethernet1/1 is in zone dmz, not untrust")));
    assert!(diffs.iter().any(|d| d.starts_with("virtual router vr-default has ECMP disabled")));
    // No write touches what differs.
    apply(&mut root, &p.writes);
    assert_eq!(
        root.get(&join(base.clone(), &[t("network"), t("interface"), t("ethernet"), e("ethernet1/1")])),
        before.get(&join(base.clone(), &[t("network"), t("interface"), t("ethernet"), e("ethernet1/1")]))
    );
    assert_eq!(root.members(&join(vsys("T"), &[t("zone"), e("dmz"), t("network"), t("layer3")])), ["ethernet1/1"]);
    assert_eq!(
        root.text_at(&join(base.clone(), &[t("deviceconfig"), t("system"), t("dns-setting"), t("servers"), t("primary")])).as_deref(),
        Some("8.8.8.8")
    );
    // ethernet1/2 was already in vr-default: exists. ethernet1/1 is not in a router yet: created.
    assert!(p.checks.iter().any(|c| c.item.describe() == "ethernet1/2 in virtual router vr-default" && c.status == Status::Exists));
    assert_eq!(plan_prepare(&s, &root).writes, vec![], "a re-run writes nothing more");

    // --adopt turns them into updates, after which everything matches.
    let adopt = PrepareSettings { adopt: true, ..s.clone() };
    let p = plan_prepare(&adopt, &root);
    assert_eq!(p.counts().3, 4, "{:#?}", statuses(&p));
    apply(&mut root, &p.writes);
    let after = plan_prepare(&s, &root);
    assert!(after.checks.iter().all(|c| c.status == Status::Exists), "{:#?}", statuses(&after));
    assert!(root.members(&join(vsys("T"), &[t("zone"), e("dmz"), t("network"), t("layer3")])).is_empty());
}

/// The load balancers' probe path on the firewall: the untrust interface carries a profile
/// that opens HTTPS (PROBE_PORT) to the UNTRUST subnets only.
#[test]
fn the_untrust_interface_answers_probes_from_the_untrust_subnets_only() {
    let s = settings();
    let mut root = Node::new("devices");
    let p = plan_prepare(&s, &root);
    apply(&mut root, &p.writes);
    let base = tpl("T");
    let eth1 = join(base.clone(), &[t("network"), t("interface"), t("ethernet"), e("ethernet1/1"), t("layer3")]);
    assert_eq!(root.text_at(&join(eth1.clone(), &[t("interface-management-profile")])).as_deref(), Some(PROBE_PROFILE));
    let eth2 = join(base.clone(), &[t("network"), t("interface"), t("ethernet"), e("ethernet1/2"), t("layer3")]);
    assert_eq!(root.text_at(&join(eth2, &[t("interface-management-profile")])), None, "trust gets no profile");
    let prof = join(base.clone(), &[t("network"), t("profiles"), t("interface-management-profile"), e(PROBE_PROFILE)]);
    assert_eq!(root.text_at(&join(prof.clone(), &[t("https")])).as_deref(), Some("yes"));
    assert_eq!(root.entry_names(&join(prof.clone(), &[t("permitted-ip")])), ["192.168.1.0/24", "192.168.11.0/24"], "sorted");
    let n = root.get(&prof).unwrap();
    assert!(PROFILE_SERVICES.iter().all(|svc| n.get(&[t(svc)]).is_none()), "HTTPS only: {n:?}");
    // The DHCP interface itself is unchanged by the binding (it is a separate item).
    assert_eq!(interface_difference(root.get(&eth1[..eth1.len() - 1]).unwrap(), true), None);

    // Another profile on the interface, or wider permitted IPs: reported, adopted on request.
    apply(&mut root, &[Write::Set { parent: eth1.clone(), element: Node::leaf("interface-management-profile", "theirs") }]);
    apply(&mut root, &[Write::Set { parent: join(prof.clone(), &[t("permitted-ip")]), element: Node::entry("0.0.0.0/0") }]);
    let p = plan_prepare(&s, &root);
    let diffs: Vec<String> =
        p.differences().iter().map(|c| if let Status::Differs(r) = &c.status { r.clone() } else { unreachable!() }).collect();
    assert_eq!(diffs.len(), 2, "{diffs:#?}");
    assert!(diffs.iter().any(|d| d.starts_with("ethernet1/1 has interface management profile theirs, not pano-eks-lb-probe")));
    assert!(diffs.iter().any(|d| d.starts_with("profile pano-eks-lb-probe permits 0.0.0.0/0, 192.168.1.0/24, 192.168.11.0/24")));
    let adopt = PrepareSettings { adopt: true, ..s.clone() };
    let p = plan_prepare(&adopt, &root);
    apply(&mut root, &p.writes);
    assert!(plan_prepare(&s, &root).checks.iter().all(|c| c.status == Status::Exists));
    assert_eq!(root.entry_names(&join(prof.clone(), &[t("permitted-ip")])), ["192.168.1.0/24", "192.168.11.0/24"]);

    // Unprepare removes the binding before the profile, and both.
    let record = Record::default().merged("demo", &plan_prepare(&s, &Node::new("devices")).created());
    let u = plan_unprepare(&record, &root);
    let pos = |pred: &dyn Fn(&Item) -> bool| u.items.iter().position(|(i, _)| pred(i)).unwrap();
    assert!(pos(&|i| matches!(i, Item::ProbeProfileOnInterface { .. })) < pos(&|i| matches!(i, Item::ProbeProfile { .. })));
    apply(&mut root, &u.writes);
    assert!(root.get(&prof).is_none());
}

#[test]
fn probe_profile_differences() {
    let want = ["10.0.1.0/24".to_string(), "10.0.2.0/24".to_string()];
    let ips = |cidrs: &[&str]| cidrs.iter().fold(Node::new("permitted-ip"), |n, c| n.with(Node::entry(c)));
    let cases = [
        (Node::entry("p").with(Node::leaf("https", "yes")).with(ips(&["10.0.2.0/24", "10.0.1.0/24"])), None),
        (Node::entry("p").with(ips(&["10.0.1.0/24", "10.0.2.0/24"])), Some("does not allow HTTPS")),
        (Node::entry("p").with(Node::leaf("https", "no")).with(ips(&["10.0.1.0/24", "10.0.2.0/24"])), Some("does not allow HTTPS")),
        (Node::entry("p").with(Node::leaf("https", "yes")), Some("permits every source, not only the UNTRUST subnets")),
        (
            Node::entry("p").with(Node::leaf("https", "yes")).with(ips(&["10.0.1.0/24"])),
            Some("permits 10.0.1.0/24, not the UNTRUST subnets 10.0.1.0/24, 10.0.2.0/24"),
        ),
        (
            Node::entry("p").with(Node::leaf("https", "yes")).with(Node::leaf("ssh", "yes")).with(ips(&["10.0.1.0/24", "10.0.2.0/24"])),
            Some("also allows ssh on the untrust interface"),
        ),
        (
            Node::entry("p").with(Node::leaf("https", "yes")).with(Node::leaf("ping", "yes")).with(ips(&["10.0.1.0/24", "10.0.2.0/24"])),
            None,
        ),
    ];
    for (n, want_reason) in cases {
        assert_eq!(probe_profile_difference(&n, &want).as_deref(), want_reason, "{n:?}");
    }
}

#[test]
fn other_interface_modes_and_dhcp_choices_are_differences() {
    let cases = [
        (Node::entry("x").with(Node::new("layer2")), true, Some("is a layer2 interface, not layer 3")),
        (Node::entry("x").with(Node::new("layer3")), true, Some("is layer 3 without a DHCP client")),
        (Node::entry("x").with(Node::new("layer3").with(Node::new("dhcp-client"))), true, None),
        (Node::entry("x").with(Node::new("layer3").with(Node::new("dhcp-client"))), false, Some("creates a default route from DHCP")),
        (
            Node::entry("x").with(Node::new("layer3").with(Node::new("dhcp-client").with(Node::leaf("enable", "no")))),
            true,
            Some("has its DHCP client disabled"),
        ),
        (
            Node::entry("x").with(Node::new("layer3").with(Node::new("dhcp-client").with(Node::leaf("create-default-route", "no")))),
            false,
            None,
        ),
    ];
    for (n, dr, want) in cases {
        assert_eq!(interface_difference(&n, dr).as_deref(), want, "{n:?}");
    }
}

#[test]
fn allow_all_only_when_asked_and_checked_when_present() {
    let s = PrepareSettings { allow_all: true, ..settings() };
    let mut root = Node::new("devices");
    let p = plan_prepare(&s, &root);
    let rule = p.checks.iter().find(|c| matches!(c.item, Item::AllowAll { .. })).unwrap();
    assert_eq!(rule.status, Status::Create);
    apply(&mut root, &p.writes);
    assert!(plan_prepare(&s, &root).writes.is_empty());
    let path = rule.item.path();
    apply(&mut root, &[Write::Set { parent: join(path.clone(), &[t("action")]), element: Node::leaf("action", "deny") }]);
    apply(&mut root, &[Write::Edit { path: join(path.clone(), &[t("action")]), element: Node::leaf("action", "deny") }]);
    let p = plan_prepare(&s, &root);
    assert!(p.differences().iter().any(|c| matches!(&c.status, Status::Differs(r) if r.contains("action deny"))), "{:#?}", statuses(&p));
}

#[test]
fn unprepare_removes_exactly_what_was_created_in_dependency_order() {
    let s = PrepareSettings { allow_all: true, ..settings() };
    let mut root = Node::new("devices");
    // A stack that existed before, with a firewall in it.
    apply(
        &mut root,
        &[Write::Set {
            parent: vec![t("template-stack")],
            element: Node::entry("S").with(Node::new("devices").with(Node::entry("007900000001"))),
        }],
    );
    let p = plan_prepare(&s, &root);
    apply(&mut root, &p.writes);
    let record = Record::default().merged("demo", &p.created());
    assert!(!record.created.iter().any(|i| matches!(i, Item::TemplateStack { .. })), "the stack was not ours");
    let json = serde_json::to_string(&record).unwrap();
    let record: Record = serde_json::from_str(&json).unwrap();

    let u = plan_unprepare(&record, &root);
    let order: Vec<u8> = u.items.iter().map(|(i, _)| i.delete_rank()).collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    assert!(u.items.iter().all(|(_, r)| *r == Removal::Delete), "{:#?}", u.items);
    apply(&mut root, &u.writes);
    // Only the stack (with its device, without our template) is left.
    let expect = Node::new("devices").with(
        Node::new("template-stack")
            .with(Node::entry("S").with(Node::new("devices").with(Node::entry("007900000001"))).with(Node::new("templates"))),
    );
    assert_eq!(root.get(&[t("template-stack"), e("S"), t("devices")]), expect.get(&[t("template-stack"), e("S"), t("devices")]));
    assert!(root.members(&[t("template-stack"), e("S"), t("templates")]).is_empty());
    assert!(root.get(&[t("template"), e("T")]).is_none());
    assert!(root.get(&[t("device-group"), e("DG")]).is_none());
    // Twice: everything is gone, nothing to write.
    let u2 = plan_unprepare(&record, &root);
    assert!(u2.writes.is_empty());
}

#[test]
fn unprepare_keeps_what_others_added_or_changed() {
    let s = settings();
    let mut root = Node::new("devices");
    let p = plan_prepare(&s, &root);
    apply(&mut root, &p.writes);
    let record = Record::default().merged("demo", &p.created());
    let base = tpl("T");
    // Someone added a static route to our router, a third interface, and changed DNS.
    apply(
        &mut root,
        &[
            Write::Set {
                parent: join(
                    base.clone(),
                    &[t("network"), t("virtual-router"), e("vr-default"), t("routing-table"), t("ip"), t("static-route")],
                ),
                element: Node::entry("theirs").with(Node::leaf("destination", "10.9.0.0/16")),
            },
            Write::Set {
                parent: join(base.clone(), &[t("deviceconfig"), t("system"), t("dns-setting"), t("servers")]),
                element: Node::leaf("primary", "8.8.8.8"),
            },
            Write::Set {
                parent: join(base.clone(), &[t("network"), t("interface"), t("ethernet")]),
                element: Node::entry("ethernet1/3").with(Node::new("layer3")),
            },
        ],
    );
    let u = plan_unprepare(&record, &root);
    let fate = |pred: &dyn Fn(&Item) -> bool| u.items.iter().find(|(i, _)| pred(i)).map(|(_, r)| r.clone()).unwrap();
    assert!(matches!(fate(&|i| matches!(i, Item::VirtualRouter { .. })), Removal::Kept(r) if r.contains("theirs")));
    assert!(matches!(fate(&|i| matches!(i, Item::Template { .. })), Removal::Kept(_)));
    assert_eq!(
        fate(&|i| matches!(i, Item::DnsPrimary { .. })),
        Removal::Kept("holds config pano-eks did not create: primary=8.8.8.8".into()),
        "8.8.8.8 is not ours"
    );
    assert_eq!(fate(&|i| matches!(i, Item::Interface { .. })), Removal::Delete);
    assert_eq!(fate(&|i| matches!(i, Item::DeviceGroup { .. })), Removal::Delete);
    apply(&mut root, &u.writes);
    assert_eq!(
        root.text_at(&join(base.clone(), &[t("deviceconfig"), t("system"), t("dns-setting"), t("servers"), t("primary")])).as_deref(),
        Some("8.8.8.8")
    );
    assert!(root.get(&join(base.clone(), &[t("network"), t("virtual-router"), e("vr-default"), t("routing-table")])).is_some());
    assert!(root.get(&join(base.clone(), &[t("network"), t("interface"), t("ethernet"), e("ethernet1/3")])).is_some());
    assert!(root.get(&join(base.clone(), &[t("network"), t("interface"), t("ethernet"), e("ethernet1/1")])).is_none());
}

#[test]
fn records_merge_across_runs() {
    let a = Item::DeviceGroup { name: "DG".into(), description: marker("demo") };
    let b = Item::Zone { template: "T".into(), name: "trust".into() };
    let r = Record::default().merged("demo", std::slice::from_ref(&b)).merged("demo", &[a.clone(), b.clone()]);
    assert_eq!(r.created, vec![a, b]);
    assert_eq!(r.version, 1);
}

#[test]
fn panos_times_and_vm_auth_key_lifetimes() {
    assert_eq!(parse_panos_time("1970/01/01 00:00:00"), Some(0));
    assert_eq!(parse_panos_time("2026/11/26 10:00:00"), Some(1_795_687_200));
    assert_eq!(parse_panos_time("2024/02/29 23:59:59"), Some(1_709_251_199));
    for bad in ["", "2026-11-26 10:00:00", "2026/13/01 00:00:00", "2026/11/26", "2026/11/26 25:00:00"] {
        assert_eq!(parse_panos_time(bad), None, "{bad}");
    }
    let now = parse_panos_time("2026/11/26 10:00:00").unwrap();
    let listed = vec![
        ("111".to_string(), "2026/11/26 10:30:00".to_string()),
        ("222".to_string(), "2027/11/26 10:00:00".to_string()),
        ("333".to_string(), "2026/11/01 00:00:00".to_string()),
        ("444".to_string(), "soon".to_string()),
    ];
    assert_eq!(check_vm_auth_key(&listed, "222", now, 3600), Ok("2027/11/26 10:00:00".into()));
    assert!(matches!(check_vm_auth_key(&listed, "111", now, 3600), Err(KeyProblem::TooSoon { .. })));
    assert!(matches!(check_vm_auth_key(&listed, "333", now, 3600), Err(KeyProblem::Expired { .. })));
    assert!(matches!(check_vm_auth_key(&listed, "444", now, 3600), Err(KeyProblem::Unreadable { .. })));
    assert_eq!(check_vm_auth_key(&listed, "999", now, 3600), Err(KeyProblem::Unknown));
    // The error text never holds the key.
    let msg = check_vm_auth_key(&listed, "111", now, 3600).unwrap_err().to_string();
    assert!(!msg.contains("111"), "{msg}");
}

#[test]
fn panoramas_clock_in_every_printed_form() {
    let want = parse_panos_time("2026/12/01 11:26:00");
    for text in [
        "2026/12/01 11:26:00",
        "Tue Dec  1 11:26:00 2026",
        "Tue Dec  1 11:26:00 PST 2026",
        "Tue Dec 01 11:26:00 CET 2026",
        "Dec 1 11:26:00 2026",
        "  tue dec 1 11:26:00 utc 2026 ",
    ] {
        assert_eq!(parse_panorama_clock(text), want, "{text:?}");
    }
    for bad in [
        "",
        "Tue Foo  1 11:26:00 2026",
        "Tue Dec  1 11:26 2026",
        "Tue Dec 32 11:26:00 2026",
        "Tue Dec 1 11:26:00",
        "Dec 1 11:26:00 A B 2026",
    ] {
        assert_eq!(parse_panorama_clock(bad), None, "{bad:?}");
    }
}

#[test]
fn vm_auth_key_expiry_is_judged_by_panoramas_clock_not_ours() {
    // (case, expiry-time as Panorama lists it, Panorama's clock, expected outcome). The local
    // clock plays no part: each row holds for any local time and zone.
    type Want = fn(&Result<String, KeyProblem>) -> bool;
    let ok: Want = |r| r.is_ok();
    let too_soon: Want = |r| matches!(r, Err(KeyProblem::TooSoon { .. }));
    let expired: Want = |r| matches!(r, Err(KeyProblem::Expired { .. }));
    let unreadable_clock: Want = |r| matches!(r, Err(KeyProblem::UnreadableClock { .. }));
    let cases: [(&str, &str, &str, Want); 8] = [
        // Panorama in PST (UTC-8) at 10:00 UTC: expiry printed as 03:30 local, 1.5 h left.
        // Read as UTC against a UTC local clock it would look 6.5 h expired.
        ("PST, 1.5 h left", "2026/12/01 03:30:00", "Tue Dec  1 02:00:00 PST 2026", ok),
        ("PST, 30 min left", "2026/12/01 02:30:00", "Tue Dec  1 02:00:00 PST 2026", too_soon),
        // UTC+05:30: expiry 15:00 local, now 15:45 local: expired, although 15:00 "UTC" is
        // hours ahead of a UTC local clock at 10:15.
        ("IST, expired", "2026/12/01 15:00:00", "Tue Dec  1 15:45:00 IST 2026", expired),
        // Panorama's clock 3 h slow: the key lives 2 h more by its clock, which is what it
        // enforces at registration; our clock (3 h ahead) would call it expired.
        ("slow clock", "2026/12/01 12:00:00", "Tue Dec  1 10:00:00 2026", ok),
        // Panorama's clock 3 h fast: 30 min left by its clock, whatever ours says.
        ("fast clock", "2026/12/01 13:30:00", "2026/12/01 13:00:00", too_soon),
        ("across midnight and a year", "2027/01/01 00:30:00", "Thu Dec 31 23:00:00 2026", ok),
        ("exactly at expiry", "2026/12/01 10:00:00", "Tue Dec  1 10:00:00 2026", expired),
        ("unreadable clock", "2026/12/01 10:00:00", "sometime", unreadable_clock),
    ];
    for (case, expiry, clock, want) in cases {
        let listed = vec![("k1".to_string(), expiry.to_string())];
        let got = check_vm_auth_key_by_panorama_clock(&listed, "k1", clock, 3600);
        assert!(want(&got), "{case}: {got:?}");
    }
}

#[test]
fn leaves_distinguish_content_from_structure() {
    let n = Node::entry("S")
        .with(Node::new("templates").with(Node::member("T")))
        .with(Node::new("devices").with(Node::entry("0079")))
        .with(Node::new("settings"))
        .with(Node::leaf("description", "x"));
    let l = n.leaves(&[t("template-stack")]);
    assert_eq!(
        l,
        vec![
            vec![t("template-stack"), e("S"), t("templates"), Seg::Member("T".into())],
            vec![t("template-stack"), e("S"), t("devices"), e("0079")],
            vec![t("template-stack"), e("S"), t("description"), Seg::Value("x".into())],
        ]
    );
}

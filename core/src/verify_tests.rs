use super::*;
use crate::panorama::SubnetStatus;

fn settings() -> PlanSettings {
    PlanSettings::new("prod", "dg", "ts")
}

fn iface(name: &str, zone: &str, addr: &str) -> Interface {
    Interface { name: name.into(), zone: zone.into(), address: addr.parse().unwrap() }
}

fn both() -> Sides {
    Sides { untrust: iface("ethernet1/1", "untrust", "10.0.1.10/24"), trust: iface("ethernet1/2", "trust", "10.0.2.10/24") }
}

fn service(name: &str, state: ServiceState) -> ServiceStatus {
    ServiceStatus {
        cluster: "shop".into(),
        namespace: "default".into(),
        name: name.into(),
        port: Some(82),
        state,
        reason: String::new(),
        nat_rule: Some(format!("prod.in.shop.default.{name}")),
        address: Some(format!("prod.shop.default.{name}")),
        service_object: Some("prod.tcp-82".into()),
        security_rule: None,
    }
}

fn cluster() -> ClusterStatus {
    ClusterStatus {
        name: "shop".into(),
        tag: "pano-eks.prod.shop".into(),
        subnets: vec![SubnetStatus {
            id: "subnet-1".into(),
            cidr: "192.168.110.0/24".into(),
            outbound_rule: Some("prod.out.shop.192.168.110.0_24".into()),
            routes: vec!["pke-abcd-192.168.110.0_24-ef01".into()],
        }],
    }
}

fn fqdn(k: &ServiceKey) -> Option<String> {
    Some(format!("internal-{}.elb.amazonaws.com", k.name))
}

#[test]
fn probes_ask_nat_pre_nat_and_security_post_nat_zone() {
    let services = [service("web", ServiceState::Protected), service("pending", ServiceState::Pending)];
    let p = probes("S1", &both(), &services, &[cluster()], &fqdn, &settings(), None);
    let kinds: Vec<(Check, &str)> = p.iter().map(|p| (p.check, p.subject.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (Check::InboundNat, "shop/default/web"),
            (Check::InboundSecurity, "shop/default/web"),
            (Check::Fqdn, "shop/default/web"),
            (Check::Route, "shop/192.168.110.0/24"),
            (Check::OutboundNat, "shop/192.168.110.0/24"),
        ],
        "a Pending Service is not claimed protected, so not probed"
    );
    let untrust: Ipv4Addr = "10.0.1.10".parse().unwrap();
    // NAT: the pre-NAT packet, to the untrust address, so untrust → untrust.
    assert_eq!(
        p[0].query,
        Query::NatMatch {
            from: "untrust".into(),
            to: "untrust".into(),
            source: INTERNET_CLIENT,
            destination: untrust,
            protocol: 6,
            port: 82
        }
    );
    assert_eq!(p[0].expect, Expect::Rule { name: "prod.in.shop.default.web".into() });
    // Security: pre-NAT addresses, post-NAT zone (trust).
    assert_eq!(
        p[1].query,
        Query::SecurityMatch {
            from: "untrust".into(),
            to: "trust".into(),
            source: INTERNET_CLIENT,
            destination: untrust,
            protocol: 6,
            port: 82
        }
    );
    assert_eq!(p[2].query, Query::Fqdn { fqdn: "internal-web.elb.amazonaws.com".into() });
    assert_eq!(p[3].query, Query::FibLookup { virtual_router: "vr-default".into(), address: "192.168.110.1".parse().unwrap() });
    assert_eq!(p[3].expect, Expect::NextHop { interface: "ethernet1/2".into(), nexthop: "10.0.2.1".parse().unwrap() });
    assert_eq!(
        p[4].query,
        Query::NatMatch {
            from: "trust".into(),
            to: "untrust".into(),
            source: "192.168.110.1".parse().unwrap(),
            destination: INTERNET_SERVER,
            protocol: 6,
            port: 443
        }
    );
}

#[test]
fn a_subnet_whose_outbound_name_is_taken_gets_no_outbound_probe() {
    let mut c = cluster();
    c.subnets[0].outbound_rule = None;
    let p = probes("S1", &both(), &[], &[c], &fqdn, &settings(), None);
    assert_eq!(p.iter().map(|p| p.check).collect::<Vec<_>>(), [Check::Route]);
}

fn rules(rs: &[(&str, Option<&str>)]) -> Answer {
    Answer::Rules { rules: rs.iter().map(|(n, a)| MatchedRule { name: (*n).into(), action: a.map(str::to_owned) }).collect() }
}

#[test]
fn judge_table() {
    let p = probes("S1", &both(), &[service("web", ServiceState::Protected)], &[cluster()], &fqdn, &settings(), None);
    let (nat, sec, fq, route) = (&p[0], &p[1], &p[2], &p[3]);
    let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    let cases: Vec<(&Probe, Answer, bool, &str)> = vec![
        (nat, rules(&[("prod.in.shop.default.web", None)]), true, "matches prod.in.shop.default.web"),
        (nat, rules(&[("foreign-any-82", None), ("prod.in.shop.default.web", None)]), false, "matches foreign-any-82 before ours"),
        (nat, rules(&[]), false, "matches no rule"),
        (sec, rules(&[("allow-web", Some("allow"))]), true, "allowed by allow-web"),
        (sec, rules(&[("block-82", Some("deny"))]), false, "blocked: block-82 says deny"),
        (sec, rules(&[("drop-all", Some("drop"))]), false, "blocked: drop-all says drop"),
        (sec, rules(&[("old-form", None)]), false, "did not say its action"),
        (sec, rules(&[]), false, "dropped by the default rule"),
        (fq, Answer::Resolved { addresses: vec![ip("10.0.2.77")] }, true, "resolved to 10.0.2.77"),
        (fq, Answer::Resolved { addresses: vec![] }, false, "has not resolved the FQDN"),
        (route, Answer::Fib { interface: Some("ethernet1/2".into()), nexthop: Some(ip("10.0.2.1")) }, true, "via 10.0.2.1 on ethernet1/2"),
        (route, Answer::Fib { interface: Some("ethernet1/1".into()), nexthop: Some(ip("10.0.1.1")) }, false, "missing or inactive"),
        (route, Answer::Fib { interface: None, nexthop: None }, false, "no route"),
        (
            nat,
            Answer::Failed { message: "device 007900000002 not connected".into() },
            false,
            "did not answer: device 007900000002 not connected",
        ),
        (fq, rules(&[]), false, "unexpected answer"),
    ];
    for (probe, answer, ok, needle) in cases {
        let row = judge(probe, &answer);
        assert_eq!(row.ok, ok, "{answer:?}: {}", row.detail);
        assert!(row.detail.contains(needle), "{answer:?}: {} lacks {needle}", row.detail);
        assert_eq!((row.serial.as_str(), row.check, &row.subject), ("S1", probe.check, &probe.subject));
    }
}

#[test]
fn sync_row_table() {
    let dev = |connected, sp: Option<&str>, ts: Option<&str>| Device {
        serial: "S1".into(),
        hostname: "fw-01".into(),
        connected,
        shared_policy_status: sp.map(str::to_owned),
        template_status: ts.map(str::to_owned),
        policy_version: Some(3),
    };
    let cases = [
        (dev(true, Some("In Sync"), Some("In Sync")), true, "shared policy In Sync"),
        (dev(true, Some("In Sync"), None), true, "template not reported"),
        (dev(true, Some("Out of Sync"), Some("In Sync")), false, "Out of Sync"),
        (dev(true, None, None), false, "shared policy not reported"),
        (dev(true, Some("In Sync"), Some("Out of Sync")), false, "template Out of Sync"),
        (dev(false, Some("In Sync"), Some("In Sync")), false, "not connected"),
    ];
    for (d, ok, needle) in cases {
        let r = sync_row(&d);
        assert_eq!(r.ok, ok, "{d:?}: {}", r.detail);
        assert!(r.detail.contains(needle), "{}", r.detail);
    }
}

#[test]
fn sides_names_the_missing_interface() {
    let s = settings();
    let (row, got) = sides("S1", &[iface("ethernet1/1", "untrust", "10.0.1.10/24"), iface("ethernet1/2", "trust", "10.0.2.10/24")], &s);
    assert!(row.ok);
    assert_eq!(got, Some(both()));
    let (row, got) = sides("S1", &[iface("ethernet1/1", "untrust", "10.0.1.10/24")], &s);
    assert!(!row.ok && got.is_none());
    assert!(row.detail.contains("ethernet1/2") && !row.detail.contains("ethernet1/1"), "{}", row.detail);
}

#[test]
fn summary_counts_failures_per_firewall() {
    let row = |serial: &str, ok| Row {
        serial: serial.into(),
        check: Check::Route,
        subject: "x".into(),
        service: None,
        ok,
        detail: String::new(),
    };
    assert_eq!(summary(&[row("A", true), row("B", false), row("A", false)]), [("A".to_owned(), 2, 1), ("B".to_owned(), 1, 1)]);
}

#[test]
fn an_empty_device_group_is_a_failure_not_a_vacuous_pass() {
    let r = membership_row("eks-dg", &[]).unwrap();
    assert!(!r.ok && r.detail.contains("eks-dg has no member firewall"), "{r:?}");
    assert_eq!(membership_row("eks-dg", &["S1".to_owned()]), None);
}

#[test]
fn after_a_pushed_converge_planned_services_are_checked_refused_ones_not() {
    let got =
        after_converge(&[service("a", ServiceState::Planned), service("b", ServiceState::Refused), service("c", ServiceState::Protected)]);
    assert_eq!(got.iter().map(|s| s.state).collect::<Vec<_>>(), [ServiceState::Protected, ServiceState::Refused, ServiceState::Protected]);
}

fn versioned(serial: &str, host: &str, connected: bool, v: Option<u64>) -> Device {
    Device { serial: serial.into(), hostname: host.into(), connected, policy_version: v, ..Default::default() }
}

#[test]
fn config_version_table() {
    let before: std::collections::BTreeMap<String, u64> = [("S1".to_string(), 7), ("S2".to_string(), 7)].into();
    // (devices, baseline, expected (serial, ok, detail needle) per connected device)
    let cases: Vec<(Vec<Device>, Option<&std::collections::BTreeMap<String, u64>>, Vec<(&str, bool, &str)>)> = vec![
        // Both took the push: newer than before, equal to each other.
        (
            vec![versioned("S1", "fw-01", true, Some(8)), versioned("S2", "fw-02", true, Some(8))],
            Some(&before),
            vec![("S1", true, "8 (was 7"), ("S2", true, "8 (was 7")],
        ),
        // S2 reported OK and kept its old config: behind its peer, and not past the push.
        (
            vec![versioned("S1", "fw-01", true, Some(8)), versioned("S2", "fw-02", true, Some(7))],
            Some(&before),
            vec![("S1", true, "was 7"), ("S2", false, "fw-01 holds 8")],
        ),
        // Both kept their old config: no peer is newer, the baseline catches it.
        (
            vec![versioned("S1", "fw-01", true, Some(7)), versioned("S2", "fw-02", true, Some(7))],
            Some(&before),
            vec![("S1", false, "still 7 after our push"), ("S2", false, "pan-os-ansible#400")],
        ),
        // No push of ours to compare with (verify on its own): peers only.
        (
            vec![versioned("S1", "fw-01", true, Some(8)), versioned("S2", "fw-02", true, Some(8))],
            None,
            vec![("S1", true, "as its peers"), ("S2", true, "as its peers")],
        ),
        // Not reported: not provable. A disconnected member gets no row (in-sync reports it) and
        // its stale version does not count as the peers' newest.
        (vec![versioned("S1", "fw-01", true, None), versioned("S2", "fw-02", false, Some(99))], None, vec![("S1", false, "not reported")]),
    ];
    for (devices, b, want) in cases {
        let rows = version_rows(&devices, b);
        let got: Vec<(&str, bool)> = rows.iter().map(|r| (r.serial.as_str(), r.ok)).collect();
        assert_eq!(got, want.iter().map(|w| (w.0, w.1)).collect::<Vec<_>>(), "{rows:#?}");
        for (r, w) in rows.iter().zip(&want) {
            assert!(r.detail.contains(w.2), "want {:?} in {:?}", w.2, r.detail);
            assert_eq!(r.check, Check::ConfigVersion);
        }
    }
}

fn row(serial: &str, check: Check, service: Option<&str>, ok: bool) -> Row {
    Row {
        serial: serial.into(),
        check,
        subject: service.map_or(serial.to_string(), |s| format!("shop/default/{s}")),
        service: service.map(|s| ServiceKey { cluster: "shop".into(), namespace: "default".into(), name: s.into() }),
        ok,
        detail: if ok { "fine".into() } else { format!("{} broke", check.as_str()) },
    }
}

#[test]
fn verification_per_service_and_firewall() {
    let key = |n: &str| ServiceKey { cluster: "shop".into(), namespace: "default".into(), name: n.into() };
    let rows = vec![
        row("S1", Check::InSync, None, true),
        row("S1", Check::InboundNat, Some("web"), true),
        row("S1", Check::InboundSecurity, Some("web"), true),
        row("S1", Check::InboundNat, Some("api"), false),
        row("S2", Check::InSync, None, true),
        row("S2", Check::ConfigVersion, None, false),
        row("S2", Check::InboundNat, Some("web"), true),
        row("S2", Check::InboundNat, Some("api"), true),
    ];
    let v = verification(&rows, &[key("web"), key("api"), key("gone")], 38_527);
    let fw: Vec<(&str, usize, bool)> = v.firewalls.iter().map(|f| (f.serial.as_str(), f.checks, f.ok)).collect();
    assert_eq!(fw, [("S1", 4, false), ("S2", 4, false)]);
    let sv: Vec<(&str, usize, usize, usize)> =
        v.services.iter().map(|s| (s.name.as_str(), s.verified_on, s.firewalls, s.failed.len())).collect();
    // web: green on S1; on S2 the firewall-wide config-version failure counts against it.
    // api: its own NAT check fails on S1, S2 is out. gone: asked nothing anywhere.
    assert_eq!(sv, [("web", 1, 2, 1), ("api", 0, 2, 2), ("gone", 0, 2, 1)]);
    assert_eq!(v.services[0].failed[0].check, Check::ConfigVersion);
    let h = headline(&v);
    assert!(h.starts_with("verified on 0/2 firewalls at 10:42:07 UTC; FAILED: S1 inbound-nat shop/default/api"), "{h}");
    let green = verification(&rows[..3], &[key("web")], 38_527);
    assert_eq!(headline(&green), "verified on 1/1 firewalls at 10:42:07 UTC");
    assert_eq!(green.services[0].verified_on, 1);
}

#[test]
fn the_baseline_after_a_push_is_the_firewalls_it_reported_ok_for() {
    let last: std::collections::BTreeMap<String, u64> = [("S1".to_string(), 4), ("S2".to_string(), 4), ("S3".to_string(), 2)].into();
    let b = before_push(&last, &["S1".to_string(), "S9".to_string()]);
    assert_eq!(b, [("S1".to_string(), 4)].into());
}

#[test]
fn with_security_the_services_own_rule_must_allow_it_and_an_unclaimed_port_is_denied() {
    let mut s = settings();
    s.security = Some(crate::settings::SecuritySettings::default());
    let mut web = service("web", ServiceState::Protected);
    web.security_rule = Some("prod.in.shop.default.web".into());
    let mut api = service("api", ServiceState::Protected);
    api.port = Some(1024);
    let p = probes("S1", &both(), &[web, api], &[cluster()], &fqdn, &s, None);
    let sec = p.iter().find(|p| p.check == Check::InboundSecurity && p.subject == "shop/default/web").unwrap();
    assert_eq!(sec.expect, Expect::Rule { name: "prod.in.shop.default.web".into() });
    let un = p.iter().find(|p| p.check == Check::UnclaimedDenied).expect("one unclaimed-port probe per firewall");
    // 1024 is claimed by api: the lowest unclaimed port from 1024 up is 1025; same query as inbound.
    assert_eq!(un.subject, "tcp/1025");
    let Query::SecurityMatch { from, to, port, destination, .. } = &un.query else { panic!("{:?}", un.query) };
    assert_eq!((from.as_str(), to.as_str(), *port, destination.to_string().as_str()), ("untrust", "trust", 1025, "10.0.1.10"));
    let cases: Vec<(Answer, bool, &str)> = vec![
        (rules(&[("interzone-default", Some("deny"))]), true, "interzone-default says deny"),
        (rules(&[]), true, "dropped by the default rule"),
        (rules(&[("allow-all", Some("allow"))]), false, "allowed by allow-all"),
        (rules(&[("x", None)]), false, "did not say its action"),
    ];
    for (answer, ok, needle) in cases {
        let row = judge(un, &answer);
        assert_eq!(row.ok, ok, "{answer:?}: {}", row.detail);
        assert!(row.detail.contains(needle), "{}", row.detail);
    }
    // Without [sync.security]: no such probe, any allowing rule passes inbound-security.
    let p = probes("S1", &both(), &[service("web", ServiceState::Protected)], &[cluster()], &fqdn, &settings(), None);
    assert!(p.iter().all(|p| p.check != Check::UnclaimedDenied));
    assert!(p.iter().any(|p| p.check == Check::InboundSecurity && p.expect == Expect::Allow));
}

use super::*;

fn deployment() -> Deployment {
    Deployment {
        name: "demo".into(),
        region: "us-west-2".into(),
        azs: vec!["us-west-2a".into(), "us-west-2b".into()],
        outbound_via_firewall: false,
        vpcs_quota: 5,
        nat_gateways_per_az_quota: 5,
        existing_vpc_id: None,
        existing_igw_id: None,
        vpc_cidr: "10.0.0.0/16".parse().unwrap(),
        new_subnets: vec![("network.trust_subnets 10.0.1.0/24".into(), "10.0.1.0/24".parse().unwrap())],
        firewall: Firewall { ami: "ami-0123456789abcdef0".into(), key_name: "k".into(), instance_type: "m5.xlarge".into() },
        clusters: vec![Cluster {
            name: "shop".into(),
            stack: "demo-shop-cluster".into(),
            kubernetes_version: "1.34".into(),
            standard_support_only: false,
            azs: vec!["us-west-2a".into(), "us-west-2c".into()],
            node_instance_type: "t3.large".into(),
        }],
    }
}

fn limits(quota: u32, eips: Vec<bool>) -> Limits {
    Limits { eip_quota: Ok(quota), eips: Ok(eips), vpcs: Ok(vec![]), nat_gateways: Ok(vec![]) }
}

#[test]
fn versions_parse_to_three_numbers() {
    for (v, want) in [
        ("10.1.3-h1", Some((10, 1, 3))),
        ("9.0", Some((9, 0, 0))),
        ("11", Some((11, 0, 0))),
        (" 10.2.4 ", Some((10, 2, 4))),
        ("x.1", None),
        ("", None),
    ] {
        assert_eq!(parse_version(v), want, "{v:?}");
    }
}

#[test]
fn elastic_ips_needed_are_one_per_az_plus_egress_less_what_is_ours() {
    // (quota, eips in use (ours?), outbound_via_firewall, problem?)
    for (quota, eips, egress, problem) in [
        (5, vec![false, false, false], false, false), // 3 + 2 = 5
        (5, vec![false, false, false, false], false, true),
        (5, vec![false, false, false], true, true), // 3 + 3 = 6
        (3, vec![true, true, false], false, false), // both ours already
        (3, vec![true, false, false], false, true),
    ] {
        let mut d = deployment();
        d.outbound_via_firewall = egress;
        let mut r = Report::default();
        check_limits(&d, &limits(quota, eips.clone()), false, &mut r);
        assert_eq!(r.problems.iter().any(|p| p.starts_with("Elastic IPs")), problem, "{quota} {eips:?} {egress}: {r:?}");
    }
}

#[test]
fn vpcs_count_only_greenfield_and_nat_gateways_per_az() {
    let d = deployment();
    let l = Limits { vpcs: Ok(vec![false; 5]), ..limits(10, vec![]) };
    let mut r = Report::default();
    check_limits(&d, &l, false, &mut r);
    assert!(r.problems.iter().any(|p| p.starts_with("VPCs: 5 exist")), "{r:?}");
    let mut r = Report::default();
    check_limits(&d, &l, true, &mut r);
    assert!(r.problems.is_empty(), "brownfield makes no VPC: {r:?}");
    let l = Limits { vpcs: Ok(vec![true, false, false, false, false]), ..limits(10, vec![]) };
    let mut r = Report::default();
    check_limits(&d, &l, false, &mut r);
    assert!(r.problems.is_empty(), "ours already: {r:?}");
    let nats = |n: usize, ours: bool| (0..n).map(|i| ("us-west-2b".to_string(), ours && i == 0)).collect::<Vec<_>>();
    for (list, problem) in [(nats(4, false), false), (nats(5, false), true), (nats(5, true), false)] {
        let l = Limits { nat_gateways: Ok(list), ..limits(10, vec![]) };
        let mut r = Report::default();
        check_limits(&d, &l, false, &mut r);
        assert_eq!(r.problems.iter().any(|p| p.contains("NAT gateways: 5 exist in us-west-2b")), problem, "{r:?}");
    }
    let l = Limits { eip_quota: Err("denied".into()), ..limits(10, vec![]) };
    let mut r = Report::default();
    check_limits(&d, &l, false, &mut r);
    assert_eq!(r.problems, vec!["Elastic IP quota and use in us-west-2: denied".to_string()]);
}

#[test]
fn instance_types_must_be_offered_in_every_az_used() {
    let d = deployment();
    assert_eq!(
        wanted_offerings(&d),
        vec![
            ("m5.xlarge".into(), "us-west-2a".into(), "firewalls.instance_type".into()),
            ("m5.xlarge".into(), "us-west-2b".into(), "firewalls.instance_type".into()),
            ("t3.large".into(), "us-west-2a".into(), "clusters.0.nodes.instance_type (cluster shop)".into()),
            ("t3.large".into(), "us-west-2c".into(), "clusters.0.nodes.instance_type (cluster shop)".to_string()),
        ]
    );
    let all: Vec<(String, String)> = wanted_offerings(&d).into_iter().map(|(t, a, _)| (t, a)).collect();
    let mut r = Report::default();
    check_offerings(&d, &Ok(all.clone()), &mut r);
    assert!(r.problems.is_empty(), "{r:?}");
    let mut r = Report::default();
    check_offerings(&d, &Ok(all[..3].to_vec()), &mut r);
    assert_eq!(r.problems.len(), 1);
    assert!(r.problems[0].starts_with("clusters.0.nodes.instance_type (cluster shop) = \"t3.large\" is not offered in us-west-2c"));
}

#[test]
fn the_lowest_matching_acl_entry_decides() {
    let e =
        |n: i32, egress: bool, allow: bool| NaclEntry { rule_number: n, egress, protocol: "-1".into(), allow, cidr: "0.0.0.0/0".into() };
    assert!(allows_all(&[e(100, false, true), e(32767, false, false)], false));
    assert!(!allows_all(&[e(100, false, false), e(200, false, true)], false));
    assert!(!allows_all(&[e(100, true, true)], false), "an egress entry says nothing of ingress");
    let tcp = NaclEntry { protocol: "6".into(), ..e(50, false, false) };
    assert!(allows_all(&[tcp, e(100, false, true)], false), "only all-protocol entries count");
    assert!(!allows_all(&[], true));
}

#[test]
fn a_same_named_cluster_is_refused_unless_this_deployment_made_it() {
    let d = deployment();
    let ex = |tag: Option<&str>, ours: bool| Ok(Some(ExistingCluster { deployment_tag: tag.map(str::to_string), in_our_stack: ours }));
    for (seen, problem) in [
        (Ok(None), false),
        (ex(Some("demo"), false), false),
        (ex(None, true), false),
        (ex(Some("other"), false), true),
        (ex(None, false), true),
        (Err("denied".to_string()), true),
    ] {
        let mut r = Report::default();
        check_same_named_clusters(&d, &[("shop".into(), seen.clone())], &mut r);
        assert_eq!(!r.problems.is_empty(), problem, "{seen:?}: {r:?}");
        if problem && seen.is_ok() {
            assert!(r.problems[0].contains("stack demo-shop-cluster does not own it"), "{r:?}");
        }
    }
}

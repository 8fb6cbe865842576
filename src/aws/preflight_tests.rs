use super::*;
use crate::config::tests_support::valid_config;

fn good() -> Observed {
    Observed {
        account: Ok("123456789012".into()),
        azs: Ok(vec!["us-west-2a".into(), "us-west-2b".into(), "us-west-2c".into()]),
        key_pair: Ok(true),
        ami: Ok(Some(Ami { product_codes: vec!["6njl1pau431dv1qxipg63mvah".into()] })),
        buckets: vec![("demo-panw-bootstrap".into(), Ok(BucketState::Missing)), ("demo-panw-lambda".into(), Ok(BucketState::Ours))],
        panorama: Ok("10.2.4-h3".into()),
        vpc: None,
        igw_attached: None,
        other_clusters_in_vpc: 0,
        eks_versions: Ok(calendar()),
        same_named_clusters: vec![("shop".into(), Ok(None))],
        limits: Limits {
            eip_quota: Ok(5),
            eips: Ok(vec![false]),
            vpcs: Ok(vec![false]),
            nat_gateways: Ok(vec![("us-west-2a".into(), false)]),
        },
        launch: Some(Launch::Allowed),
        offerings: Ok(["us-west-2a", "us-west-2b", "us-west-2c"]
            .iter()
            .flat_map(|az| ["m5.xlarge", "t3.large"].map(|t| (t.to_string(), az.to_string())))
            .collect()),
        vpc_settings: None,
    }
}

/// EKS on 2026-12-01, as AWS's release calendar gives it.
fn calendar() -> Vec<EksVersion> {
    [
        ("1.30", "UNSUPPORTED", "2025-07-23", "2026-07-23"),
        ("1.31", "UNSUPPORTED", "2025-11-26", "2026-11-26"),
        ("1.32", "EXTENDED_SUPPORT", "2026-03-23", "2027-03-23"),
        ("1.33", "EXTENDED_SUPPORT", "2026-07-29", "2027-07-29"),
        ("1.34", "STANDARD_SUPPORT", "2026-12-02", "2027-12-02"),
        ("1.35", "STANDARD_SUPPORT", "2027-03-27", "2028-03-27"),
    ]
    .into_iter()
    .map(|(v, st, s, e)| EksVersion {
        version: v.into(),
        status: st.into(),
        end_of_standard: Some(s.into()),
        end_of_extended: Some(e.into()),
    })
    .collect()
}

fn with_version(version: &str, support: &str) -> Config {
    let text = crate::config::tests_support::VALID
        .replace("name = \"shop\"\n", &format!("name = \"shop\"\nkubernetes_version = \"{version}\"\nsupport_type = \"{support}\"\n"));
    crate::config::tests_support::valid_config_from(&text)
}

#[test]
fn kubernetes_versions_against_the_eks_calendar() {
    // The default version is in standard support.
    assert_eq!(valid_config().clusters[0].kubernetes_version, "1.35");
    assert_eq!(check(&valid_config(), &good(), false), Report::default());
    // Unsupported: refused, with the dates and the fix.
    let r = check(&with_version("1.31", "EXTENDED"), &good(), false);
    assert_eq!(r.problems.len(), 1, "{r:?}");
    let p = &r.problems[0];
    for want in [
        "clusters.0.kubernetes_version = \"1.31\" (cluster shop)",
        "no longer supports",
        "standard support ended 2025-11-26",
        "extended support ended 2026-11-26",
        "set kubernetes_version = \"1.35\" (standard support until 2027-03-27)",
    ] {
        assert!(p.contains(want), "missing {want:?} in {p}");
    }
    // Unknown to EKS (too new, or a typo): refused.
    let r = check(&with_version("1.99", "EXTENDED"), &good(), false);
    assert!(r.problems[0].contains("EKS does not offer this version in us-west-2"), "{r:?}");
    // Extended support: a warning with the cost; with STANDARD a problem.
    let r = check(&with_version("1.33", "EXTENDED"), &good(), false);
    assert!(r.problems.is_empty(), "{r:?}");
    assert!(r.warnings[0].contains("extended support ends 2027-07-29") && r.warnings[0].contains("$0.50 more per cluster hour"), "{r:?}");
    let r = check(&with_version("1.33", "STANDARD"), &good(), false);
    assert!(r.problems[0].contains("support_type = \"STANDARD\" EKS cannot create it"), "{r:?}");
    // Standard support with STANDARD: fine.
    assert_eq!(check(&with_version("1.34", "STANDARD"), &good(), false), Report::default());
    // The API failing (no permission): a warning, not a refusal.
    let mut o = good();
    o.eks_versions = Err("AccessDeniedException: not authorized".into());
    let r = check(&with_version("1.31", "EXTENDED"), &o, false);
    assert!(r.problems.is_empty() && r.warnings[0].contains("AccessDeniedException"), "{r:?}");
}

fn brownfield_cfg() -> Config {
    let mut c = valid_config();
    c.network.existing_vpc_id = Some("vpc-1".into());
    c.network.existing_igw_id = Some("igw-1".into());
    c
}

fn vpc(cidr: &str, subnets: &[(&str, &str, bool)]) -> Option<Result<Option<Vpc>, String>> {
    Some(Ok(Some(Vpc {
        cidrs: vec![cidr.into()],
        subnets: subnets.iter().map(|(i, c, o)| VpcSubnet { id: i.to_string(), cidr: c.to_string(), ours: *o }).collect(),
    })))
}

#[test]
fn all_good_is_clean() {
    let r = check(&valid_config(), &good(), false);
    assert_eq!(r, Report::default());
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut o = good();
    o.account = Err("ExpiredToken: the security token included in the request is expired".into());
    o.azs = Ok(vec!["us-west-2a".into()]);
    o.key_pair = Ok(false);
    o.ami = Ok(None);
    o.buckets[0].1 = Ok(BucketState::Foreign("bucket demo-panw-bootstrap exists and belongs to another account (403)".into()));
    o.panorama = Ok("8.1.0".into());
    o.other_clusters_in_vpc = 16;
    let r = check(&valid_config(), &o, false);
    let all = r.problems.join("\n");
    for want in [
        "AWS credentials",
        "us-west-2b is not available",
        "key pair `ops` does not exist",
        "AMI ami-0123456789abcdef0 does not exist",
        "another account",
        "needs 9.0.3",
        "at most 16",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
    assert_eq!(r.problems.len(), 7, "{all}");
}

#[test]
fn panorama_versions() {
    for (v, ok) in
        [("9.0.3", true), ("9.0.2", false), ("9.1.0", true), ("10.2.4-h3", true), ("8.1.25", false), ("11.1", true), ("junk", false)]
    {
        let mut o = good();
        o.panorama = Ok(v.into());
        assert_eq!(check(&valid_config(), &o, false).problems.is_empty(), ok, "{v}");
    }
    let mut o = good();
    o.panorama = Err("connection refused".into());
    assert!(check(&valid_config(), &o, false).problems[0].contains("not reachable: connection refused"));
}

#[test]
fn a_non_pan_ami_is_a_warning_only() {
    let mut o = good();
    o.ami = Ok(Some(Ami { product_codes: vec![] }));
    let r = check(&valid_config(), &o, false);
    assert!(r.problems.is_empty());
    assert!(r.warnings[0].contains("no VM-Series marketplace product code"), "{:?}", r.warnings);
}

#[test]
fn brownfield_vpc_checks() {
    let cfg = brownfield_cfg();
    // Good: right CIDR, IGW attached, an unrelated subnet elsewhere, our own subnets from a previous run.
    let mut o = good();
    o.vpc = vpc("192.168.0.0/16", &[("subnet-x", "192.168.200.0/24", false), ("subnet-o", "192.168.0.0/24", true)]);
    o.igw_attached = Some(Ok(true));
    o.vpc_settings = Some(Ok(default_vpc_settings()));
    assert_eq!(check(&cfg, &o, true), Report::default());

    // Wrong CIDR (every new subnet also falls outside), IGW detached.
    let mut o = good();
    o.vpc = vpc("10.0.0.0/16", &[]);
    o.igw_attached = Some(Ok(false));
    let p = check(&cfg, &o, true).problems;
    assert!(p.iter().any(|m| m.contains("has CIDR 10.0.0.0/16 but network.vpc_cidr is 192.168.0.0/16")), "{p:?}");
    assert!(p.iter().any(|m| m.contains("not attached to VPC vpc-1")), "{p:?}");
    assert!(p.iter().any(|m| m.contains("network.mgmt_subnets 192.168.0.0/24 is not inside VPC vpc-1")), "{p:?}");

    // Overlap with a foreign subnet (wider, and exact).
    let mut o = good();
    o.vpc = vpc("192.168.0.0/16", &[("subnet-big", "192.168.0.0/20", false)]);
    o.igw_attached = Some(Ok(true));
    let p = check(&cfg, &o, true).problems;
    assert!(p.iter().any(|m| m.contains("192.168.0.0/24 overlaps existing subnet subnet-big")), "{p:?}");
    assert!(p.iter().any(|m| m.contains("192.168.10.0/24 overlaps existing subnet subnet-big")), "{p:?}");
    assert!(!p.iter().any(|m| m.contains("192.168.100.0/24 overlaps")), "{p:?}");

    // Missing VPC.
    let mut o = good();
    o.vpc = Some(Ok(None));
    o.igw_attached = Some(Ok(false));
    let p = check(&cfg, &o, true).problems;
    assert!(p.iter().any(|m| m.contains("VPC vpc-1 (network.existing_vpc_id) does not exist")), "{p:?}");
}

#[test]
fn version_parsing() {
    assert_eq!(parse_version("10.1.3-h1"), Some((10, 1, 3)));
    assert_eq!(parse_version("9.0"), Some((9, 0, 0)));
    assert_eq!(parse_version(""), None);
}

#[test]
fn a_same_named_cluster_this_deployment_did_not_make_is_refused() {
    let ours_by_tag = ExistingCluster { deployment_tag: Some("demo".into()), in_our_stack: false };
    let ours_by_stack = ExistingCluster { deployment_tag: None, in_our_stack: true };
    let foreign = ExistingCluster { deployment_tag: None, in_our_stack: false };
    let other_deployment = ExistingCluster { deployment_tag: Some("prod".into()), in_our_stack: false };
    for (state, problem) in [
        (Ok(None), None),
        (Ok(Some(ours_by_tag)), None),
        (Ok(Some(ours_by_stack)), None),
        (Ok(Some(foreign)), Some("it has no pano-eks:deployment tag; stack demo-shop-cluster does not own it")),
        (Ok(Some(other_deployment)), Some("it belongs to pano-eks deployment `prod`")),
        (Err("AccessDeniedException: eks:DescribeCluster".to_string()), Some("cannot tell whether an EKS cluster of that name exists")),
    ] {
        let mut o = good();
        o.same_named_clusters = vec![("shop".into(), state.clone())];
        let p = check(&valid_config(), &o, false).problems;
        match problem {
            None => assert!(p.is_empty(), "{state:?}: {p:?}"),
            Some(want) => {
                assert_eq!(p.len(), 1, "{state:?}: {p:?}");
                assert!(p[0].starts_with("clusters.0.name = \"shop\": "), "{p:?}");
                assert!(p[0].contains(want), "{want:?} in {p:?}");
            }
        }
    }
}

#[test]
fn account_limits_are_checked_before_anything_is_created() {
    let cfg = valid_config(); // 2 AZs: 2 NAT gateways, 2 EIPs; greenfield: 1 VPC
    let problems = |l: Limits, cfg: &Config, existing: bool| {
        let mut o = good();
        o.limits = l;
        if existing {
            o.vpc = vpc("192.168.0.0/16", &[]);
            o.igw_attached = Some(Ok(true));
        }
        check(cfg, &o, existing).problems
    };
    let l = |quota: u32, eips: Vec<bool>, vpcs: Vec<bool>, nats: Vec<(&str, bool)>| Limits {
        eip_quota: Ok(quota),
        eips: Ok(eips),
        vpcs: Ok(vpcs),
        nat_gateways: Ok(nats.into_iter().map(|(a, o)| (a.to_string(), o)).collect()),
    };
    // 3 foreign EIPs + 2 needed = 5: fits the default quota exactly.
    assert!(problems(l(5, vec![false; 3], vec![false], vec![]), &cfg, false).is_empty());
    // 4 foreign + 2 needed > 5.
    let p = problems(l(5, vec![false; 4], vec![false], vec![]), &cfg, false);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains("Elastic IPs: this deployment needs 2 (2 for the NAT gateways of us-west-2a, us-west-2b), 2 of them new"),
        "{p:?}"
    );
    assert!(p[0].contains("4 of the account's 5 in us-west-2 are in use") && p[0].contains("release 1 unused"), "{p:?}");
    // Egress through a firewall needs one more.
    let mut egress = cfg.clone();
    egress.network.outbound_via_firewall = true;
    let p = problems(l(5, vec![false; 3], vec![false], vec![]), &egress, false);
    assert!(p[0].contains("needs 3 (2 for the NAT gateways of us-west-2a, us-west-2b + 1 for cluster egress"), "{p:?}");
    // A re-run: our own 2 EIPs, VPC and NAT gateways are not needed again.
    let rerun = l(5, vec![true, true, false, false, false], vec![true, false, false, false, false], vec![("us-west-2a", true)]);
    assert!(problems(rerun, &cfg, false).is_empty());
    // VPCs: 5 exist, greenfield needs a 6th; brownfield needs none.
    let p = problems(l(5, vec![], vec![false; 5], vec![]), &cfg, false);
    assert!(p[0].starts_with("VPCs: 5 exist in us-west-2 and the quota is 5"), "{p:?}");
    let mut brown = brownfield_cfg();
    brown.network.vpcs_quota = 5;
    assert!(problems(l(5, vec![], vec![false; 5], vec![]), &brown, true).is_empty());
    // A raised quota, stated in the config.
    let mut raised = cfg.clone();
    raised.network.vpcs_quota = 10;
    assert!(problems(l(5, vec![], vec![false; 5], vec![]), &raised, false).is_empty());
    // NAT gateways per AZ: 5 foreign in us-west-2b.
    let p = problems(l(5, vec![], vec![], vec![("us-west-2b", false); 5]), &cfg, false);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("NAT gateways: 5 exist in us-west-2b and the quota is 5 per AZ"), "{p:?}");
    // Everything at once, and an unreadable observation is a problem too.
    let all = Limits { eip_quota: Err("UnauthorizedOperation".into()), ..l(5, vec![], vec![false; 5], vec![("us-west-2a", false); 5]) };
    let p = problems(all, &cfg, false);
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(p[0].contains("Elastic IP quota and use in us-west-2: UnauthorizedOperation"), "{p:?}");
}

#[test]
fn an_unsubscribed_marketplace_ami_is_refused() {
    let mut o = good();
    o.launch = Some(Launch::NotSubscribed(
        "OptInRequired: In order to use this AWS Marketplace product you need to accept terms and subscribe".into(),
    ));
    let r = check(&valid_config(), &o, false);
    assert_eq!(r.problems.len(), 1, "{r:?}");
    assert!(r.problems[0].contains("AMI ami-0123456789abcdef0: this account is not subscribed to its AWS Marketplace product"), "{r:?}");
    assert!(r.problems[0].contains("subscribe to the VM-Series listing"), "{r:?}");
    o.launch = Some(Launch::Unknown("VPCIdNotSpecified: No default VPC for this user".into()));
    let r = check(&valid_config(), &o, false);
    assert!(r.problems.is_empty() && r.warnings[0].contains("could not confirm its Marketplace subscription"), "{r:?}");
}

fn allow_all_acl() -> Vec<NaclEntry> {
    let e =
        |n: i32, egress: bool, allow: bool| NaclEntry { rule_number: n, egress, protocol: "-1".into(), allow, cidr: "0.0.0.0/0".into() };
    vec![e(100, false, true), e(32767, false, false), e(100, true, true), e(32767, true, false)]
}

fn default_vpc_settings() -> VpcSettings {
    VpcSettings { dns_support: true, dns_hostnames: true, default_nacl: Some(("acl-1".into(), allow_all_acl())) }
}

#[test]
fn brownfield_dns_attributes_and_the_default_network_acl() {
    let cfg = brownfield_cfg();
    let base = || {
        let mut o = good();
        o.vpc = vpc("192.168.0.0/16", &[]);
        o.igw_attached = Some(Ok(true));
        o
    };
    // DNS hostnames off (the AWS default for a VPC you create): refused with the fix.
    let mut o = base();
    o.vpc_settings = Some(Ok(VpcSettings { dns_hostnames: false, ..default_vpc_settings() }));
    let r = check(&cfg, &o, true);
    assert_eq!(r.problems.len(), 1, "{r:?}");
    assert!(r.problems[0].contains("VPC vpc-1 has enableDnsHostnames off") && r.problems[0].contains("--enable-dns-hostnames"), "{r:?}");
    // A default ACL that denies before it allows (rule order), in one direction: a warning.
    let mut entries = allow_all_acl();
    entries.push(NaclEntry { rule_number: 50, egress: false, protocol: "-1".into(), allow: false, cidr: "0.0.0.0/0".into() });
    let mut o = base();
    o.vpc_settings = Some(Ok(VpcSettings { default_nacl: Some(("acl-9".into(), entries)), ..default_vpc_settings() }));
    let r = check(&cfg, &o, true);
    assert!(r.problems.is_empty(), "{r:?}");
    assert!(r.warnings[0].contains("default network ACL acl-9 does not allow all inbound traffic"), "{r:?}");
    // Only a port range allowed outbound: not all traffic.
    let mut entries = allow_all_acl();
    entries.retain(|e| !e.egress || !e.allow);
    entries.push(NaclEntry { rule_number: 100, egress: true, protocol: "6".into(), allow: true, cidr: "0.0.0.0/0".into() });
    assert!(!allows_all(&entries, true) && allows_all(&entries, false));
    // Greenfield never looks (the stack makes the VPC).
    let mut o = good();
    o.vpc_settings = Some(Ok(VpcSettings { dns_support: false, ..default_vpc_settings() }));
    assert!(check(&valid_config(), &o, false).problems.is_empty());
}

#[test]
fn instance_types_must_be_offered_in_every_az_used() {
    let mut o = good();
    o.offerings = Ok(vec![
        ("m5.xlarge".into(), "us-west-2a".into()),
        ("t3.large".into(), "us-west-2a".into()),
        ("t3.large".into(), "us-west-2b".into()),
    ]);
    let p = check(&valid_config(), &o, false).problems;
    assert_eq!(
        p,
        vec![
            "firewalls.instance_type = \"m5.xlarge\" is not offered in us-west-2b (ec2:DescribeInstanceTypeOfferings): choose a type offered in every AZ used, or other AZs"
        ]
    );
    o.offerings = Ok(vec![("m5.xlarge".into(), "us-west-2a".into()), ("m5.xlarge".into(), "us-west-2b".into())]);
    let p = check(&valid_config(), &o, false).problems;
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].starts_with("clusters.0.nodes.instance_type (cluster shop) = \"t3.large\" is not offered in us-west-2a"), "{p:?}");
}

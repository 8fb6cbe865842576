use std::path::Path;

use super::tests_support::VALID;
use super::*;

fn dir_with_authcodes() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("authcodes"), "I1234567\n").unwrap();
    d
}

fn check(text: &str) -> Result<LoadedConfig, Diagnostics> {
    let d = dir_with_authcodes();
    load_str(&d.path().join("pano-eks.toml"), text, LoadOptions::deploy(false))
}

fn errors(text: &str) -> Vec<String> {
    match check(text) {
        Ok(_) => vec![],
        Err(d) => d.errors().map(|e| super::diagnostics::render_one(Path::new("f"), e)).collect(),
    }
}

#[test]
fn valid_config_loads_with_defaults() {
    let c = check(VALID).expect("valid").config;
    assert_eq!(c.firewalls.instance_type, "m5.xlarge");
    assert_eq!(c.firewalls.elb_type, ElbType::Application);
    assert_eq!(c.panorama.virtual_router, "vr-default");
    assert_eq!(c.sync.batch_size, 2500);
    assert_eq!(c.clusters[0].nodes.desired, 2);
    assert_eq!(c.bootstrap_bucket(), "demo-panw-bootstrap");
    assert_eq!(c.firewall_asg(), "demo-firewall-PANW-Firewall-ASG");
    assert_eq!(c.panorama_host().as_deref(), Some("panorama.example.com"));
    assert_eq!(c.cluster_azs(&c.clusters[0]), vec!["us-west-2a", "us-west-2b"]);
}

/// Each row: (what to replace, replacement, expected fragment, expected line).
#[test]
fn each_problem_is_reported_with_its_location() {
    let cases: &[(&str, &str, &str)] = &[
        ("count = 2", "count = 7", "firewalls.count = 7: must be between 2 and 6"),
        ("count = 2", "cout = 2", "unknown key `firewalls.cout` (did you mean `count`?)"),
        ("ssh_from = \"203.0.113.7/32\"", "ssh_from = \"0.0.0.0/0\"", "allow_ssh_from_anywhere"),
        // Nodes without public IPs have no way out unless egress goes through the firewalls.
        ("name = \"shop\"", "nodes = { public_ip = false }\nname = \"shop\"", "set `network.outbound_via_firewall = true`"),
        ("name = \"shop\"", "control_plane_logs = [\"api\", \"kubelet\"]\nname = \"shop\"", "is not an EKS log type"),
        ("name = \"shop\"", "endpoint_public_cidrs = [\"198.51.100.1/24\"]\nname = \"shop\"", "has host bits set"),
        ("name = \"shop\"", "endpoint_public_cidrs = []\nname = \"shop\"", "list who may reach the public API endpoint"),
        // python3.10 can no longer be created on Lambda (issue 13).
        ("count = 2", "lambda_runtime = \"python3.10\"\ncount = 2", "python3.11, python3.12, python3.13, python3.14"),
        (
            "\"192.168.110.0/24\", \"192.168.111.0/24\"",
            "\"10.9.0.0/24\", \"192.168.111.0/24\"",
            "clusters[0].subnets[0] = \"10.9.0.0/24\": is not inside the VPC CIDR 192.168.0.0/16",
        ),
        (
            "\"192.168.110.0/24\", \"192.168.111.0/24\"",
            "\"192.168.2.0/25\", \"192.168.111.0/24\"",
            "overlaps 192.168.2.0/24 at network.trust_subnets[0]",
        ),
        ("\"192.168.110.0/24\", \"192.168.111.0/24\"", "\"192.168.110.0/24\"", "takes 2 to 4 subnets, not 1"),
        (
            "natgw_subnets = [\"192.168.100.0/24\", \"192.168.101.0/24\"]",
            "natgw_subnets = [\"192.168.100.0/24\"]",
            "has 1 subnets but `network.azs` has 2",
        ),
        ("azs = [\"us-west-2a\", \"us-west-2b\"]", "azs = [\"us-west-2a\"]", "span 2 or 3 availability zones, not 1"),
        ("ami = \"ami-0123456789abcdef0\"", "ami = \"ami-XYZ\"", "firewalls.ami = \"ami-XYZ\": is not an AMI id"),
        ("name = \"demo\"", "name = \"Demo_1\"", "name = \"Demo_1\": must be 1–20 characters"),
        ("authcodes_file = \"authcodes\"", "authcodes_file = \"missing\"", "firewalls.authcodes_file = \"missing\": cannot read"),
        ("device_group = \"eks-dg\"", "device_group = \"eks/dg\"", "character `/` is not allowed"),
        ("template_stack = \"eks-stack\"", "template_stack = \"a-very-long-template-stack-name-x\"", "longer than 31 characters"),
        ("api_key_env = \"PANORAMA_API_KEY\"", "api_key_env = \"LUFRPT1=secret==\"", "must be the NAME of an environment variable"),
        ("url = \"https://panorama.example.com\"", "url = \"panorama.example.com\"", "must be an https:// URL"),
        ("vpc_cidr = \"192.168.0.0/16\"", "vpc_cidr = \"192.168.0.1/16\"", "has host bits set; the network is 192.168.0.0/16"),
    ];
    for (from, to, want) in cases {
        assert!(VALID.contains(from), "fixture lacks {from}");
        let text = VALID.replacen(from, to, 1);
        let errs = errors(&text);
        assert!(errs.iter().any(|e| e.contains(want)), "want `{want}` for `{to}`, got {errs:#?}");
        // Every located problem points at the line that holds the replacement.
        let line = text[..text.find(to).unwrap()].matches('\n').count() + 1;
        let located = errs.iter().find(|e| e.contains(want)).unwrap();
        assert!(located.starts_with(&format!("f:{line}:")), "`{located}` should be on line {line}");
    }
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = VALID
        .replace("count = 2", "count = 9")
        .replace("ami = \"ami-0123456789abcdef0\"", "ami = \"nope\"")
        .replace("key_name = \"ops\"", "key_name = \"ops\"\ncolour = \"blue\"");
    let errs = errors(&text);
    assert_eq!(errs.len(), 3, "{errs:#?}");
}

#[test]
fn more_than_sixteen_clusters_is_refused() {
    let mut text = VALID.to_string();
    for i in 0..16 {
        text.push_str(&format!(
            "\n[[clusters]]\nname = \"c{i}\"\nsubnets = [\"192.168.{}.0/24\", \"192.168.{}.0/24\"]\n",
            120 + 2 * i,
            121 + 2 * i
        ));
    }
    let errs = errors(&text);
    assert!(errs.iter().any(|e| e.contains("17 clusters in one VPC")), "{errs:#?}");
}

#[test]
fn brownfield_needs_vpc_and_igw() {
    let d = dir_with_authcodes();
    let err = load_str(&d.path().join("c.toml"), VALID, LoadOptions::deploy(true)).unwrap_err();
    assert!(err.render().contains("needs `network.existing_vpc_id`"), "{err}");
    let text = VALID.replace("natgw_subnets", "existing_vpc_id = \"vpc-0123456789abcdef0\"\nexisting_igw_id = \"igw-bad\"\nnatgw_subnets");
    let err = load_str(&d.path().join("c.toml"), &text, LoadOptions::deploy(true)).unwrap_err();
    assert!(err.render().contains("existing_igw_id = \"igw-bad\": is not an internet gateway id"), "{err}");
}

#[test]
fn type_errors_name_the_key_and_position() {
    let text = VALID.replace("count = 2", "count = \"two\"");
    let line = text[..text.find("count =").unwrap()].matches('\n').count() + 1;
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].starts_with(&format!("f:{line}:9: error: firewalls.count = \"two\": invalid type")), "{errs:#?}");
}

#[test]
fn authcodes_are_never_echoed() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("authcodes"), "SECRET-CODE with spaces\n").unwrap();
    let err = load_str(&d.path().join("c.toml"), VALID, LoadOptions::deploy(false)).unwrap_err();
    let text = err.render();
    assert!(text.contains("not a single auth code"), "{text}");
    assert!(!text.contains("SECRET-CODE"), "{text}");
}

#[test]
fn the_init_example_fails_only_on_values_the_user_must_supply() {
    let d = tempfile::tempdir().unwrap();
    let err = load_str(&d.path().join("pano-eks.toml"), EXAMPLE, LoadOptions::deploy(false)).unwrap_err();
    let keys: Vec<String> = err.errors().map(|e| e.key.clone()).collect();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort();
    assert_eq!(
        keys_sorted,
        vec!["firewalls.ami", "firewalls.authcodes_file", "firewalls.key_name", "firewalls.ssh_from", "panorama.url", "panorama.url"],
        "{err}"
    );
    // Each of those lines is marked REQUIRED in the file.
    for e in err.errors() {
        let (line, _) = e.line_col.unwrap();
        assert!(EXAMPLE.lines().nth(line - 1).unwrap().contains("REQUIRED"), "line {line} of the example");
    }
}

#[test]
fn durations_parse() {
    use super::validate::parse_duration;
    use std::time::Duration;
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
    assert!(parse_duration("5 minutes").is_err());
    assert!(parse_duration("m").is_err());
}

#[test]
fn vm_auth_key_lifetime_is_1_to_8760_hours_located_at_the_key() {
    for (hours, ok) in [(0, false), (1, true), (8760, true), (8761, false), (8768, false)] {
        let text = VALID.replacen("count = 2", &format!("count = 2\nvm_auth_key_lifetime_hours = {hours}"), 1);
        let line = text[..text.find("vm_auth_key_lifetime_hours").unwrap()].matches('\n').count() + 1;
        let errs = errors(&text);
        if ok {
            assert!(errs.is_empty(), "{hours}: {errs:#?}");
        } else {
            let e = errs.iter().find(|e| e.contains("1 to 8760 hours")).unwrap_or_else(|| panic!("{hours}: {errs:#?}"));
            assert!(e.starts_with(&format!("f:{line}:")) && e.contains("vm_auth_key_lifetime_hours"), "{e}");
        }
    }
}

#[test]
fn firewall_capacity_is_a_tier_or_numbers_and_a_bad_one_is_named() {
    let with = |cap: &str| VALID.replacen("count = 2", &format!("count = 2\ncapacity = {cap}"), 1);
    assert!(check(VALID).expect("valid").config.firewalls.capacity.is_none(), "absent: not limited");
    let c = check(&with("{ tier = 2 }")).expect("tier 2").config;
    let cap = c.firewalls.capacity.as_ref().and_then(|c| c.capacity()).expect("limits");
    assert_eq!(cap.limits, pano_eks_core::capacity::Tier::Two.limits());
    assert_eq!(cap.source, "memory tier 2 (firewalls.capacity)");
    assert_eq!(crate::sync::plan_settings(&c).capacity, Some(cap));
    let c = check(&with("{ tier = 1, fqdn_addresses = 500 }")).expect("override").config;
    let cap = c.firewalls.capacity.as_ref().and_then(|c| c.capacity()).expect("limits");
    assert_eq!((cap.limits.fqdn_addresses, cap.limits.nat_rules), (500, 3_000));
    let e = errors(&with("{ tier = 5 }"));
    assert!(e.iter().any(|e| e.contains("firewalls.capacity.tier") && e.contains("memory tier")), "{e:#?}");
    let e = errors(&with("{ fqdn_addresses = 10 }"));
    assert!(e.iter().any(|e| e.contains("firewalls.capacity") && e.contains("needs a `tier`")), "{e:#?}");
    let e = errors(&with("{ tier = 2, fqdn = 1 }"));
    assert!(!e.is_empty(), "an unknown key is an error");
}

#[test]
fn only_deploying_commands_need_the_authcodes_file() {
    // An in-cluster sync pod mounts only pano-eks.toml: sync, status, verify, … must load without
    // the licence codes; up, render, validate and init still name the missing file.
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("pano-eks.toml");
    let ok = load_str(&path, VALID, LoadOptions::runtime());
    assert!(ok.is_ok(), "runtime load needs no authcodes file: {:?}", ok.err().map(|e| e.to_string()));
    let err = load_str(&path, VALID, LoadOptions::deploy(false)).unwrap_err().to_string();
    assert!(err.contains("firewalls.authcodes_file") && err.contains("cannot read"), "{err}");
}

//! The `--facts` JSON format: the brief's example, round trips, and errors that name the culprit.

mod common;

use pano_eks_core::*;

/// docs/facts.md's example, as it is there.
const EXAMPLE: &str = r#"{"clusters": [{"name": "shop",
   "subnets": [{"id": "subnet-1", "cidr": "192.168.110.0/24", "az": "us-west-2a"}],
   "services": [{"namespace": "default", "name": "frontend", "labels": {"panw-tg-port": "82"},
                 "annotations": {"pano-eks/alb-host": "shop.example.com",
                                 "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
                                 "service.beta.kubernetes.io/aws-load-balancer-internal": "true"},
                 "type": "LoadBalancer", "lb_hostname": "a1b2-0123.elb.us-west-2.amazonaws.com",
                 "ports": [{"port": 80, "protocol": "TCP"}], "created": "2026-11-26T10:00:00Z"}]}],
 "firewalls": [{"id": "i-0abc", "az": "us-west-2a", "trust_subnet_cidr": "192.168.2.0/24"}],
 "load_balancers": [{"name": "a1b2", "dns_name": "a1b2-0123.elb.us-west-2.amazonaws.com", "scheme": "internal"}]}"#;

#[test]
fn the_documented_example_parses_and_round_trips() {
    let f = Facts::from_json(EXAMPLE).unwrap();
    assert_eq!(f.clusters[0].services[0].service_type, "LoadBalancer");
    assert_eq!(f.clusters[0].services[0].created, common::ts("2026-11-26T10:00:00Z"));
    assert_eq!(Facts::from_json(&f.to_json()).unwrap(), f);
    let p = plan(&common::settings(), &f, &Observed::default()).unwrap();
    assert_eq!(p.services[0].state, ServiceState::Planned);
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/facts.md")).unwrap();
    assert!(doc.contains(EXAMPLE.trim_start_matches('{').lines().next().unwrap()), "docs/facts.md's example changed");
    // The same Service without the annotations, and AWS reporting its NLB internet-facing: exposed.
    let mut open = f.clone();
    open.load_balancers[0].scheme = "internet-facing".into();
    let p = plan(&common::settings(), &open, &Observed::default()).unwrap();
    assert_eq!(p.services[0].state, ServiceState::Exposed, "{}", p.services[0].reason);
}

#[test]
fn optional_parts_default() {
    let f = Facts::from_json(
        r#"{"clusters": [{"name": "shop", "subnets": [{"id": "s", "cidr": "10.0.0.0/24", "az": "a"}]},
                         {"name": "blog", "services": [{"namespace": "d", "name": "x", "type": "LoadBalancer",
                           "lb_hostname": null, "ports": [{"port": 80}], "labels": {"panw-tg-port": "81"},
                           "annotations": {"a": "b"}, "created": "2026-11-26T10:00:00.5+02:00"}]}],
            "firewalls": []}"#,
    )
    .unwrap();
    assert!(f.clusters[0].services.is_empty());
    assert!(f.clusters[1].subnets.is_empty());
    let s = &f.clusters[1].services[0];
    assert_eq!((s.lb_hostname.as_deref(), s.ports[0].protocol.as_str()), (None, "TCP"));
    let p = plan(&common::settings(), &f, &Observed::default()).unwrap();
    assert_eq!(p.services[0].state, ServiceState::Pending);
}

#[test]
fn errors_name_the_culprit() {
    let cases: Vec<(String, &[&str])> = vec![
        (EXAMPLE.replace("\"az\": \"us-west-2a\", \"trust", "\"zone\": \"x\", \"trust"), &["unknown field `zone`", "line 9"]),
        (EXAMPLE.replace("\"lb_hostname\"", "\"hostname\""), &["unknown field `hostname`", "line 7"]),
        (EXAMPLE.replace("\"clusters\"", "\"cluster\""), &["unknown field `cluster`"]),
        (EXAMPLE.replace("2026-11-26T10:00:00Z", "2026-11-26 10:00"), &["invalid RFC 3339 timestamp", "2026-11-26 10:00", "line 8"]),
        (EXAMPLE.replace("\"port\": 80", "\"port\": \"80\""), &["invalid type", "line 8"]),
        (EXAMPLE.replace(", \"created\": \"2026-11-26T10:00:00Z\"", ""), &["missing field `created`"]),
        (r#"{"clusters": []}"#.to_owned(), &["missing field `firewalls`"]),
        ("{".to_owned(), &["EOF", "line 1"]),
    ];
    for (json, needles) in cases {
        let e = Facts::from_json(&json).expect_err(&json).to_string();
        assert!(e.starts_with("invalid facts: "), "{e}");
        for n in needles {
            assert!(e.contains(n), "{e:?} should contain {n:?}");
        }
    }
}

#[test]
fn plan_and_observed_serialize_for_the_cli() {
    let f = Facts::from_json(EXAMPLE).unwrap();
    let p = plan(&common::settings(), &f, &Observed::default()).unwrap();
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.contains("\"op\":\"create\"") && json.contains("\"kind\":\"nat-rule\""), "{json}");
    let back: Plan = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
    let mut o = Observed::default();
    o.apply(&p.operations);
    let back: Observed = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
    assert_eq!(back, o);
    assert!(serde_json::from_str::<Observed>(r#"{"tagz": []}"#).unwrap_err().to_string().contains("tagz"));
}

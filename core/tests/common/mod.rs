//! Builders shared by the table tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use pano_eks_core::*;

pub fn settings() -> PlanSettings {
    PlanSettings::new("prod", "eks-dg", "eks-tpl")
}

pub fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// A ready LoadBalancer Service labelled with `label`, TCP port 80.
pub fn svc(ns: &str, name: &str, label: &str) -> ServiceFacts {
    ServiceFacts {
        namespace: ns.into(),
        name: name.into(),
        labels: BTreeMap::from([("panw-tg-port".to_owned(), label.to_owned())]),
        // The lab's Services: an NLB the cloud provider makes internal (not `exposed`).
        annotations: BTreeMap::from([
            ("service.beta.kubernetes.io/aws-load-balancer-type".to_owned(), "nlb".to_owned()),
            ("service.beta.kubernetes.io/aws-load-balancer-internal".to_owned(), "true".to_owned()),
        ]),
        service_type: "LoadBalancer".into(),
        load_balancer_class: None,
        lb_hostname: Some(format!("internal-{name}-1.elb.us-west-2.amazonaws.com")),
        ports: vec![PortFacts { port: 80, protocol: "TCP".into() }],
        created: ts("2026-11-26T10:00:00Z"),
    }
}

pub fn created(mut s: ServiceFacts, at: &str) -> ServiceFacts {
    s.created = ts(at);
    s
}

pub fn cluster(name: &str, subnets: &[&str], services: Vec<ServiceFacts>) -> ClusterFacts {
    ClusterFacts {
        name: name.into(),
        subnets: subnets
            .iter()
            .enumerate()
            .map(|(i, c)| SubnetFacts { id: format!("subnet-{name}-{i}"), cidr: (*c).into(), az: "us-west-2a".into() })
            .collect(),
        services,
    }
}

pub fn fw(id: &str, trust: &str) -> FirewallFacts {
    FirewallFacts { id: id.into(), az: "us-west-2a".into(), trust_subnet_cidr: trust.into() }
}

pub fn facts(clusters: Vec<ClusterFacts>, firewalls: Vec<FirewallFacts>) -> Facts {
    Facts { clusters, firewalls, ..Default::default() }
}

pub fn run(f: &Facts, observed: &Observed) -> Plan {
    plan(&settings(), f, observed).unwrap()
}

/// Observed state after applying the plan for `f` to `start`.
pub fn converge(f: &Facts, start: &Observed) -> Observed {
    let mut o = start.clone();
    o.apply(&run(f, start).operations);
    o
}

pub fn op_names(p: &Plan, kind: Kind) -> Vec<String> {
    p.operations.iter().filter(|o| o.kind() == kind).map(|o| o.name().to_owned()).collect()
}

pub fn deletes(p: &Plan) -> Vec<(Kind, String)> {
    p.operations
        .iter()
        .filter_map(|o| match o {
            Operation::Delete { kind, name } => Some((*kind, name.clone())),
            _ => None,
        })
        .collect()
}

pub fn status<'a>(p: &'a Plan, ns: &str, name: &str) -> &'a ServiceStatus {
    p.services.iter().find(|s| s.namespace == ns && s.name == name).unwrap_or_else(|| panic!("no status for {ns}/{name}"))
}

pub fn foreign_address(name: &str, tags: &[&str]) -> Address {
    Address {
        name: name.into(),
        value: AddressValue::IpNetmask("10.9.9.9/32".into()),
        description: None,
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        unmodelled: vec![],
    }
}

/// The simple one-cluster, one-service world of the brief.
pub fn shop() -> Facts {
    facts(vec![cluster("shop", &["192.168.110.0/24"], vec![svc("default", "frontend", "82")])], vec![fw("i-0abc", "192.168.2.0/24")])
}

use super::*;

fn eni(id: &str, status: &str, subnet: &str, groups: &[&str]) -> Eni {
    Eni {
        id: id.into(),
        status: status.into(),
        subnet_id: subnet.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        description: String::new(),
    }
}

fn res(ty: &str, id: Option<&str>) -> StackResource {
    StackResource {
        logical_id: "X".into(),
        physical_id: id.map(str::to_string),
        resource_type: ty.into(),
        status: "CREATE_COMPLETE".into(),
    }
}

#[test]
fn kubernetes_made_leftovers_are_residue_named_by_cluster() {
    let found = Found {
        load_balancers: vec![("arn:lb".into(), Some("shop/frontend".into()))],
        target_groups: vec!["arn:tg".into()],
        security_groups: vec!["sg-k8s".into()],
    };
    let got = kube_leftovers("shop", &found);
    let got: Vec<(&str, &str)> = got.iter().map(|l| (l.kind.as_str(), l.id.as_str())).collect();
    assert_eq!(
        got,
        vec![
            ("load-balancer (Kubernetes, cluster shop)", "arn:lb"),
            ("target-group (Kubernetes, cluster shop)", "arn:tg"),
            ("security-group (Kubernetes, cluster shop)", "sg-k8s"),
        ]
    );
    assert!(kube_leftovers("shop", &Default::default()).is_empty());
}

#[test]
fn sweeps_only_detached_enis_of_our_groups_or_subnets() {
    let enis = vec![
        eni("eni-1", "available", "subnet-ours", &[]),
        eni("eni-2", "available", "subnet-other", &["sg-ours"]),
        eni("eni-3", "in-use", "subnet-ours", &["sg-ours"]),
        eni("eni-4", "available", "subnet-other", &["sg-other"]),
        eni("eni-0", "available", "subnet-ours", &["sg-other"]),
    ];
    let groups = BTreeSet::from(["sg-ours".to_string()]);
    let subnets = BTreeSet::from(["subnet-ours".to_string()]);
    assert_eq!(sweepable(&enis, &groups, &subnets), vec!["eni-0", "eni-1", "eni-2"]);
    assert!(sweepable(&enis, &BTreeSet::new(), &BTreeSet::new()).is_empty());
}

#[test]
fn stacks_go_access_nodes_then_cluster_per_cluster_then_the_firewall() {
    let c = |n: &str| ClusterStacks { access: None, nodes: format!("demo-{n}-nodes"), cluster: format!("demo-{n}-cluster") };
    assert_eq!(
        deletion_order(&[c("shop"), c("pay")], "demo-firewall"),
        vec!["demo-shop-nodes", "demo-shop-cluster", "demo-pay-nodes", "demo-pay-cluster", "demo-firewall"]
    );
    // The cluster sync runs in: its access stack (add-on, association, role) goes first.
    let shop = ClusterStacks { access: Some("demo-shop-sync-access".into()), ..c("shop") };
    assert_eq!(
        deletion_order(&[shop, c("pay")], "demo-firewall"),
        vec!["demo-shop-sync-access", "demo-shop-nodes", "demo-shop-cluster", "demo-pay-nodes", "demo-pay-cluster", "demo-firewall"]
    );
    assert_eq!(deletion_order(&[], "demo-firewall"), vec!["demo-firewall"]);
}

#[test]
fn the_sweep_scope_is_what_the_stacks_own() {
    let nodes = vec![res("AWS::EC2::SecurityGroup", Some("sg-nodes")), res("AWS::IAM::Role", Some("role")), res("AWS::EC2::Subnet", None)];
    let fw = vec![
        res("AWS::EC2::VPC", Some("vpc-fw")),
        res("AWS::EC2::Subnet", Some("subnet-trust")),
        res("AWS::EC2::SecurityGroup", Some("sg-fw")),
    ];
    // The VPC resource of the firewall stack when no stack outputs VpcId.
    let s = SweepScope::from_stacks([(None, nodes.as_slice()), (None, fw.as_slice())], Some("vpc-existing"));
    assert_eq!(s.vpc_id.as_deref(), Some("vpc-fw"));
    assert_eq!(s.groups, BTreeSet::from(["sg-fw".to_string(), "sg-nodes".to_string()]));
    assert_eq!(s.subnets, BTreeSet::from(["subnet-trust".to_string()]));
    // A VpcId output wins over a later VPC resource; the first output wins over later ones.
    let s = SweepScope::from_stacks([(Some("vpc-out"), nodes.as_slice()), (Some("vpc-2"), fw.as_slice())], None);
    assert_eq!(s.vpc_id.as_deref(), Some("vpc-out"));
    // Brownfield: no stack owns the VPC; the configured one is swept.
    let s = SweepScope::from_stacks([(None, nodes.as_slice())], Some("vpc-existing"));
    assert_eq!(s.vpc_id.as_deref(), Some("vpc-existing"));
    assert_eq!(SweepScope::from_stacks([], None), SweepScope::default());
}

#[test]
fn residue_is_what_is_not_going_or_gone() {
    for (state, want) in [("running", true), ("stopped", true), ("pending", true), ("shutting-down", false), ("terminated", false)] {
        assert_eq!(instance_is_residue(state), want, "{state}");
    }
    assert_eq!(stack_leftover("demo-firewall", "DELETE_COMPLETE"), None);
    assert_eq!(
        stack_leftover("demo-firewall", "DELETE_FAILED"),
        Some(Leftover { kind: "stack".into(), id: "demo-firewall (DELETE_FAILED)".into() })
    );
    let l = |k: &str, i: &str| Leftover { kind: k.into(), id: i.into() };
    assert_eq!(report(vec![l("vpc", "vpc-1"), l("bucket", "b"), l("vpc", "vpc-1")]), vec![l("bucket", "b"), l("vpc", "vpc-1")]);
}

//! What `sync` may do in AWS when it runs in a cluster (Pod Identity): the least-privilege IAM
//! policy, one statement per concern, and which IAM actions each API call sync makes needs.
//!
//! Every statement names only what sync calls (see [`permissions_for_call`]); the ALB/NLB front
//! writes are there only with `sync.manage_alb`, the egress writes only with
//! `network.outbound_via_firewall`. Writes are scoped by ARN (our load balancer, firewall group,
//! stacks, bootstrap object) and by the ownership tag the code puts
//! (`pano-eks:deployment`, [`crate::front::alb::DEPLOYMENT_TAG`]): `aws:RequestTag` when we
//! create, `aws:ResourceTag` when we change or delete. Actions without resource-level
//! permissions (the `Describe*` reads) are the only `"*"` resources; no action is a wildcard.
//!
//! Resource types and condition keys per action: the AWS Service Authorization Reference,
//! <https://docs.aws.amazon.com/service-authorization/latest/reference/> (list_amazonec2,
//! list_awselasticloadbalancingv2, list_amazonec2autoscaling, list_awscloudformation,
//! list_amazonelastickubernetesservice, list_amazons3); the tag-on-create rules: "Elastic Load
//! Balancing API permissions to tag resources during creation" (ELB user guide) and "Grant
//! permission to tag resources during creation" (EC2 user guide). docs/aws-access.md explains
//! each statement.
//!
//! ARNs and values are CloudFormation `!Sub` strings: `${AWS::Partition}`, `${AWS::Region}`,
//! `${AWS::AccountId}` and the template's parameters ([`param`]), so no config value is spliced
//! into template text.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::front::alb::DEPLOYMENT_TAG;

/// The names of the access template's parameters the statements refer to.
pub mod param {
    pub const DEPLOYMENT: &str = "DeploymentName";
    pub const BOOTSTRAP_BUCKET: &str = "BootstrapBucket";
    pub const FIREWALL_STACK: &str = "FirewallStack";
    pub const FIREWALL_ASG: &str = "FirewallAsgName";
    pub const ELB_NAME: &str = "ElbName";
    /// `ClusterName1`, `ClusterName2`, … : every `[[clusters]]` entry (discovery reads them all).
    pub fn cluster(n: usize) -> String {
        format!("ClusterName{n}")
    }
    /// `ClusterStack1`, … : the cluster stacks whose `ClusterRouteTable` egress reads.
    pub fn cluster_stack(n: usize) -> String {
        format!("ClusterStack{n}")
    }
}

/// The bootstrap package's object sync reads (vm-auth-key expiry) and rewrites (renewal).
pub const BOOTSTRAP_KEY_OBJECT: &str = "config/init-cfg.txt";

/// Which front `sync.manage_alb` manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    Alb,
    Nlb,
}

/// What sync does in AWS for this deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Number of `[[clusters]]` entries (each is discovered: eks:DescribeCluster).
    pub clusters: usize,
    /// `sync.manage_alb`, with the front type (`firewalls.elb_type`).
    pub front: Option<Front>,
    /// `network.outbound_via_firewall`.
    pub outbound: bool,
}

/// One condition: `{operator: {key: values}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Condition {
    pub operator: &'static str,
    pub key: String,
    pub values: Vec<String>,
}

/// One `Allow` statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    pub sid: &'static str,
    pub actions: Vec<&'static str>,
    pub resources: Vec<String>,
    pub conditions: Vec<Condition>,
}

fn arn(service: &str, rest: &str) -> String {
    format!("arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{rest}")
}

fn p(name: &str) -> String {
    format!("${{{name}}}")
}

fn ours(operator_key: &'static str) -> Condition {
    Condition { operator: "StringEquals", key: format!("{operator_key}/{DEPLOYMENT_TAG}"), values: vec![p(param::DEPLOYMENT)] }
}

/// `aws:RequestTag/pano-eks:deployment = <deployment>`: what we create carries our mark.
fn request_tagged() -> Condition {
    ours("aws:RequestTag")
}

/// `aws:ResourceTag/pano-eks:deployment = <deployment>`: we change only what carries our mark.
fn resource_tagged() -> Condition {
    ours("aws:ResourceTag")
}

fn st(sid: &'static str, actions: &[&'static str], resources: Vec<String>, conditions: Vec<Condition>) -> Statement {
    let mut actions = actions.to_vec();
    actions.sort_unstable();
    Statement { sid, actions, resources, conditions }
}

/// The policy of the sync role: statements in a fixed order, actions sorted in each.
pub fn sync_policy(scope: &Scope) -> Vec<Statement> {
    let mut out = Vec::new();
    // Discovery (every sync): subnets of each cluster, the firewall group's instances, the load
    // balancers (each Service's own scheme: core::security::exposure). No resource-level
    // permissions exist for these Describe calls.
    out.push(st(
        "Discovery",
        &[
            "autoscaling:DescribeAutoScalingGroups",
            "ec2:DescribeInstances",
            "ec2:DescribeSubnets",
            "elasticloadbalancing:DescribeLoadBalancers",
        ],
        vec!["*".into()],
        vec![],
    ));
    let clusters: Vec<String> = (1..=scope.clusters).map(|n| arn("eks", &format!("cluster/{}", p(&param::cluster(n))))).collect();
    out.push(st("DescribeClusters", &["eks:DescribeCluster"], clusters, vec![]));
    // The bootstrap package's vm-auth-key: read (expiry, HeadObject is s3:GetObject) and renewed.
    let object = format!("arn:${{AWS::Partition}}:s3:::{}/{BOOTSTRAP_KEY_OBJECT}", p(param::BOOTSTRAP_BUCKET));
    out.push(st("BootstrapKey", &["s3:GetObject", "s3:PutObject"], vec![object], vec![]));
    // ListObjectsV2 after the upload; also what makes a missing key a 404 rather than a 403.
    out.push(st(
        "BootstrapBucketList",
        &["s3:ListBucket"],
        vec![format!("arn:${{AWS::Partition}}:s3:::{}", p(param::BOOTSTRAP_BUCKET))],
        vec![],
    ));
    if scope.front.is_none() && !scope.outbound {
        return out;
    }
    // The front's and egress's context: the stacks' outputs.
    let mut stacks = vec![arn("cloudformation", &format!("stack/{}/*", p(param::FIREWALL_STACK)))];
    if scope.outbound {
        stacks.extend((1..=scope.clusters).map(|n| arn("cloudformation", &format!("stack/{}/*", p(&param::cluster_stack(n))))));
    }
    out.push(st("StackOutputs", &["cloudformation:DescribeStacks"], stacks, vec![]));
    if let Some(front) = scope.front {
        front_statements(front, &mut out);
    }
    if scope.outbound {
        egress_statements(&mut out);
    }
    out
}

/// `"Null": {key: "false"}`: the tag is present on the resource.
fn has_resource_tag(tag: &str) -> Condition {
    Condition { operator: "Null", key: format!("aws:ResourceTag/{tag}"), values: vec!["false".into()] }
}

/// The name pattern of the extra fronts (`<deployment>-front-N`, or a hashed head for a long
/// deployment name: [`crate::front::shards::front_name`]); always `…-front-…`.
const EXTRA_FRONT: &str = "*-front-*";

fn front_statements(front: Front, out: &mut Vec<Statement>) {
    let elb = p(param::ELB_NAME);
    let target_groups = arn("elasticloadbalancing", "targetgroup/*/*");
    let kind = match front {
        Front::Alb => "app",
        Front::Nlb => "net",
    };
    // The extra fronts (core::front::shards, core::front::nlb_shards): created, listened on and
    // deleted by sync itself.
    let extra_lb = arn("elasticloadbalancing", &format!("loadbalancer/{kind}/{EXTRA_FRONT}/*"));
    let extra_listeners = arn("elasticloadbalancing", &format!("listener/{kind}/{EXTRA_FRONT}/*/*"));
    // Every front finds its shards (`<name>-front-N`, by Discovery's DescribeLoadBalancers) and
    // their listeners, and the targets of the groups registered directly (past the autoscaling
    // group's 50).
    let reads: &[&'static str] = match front {
        Front::Alb => &[
            "autoscaling:DescribeLoadBalancerTargetGroups",
            "elasticloadbalancing:DescribeListeners",
            "elasticloadbalancing:DescribeRules",
            "elasticloadbalancing:DescribeTags",
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:DescribeTargetHealth",
        ],
        Front::Nlb => &[
            "autoscaling:DescribeLoadBalancerTargetGroups",
            "ec2:DescribeSecurityGroupRules",
            "elasticloadbalancing:DescribeListeners",
            "elasticloadbalancing:DescribeTags",
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:DescribeTargetHealth",
        ],
    };
    out.push(st("FrontReads", reads, vec!["*".into()], vec![]));
    out.push(st(
        "FrontCreateTargetGroups",
        &["elasticloadbalancing:CreateTargetGroup"],
        vec![target_groups.clone()],
        vec![request_tagged()],
    ));
    // Tags given in a create are authorized as AddTags of that create only (CreateAction).
    let (creates, mut created): (Vec<String>, Vec<String>) = match front {
        Front::Alb => (
            vec!["CreateTargetGroup".into(), "CreateRule".into(), "CreateLoadBalancer".into(), "CreateListener".into()],
            vec![
                arn("elasticloadbalancing", &format!("listener-rule/app/{elb}/*/*/*")),
                arn("elasticloadbalancing", &format!("listener-rule/app/{EXTRA_FRONT}/*/*/*")),
            ],
        ),
        Front::Nlb => (
            vec!["CreateTargetGroup".into(), "CreateListener".into(), "CreateLoadBalancer".into()],
            vec![arn("elasticloadbalancing", &format!("listener/net/{elb}/*/*"))],
        ),
    };
    created.extend([extra_lb.clone(), extra_listeners.clone(), target_groups.clone()]);
    out.push(st(
        "FrontTagOnCreate",
        &["elasticloadbalancing:AddTags"],
        created,
        vec![Condition { operator: "StringEquals", key: "elasticloadbalancing:CreateAction".into(), values: creates }, request_tagged()],
    ));
    let own_tg: &[&'static str] = match front {
        Front::Alb => &["elasticloadbalancing:DeleteTargetGroup", "elasticloadbalancing:ModifyTargetGroup"],
        Front::Nlb => &["elasticloadbalancing:DeleteTargetGroup"],
    };
    out.push(st("FrontOwnTargetGroups", own_tg, vec![target_groups.clone()], vec![resource_tagged()]));
    let asg = arn("autoscaling", &format!("autoScalingGroup:*:autoScalingGroupName/{}", p(param::FIREWALL_ASG)));
    out.push(st(
        "FrontAttachToFirewalls",
        &["autoscaling:AttachLoadBalancerTargetGroups", "autoscaling:DetachLoadBalancerTargetGroups"],
        vec![asg],
        vec![],
    ));
    // Past the autoscaling group's 50 target groups the firewalls are registered directly.
    out.push(st(
        "FrontDirectTargets",
        &["elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:RegisterTargets"],
        vec![target_groups],
        vec![resource_tagged()],
    ));
    // The extra fronts: made with our tags, deleted only when they carry our mark and a front
    // number (the stack's load balancer carries the stack tags, pano-eks:deployment included,
    // but no pano-eks:front).
    out.push(st("FrontCreateLoadBalancers", &["elasticloadbalancing:CreateLoadBalancer"], vec![extra_lb.clone()], vec![request_tagged()]));
    out.push(st(
        "FrontDeleteLoadBalancers",
        &["elasticloadbalancing:DeleteLoadBalancer"],
        vec![extra_lb.clone()],
        vec![resource_tagged(), has_resource_tag(crate::front::shards::FRONT_TAG)],
    ));
    match front {
        Front::Alb => alb_statements(&elb, extra_lb, extra_listeners, out),
        Front::Nlb => nlb_statements(&elb, extra_lb, extra_listeners, out),
    }
}

fn alb_statements(elb: &str, extra_lb: String, extra_listeners: String, out: &mut Vec<Statement>) {
    let listener = arn("elasticloadbalancing", &format!("listener/app/{elb}/*/*"));
    let rules = arn("elasticloadbalancing", &format!("listener-rule/app/{elb}/*/*/*"));
    let extra_rules = arn("elasticloadbalancing", &format!("listener-rule/app/{EXTRA_FRONT}/*/*/*"));
    // An extra front's listener (its default: a fixed 404), tagged as ours.
    out.push(st(
        "AlbCreateFrontListeners",
        &["elasticloadbalancing:CreateListener"],
        vec![extra_lb, extra_listeners.clone()],
        vec![request_tagged()],
    ));
    out.push(st(
        "AlbCreateRules",
        &["elasticloadbalancing:CreateRule"],
        vec![listener.clone(), rules.clone(), extra_listeners.clone(), extra_rules.clone()],
        vec![request_tagged()],
    ));
    out.push(st(
        "AlbOwnRules",
        &["elasticloadbalancing:DeleteRule", "elasticloadbalancing:ModifyRule"],
        vec![rules, extra_rules],
        vec![resource_tagged()],
    ));
    // The stack's listener carries no tags of ours (CloudFormation's listener has no Tags):
    // scoped by ARN to our load balancer.
    out.push(st("AlbDefaultAction", &["elasticloadbalancing:ModifyListener"], vec![listener], vec![]));
    // An extra front's listener carries our tags.
    out.push(st("AlbFrontDefaultAction", &["elasticloadbalancing:ModifyListener"], vec![extra_listeners], vec![resource_tagged()]));
}

fn nlb_statements(elb: &str, extra_lb: String, extra_listeners: String, out: &mut Vec<Statement>) {
    let lb = arn("elasticloadbalancing", &format!("loadbalancer/net/{elb}/*"));
    let listeners = arn("elasticloadbalancing", &format!("listener/net/{elb}/*/*"));
    out.push(st(
        "NlbCreateListeners",
        &["elasticloadbalancing:CreateListener"],
        vec![lb, listeners.clone(), extra_lb, extra_listeners.clone()],
        vec![request_tagged()],
    ));
    out.push(st(
        "NlbOwnListeners",
        &["elasticloadbalancing:DeleteListener"],
        vec![listeners.clone(), extra_listeners.clone()],
        vec![resource_tagged()],
    ));
    // The stack's listener (no tags of ours) by ARN; the extra fronts' listeners by our tags.
    out.push(st("NlbForward", &["elasticloadbalancing:ModifyListener"], vec![listeners], vec![]));
    out.push(st("NlbFrontForward", &["elasticloadbalancing:ModifyListener"], vec![extra_listeners], vec![resource_tagged()]));
    // The load balancers' security group (the firewall stack's, tagged by its stack tags; the
    // extra NLBs have it too).
    out.push(st(
        "NlbIngress",
        &["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
        vec![arn("ec2", "security-group/*")],
        vec![resource_tagged()],
    ));
}

fn egress_statements(out: &mut Vec<Statement>) {
    let eips = arn("ec2", "elastic-ip/*");
    out.push(st("EgressReads", &["ec2:DescribeAddresses", "ec2:DescribeRouteTables"], vec!["*".into()], vec![]));
    out.push(st("EgressAllocateEip", &["ec2:AllocateAddress"], vec![eips.clone()], vec![request_tagged()]));
    out.push(st(
        "EgressTagEipOnCreate",
        &["ec2:CreateTags"],
        vec![eips.clone()],
        vec![
            Condition { operator: "StringEquals", key: "ec2:CreateAction".into(), values: vec!["AllocateAddress".into()] },
            request_tagged(),
        ],
    ));
    out.push(st(
        "EgressOwnEips",
        &["ec2:AssociateAddress", "ec2:DisassociateAddress", "ec2:ReleaseAddress"],
        vec![eips],
        vec![resource_tagged()],
    ));
    // AssociateAddress / DisassociateAddress are also authorized on the interface the address goes
    // to; the firewalls' interfaces carry the launch template's tags, not ours.
    out.push(st(
        "EgressFirewallInterfaces",
        &["ec2:AssociateAddress", "ec2:DisassociateAddress"],
        vec![arn("ec2", "network-interface/*")],
        vec![],
    ));
    // The cluster route tables are the cluster stacks' (tagged by the stack tags).
    out.push(st(
        "EgressClusterRoutes",
        &["ec2:CreateRoute", "ec2:ReplaceRoute"],
        vec![arn("ec2", "route-table/*")],
        vec![resource_tagged()],
    ));
}

/// Every action the policy allows.
pub fn allowed_actions(policy: &[Statement]) -> BTreeSet<&'static str> {
    policy.iter().flat_map(|s| s.actions.iter().copied()).collect()
}

/// One AWS API call as observed on the wire.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    /// The signing name (`ec2`, `elasticloadbalancing`, `autoscaling`, `cloudformation`, `eks`, `s3`).
    pub service: String,
    /// The API operation (`DescribeSubnets`, `HeadObject`, `ListObjectsV2`, …).
    pub operation: String,
    /// The request carries tags for the resource it creates (tag on create).
    pub tags_on_create: bool,
}

/// The IAM actions a call needs: its own action (S3's operations map to `s3:GetObject` /
/// `s3:ListBucket` …) plus the tagging action a tag-on-create is also authorized as.
pub fn permissions_for_call(call: &Call) -> Vec<String> {
    let op = call.operation.as_str();
    let own = match (call.service.as_str(), op) {
        ("s3", "HeadObject" | "GetObject") => "s3:GetObject".to_string(),
        ("s3", "ListObjectsV2" | "ListObjects") => "s3:ListBucket".to_string(),
        (svc, _) => format!("{svc}:{op}"),
    };
    let mut out = vec![own];
    if call.tags_on_create {
        match call.service.as_str() {
            "elasticloadbalancing" => out.push("elasticloadbalancing:AddTags".into()),
            "ec2" => out.push("ec2:CreateTags".into()),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(front: Option<Front>, outbound: bool) -> Scope {
        Scope { clusters: 2, front, outbound }
    }

    #[test]
    fn the_front_and_egress_writes_come_only_with_their_switch() {
        let reads = allowed_actions(&sync_policy(&scope(None, false)));
        assert_eq!(
            reads.into_iter().collect::<Vec<_>>(),
            vec![
                "autoscaling:DescribeAutoScalingGroups",
                "ec2:DescribeInstances",
                "ec2:DescribeSubnets",
                "eks:DescribeCluster",
                "elasticloadbalancing:DescribeLoadBalancers",
                "s3:GetObject",
                "s3:ListBucket",
                "s3:PutObject"
            ]
        );
        let alb = allowed_actions(&sync_policy(&scope(Some(Front::Alb), false)));
        assert!(alb.contains("elasticloadbalancing:CreateRule") && alb.contains("elasticloadbalancing:CreateLoadBalancer"));
        // An ALB front's listener is the stack's: only an extra front's is created (its own
        // statement, on the extra fronts' ARNs only).
        let alb_policy = sync_policy(&scope(Some(Front::Alb), false));
        let creates_listeners: Vec<&Statement> =
            alb_policy.iter().filter(|s| s.actions.contains(&"elasticloadbalancing:CreateListener")).collect();
        assert_eq!(creates_listeners.len(), 1);
        assert!(creates_listeners[0].resources.iter().all(|r| r.contains("/app/*-front-*/")), "{:?}", creates_listeners[0]);
        assert!(!alb.iter().any(|a| a.contains("Address") || a.contains("Route")), "{alb:?}");
        let nlb = allowed_actions(&sync_policy(&scope(Some(Front::Nlb), false)));
        assert!(nlb.contains("elasticloadbalancing:CreateListener") && !nlb.contains("elasticloadbalancing:CreateRule"));
        assert!(nlb.contains("ec2:AuthorizeSecurityGroupIngress") && !alb.contains("ec2:AuthorizeSecurityGroupIngress"));
        let egress = allowed_actions(&sync_policy(&scope(None, true)));
        assert!(egress.contains("ec2:ReplaceRoute") && egress.contains("ec2:AllocateAddress"));
        // Egress alone reads the load balancers (Discovery: each Service's scheme), writes none.
        let elb: Vec<&&str> = egress.iter().filter(|a| a.starts_with("elasticloadbalancing:")).collect();
        assert_eq!(elb, [&"elasticloadbalancing:DescribeLoadBalancers"], "{egress:?}");
    }

    #[test]
    fn no_wildcard_actions_and_only_describes_on_every_resource() {
        for front in [None, Some(Front::Alb), Some(Front::Nlb)] {
            for outbound in [false, true] {
                for s in sync_policy(&scope(front, outbound)) {
                    assert!(s.actions.iter().all(|a| !a.contains('*') && a.contains(':')), "{s:?}");
                    if s.resources.iter().any(|r| r == "*") {
                        assert_eq!(s.resources, vec!["*"], "{}", s.sid);
                        assert!(
                            s.actions.iter().all(|a| a.split(':').nth(1).unwrap().starts_with("Describe")),
                            "{}: {:?}",
                            s.sid,
                            s.actions
                        );
                        assert!(s.conditions.is_empty());
                    }
                }
            }
        }
    }

    #[test]
    fn every_write_is_scoped_by_tag_or_by_the_arn_of_something_ours() {
        let policy = sync_policy(&scope(Some(Front::Alb), true));
        let sids: BTreeSet<&str> = policy.iter().map(|s| s.sid).collect();
        assert_eq!(sids.len(), policy.len(), "unique sids");
        // Writes on resources anyone could own are tag-conditioned.
        for sid in [
            "FrontCreateTargetGroups",
            "FrontOwnTargetGroups",
            "FrontDirectTargets",
            "FrontCreateLoadBalancers",
            "FrontDeleteLoadBalancers",
            "AlbCreateFrontListeners",
            "AlbOwnRules",
            "AlbFrontDefaultAction",
            "EgressAllocateEip",
            "EgressOwnEips",
            "EgressClusterRoutes",
        ] {
            let s = policy.iter().find(|s| s.sid == sid).unwrap();
            assert!(s.conditions.iter().any(|c| c.key.ends_with("/pano-eks:deployment") && c.values == vec!["${DeploymentName}"]), "{sid}");
        }
        // The rest name our load balancer, firewall group, stacks or bootstrap object.
        let arns = |sid: &str| policy.iter().find(|s| s.sid == sid).unwrap().resources.clone();
        assert_eq!(
            arns("AlbDefaultAction"),
            vec!["arn:${AWS::Partition}:elasticloadbalancing:${AWS::Region}:${AWS::AccountId}:listener/app/${ElbName}/*/*"]
        );
        assert_eq!(
            arns("FrontAttachToFirewalls"),
            vec![
                "arn:${AWS::Partition}:autoscaling:${AWS::Region}:${AWS::AccountId}:autoScalingGroup:*:autoScalingGroupName/${FirewallAsgName}"
            ]
        );
        assert_eq!(arns("BootstrapKey"), vec!["arn:${AWS::Partition}:s3:::${BootstrapBucket}/config/init-cfg.txt"]);
        assert_eq!(
            arns("DescribeClusters"),
            vec![
                "arn:${AWS::Partition}:eks:${AWS::Region}:${AWS::AccountId}:cluster/${ClusterName1}",
                "arn:${AWS::Partition}:eks:${AWS::Region}:${AWS::AccountId}:cluster/${ClusterName2}"
            ]
        );
        assert_eq!(arns("StackOutputs").len(), 3, "the firewall stack and both cluster stacks (egress reads their route tables)");
        let tag_on_create = policy.iter().find(|s| s.sid == "FrontTagOnCreate").unwrap();
        assert_eq!(tag_on_create.conditions[0].values, vec!["CreateTargetGroup", "CreateRule", "CreateLoadBalancer", "CreateListener"]);
        // Load balancers: only the extra fronts, and deleted only with a front number (the
        // stack's own carries pano-eks:deployment through the stack tags, not pano-eks:front).
        let extra = "arn:${AWS::Partition}:elasticloadbalancing:${AWS::Region}:${AWS::AccountId}:loadbalancer/app/*-front-*/*";
        assert_eq!(arns("FrontCreateLoadBalancers"), vec![extra]);
        let delete = policy.iter().find(|s| s.sid == "FrontDeleteLoadBalancers").unwrap();
        assert_eq!(delete.resources, vec![extra]);
        assert!(
            delete.conditions.iter().any(|c| c.operator == "Null" && c.key == "aws:ResourceTag/pano-eks:front" && c.values == ["false"]),
            "{delete:?}"
        );
        // The front names match the pattern, the hashed long form too.
        for n in [2, 10] {
            for dep in ["demo", "a-very-long-deployment-name-indeed"] {
                assert!(crate::front::shards::front_name(dep, n).contains("-front-"));
            }
        }
        // Without egress only the firewall stack's outputs are read.
        let alb_only = sync_policy(&scope(Some(Front::Alb), false));
        assert_eq!(alb_only.iter().find(|s| s.sid == "StackOutputs").unwrap().resources.len(), 1);
    }

    #[test]
    fn calls_map_to_their_actions_and_tag_on_create_adds_the_tagging_action() {
        let call = |service: &str, operation: &str, tags_on_create: bool| {
            permissions_for_call(&Call { service: service.into(), operation: operation.into(), tags_on_create })
        };
        let table: &[(&str, &str, bool, &[&str])] = &[
            ("ec2", "DescribeSubnets", false, &["ec2:DescribeSubnets"]),
            ("ec2", "AllocateAddress", true, &["ec2:AllocateAddress", "ec2:CreateTags"]),
            (
                "elasticloadbalancing",
                "CreateTargetGroup",
                true,
                &["elasticloadbalancing:CreateTargetGroup", "elasticloadbalancing:AddTags"],
            ),
            ("elasticloadbalancing", "CreateRule", false, &["elasticloadbalancing:CreateRule"]),
            ("s3", "HeadObject", false, &["s3:GetObject"]),
            ("s3", "GetObject", false, &["s3:GetObject"]),
            ("s3", "ListObjectsV2", false, &["s3:ListBucket"]),
            ("s3", "PutObject", false, &["s3:PutObject"]),
            ("eks", "DescribeCluster", false, &["eks:DescribeCluster"]),
        ];
        for (svc, op, tagged, want) in table {
            assert_eq!(call(svc, op, *tagged), want.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "{svc}:{op}");
        }
    }
}

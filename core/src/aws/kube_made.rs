//! What Kubernetes made in AWS for a cluster, known by its tags: the load balancers, target
//! groups and security groups of its `LoadBalancer` Services (the in-tree cloud provider tags
//! them `kubernetes.io/cluster/<cluster>=owned`, the AWS Load Balancer Controller
//! `elbv2.k8s.aws/cluster=<cluster>` and `service.k8s.aws/stack=<namespace>/<name>`), and which
//! network interfaces still belong to a deleted load balancer. `down` removes them in the order
//! load balancers, (their interfaces drained) target groups, security groups.

use std::collections::{BTreeMap, BTreeSet};

pub const K8S_CLUSTER_TAG_PREFIX: &str = "kubernetes.io/cluster/";
pub const LBC_CLUSTER_TAG: &str = "elbv2.k8s.aws/cluster";
pub const LBC_STACK_TAG: &str = "service.k8s.aws/stack";
pub const K8S_SERVICE_TAG: &str = "kubernetes.io/service-name";

/// Tags of resources that others made and delete: our stacks (`pano-eks:deployment`, and
/// CloudFormation's own `aws:cloudformation:stack-name`) and EKS (the cluster security group,
/// `aws:eks:cluster-name`). The node security group, for one, is tagged
/// `kubernetes.io/cluster/<cluster>=owned` by the node stack as EKS requires.
pub const NOT_KUBERNETES_MADE: &[&str] = &[crate::front::alb::DEPLOYMENT_TAG, "aws:cloudformation:stack-name", "aws:eks:cluster-name"];

/// Made by Kubernetes for `cluster`: `kubernetes.io/cluster/<cluster>=owned` (`shared` marks
/// what Kubernetes only uses, such as subnets: never ours to delete), or the controller's
/// `elbv2.k8s.aws/cluster=<cluster>`; and not made by a stack or by EKS (`NOT_KUBERNETES_MADE`).
pub fn made_for(tags: &BTreeMap<String, String>, cluster: &str) -> bool {
    let tagged = tags.get(&format!("{K8S_CLUSTER_TAG_PREFIX}{cluster}")).map(String::as_str) == Some("owned")
        || tags.get(LBC_CLUSTER_TAG).map(String::as_str) == Some(cluster);
    tagged && !NOT_KUBERNETES_MADE.iter().any(|k| tags.contains_key(*k))
}

/// The Service a resource was made for, when its tags say.
pub fn service_of(tags: &BTreeMap<String, String>) -> Option<String> {
    tags.get(LBC_STACK_TAG).or_else(|| tags.get(K8S_SERVICE_TAG)).cloned()
}

/// The description ELB gives its network interfaces: `ELB net/<name>/<id>` for
/// `arn:…:loadbalancer/net/<name>/<id>` (`app/…` for an ALB).
pub fn lb_eni_description(arn: &str) -> Option<String> {
    let (_, tail) = arn.split_once(":loadbalancer/")?;
    (tail.split('/').count() == 3).then(|| format!("ELB {tail}"))
}

/// The ENIs (id, description) still belonging to the given load balancers, sorted.
pub fn draining(enis: &[(String, String)], lb_arns: &[String]) -> Vec<String> {
    let wanted: BTreeSet<String> = lb_arns.iter().filter_map(|a| lb_eni_description(a)).collect();
    let mut ids: Vec<String> = enis.iter().filter(|(_, d)| wanted.contains(d)).map(|(i, _)| i.clone()).collect();
    ids.sort();
    ids
}

/// Kubernetes-made AWS resources of one cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// (ARN, Service it serves if tagged)
    pub load_balancers: Vec<(String, Option<String>)>,
    pub target_groups: Vec<String>,
    pub security_groups: Vec<String>,
}

impl Found {
    pub fn is_empty(&self) -> bool {
        self.load_balancers.is_empty() && self.target_groups.is_empty() && self.security_groups.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn only_what_kubernetes_made_for_this_cluster() {
        for (t, want) in [
            (tags(&[("kubernetes.io/cluster/shop", "owned")]), true),
            (tags(&[("elbv2.k8s.aws/cluster", "shop"), ("service.k8s.aws/stack", "default/web")]), true),
            (tags(&[("kubernetes.io/cluster/shop", "shared")]), false), // used, not made (subnets)
            (tags(&[("kubernetes.io/cluster/shop2", "owned")]), false),
            (tags(&[("elbv2.k8s.aws/cluster", "shop2")]), false),
            (tags(&[("service.k8s.aws/stack", "default/web")]), false),
            (tags(&[("pano-eks:deployment", "demo")]), false),
            (tags(&[]), false),
            // Made by our node stack (tagged owned as EKS requires), by any stack, or by EKS itself.
            (tags(&[("kubernetes.io/cluster/shop", "owned"), ("pano-eks:deployment", "demo")]), false),
            (tags(&[("kubernetes.io/cluster/shop", "owned"), ("aws:cloudformation:stack-name", "eksctl-shop-nodegroup")]), false),
            (tags(&[("kubernetes.io/cluster/shop", "owned"), ("aws:eks:cluster-name", "shop")]), false),
        ] {
            assert_eq!(made_for(&t, "shop"), want, "{t:?}");
        }
        assert_eq!(service_of(&tags(&[("service.k8s.aws/stack", "default/web")])).as_deref(), Some("default/web"));
        assert_eq!(service_of(&tags(&[("kubernetes.io/service-name", "shop/frontend")])).as_deref(), Some("shop/frontend"));
    }

    #[test]
    fn load_balancer_interfaces_are_known_by_their_description() {
        let nlb = "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/net/k8s-default-web-1a2b3c/50dc6c495c0c9188";
        let alb = "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/k8s-shop-ing/0123456789abcdef";
        assert_eq!(lb_eni_description(nlb).as_deref(), Some("ELB net/k8s-default-web-1a2b3c/50dc6c495c0c9188"));
        assert_eq!(lb_eni_description(alb).as_deref(), Some("ELB app/k8s-shop-ing/0123456789abcdef"));
        assert_eq!(lb_eni_description("arn:aws:elasticloadbalancing:us-west-2:1:targetgroup/x/y"), None);
        let enis = vec![
            ("eni-2".to_string(), "ELB net/k8s-default-web-1a2b3c/50dc6c495c0c9188".to_string()),
            ("eni-1".to_string(), "ELB net/k8s-default-web-1a2b3c/50dc6c495c0c9188".to_string()),
            ("eni-3".to_string(), "ELB net/someone-else/ffff".to_string()),
            ("eni-4".to_string(), "orphan of a deleted NLB".to_string()),
        ];
        assert_eq!(draining(&enis, &[nlb.to_string(), alb.to_string()]), vec!["eni-1", "eni-2"]);
        assert!(draining(&enis, &[]).is_empty());
    }
}

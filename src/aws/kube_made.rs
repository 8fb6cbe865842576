//! What Kubernetes made in AWS for a cluster: the load balancers, target groups and security
//! groups of its `LoadBalancer` Services (the in-tree cloud provider tags them
//! `kubernetes.io/cluster/<cluster>=owned`, the AWS Load Balancer Controller
//! `elbv2.k8s.aws/cluster=<cluster>` and `service.k8s.aws/stack=<namespace>/<name>`). `down`
//! deletes the Services through the cluster; when the cluster cannot be reached (or is already
//! gone) it falls back on these tags: it deletes the load balancers, waits (bounded) for their
//! ENIs to drain, then the target groups and security groups. Whatever stays is residue.
//!
//! What is Kubernetes-made, and which interfaces still drain, is decided in
//! `pano_eks_core::aws::kube_made` (re-exported here); this module observes and applies.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;

pub use pano_eks_core::aws::kube_made::{
    Found, K8S_CLUSTER_TAG_PREFIX, K8S_SERVICE_TAG, LBC_CLUSTER_TAG, LBC_STACK_TAG, NOT_KUBERNETES_MADE, draining, lb_eni_description,
    made_for, service_of,
};

use super::{Aws, AwsError, sdk_err};

fn ec2_tags(tags: &[aws_sdk_ec2::types::Tag]) -> BTreeMap<String, String> {
    tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect()
}

/// ELBv2 tags of the given ARNs (20 per call, the API's limit).
async fn elbv2_tags(aws: &Aws, arns: &[String]) -> Result<BTreeMap<String, BTreeMap<String, String>>, AwsError> {
    let mut out = BTreeMap::new();
    for chunk in arns.chunks(20) {
        let t =
            aws.elbv2.describe_tags().set_resource_arns(Some(chunk.to_vec())).send().await.map_err(|e| sdk_err("elbv2:DescribeTags", e))?;
        for d in t.tag_descriptions() {
            let tags = d.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect();
            out.insert(d.resource_arn().unwrap_or_default().to_string(), tags);
        }
    }
    Ok(out)
}

/// Everything tagged as made by Kubernetes for `cluster`.
pub async fn find(aws: &Aws, cluster: &str) -> Result<Found, AwsError> {
    let mut found = Found::default();
    let lbs = aws.elbv2.describe_load_balancers().send().await.map_err(|e| sdk_err("elbv2:DescribeLoadBalancers", e))?;
    let lb_arns: Vec<String> = lbs.load_balancers().iter().filter_map(|l| l.load_balancer_arn().map(str::to_string)).collect();
    for (arn, tags) in elbv2_tags(aws, &lb_arns).await? {
        if made_for(&tags, cluster) {
            found.load_balancers.push((arn, service_of(&tags)));
        }
    }
    let tgs = aws.elbv2.describe_target_groups().send().await.map_err(|e| sdk_err("elbv2:DescribeTargetGroups", e))?;
    let tg_arns: Vec<String> = tgs.target_groups().iter().filter_map(|t| t.target_group_arn().map(str::to_string)).collect();
    for (arn, tags) in elbv2_tags(aws, &tg_arns).await? {
        if made_for(&tags, cluster) {
            found.target_groups.push(arn);
        }
    }
    let mut sgs = BTreeSet::new();
    for filter in [
        Filter::builder().name("tag-key").values(format!("{K8S_CLUSTER_TAG_PREFIX}{cluster}")).build(),
        Filter::builder().name(format!("tag:{LBC_CLUSTER_TAG}")).values(cluster).build(),
    ] {
        let r = aws.ec2.describe_security_groups().filters(filter).send().await.map_err(|e| sdk_err("ec2:DescribeSecurityGroups", e))?;
        for g in r.security_groups() {
            if made_for(&ec2_tags(g.tags()), cluster) {
                sgs.insert(g.group_id().unwrap_or_default().to_string());
            }
        }
    }
    found.security_groups = sgs.into_iter().collect();
    found.load_balancers.sort();
    found.target_groups.sort();
    Ok(found)
}

/// What `remove` did, line by line, and what it could not do.
#[derive(Debug, Default)]
pub struct Removed {
    pub lines: Vec<String>,
    pub errors: Vec<String>,
}

/// Deletes what Kubernetes made for `cluster`: load balancers, then (once their ENIs are gone,
/// waiting at most `wait`) target groups and security groups. Each already gone is fine.
pub async fn remove(aws: &Aws, cluster: &str, wait: Duration, poll: Duration) -> Result<Removed, AwsError> {
    let found = find(aws, cluster).await?;
    let mut out = Removed::default();
    if found.is_empty() {
        return Ok(out);
    }
    let lb_arns: Vec<String> = found.load_balancers.iter().map(|(a, _)| a.clone()).collect();
    for (arn, service) in &found.load_balancers {
        match aws.elbv2.delete_load_balancer().load_balancer_arn(arn).send().await {
            Ok(_) => out.lines.push(format!(
                "load balancer {arn}{} deleted (tagged for cluster {cluster})",
                service.as_ref().map(|s| format!(" of Service {s}")).unwrap_or_default()
            )),
            Err(e) => {
                let e = sdk_err("elbv2:DeleteLoadBalancer", e);
                if !e.is_code("LoadBalancerNotFound") {
                    out.errors.push(format!("load balancer {arn}: {e}"));
                }
            }
        }
    }
    // ELB removes its interfaces some time after the load balancer (minutes, on AWS).
    let descriptions: Vec<String> = lb_arns.iter().filter_map(|a| lb_eni_description(a)).collect();
    let start = Instant::now();
    let mut left = Vec::new();
    if !descriptions.is_empty() {
        loop {
            let r = aws
                .ec2
                .describe_network_interfaces()
                .filters(Filter::builder().name("description").set_values(Some(descriptions.clone())).build())
                .send()
                .await
                .map_err(|e| sdk_err("ec2:DescribeNetworkInterfaces", e))?;
            let enis: Vec<(String, String)> = r
                .network_interfaces()
                .iter()
                .map(|n| (n.network_interface_id().unwrap_or_default().to_string(), n.description().unwrap_or_default().to_string()))
                .collect();
            left = draining(&enis, &lb_arns);
            if left.is_empty() || start.elapsed() >= wait {
                break;
            }
            tokio::time::sleep(poll).await;
        }
    }
    if left.is_empty() {
        if !descriptions.is_empty() {
            out.lines.push(format!("their network interfaces are gone ({}s)", start.elapsed().as_secs()));
        }
    } else {
        out.errors.push(format!("{} load balancer interface(s) still there after {}s: {}", left.len(), wait.as_secs(), left.join(", ")));
    }
    for arn in &found.target_groups {
        match aws.elbv2.delete_target_group().target_group_arn(arn).send().await {
            Ok(_) => out.lines.push(format!("target group {arn} deleted")),
            Err(e) => {
                let e = sdk_err("elbv2:DeleteTargetGroup", e);
                if !e.is_code("TargetGroupNotFound") {
                    out.errors.push(format!("target group {arn}: {e}"));
                }
            }
        }
    }
    for sg in &found.security_groups {
        // A group still referenced (an ENI, another group's rule) refuses: retried until `wait`.
        loop {
            match aws.ec2.delete_security_group().group_id(sg).send().await {
                Ok(_) => {
                    out.lines.push(format!("security group {sg} deleted"));
                    break;
                }
                Err(e) => {
                    let e = sdk_err("ec2:DeleteSecurityGroup", e);
                    if e.is_code("InvalidGroup.NotFound") {
                        break;
                    }
                    if !e.is_code("DependencyViolation") || start.elapsed() >= wait {
                        out.errors.push(format!("security group {sg}: {e}"));
                        break;
                    }
                    tokio::time::sleep(poll).await;
                }
            }
        }
    }
    Ok(out)
}

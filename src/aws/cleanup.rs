//! What `down` needs beyond deleting stacks: the sweep of detached ENIs that make stack
//! deletion fail (known issue PLUG-2253: the load balancers' and the VPC CNI's interfaces
//! outlive their owners), and the residue report of everything still tagged with the deployment.
//! Which ENIs may go and what counts as residue is decided in `pano_eks_core::aws::teardown`
//! (re-exported here); this module lists, deletes and reads tags.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::Filter;
pub use pano_eks_core::aws::teardown::{Eni, Leftover, kube_leftovers, sweepable};
use pano_eks_core::aws::teardown::{instance_is_residue, report, stack_leftover};

use super::{Aws, AwsError, DEPLOYMENT_TAG, sdk_err};

pub async fn list_enis(aws: &Aws, vpc_id: &str) -> Result<Vec<Eni>, AwsError> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let r = aws
            .ec2
            .describe_network_interfaces()
            .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| sdk_err("ec2:DescribeNetworkInterfaces", e))?;
        out.extend(r.network_interfaces().iter().map(|n| Eni {
            id: n.network_interface_id().unwrap_or_default().to_string(),
            status: n.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
            subnet_id: n.subnet_id().unwrap_or_default().to_string(),
            groups: n.groups().iter().filter_map(|g| g.group_id().map(str::to_string)).collect(),
            description: n.description().unwrap_or_default().to_string(),
        }));
        match r.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(out),
        }
    }
}

/// Deletes the sweepable ENIs of a VPC; returns their ids. An ENI already gone is fine.
pub async fn sweep_enis(aws: &Aws, vpc_id: &str, groups: &BTreeSet<String>, subnets: &BTreeSet<String>) -> Result<Vec<String>, AwsError> {
    let enis = list_enis(aws, vpc_id).await?;
    let ids = sweepable(&enis, groups, subnets);
    for id in &ids {
        if let Err(e) = aws.ec2.delete_network_interface().network_interface_id(id).send().await {
            let e = sdk_err("ec2:DeleteNetworkInterface", e);
            if !e.is_code("InvalidNetworkInterfaceID.NotFound") {
                return Err(e);
            }
        }
    }
    Ok(ids)
}

fn tag_filter(deployment: &str) -> Filter {
    Filter::builder().name(format!("tag:{DEPLOYMENT_TAG}")).values(deployment).build()
}

/// Everything still tagged `pano-eks:deployment=<deployment>` (ENIs, instances, security groups,
/// subnets, VPCs, Elastic IPs, load balancers, target groups), plus the named stacks and buckets if
/// they exist, plus what Kubernetes made in AWS for the clusters (`kube_made`: load balancers,
/// target groups, security groups tagged for the cluster).
pub async fn residue(
    aws: &Aws,
    deployment: &str,
    stacks: &[String],
    buckets: &[String],
    clusters: &[String],
) -> Result<Vec<Leftover>, AwsError> {
    let mut out = Vec::new();
    for c in clusters {
        out.extend(kube_leftovers(c, &super::kube_made::find(aws, c).await?));
    }
    let mut add = |kind: &str, id: &str| out.push(Leftover { kind: kind.into(), id: id.into() });
    let ec2 = &aws.ec2;
    let r = ec2
        .describe_network_interfaces()
        .filters(tag_filter(deployment))
        .send()
        .await
        .map_err(|e| sdk_err("ec2:DescribeNetworkInterfaces", e))?;
    for n in r.network_interfaces() {
        add("network-interface", n.network_interface_id().unwrap_or_default());
    }
    let r = ec2.describe_instances().filters(tag_filter(deployment)).send().await.map_err(|e| sdk_err("ec2:DescribeInstances", e))?;
    for i in r.reservations().iter().flat_map(|r| r.instances()) {
        let state = i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default();
        if instance_is_residue(&state) {
            add("instance", i.instance_id().unwrap_or_default());
        }
    }
    let r = ec2
        .describe_security_groups()
        .filters(tag_filter(deployment))
        .send()
        .await
        .map_err(|e| sdk_err("ec2:DescribeSecurityGroups", e))?;
    for g in r.security_groups() {
        add("security-group", g.group_id().unwrap_or_default());
    }
    let r = ec2.describe_subnets().filters(tag_filter(deployment)).send().await.map_err(|e| sdk_err("ec2:DescribeSubnets", e))?;
    for s in r.subnets() {
        add("subnet", s.subnet_id().unwrap_or_default());
    }
    let r = ec2.describe_vpcs().filters(tag_filter(deployment)).send().await.map_err(|e| sdk_err("ec2:DescribeVpcs", e))?;
    for v in r.vpcs() {
        add("vpc", v.vpc_id().unwrap_or_default());
    }
    let r = ec2.describe_addresses().filters(tag_filter(deployment)).send().await.map_err(|e| sdk_err("ec2:DescribeAddresses", e))?;
    for a in r.addresses() {
        add("elastic-ip", a.allocation_id().unwrap_or_default());
    }
    // ELBv2 has no tag filter: list, then read tags 20 ARNs at a time.
    let lbs = aws.elbv2.describe_load_balancers().send().await.map_err(|e| sdk_err("elbv2:DescribeLoadBalancers", e))?;
    let lb_arns: Vec<String> = lbs.load_balancers().iter().filter_map(|l| l.load_balancer_arn().map(str::to_string)).collect();
    let tgs = aws.elbv2.describe_target_groups().send().await.map_err(|e| sdk_err("elbv2:DescribeTargetGroups", e))?;
    let tg_arns: Vec<String> = tgs.target_groups().iter().filter_map(|t| t.target_group_arn().map(str::to_string)).collect();
    for (kind, arns) in [("load-balancer", lb_arns), ("target-group", tg_arns)] {
        for chunk in arns.chunks(20) {
            let t = aws
                .elbv2
                .describe_tags()
                .set_resource_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| sdk_err("elbv2:DescribeTags", e))?;
            for d in t.tag_descriptions() {
                if d.tags().iter().any(|t| t.key() == Some(DEPLOYMENT_TAG) && t.value() == Some(deployment)) {
                    add(kind, d.resource_arn().unwrap_or_default());
                }
            }
        }
    }
    let cfn = super::stacks::AwsCfn { client: &aws.cfn };
    for s in stacks {
        if let Some(st) = super::stacks::CfnApi::describe(&cfn, s).await? {
            if let Some(l) = stack_leftover(s, &st.status) {
                add(&l.kind, &l.id);
            }
        }
    }
    for b in buckets {
        if super::bucket::probe(&aws.s3, b, deployment).await? != super::bucket::BucketState::Missing {
            add("bucket", b);
        }
    }
    Ok(report(out))
}

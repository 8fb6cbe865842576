//! What `down` needs beyond deleting stacks: the sweep of detached ENIs that make stack
//! deletion fail (known issue PLUG-2253: the load balancers' and the VPC CNI's interfaces
//! outlive their owners), and the residue report of everything still tagged with the deployment.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::Filter;

use super::{Aws, AwsError, DEPLOYMENT_TAG, sdk_err};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eni {
    pub id: String,
    pub status: String,
    pub subnet_id: String,
    pub groups: Vec<String>,
    pub description: String,
}

/// The ENIs the sweep may delete: detached (`available`) and in one of our security groups or
/// subnets. An attached ENI is never touched: its owner goes first.
pub fn sweepable(enis: &[Eni], our_groups: &BTreeSet<String>, our_subnets: &BTreeSet<String>) -> Vec<String> {
    let mut ids: Vec<String> = enis
        .iter()
        .filter(|e| e.status == "available")
        .filter(|e| our_subnets.contains(&e.subnet_id) || e.groups.iter().any(|g| our_groups.contains(g)))
        .map(|e| e.id.clone())
        .collect();
    ids.sort();
    ids
}

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

/// Something of the deployment that still exists after `down`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Leftover {
    pub kind: String,
    pub id: String,
}

/// The residue lines of what Kubernetes made in AWS for `cluster` and is still there.
pub fn kube_leftovers(cluster: &str, found: &super::kube_made::Found) -> Vec<Leftover> {
    let k = |kind: &str| format!("{kind} (Kubernetes, cluster {cluster})");
    let mut out = Vec::new();
    out.extend(found.load_balancers.iter().map(|(a, _)| Leftover { kind: k("load-balancer"), id: a.clone() }));
    out.extend(found.target_groups.iter().map(|a| Leftover { kind: k("target-group"), id: a.clone() }));
    out.extend(found.security_groups.iter().map(|g| Leftover { kind: k("security-group"), id: g.clone() }));
    out
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
        if state != "terminated" && state != "shutting-down" {
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
            if st.status != "DELETE_COMPLETE" {
                add("stack", &format!("{s} ({})", st.status));
            }
        }
    }
    for b in buckets {
        if super::bucket::probe(&aws.s3, b, deployment).await? != super::bucket::BucketState::Missing {
            add("bucket", b);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn kubernetes_made_leftovers_are_residue_named_by_cluster() {
        let found = super::super::kube_made::Found {
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
}

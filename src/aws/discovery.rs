//! The AWS facts `sync` needs, so the config file is all a user supplies: each cluster's
//! subnets (DescribeCluster → DescribeSubnets: id, CIDR, AZ) and the firewalls (the firewall
//! ASG's instances → their trust interface, device index 2 → the trust subnet's CIDR), and the
//! region's load balancers (name, DNS name, scheme: what each Service's own load balancer really
//! is, core::security::exposure).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use pano_eks_core::{FirewallFacts, LoadBalancerFacts, SubnetFacts};

use super::{Aws, AwsError, sdk_err};

/// The trust interface of a VM-Series is eth2 (eth0 untrust after the interface swap, eth1 mgmt);
/// declared with the egress decision that relies on it.
pub use pano_eks_core::egress::TRUST_DEVICE_INDEX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub cidr: String,
    pub az: String,
}

/// One firewall instance as EC2 describes it: its AZ and (device index, subnet) per interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub az: String,
    pub interfaces: Vec<(i32, String)>,
}

/// Firewalls with a trust interface, sorted by id; the rest are named in the second list (still
/// booting: the lifecycle lambda adds eth2 at launch).
pub fn firewall_facts(instances: &[Instance], subnets: &BTreeMap<String, Subnet>) -> (Vec<FirewallFacts>, Vec<String>) {
    let mut facts = Vec::new();
    let mut pending = Vec::new();
    for i in instances {
        let trust = i.interfaces.iter().find(|(idx, _)| *idx == TRUST_DEVICE_INDEX).and_then(|(_, s)| subnets.get(s));
        match trust {
            Some(s) => facts.push(FirewallFacts { id: i.id.clone(), az: i.az.clone(), trust_subnet_cidr: s.cidr.clone() }),
            None => pending.push(i.id.clone()),
        }
    }
    facts.sort_by(|a, b| a.id.cmp(&b.id));
    pending.sort();
    (facts, pending)
}

pub fn subnet_facts(ids: &[String], subnets: &BTreeMap<String, Subnet>) -> Vec<SubnetFacts> {
    let mut out: Vec<SubnetFacts> = ids
        .iter()
        .filter_map(|id| subnets.get(id))
        .map(|s| SubnetFacts { id: s.id.clone(), cidr: s.cidr.clone(), az: s.az.clone() })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

pub async fn describe_subnets(aws: &Aws, ids: &[String]) -> Result<BTreeMap<String, Subnet>, AwsError> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let r = aws.ec2.describe_subnets().set_subnet_ids(Some(ids.to_vec())).send().await.map_err(|e| sdk_err("ec2:DescribeSubnets", e))?;
    Ok(r.subnets()
        .iter()
        .map(|s| Subnet {
            id: s.subnet_id().unwrap_or_default().to_string(),
            cidr: s.cidr_block().unwrap_or_default().to_string(),
            az: s.availability_zone().unwrap_or_default().to_string(),
        })
        .map(|s| (s.id.clone(), s))
        .collect())
}

/// A cluster's subnets; empty when the cluster does not exist.
pub async fn cluster_subnets(aws: &Aws, cluster: &str) -> Result<Vec<SubnetFacts>, AwsError> {
    let Some(info) = super::eks::describe_cluster(&aws.eks, cluster).await? else { return Ok(Vec::new()) };
    let subnets = describe_subnets(aws, &info.subnet_ids).await?;
    Ok(subnet_facts(&info.subnet_ids, &subnets))
}

/// The only autoscaling lifecycle state in which a firewall carries traffic. `Pending`,
/// `Pending:Wait` (the launch hook: the lifecycle lambda is still adding its ENIs, the firewall is
/// still booting), `Terminating`, `Terminating:Wait`, `Standby`, … are not (AWS Auto Scaling,
/// "Amazon EC2 Auto Scaling instance lifecycle").
pub const IN_SERVICE: &str = "InService";

/// Splits an ASG's members (instance id, lifecycle state) into those routes and egress may use
/// (`InService`, sorted) and the rest, named with their state (`i-… (Pending:Wait)`, sorted).
pub fn in_service(members: &[(String, String)]) -> (Vec<String>, Vec<String>) {
    let mut live: Vec<String> = members.iter().filter(|(_, st)| st == IN_SERVICE).map(|(id, _)| id.clone()).collect();
    let mut excluded: Vec<String> = members.iter().filter(|(_, st)| st != IN_SERVICE).map(|(id, st)| format!("{id} ({st})")).collect();
    live.sort();
    excluded.sort();
    (live, excluded)
}

/// The `InService` members of an autoscaling group as EC2 describes them (pending or running),
/// and the members left out with their lifecycle state.
pub async fn asg_members(aws: &Aws, asg_name: &str) -> Result<(Vec<aws_sdk_ec2::types::Instance>, Vec<String>), AwsError> {
    let r = aws
        .asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(asg_name)
        .send()
        .await
        .map_err(|e| sdk_err("autoscaling:DescribeAutoScalingGroups", e))?;
    let members: Vec<(String, String)> = r
        .auto_scaling_groups()
        .iter()
        .flat_map(|g| g.instances())
        .filter_map(|i| Some((i.instance_id()?.to_string(), i.lifecycle_state().map(|s| s.as_str().to_string()).unwrap_or_default())))
        .collect();
    let (ids, excluded) = in_service(&members);
    if ids.is_empty() {
        return Ok((Vec::new(), excluded));
    }
    let r = aws
        .ec2
        .describe_instances()
        .set_instance_ids(Some(ids))
        .filters(Filter::builder().name("instance-state-name").values("pending").values("running").build())
        .send()
        .await
        .map_err(|e| sdk_err("ec2:DescribeInstances", e))?;
    Ok((r.reservations().iter().flat_map(|r| r.instances()).cloned().collect(), excluded))
}

/// The `InService` EC2 instances of an autoscaling group (see `asg_members`).
pub async fn asg_instances(aws: &Aws, asg_name: &str) -> Result<Vec<aws_sdk_ec2::types::Instance>, AwsError> {
    Ok(asg_members(aws, asg_name).await?.0)
}

/// The `InService` firewalls of an ASG with their trust subnets; second, the members not used:
/// without a trust interface yet (still booting: the lifecycle lambda adds eth2 at launch) or
/// not `InService` (named with their lifecycle state).
pub async fn firewalls(aws: &Aws, asg_name: &str) -> Result<(Vec<FirewallFacts>, Vec<String>), AwsError> {
    let (live, excluded) = asg_members(aws, asg_name).await?;
    if live.is_empty() {
        return Ok((Vec::new(), excluded));
    }
    let instances: Vec<Instance> = live
        .iter()
        .map(|i| Instance {
            id: i.instance_id().unwrap_or_default().to_string(),
            az: i.placement().and_then(|p| p.availability_zone()).unwrap_or_default().to_string(),
            interfaces: i
                .network_interfaces()
                .iter()
                .filter_map(|n| Some((n.attachment()?.device_index()?, n.subnet_id()?.to_string())))
                .collect(),
        })
        .collect();
    let subnet_ids: Vec<String> = instances
        .iter()
        .flat_map(|i| i.interfaces.iter().map(|(_, s)| s.clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let subnets = describe_subnets(aws, &subnet_ids).await?;
    let (facts, mut pending) = firewall_facts(&instances, &subnets);
    pending.extend(excluded);
    pending.sort();
    Ok((facts, pending))
}

/// Every Elastic Load Balancing v2 load balancer of the region (all pages), as name, DNS name
/// and scheme. Classic Load Balancers are not listed (elbv2 does not see them): for those the
/// Service's annotations decide.
pub async fn load_balancers(aws: &Aws) -> Result<Vec<LoadBalancerFacts>, AwsError> {
    let mut out = Vec::new();
    let mut pages = aws.elbv2.describe_load_balancers().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_err("elbv2:DescribeLoadBalancers", e))?;
        out.extend(page.load_balancers().iter().filter_map(|lb| {
            Some(LoadBalancerFacts {
                name: lb.load_balancer_name()?.to_string(),
                dns_name: lb.dns_name()?.to_string(),
                scheme: lb.scheme().map(|s| s.as_str().to_string()).unwrap_or_default(),
            })
        }));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnets() -> BTreeMap<String, Subnet> {
        [
            ("subnet-t1", "192.168.2.0/24", "us-west-2a"),
            ("subnet-t2", "192.168.12.0/24", "us-west-2b"),
            ("subnet-u1", "192.168.1.0/24", "us-west-2a"),
        ]
        .into_iter()
        .map(|(id, c, az)| (id.to_string(), Subnet { id: id.into(), cidr: c.into(), az: az.into() }))
        .collect()
    }

    #[test]
    fn firewalls_are_found_by_their_device_index_2_interface() {
        let instances = vec![
            Instance { id: "i-2".into(), az: "us-west-2b".into(), interfaces: vec![(0, "subnet-u1".into()), (2, "subnet-t2".into())] },
            Instance { id: "i-1".into(), az: "us-west-2a".into(), interfaces: vec![(2, "subnet-t1".into()), (0, "subnet-u1".into())] },
            Instance { id: "i-3".into(), az: "us-west-2a".into(), interfaces: vec![(0, "subnet-u1".into())] },
        ];
        let (facts, pending) = firewall_facts(&instances, &subnets());
        assert_eq!(
            facts,
            vec![
                FirewallFacts { id: "i-1".into(), az: "us-west-2a".into(), trust_subnet_cidr: "192.168.2.0/24".into() },
                FirewallFacts { id: "i-2".into(), az: "us-west-2b".into(), trust_subnet_cidr: "192.168.12.0/24".into() },
            ]
        );
        assert_eq!(pending, vec!["i-3"]);
    }

    #[test]
    fn only_in_service_members_carry_traffic() {
        let m = |id: &str, st: &str| (id.to_string(), st.to_string());
        let members = vec![
            m("i-5", "InService"),
            m("i-1", "Pending:Wait"),
            m("i-2", "Terminating:Wait"),
            m("i-3", "Pending"),
            m("i-4", "InService"),
            m("i-6", "Standby"),
            m("i-7", "Terminating"),
            m("i-8", "Pending:Proceed"),
            m("i-9", ""),
        ];
        let (live, excluded) = in_service(&members);
        assert_eq!(live, vec!["i-4", "i-5"]);
        assert_eq!(
            excluded,
            vec![
                "i-1 (Pending:Wait)",
                "i-2 (Terminating:Wait)",
                "i-3 (Pending)",
                "i-6 (Standby)",
                "i-7 (Terminating)",
                "i-8 (Pending:Proceed)",
                "i-9 ()"
            ]
        );
    }

    #[test]
    fn cluster_subnets_in_id_order_unknown_ids_dropped() {
        let got = subnet_facts(&["subnet-t2".into(), "subnet-gone".into(), "subnet-t1".into()], &subnets());
        assert_eq!(got.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), vec!["subnet-t1", "subnet-t2"]);
        assert_eq!(got[0].az, "us-west-2a");
    }
}

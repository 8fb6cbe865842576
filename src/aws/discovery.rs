//! The AWS facts `sync` needs, so the config file is all a user supplies: each cluster's
//! subnets (DescribeCluster → DescribeSubnets: id, CIDR, AZ) and the firewalls (the firewall
//! ASG's instances → their trust interface, device index 2 → the trust subnet's CIDR).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use pano_eks_core::{FirewallFacts, SubnetFacts};

use super::{Aws, AwsError, sdk_err};

/// The trust interface of a VM-Series is eth2 (eth0 untrust after the interface swap, eth1 mgmt).
pub const TRUST_DEVICE_INDEX: i32 = 2;

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

/// The firewalls of an ASG with their trust subnets, and the instances without one yet.
/// The live (pending or running) EC2 instances of an autoscaling group.
pub async fn asg_instances(aws: &Aws, asg_name: &str) -> Result<Vec<aws_sdk_ec2::types::Instance>, AwsError> {
    let r = aws
        .asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(asg_name)
        .send()
        .await
        .map_err(|e| sdk_err("autoscaling:DescribeAutoScalingGroups", e))?;
    let ids: Vec<String> =
        r.auto_scaling_groups().iter().flat_map(|g| g.instances()).filter_map(|i| i.instance_id().map(str::to_string)).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let r = aws
        .ec2
        .describe_instances()
        .set_instance_ids(Some(ids))
        .filters(Filter::builder().name("instance-state-name").values("pending").values("running").build())
        .send()
        .await
        .map_err(|e| sdk_err("ec2:DescribeInstances", e))?;
    Ok(r.reservations().iter().flat_map(|r| r.instances()).cloned().collect())
}

pub async fn firewalls(aws: &Aws, asg_name: &str) -> Result<(Vec<FirewallFacts>, Vec<String>), AwsError> {
    let live = asg_instances(aws, asg_name).await?;
    if live.is_empty() {
        return Ok((Vec::new(), Vec::new()));
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
    Ok(firewall_facts(&instances, &subnets))
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
    fn cluster_subnets_in_id_order_unknown_ids_dropped() {
        let got = subnet_facts(&["subnet-t2".into(), "subnet-gone".into(), "subnet-t1".into()], &subnets());
        assert_eq!(got.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), vec!["subnet-t1", "subnet-t2"]);
        assert_eq!(got[0].az, "us-west-2a");
    }
}

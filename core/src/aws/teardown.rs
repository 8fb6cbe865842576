//! What `down` decides beyond Panorama: the order the stacks go in, what the stacks own (the
//! security groups and subnets whose detached ENIs may be swept, and the VPC to look in), which
//! ENIs the sweep deletes (known issue PLUG-2253: load balancers' and the VPC CNI's interfaces
//! outlive their owners), and what counts as residue afterwards.

use std::collections::BTreeSet;

use super::kube_made::Found;
use super::stacks::StackResource;

/// A cluster's stacks: nodes, cluster and, for the cluster sync runs in, its AWS access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStacks {
    /// The in-cluster sync's IAM role and Pod Identity association (`in_cluster = true`).
    pub access: Option<String>,
    pub nodes: String,
    pub cluster: String,
}

/// The order stacks are deleted in: per cluster its access stack (its add-on and association
/// need the cluster), its node stack, then its cluster stack (the nodes' ENIs and security groups
/// would block the cluster's subnets), then the firewall stack (it holds the VPC everything else
/// sits in).
pub fn deletion_order(clusters: &[ClusterStacks], firewall: &str) -> Vec<String> {
    let mut out: Vec<String> = clusters.iter().flat_map(|c| c.access.iter().cloned().chain([c.nodes.clone(), c.cluster.clone()])).collect();
    out.push(firewall.to_string());
    out
}

/// What the stacks own, read before anything is deleted: the sweep looks only here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepScope {
    pub vpc_id: Option<String>,
    pub groups: BTreeSet<String>,
    pub subnets: BTreeSet<String>,
}

impl SweepScope {
    /// From each stack (in deletion order) its `VpcId` output, if any, and its resources. The
    /// VPC is the first `VpcId` output, else the first `AWS::EC2::VPC` resource, else the
    /// configured existing VPC (brownfield: no stack owns it).
    pub fn from_stacks<'a>(
        stacks: impl IntoIterator<Item = (Option<&'a str>, &'a [StackResource])>,
        existing_vpc: Option<&str>,
    ) -> SweepScope {
        let mut s = SweepScope::default();
        for (vpc_output, resources) in stacks {
            if s.vpc_id.is_none() {
                s.vpc_id = vpc_output.map(str::to_string);
            }
            for r in resources {
                match (r.resource_type.as_str(), &r.physical_id) {
                    ("AWS::EC2::SecurityGroup", Some(p)) => {
                        s.groups.insert(p.clone());
                    }
                    ("AWS::EC2::Subnet", Some(p)) => {
                        s.subnets.insert(p.clone());
                    }
                    ("AWS::EC2::VPC", Some(p)) if s.vpc_id.is_none() => s.vpc_id = Some(p.clone()),
                    _ => {}
                }
            }
        }
        if s.vpc_id.is_none() {
            s.vpc_id = existing_vpc.map(str::to_string);
        }
        s
    }
}

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

/// Something of the deployment that still exists after `down`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Leftover {
    pub kind: String,
    pub id: String,
}

/// The residue lines of what Kubernetes made in AWS for `cluster` and is still there.
pub fn kube_leftovers(cluster: &str, found: &Found) -> Vec<Leftover> {
    let k = |kind: &str| format!("{kind} (Kubernetes, cluster {cluster})");
    let mut out = Vec::new();
    out.extend(found.load_balancers.iter().map(|(a, _)| Leftover { kind: k("load-balancer"), id: a.clone() }));
    out.extend(found.target_groups.iter().map(|a| Leftover { kind: k("target-group"), id: a.clone() }));
    out.extend(found.security_groups.iter().map(|g| Leftover { kind: k("security-group"), id: g.clone() }));
    out
}

/// An instance still tagged with the deployment is residue unless it is going or gone.
pub fn instance_is_residue(state: &str) -> bool {
    state != "terminated" && state != "shutting-down"
}

/// A stack that still describes is residue unless it is DELETE_COMPLETE; its line names the status.
pub fn stack_leftover(stack: &str, status: &str) -> Option<Leftover> {
    (status != "DELETE_COMPLETE").then(|| Leftover { kind: "stack".into(), id: format!("{stack} ({status})") })
}

/// The residue report: sorted, each thing once.
pub fn report(mut leftovers: Vec<Leftover>) -> Vec<Leftover> {
    leftovers.sort();
    leftovers.dedup();
    leftovers
}

#[cfg(test)]
#[path = "teardown_tests.rs"]
mod tests;

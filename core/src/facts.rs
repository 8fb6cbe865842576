//! Facts: what the world looks like (clusters, their subnets and Services, the firewalls).
//!
//! The shape is also the `pano-eks sync --facts FILE` format. Unknown fields are rejected so a
//! typo never silently means "empty"; only the free-form `labels`/`annotations` maps are open.
//! CIDRs stay strings here: a bad one is reported by the planner and skipped, it does not make
//! the whole file unreadable.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// Everything the planner knows about the world.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    pub clusters: Vec<ClusterFacts>,
    pub firewalls: Vec<FirewallFacts>,
    /// Clusters whose Services are unknown right now (their API could not be listed): their
    /// Service objects on Panorama are held as they are. Subnets still come from `clusters`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frozen_clusters: Vec<String>,
    /// The VPC's Elastic Load Balancing v2 load balancers as AWS reports them (DNS name and
    /// scheme): the ground truth for whether a Service's own load balancer is internal. Empty
    /// in a facts file without them; the annotations decide then.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancers: Vec<LoadBalancerFacts>,
}

/// One load balancer AWS knows (`elbv2:DescribeLoadBalancers`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancerFacts {
    pub name: String,
    pub dns_name: String,
    /// `internal` or `internet-facing` (kept as text: another value is reported, not a parse error).
    pub scheme: String,
}

/// One EKS cluster. `services` may be absent (a facts file with only subnets/firewalls).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFacts {
    pub name: String,
    #[serde(default)]
    pub subnets: Vec<SubnetFacts>,
    #[serde(default)]
    pub services: Vec<ServiceFacts>,
}

/// A cluster subnet; gets an outbound NAT rule and one route per firewall next hop.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetFacts {
    pub id: String,
    pub cidr: String,
    #[serde(default)]
    pub az: String,
}

/// A Kubernetes Service as the watcher saw it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceFacts {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// `LoadBalancer`, `ClusterIP`, ... (kept as text so an unexpected value is a report, not a parse error).
    #[serde(rename = "type")]
    pub service_type: String,
    /// `spec.loadBalancerClass`: which controller owns the Service's load balancer
    /// (`service.k8s.aws/nlb` is the AWS Load Balancer Controller; none is the cloud provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_class: Option<String>,
    /// The internal NLB's DNS name; `None` while the load balancer is still being provisioned.
    #[serde(default)]
    pub lb_hostname: Option<String>,
    #[serde(default)]
    pub ports: Vec<PortFacts>,
    /// `metadata.creationTimestamp`; decides who keeps a contested label port.
    pub created: Timestamp,
}

/// One entry of `spec.ports`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortFacts {
    /// Wider than u16 so an out-of-range value is reported against its Service, not the file.
    pub port: u32,
    #[serde(default = "default_protocol")]
    pub protocol: String,
}

fn default_protocol() -> String {
    "TCP".to_owned()
}

/// A VM-Series firewall; its trust subnet's first host is the next hop of the cluster routes.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallFacts {
    pub id: String,
    #[serde(default)]
    pub az: String,
    pub trust_subnet_cidr: String,
}

/// The facts file could not be read; the message names the field and line/column.
#[derive(Debug, thiserror::Error)]
#[error("invalid facts: {0}")]
pub struct FactsError(#[from] pub serde_json::Error);

/// Every Service of the facts by (cluster, namespace, name): a lookup per Service, where a scan
/// per Service would make a plan quadratic in a cluster's size (one cluster can hold 16,000).
pub type ServiceIndex<'a> = std::collections::HashMap<(&'a str, &'a str, &'a str), &'a ServiceFacts>;

impl Facts {
    /// Parses the `--facts` JSON document.
    pub fn from_json(text: &str) -> Result<Self, FactsError> {
        Ok(serde_json::from_str(text)?)
    }

    /// [`ServiceIndex`] of these facts.
    pub fn service_index(&self) -> ServiceIndex<'_> {
        self.clusters
            .iter()
            .flat_map(|c| c.services.iter().map(move |s| ((c.name.as_str(), s.namespace.as_str(), s.name.as_str()), s)))
            .collect()
    }

    /// The canonical JSON form (pretty, stable field order).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("facts always serialize")
    }
}

//! What a plan reports for humans: per Service, per cluster and subnet, and every problem.
//! Built by the desired model (`desired`), finished by the planner (`plan`) and by the refusal
//! rules (`refusals`); kept here so none of them depends on another for its vocabulary.

use serde::{Deserialize, Serialize};

/// Where a labelled Service stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceState {
    /// Its address, service object and NAT rule exist in Panorama exactly as desired.
    Protected,
    /// Valid and winning its port; this plan creates or updates its objects.
    Planned,
    /// Winning its port but its load balancer has no hostname yet.
    Pending,
    /// Lost its label port to an older Service, or a desired name is taken by a foreign entry.
    Conflict,
    /// Bad label, wrong type, no TCP port, bad hostname, or its cluster is not managed.
    Invalid,
    /// Panorama refused a write this Service needs (PAN-OS's message is the reason); not
    /// protected, and tried again by the next converge. See [`crate::panorama::refusals`].
    Refused,
    /// Valid and winning its port, but its objects would take the firewalls past a published
    /// limit (see [`crate::capacity`]); admitted by a later plan when room appears.
    OverCapacity,
    /// Its objects are written, but its own load balancer is internet-facing: the internet
    /// reaches it without passing any firewall. See [`crate::security::exposure`].
    Exposed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    /// The label port, when the label parsed.
    pub port: Option<u16>,
    pub state: ServiceState,
    pub reason: String,
    /// Set when the Service is Protected or Planned.
    pub nat_rule: Option<String>,
    /// Its address object and service object, set with `nat_rule`: a refused write of either
    /// is reported against the Services that need it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_object: Option<String>,
    /// With `[sync.security]`: the allow rule of this Service in the pre-rulebase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_rule: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub name: String,
    /// `pano-eks.<deployment>.<cluster>`.
    pub tag: String,
    pub subnets: Vec<SubnetStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetStatus {
    pub id: String,
    pub cidr: String,
    /// `None` when its name is taken by a foreign rule.
    pub outbound_rule: Option<String>,
    /// One per distinct firewall next hop.
    pub routes: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    InvalidLabel,
    InvalidService,
    NotLoadBalancer,
    NoTcpPort,
    InvalidHostname,
    Pending,
    PortConflict,
    DuplicateService,
    InvalidCluster,
    DuplicateCluster,
    TooManyClusters,
    InvalidSubnet,
    DuplicateSubnet,
    InvalidFirewall,
    /// A desired name is held by an entry we do not own; ours is not written.
    NameConflict,
    /// An entry we would delete is still used by a foreign entry (a NAT or security rule, an
    /// address or service group, here, in a descendant device group or in shared): it is held
    /// (kept, reported against its Service) until that reference goes.
    InUse,
    /// Panorama refused the write of this entry (or of one a Service needs).
    Refused,
    /// The Service's objects would exceed a firewall limit (the reason names it): not written.
    OverCapacity,
    /// A labelled Service's own load balancer is internet-facing (it bypasses the firewalls).
    Exposed,
    /// A `pano-eks/*` annotation of the Service is refused (with `[sync.security]`): `invalid`.
    InvalidAnnotation,
    /// `[sync.security]` placement cannot be met (a missing anchor): nothing of ours moves.
    Placement,
}

/// Something skipped or not written, with the thing it concerns
/// (`cluster/namespace/service`, `cluster/subnet-id`, a firewall id, a tag name).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Problem {
    pub subject: String,
    pub kind: ProblemKind,
    pub message: String,
}

//! The planning core of pano-eks: a pure function from facts to the ordered operations that make
//! Panorama hold exactly what protects the labelled Services. No I/O lives here.
//!
//! Flow (after the AWS Load Balancer Controller: build a model, then one synthesizer per kind):
//! [`Facts`] + [`PlanSettings`] → desired entries (validated, named, ownership-tagged) →
//! compared per kind with [`Observed`] by *ownership mark*, never by name alone → [`Plan`].
//!
//! Inputs shared by every room: [`facts`] (clusters, subnets, Services, firewalls; also
//! `pano-eks sync --facts FILE`) and [`settings`] (the operator's choices). One room per concern,
//! each the same shape (inputs → desired → diff against observed by ownership → ordered actions +
//! status):
//!
//! * [`panorama`]: the Panorama objects (addresses, services, tags, NAT rules, static routes):
//!   [`plan()`], what it reports, what refused writes and commit locks mean.
//! * [`prepare`]: Panorama's prerequisites (`panorama prepare`), the vm-auth-key by Panorama's clock.
//! * [`front`]: the public load balancer with `sync.manage_alb` (ALB or NLB).
//! * [`security`]: security policy from Kubernetes; so far whether a Service's load balancer
//!   bypasses the firewalls (`exposed`).
//! * [`egress`]: which firewall carries cluster egress (its EIP, the clusters' default routes).
//! * [`capacity`]: what the firewalls can hold (memory tiers), which Services are admitted.
//! * [`in_cluster`]: `sync --watch` in a cluster: what the kustomize overlay says, what cannot
//!   work from a pod.
//! * [`aws`]: what `up` checks first (pre-flight), what a CloudFormation stack's state means,
//!   whether a bucket is ours and what it holds, what Kubernetes made in AWS for a cluster, and
//!   what `down` sweeps, in which order, and reports as residue.
//!
//! [`time`] is Panorama's and AWS's timestamps, shared by the rooms.
//!
//! # What is desired
//! Per labelled Service (deployment `prod`, cluster `shop`, `default/frontend`, label `82`):
//! address `prod.shop.default.frontend` (FQDN of the internal NLB), service `prod.tcp-82`, and
//! NAT pre-rule `prod.in.shop.default.frontend` (untrust→untrust, service `prod.tcp-82`, source
//! NAT to the trust interface, dynamic destination NAT to the address and the Service's first
//! TCP port). Per cluster subnet: NAT rule `prod.out.shop.192.168.110.0_24` (trust→untrust,
//! source NAT to the untrust interface). Per subnet × distinct firewall next hop (first host of
//! its trust subnet): static route `pke-<h4>-192.168.110.0_24-<n4>` (≤31 chars; `<h4>` is a hash
//! of the deployment, `<n4>` of the next hop). Names over the limit keep a truncated tail plus a
//! hash; leftover collisions are resolved deterministically.
//!
//! # Ownership
//! Addresses, services and NAT rules carry tags `pano-eks` and `pano-eks.<deployment>.<cluster>`;
//! routes carry the prefix `pke-<h4>-`; tag objects have comments starting "managed by pano-eks".
//! Only entries with those marks are updated or deleted. A desired name held by any other entry
//! is a reported conflict and is not written.

pub mod aws;
pub mod capacity;
pub mod egress;
pub mod facts;
pub mod front;
mod fxhash;
pub mod in_cluster;
pub mod panorama;
pub mod prepare;
pub mod security;
pub mod settings;
pub mod time;
pub mod verify;

pub use facts::{ClusterFacts, Facts, FactsError, FirewallFacts, LoadBalancerFacts, PortFacts, ServiceFacts, SubnetFacts};
pub use panorama::model::{
    Address, AddressValue, DestinationTranslation, Kind, MARKER_TAG, NatRule, NextHop, Object, Observed, Operation, Protocol, Referrer,
    ReferrerKind, Scope, ServiceObject, SourceTranslation, StaticRoute, Tag, ancestors, descendants,
};
pub use panorama::naming::Names;
pub use panorama::refusals::Refusal;
pub use panorama::{ClusterStatus, Plan, Problem, ProblemKind, ServiceState, ServiceStatus, SubnetStatus, plan};
pub use settings::{PlanSettings, SettingsError};
pub use time::{Timestamp, TimestampError};

//! The planning core of pano-eks: a pure function from facts to the ordered operations that make
//! Panorama hold exactly what protects the labelled Services. No I/O lives here.
//!
//! Flow (after the AWS Load Balancer Controller: build a model, then one synthesizer per kind):
//! [`Facts`] + [`PlanSettings`] → desired entries (validated, named, ownership-tagged) →
//! compared per kind with [`Observed`] by *ownership mark*, never by name alone → [`Plan`].
//!
//! * [`facts`]: input JSON (`pano-eks sync --facts FILE`).
//! * [`model`]: the five entry kinds, [`Operation`], [`Observed`].
//! * [`naming`]: names within PAN-OS limits and the ownership marks.
//! * [`plan()`]: the planner; `status`: what it reports (Service, cluster, subnet states, problems).
//! * [`refusals`]: what a write Panorama refused means for the plan's Services.
//! * [`alb`]: the public ALB's target group and listener rule per protected Service.
//! * [`front`]: the public NLB's listener and target group per protected Service port.
//! * [`egress`]: which firewall carries cluster egress (its EIP, the clusters' default routes).
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

pub mod alb;
mod desired;
pub mod egress;
pub mod facts;
pub mod front;
mod fxhash;
pub mod locks;
pub mod model;
pub mod naming;
mod plan;
pub mod prepare;
pub mod refusals;
pub mod settings;
mod spec;
mod status;
pub mod time;

pub use facts::{ClusterFacts, Facts, FactsError, FirewallFacts, PortFacts, ServiceFacts, SubnetFacts};
pub use model::{
    Address, AddressValue, DestinationTranslation, Kind, MARKER_TAG, NatRule, NextHop, Object, Observed, Operation, Protocol, Referrer,
    ReferrerKind, Scope, ServiceObject, SourceTranslation, StaticRoute, Tag, descendants,
};
pub use naming::Names;
pub use plan::{ClusterStatus, Plan, Problem, ProblemKind, ServiceState, ServiceStatus, SubnetStatus, plan};
pub use refusals::Refusal;
pub use settings::{PlanSettings, SettingsError};
pub use time::{Timestamp, TimestampError};

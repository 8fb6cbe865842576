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
//! * [`plan()`]: the planner and the status it reports.

mod desired;
pub mod facts;
mod fxhash;
pub mod model;
pub mod naming;
mod plan;
pub mod settings;
mod spec;
pub mod time;

pub use facts::{ClusterFacts, Facts, FactsError, FirewallFacts, PortFacts, ServiceFacts, SubnetFacts};
pub use model::{
    Address, AddressValue, DestinationTranslation, Kind, MARKER_TAG, NatRule, NextHop, Object, Observed, Operation, Protocol,
    Scope, ServiceObject, SourceTranslation, StaticRoute, Tag,
};
pub use naming::Names;
pub use plan::{ClusterStatus, Plan, Problem, ProblemKind, ServiceState, ServiceStatus, SubnetStatus, plan};
pub use settings::{PlanSettings, SettingsError};
pub use time::{Timestamp, TimestampError};

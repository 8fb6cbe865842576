//! The Panorama objects room: what pano-eks keeps in Panorama for the labelled Services.
//!
//! Same shape as every room of the core: inputs ([`crate::Facts`], [`crate::PlanSettings`]) →
//! `desired` entries (validated, named, ownership-tagged, built from `spec`) → diffed per kind
//! against [`model::Observed`] by ownership mark ([`plan()`]) → ordered [`model::Operation`]s and
//! per-Service `status`. After the writes: [`refusals`] (what a refused write means for the
//! plan) and [`locks`] (a refused commit or push: wait or fail).

pub(crate) mod desired;
pub mod locks;
pub mod model;
pub mod naming;
mod plan;
pub mod refusals;
pub(crate) mod spec;
pub(crate) mod status;

pub use plan::{Plan, plan};
pub use status::{ClusterStatus, Problem, ProblemKind, ServiceState, ServiceStatus, SubnetStatus};

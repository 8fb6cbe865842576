//! Security policy from Kubernetes (issue 19). So far: whether a labelled Service's own load
//! balancer bypasses the firewalls ([`exposure`]). The allow rules, outbound rules, dynamic
//! address groups and placement of issue 19 are not built yet.

pub mod exposure;

pub use exposure::{Exposure, exposure};

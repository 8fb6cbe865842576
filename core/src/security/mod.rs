//! Security policy from Kubernetes (issue 19), opt-in with `[sync.security]`:
//!
//! * [`exposure`]: whether a labelled Service's own load balancer bypasses the firewalls
//!   (`exposed`, whether or not security rules are on);
//! * [`annotations`]: what a Service asks of its allow rule (App-IDs, profile group);
//! * [`rules`]: the allow rule per protected Service and the outbound rule per cluster subnet,
//!   with the PAN-OS semantics they follow (pre-NAT addresses, post-NAT zone, pre-NAT port);
//! * [`groups`]: dynamic address groups per cluster and per namespace, and their filters;
//! * [`placement`]: where our block of rules sits and the `move`s of our own rules that put it
//!   there;
//! * `policy`: the stage the Panorama planner runs after the NAT path (desired vs observed by
//!   ownership mark → operations, moves, status).

pub mod annotations;
pub mod exposure;
pub mod groups;
pub mod placement;
pub(crate) mod policy;
pub mod rules;

pub use exposure::{Exposure, exposure};

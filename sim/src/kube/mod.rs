//! kube-sim: an in-memory Kubernetes API server for kubectl and kube-rs (see sim/README.md).

pub mod api;
pub mod auth;
pub mod clock;
pub mod discovery;
pub mod eks_token;
pub mod patch;
pub mod proto;
pub mod resources;
pub mod selectors;
pub mod server;
pub mod state;
pub mod store;

//! The Kubernetes adapter: cluster access, the pan-user identity (the seed's STEP 2–3), Service
//! discovery, and the clean-up `down` needs. It observes and applies; decisions stay in the core.

pub mod access;
pub mod discovery;
pub mod events;
pub mod leader;
pub mod pan_user;

pub use access::{ClusterAccess, client, kubeconfig_for};
pub use discovery::{delete_load_balancer_services, list_services, service_facts};
pub use pan_user::{CredentialFiles, apply_pan_user};

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("Kubernetes API: {0}")]
    Api(#[from] kube::Error),
    #[error("cluster access: {0}")]
    Config(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
}

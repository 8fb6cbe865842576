//! How pano-eks reaches a cluster's API: an endpoint, the CA that signs it, and a bearer token.
//! Built as an in-memory kubeconfig so kube-rs parses certificates exactly as kubectl would.

use base64::Engine as _;
use kube::config::{AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext};
use secrecy::SecretString;

use super::KubeError;
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub struct ClusterAccess {
    /// `https://…` API endpoint.
    pub endpoint: String,
    /// PEM of the CA; `None` = system roots.
    pub ca_pem: Option<Vec<u8>>,
    pub token: Secret,
}

/// A kubeconfig with one context named `name` for this access (token included: write it 0600).
pub fn kubeconfig_for(name: &str, access: &ClusterAccess) -> Kubeconfig {
    let b64 = base64::engine::general_purpose::STANDARD;
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: name.to_string(),
            cluster: Some(Cluster {
                server: Some(access.endpoint.clone()),
                certificate_authority_data: access.ca_pem.as_ref().map(|p| b64.encode(p)),
                ..Default::default()
            }),
            ..Default::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: name.to_string(),
            auth_info: Some(AuthInfo { token: Some(SecretString::from(access.token.expose().to_string())), ..Default::default() }),
            ..Default::default()
        }],
        contexts: vec![NamedContext {
            name: name.to_string(),
            context: Some(Context { cluster: name.to_string(), user: Some(name.to_string()), ..Default::default() }),
            ..Default::default()
        }],
        current_context: Some(name.to_string()),
        api_version: Some("v1".into()),
        kind: Some("Config".into()),
        ..Default::default()
    }
}

/// A client for the cluster. TLS is always verified (against `ca_pem` when given).
pub async fn client(access: &ClusterAccess) -> Result<kube::Client, KubeError> {
    crate::panorama::client::install_crypto_provider();
    let kc = kubeconfig_for("pano-eks", access);
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| KubeError::Config(format!("{}: {e}", access.endpoint)))?;
    kube::Client::try_from(cfg).map_err(KubeError::Api)
}

/// A client from a kubeconfig file and optional context (for clusters not reached through EKS).
pub async fn client_from_kubeconfig(path: &std::path::Path, context: Option<&str>) -> Result<kube::Client, KubeError> {
    crate::panorama::client::install_crypto_provider();
    let kc = Kubeconfig::read_from(path).map_err(|e| KubeError::Config(format!("{}: {e}", path.display())))?;
    let opts = KubeConfigOptions { context: context.map(str::to_string), ..Default::default() };
    let cfg = kube::Config::from_custom_kubeconfig(kc, &opts).await.map_err(|e| KubeError::Config(format!("{}: {e}", path.display())))?;
    kube::Client::try_from(cfg).map_err(KubeError::Api)
}

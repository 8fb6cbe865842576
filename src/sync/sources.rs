//! Where `sync`, `plan` and `status` get their facts and cluster access.
//!
//! Cluster access, per `[[clusters]]` entry, in this order:
//! 0. `in_cluster = true`: the pod's own service account (in-cluster mode);
//! 1. `api_server` + `ca_cert` (+ `token_file`): private endpoints behind a tunnel, the lab;
//! 2. `kubeconfig` (+ `context`);
//! 3. EKS: endpoint and CA from `eks:DescribeCluster`.
//!
//! The token: `token_file` when given; else, for `sync`, pan-user's exported token (the identity
//! the seed sets up, with read-only rights) when `credentials`/`up` exported one; else the
//! operator's in-process EKS token.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use pano_eks_core::{ClusterFacts, Facts};

use crate::aws::{Aws, discovery};
use crate::config::{Cluster, LoadedConfig};
use crate::kube::{self, ClusterAccess};
use crate::secret::Secret;

/// `.pano-eks/<deployment>/` beside the config file: exported credentials live here per cluster.
pub fn state_dir(loaded: &LoadedConfig) -> PathBuf {
    loaded.path.parent().unwrap_or(Path::new(".")).join(".pano-eks").join(&loaded.config.name)
}

/// Whose identity a cluster client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// pan-user's exported token when there is one (sync, status).
    PanUserPreferred,
    /// The operator (up, credentials, down).
    Operator,
}

/// pan-user's token from the credential JSON exported for `cluster`, if present.
pub fn exported_pan_user_token(loaded: &LoadedConfig, cluster: &str) -> Option<Secret> {
    let path = state_dir(loaded).join(cluster).join("pan-user-credential.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let b64 = v["data"]["token"].as_str()?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let token = String::from_utf8(raw).ok()?;
    (!token.is_empty()).then(|| Secret::new(token))
}

/// A client for one cluster, following the order above.
pub async fn cluster_client(loaded: &LoadedConfig, c: &Cluster, aws: Option<&Aws>, who: Identity) -> Result<::kube::Client, String> {
    let pan_user = || (who == Identity::PanUserPreferred).then(|| exported_pan_user_token(loaded, &c.name)).flatten();
    if c.in_cluster {
        crate::panorama::client::install_crypto_provider();
        let cfg = ::kube::Config::incluster().map_err(|e| format!("cluster {} (in_cluster): {e}", c.name))?;
        return ::kube::Client::try_from(cfg).map_err(|e| format!("cluster {}: {e}", c.name));
    }
    if let Some(api) = &c.api_server {
        let ca_pem = match &c.ca_cert {
            Some(p) => Some(std::fs::read(loaded.resolve(p)).map_err(|e| format!("cluster {}: ca_cert {}: {e}", c.name, p.display()))?),
            None => None,
        };
        let token = match (&c.token_file, pan_user()) {
            (Some(f), _) => {
                let t = std::fs::read_to_string(loaded.resolve(f))
                    .map_err(|e| format!("cluster {}: token_file {}: {e}", c.name, f.display()))?;
                Secret::new(t.trim().to_string())
            }
            (None, Some(t)) => t,
            (None, None) => {
                let aws = aws.ok_or_else(|| format!("cluster {}: no token_file and no AWS access for an EKS token", c.name))?;
                crate::aws::eks::token_now(aws, &c.name).await.map_err(|e| e.to_string())?
            }
        };
        let access = ClusterAccess { endpoint: api.clone(), ca_pem, token };
        return kube::client(&access).await.map_err(|e| format!("cluster {}: {e}", c.name));
    }
    if let Some(kc) = &c.kubeconfig {
        return kube::access::client_from_kubeconfig(&loaded.resolve(kc), c.context.as_deref())
            .await
            .map_err(|e| format!("cluster {}: {e}", c.name));
    }
    let aws =
        aws.ok_or_else(|| format!("cluster {}: no api_server or kubeconfig configured, and no AWS access to find it in EKS", c.name))?;
    let info = crate::aws::eks::describe_cluster(&aws.eks, &c.name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("EKS cluster {} does not exist (run `pano-eks up`)", c.name))?;
    let token = match pan_user() {
        Some(t) => t,
        None => crate::aws::eks::token_now(aws, &c.name).await.map_err(|e| e.to_string())?,
    };
    let access = ClusterAccess { endpoint: info.endpoint.clone(), ca_pem: info.ca_pem(), token };
    kube::client(&access).await.map_err(|e| format!("cluster {}: {e}", c.name))
}

/// The AWS-side facts: each cluster's subnets (EKS → EC2), the firewalls (the firewall ASG's
/// instances → their trust ENI, device index 2 → its subnet) and the load balancers (each
/// Service's own scheme). No Services.
pub async fn aws_facts(loaded: &LoadedConfig, aws: &Aws) -> Result<Facts, String> {
    let cfg = &loaded.config;
    let mut facts = Facts::default();
    for c in &cfg.clusters {
        let subnets = discovery::cluster_subnets(aws, &c.name).await.map_err(|e| format!("cluster {} subnets: {e}", c.name))?;
        facts.clusters.push(ClusterFacts { name: c.name.clone(), subnets, services: vec![] });
    }
    let (firewalls, pending) = discovery::firewalls(aws, &cfg.firewall_asg()).await.map_err(|e| format!("firewalls: {e}"))?;
    if !pending.is_empty() {
        tracing::warn!("firewalls not used yet (no trust interface: still booting; or not InService): {}", pending.join(", "));
    }
    facts.firewalls = firewalls;
    facts.load_balancers = discovery::load_balancers(aws).await.map_err(|e| format!("load balancers: {e}"))?;
    Ok(facts)
}

/// Reads a facts file; with `services_too = false` its Services are dropped (they come from
/// the watches) and a warning says so.
pub fn facts_file(path: &Path, services_too: bool) -> Result<Facts, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read facts file {}: {e}", path.display()))?;
    let mut f = Facts::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if !services_too {
        let n: usize = f.clusters.iter().map(|c| c.services.len()).sum();
        if n > 0 {
            tracing::warn!("{}: its {n} Service(s) are ignored: Services come from the Kubernetes watches", path.display());
        }
        for c in &mut f.clusters {
            c.services.clear();
        }
    }
    Ok(f)
}

//! What several commands need and none owns: the async runtime, a yes/no prompt, the config's
//! folder, and the connections to Panorama and to a cluster. Kept apart so that commands depend
//! on it, not on each other (no `up` ⇄ `prepare` cycle).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use super::Failure;
use crate::aws::{Aws, eks};
use crate::cli::{FactsSource, PanoramaFlags};
use crate::config::LoadedConfig;
use crate::sync::sources::{self, Identity};
use crate::sync::{Engine, EngineOptions};
use pano_eks_core::Facts;

/// The runtime every async command runs on (two workers: the machine's usual size).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("cannot start the async runtime: {e}")))
}

/// Asks a yes/no question on the terminal; `--yes` answers yes; no terminal is a usage error.
pub(crate) fn confirm(question: &str, yes: bool) -> Result<bool, Failure> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(format!("{question}\nno terminal to ask on: re-run with --yes to proceed")));
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(|e| Failure::failed(e.to_string()))?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

/// The folder relative paths of the config resolve against.
pub(crate) fn base_dir(loaded: &LoadedConfig) -> PathBuf {
    loaded.path.parent().map(Path::to_path_buf).filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| PathBuf::from("."))
}

/// The sync engine for the config's Panorama (keygen, version, write mode), or why not.
pub(crate) async fn connect_panorama(loaded: &LoadedConfig, conn: &PanoramaFlags) -> Result<Engine, String> {
    let opts = EngineOptions { insecure: conn.insecure, ..Default::default() };
    Engine::connect(&loaded.config, &base_dir(loaded), opts).await.map_err(|e| e.to_string())
}

/// Endpoint and CA from EKS (or the cluster's `api_server`/`ca_cert` override, which replaces
/// only those two), and a fresh in-process token. `None` when the cluster does not exist.
pub(crate) async fn cluster_access(
    aws: &Aws,
    loaded: &LoadedConfig,
    c: &crate::config::Cluster,
) -> Result<Option<(crate::kube::ClusterAccess, eks::ClusterInfo)>, String> {
    let Some(info) = eks::describe_cluster(&aws.eks, &c.name).await.map_err(|e| e.to_string())? else { return Ok(None) };
    let endpoint = c.api_server.clone().unwrap_or_else(|| info.endpoint.clone());
    let ca_pem = match &c.ca_cert {
        Some(p) => {
            let p = loaded.resolve(p);
            Some(std::fs::read(&p).map_err(|e| format!("cluster {} ca_cert {}: {e}", c.name, p.display()))?)
        }
        None => info.ca_pem(),
    };
    let token = eks::token_now(aws, &c.name).await.map_err(|e| e.to_string())?;
    Ok(Some((crate::kube::ClusterAccess { endpoint, ca_pem, token }, info)))
}

/// The facts of one converge: the `--facts` file as it is, or AWS discovery plus each
/// cluster's labelled Services (listed as pan-user when its credentials were exported).
pub(crate) async fn gather_facts(loaded: &LoadedConfig, source: &FactsSource) -> Result<Facts, Failure> {
    if let Some(path) = &source.facts {
        return sources::facts_file(path, true).map_err(Failure::usage);
    }
    let aws = Aws::connect(&loaded.config.region).await;
    let mut facts = sources::aws_facts(loaded, &aws).await.map_err(Failure::failed)?;
    for c in &loaded.config.clusters {
        // An unreachable cluster is frozen (its Service objects held as they are) and reported;
        // the others still converge, and the command exits non-zero.
        let listed = match sources::cluster_client(loaded, c, Some(&aws), Identity::PanUserPreferred).await {
            Ok(client) => crate::kube::list_services(&client, &loaded.config.sync.label).await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match listed {
            Ok(services) => {
                if let Some(cf) = facts.clusters.iter_mut().find(|f| f.name == c.name) {
                    cf.services = services;
                }
            }
            Err(e) => {
                eprintln!("error: cluster {}: Services could not be listed ({e}); its Panorama objects are left as they are", c.name);
                facts.frozen_clusters.push(c.name.clone());
            }
        }
    }
    Ok(facts)
}

//! The in-cluster `sync --watch`: the kustomize base (manifests/identity/ + manifests/in-cluster/),
//! embedded so `render` writes it from the binary itself, and the overlay for the cluster with
//! `in_cluster = true` (template manifests/in-cluster-overlay/; what it says is decided by
//! `pano_eks_core::in_cluster`).
//!
//! The base is embedded, not looked up in a checkout: the binary that renders is the one the
//! image runs, so its base (flags, config mount, probes) always matches it, and the render output
//! folder alone is enough for `kubectl apply -k` (no clone of this repository needed).

use std::path::{Path, PathBuf};

use pano_eks_core::in_cluster::{self, Inputs};

use super::RenderError;
use super::manifests::MANIFESTS;
use crate::config::LoadedConfig;

/// The base's own files (manifests/in-cluster/), written to `manifests/in-cluster/`.
pub const BASE: &[(&str, &str)] = &[
    ("kustomization.yaml", include_str!("../../manifests/in-cluster/kustomization.yaml")),
    ("sync-deployment.yaml", include_str!("../../manifests/in-cluster/sync-deployment.yaml")),
    ("sync-networkpolicy.yaml", include_str!("../../manifests/in-cluster/sync-networkpolicy.yaml")),
    ("sync-poddisruptionbudget.yaml", include_str!("../../manifests/in-cluster/sync-poddisruptionbudget.yaml")),
];

/// The identity's kustomization (manifests/identity/Kustomization), beside MANIFESTS.
pub const IDENTITY_KUSTOMIZATION: &str = include_str!("../../manifests/identity/Kustomization");

const OVERLAY_TEMPLATE: &str = include_str!("../../manifests/in-cluster-overlay/kustomization.yaml.tera");

/// Where the overlay's `resources:` finds the base, from `in-cluster/<cluster>/`.
const BASE_FROM_OVERLAY: &str = "../../manifests/in-cluster";

/// Files of the base and the identity, relative to the render folder.
pub fn base_files() -> Vec<(PathBuf, &'static str)> {
    let identity = Path::new("manifests/identity");
    let mut out: Vec<(PathBuf, &str)> = MANIFESTS.iter().map(|(n, t)| (identity.join(n), *t)).collect();
    out.push((identity.join("Kustomization"), IDENTITY_KUSTOMIZATION));
    out.extend(BASE.iter().map(|(n, t)| (Path::new("manifests/in-cluster").join(n), *t)));
    out
}

/// The overlay for one cluster: its files (relative to the render folder) and warnings.
#[derive(Debug)]
pub struct Overlay {
    pub cluster: String,
    pub files: Vec<(PathBuf, Vec<u8>)>,
    pub notes: Vec<String>,
}

/// The overlay of the cluster with `in_cluster = true`, if there is one.
pub fn overlay(loaded: &LoadedConfig) -> Result<Option<Overlay>, RenderError> {
    let cfg = &loaded.config;
    let Some(cluster) = cfg.clusters.iter().find(|c| c.in_cluster) else { return Ok(None) };
    let ca = cfg.panorama.ca_cert.as_ref().map(|p| p.to_string_lossy().into_owned());
    let default_image = format!("{}:{}", in_cluster::BASE_IMAGE, env!("CARGO_PKG_VERSION"));
    let mut local_files = Vec::new();
    for c in cfg.clusters.iter().filter(|c| !c.in_cluster) {
        for (key, set) in [
            ("clusters.kubeconfig", c.kubeconfig.is_some()),
            ("clusters.token_file", c.token_file.is_some()),
            ("clusters.ca_cert", c.ca_cert.is_some()),
        ] {
            if set {
                local_files.push((c.name.as_str(), key));
            }
        }
    }
    let inputs = Inputs {
        cluster: &cluster.name,
        panorama_url: &cfg.panorama.url,
        panorama_ca_cert: ca.as_deref(),
        metrics_addr: cfg.sync.metrics_addr.as_deref(),
        credential_envs: [cfg.panorama.api_key_env.as_deref(), cfg.panorama.password_env.as_deref()].into_iter().flatten().collect(),
        secret: cfg.sync.panorama_secret.as_deref(),
        image: cfg.sync.image.as_deref(),
        default_image: &default_image,
        local_files,
    };
    let o = in_cluster::overlay(&inputs).map_err(|problems| RenderError::InCluster {
        cluster: cluster.name.clone(),
        problems: problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
    })?;

    let mut ctx = tera::Context::new();
    ctx.insert("o", &o);
    ctx.insert("base", BASE_FROM_OVERLAY);
    ctx.insert("base_image", in_cluster::BASE_IMAGE);
    let text = tera::Tera::one_off(OVERLAY_TEMPLATE, &ctx, false).map_err(|e| RenderError::Template {
        template: "manifests/in-cluster-overlay/kustomization.yaml.tera".into(),
        message: super::cfn::error_chain(&e),
    })?;
    let dir = Path::new("in-cluster").join(&o.cluster);
    let read = |p: PathBuf| std::fs::read(&p).map_err(|source| RenderError::Io { path: p, source });
    let mut files = vec![
        (dir.join("kustomization.yaml"), text.trim_start().as_bytes().to_vec()),
        (dir.join("pano-eks.toml"), read(loaded.path.clone())?),
    ];
    if let Some(ca) = &cfg.panorama.ca_cert {
        // Validated by the core as a bare file name beside the config.
        files.push((dir.join(&o.extra_files[0]), read(loaded.resolve(ca))?));
    }
    Ok(Some(Overlay { cluster: o.cluster, files, notes: o.notes }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_base_folder_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/in-cluster");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        on_disk.sort();
        let embedded: Vec<&str> = BASE.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn the_identity_kustomization_lists_exactly_the_embedded_manifests() {
        let k: serde_json::Value = serde_saphyr::from_str(IDENTITY_KUSTOMIZATION).unwrap();
        let listed: Vec<&str> = k["resources"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let embedded: Vec<&str> = MANIFESTS.iter().map(|(n, _)| *n).collect();
        assert_eq!(listed, embedded);
    }

    /// The overlay's JSON patch replaces containers/0/ports/0: that must stay sync's metrics port.
    #[test]
    fn the_overlay_patches_address_the_base_deployment_as_it_is() {
        use k8s_openapi::api::apps::v1::Deployment;
        let d: Deployment = serde_saphyr::from_str(BASE[1].1).unwrap();
        let pod = d.spec.template.spec.unwrap();
        let c = &pod.containers[0];
        assert_eq!(c.name, "sync");
        assert_eq!(c.ports.as_ref().unwrap()[0].name.as_deref(), Some("metrics"));
        assert!(c.image.as_deref().unwrap().starts_with(&format!("{}:", in_cluster::BASE_IMAGE)), "{:?}", c.image);
        let config = pod.volumes.unwrap().into_iter().find_map(|v| v.config_map).unwrap();
        assert_eq!(config.name, "pano-eks-config");
        let mount = c.volume_mounts.as_ref().unwrap().iter().find(|m| m.name == "config").unwrap();
        assert_eq!(mount.mount_path, in_cluster::CONFIG_DIR);
    }
}

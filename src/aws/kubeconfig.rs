//! The operator's kubeconfig, like eksctl writes it: one context per cluster whose user runs
//! `pano-eks token` (an ExecCredential plugin), merged into the existing file, so kubectl works
//! right after `up` with no aws CLI or aws-iam-authenticator installed. The file is written 0600.

use std::path::{Path, PathBuf};

use kube::config::{AuthInfo, Cluster, Context, ExecConfig, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext};

/// `$KUBECONFIG`'s first entry, else `~/.kube/config`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(k) = std::env::var_os("KUBECONFIG").filter(|k| !k.is_empty()) {
        return std::env::split_paths(&k).next();
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube/config"))
}

/// The entries for one cluster.
pub struct Entry<'a> {
    pub context: &'a str,
    pub server: &'a str,
    /// Base64 of the CA PEM (as EKS returns it); `None` = system roots.
    pub ca_data: Option<String>,
    /// The command kubectl runs, and its arguments.
    pub command: String,
    pub args: Vec<String>,
}

/// Replaces (or adds) the cluster, user and context named `entry.context`; sets it current.
pub fn merge(mut kc: Kubeconfig, entry: &Entry) -> Kubeconfig {
    let name = entry.context.to_string();
    kc.clusters.retain(|c| c.name != name);
    kc.clusters.push(NamedCluster {
        name: name.clone(),
        cluster: Some(Cluster {
            server: Some(entry.server.to_string()),
            certificate_authority_data: entry.ca_data.clone(),
            ..Default::default()
        }),
        other: Default::default(),
    });
    kc.auth_infos.retain(|a| a.name != name);
    kc.auth_infos.push(NamedAuthInfo {
        name: name.clone(),
        auth_info: Some(AuthInfo {
            exec: Some(ExecConfig {
                api_version: Some("client.authentication.k8s.io/v1beta1".into()),
                command: Some(entry.command.clone()),
                args: Some(entry.args.clone()),
                interactive_mode: None,
                ..Default::default()
            }),
            ..Default::default()
        }),
        other: Default::default(),
    });
    kc.contexts.retain(|c| c.name != name);
    kc.contexts.push(NamedContext {
        name: name.clone(),
        context: Some(Context { cluster: name.clone(), user: Some(name.clone()), ..Default::default() }),
        other: Default::default(),
    });
    kc.current_context = Some(name);
    kc
}

/// Reads `path` (missing = empty), merges, writes back with mode 0600.
pub fn merge_into(path: &Path, entry: &Entry) -> Result<(), String> {
    let kc =
        if path.exists() { Kubeconfig::read_from(path).map_err(|e| format!("{}: {e}", path.display()))? } else { Kubeconfig::default() };
    let mut kc = merge(kc, entry);
    if kc.api_version.is_none() {
        kc.api_version = Some("v1".into());
    }
    if kc.kind.is_none() {
        kc.kind = Some("Config".into());
    }
    let text = serde_saphyr::to_string(&kc).map_err(|e| format!("kubeconfig: {e}"))?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    crate::secret::write_private_file(path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(ctx: &'a str, server: &'a str) -> Entry<'a> {
        Entry {
            context: ctx,
            server,
            ca_data: Some("Q0E=".into()),
            command: "/usr/bin/pano-eks".into(),
            args: vec!["token".into(), "--region".into(), "us-west-2".into(), "--cluster".into(), "shop".into()],
        }
    }

    #[test]
    fn merge_keeps_other_entries_and_replaces_ours() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("kube/config");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster:\n    server: https://other\ncontexts:\n- name: other\n  context:\n    cluster: other\n    user: other\nusers:\n- name: other\n  user:\n    token: abc\ncurrent-context: other\n").unwrap();
        merge_into(&p, &entry("pano-eks-demo-shop", "https://one")).unwrap();
        merge_into(&p, &entry("pano-eks-demo-shop", "https://two")).unwrap();
        let kc = Kubeconfig::read_from(&p).unwrap();
        assert_eq!(kc.clusters.len(), 2);
        assert_eq!(kc.current_context.as_deref(), Some("pano-eks-demo-shop"));
        let ours = kc.clusters.iter().find(|c| c.name == "pano-eks-demo-shop").unwrap();
        assert_eq!(ours.cluster.as_ref().unwrap().server.as_deref(), Some("https://two"));
        let user = kc.auth_infos.iter().find(|a| a.name == "pano-eks-demo-shop").unwrap();
        let exec = user.auth_info.as_ref().unwrap().exec.as_ref().unwrap();
        assert_eq!(exec.args.as_ref().unwrap()[0], "token");
        assert!(kc.auth_infos.iter().any(|a| a.name == "other"), "other users stay");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}

//! The Kubernetes manifests of the pan-user identity (the seed's STEP 2), embedded so the binary
//! can apply them anywhere. Files in `manifests/identity/` apply in name order.

pub const NAMESPACE: &str = "pano-eks";
pub const SERVICE_ACCOUNT: &str = "pan-user";
pub const TOKEN_SECRET: &str = "pan-user-token";

/// (file name, YAML) in apply order.
pub const MANIFESTS: &[(&str, &str)] = &[
    ("00-namespace.yaml", include_str!("../../manifests/identity/00-namespace.yaml")),
    ("01-pan-user-serviceaccount.yaml", include_str!("../../manifests/identity/01-pan-user-serviceaccount.yaml")),
    ("02-cluster-read-all-clusterrole.yaml", include_str!("../../manifests/identity/02-cluster-read-all-clusterrole.yaml")),
    ("03-cluster-read-all-clusterrolebinding.yaml", include_str!("../../manifests/identity/03-cluster-read-all-clusterrolebinding.yaml")),
    ("04-pan-user-token-secret.yaml", include_str!("../../manifests/identity/04-pan-user-token-secret.yaml")),
    ("05-sync-leader-election-role.yaml", include_str!("../../manifests/identity/05-sync-leader-election-role.yaml")),
    ("06-sync-leader-election-rolebinding.yaml", include_str!("../../manifests/identity/06-sync-leader-election-rolebinding.yaml")),
];

/// The in-cluster `sync --watch` Deployment (part of the kustomize base, render/in_cluster.rs).
pub const SYNC_DEPLOYMENT: &str = include_str!("../../manifests/in-cluster/sync-deployment.yaml");

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};

    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(name: &str) -> T {
        let (_, text) = MANIFESTS.iter().find(|(n, _)| *n == name).unwrap();
        serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn the_sync_deployment_is_two_replicas_with_leader_election_as_pan_user() {
        use k8s_openapi::api::apps::v1::Deployment;
        let d: Deployment = serde_saphyr::from_str(SYNC_DEPLOYMENT).unwrap();
        let spec = d.spec;
        assert_eq!(spec.replicas, Some(2));
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some(SERVICE_ACCOUNT));
        let args = pod.containers[0].args.clone().unwrap();
        assert!(args.contains(&"--watch".to_string()) && args.contains(&"--leader-elect".to_string()), "{args:?}");
        let role: k8s_openapi::api::rbac::v1::Role = parse("05-sync-leader-election-role.yaml");
        assert_eq!(role.rules.unwrap()[0].resources.as_deref(), Some(&["leases".to_string()][..]));
    }

    #[test]
    fn every_file_in_the_folder_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/identity");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".yaml") && n.starts_with("0"))
            .collect();
        on_disk.sort();
        let embedded: Vec<String> = MANIFESTS.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn manifests_parse_as_kubernetes_types_and_say_what_we_mean() {
        let ns: Namespace = parse("00-namespace.yaml");
        assert_eq!(ns.metadata.name.as_deref(), Some(NAMESPACE));
        let sa: ServiceAccount = parse("01-pan-user-serviceaccount.yaml");
        assert_eq!((sa.metadata.name.as_deref(), sa.metadata.namespace.as_deref()), (Some(SERVICE_ACCOUNT), Some(NAMESPACE)));

        let role: ClusterRole = parse("02-cluster-read-all-clusterrole.yaml");
        assert_eq!(role.metadata.name.as_deref(), Some("cluster-read-all"));
        let rules = role.rules.unwrap();
        let granted: Vec<(String, String)> = rules
            .iter()
            .flat_map(|r| {
                r.resources
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |res| (r.api_groups.clone().unwrap_or_default().join(","), res))
            })
            .collect();
        for want in ["services", "endpoints", "pods", "nodes", "namespaces", "endpointslices"] {
            assert!(granted.iter().any(|(_, r)| r == want), "{want} missing");
        }
        assert!(!granted.iter().any(|(_, r)| r == "secrets" || r == "*"), "pan-user must not read secrets");
        for r in &rules {
            let mut verbs = r.verbs.clone();
            verbs.sort();
            let resources = r.resources.clone().unwrap_or_default();
            if resources == ["events"] {
                assert_eq!(verbs, ["create", "patch"], "events may only be recorded");
            } else {
                assert_eq!(verbs, ["get", "list", "watch"], "{resources:?} are read-only");
            }
        }

        let binding: ClusterRoleBinding = parse("03-cluster-read-all-clusterrolebinding.yaml");
        assert_eq!(binding.role_ref.name, "cluster-read-all");
        let subject = &binding.subjects.unwrap()[0];
        assert_eq!(
            (subject.kind.as_str(), subject.name.as_str(), subject.namespace.as_deref()),
            ("ServiceAccount", SERVICE_ACCOUNT, Some(NAMESPACE))
        );

        let secret: Secret = parse("04-pan-user-token-secret.yaml");
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/service-account-token"));
        assert_eq!(secret.metadata.name.as_deref(), Some(TOKEN_SECRET));
        assert_eq!(
            secret.metadata.annotations.unwrap().get("kubernetes.io/service-account.name").map(String::as_str),
            Some(SERVICE_ACCOUNT)
        );
    }
}

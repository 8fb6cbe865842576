//! The pan-user identity (the seed's STEP 2–3, automated): apply `manifests/` idempotently, wait
//! for the token controller to fill pan-user's token Secret, and export (a) the credential JSON in
//! the format the seed exports with `kubectl get secret … -o json` (≤ 32 KB, what Panorama's plugin
//! takes) and (b) a kubeconfig for pan-user. Both files are mode 0600 and never printed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::NamespaceResourceScope;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::KubeError;
use super::access::{ClusterAccess, kubeconfig_for};
use crate::render::manifests::{MANIFESTS, NAMESPACE, SERVICE_ACCOUNT, TOKEN_SECRET};
use crate::secret::{Secret as SecretValue, write_private_file};

/// Panorama's Kubernetes plugin refuses credential files over 32 KB.
pub const CREDENTIAL_MAX_BYTES: usize = 32 * 1024;

#[derive(Debug, Clone)]
pub struct CredentialFiles {
    pub credential_json: PathBuf,
    pub kubeconfig: PathBuf,
}

fn parse<T: DeserializeOwned>(name: &str) -> T {
    let (_, text) = MANIFESTS.iter().find(|(n, _)| *n == name).expect("embedded manifest");
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("embedded manifest {name} is invalid: {e}"))
}

/// Create, or merge-patch to our content (merge patches replace lists, so RBAC rules end exact).
async fn ensure<K>(api: Api<K>, obj: &K) -> Result<(), KubeError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let name = obj.meta().name.clone().expect("manifests have names");
    match api.get_opt(&name).await? {
        None => match api.create(&PostParams::default(), obj).await {
            Ok(_) => Ok(()),
            // Created meanwhile by someone else: fall through to the patch on the next run.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        },
        Some(_) => {
            api.patch(&name, &PatchParams::default(), &Patch::Merge(obj)).await?;
            Ok(())
        }
    }
}

fn namespaced<K>(client: &kube::Client) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    Api::namespaced(client.clone(), NAMESPACE)
}

/// Applies the manifests, waits (bounded) for the token, writes the two files into `out_dir`.
pub async fn apply_pan_user(
    client: &kube::Client,
    endpoint: &str,
    out_dir: &Path,
    timeout: Duration,
) -> Result<CredentialFiles, KubeError> {
    ensure(Api::<Namespace>::all(client.clone()), &parse::<Namespace>("00-namespace.yaml")).await?;
    ensure(namespaced::<ServiceAccount>(client), &parse("01-pan-user-serviceaccount.yaml")).await?;
    ensure(Api::<ClusterRole>::all(client.clone()), &parse("02-cluster-read-all-clusterrole.yaml")).await?;
    ensure(Api::<ClusterRoleBinding>::all(client.clone()), &parse("03-cluster-read-all-clusterrolebinding.yaml")).await?;
    ensure(namespaced::<Secret>(client), &parse("04-pan-user-token-secret.yaml")).await?;

    let secret = wait_for_token(client, timeout).await?;
    let (json, token, ca) = credential_json(&secret)?;
    std::fs::create_dir_all(out_dir).map_err(|source| KubeError::Io { path: out_dir.to_path_buf(), source })?;
    let credential_json = out_dir.join("pan-user-credential.json");
    write_private_file(&credential_json, json.as_bytes()).map_err(|source| KubeError::Io { path: credential_json.clone(), source })?;
    let access = ClusterAccess { endpoint: endpoint.to_string(), ca_pem: ca, token };
    let kc = kubeconfig_for(SERVICE_ACCOUNT, &access);
    let text = serde_saphyr::to_string(&kc).map_err(|e| KubeError::Config(format!("kubeconfig: {e}")))?;
    let kubeconfig = out_dir.join("pan-user.kubeconfig");
    write_private_file(&kubeconfig, text.as_bytes()).map_err(|source| KubeError::Io { path: kubeconfig.clone(), source })?;
    tracing::info!(dir = %out_dir.display(), "exported pan-user credentials");
    Ok(CredentialFiles { credential_json, kubeconfig })
}

async fn wait_for_token(client: &kube::Client, timeout: Duration) -> Result<Secret, KubeError> {
    let api: Api<Secret> = namespaced(client);
    let start = Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        if let Some(s) = api.get_opt(TOKEN_SECRET).await? {
            let filled = s.data.as_ref().and_then(|d| d.get("token")).is_some_and(|t| !t.0.is_empty());
            if filled {
                return Ok(s);
            }
        }
        if start.elapsed() >= timeout {
            return Err(KubeError::Timeout(format!(
                "the token controller did not fill secret {NAMESPACE}/{TOKEN_SECRET} within {}s",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// The Secret as `kubectl get secret -o json` prints it (server bookkeeping dropped), with `ca.crt`
/// cut to its first certificate if the whole would exceed 32 KB. Returns (json, token, ca pem).
fn credential_json(secret: &Secret) -> Result<(String, SecretValue, Option<Vec<u8>>), KubeError> {
    let mut s = secret.clone();
    s.metadata.managed_fields = None;
    let data = s.data.get_or_insert_with(Default::default);
    let token = data.get("token").map(|t| String::from_utf8_lossy(&t.0).into_owned()).unwrap_or_default();
    let mut ca = data.get("ca.crt").map(|c| c.0.clone());
    let render = |s: &Secret| -> String {
        let mut v = serde_json::to_value(s).expect("secret serializes");
        v["apiVersion"] = "v1".into();
        v["kind"] = "Secret".into();
        serde_json::to_string_pretty(&v).expect("json")
    };
    let mut json = render(&s);
    if json.len() > CREDENTIAL_MAX_BYTES {
        if let Some(first) = ca.as_ref().and_then(|c| first_pem_cert(c)) {
            s.data.as_mut().expect("set above").insert("ca.crt".into(), ByteString(first.clone()));
            ca = Some(first);
            json = render(&s);
        }
    }
    if json.len() > CREDENTIAL_MAX_BYTES {
        return Err(KubeError::Config(format!(
            "the pan-user credential is {} bytes; Panorama accepts at most {CREDENTIAL_MAX_BYTES}",
            json.len()
        )));
    }
    Ok((json, SecretValue::new(token), ca))
}

fn first_pem_cert(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let end = "-----END CERTIFICATE-----";
    let stop = text.find(end)? + end.len();
    let start = text.find("-----BEGIN CERTIFICATE-----")?;
    Some(format!("{}\n", &text[start..stop]).into_bytes())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn secret(ca: &str) -> Secret {
        let mut data = BTreeMap::new();
        data.insert("token".to_string(), ByteString(b"eyJhbGciOi.token".to_vec()));
        data.insert("ca.crt".to_string(), ByteString(ca.as_bytes().to_vec()));
        data.insert("namespace".to_string(), ByteString(b"pano-eks".to_vec()));
        let mut s = Secret { data: Some(data), type_: Some("kubernetes.io/service-account-token".into()), ..Default::default() };
        s.metadata.name = Some(TOKEN_SECRET.into());
        s.metadata.namespace = Some(NAMESPACE.into());
        s
    }

    #[test]
    fn credential_json_is_the_kubectl_shape_and_never_over_32k() {
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let (json, token, ca) = credential_json(&secret(cert)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["kind"], "Secret");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["type"], "kubernetes.io/service-account-token");
        assert!(v["data"]["token"].is_string(), "data is base64 like kubectl prints it");
        assert_eq!(token.expose(), "eyJhbGciOi.token");
        assert_eq!(ca.unwrap(), cert.as_bytes());

        // A CA bundle that would push the file over 32 KB is cut to its first certificate.
        let body = "A".repeat(64);
        let big: String = (0..600).map(|i| format!("-----BEGIN CERTIFICATE-----\n{body}{i}\n-----END CERTIFICATE-----\n")).collect();
        let (json, _, ca) = credential_json(&secret(&big)).unwrap();
        assert!(json.len() <= CREDENTIAL_MAX_BYTES, "{}", json.len());
        assert_eq!(String::from_utf8(ca.unwrap()).unwrap().matches("BEGIN CERTIFICATE").count(), 1);
    }

    #[test]
    fn manifests_parse_for_apply() {
        let _: Namespace = parse("00-namespace.yaml");
        let _: ServiceAccount = parse("01-pan-user-serviceaccount.yaml");
        let _: ClusterRole = parse("02-cluster-read-all-clusterrole.yaml");
        let _: ClusterRoleBinding = parse("03-cluster-read-all-clusterrolebinding.yaml");
        let _: Secret = parse("04-pan-user-token-secret.yaml");
    }
}

//! EKS cluster access without external binaries: endpoint and CA from `eks:DescribeCluster`, and
//! the bearer token aws-iam-authenticator / `aws eks get-token` make — a presigned STS
//! GetCallerIdentity URL (SigV4 in the query, `x-k8s-aws-id: <cluster>` signed, 60 s), base64url
//! encoded behind `k8s-aws-v1.` (payload hash of the empty body, as botocore signs it). The API server's authenticator calls STS with that URL and maps
//! the caller's ARN to a Kubernetes identity (access entry or aws-auth).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine as _;

use super::{AwsError, sdk_err};
use crate::secret::Secret;

/// What `up`, `token` and `sync` need of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    pub name: String,
    pub status: String,
    pub endpoint: String,
    /// `certificateAuthority.data` as EKS gives it (base64 of the PEM).
    pub ca_data: String,
    pub service_cidr: Option<String>,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    pub vpc_id: Option<String>,
    /// The Kubernetes minor version (`1.35`).
    pub version: Option<String>,
    /// The cluster's tags (a stack's cluster carries `pano-eks:deployment` and `pano-eks:cluster`).
    pub tags: BTreeMap<String, String>,
}

impl ClusterInfo {
    /// The CA as PEM bytes, when EKS gave a decodable PEM.
    pub fn ca_pem(&self) -> Option<Vec<u8>> {
        let pem = base64::engine::general_purpose::STANDARD.decode(self.ca_data.trim()).ok()?;
        pem.starts_with(b"-----BEGIN").then_some(pem)
    }
}

/// `None` when the cluster does not exist.
pub async fn describe_cluster(eks: &aws_sdk_eks::Client, name: &str) -> Result<Option<ClusterInfo>, AwsError> {
    let r = match eks.describe_cluster().name(name).send().await {
        Ok(r) => r,
        Err(e) => {
            let e = sdk_err("eks:DescribeCluster", e);
            if e.is_code("ResourceNotFoundException") {
                return Ok(None);
            }
            return Err(e);
        }
    };
    let Some(c) = r.cluster() else { return Ok(None) };
    let vpc = c.resources_vpc_config();
    Ok(Some(ClusterInfo {
        name: name.to_string(),
        status: c.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
        endpoint: c.endpoint().unwrap_or_default().to_string(),
        ca_data: c.certificate_authority().and_then(|a| a.data()).unwrap_or_default().to_string(),
        service_cidr: c.kubernetes_network_config().and_then(|k| k.service_ipv4_cidr()).map(str::to_string),
        subnet_ids: vpc.map(|v| v.subnet_ids().to_vec()).unwrap_or_default(),
        security_group_ids: vpc.map(|v| v.security_group_ids().to_vec()).unwrap_or_default(),
        vpc_id: vpc.and_then(|v| v.vpc_id()).map(str::to_string),
        version: c.version().map(str::to_string),
        tags: c.tags().map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default(),
    }))
}

/// EKS's default service CIDR when DescribeCluster does not report one (clusters created
/// without `kubernetesNetworkConfig` get 10.100.0.0/16 or 172.20.0.0/16; the node template
/// needs a value for the kubelet's cluster DNS).
pub const DEFAULT_SERVICE_CIDR: &str = "10.100.0.0/16";

/// The node stack's wiring fields of a cluster (see `render::cfn::EksField`).
pub fn wiring_fields(info: &ClusterInfo) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("endpoint", info.endpoint.clone()),
        ("certificate_authority", info.ca_data.clone()),
        ("service_cidr", info.service_cidr.clone().unwrap_or_else(|| DEFAULT_SERVICE_CIDR.to_string())),
    ])
}

/// Lifetime of the presigned URL; the token is valid 15 min for the API server, kubectl
/// refreshes through the exec plugin before that.
pub const PRESIGN_EXPIRES: Duration = Duration::from_secs(60);
/// What we tell kubectl: refresh after 14 minutes.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(14 * 60);

/// RFC 3986 unreserved characters stay; everything else is %XX (as botocore's quote).
fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The bearer token for `cluster`, signed with `creds` at `time`.
pub fn token(creds: &Credentials, region: &str, cluster: &str, time: SystemTime) -> Result<Secret, AwsError> {
    let host = format!("sts.{region}.amazonaws.com");
    let base = format!("https://{host}/?Action=GetCallerIdentity&Version=2011-06-15");
    let identity: Identity = creds.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGN_EXPIRES);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| AwsError::new("sts:presign", e.to_string()))?
        .into();
    let headers = [("host", host.as_str()), ("x-k8s-aws-id", cluster)];
    let signable = SignableRequest::new("GET", base.as_str(), headers.into_iter(), SignableBody::Bytes(&[]))
        .map_err(|e| AwsError::new("sts:presign", e.to_string()))?;
    let (instructions, _) = sign(signable, &params).map_err(|e| AwsError::new("sts:presign", e.to_string()))?.into_parts();
    let (_, query) = instructions.into_parts();
    // botocore's order (the signature covers the sorted set, so order is cosmetic; keeping it
    // makes the token byte-identical to `aws eks get-token`).
    const ORDER: &[&str] = &[
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Security-Token",
        "X-Amz-Signature",
    ];
    let mut q: Vec<(&str, String)> = query.iter().map(|(k, v)| (*k, v.to_string())).collect();
    q.sort_by_key(|(k, _)| ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()));
    let mut url = base;
    for (k, v) in q {
        url.push('&');
        url.push_str(k);
        url.push('=');
        url.push_str(&pct(&v));
    }
    Ok(Secret::new(format!("k8s-aws-v1.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url))))
}

/// A token with the credentials of the SDK configuration (environment, profile, SSO, role…).
pub async fn token_now(aws: &super::Aws, cluster: &str) -> Result<Secret, AwsError> {
    let provider = aws.sdk.credentials_provider().ok_or_else(|| AwsError::new("sts:presign", "no AWS credentials configured"))?;
    let creds = provider.provide_credentials().await.map_err(|e| AwsError::new("credentials", e.to_string()))?;
    token(&creds, &aws.region, cluster, SystemTime::now())
}

/// The `client.authentication.k8s.io/v1beta1` ExecCredential kubectl reads from `pano-eks token`.
pub fn exec_credential(token: &Secret, now: SystemTime) -> String {
    let exp = now + TOKEN_LIFETIME;
    let secs = exp.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    serde_json::json!({
        "kind": "ExecCredential",
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "spec": {},
        "status": { "expirationTimestamp": rfc3339(secs), "token": token.expose() }
    })
    .to_string()
}

/// UTC `YYYY-MM-DDTHH:MM:SSZ` from unix seconds (civil-from-days, no date crate needed).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: u64 = 1_795_687_200; // 2026-11-26T10:00:00Z

    fn decode(token: &Secret) -> String {
        let b64 = token.expose().strip_prefix("k8s-aws-v1.").expect("prefix");
        String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b64).unwrap()).unwrap()
    }

    /// Known answers produced by botocore's SigV4QueryAuth (the code behind `aws eks get-token`)
    /// with the same credentials, region, cluster and time (script in docs/testing.md).
    #[test]
    fn token_matches_botocore_known_answers() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(AT);
        let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, None, "test");
        let t = token(&creds, "us-west-2", "shop", time).unwrap();
        assert_eq!(
            decode(&t),
            "https://sts.us-west-2.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261126%2Fus-west-2%2Fsts%2Faws4_request&X-Amz-Date=20261126T100000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Signature=23e864454a008f0153b015057a76a83b195ef4b2ef802f8d5b92b2ee481e13c4"
        );
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("FQoGZXIvYXdzEXAMPLETOKEN".into()),
            None,
            "test",
        );
        let t = token(&creds, "us-west-2", "shop", time).unwrap();
        assert_eq!(
            decode(&t),
            "https://sts.us-west-2.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261126%2Fus-west-2%2Fsts%2Faws4_request&X-Amz-Date=20261126T100000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Security-Token=FQoGZXIvYXdzEXAMPLETOKEN&X-Amz-Signature=0184201923d19c83eb161b01d672ba54729bf26b60088ee47c3630dc5386ef23"
        );
        assert!(!t.expose().contains('='), "base64url without padding");
        assert_eq!(format!("{t}"), "***");
    }

    #[test]
    fn exec_credential_shape() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(AT);
        let v: serde_json::Value = serde_json::from_str(&exec_credential(&Secret::new("k8s-aws-v1.abc"), now)).unwrap();
        assert_eq!(v["kind"], "ExecCredential");
        assert_eq!(v["apiVersion"], "client.authentication.k8s.io/v1beta1");
        assert_eq!(v["status"]["token"], "k8s-aws-v1.abc");
        assert_eq!(v["status"]["expirationTimestamp"], "2026-11-26T10:14:00Z");
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(AT), "2026-11-26T10:00:00Z");
    }

    #[test]
    fn ca_pem_only_when_it_is_a_pem() {
        let mut c = ClusterInfo {
            name: "x".into(),
            status: "ACTIVE".into(),
            endpoint: String::new(),
            ca_data: String::new(),
            service_cidr: None,
            subnet_ids: vec![],
            security_group_ids: vec![],
            vpc_id: None,
            version: None,
            tags: BTreeMap::new(),
        };
        c.ca_data = base64::engine::general_purpose::STANDARD.encode("-----BEGIN CERTIFICATE-----\nx\n");
        assert!(c.ca_pem().is_some());
        c.ca_data = base64::engine::general_purpose::STANDARD.encode("garbage");
        assert!(c.ca_pem().is_none());
        assert_eq!(wiring_fields(&c)["service_cidr"], DEFAULT_SERVICE_CIDR);
    }
}

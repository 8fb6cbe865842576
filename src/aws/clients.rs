//! The SDK configuration and service clients. TLS is rustls with the ring provider only
//! (ARCHITECTURE.md): the HTTP client is built here with `CryptoMode::Ring`, so aws-lc-rs is
//! never compiled in. `AWS_ENDPOINT_URL` (and the per-service variants) are honoured by
//! aws-config; S3 then needs path-style addressing when the endpoint is an IP or localhost
//! (virtual-host style would resolve `<bucket>.localhost`).

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// Every client `up`, `down`, `token` and `sync` use, from one configuration.
#[derive(Clone, Debug)]
pub struct Aws {
    pub region: String,
    pub sdk: SdkConfig,
    pub sts: aws_sdk_sts::Client,
    pub s3: aws_sdk_s3::Client,
    pub cfn: aws_sdk_cloudformation::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub eks: aws_sdk_eks::Client,
    pub asg: aws_sdk_autoscaling::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
}

impl Aws {
    /// Loads credentials and endpoints the standard way (environment, profile, SSO, IMDS) for
    /// the deployment's region.
    pub async fn connect(region: &str) -> Aws {
        let http = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
        let sdk = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_string())).http_client(http).load().await;
        Aws::from_sdk(region, sdk)
    }

    pub fn from_sdk(region: &str, sdk: SdkConfig) -> Aws {
        let s3conf = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(needs_path_style(sdk.endpoint_url())).build();
        Aws {
            region: region.to_string(),
            sts: aws_sdk_sts::Client::new(&sdk),
            s3: aws_sdk_s3::Client::from_conf(s3conf),
            cfn: aws_sdk_cloudformation::Client::new(&sdk),
            ec2: aws_sdk_ec2::Client::new(&sdk),
            eks: aws_sdk_eks::Client::new(&sdk),
            asg: aws_sdk_autoscaling::Client::new(&sdk),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
            sdk,
        }
    }

    /// Whether an endpoint override is in effect (a local test world, a VPC endpoint).
    pub fn endpoint_override(&self) -> Option<&str> {
        self.sdk.endpoint_url()
    }
}

/// S3 must use path-style URLs when the endpoint host is an IP address or `localhost`.
pub fn needs_path_style(endpoint: Option<&str>) -> bool {
    let Some(url) = endpoint else { return false };
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        return v6.contains(']');
    } else {
        authority.rsplit_once(':').map(|(h, _)| h).unwrap_or(authority)
    };
    host == "localhost" || host.ends_with(".localhost") || host.parse::<std::net::Ipv4Addr>().is_ok()
}

/// The real-AWS form of an S3 object URL, as CloudFormation's `TemplateURL` wants it (also with
/// a local endpoint: the test world resolves these names itself).
pub fn s3_object_url(bucket: &str, region: &str, key: &str) -> String {
    if region == "us-east-1" {
        format!("https://{bucket}.s3.amazonaws.com/{key}")
    } else {
        format!("https://{bucket}.s3.{region}.amazonaws.com/{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_style_only_for_ip_and_localhost_endpoints() {
        for (endpoint, want) in [
            (None, false),
            (Some("https://s3.us-west-2.amazonaws.com"), false),
            (Some("http://127.0.0.1:5055"), true),
            (Some("http://localhost:5055"), true),
            (Some("http://localhost"), true),
            (Some("http://minio.localhost:9000/"), true),
            (Some("http://[::1]:5055"), true),
            (Some("https://vpce-1.s3.us-west-2.vpce.amazonaws.com"), false),
            (Some("http://10.0.0.5:9000/path"), true),
        ] {
            assert_eq!(needs_path_style(endpoint), want, "{endpoint:?}");
        }
    }

    #[test]
    fn template_urls_are_real_aws_style() {
        assert_eq!(s3_object_url("b", "us-east-1", "t/x.yaml"), "https://b.s3.amazonaws.com/t/x.yaml");
        assert_eq!(s3_object_url("b", "eu-west-1", "k"), "https://b.s3.eu-west-1.amazonaws.com/k");
    }
}

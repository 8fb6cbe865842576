//! Pre-flight: every check `up` makes before it creates anything, all reported at once.
//! `gather` observes (STS, EC2, S3; Panorama is asked by the caller through the sync engine);
//! `pano_eks_core::aws::preflight` decides, purely, from the observations (`check` hands it the
//! deployment read from the config).

use aws_sdk_ec2::types::Filter;
use ipnet::Ipv4Net;

use super::bucket;
use super::{Aws, DEPLOYMENT_TAG, sdk_err};
use crate::config::Config;

use pano_eks_core::aws::preflight::{self as decide, Deployment};
pub use pano_eks_core::aws::preflight::{
    Ami, BucketState, EXTENDED_SUPPORT_EXTRA_PER_HOUR_USD, EksVersion, ExistingCluster, Launch, Limits, MARKETPLACE_URL,
    MAX_CLUSTERS_PER_VPC, MIN_PANORAMA, NaclEntry, Observed, PAN_PRODUCT_CODES, Report, Vpc, VpcSettings, VpcSubnet, allows_all,
    parse_version,
};

/// What `up` would make, as pre-flight reads it from the config.
pub fn deployment(cfg: &Config) -> Deployment {
    let n = &cfg.network;
    Deployment {
        name: cfg.name.clone(),
        region: cfg.region.clone(),
        azs: n.azs.clone(),
        outbound_via_firewall: n.outbound_via_firewall,
        vpcs_quota: n.vpcs_quota,
        nat_gateways_per_az_quota: n.nat_gateways_per_az_quota,
        existing_vpc_id: n.existing_vpc_id.clone(),
        existing_igw_id: n.existing_igw_id.clone(),
        vpc_cidr: n.vpc_cidr,
        new_subnets: new_subnets(cfg),
        firewall: decide::Firewall {
            ami: cfg.firewalls.ami.clone(),
            key_name: cfg.firewalls.key_name.clone(),
            instance_type: cfg.firewalls.instance_type.clone(),
        },
        clusters: cfg
            .clusters
            .iter()
            .map(|c| decide::Cluster {
                name: c.name.clone(),
                stack: cfg.cluster_stack(&c.name),
                kubernetes_version: c.kubernetes_version.clone(),
                standard_support_only: c.support_type == crate::config::SupportType::Standard,
                azs: cfg.cluster_azs(c),
                node_instance_type: c.nodes.instance_type.clone(),
            })
            .collect(),
    }
}

/// The subnets `up` creates: firewall roles and every cluster's.
fn new_subnets(cfg: &Config) -> Vec<(String, Ipv4Net)> {
    let n = &cfg.network;
    let mut out = Vec::new();
    for (role, list) in
        [("mgmt", &n.mgmt_subnets), ("untrust", &n.untrust_subnets), ("trust", &n.trust_subnets), ("natgw", &n.natgw_subnets)]
    {
        out.extend(list.iter().map(|s| (format!("network.{role}_subnets {s}"), *s)));
    }
    for c in &cfg.clusters {
        out.extend(c.subnets.iter().map(|s| (format!("cluster {} subnet {s}", c.name), *s)));
    }
    out
}

/// Every problem and warning of the configured deployment against what pre-flight observed
/// (decided in `pano_eks_core::aws::preflight`).
/// The firewalls' room for the configured clusters (`firewalls.capacity`, else the instance
/// type's memory tier; core `capacity::room_warning` decides), or why it is unknown.
pub fn capacity_warning(cfg: &Config) -> Option<String> {
    use pano_eks_core::capacity::{Capacity, Tier, instance_memory_mb, room_warning};
    let capacity = match cfg.firewalls.capacity.as_ref().and_then(|c| c.capacity()) {
        Some(c) => c,
        None => match instance_memory_mb(&cfg.firewalls.instance_type).and_then(Tier::from_memory_mb) {
            Some(t) => Capacity { source: format!("{}, memory tier {}", cfg.firewalls.instance_type, t.number()), ..Capacity::of_tier(t) },
            None => {
                return Some(format!(
                    "firewalls.instance_type {}: its memory tier is not known here, so the Services it can hold are not \
                     checked (set firewalls.capacity)",
                    cfg.firewalls.instance_type
                ));
            }
        },
    };
    let subnets = cfg.clusters.iter().map(|c| c.subnets.len()).sum();
    room_warning(&capacity, cfg.clusters.len(), subnets, false)
}

pub fn check(cfg: &Config, o: &Observed, existing_vpc: bool) -> Report {
    let mut r = decide::check(&deployment(cfg), o, existing_vpc);
    r.warnings.extend(capacity_warning(cfg));
    r
}

/// (instance type, AZ, what uses it) that `up` launches.
pub fn wanted_offerings(cfg: &Config) -> Vec<(String, String, String)> {
    decide::wanted_offerings(&deployment(cfg))
}

/// Observes everything `check` needs except Panorama (left `Err("not checked")`).
pub async fn gather(aws: &Aws, cfg: &Config, existing_vpc: bool) -> Observed {
    let s = |e: super::AwsError| e.message;
    let account = aws
        .sts
        .get_caller_identity()
        .send()
        .await
        .map(|r| r.account().unwrap_or_default().to_string())
        .map_err(|e| s(sdk_err("sts:GetCallerIdentity", e)));
    let azs = aws
        .ec2
        .describe_availability_zones()
        .filters(Filter::builder().name("state").values("available").build())
        .send()
        .await
        .map(|r| r.availability_zones().iter().filter_map(|z| z.zone_name().map(str::to_string)).collect())
        .map_err(|e| s(sdk_err("ec2:DescribeAvailabilityZones", e)));
    let key_pair = match aws.ec2.describe_key_pairs().key_names(&cfg.firewalls.key_name).send().await {
        Ok(r) => Ok(!r.key_pairs().is_empty()),
        Err(e) => {
            let e = sdk_err("ec2:DescribeKeyPairs", e);
            if e.is_code("InvalidKeyPair.NotFound") { Ok(false) } else { Err(e.message) }
        }
    };
    let ami = match aws.ec2.describe_images().image_ids(&cfg.firewalls.ami).send().await {
        Ok(r) => Ok(r
            .images()
            .first()
            .map(|i| Ami { product_codes: i.product_codes().iter().filter_map(|p| p.product_code_id().map(str::to_string)).collect() })),
        Err(e) => {
            let e = sdk_err("ec2:DescribeImages", e);
            if e.is_code("InvalidAMIID.NotFound") || e.is_code("InvalidAMIID.Malformed") { Ok(None) } else { Err(e.message) }
        }
    };
    let mut buckets = Vec::new();
    for b in [cfg.bootstrap_bucket(), cfg.lambda_bucket()] {
        let st = bucket::probe(&aws.s3, &b, &cfg.name).await.map_err(s);
        buckets.push((b, st));
    }
    let (mut vpc, mut igw_attached, mut other_clusters_in_vpc) = (None, None, 0);
    if existing_vpc {
        let vpc_id = cfg.network.existing_vpc_id.clone().unwrap_or_default();
        let igw_id = cfg.network.existing_igw_id.clone().unwrap_or_default();
        vpc = Some(observe_vpc(aws, &vpc_id, &cfg.name).await);
        igw_attached = Some(match aws.ec2.describe_internet_gateways().internet_gateway_ids(&igw_id).send().await {
            Ok(r) => Ok(r.internet_gateways().iter().flat_map(|g| g.attachments()).any(|a| a.vpc_id() == Some(vpc_id.as_str()))),
            Err(e) => {
                let e = sdk_err("ec2:DescribeInternetGateways", e);
                if e.is_code("InvalidInternetGatewayID.NotFound") { Ok(false) } else { Err(e.message) }
            }
        });
        other_clusters_in_vpc = count_other_clusters(aws, cfg, &vpc_id).await;
    }
    let eks_versions = eks_versions(aws).await;
    let limits = limits(aws, &cfg.name).await;
    let offerings = offerings(aws, cfg).await;
    let vpc_settings = match (&vpc, existing_vpc) {
        (Some(Ok(Some(_))), true) => Some(vpc_settings(aws, &cfg.network.existing_vpc_id.clone().unwrap_or_default()).await),
        _ => None,
    };
    let launch = match &ami {
        Ok(Some(a)) if !a.product_codes.is_empty() => {
            // Brownfield: into one of the VPC's subnets (a launch needs a subnet where there is no default VPC).
            let subnet = match &vpc {
                Some(Ok(Some(v))) => v.subnets.first().map(|s| s.id.clone()),
                _ => None,
            };
            Some(dry_run_launch(aws, cfg, subnet).await)
        }
        _ => None,
    };
    let mut same_named_clusters = Vec::new();
    for c in &cfg.clusters {
        same_named_clusters.push((c.name.clone(), existing_cluster(aws, cfg, &c.name).await));
    }
    Observed {
        account,
        azs,
        key_pair,
        ami,
        buckets,
        panorama: Err("not checked".into()),
        vpc,
        igw_attached,
        other_clusters_in_vpc,
        eks_versions,
        same_named_clusters,
        limits,
        launch,
        offerings,
        vpc_settings,
    }
}

async fn offerings(aws: &Aws, cfg: &Config) -> Result<Vec<(String, String)>, String> {
    let wanted = wanted_offerings(cfg);
    let mut types: Vec<String> = wanted.iter().map(|(t, _, _)| t.clone()).collect();
    types.sort();
    types.dedup();
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let r = aws
            .ec2
            .describe_instance_type_offerings()
            .location_type(aws_sdk_ec2::types::LocationType::AvailabilityZone)
            .filters(Filter::builder().name("instance-type").set_values(Some(types.clone())).build())
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| sdk_err("ec2:DescribeInstanceTypeOfferings", e).message)?;
        out.extend(
            r.instance_type_offerings().iter().filter_map(|o| Some((o.instance_type()?.as_str().to_string(), o.location()?.to_string()))),
        );
        match r.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(out),
        }
    }
}

async fn vpc_settings(aws: &Aws, vpc_id: &str) -> Result<VpcSettings, String> {
    use aws_sdk_ec2::types::VpcAttributeName;
    let attr = |name: VpcAttributeName| async move {
        let r = aws
            .ec2
            .describe_vpc_attribute()
            .vpc_id(vpc_id)
            .attribute(name.clone())
            .send()
            .await
            .map_err(|e| sdk_err("ec2:DescribeVpcAttribute", e).message)?;
        let v = match name {
            VpcAttributeName::EnableDnsSupport => r.enable_dns_support().and_then(|a| a.value()),
            _ => r.enable_dns_hostnames().and_then(|a| a.value()),
        };
        Ok::<bool, String>(v.unwrap_or(false))
    };
    let dns_support = attr(VpcAttributeName::EnableDnsSupport).await?;
    let dns_hostnames = attr(VpcAttributeName::EnableDnsHostnames).await?;
    let r = aws
        .ec2
        .describe_network_acls()
        .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
        .filters(Filter::builder().name("default").values("true").build())
        .send()
        .await
        .map_err(|e| sdk_err("ec2:DescribeNetworkAcls", e).message)?;
    let default_nacl = r.network_acls().first().map(|a| {
        (
            a.network_acl_id().unwrap_or_default().to_string(),
            a.entries()
                .iter()
                .map(|e| NaclEntry {
                    rule_number: e.rule_number().unwrap_or_default(),
                    egress: e.egress().unwrap_or_default(),
                    protocol: e.protocol().unwrap_or_default().to_string(),
                    allow: e.rule_action().map(|a| a.as_str() == "allow").unwrap_or(false),
                    cidr: e.cidr_block().unwrap_or_default().to_string(),
                })
                .collect(),
        )
    });
    Ok(VpcSettings { dns_support, dns_hostnames, default_nacl })
}

fn tagged(tags: &[aws_sdk_ec2::types::Tag], deployment: &str) -> bool {
    tags.iter().any(|t| t.key() == Some(DEPLOYMENT_TAG) && t.value() == Some(deployment))
}

/// The Elastic IP quota and the EIPs, VPCs and live NAT gateways of the region.
async fn limits(aws: &Aws, deployment: &str) -> Limits {
    let ec2 = &aws.ec2;
    let eip_quota = match ec2.describe_account_attributes().send().await {
        Ok(r) => r
            .account_attributes()
            .iter()
            .find(|a| a.attribute_name() == Some("vpc-max-elastic-ips"))
            .and_then(|a| a.attribute_values().first())
            .and_then(|v| v.attribute_value())
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(|| "the account attribute vpc-max-elastic-ips is missing".to_string()),
        Err(e) => Err(sdk_err("ec2:DescribeAccountAttributes", e).message),
    };
    let eips = ec2
        .describe_addresses()
        .send()
        .await
        .map(|r| r.addresses().iter().map(|a| tagged(a.tags(), deployment)).collect())
        .map_err(|e| sdk_err("ec2:DescribeAddresses", e).message);
    let vpcs = async {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let r = ec2.describe_vpcs().set_next_token(token.take()).send().await.map_err(|e| sdk_err("ec2:DescribeVpcs", e).message)?;
            out.extend(r.vpcs().iter().map(|v| tagged(v.tags(), deployment)));
            match r.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }
    .await;
    let nat_gateways = async {
        let mut nats = Vec::new();
        let mut token = None;
        loop {
            let r = ec2
                .describe_nat_gateways()
                .filter(Filter::builder().name("state").values("pending").values("available").build())
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_err("ec2:DescribeNatGateways", e).message)?;
            nats.extend(r.nat_gateways().iter().map(|n| (n.subnet_id().unwrap_or_default().to_string(), tagged(n.tags(), deployment))));
            match r.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        let ids: Vec<String> = nats.iter().map(|(s, _)| s.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        let subnets = super::discovery::describe_subnets(aws, &ids).await.map_err(|e| e.message)?;
        Ok(nats.into_iter().map(|(s, ours)| (subnets.get(&s).map(|x| x.az.clone()).unwrap_or_default(), ours)).collect())
    }
    .await;
    Limits { eip_quota, eips, vpcs, nat_gateways }
}

/// `RunInstances` with `DryRun`: `DryRunOperation` means the launch would succeed;
/// `OptInRequired` that the account has not subscribed to the AMI's Marketplace product.
async fn dry_run_launch(aws: &Aws, cfg: &Config, subnet: Option<String>) -> Launch {
    let r = aws
        .ec2
        .run_instances()
        .dry_run(true)
        .set_subnet_id(subnet)
        .image_id(&cfg.firewalls.ami)
        .instance_type(aws_sdk_ec2::types::InstanceType::from(cfg.firewalls.instance_type.as_str()))
        .min_count(1)
        .max_count(1)
        .send()
        .await;
    match r {
        Ok(_) => Launch::Allowed, // never happens with DryRun; AWS answers DryRunOperation
        Err(e) => {
            let e = sdk_err("ec2:RunInstances (dry run)", e);
            if e.is_code("DryRunOperation") {
                Launch::Allowed
            } else if e.is_code("OptInRequired") {
                Launch::NotSubscribed(e.message)
            } else {
                Launch::Unknown(e.message)
            }
        }
    }
}

/// The EKS cluster called `name`, if any, and whether this deployment's cluster stack owns it.
async fn existing_cluster(aws: &Aws, cfg: &Config, name: &str) -> Result<Option<ExistingCluster>, String> {
    let Some(info) = super::eks::describe_cluster(&aws.eks, name).await.map_err(|e| e.message)? else { return Ok(None) };
    let cfn = super::stacks::AwsCfn { client: &aws.cfn };
    let resources = super::stacks::CfnApi::resources(&cfn, &cfg.cluster_stack(name)).await.unwrap_or_default();
    let in_our_stack = resources.iter().any(|r| r.resource_type == "AWS::EKS::Cluster" && r.physical_id.as_deref() == Some(name));
    Ok(Some(ExistingCluster { deployment_tag: info.tags.get(DEPLOYMENT_TAG).cloned(), in_our_stack }))
}

/// Every Kubernetes version EKS knows of (`includeAll`: unsupported ones too, for their dates).
async fn eks_versions(aws: &Aws) -> Result<Vec<EksVersion>, String> {
    let day = |d: Option<&aws_smithy_types::DateTime>| {
        d.and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok()).map(|t| t.chars().take(10).collect::<String>())
    };
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let r = aws
            .eks
            .describe_cluster_versions()
            .include_all(true)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| sdk_err("eks:DescribeClusterVersions", e).message)?;
        for v in r.cluster_versions() {
            let Some(version) = v.cluster_version() else { continue };
            out.push(EksVersion {
                version: version.to_string(),
                status: v.version_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                end_of_standard: day(v.end_of_standard_support_date()),
                end_of_extended: day(v.end_of_extended_support_date()),
            });
        }
        match r.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(out),
        }
    }
}

async fn observe_vpc(aws: &Aws, vpc_id: &str, deployment: &str) -> Result<Option<Vpc>, String> {
    let r = match aws.ec2.describe_vpcs().vpc_ids(vpc_id).send().await {
        Ok(r) => r,
        Err(e) => {
            let e = sdk_err("ec2:DescribeVpcs", e);
            return if e.is_code("InvalidVpcID.NotFound") { Ok(None) } else { Err(e.message) };
        }
    };
    let Some(v) = r.vpcs().first() else { return Ok(None) };
    let mut cidrs: Vec<String> = v.cidr_block_association_set().iter().filter_map(|a| a.cidr_block().map(str::to_string)).collect();
    if let Some(c) = v.cidr_block() {
        if !cidrs.iter().any(|x| x == c) {
            cidrs.insert(0, c.to_string());
        }
    }
    let subnets = aws
        .ec2
        .describe_subnets()
        .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
        .send()
        .await
        .map_err(|e| sdk_err("ec2:DescribeSubnets", e).message)?;
    Ok(Some(Vpc {
        cidrs,
        subnets: subnets
            .subnets()
            .iter()
            .map(|s| VpcSubnet {
                id: s.subnet_id().unwrap_or_default().to_string(),
                cidr: s.cidr_block().unwrap_or_default().to_string(),
                ours: s.tags().iter().any(|t| t.key() == Some(DEPLOYMENT_TAG) && t.value() == Some(deployment)),
            })
            .collect(),
    }))
}

/// EKS clusters (not in this config) whose subnets are in the VPC. Best effort: a failure
/// counts none (the limit is advisory in AWS terms; the plugin's limit is what we check).
async fn count_other_clusters(aws: &Aws, cfg: &Config, vpc_id: &str) -> usize {
    let Ok(list) = aws.eks.list_clusters().send().await else { return 0 };
    let mut n = 0;
    for name in list.clusters() {
        if cfg.clusters.iter().any(|c| &c.name == name) {
            continue;
        }
        if let Ok(Some(info)) = super::eks::describe_cluster(&aws.eks, name).await {
            let in_vpc = match &info.vpc_id {
                Some(v) => v == vpc_id,
                None => {
                    let r = aws.ec2.describe_subnets().set_subnet_ids(Some(info.subnet_ids.clone())).send().await;
                    r.map(|r| r.subnets().iter().any(|s| s.vpc_id() == Some(vpc_id))).unwrap_or(false)
                }
            };
            n += usize::from(in_vpc);
        }
    }
    n
}

#[cfg(test)]
#[path = "preflight_tests.rs"]
mod tests;

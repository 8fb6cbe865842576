//! Pre-flight: every check `up` makes before it creates anything, all reported at once.
//! `gather` observes (STS, EC2, S3; Panorama is asked by the caller through the sync engine),
//! `check` decides, purely, from the observations.

use aws_sdk_ec2::types::Filter;
use ipnet::Ipv4Net;

use super::bucket::{self, BucketState};
use super::{Aws, DEPLOYMENT_TAG, sdk_err};
use crate::config::Config;

/// AWS Marketplace product codes of the VM-Series AMIs (BYOL, PAYG bundle 1, bundle 2), as
/// listed in Palo Alto Networks' deployment guides. Another code is only a warning: PAN adds
/// new listings, and private AMIs copied from these keep no code.
pub const PAN_PRODUCT_CODES: &[&str] = &["6njl1pau431dv1qxipg63mvah", "e9yfvyj3uag5uo5j2hjikv74n", "hd44w1chf26uv4p52cdynb2o"];

/// The Panorama plugin for EKS needs Panorama 9.0.3 or later (guide, requirements).
pub const MIN_PANORAMA: (u32, u32, u32) = (9, 0, 3);

/// The guide's limit of clusters per VPC.
pub const MAX_CLUSTERS_PER_VPC: usize = 16;

/// One row of `eks:DescribeClusterVersions`: a Kubernetes minor version, its EKS support status
/// (`STANDARD_SUPPORT`, `EXTENDED_SUPPORT`, `UNSUPPORTED`) and its support dates (`YYYY-MM-DD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EksVersion {
    pub version: String,
    pub status: String,
    pub end_of_standard: Option<String>,
    pub end_of_extended: Option<String>,
}

/// EKS pricing (aws.amazon.com/eks/pricing): a cluster costs $0.10 an hour in standard support
/// and $0.60 an hour in extended support.
pub const EXTENDED_SUPPORT_EXTRA_PER_HOUR_USD: f64 = 0.50;

/// An EKS cluster that already exists under a configured cluster's name: whose is it?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingCluster {
    /// Its `pano-eks:deployment` tag, if any.
    pub deployment_tag: Option<String>,
    /// This deployment's cluster stack lists it as its `AWS::EKS::Cluster`.
    pub in_our_stack: bool,
}

/// Account limits `up` spends against (each resource: is it this deployment's, by its tag?).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// EC2 account attribute `vpc-max-elastic-ips` (the applied Elastic IP quota).
    pub eip_quota: Result<u32, String>,
    /// Per Elastic IP of the region: tagged with this deployment.
    pub eips: Result<Vec<bool>, String>,
    /// Per VPC of the region: tagged with this deployment.
    pub vpcs: Result<Vec<bool>, String>,
    /// Per live (pending/available) NAT gateway: its AZ, tagged with this deployment.
    pub nat_gateways: Result<Vec<(String, bool)>, String>,
}

/// One entry of a network ACL, as far as pre-flight reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NaclEntry {
    pub rule_number: i32,
    pub egress: bool,
    /// `-1` = all protocols.
    pub protocol: String,
    pub allow: bool,
    pub cidr: String,
}

/// Brownfield: what the subnets `up` adds to the VPC inherit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcSettings {
    pub dns_support: bool,
    pub dns_hostnames: bool,
    /// The VPC's default network ACL: (id, entries); `None` when it has none.
    pub default_nacl: Option<(String, Vec<NaclEntry>)>,
}

/// What a dry-run launch of the firewall AMI said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// `DryRunOperation`: the launch would succeed.
    Allowed,
    /// `OptInRequired`: the account has not subscribed to the AMI's Marketplace product.
    NotSubscribed(String),
    /// Anything else: the dry run could not tell (no default VPC, no permission, …).
    Unknown(String),
}

/// The AWS Marketplace page of the VM-Series products (subscribe there, then re-run).
pub const MARKETPLACE_URL: &str = "https://aws.amazon.com/marketplace/search/results?searchTerms=VM-Series";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ami {
    pub product_codes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcSubnet {
    pub id: String,
    pub cidr: String,
    /// Tagged with this deployment: made by an earlier `up` (a re-run finds its own subnets).
    pub ours: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vpc {
    pub cidrs: Vec<String>,
    pub subnets: Vec<VpcSubnet>,
}

/// What pre-flight saw. Each `Err` is the reason an observation failed.
#[derive(Debug, Clone)]
pub struct Observed {
    pub account: Result<String, String>,
    pub azs: Result<Vec<String>, String>,
    pub key_pair: Result<bool, String>,
    pub ami: Result<Option<Ami>, String>,
    pub buckets: Vec<(String, Result<BucketState, String>)>,
    /// Panorama's sw-version, or why it could not be read.
    pub panorama: Result<String, String>,
    /// Brownfield: the VPC (None = not found) and whether the IGW is attached to it.
    pub vpc: Option<Result<Option<Vpc>, String>>,
    pub igw_attached: Option<Result<bool, String>>,
    /// EKS clusters already using the VPC that are not in this config.
    pub other_clusters_in_vpc: usize,
    /// The Kubernetes versions EKS offers (`eks:DescribeClusterVersions`, all statuses).
    pub eks_versions: Result<Vec<EksVersion>, String>,
    /// Per configured cluster name: the EKS cluster of that name, if one exists.
    pub same_named_clusters: Vec<(String, Result<Option<ExistingCluster>, String>)>,
    pub limits: Limits,
    /// A dry-run launch of the AMI (only for an AMI with a Marketplace product code).
    pub launch: Option<Launch>,
    /// (instance type, AZ) pairs EC2 offers, for the firewall and node types in the AZs used.
    pub offerings: Result<Vec<(String, String)>, String>,
    /// Brownfield: the VPC's DNS attributes and default network ACL.
    pub vpc_settings: Option<Result<VpcSettings, String>>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

/// `"10.1.3-h1"` → (10, 1, 3).
pub fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let core = v.trim().split(['-', ' ']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next().flatten().unwrap_or(0), it.next().flatten().unwrap_or(0)))
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

/// The configured Kubernetes versions against what EKS says of them: unsupported (or unknown) is
/// a problem, extended support a warning with its cost (a problem with `support_type = "STANDARD"`,
/// which EKS allows only on a version in standard support). An unreadable answer is a warning.
pub fn check_versions(cfg: &Config, versions: &Result<Vec<EksVersion>, String>, r: &mut Report) {
    let versions = match versions {
        Ok(v) => v,
        Err(e) => {
            r.warnings.push(format!("could not check the Kubernetes versions with eks:DescribeClusterVersions: {e}"));
            return;
        }
    };
    let date = |d: &Option<String>| d.clone().unwrap_or_else(|| "unknown".into());
    // The fix: the newest version in standard support.
    let newest = versions.iter().filter(|v| v.status == "STANDARD_SUPPORT").max_by_key(|v| parse_version(&v.version));
    let fix = match newest {
        Some(n) => format!("set kubernetes_version = \"{}\" (standard support until {})", n.version, date(&n.end_of_standard)),
        None => "set kubernetes_version to a version EKS lists in standard support (aws eks describe-cluster-versions)".to_string(),
    };
    for (i, c) in cfg.clusters.iter().enumerate() {
        let key = format!("clusters.{i}.kubernetes_version = \"{}\" (cluster {})", c.kubernetes_version, c.name);
        match versions.iter().find(|v| v.version == c.kubernetes_version) {
            None => r.problems.push(format!("{key}: EKS does not offer this version in {}; {fix}", cfg.region)),
            Some(v) if v.status == "STANDARD_SUPPORT" => {}
            Some(v) if v.status == "EXTENDED_SUPPORT" => {
                let extra = EXTENDED_SUPPORT_EXTRA_PER_HOUR_USD * 24.0 * 365.0;
                let msg = format!(
                    "{key} is in EKS extended support (standard support ended {}, extended support ends {}): extended support costs \
                     ${EXTENDED_SUPPORT_EXTRA_PER_HOUR_USD:.2} more per cluster hour (about ${extra:.0} a year); {fix}",
                    date(&v.end_of_standard),
                    date(&v.end_of_extended)
                );
                if c.support_type == crate::config::SupportType::Standard {
                    r.problems.push(format!(
                        "{msg}; with clusters.{i}.support_type = \"STANDARD\" EKS cannot create it: upgrade, or set support_type = \"EXTENDED\""
                    ));
                } else {
                    r.warnings.push(msg);
                }
            }
            Some(v) => r.problems.push(format!(
                "{key}: EKS no longer supports this version (standard support ended {}, extended support ended {}) and creates \
                 clusters only on supported versions; {fix}",
                date(&v.end_of_standard),
                date(&v.end_of_extended)
            )),
        }
    }
}

/// EKS cluster names are unique per account and region, and the cluster stack names the cluster
/// by its bare config name: an existing cluster of that name is refused unless this deployment
/// made it (its `pano-eks:deployment` tag, or this deployment's cluster stack owns it).
pub fn check_same_named_clusters(cfg: &Config, seen: &[(String, Result<Option<ExistingCluster>, String>)], r: &mut Report) {
    for (name, state) in seen {
        let i = cfg.clusters.iter().position(|c| &c.name == name).unwrap_or_default();
        match state {
            Ok(None) => {}
            Ok(Some(c)) if c.in_our_stack || c.deployment_tag.as_deref() == Some(cfg.name.as_str()) => {}
            Ok(Some(c)) => r.problems.push(format!(
                "clusters.{i}.name = \"{name}\": an EKS cluster of that name already exists in {} and this deployment did not make it \
                 ({}; stack {} does not own it); EKS cluster names are unique per account and region: choose another \
                 clusters.{i}.name, or delete that cluster",
                cfg.region,
                match &c.deployment_tag {
                    Some(d) => format!("it belongs to pano-eks deployment `{d}`"),
                    None => format!("it has no {DEPLOYMENT_TAG} tag"),
                },
                cfg.cluster_stack(name)
            )),
            Err(e) => {
                r.problems.push(format!("clusters.{i}.name = \"{name}\": cannot tell whether an EKS cluster of that name exists: {e}"))
            }
        }
    }
}

/// Elastic IPs, VPCs and NAT gateways `up` still has to create against what the account may
/// have. The design spends one EIP per NAT gateway (one NAT gateway per AZ), one more for
/// cluster egress with `network.outbound_via_firewall`, and one VPC (greenfield). Resources
/// tagged with this deployment are already ours (a re-run creates nothing new).
pub fn check_limits(cfg: &Config, l: &Limits, existing_vpc: bool, r: &mut Report) {
    let azs = &cfg.network.azs;
    let region = &cfg.region;
    let unreadable = |what: &str, e: &str| format!("{what} in {region}: {e}");
    match (&l.eip_quota, &l.eips) {
        (Ok(quota), Ok(eips)) => {
            let ours = eips.iter().filter(|o| **o).count();
            let others = eips.len() - ours;
            let egress = usize::from(cfg.network.outbound_via_firewall);
            let need = (azs.len() + egress).saturating_sub(ours);
            if others + ours + need > *quota as usize {
                r.problems.push(format!(
                    "Elastic IPs: this deployment needs {} ({} for the NAT gateways of {}{}), {need} of them new, but {} of the \
                     account's {quota} in {region} are in use (EC2 account attribute vpc-max-elastic-ips): release {} unused \
                     Elastic IP(s), or ask AWS for a higher quota (Service Quotas: Amazon EC2, \"EC2-VPC Elastic IPs\", L-0263D0A3)",
                    azs.len() + egress,
                    azs.len(),
                    azs.join(", "),
                    if egress == 1 { " + 1 for cluster egress through a firewall (network.outbound_via_firewall)" } else { "" },
                    others + ours,
                    others + ours + need - *quota as usize
                ));
            }
        }
        (Err(e), _) | (_, Err(e)) => r.problems.push(unreadable("Elastic IP quota and use", e)),
    }
    match &l.vpcs {
        Ok(vpcs) if !existing_vpc => {
            let ours = vpcs.iter().filter(|o| **o).count();
            let need = 1usize.saturating_sub(ours);
            let quota = cfg.network.vpcs_quota as usize;
            if vpcs.len() + need > quota {
                r.problems.push(format!(
                    "VPCs: {} exist in {region} and the quota is {quota} (network.vpcs_quota; AWS's default is 5): delete an \
                     unused VPC, deploy into an existing one (`up --existing-vpc`), or raise the quota (Service Quotas: Amazon \
                     VPC, \"VPCs per Region\", L-F678F1CE) and set network.vpcs_quota to it",
                    vpcs.len()
                ));
            }
        }
        Ok(_) => {}
        Err(e) => r.problems.push(unreadable("VPCs", e)),
    }
    match &l.nat_gateways {
        Ok(nats) => {
            let quota = cfg.network.nat_gateways_per_az_quota as usize;
            for az in azs {
                let here: Vec<bool> = nats.iter().filter(|(a, _)| a == az).map(|(_, o)| *o).collect();
                let need = 1usize.saturating_sub(here.iter().filter(|o| **o).count());
                if here.len() + need > quota {
                    r.problems.push(format!(
                        "NAT gateways: {} exist in {az} and the quota is {quota} per AZ (network.nat_gateways_per_az_quota; AWS's \
                         default is 5); this deployment needs one more there: delete an unused NAT gateway, or raise the quota \
                         (Service Quotas: Amazon VPC, \"NAT gateways per Availability Zone\", L-FE5A380F) and set \
                         network.nat_gateways_per_az_quota to it",
                        here.len()
                    ));
                }
            }
        }
        Err(e) => r.problems.push(unreadable("NAT gateways", e)),
    }
}

/// The Marketplace subscription of the firewall AMI, from a dry-run launch.
pub fn check_launch(cfg: &Config, launch: &Option<Launch>, r: &mut Report) {
    match launch {
        None | Some(Launch::Allowed) => {}
        Some(Launch::NotSubscribed(why)) => r.problems.push(format!(
            "AMI {}: this account is not subscribed to its AWS Marketplace product, so every firewall launch would fail \
             ({why}): subscribe to the VM-Series listing of this AMI ({MARKETPLACE_URL}; accept the terms, wait for the \
             subscription to be active), then re-run",
            cfg.firewalls.ami
        )),
        Some(Launch::Unknown(why)) => {
            r.warnings.push(format!("AMI {}: a dry-run launch could not confirm its Marketplace subscription ({why})", cfg.firewalls.ami))
        }
    }
}

/// (instance type, AZ, what uses it) that `up` launches: the firewalls in `network.azs`, each
/// cluster's nodes in its AZs.
pub fn wanted_offerings(cfg: &Config) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> =
        cfg.network.azs.iter().map(|az| (cfg.firewalls.instance_type.clone(), az.clone(), "firewalls.instance_type".to_string())).collect();
    for (i, c) in cfg.clusters.iter().enumerate() {
        for az in cfg.cluster_azs(c) {
            out.push((c.nodes.instance_type.clone(), az, format!("clusters.{i}.nodes.instance_type (cluster {})", c.name)));
        }
    }
    out.sort();
    out.dedup();
    out
}

pub fn check_offerings(cfg: &Config, offered: &Result<Vec<(String, String)>, String>, r: &mut Report) {
    let offered = match offered {
        Ok(o) => o,
        Err(e) => return r.problems.push(format!("instance types offered in {}: {e}", cfg.region)),
    };
    for (ty, az, what) in wanted_offerings(cfg) {
        if !offered.iter().any(|(t, a)| *t == ty && *a == az) {
            r.problems.push(format!(
                "{what} = \"{ty}\" is not offered in {az} (ec2:DescribeInstanceTypeOfferings): choose a type offered in every AZ used, or other AZs"
            ));
        }
    }
}

/// Does this ACL let all traffic through in one direction? The lowest-numbered entry matching
/// all protocols from/to 0.0.0.0/0 decides (AWS evaluates entries in rule-number order).
pub fn allows_all(entries: &[NaclEntry], egress: bool) -> bool {
    let mut e: Vec<&NaclEntry> = entries.iter().filter(|x| x.egress == egress && x.protocol == "-1" && x.cidr == "0.0.0.0/0").collect();
    e.sort_by_key(|x| x.rule_number);
    e.first().is_some_and(|x| x.allow)
}

/// Brownfield: EKS needs DNS resolution and DNS hostnames in the VPC; the new subnets inherit
/// the VPC's default network ACL, which must not drop the firewalls' and clusters' traffic.
pub fn check_vpc_settings(cfg: &Config, s: &Option<Result<VpcSettings, String>>, r: &mut Report) {
    let vpc_id = cfg.network.existing_vpc_id.clone().unwrap_or_default();
    match s {
        None => {}
        Some(Err(e)) => r.problems.push(format!("VPC {vpc_id} attributes: {e}")),
        Some(Ok(v)) => {
            for (on, attr) in [(v.dns_support, "enableDnsSupport"), (v.dns_hostnames, "enableDnsHostnames")] {
                if !on {
                    r.problems.push(format!(
                        "VPC {vpc_id} has {attr} off: EKS needs DNS resolution and DNS hostnames in the VPC (nodes, the private \
                         endpoint): `aws ec2 modify-vpc-attribute --vpc-id {vpc_id} --{} \"{{\\\"Value\\\":true}}\"`",
                        if attr == "enableDnsSupport" { "enable-dns-support" } else { "enable-dns-hostnames" }
                    ));
                }
            }
            if let Some((acl, entries)) = &v.default_nacl {
                let dirs: Vec<&str> = [(false, "inbound"), (true, "outbound")]
                    .into_iter()
                    .filter(|(eg, _)| !allows_all(entries, *eg))
                    .map(|(_, d)| d)
                    .collect();
                if !dirs.is_empty() {
                    r.warnings.push(format!(
                        "VPC {vpc_id}'s default network ACL {acl} does not allow all {} traffic, and the subnets `up` creates \
                         inherit it: make sure it admits the load balancer, firewall, EKS and NAT traffic, or associate those \
                         subnets with a suitable ACL after `up`",
                        dirs.join(" and ")
                    ));
                }
            }
        }
    }
}

pub fn check(cfg: &Config, o: &Observed, existing_vpc: bool) -> Report {
    let mut r = Report::default();
    check_offerings(cfg, &o.offerings, &mut r);
    if existing_vpc {
        check_vpc_settings(cfg, &o.vpc_settings, &mut r);
    }
    check_versions(cfg, &o.eks_versions, &mut r);
    check_same_named_clusters(cfg, &o.same_named_clusters, &mut r);
    check_limits(cfg, &o.limits, existing_vpc, &mut r);
    check_launch(cfg, &o.launch, &mut r);
    let mut problem = |m: String| r.problems.push(m);
    if let Err(e) = &o.account {
        problem(format!("AWS credentials: {e}"));
    }
    match &o.azs {
        Ok(azs) => {
            let mut wanted: Vec<&String> = cfg.network.azs.iter().collect();
            let cluster_azs: Vec<String> = cfg.clusters.iter().flat_map(|c| cfg.cluster_azs(c)).collect();
            wanted.extend(cluster_azs.iter());
            wanted.sort();
            wanted.dedup();
            for az in wanted {
                if !azs.contains(az) {
                    problem(format!("availability zone {az} is not available in {} (available: {})", cfg.region, azs.join(", ")));
                }
            }
        }
        Err(e) => problem(format!("availability zones of {}: {e}", cfg.region)),
    }
    match &o.key_pair {
        Ok(true) => {}
        Ok(false) => problem(format!("EC2 key pair `{}` does not exist in {}", cfg.firewalls.key_name, cfg.region)),
        Err(e) => problem(format!("EC2 key pair `{}`: {e}", cfg.firewalls.key_name)),
    }
    match &o.ami {
        Ok(Some(ami)) => {
            if !ami.product_codes.iter().any(|c| PAN_PRODUCT_CODES.contains(&c.as_str())) {
                r.warnings.push(format!(
                    "AMI {} carries no VM-Series marketplace product code ({}); check it is a VM-Series image",
                    cfg.firewalls.ami,
                    if ami.product_codes.is_empty() { "none".to_string() } else { ami.product_codes.join(", ") }
                ));
            }
        }
        Ok(None) => {
            r.problems.push(format!("AMI {} does not exist in {} (or is not shared with this account)", cfg.firewalls.ami, cfg.region))
        }
        Err(e) => r.problems.push(format!("AMI {}: {e}", cfg.firewalls.ami)),
    }
    let mut problem = |m: String| r.problems.push(m);
    for (name, state) in &o.buckets {
        match state {
            Ok(BucketState::Foreign(why)) => problem(format!("bucket {name}: {why}; choose another name")),
            Ok(_) => {}
            Err(e) => problem(format!("bucket {name}: {e}")),
        }
    }
    match &o.panorama {
        Ok(v) => match parse_version(v) {
            Some(got) if got >= MIN_PANORAMA => {}
            Some(_) => problem(format!("Panorama runs {v}; the EKS workflow needs 9.0.3 or later")),
            None => problem(format!("Panorama reported an unreadable version `{v}`")),
        },
        Err(e) => problem(format!("Panorama is not reachable: {e}")),
    }
    let clusters = cfg.clusters.len() + o.other_clusters_in_vpc;
    if clusters > MAX_CLUSTERS_PER_VPC {
        problem(format!(
            "{clusters} clusters in one VPC ({} configured, {} already there); at most {MAX_CLUSTERS_PER_VPC}",
            cfg.clusters.len(),
            o.other_clusters_in_vpc
        ));
    }
    if existing_vpc {
        let vpc_id = cfg.network.existing_vpc_id.clone().unwrap_or_default();
        let igw_id = cfg.network.existing_igw_id.clone().unwrap_or_default();
        match &o.vpc {
            Some(Ok(Some(vpc))) => {
                let want = cfg.network.vpc_cidr.to_string();
                if !vpc.cidrs.contains(&want) {
                    problem(format!("VPC {vpc_id} has CIDR {} but network.vpc_cidr is {want}", vpc.cidrs.join(", ")));
                }
                let vpc_nets: Vec<Ipv4Net> = vpc.cidrs.iter().filter_map(|c| c.parse().ok()).collect();
                for (what, net) in new_subnets(cfg) {
                    if !vpc_nets.iter().any(|v| v.contains(&net)) {
                        problem(format!("{what} is not inside VPC {vpc_id} ({})", vpc.cidrs.join(", ")));
                    }
                    for s in &vpc.subnets {
                        let Ok(existing) = s.cidr.parse::<Ipv4Net>() else { continue };
                        let overlaps = existing.contains(&net.network()) || net.contains(&existing.network());
                        if overlaps && !(s.ours && existing == net) {
                            problem(format!("{what} overlaps existing subnet {} ({})", s.id, s.cidr));
                        }
                    }
                }
            }
            Some(Ok(None)) => problem(format!("VPC {vpc_id} (network.existing_vpc_id) does not exist in {}", cfg.region)),
            Some(Err(e)) => problem(format!("VPC {vpc_id}: {e}")),
            None => problem("brownfield: the VPC was not examined".into()),
        }
        match &o.igw_attached {
            Some(Ok(true)) => {}
            Some(Ok(false)) => problem(format!("internet gateway {igw_id} (network.existing_igw_id) is not attached to VPC {vpc_id}")),
            Some(Err(e)) => problem(format!("internet gateway {igw_id}: {e}")),
            None => problem("brownfield: the internet gateway was not examined".into()),
        }
    }
    r
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

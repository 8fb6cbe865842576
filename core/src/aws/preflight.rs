//! Pre-flight: every check `up` makes before it creates anything, all reported at once. What
//! `up` would make ([`Deployment`], from the config) against what AWS and Panorama said
//! ([`Observed`]) gives problems (stop) and warnings ([`Report`]): access, AZs, key pair, AMI
//! and its Marketplace subscription, buckets, Panorama's version, Kubernetes versions and their
//! support, same-named clusters, quota arithmetic (Elastic IPs, VPCs, NAT gateways), instance
//! type offerings, and the brownfield VPC (CIDRs, overlaps, IGW, DNS, default network ACL).

use ipnet::Ipv4Net;

use crate::front::alb::DEPLOYMENT_TAG;

pub use super::bucket::BucketState;

/// What `up` would make, as pre-flight needs it (the adapter builds it from the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub name: String,
    pub region: String,
    /// `network.azs`: the firewalls' AZs (one NAT gateway and one Elastic IP each).
    pub azs: Vec<String>,
    pub outbound_via_firewall: bool,
    pub vpcs_quota: u32,
    pub nat_gateways_per_az_quota: u32,
    pub existing_vpc_id: Option<String>,
    pub existing_igw_id: Option<String>,
    pub vpc_cidr: Ipv4Net,
    /// The subnets `up` creates, each with the config key that names it.
    pub new_subnets: Vec<(String, Ipv4Net)>,
    pub firewall: Firewall,
    pub clusters: Vec<Cluster>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firewall {
    pub ami: String,
    pub key_name: String,
    pub instance_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub name: String,
    /// Its cluster stack (which owns the EKS cluster once made).
    pub stack: String,
    pub kubernetes_version: String,
    /// `support_type = "STANDARD"`: EKS refuses a version out of standard support.
    pub standard_support_only: bool,
    /// The AZs of its subnets (its nodes launch there).
    pub azs: Vec<String>,
    pub node_instance_type: String,
}

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

/// The configured Kubernetes versions against what EKS says of them: unsupported (or unknown) is
/// a problem, extended support a warning with its cost (a problem with `support_type = "STANDARD"`,
/// which EKS allows only on a version in standard support). An unreadable answer is a warning.
pub fn check_versions(d: &Deployment, versions: &Result<Vec<EksVersion>, String>, r: &mut Report) {
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
    for (i, c) in d.clusters.iter().enumerate() {
        let key = format!("clusters.{i}.kubernetes_version = \"{}\" (cluster {})", c.kubernetes_version, c.name);
        match versions.iter().find(|v| v.version == c.kubernetes_version) {
            None => r.problems.push(format!("{key}: EKS does not offer this version in {}; {fix}", d.region)),
            Some(v) if v.status == "STANDARD_SUPPORT" => {}
            Some(v) if v.status == "EXTENDED_SUPPORT" => {
                let extra = EXTENDED_SUPPORT_EXTRA_PER_HOUR_USD * 24.0 * 365.0;
                let msg = format!(
                    "{key} is in EKS extended support (standard support ended {}, extended support ends {}): extended support costs \
                     ${EXTENDED_SUPPORT_EXTRA_PER_HOUR_USD:.2} more per cluster hour (about ${extra:.0} a year); {fix}",
                    date(&v.end_of_standard),
                    date(&v.end_of_extended)
                );
                if c.standard_support_only {
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
pub fn check_same_named_clusters(d: &Deployment, seen: &[(String, Result<Option<ExistingCluster>, String>)], r: &mut Report) {
    for (name, state) in seen {
        let i = d.clusters.iter().position(|c| &c.name == name).unwrap_or_default();
        match state {
            Ok(None) => {}
            Ok(Some(c)) if c.in_our_stack || c.deployment_tag.as_deref() == Some(d.name.as_str()) => {}
            Ok(Some(c)) => r.problems.push(format!(
                "clusters.{i}.name = \"{name}\": an EKS cluster of that name already exists in {} and this deployment did not make it \
                 ({}; stack {} does not own it); EKS cluster names are unique per account and region: choose another \
                 clusters.{i}.name, or delete that cluster",
                d.region,
                match &c.deployment_tag {
                    Some(d) => format!("it belongs to pano-eks deployment `{d}`"),
                    None => format!("it has no {DEPLOYMENT_TAG} tag"),
                },
                d.clusters.iter().find(|c| &c.name == name).map(|c| c.stack.clone()).unwrap_or_default()
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
pub fn check_limits(d: &Deployment, l: &Limits, existing_vpc: bool, r: &mut Report) {
    let azs = &d.azs;
    let region = &d.region;
    let unreadable = |what: &str, e: &str| format!("{what} in {region}: {e}");
    match (&l.eip_quota, &l.eips) {
        (Ok(quota), Ok(eips)) => {
            let ours = eips.iter().filter(|o| **o).count();
            let others = eips.len() - ours;
            let egress = usize::from(d.outbound_via_firewall);
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
            let quota = d.vpcs_quota as usize;
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
            let quota = d.nat_gateways_per_az_quota as usize;
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
pub fn check_launch(d: &Deployment, launch: &Option<Launch>, r: &mut Report) {
    match launch {
        None | Some(Launch::Allowed) => {}
        Some(Launch::NotSubscribed(why)) => r.problems.push(format!(
            "AMI {}: this account is not subscribed to its AWS Marketplace product, so every firewall launch would fail \
             ({why}): subscribe to the VM-Series listing of this AMI ({MARKETPLACE_URL}; accept the terms, wait for the \
             subscription to be active), then re-run",
            d.firewall.ami
        )),
        Some(Launch::Unknown(why)) => {
            r.warnings.push(format!("AMI {}: a dry-run launch could not confirm its Marketplace subscription ({why})", d.firewall.ami))
        }
    }
}

/// (instance type, AZ, what uses it) that `up` launches: the firewalls in `network.azs`, each
/// cluster's nodes in its AZs.
pub fn wanted_offerings(d: &Deployment) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> =
        d.azs.iter().map(|az| (d.firewall.instance_type.clone(), az.clone(), "firewalls.instance_type".to_string())).collect();
    for (i, c) in d.clusters.iter().enumerate() {
        for az in &c.azs {
            out.push((c.node_instance_type.clone(), az.clone(), format!("clusters.{i}.nodes.instance_type (cluster {})", c.name)));
        }
    }
    out.sort();
    out.dedup();
    out
}

pub fn check_offerings(d: &Deployment, offered: &Result<Vec<(String, String)>, String>, r: &mut Report) {
    let offered = match offered {
        Ok(o) => o,
        Err(e) => return r.problems.push(format!("instance types offered in {}: {e}", d.region)),
    };
    for (ty, az, what) in wanted_offerings(d) {
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
pub fn check_vpc_settings(d: &Deployment, s: &Option<Result<VpcSettings, String>>, r: &mut Report) {
    let vpc_id = d.existing_vpc_id.clone().unwrap_or_default();
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

pub fn check(d: &Deployment, o: &Observed, existing_vpc: bool) -> Report {
    let mut r = Report::default();
    check_offerings(d, &o.offerings, &mut r);
    if existing_vpc {
        check_vpc_settings(d, &o.vpc_settings, &mut r);
    }
    check_versions(d, &o.eks_versions, &mut r);
    check_same_named_clusters(d, &o.same_named_clusters, &mut r);
    check_limits(d, &o.limits, existing_vpc, &mut r);
    check_launch(d, &o.launch, &mut r);
    let mut problem = |m: String| r.problems.push(m);
    if let Err(e) = &o.account {
        problem(format!("AWS credentials: {e}"));
    }
    match &o.azs {
        Ok(azs) => {
            let mut wanted: Vec<&String> = d.azs.iter().collect();
            let cluster_azs: Vec<String> = d.clusters.iter().flat_map(|c| c.azs.iter().cloned()).collect();
            wanted.extend(cluster_azs.iter());
            wanted.sort();
            wanted.dedup();
            for az in wanted {
                if !azs.contains(az) {
                    problem(format!("availability zone {az} is not available in {} (available: {})", d.region, azs.join(", ")));
                }
            }
        }
        Err(e) => problem(format!("availability zones of {}: {e}", d.region)),
    }
    match &o.key_pair {
        Ok(true) => {}
        Ok(false) => problem(format!("EC2 key pair `{}` does not exist in {}", d.firewall.key_name, d.region)),
        Err(e) => problem(format!("EC2 key pair `{}`: {e}", d.firewall.key_name)),
    }
    match &o.ami {
        Ok(Some(ami)) => {
            if !ami.product_codes.iter().any(|c| PAN_PRODUCT_CODES.contains(&c.as_str())) {
                r.warnings.push(format!(
                    "AMI {} carries no VM-Series marketplace product code ({}); check it is a VM-Series image",
                    d.firewall.ami,
                    if ami.product_codes.is_empty() { "none".to_string() } else { ami.product_codes.join(", ") }
                ));
            }
        }
        Ok(None) => r.problems.push(format!("AMI {} does not exist in {} (or is not shared with this account)", d.firewall.ami, d.region)),
        Err(e) => r.problems.push(format!("AMI {}: {e}", d.firewall.ami)),
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
    let clusters = d.clusters.len() + o.other_clusters_in_vpc;
    if clusters > MAX_CLUSTERS_PER_VPC {
        problem(format!(
            "{clusters} clusters in one VPC ({} configured, {} already there); at most {MAX_CLUSTERS_PER_VPC}",
            d.clusters.len(),
            o.other_clusters_in_vpc
        ));
    }
    if existing_vpc {
        let vpc_id = d.existing_vpc_id.clone().unwrap_or_default();
        let igw_id = d.existing_igw_id.clone().unwrap_or_default();
        match &o.vpc {
            Some(Ok(Some(vpc))) => {
                let want = d.vpc_cidr.to_string();
                if !vpc.cidrs.contains(&want) {
                    problem(format!("VPC {vpc_id} has CIDR {} but network.vpc_cidr is {want}", vpc.cidrs.join(", ")));
                }
                let vpc_nets: Vec<Ipv4Net> = vpc.cidrs.iter().filter_map(|c| c.parse().ok()).collect();
                for (what, net) in d.new_subnets.iter().cloned() {
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
            Some(Ok(None)) => problem(format!("VPC {vpc_id} (network.existing_vpc_id) does not exist in {}", d.region)),
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

#[cfg(test)]
#[path = "preflight_tests.rs"]
mod tests;

//! `pano-eks.toml`: the one file that drives `up`, `sync`, `status` and `down`.
//!
//! Loading is two passes over the same text: toml's spanned parse tree gives every key path a
//! source location, and serde fills plain structs (unknown keys are collected, not fatal), so that
//! validation can report *all* problems at once, each at its file:line:col.
//! Secrets never live in this file: only the names of environment variables or files holding them.

mod diagnostics;
pub mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::Deserialize;

pub use diagnostics::{Diagnostic, Diagnostics, Severity, SourceMap};

/// The commented example written by `pano-eks init`.
pub const EXAMPLE: &str = include_str!("example.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Deployment name: prefixes stacks, bucket, tags. Lowercase letters, digits, hyphens.
    pub name: String,
    pub region: String,
    pub network: Network,
    pub firewalls: Firewalls,
    pub panorama: Panorama,
    #[serde(default)]
    pub clusters: Vec<Cluster>,
    #[serde(default)]
    pub sync: Sync,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Network {
    pub vpc_cidr: Ipv4Net,
    pub azs: Vec<String>,
    pub mgmt_subnets: Vec<Ipv4Net>,
    pub untrust_subnets: Vec<Ipv4Net>,
    pub trust_subnets: Vec<Ipv4Net>,
    pub natgw_subnets: Vec<Ipv4Net>,
    /// Brownfield (`up --existing-vpc`): the VPC and its internet gateway.
    pub existing_vpc_id: Option<String>,
    pub existing_igw_id: Option<String>,
    /// Send cluster egress through a firewall (the seed's manual outbound step).
    #[serde(default)]
    pub outbound_via_firewall: bool,
    /// The account's quota of VPCs per region (AWS default 5; Service Quotas L-F678F1CE).
    #[serde(default = "defaults::vpcs_quota")]
    pub vpcs_quota: u32,
    /// The account's quota of NAT gateways per AZ (AWS default 5; Service Quotas L-FE5A380F).
    #[serde(default = "defaults::nat_gateways_per_az_quota")]
    pub nat_gateways_per_az_quota: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ElbType {
    Application,
    Network,
}

impl ElbType {
    pub fn as_str(self) -> &'static str {
        match self {
            ElbType::Application => "application",
            ElbType::Network => "network",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Firewalls {
    #[serde(default = "defaults::firewall_count")]
    pub count: u32,
    pub ami: String,
    #[serde(default = "defaults::firewall_instance_type")]
    pub instance_type: String,
    pub key_name: String,
    pub ssh_from: Ipv4Net,
    /// Explicit opt-in needed for `ssh_from = "0.0.0.0/0"`.
    #[serde(default)]
    pub allow_ssh_from_anywhere: bool,
    /// File holding the VM-Series auth codes, one per line (a secret: the path, never the codes).
    pub authcodes_file: PathBuf,
    #[serde(default = "defaults::elb_type")]
    pub elb_type: ElbType,
    #[serde(default = "defaults::lambda_runtime")]
    pub lambda_runtime: String,
    /// Keep IMDSv1 available on the firewalls (images that cannot bootstrap with IMDSv2 required).
    #[serde(default)]
    pub allow_imdsv1: bool,
    /// S3 bucket for the bootstrap package; default `<name>-panw-bootstrap`.
    pub bootstrap_bucket: Option<String>,
    /// S3 bucket for the lambda code; default `<name>-panw-lambda`. It is not the bootstrap bucket
    /// because PAN-OS allows nothing but its own folders in a bootstrap package.
    pub lambda_bucket: Option<String>,
    /// Environment variable holding the Panorama vm-auth-key; when absent `up` asks Panorama.
    pub vm_auth_key_env: Option<String>,
    #[serde(default = "defaults::vm_auth_key_lifetime_hours")]
    pub vm_auth_key_lifetime_hours: u32,
    /// What the firewalls can hold (`sync` admits Services within it); absent: not limited.
    pub capacity: Option<FirewallCapacity>,
}

/// `firewalls.capacity`: a VM-Series memory tier (1–4, the published limits), and/or explicit
/// numbers that replace the tier's (or stand alone).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallCapacity {
    pub tier: Option<u8>,
    pub fqdn_addresses: Option<usize>,
    pub addresses: Option<usize>,
    pub service_objects: Option<usize>,
    pub nat_rules: Option<usize>,
    pub security_rules: Option<usize>,
}

impl FirewallCapacity {
    /// The limits the planner admits against; `None` when nothing usable is set (validation
    /// reports a bad tier, or a table without a tier that misses numbers).
    pub fn capacity(&self) -> Option<pano_eks_core::capacity::Capacity> {
        use pano_eks_core::capacity::{Capacity, Tier};
        let tier = match self.tier {
            Some(1) => Some(Tier::One),
            Some(2) => Some(Tier::Two),
            Some(3) => Some(Tier::Three),
            Some(4) => Some(Tier::Four),
            Some(_) => return None,
            None => None,
        };
        let base = tier.map(Tier::limits);
        let pick = |v: Option<usize>, from_tier: Option<usize>| v.or(from_tier);
        let limits = pano_eks_core::capacity::Limits {
            fqdn_addresses: pick(self.fqdn_addresses, base.map(|b| b.fqdn_addresses))?,
            addresses: pick(self.addresses, base.map(|b| b.addresses))?,
            service_objects: pick(self.service_objects, base.map(|b| b.service_objects))?,
            nat_rules: pick(self.nat_rules, base.map(|b| b.nat_rules))?,
            security_rules: pick(self.security_rules, base.map(|b| b.security_rules))?,
        };
        let source = match tier {
            Some(t) => format!("memory tier {} (firewalls.capacity)", t.number()),
            None => "firewalls.capacity".to_owned(),
        };
        Some(Capacity { limits, source })
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Panorama {
    pub url: String,
    /// PEM file of the CA that signed Panorama's certificate (system roots otherwise).
    pub ca_cert: Option<PathBuf>,
    pub api_key_env: Option<String>,
    /// The administrator pano-eks acts as: partial commits include only this admin's changes.
    pub username: Option<String>,
    pub password_env: Option<String>,
    /// Address the firewalls use to reach Panorama (init-cfg `panorama-server`); default: the URL's host.
    pub server: Option<String>,
    pub server_2: Option<String>,
    pub device_group: String,
    pub template: String,
    pub template_stack: String,
    #[serde(default = "defaults::virtual_router")]
    pub virtual_router: String,
    #[serde(default = "defaults::trust_interface")]
    pub trust_interface: String,
    #[serde(default = "defaults::untrust_interface")]
    pub untrust_interface: String,
    #[serde(default = "defaults::trust_zone")]
    pub trust_zone: String,
    #[serde(default = "defaults::untrust_zone")]
    pub untrust_zone: String,
}

/// The EKS cluster's `UpgradePolicy.SupportType`: what EKS does at the end of standard support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SupportType {
    /// EKS upgrades the control plane at the end of standard support; no extended-support charge.
    Standard,
    /// The cluster may stay on its version for 12 more months, billed as extended support (AWS's default).
    Extended,
}

impl SupportType {
    pub fn as_str(self) -> &'static str {
        match self {
            SupportType::Standard => "STANDARD",
            SupportType::Extended => "EXTENDED",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Cluster {
    pub name: String,
    #[serde(default = "defaults::kubernetes_version")]
    pub kubernetes_version: String,
    /// `UpgradePolicy.SupportType` of the EKS cluster.
    #[serde(default = "defaults::support_type")]
    pub support_type: SupportType,
    pub subnets: Vec<Ipv4Net>,
    /// AZ of each cluster subnet; default: `network.azs` in order, wrapping around.
    pub azs: Option<Vec<String>>,
    #[serde(default)]
    pub nodes: Nodes,
    /// Direct API access (private endpoint behind a tunnel, the lab): replaces endpoint and CA only.
    pub api_server: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// This is the cluster `sync` runs inside (in-cluster mode): use the pod's service account.
    #[serde(default)]
    pub in_cluster: bool,
    /// Who may reach the cluster's public API endpoint; default: `firewalls.ssh_from` (the
    /// operator's admin network), never the whole internet unless listed.
    pub endpoint_public_cidrs: Option<Vec<Ipv4Net>>,
    /// EKS control-plane log types sent to CloudWatch Logs (opt-in; billed per GB).
    #[serde(default)]
    pub control_plane_logs: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Nodes {
    #[serde(default = "defaults::node_instance_type")]
    pub instance_type: String,
    #[serde(default = "defaults::nodes_min")]
    pub min: u32,
    #[serde(default = "defaults::nodes_max")]
    pub max: u32,
    #[serde(default = "defaults::nodes_desired")]
    pub desired: u32,
    /// EKS-optimised AMI; default: the SSM public parameter for the cluster's Kubernetes version.
    pub ami: Option<String>,
    /// Public IPv4 addresses on the nodes (the cluster subnets map them). Default: only when
    /// they are the nodes' way out, i.e. without `network.outbound_via_firewall`.
    pub public_ip: Option<bool>,
}

impl Default for Nodes {
    fn default() -> Self {
        Nodes {
            instance_type: defaults::node_instance_type(),
            min: defaults::nodes_min(),
            max: defaults::nodes_max(),
            desired: defaults::nodes_desired(),
            ami: None,
            public_ip: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Sync {
    #[serde(default = "defaults::label")]
    pub label: String,
    #[serde(default = "defaults::debounce")]
    pub debounce: String,
    #[serde(default = "defaults::resync")]
    pub resync: String,
    #[serde(default = "defaults::batch_size")]
    pub batch_size: u32,
    /// `host:port` for /metrics, /healthz, /readyz during `sync --watch`.
    pub metrics_addr: Option<String>,
    #[serde(default)]
    pub manage_alb: bool,
    /// `[sync.security]`: security rules and address groups from Kubernetes (issue 19).
    #[serde(default)]
    pub security: Option<Security>,
}

/// `[sync.security]` (docs/config.md "Security policy"). Off unless `enabled = true`.
#[derive(Debug, Clone, Deserialize)]
pub struct Security {
    #[serde(default)]
    pub enabled: bool,
    /// `top` (default) or `bottom`; or give `before` / `after` instead.
    pub placement: Option<String>,
    /// Our block right before this rule of the pre-rulebase.
    pub before: Option<String>,
    /// Our block right after this rule of the pre-rulebase.
    pub after: Option<String>,
    /// Profile group of every allow rule unless a Service names one (`pano-eks/profile-group`).
    pub profile_group: Option<String>,
    /// App-IDs of the per-subnet outbound rules.
    #[serde(default = "defaults::outbound_applications")]
    pub outbound_applications: Vec<String>,
}

impl Security {
    /// The planning core's settings (validated by `config::validate` first).
    pub fn settings(&self) -> pano_eks_core::settings::SecuritySettings {
        use pano_eks_core::panorama::model::Position;
        let placement = match (&self.before, &self.after, self.placement.as_deref()) {
            (Some(b), _, _) => Position::Before(b.clone()),
            (None, Some(a), _) => Position::After(a.clone()),
            (None, None, Some("bottom")) => Position::Bottom,
            _ => Position::Top,
        };
        pano_eks_core::settings::SecuritySettings {
            placement,
            profile_group: self.profile_group.clone(),
            outbound_applications: self.outbound_applications.clone(),
        }
    }
}

impl Default for Sync {
    fn default() -> Self {
        Sync {
            label: defaults::label(),
            debounce: defaults::debounce(),
            resync: defaults::resync(),
            batch_size: defaults::batch_size(),
            metrics_addr: None,
            manage_alb: false,
            security: None,
        }
    }
}

mod defaults {
    pub fn outbound_applications() -> Vec<String> {
        vec!["any".into()]
    }
    pub fn firewall_count() -> u32 {
        2
    }
    pub fn firewall_instance_type() -> String {
        "m5.xlarge".into()
    }
    pub fn elb_type() -> super::ElbType {
        super::ElbType::Application
    }
    pub fn lambda_runtime() -> String {
        "python3.12".into()
    }
    pub fn vm_auth_key_lifetime_hours() -> u32 {
        8760
    }
    pub fn virtual_router() -> String {
        "vr-default".into()
    }
    pub fn trust_interface() -> String {
        "ethernet1/2".into()
    }
    pub fn untrust_interface() -> String {
        "ethernet1/1".into()
    }
    pub fn trust_zone() -> String {
        "trust".into()
    }
    pub fn untrust_zone() -> String {
        "untrust".into()
    }
    /// In EKS standard support until 2027-03-27 (AWS's EKS Kubernetes release calendar, docs/config.md).
    pub fn kubernetes_version() -> String {
        "1.35".into()
    }
    pub fn vpcs_quota() -> u32 {
        5
    }
    pub fn nat_gateways_per_az_quota() -> u32 {
        5
    }
    pub fn support_type() -> super::SupportType {
        super::SupportType::Extended
    }
    pub fn node_instance_type() -> String {
        "t3.large".into()
    }
    pub fn nodes_min() -> u32 {
        1
    }
    pub fn nodes_max() -> u32 {
        3
    }
    pub fn nodes_desired() -> u32 {
        2
    }
    pub fn label() -> String {
        "panw-tg-port".into()
    }
    pub fn debounce() -> String {
        "1s".into()
    }
    pub fn resync() -> String {
        "5m".into()
    }
    /// Sub-operations per multi-config call: each entry is its own full-xpath `edit`, so
    /// 16,000 Services (~48,000 entries) take ~20 calls; bytes cap a call first (2 MiB).
    pub fn batch_size() -> u32 {
        2500
    }
}

/// A config that passed validation, with where it came from (relative paths in it resolve
/// against the file's folder).
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    pub path: PathBuf,
    /// Warnings that did not stop loading (printed by the caller).
    pub warnings: Vec<Diagnostic>,
}

impl LoadedConfig {
    /// Resolves a path from the config file against the file's own folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() { p.to_path_buf() } else { self.path.parent().unwrap_or(Path::new(".")).join(p) }
    }
}

/// What load-time checks depend on beyond the text: reading referenced files.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Check brownfield keys (`up --existing-vpc`).
    pub existing_vpc: bool,
    /// The command builds the firewalls' bootstrap package (`up`, `render`, `validate`, `init`),
    /// so `firewalls.authcodes_file` must be readable. The others (sync, status, verify, plan,
    /// prepare, down, token) never read it: an in-cluster sync pod's ConfigMap holds only
    /// `pano-eks.toml`, and licence codes have no business in a ConfigMap.
    pub deploys: bool,
}

impl LoadOptions {
    /// For commands that deploy firewalls: every file the bootstrap package needs is checked.
    pub fn deploy(existing_vpc: bool) -> LoadOptions {
        LoadOptions { existing_vpc, deploys: true }
    }
    /// For commands that only talk to Panorama, Kubernetes or AWS: the deploy-only files are not read.
    pub fn runtime() -> LoadOptions {
        LoadOptions { existing_vpc: false, deploys: false }
    }
}

/// Reads, parses and validates a config file. Every problem is returned at once.
pub fn load(path: &Path, opts: LoadOptions) -> Result<LoadedConfig, Diagnostics> {
    let text = std::fs::read_to_string(path).map_err(|e| Diagnostics::single(path, format!("cannot read config file: {e}")))?;
    load_str(path, &text, opts)
}

/// Parses and validates config text; `path` names the file in diagnostics and anchors relative paths.
pub fn load_str(path: &Path, text: &str, opts: LoadOptions) -> Result<LoadedConfig, Diagnostics> {
    let map = SourceMap::parse(path, text).map_err(|d| Diagnostics::from_vec(path, text, vec![d]))?;
    let mut diags: Vec<Diagnostic> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let de = toml::Deserializer::parse(text).map_err(|e| Diagnostics::from_vec(path, text, vec![Diagnostic::from_toml_error(&e)]))?;
    let parsed: Result<Config, _> = serde_ignored::deserialize(de, |p| unknown.push(diagnostics::path_key(&p)));
    for key in unknown {
        let hint = validate::suggest_key(&key).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
        diags.push(map.error(&key, format!("unknown key `{}`{hint}", diagnostics::display_key(&key))));
    }
    let config = match parsed {
        Ok(c) => c,
        Err(e) => {
            let mut d = Diagnostic::from_toml_error(&e);
            d.key = d.span.as_ref().and_then(|s| map.key_at(s)).unwrap_or_default();
            diags.push(d);
            return Err(Diagnostics::from_vec(path, text, diags));
        }
    };
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    diags.extend(validate::validate(&config, &map, &base, opts));
    let (errors, warnings): (Vec<_>, Vec<_>) = diags.into_iter().partition(|d| d.severity == Severity::Error);
    if !errors.is_empty() {
        let mut all = errors;
        all.extend(warnings);
        return Err(Diagnostics::from_vec(path, text, all));
    }
    let warnings = Diagnostics::from_vec(path, text, warnings).into_vec();
    Ok(LoadedConfig { config, path: path.to_path_buf(), warnings })
}

impl Config {
    pub fn bootstrap_bucket(&self) -> String {
        self.firewalls.bootstrap_bucket.clone().unwrap_or_else(|| format!("{}-panw-bootstrap", self.name))
    }

    pub fn lambda_bucket(&self) -> String {
        self.firewalls.lambda_bucket.clone().unwrap_or_else(|| format!("{}-panw-lambda", self.name))
    }

    /// CloudFormation stack names, one place so `up`, `down` and `sync` agree.
    pub fn firewall_stack(&self) -> String {
        format!("{}-firewall", self.name)
    }
    pub fn cluster_stack(&self, cluster: &str) -> String {
        format!("{}-{}-cluster", self.name, cluster)
    }
    pub fn node_stack(&self, cluster: &str) -> String {
        format!("{}-{}-nodes", self.name, cluster)
    }
    /// The in-cluster sync's AWS access (IAM role, Pod Identity association and agent add-on).
    pub fn sync_access_stack(&self, cluster: &str) -> String {
        format!("{}-{}-sync-access", self.name, cluster)
    }
    /// The firewall autoscaling group (the original plugin finds firewalls by this name).
    pub fn firewall_asg(&self) -> String {
        format!("{}-PANW-Firewall-ASG", self.firewall_stack())
    }
    /// Name of the public load balancer (ELBv2 names are at most 32 characters).
    pub fn elb_name(&self) -> String {
        format!("{}-exlb", self.name)
    }

    /// Host part of the Panorama URL, the default `panorama-server` for init-cfg.
    pub fn panorama_host(&self) -> Option<String> {
        let rest = self.panorama.url.split_once("://").map(|(_, r)| r)?;
        let host_port = rest.split('/').next()?;
        let host = if let Some(stripped) = host_port.strip_prefix('[') {
            stripped.split(']').next()?.to_string()
        } else {
            host_port.rsplit_once(':').map(|(h, _)| h).unwrap_or(host_port).to_string()
        };
        (!host.is_empty()).then_some(host)
    }

    /// The CIDRs allowed on a cluster's public API endpoint (explicit, or `firewalls.ssh_from`).
    pub fn endpoint_public_cidrs(&self, cluster: &Cluster) -> Vec<Ipv4Net> {
        cluster.endpoint_public_cidrs.clone().unwrap_or_else(|| vec![self.firewalls.ssh_from])
    }

    /// Whether a cluster's nodes get public IPv4 addresses (explicit, or only when the internet
    /// gateway is their way out).
    pub fn node_public_ip(&self, cluster: &Cluster) -> bool {
        cluster.nodes.public_ip.unwrap_or(!self.network.outbound_via_firewall)
    }

    /// The AZ of each subnet of a cluster (explicit, or `network.azs` round-robin).
    pub fn cluster_azs(&self, cluster: &Cluster) -> Vec<String> {
        match &cluster.azs {
            Some(azs) => azs.clone(),
            None if self.network.azs.is_empty() => Vec::new(),
            None => (0..cluster.subnets.len()).map(|i| self.network.azs[i % self.network.azs.len()].clone()).collect(),
        }
    }

    /// Tags every stack carries (CloudFormation propagates them to taggable resources).
    pub fn stack_tags(&self, cluster: Option<&str>) -> BTreeMap<String, String> {
        let mut t = BTreeMap::new();
        t.insert("pano-eks:deployment".to_string(), self.name.clone());
        if let Some(c) = cluster {
            t.insert("pano-eks:cluster".to_string(), c.to_string());
        }
        t
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub mod tests_support;

/// One printable line for a diagnostic of `file`.
pub fn diagnostics_line(file: &Path, d: &Diagnostic) -> String {
    diagnostics::render_one(file, d)
}

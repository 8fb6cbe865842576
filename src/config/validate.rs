//! Every rule the config must satisfy, checked in one pass so the user sees all problems at once.
//! Limits come from AWS (names, CIDR sizes), PAN-OS (object names) and the seed guide
//! (2–3 AZs, 2–6 firewalls, 2–4 subnets per cluster, 16 clusters per VPC).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ipnet::Ipv4Net;

use super::diagnostics::{Diagnostic, SourceMap};
use super::{Config, LoadOptions};

/// The seed's documented limit of clusters secured in one VPC.
pub const MAX_CLUSTERS_PER_VPC: usize = 16;
/// EKS control-plane log types (Amazon EKS user guide, "Send control plane logs to CloudWatch Logs").
pub const CONTROL_PLANE_LOGS: &[&str] = &["api", "audit", "authenticator", "controllerManager", "scheduler"];

/// Python runtimes Lambda still lets you create functions on (AWS Lambda developer guide,
/// "Lambda runtimes", https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html: python3.10
/// is deprecated and refused for new functions (issue 13); python3.14 is supported since Nov 2025).
const LAMBDA_RUNTIMES: &[&str] = &["python3.11", "python3.12", "python3.13", "python3.14"];

struct Check<'a> {
    map: &'a SourceMap,
    out: Vec<Diagnostic>,
}

impl Check<'_> {
    fn err(&mut self, key: &str, msg: impl Into<String>) {
        self.out.push(self.map.error(key, msg));
    }
    fn warn(&mut self, key: &str, msg: impl Into<String>) {
        self.out.push(self.map.warning(key, msg));
    }
}

pub fn validate(c: &Config, map: &SourceMap, base: &Path, opts: LoadOptions) -> Vec<Diagnostic> {
    let mut k = Check { map, out: Vec::new() };
    deployment(&mut k, c);
    network(&mut k, c, opts);
    firewalls(&mut k, c, base, opts);
    panorama(&mut k, c, base);
    clusters(&mut k, c, base);
    subnet_overlaps(&mut k, c);
    sync(&mut k, c);
    k.out
}

fn deployment(k: &mut Check, c: &Config) {
    // The ELB name `<name>-exlb` must fit ELBv2's 32 characters; stacks, bucket and tags derive from it.
    if !is_dns_label(&c.name, 20) {
        k.err("name", "must be 1–20 characters of lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen (it prefixes stack, bucket and load balancer names)");
    }
    if !is_region(&c.region) {
        k.err("region", "is not an AWS region name like `us-west-2`");
    }
}

fn network(k: &mut Check, c: &Config, opts: LoadOptions) {
    let n = &c.network;
    let azs = n.azs.len();
    if !(2..=3).contains(&azs) {
        k.err("network.azs", format!("the firewall templates span 2 or 3 availability zones, not {azs}"));
    }
    for (i, az) in n.azs.iter().enumerate() {
        if !is_az_of(az, &c.region) {
            k.err(&format!("network.azs.{i}"), format!("is not an availability zone of region `{}`", c.region));
        }
        if n.azs[..i].contains(az) {
            k.err(&format!("network.azs.{i}"), "is listed twice");
        }
    }
    let vpc = n.vpc_cidr;
    if !(16..=28).contains(&vpc.prefix_len()) {
        k.err("network.vpc_cidr", "a VPC CIDR must be between /16 and /28");
    }
    host_bits(k, "network.vpc_cidr", vpc);
    for (role, list) in roles(c) {
        let key = format!("network.{role}");
        if list.len() != azs {
            k.err(&key, format!("has {} subnets but `network.azs` has {azs}: one subnet per AZ", list.len()));
        }
        for (i, s) in list.iter().enumerate() {
            subnet_in_vpc(k, &format!("{key}.{i}"), *s, vpc);
        }
    }
    match (opts.existing_vpc, &n.existing_vpc_id, &n.existing_igw_id) {
        (true, None, _) => k.err("network", "`up --existing-vpc` needs `network.existing_vpc_id`"),
        (true, _, None) => k.err("network", "`up --existing-vpc` needs `network.existing_igw_id`"),
        _ => {}
    }
    if let Some(id) = &n.existing_vpc_id {
        if !is_aws_id(id, "vpc") {
            k.err("network.existing_vpc_id", "is not a VPC id like `vpc-0abc12345def67890`");
        }
    }
    if let Some(id) = &n.existing_igw_id {
        if !is_aws_id(id, "igw") {
            k.err("network.existing_igw_id", "is not an internet gateway id like `igw-0abc12345def67890`");
        }
    }
    for (key, v) in [("network.vpcs_quota", n.vpcs_quota), ("network.nat_gateways_per_az_quota", n.nat_gateways_per_az_quota)] {
        if v == 0 {
            k.err(key, "an account quota is at least 1");
        }
    }
}

fn roles(c: &Config) -> [(&'static str, &Vec<Ipv4Net>); 4] {
    let n = &c.network;
    [
        ("mgmt_subnets", &n.mgmt_subnets),
        ("untrust_subnets", &n.untrust_subnets),
        ("trust_subnets", &n.trust_subnets),
        ("natgw_subnets", &n.natgw_subnets),
    ]
}

fn subnet_in_vpc(k: &mut Check, key: &str, s: Ipv4Net, vpc: Ipv4Net) {
    if !vpc.contains(&s) {
        k.err(key, format!("is not inside the VPC CIDR {vpc}"));
    }
    if !(16..=28).contains(&s.prefix_len()) {
        k.err(key, "an AWS subnet must be between /16 and /28");
    }
    host_bits(k, key, s);
}

fn host_bits(k: &mut Check, key: &str, n: Ipv4Net) {
    if n.addr() != n.network() {
        k.err(key, format!("has host bits set; the network is {}", n.trunc()));
    }
}

fn firewalls(k: &mut Check, c: &Config, base: &Path, opts: LoadOptions) {
    let f = &c.firewalls;
    if !(2..=6).contains(&f.count) {
        k.err("firewalls.count", "must be between 2 and 6");
    }
    if !is_aws_id(&f.ami, "ami") {
        k.err("firewalls.ami", "is not an AMI id like `ami-0123456789abcdef0`");
    }
    if !is_instance_type(&f.instance_type) {
        k.err("firewalls.instance_type", "is not an EC2 instance type like `m5.xlarge`");
    }
    if f.key_name.is_empty() || f.key_name.len() > 255 || !f.key_name.is_ascii() {
        k.err("firewalls.key_name", "must be the name of an EC2 key pair (1–255 ASCII characters)");
    }
    if f.ssh_from.prefix_len() == 0 && !f.allow_ssh_from_anywhere {
        k.err(
            "firewalls.ssh_from",
            "opens the firewalls' management SSH/HTTPS to the whole internet; narrow it, or set `firewalls.allow_ssh_from_anywhere = true`",
        );
    }
    host_bits(k, "firewalls.ssh_from", f.ssh_from);
    if opts.deploys {
        authcodes_file(k, &resolve(base, &f.authcodes_file));
    }
    if !LAMBDA_RUNTIMES.contains(&f.lambda_runtime.as_str()) {
        k.err("firewalls.lambda_runtime", format!("must be a Lambda runtime that can still be created: {}", LAMBDA_RUNTIMES.join(", ")));
    }
    if let Some(b) = &f.bootstrap_bucket {
        if !is_bucket_name(b) {
            k.err("firewalls.bootstrap_bucket", "is not a valid S3 bucket name (3–63 lowercase letters, digits, hyphens, dots)");
        }
    } else if !is_bucket_name(&c.bootstrap_bucket()) {
        k.err("name", format!("gives the default bootstrap bucket `{}`, not a valid S3 bucket name", c.bootstrap_bucket()));
    }
    if let Some(b) = &f.lambda_bucket {
        if !is_bucket_name(b) {
            k.err("firewalls.lambda_bucket", "is not a valid S3 bucket name (3–63 lowercase letters, digits, hyphens, dots)");
        }
    }
    if c.lambda_bucket() == c.bootstrap_bucket() {
        k.err(
            "firewalls.lambda_bucket",
            "must differ from the bootstrap bucket: PAN-OS allows only its own folders in a bootstrap package",
        );
    }
    if let Some(env) = &f.vm_auth_key_env {
        env_name(k, "firewalls.vm_auth_key_env", env);
    }
    // Older guides say 1-8768; current Panorama documents and enforces 1-8760 (facts §11.8).
    if let Some(cap) = &f.capacity {
        if cap.tier.is_some_and(|t| !(1..=4).contains(&t)) {
            k.err("firewalls.capacity.tier", "is a VM-Series memory tier: 1 (≤ 8 GB), 2 (≤ 18 GB), 3 (≤ 64 GB) or 4 (≤ 128 GB)");
        } else if cap.capacity().is_none() {
            k.err(
                "firewalls.capacity",
                "needs a `tier` (1–4) or all of fqdn_addresses, addresses, service_objects, nat_rules and security_rules",
            );
        }
    }
    if !(1..=8760).contains(&f.vm_auth_key_lifetime_hours) {
        k.err("firewalls.vm_auth_key_lifetime_hours", "Panorama issues vm-auth-keys for 1 to 8760 hours");
    }
}

fn panorama(k: &mut Check, c: &Config, base: &Path) {
    let p = &c.panorama;
    if let Some(rest) = p.url.strip_prefix("http://") {
        let _ = rest;
        k.warn("panorama.url", "uses plain HTTP: the API key would cross the network in clear text");
    } else if !p.url.starts_with("https://") {
        k.err("panorama.url", "must be an https:// URL");
    }
    if c.panorama_host().is_none() {
        k.err("panorama.url", "has no host");
    }
    if let Some(ca) = &p.ca_cert {
        let path = resolve(base, ca);
        match std::fs::read_to_string(&path) {
            Ok(t) if t.contains("-----BEGIN CERTIFICATE-----") => {}
            Ok(_) => k.err("panorama.ca_cert", format!("{} holds no PEM certificate", path.display())),
            Err(e) => k.err("panorama.ca_cert", format!("cannot read {}: {e}", path.display())),
        }
    }
    // The admin's name is needed in both modes: pano-eks commits only that admin's changes.
    match &p.username {
        Some(u) if !u.is_empty() && !u.contains(char::is_whitespace) => {}
        Some(_) => k.err("panorama.username", "must be a Panorama administrator name"),
        None => k.err("panorama", "set `username`: the administrator pano-eks acts as (it commits only that admin's changes; with `api_key_env` it is the key's owner)"),
    }
    match (&p.api_key_env, &p.password_env) {
        (Some(env), None) => env_name(k, "panorama.api_key_env", env),
        (None, Some(env)) => env_name(k, "panorama.password_env", env),
        (None, None) => k.err(
            "panorama",
            "set `api_key_env` or `password_env`: the name of the environment variable holding the API key or the password",
        ),
        (Some(_), Some(_)) => k.err("panorama", "set either `api_key_env` or `password_env`, not both"),
    }
    for key in ["server", "server_2"] {
        let v = if key == "server" { &p.server } else { &p.server_2 };
        if let Some(v) = v {
            if v.is_empty() || v.contains(['/', ' ', '=']) {
                k.err(&format!("panorama.{key}"), "must be an IP address or host name the firewalls can reach");
            }
        }
    }
    for (key, v) in [
        ("device_group", &p.device_group),
        ("template", &p.template),
        ("template_stack", &p.template_stack),
        ("virtual_router", &p.virtual_router),
        ("trust_zone", &p.trust_zone),
        ("untrust_zone", &p.untrust_zone),
    ] {
        if let Err(why) = panos_name(v, 31) {
            k.err(&format!("panorama.{key}"), format!("PAN-OS would refuse this name: {why}"));
        }
    }
    if p.template == p.template_stack {
        k.err("panorama.template_stack", "must differ from `panorama.template`: PAN-OS names share one namespace");
    }
    for key in ["trust_interface", "untrust_interface"] {
        let v = if key == "trust_interface" { &p.trust_interface } else { &p.untrust_interface };
        if !is_ethernet(v) {
            k.err(&format!("panorama.{key}"), "must be a layer-3 interface name like `ethernet1/2`");
        }
    }
    if p.trust_interface == p.untrust_interface {
        k.err("panorama.trust_interface", "trust and untrust must be different interfaces");
    }
    if p.trust_zone == p.untrust_zone {
        k.err("panorama.trust_zone", "trust and untrust must be different zones");
    }
}

fn clusters(k: &mut Check, c: &Config, base: &Path) {
    if c.clusters.is_empty() {
        k.err("clusters", "at least one [[clusters]] entry is needed");
    }
    if c.clusters.len() > MAX_CLUSTERS_PER_VPC {
        k.err(
            &format!("clusters.{MAX_CLUSTERS_PER_VPC}"),
            format!("{} clusters in one VPC: at most {MAX_CLUSTERS_PER_VPC} can be secured by one firewall set", c.clusters.len()),
        );
    }
    for (i, cl) in c.clusters.iter().enumerate() {
        let at = |f: &str| format!("clusters.{i}.{f}");
        if !is_dns_label(&cl.name, 40) {
            k.err(&at("name"), "must be 1–40 lowercase letters, digits and hyphens, starting with a letter (it names the EKS cluster, its stacks and Panorama tags)");
        }
        if c.clusters[..i].iter().any(|o| o.name == cl.name) {
            k.err(&at("name"), "is used by another cluster");
        }
        if !is_k8s_version(&cl.kubernetes_version) {
            k.err(&at("kubernetes_version"), "is not a Kubernetes minor version like `1.35`");
        }
        if !(2..=4).contains(&cl.subnets.len()) {
            k.err(&at("subnets"), format!("an EKS cluster here takes 2 to 4 subnets, not {}", cl.subnets.len()));
        }
        for (j, s) in cl.subnets.iter().enumerate() {
            subnet_in_vpc(k, &format!("clusters.{i}.subnets.{j}"), *s, c.network.vpc_cidr);
        }
        match &cl.azs {
            Some(azs) => {
                if azs.len() != cl.subnets.len() {
                    k.err(&at("azs"), format!("has {} entries for {} subnets", azs.len(), cl.subnets.len()));
                }
                for (j, az) in azs.iter().enumerate() {
                    if !is_az_of(az, &c.region) {
                        k.err(&format!("clusters.{i}.azs.{j}"), format!("is not an availability zone of region `{}`", c.region));
                    }
                }
            }
            None => {}
        }
        let azs = c.cluster_azs(cl);
        let mut distinct = azs.clone();
        distinct.sort();
        distinct.dedup();
        if cl.subnets.len() >= 2 && distinct.len() < 2 {
            k.err(&at("subnets"), "EKS needs subnets in at least two availability zones");
        }
        let n = &cl.nodes;
        if !is_instance_type(&n.instance_type) {
            k.err(&at("nodes.instance_type"), "is not an EC2 instance type like `t3.large`");
        }
        if n.max == 0 || n.min > n.desired || n.desired > n.max {
            k.err(&at("nodes"), format!("needs 0 ≤ min ≤ desired ≤ max and max ≥ 1 (min {}, desired {}, max {})", n.min, n.desired, n.max));
        }
        if let Some(ami) = &n.ami {
            if !is_aws_id(ami, "ami") {
                k.err(&at("nodes.ami"), "is not an AMI id like `ami-0123456789abcdef0`");
            }
        }
        if let Some(url) = &cl.api_server {
            if !url.starts_with("https://") {
                k.err(&at("api_server"), "must be an https:// URL");
            }
        }
        if let Some(cidrs) = &cl.endpoint_public_cidrs {
            if cidrs.is_empty() {
                k.err(
                    &at("endpoint_public_cidrs"),
                    "is empty: list who may reach the public API endpoint (`up` and `sync` run from there)",
                );
            }
            // EKS takes at most 40 public access CIDRs (Amazon EKS user guide, "Cluster API server endpoint").
            if cidrs.len() > 40 {
                k.err(&at("endpoint_public_cidrs"), format!("has {} entries; EKS allows at most 40", cidrs.len()));
            }
            for (j, n) in cidrs.iter().enumerate() {
                host_bits(k, &format!("clusters.{i}.endpoint_public_cidrs.{j}"), *n);
            }
        }
        for (j, t) in cl.control_plane_logs.iter().enumerate() {
            if !CONTROL_PLANE_LOGS.contains(&t.as_str()) {
                k.err(
                    &format!("clusters.{i}.control_plane_logs.{j}"),
                    format!("is not an EKS log type: {}", CONTROL_PLANE_LOGS.join(", ")),
                );
            } else if cl.control_plane_logs[..j].contains(t) {
                k.err(&format!("clusters.{i}.control_plane_logs.{j}"), "is listed twice");
            }
        }
        if cl.nodes.public_ip == Some(false) && !c.network.outbound_via_firewall {
            k.err(
                &at("nodes.public_ip"),
                "nodes without public IPs have no way out (the cluster subnets route 0.0.0.0/0 to the internet gateway): set `network.outbound_via_firewall = true`, or leave `public_ip` unset",
            );
        }
        if cl.in_cluster && (cl.api_server.is_some() || cl.kubeconfig.is_some()) {
            k.err(&at("in_cluster"), "excludes `api_server` and `kubeconfig`: in-cluster mode uses the pod's own service account");
        }
        if c.clusters[..i].iter().any(|o| o.in_cluster) && cl.in_cluster {
            k.err(&at("in_cluster"), "only one cluster can be the one sync runs in");
        }
        if cl.ca_cert.is_some() && cl.api_server.is_none() {
            k.err(&at("ca_cert"), "only applies together with `api_server`");
        }
        if let Some(ca) = &cl.ca_cert {
            let path = resolve(base, ca);
            if let Err(e) = std::fs::metadata(&path) {
                k.err(&at("ca_cert"), format!("cannot read {}: {e}", path.display()));
            }
        }
        if let Some(kc) = &cl.kubeconfig {
            let path = resolve(base, kc);
            if let Err(e) = std::fs::metadata(&path) {
                k.err(&at("kubeconfig"), format!("cannot read {}: {e}", path.display()));
            }
        }
    }
}

/// No two subnets of any role or cluster may overlap.
fn subnet_overlaps(k: &mut Check, c: &Config) {
    let mut all: Vec<(String, Ipv4Net)> = Vec::new();
    for (role, list) in roles(c) {
        for (i, s) in list.iter().enumerate() {
            all.push((format!("network.{role}.{i}"), *s));
        }
    }
    for (ci, cl) in c.clusters.iter().enumerate() {
        for (j, s) in cl.subnets.iter().enumerate() {
            all.push((format!("clusters.{ci}.subnets.{j}"), *s));
        }
    }
    for (i, (key, s)) in all.iter().enumerate() {
        if let Some((other, o)) = all[..i].iter().find(|(_, o)| o.contains(&s.network()) || s.contains(&o.network())) {
            k.err(key, format!("overlaps {o} at {}", super::diagnostics::display_key(other)));
        }
    }
}

fn sync(k: &mut Check, c: &Config) {
    let s = &c.sync;
    if !is_label_key(&s.label) {
        k.err("sync.label", "is not a valid Kubernetes label key");
    }
    match parse_duration(&s.debounce) {
        Ok(d) if d <= Duration::from_secs(60) => {}
        Ok(_) => k.err("sync.debounce", "must be at most 60s: longer windows delay protection of new Services"),
        Err(e) => k.err("sync.debounce", e),
    }
    match parse_duration(&s.resync) {
        Ok(d) if d >= Duration::from_secs(30) => {}
        Ok(_) => k.err("sync.resync", "must be at least 30s: a full resync reads all managed objects from Panorama"),
        Err(e) => k.err("sync.resync", e),
    }
    if !(1..=10_000).contains(&s.batch_size) {
        k.err("sync.batch_size", "must be between 1 and 10000 operations per multi-config call");
    }
    if let Some(addr) = &s.metrics_addr {
        if addr.parse::<SocketAddr>().is_err() {
            k.err("sync.metrics_addr", "must be an address and port like `127.0.0.1:9090`");
        }
    }
    if let Some(sec) = &s.security {
        security(k, sec);
    }
}

/// `[sync.security]`: one placement, rule names PAN-OS can hold, App-IDs as PAN-OS takes them.
fn security(k: &mut Check, sec: &super::Security) {
    let given: Vec<&str> = [("placement", sec.placement.is_some()), ("before", sec.before.is_some()), ("after", sec.after.is_some())]
        .into_iter()
        .filter(|g| g.1)
        .map(|g| g.0)
        .collect();
    if given.len() > 1 {
        k.err(&format!("sync.security.{}", given[1]), format!("give one of placement, before and after, not {}", given.join(" and ")));
    }
    if let Some(p) = sec.placement.as_deref().filter(|p| !matches!(*p, "top" | "bottom")) {
        k.err(
            "sync.security.placement",
            format!("`{p}` is not `top` or `bottom` (use `before = \"<rule>\"` or `after = \"<rule>\"` for an anchor)"),
        );
    }
    for (key, v) in [("before", &sec.before), ("after", &sec.after), ("profile_group", &sec.profile_group)] {
        if let Some(v) = v.as_deref().filter(|v| v.trim().is_empty() || v.len() > 63) {
            k.err(&format!("sync.security.{key}"), format!("`{v}` is not a PAN-OS object name (1-63 characters)"));
        }
    }
    if let Err(e) =
        pano_eks_core::security::annotations::applications(&sec.outbound_applications.join(","), "sync.security.outbound_applications")
    {
        k.err("sync.security.outbound_applications", e);
    }
}

/// Parses `500ms`, `1s`, `5m`, `1h` (one number, one unit).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a duration like `500ms`, `1s`, `5m` or `1h`"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("`{s}` is not a duration like `500ms`, `1s`, `5m` or `1h`")),
    };
    Ok(d)
}

fn resolve(base: &Path, p: &Path) -> std::path::PathBuf {
    if p.is_absolute() { p.to_path_buf() } else { base.join(p) }
}

fn env_name(k: &mut Check, key: &str, v: &str) {
    let ok =
        v.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        k.err(key, "must be the NAME of an environment variable (letters, digits, underscores), not its value");
    }
}

fn is_dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].chars().all(|c| c.is_ascii_lowercase())
        && parts[1..parts.len() - 1].iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

fn is_az_of(az: &str, region: &str) -> bool {
    az.strip_prefix(region).is_some_and(|rest| rest.len() == 1 && rest.chars().all(|c| c.is_ascii_lowercase()))
}

fn is_aws_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|hex| (hex.len() == 8 || hex.len() == 17) && hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()))
}

fn is_instance_type(s: &str) -> bool {
    s.split_once('.').is_some_and(|(fam, size)| {
        !fam.is_empty()
            && !size.is_empty()
            && fam.starts_with(|c: char| c.is_ascii_lowercase())
            && fam.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && size.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    })
}

fn is_bucket_name(s: &str) -> bool {
    (3..=63).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !s.contains("..")
        && s.parse::<std::net::Ipv4Addr>().is_err()
        && !s.starts_with("xn--")
}

fn is_k8s_version(s: &str) -> bool {
    s.split_once('.').is_some_and(|(a, b)| a == "1" && (2..=3).contains(&b.len()) && b.chars().all(|c| c.is_ascii_digit()))
}

fn is_ethernet(s: &str) -> bool {
    s.strip_prefix("ethernet").and_then(|r| r.split_once('/')).is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && a.chars().all(|c| c.is_ascii_digit()) && b.chars().all(|c| c.is_ascii_digit())
    })
}

/// PAN-OS object names: letters, digits, spaces, hyphens, underscores and periods, starting
/// with an alphanumeric (the safe reading of the docs; see docs/config.md).
pub fn panos_name(s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() {
        return Err("empty".into());
    }
    if s.chars().count() > max {
        return Err(format!("longer than {max} characters"));
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("must start with a letter or digit".into());
    }
    if let Some(bad) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'))) {
        return Err(format!("character `{bad}` is not allowed (letters, digits, space, - _ . only)"));
    }
    Ok(())
}

/// Kubernetes label key: optional DNS-subdomain prefix `/` name of ≤63 characters.
fn is_label_key(s: &str) -> bool {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty() && p.len() <= 253 && p.split('.').all(|l| is_dns_label(l, 63) || l.chars().all(|c| c.is_ascii_digit()))
    });
    name_ok && prefix_ok
}

/// Every key the file may contain, for "did you mean" hints on typos.
const KNOWN_KEYS: &[&str] = &[
    "name",
    "region",
    "network",
    "firewalls",
    "panorama",
    "clusters",
    "sync",
    "network.vpc_cidr",
    "network.azs",
    "network.mgmt_subnets",
    "network.untrust_subnets",
    "network.trust_subnets",
    "network.natgw_subnets",
    "network.existing_vpc_id",
    "network.existing_igw_id",
    "network.outbound_via_firewall",
    "network.vpcs_quota",
    "network.nat_gateways_per_az_quota",
    "firewalls.count",
    "firewalls.ami",
    "firewalls.instance_type",
    "firewalls.key_name",
    "firewalls.ssh_from",
    "firewalls.allow_ssh_from_anywhere",
    "firewalls.authcodes_file",
    "firewalls.elb_type",
    "firewalls.lambda_runtime",
    "firewalls.allow_imdsv1",
    "firewalls.bootstrap_bucket",
    "firewalls.lambda_bucket",
    "firewalls.vm_auth_key_env",
    "firewalls.vm_auth_key_lifetime_hours",
    "firewalls.capacity",
    "firewalls.capacity.tier",
    "firewalls.capacity.fqdn_addresses",
    "firewalls.capacity.addresses",
    "firewalls.capacity.service_objects",
    "firewalls.capacity.nat_rules",
    "firewalls.capacity.security_rules",
    "panorama.url",
    "panorama.ca_cert",
    "panorama.api_key_env",
    "panorama.username",
    "panorama.password_env",
    "panorama.server",
    "panorama.server_2",
    "panorama.device_group",
    "panorama.template",
    "panorama.template_stack",
    "panorama.virtual_router",
    "panorama.trust_interface",
    "panorama.untrust_interface",
    "panorama.trust_zone",
    "panorama.untrust_zone",
    "clusters.name",
    "clusters.kubernetes_version",
    "clusters.support_type",
    "clusters.subnets",
    "clusters.azs",
    "clusters.nodes",
    "clusters.api_server",
    "clusters.ca_cert",
    "clusters.token_file",
    "clusters.kubeconfig",
    "clusters.context",
    "clusters.in_cluster",
    "clusters.nodes.instance_type",
    "clusters.nodes.min",
    "clusters.nodes.max",
    "clusters.nodes.desired",
    "clusters.nodes.ami",
    "clusters.nodes.public_ip",
    "clusters.endpoint_public_cidrs",
    "clusters.control_plane_logs",
    "sync.label",
    "sync.debounce",
    "sync.resync",
    "sync.batch_size",
    "sync.metrics_addr",
    "sync.manage_alb",
    "sync.security.enabled",
    "sync.security.placement",
    "sync.security.before",
    "sync.security.after",
    "sync.security.profile_group",
    "sync.security.outbound_applications",
];

/// The closest known key in the same table, for a typo like `firewalls.cout`.
pub fn suggest_key(unknown: &str) -> Option<String> {
    // Array indexes are not part of the schema's key names.
    let generic: Vec<&str> = unknown.split('.').filter(|p| !p.chars().all(|c| c.is_ascii_digit())).collect();
    let generic = generic.join(".");
    let (table, leaf) = generic.rsplit_once('.').unwrap_or(("", &generic));
    KNOWN_KEYS
        .iter()
        .filter_map(|k| {
            let (t, l) = k.rsplit_once('.').unwrap_or(("", k));
            (t == table).then(|| (edit_distance(leaf, l), l))
        })
        .filter(|(d, l)| *d <= 2.max(l.len() / 4))
        .min()
        .map(|(_, l)| l.to_string())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The licence codes of the bootstrap package: present, one code per line.
fn authcodes_file(k: &mut Check, path: &Path) {
    match std::fs::read_to_string(path) {
        // Never echo the codes themselves: they are licences.
        Ok(text) => {
            let codes: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            if codes.is_empty() {
                k.err("firewalls.authcodes_file", "is empty: it must hold at least one VM-Series auth code");
            } else if codes.iter().any(|c| c.chars().any(|ch| ch.is_whitespace() || ch.is_control())) {
                k.err("firewalls.authcodes_file", "holds a line that is not a single auth code (one code per line)");
            }
        }
        Err(e) => k.err("firewalls.authcodes_file", format!("cannot read {}: {e}", path.display())),
    }
}

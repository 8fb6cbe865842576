//! CloudFormation: which stacks `up` deploys, from which template, with which parameters.
//! Templates are tera files in `cfn/` (structure varies with AZ and subnet counts); every value
//! from the config goes in as a CloudFormation parameter, never spliced into YAML text.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Config;

/// Where a parameter's value comes from. Values known offline are `Value`; the rest are wired
/// by `up` at deploy time, so `render` shows them as references.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamValue {
    Value(String),
    /// The physical id of a resource of another stack, available while that stack is still
    /// being created (lets the cluster stack start as soon as the VPC and IGW exist).
    StackResource {
        stack: String,
        logical_id: String,
    },
    /// An output of another stack (available when it is complete).
    StackOutput {
        stack: String,
        output: String,
    },
    /// A field of `eks:DescribeCluster` for a cluster (endpoint, CA, service CIDR).
    EksCluster {
        cluster: String,
        field: EksField,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EksField {
    Endpoint,
    CertificateAuthority,
    ServiceCidr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StackRole {
    Firewall,
    Cluster,
    Nodes,
    /// The in-cluster sync's IAM role, Pod Identity association and agent add-on.
    SyncAccess,
}

/// One stack `up` deploys, in deployment order.
#[derive(Debug, Clone, Serialize)]
pub struct StackSpec {
    pub role: StackRole,
    /// The `[[clusters]]` name for cluster and node stacks.
    pub cluster: Option<String>,
    pub stack_name: String,
    /// File name under the render folder's `cfn/`, e.g. `firewall-new-vpc.yaml`.
    pub template_file: String,
    #[serde(skip)]
    pub template_body: String,
    pub parameters: BTreeMap<String, ParamValue>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CfnError {
    #[error("rendering CloudFormation template {template}: {}", error_chain(.source))]
    Template { template: String, source: tera::Error },
    /// The config lacks something a template needs (normally caught by validation first).
    #[error("CloudFormation stack {stack}: {message}")]
    Config { stack: String, message: String },
}

/// tera puts the useful part (the line, the undefined variable) in the error's sources.
pub(super) fn error_chain(e: &tera::Error) -> String {
    let mut out = e.to_string();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

/// Logical id of the VPC in `firewall-new-vpc` (the cluster stacks' `VpcId` in greenfield).
pub const VPC_LOGICAL_ID: &str = "Vpc";
/// Logical id of the internet gateway in `firewall-new-vpc`.
pub const IGW_LOGICAL_ID: &str = "InternetGateway";
/// Logical id of the IGW's attachment to the VPC in `firewall-new-vpc`. A route to the gateway
/// (the cluster stack's `ClusterDefaultRoute`) fails until the gateway is attached, so `up` should
/// start a greenfield cluster stack only once this resource is CREATE_COMPLETE as well, not just
/// when the `Vpc` and `InternetGateway` physical ids are known.
pub const IGW_ATTACHMENT_LOGICAL_ID: &str = "InternetGatewayAttachment";

/// Root volume of a VM-Series instance: the documented minimum, which is also the size of PAN's
/// AMIs. (No config key yet: a larger log disk would be one.)
pub const FIREWALL_VOLUME_GIB: u32 = 60;

/// The template sources, embedded; names are what `{% include %}` refers to.
const TEMPLATES: &[(&str, &str)] = &[
    ("_firewall.yaml.tera", include_str!("../../cfn/_firewall.yaml.tera")),
    ("firewall-new-vpc.yaml.tera", include_str!("../../cfn/firewall-new-vpc.yaml.tera")),
    ("firewall-existing-vpc.yaml.tera", include_str!("../../cfn/firewall-existing-vpc.yaml.tera")),
    ("eks-cluster.yaml.tera", include_str!("../../cfn/eks-cluster.yaml.tera")),
    ("eks-node.yaml.tera", include_str!("../../cfn/eks-node.yaml.tera")),
    ("sync-access.yaml.tera", include_str!("../../cfn/sync-access.yaml.tera")),
];

fn engine() -> Result<tera::Tera, CfnError> {
    let mut t = tera::Tera::default();
    t.add_raw_templates(TEMPLATES.iter().copied()).map_err(|source| CfnError::Template { template: "cfn/*.yaml.tera".into(), source })?;
    Ok(t)
}

fn render_one(t: &tera::Tera, name: &str, ctx: &tera::Context) -> Result<String, CfnError> {
    let body = t.render(name, ctx).map_err(|source| CfnError::Template { template: format!("cfn/{name}"), source })?;
    // The leading tera comment leaves blank lines behind.
    Ok(body.trim_start().to_string())
}

fn value(s: impl ToString) -> ParamValue {
    ParamValue::Value(s.to_string())
}

fn joined<T: ToString>(items: &[T]) -> ParamValue {
    value(items.iter().map(ToString::to_string).collect::<Vec<_>>().join(","))
}

/// `[1, 2, .., n]`: the per-AZ / per-subnet numbering the templates loop over.
fn numbered(n: usize) -> Vec<usize> {
    (1..=n).collect()
}

/// SSM public parameter of the EKS-optimized AL2023 x86_64 AMI for a Kubernetes version.
pub fn al2023_ami_parameter(kubernetes_version: &str) -> String {
    format!("/aws/service/eks/optimized-ami/{kubernetes_version}/amazon-linux-2023/x86_64/standard/recommended/image_id")
}

/// All stacks, in the order `up` creates them: the firewall stack, then per cluster its cluster
/// stack and its node stack, and for the cluster sync runs in (`in_cluster = true`) its access
/// stack (after the nodes: the Pod Identity agent add-on runs on them).
pub fn render_stacks(cfg: &Config, existing_vpc: bool) -> Result<Vec<StackSpec>, CfnError> {
    let t = engine()?;
    let mut stacks = vec![firewall_stack(&t, cfg, existing_vpc)?];
    for cl in &cfg.clusters {
        stacks.push(cluster_stack(&t, cfg, cl, existing_vpc)?);
        stacks.push(node_stack(&t, cfg, cl)?);
        if cl.in_cluster {
            stacks.push(access_stack(&t, cfg, cl)?);
        }
    }
    Ok(stacks)
}

/// The service account the in-cluster sync Deployment runs as (manifests/in-cluster/), which
/// the Pod Identity association names.
pub const SYNC_SERVICE_ACCOUNT: (&str, &str) = (super::manifests::NAMESPACE, super::manifests::SERVICE_ACCOUNT);

/// What sync does in AWS for this config (the policy's scope).
pub fn sync_scope(cfg: &Config) -> pano_eks_core::aws::iam::Scope {
    use pano_eks_core::aws::iam::{Front, Scope};
    let front = cfg.sync.manage_alb.then_some(match cfg.firewalls.elb_type {
        crate::config::ElbType::Application => Front::Alb,
        crate::config::ElbType::Network => Front::Nlb,
    });
    Scope { clusters: cfg.clusters.len(), front, outbound: cfg.network.outbound_via_firewall }
}

/// A `!Sub` string when it refers to parameters or pseudo parameters, else a quoted literal.
fn yaml_scalar(v: &str) -> String {
    let quoted = serde_json::to_string(v).expect("a string serializes");
    if v.contains("${") { format!("!Sub {quoted}") } else { quoted }
}

/// The statements as the template writes them: YAML scalars, conditions grouped by operator.
fn statements_context(policy: &[pano_eks_core::aws::iam::Statement]) -> Vec<serde_json::Value> {
    policy
        .iter()
        .map(|s| {
            let mut blocks: BTreeMap<&str, Vec<serde_json::Value>> = BTreeMap::new();
            for c in &s.conditions {
                let values: Vec<String> = c.values.iter().map(|v| yaml_scalar(v)).collect();
                blocks.entry(c.operator).or_default().push(serde_json::json!({"key": c.key, "values": values}));
            }
            // `Null` (the condition operator) is YAML's null as a bare key: quoted.
            let key = |op: &str| if op.eq_ignore_ascii_case("null") { format!("\"{op}\"") } else { op.to_string() };
            let conditions: Vec<serde_json::Value> =
                blocks.into_iter().map(|(operator, keys)| serde_json::json!({"operator": key(operator), "keys": keys})).collect();
            let resources: Vec<String> = s.resources.iter().map(|r| yaml_scalar(r)).collect();
            serde_json::json!({"sid": s.sid, "actions": s.actions, "resources": resources, "conditions": conditions})
        })
        .collect()
}

fn access_stack(t: &tera::Tera, cfg: &Config, cl: &crate::config::Cluster) -> Result<StackSpec, CfnError> {
    use pano_eks_core::aws::iam::{param, sync_policy};
    let scope = sync_scope(cfg);
    let mut ctx = tera::Context::new();
    ctx.insert("statements", &statements_context(&sync_policy(&scope)));
    ctx.insert("clusters", &numbered(cfg.clusters.len()));
    ctx.insert("front", &scope.front.is_some());
    ctx.insert("outbound", &scope.outbound);
    let body = render_one(t, "sync-access.yaml.tera", &ctx)?;

    let mut p = BTreeMap::new();
    p.insert(param::DEPLOYMENT.into(), value(&cfg.name));
    p.insert("ClusterName".into(), value(&cl.name));
    p.insert("Namespace".into(), value(SYNC_SERVICE_ACCOUNT.0));
    p.insert("ServiceAccount".into(), value(SYNC_SERVICE_ACCOUNT.1));
    p.insert(param::BOOTSTRAP_BUCKET.into(), value(cfg.bootstrap_bucket()));
    p.insert(param::FIREWALL_STACK.into(), value(cfg.firewall_stack()));
    if scope.front.is_some() {
        p.insert(param::FIREWALL_ASG.into(), value(cfg.firewall_asg()));
        p.insert(param::ELB_NAME.into(), value(cfg.elb_name()));
    }
    for (i, c) in cfg.clusters.iter().enumerate() {
        p.insert(param::cluster(i + 1), value(&c.name));
        if scope.outbound {
            p.insert(param::cluster_stack(i + 1), value(cfg.cluster_stack(&c.name)));
        }
    }
    Ok(StackSpec {
        role: StackRole::SyncAccess,
        cluster: Some(cl.name.clone()),
        stack_name: cfg.sync_access_stack(&cl.name),
        template_file: format!("sync-access-{}.yaml", cl.name),
        template_body: body,
        parameters: p,
        tags: cfg.stack_tags(Some(&cl.name)),
    })
}

fn brownfield_id(cfg: &Config, key: &str, v: &Option<String>) -> Result<String, CfnError> {
    v.clone().ok_or_else(|| CfnError::Config {
        stack: cfg.firewall_stack(),
        message: format!("`network.{key}` is required with --existing-vpc"),
    })
}

fn firewall_stack(t: &tera::Tera, cfg: &Config, existing_vpc: bool) -> Result<StackSpec, CfnError> {
    let n = &cfg.network;
    let f = &cfg.firewalls;
    let name = if existing_vpc { "firewall-existing-vpc" } else { "firewall-new-vpc" };
    let mut ctx = tera::Context::new();
    ctx.insert("azs", &numbered(n.azs.len()));
    ctx.insert("elb_type", f.elb_type.as_str());
    ctx.insert("outbound", &n.outbound_via_firewall);
    ctx.insert("imdsv1", &f.allow_imdsv1);
    ctx.insert("probe_port", &pano_eks_core::prepare::PROBE_PORT);
    let body = render_one(t, &format!("{name}.yaml.tera"), &ctx)?;

    let mut p = BTreeMap::new();
    p.insert("DeploymentName".into(), value(&cfg.name));
    p.insert("AvailabilityZones".into(), joined(&n.azs));
    p.insert("VpcCidr".into(), value(n.vpc_cidr));
    p.insert("MgmtSubnetCidrs".into(), joined(&n.mgmt_subnets));
    p.insert("UntrustSubnetCidrs".into(), joined(&n.untrust_subnets));
    p.insert("TrustSubnetCidrs".into(), joined(&n.trust_subnets));
    p.insert("NatgwSubnetCidrs".into(), joined(&n.natgw_subnets));
    p.insert("SshLocation".into(), value(f.ssh_from));
    p.insert("KeyName".into(), value(&f.key_name));
    p.insert("FirewallAmi".into(), value(&f.ami));
    p.insert("FirewallInstanceType".into(), value(&f.instance_type));
    p.insert("FirewallCount".into(), value(f.count));
    p.insert("FirewallVolumeSize".into(), value(FIREWALL_VOLUME_GIB));
    p.insert("BootstrapBucket".into(), value(cfg.bootstrap_bucket()));
    p.insert("LambdaBucket".into(), value(cfg.lambda_bucket()));
    p.insert("LambdaKey".into(), value(super::lambda_zip::build().key));
    p.insert("LambdaRuntime".into(), value(&f.lambda_runtime));
    p.insert("ElbName".into(), value(cfg.elb_name()));
    if existing_vpc {
        p.insert("VpcId".into(), value(brownfield_id(cfg, "existing_vpc_id", &n.existing_vpc_id)?));
        p.insert("InternetGatewayId".into(), value(brownfield_id(cfg, "existing_igw_id", &n.existing_igw_id)?));
    }
    Ok(StackSpec {
        role: StackRole::Firewall,
        cluster: None,
        stack_name: cfg.firewall_stack(),
        template_file: format!("{name}.yaml"),
        template_body: body,
        parameters: p,
        tags: cfg.stack_tags(None),
    })
}

fn cluster_stack(t: &tera::Tera, cfg: &Config, cl: &crate::config::Cluster, existing_vpc: bool) -> Result<StackSpec, CfnError> {
    let mut ctx = tera::Context::new();
    ctx.insert("subnets", &numbered(cl.subnets.len()));
    ctx.insert("public_ip", &cfg.node_public_ip(cl));
    // Names from a closed set (validated against config::validate::CONTROL_PLANE_LOGS).
    ctx.insert("logs", &cl.control_plane_logs);
    let body = render_one(t, "eks-cluster.yaml.tera", &ctx)?;

    let fw = cfg.firewall_stack();
    let (vpc, igw) = if existing_vpc {
        (
            value(brownfield_id(cfg, "existing_vpc_id", &cfg.network.existing_vpc_id)?),
            value(brownfield_id(cfg, "existing_igw_id", &cfg.network.existing_igw_id)?),
        )
    } else {
        // Physical ids of the firewall stack's VPC and IGW: known as soon as those two resources
        // exist, so the cluster (15 minutes) is built while the firewall stack is still creating.
        (
            ParamValue::StackResource { stack: fw.clone(), logical_id: VPC_LOGICAL_ID.into() },
            ParamValue::StackResource { stack: fw.clone(), logical_id: IGW_LOGICAL_ID.into() },
        )
    };
    let mut p = BTreeMap::new();
    p.insert("DeploymentName".into(), value(&cfg.name));
    p.insert("ClusterName".into(), value(&cl.name));
    p.insert("KubernetesVersion".into(), value(&cl.kubernetes_version));
    p.insert("SupportType".into(), value(cl.support_type.as_str()));
    p.insert("VpcId".into(), vpc);
    p.insert("InternetGatewayId".into(), igw);
    p.insert("SubnetAzs".into(), joined(&cfg.cluster_azs(cl)));
    p.insert("SubnetCidrs".into(), joined(&cl.subnets));
    p.insert("PublicAccessCidrs".into(), joined(&cfg.endpoint_public_cidrs(cl)));
    Ok(StackSpec {
        role: StackRole::Cluster,
        cluster: Some(cl.name.clone()),
        stack_name: cfg.cluster_stack(&cl.name),
        template_file: format!("eks-cluster-{}.yaml", cl.name),
        template_body: body,
        parameters: p,
        tags: cfg.stack_tags(Some(&cl.name)),
    })
}

fn node_stack(t: &tera::Tera, cfg: &Config, cl: &crate::config::Cluster) -> Result<StackSpec, CfnError> {
    let mut ctx = tera::Context::new();
    ctx.insert("ami_from_ssm", &cl.nodes.ami.is_none());
    let body = render_one(t, "eks-node.yaml.tera", &ctx)?;

    let cs = cfg.cluster_stack(&cl.name);
    let out = |output: &str| ParamValue::StackOutput { stack: cs.clone(), output: output.into() };
    let eks = |field| ParamValue::EksCluster { cluster: cl.name.clone(), field };
    let nodes = &cl.nodes;
    let mut p = BTreeMap::new();
    p.insert("DeploymentName".into(), value(&cfg.name));
    p.insert("ClusterName".into(), value(&cl.name));
    p.insert("VpcId".into(), out("VpcId"));
    p.insert("Subnets".into(), out("ClusterSubnets"));
    p.insert("ControlPlaneSecurityGroup".into(), out("ControlPlaneSecurityGroup"));
    p.insert("NodeImageId".into(), value(nodes.ami.clone().unwrap_or_else(|| al2023_ami_parameter(&cl.kubernetes_version))));
    p.insert("NodeInstanceType".into(), value(&nodes.instance_type));
    p.insert("NodeMinSize".into(), value(nodes.min));
    p.insert("NodeMaxSize".into(), value(nodes.max));
    p.insert("NodeDesiredSize".into(), value(nodes.desired));
    p.insert("ClusterEndpoint".into(), eks(EksField::Endpoint));
    p.insert("ClusterCertificateAuthority".into(), eks(EksField::CertificateAuthority));
    p.insert("ServiceCidr".into(), eks(EksField::ServiceCidr));
    Ok(StackSpec {
        role: StackRole::Nodes,
        cluster: Some(cl.name.clone()),
        stack_name: cfg.node_stack(&cl.name),
        template_file: format!("eks-node-{}.yaml", cl.name),
        template_body: body,
        parameters: p,
        tags: cfg.stack_tags(Some(&cl.name)),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use super::*;
    use crate::config::tests_support::VALID;
    use crate::config::{LoadOptions, load_str};

    /// Loads config text next to its own authcodes file (a private temp dir per call, so
    /// parallel tests never see each other's half-written files).
    fn valid_config_from(text: &str) -> Config {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("authcodes"), "I1234567\n").unwrap();
        match load_str(&d.path().join("pano-eks.toml"), text, LoadOptions::deploy(false)) {
            Ok(c) => c.config,
            Err(e) => panic!("test config invalid:\n{e}"),
        }
    }

    const THREE_AZS: &[(&str, &str)] = &[
        ("azs = [\"us-west-2a\", \"us-west-2b\"]", "azs = [\"us-west-2a\", \"us-west-2b\", \"us-west-2c\"]"),
        ("\"192.168.10.0/24\"]", "\"192.168.10.0/24\", \"192.168.20.0/24\"]"),
        ("\"192.168.11.0/24\"]", "\"192.168.11.0/24\", \"192.168.21.0/24\"]"),
        ("\"192.168.12.0/24\"]", "\"192.168.12.0/24\", \"192.168.22.0/24\"]"),
        ("\"192.168.101.0/24\"]", "\"192.168.101.0/24\", \"192.168.102.0/24\"]"),
    ];

    const CLUSTERS: &str = r#"[[clusters]]
name = "two"
subnets = ["192.168.110.0/24", "192.168.111.0/24"]

[[clusters]]
name = "three"
kubernetes_version = "1.30"
support_type = "STANDARD"
subnets = ["192.168.120.0/24", "192.168.121.0/24", "192.168.122.0/24"]
nodes = { ami = "ami-0fedcba9876543210", min = 2, max = 5, desired = 3 }

[[clusters]]
name = "four"
subnets = ["192.168.130.0/24", "192.168.131.0/24", "192.168.132.0/24", "192.168.133.0/24"]
"#;

    /// A config text for one variant: AZ count, firewall count, ELB type, brownfield ids, cluster
    /// egress through the firewalls, and three clusters with 2, 3 and 4 subnets (the second with
    /// its own node AMI).
    fn variant(azs: usize, count: u32, elb: &str, existing: bool, outbound: bool) -> String {
        variant_with(azs, count, elb, existing, outbound, false, false)
    }

    /// As [`variant`], with the first cluster (`two`) running sync in-cluster and `sync.manage_alb`.
    fn variant_with(azs: usize, count: u32, elb: &str, existing: bool, outbound: bool, in_cluster: bool, manage_alb: bool) -> String {
        let mut t = VALID.to_string();
        if azs == 3 {
            for (from, to) in THREE_AZS {
                assert!(t.contains(from), "fixture lacks {from}");
                t = t.replacen(from, to, 1);
            }
        }
        t = t.replacen("count = 2", &format!("count = {count}\nelb_type = \"{elb}\""), 1);
        if existing {
            t = t.replacen(
                "natgw_subnets",
                "existing_vpc_id = \"vpc-0123456789abcdef0\"\nexisting_igw_id = \"igw-0123456789abcdef0\"\nnatgw_subnets",
                1,
            );
        }
        if outbound {
            t = t.replacen("natgw_subnets", "outbound_via_firewall = true\nnatgw_subnets", 1);
        }
        let at = t.find("[[clusters]]").expect("fixture has a cluster");
        t.truncate(at);
        t.push_str(CLUSTERS);
        if in_cluster {
            t = t.replacen("name = \"two\"\n", "name = \"two\"\nin_cluster = true\n", 1);
        }
        if manage_alb {
            t.push_str("\n[sync]\nmanage_alb = true\n");
        }
        t
    }

    fn stacks(azs: usize, count: u32, elb: &str, existing: bool) -> Vec<StackSpec> {
        stacks_with(azs, count, elb, existing, false)
    }

    fn stacks_with(azs: usize, count: u32, elb: &str, existing: bool, outbound: bool) -> Vec<StackSpec> {
        let cfg = valid_config_from(&variant(azs, count, elb, existing, outbound));
        assert_eq!(cfg.network.outbound_via_firewall, outbound);
        render_stacks(&cfg, existing).expect("renders")
    }

    /// The names declared under a top-level section (`Parameters:`, `Outputs:`, `Resources:`).
    fn section_keys(body: &str, section: &str) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        let mut inside = false;
        for line in body.lines() {
            if !line.starts_with(' ') && !line.starts_with('#') && !line.trim().is_empty() {
                inside = line.trim_end() == format!("{section}:");
                continue;
            }
            let is_key_line = inside && line.starts_with("  ") && !line.starts_with("   ");
            if let Some(k) = line.trim().strip_suffix(':').filter(|_| is_key_line && !line.trim_start().starts_with('#')) {
                keys.insert(k.to_string());
            }
        }
        keys
    }

    fn all_variants() -> Vec<(String, Vec<StackSpec>)> {
        let mut out = Vec::new();
        for existing in [false, true] {
            for azs in [2, 3] {
                for count in [2, 6] {
                    for elb in ["application", "network"] {
                        for outbound in [false, true] {
                            // In-cluster sync (its access stack) with 6 firewalls, with the front
                            // managed with 3 AZs: every policy shape (no front, ALB, NLB) × egress.
                            let (in_cluster, manage_alb) = (count == 6, count == 6 && azs == 3);
                            let name = format!(
                                "{}-{azs}az-{count}fw-{elb}{}{}{}",
                                if existing { "existing" } else { "new" },
                                if outbound { "-outbound" } else { "" },
                                if in_cluster { "-incluster" } else { "" },
                                if manage_alb { "-front" } else { "" }
                            );
                            let text = variant_with(azs, count, elb, existing, outbound, in_cluster, manage_alb);
                            let cfg = valid_config_from(&text);
                            out.push((name, render_stacks(&cfg, existing).expect("renders")));
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn stacks_come_in_deploy_order_with_names_from_the_config() {
        let s = stacks(2, 2, "application", false);
        let got: Vec<_> = s.iter().map(|s| (s.role, s.stack_name.as_str(), s.template_file.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (StackRole::Firewall, "demo-firewall", "firewall-new-vpc.yaml"),
                (StackRole::Cluster, "demo-two-cluster", "eks-cluster-two.yaml"),
                (StackRole::Nodes, "demo-two-nodes", "eks-node-two.yaml"),
                (StackRole::Cluster, "demo-three-cluster", "eks-cluster-three.yaml"),
                (StackRole::Nodes, "demo-three-nodes", "eks-node-three.yaml"),
                (StackRole::Cluster, "demo-four-cluster", "eks-cluster-four.yaml"),
                (StackRole::Nodes, "demo-four-nodes", "eks-node-four.yaml"),
            ]
        );
        assert_eq!(s[0].tags.get("pano-eks:deployment").map(String::as_str), Some("demo"));
        assert_eq!(s[1].tags.get("pano-eks:cluster").map(String::as_str), Some("two"));
        assert_eq!(stacks(2, 2, "application", true)[0].template_file, "firewall-existing-vpc.yaml");
    }

    #[test]
    fn greenfield_clusters_take_vpc_and_igw_from_the_firewall_stack_resources() {
        let s = stacks(2, 2, "application", false);
        let c = &s[1].parameters;
        assert_eq!(c["VpcId"], ParamValue::StackResource { stack: "demo-firewall".into(), logical_id: "Vpc".into() });
        assert_eq!(
            c["InternetGatewayId"],
            ParamValue::StackResource { stack: "demo-firewall".into(), logical_id: "InternetGateway".into() }
        );
        // The logical ids really are the VPC and IGW of the greenfield template.
        let fw = &s[0].template_body;
        assert!(fw.contains("\n  Vpc:\n    Type: AWS::EC2::VPC\n"), "Vpc resource");
        assert!(fw.contains("\n  InternetGateway:\n    Type: AWS::EC2::InternetGateway\n"), "IGW resource");
        assert!(fw.contains(&format!("\n  {IGW_ATTACHMENT_LOGICAL_ID}:\n    Type: AWS::EC2::VPCGatewayAttachment\n")));
        assert!(!s[0].parameters.contains_key("VpcId"));
        assert_eq!(c["SubnetCidrs"], ParamValue::Value("192.168.110.0/24,192.168.111.0/24".into()));
        assert_eq!(c["SubnetAzs"], ParamValue::Value("us-west-2a,us-west-2b".into()));
        // 4 subnets over 2 AZs wrap around.
        assert_eq!(s[5].parameters["SubnetAzs"], ParamValue::Value("us-west-2a,us-west-2b,us-west-2a,us-west-2b".into()));
    }

    #[test]
    fn cluster_version_and_upgrade_policy_come_from_the_config() {
        let s = stacks(2, 2, "application", false);
        // Defaults: a version in EKS standard support today, AWS's default support type.
        assert_eq!(s[1].parameters["KubernetesVersion"], ParamValue::Value("1.35".into()));
        assert_eq!(s[1].parameters["SupportType"], ParamValue::Value("EXTENDED".into()));
        assert_eq!(s[3].parameters["KubernetesVersion"], ParamValue::Value("1.30".into()));
        assert_eq!(s[3].parameters["SupportType"], ParamValue::Value("STANDARD".into()));
        let body = &s[1].template_body;
        assert!(body.contains("      UpgradePolicy:\n        SupportType: !Ref SupportType\n"), "{body}");
        assert!(section_keys(body, "Parameters").contains("SupportType"));
    }

    #[test]
    fn brownfield_takes_vpc_and_igw_from_the_config() {
        let s = stacks(3, 2, "network", true);
        for p in [&s[0].parameters, &s[1].parameters] {
            assert_eq!(p["VpcId"], ParamValue::Value("vpc-0123456789abcdef0".into()));
            assert_eq!(p["InternetGatewayId"], ParamValue::Value("igw-0123456789abcdef0".into()));
        }
        assert!(!s[0].template_body.contains("Type: AWS::EC2::VPC\n"), "no VPC created");
        assert!(!s[0].template_body.contains("Type: AWS::EC2::InternetGateway\n"), "no IGW created");
        // Without the ids, rendering says what is missing.
        let cfg = valid_config_from(VALID);
        let err = render_stacks(&cfg, true).unwrap_err().to_string();
        assert!(err.contains("network.existing_vpc_id"), "{err}");
    }

    #[test]
    fn firewall_parameters_come_from_the_config() {
        let s = stacks(3, 6, "network", false);
        let p = &s[0].parameters;
        let v = |k: &str| match &p[k] {
            ParamValue::Value(v) => v.clone(),
            other => panic!("{k}: {other:?}"),
        };
        assert_eq!(v("FirewallCount"), "6");
        assert_eq!(v("AvailabilityZones"), "us-west-2a,us-west-2b,us-west-2c");
        assert_eq!(v("TrustSubnetCidrs"), "192.168.2.0/24,192.168.12.0/24,192.168.22.0/24");
        assert_eq!(v("VpcCidr"), "192.168.0.0/16");
        assert_eq!(v("SshLocation"), "203.0.113.7/32");
        assert_eq!(v("BootstrapBucket"), "demo-panw-bootstrap");
        assert_eq!(v("LambdaBucket"), "demo-panw-lambda");
        assert_eq!(v("LambdaKey"), super::super::lambda_zip::build().key);
        assert_eq!(v("LambdaRuntime"), "python3.12");
        assert_eq!(v("ElbName"), "demo-exlb");
        let body = &s[0].template_body;
        assert!(body.contains("      Type: network\n") && !body.contains("Protocol: HTTP"), "only NLB resources");
        assert!(body.contains("      HealthCheckProtocol: TCP\n      HealthCheckPort: \"443\"\n"), "NLB probes the firewall's HTTPS");
        assert!(body.contains("  MgmtSubnet3:") && !body.contains("MgmtSubnet4"), "3 AZs");
        let alb = &stacks(2, 2, "application", false)[0].template_body;
        assert!(
            alb.contains("      Type: application\n") && alb.contains("      HealthCheckProtocol: HTTPS\n      HealthCheckPort: \"443\"\n")
        );
        assert!(!alb.contains("MgmtSubnet3"), "2 AZs");
    }

    #[test]
    fn node_parameters_are_wired_from_the_cluster_stack_and_eks() {
        let s = stacks(2, 2, "application", false);
        let p = &s[2].parameters;
        let out = |o: &str| ParamValue::StackOutput { stack: "demo-two-cluster".into(), output: o.into() };
        assert_eq!(p["VpcId"], out("VpcId"));
        assert_eq!(p["Subnets"], out("ClusterSubnets"));
        assert_eq!(p["ControlPlaneSecurityGroup"], out("ControlPlaneSecurityGroup"));
        let eks = |field| ParamValue::EksCluster { cluster: "two".into(), field };
        assert_eq!(p["ClusterEndpoint"], eks(EksField::Endpoint));
        assert_eq!(p["ClusterCertificateAuthority"], eks(EksField::CertificateAuthority));
        assert_eq!(p["ServiceCidr"], eks(EksField::ServiceCidr));
        assert_eq!(
            p["NodeImageId"],
            ParamValue::Value("/aws/service/eks/optimized-ami/1.35/amazon-linux-2023/x86_64/standard/recommended/image_id".into())
        );
        assert!(s[2].template_body.contains("Type: AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"));
        assert_eq!((&p["NodeMinSize"], &p["NodeMaxSize"], &p["NodeDesiredSize"]), (&value(1), &value(3), &value(2)));
        // nodes.ami set: a plain image id parameter.
        let p3 = &s[4].parameters;
        assert_eq!(p3["NodeImageId"], value("ami-0fedcba9876543210"));
        assert!(s[4].template_body.contains("    Type: AWS::EC2::Image::Id\n"));
        assert!(!s[4].template_body.contains("AWS::SSM::Parameter::Value"));
        assert_eq!((&p3["NodeMinSize"], &p3["NodeMaxSize"], &p3["NodeDesiredSize"]), (&value(2), &value(5), &value(3)));
    }

    #[test]
    fn every_declared_parameter_has_a_value_and_every_value_a_declaration() {
        for (variant, stacks) in all_variants() {
            for s in &stacks {
                let declared = section_keys(&s.template_body, "Parameters");
                let given: BTreeSet<String> = s.parameters.keys().cloned().collect();
                assert_eq!(declared, given, "{variant} {}", s.template_file);
            }
        }
    }

    #[test]
    fn every_output_is_exported_as_stack_dash_name() {
        for (variant, stacks) in all_variants() {
            for s in &stacks {
                let outputs = section_keys(&s.template_body, "Outputs");
                assert!(!outputs.is_empty(), "{variant} {}", s.template_file);
                for o in outputs {
                    let export = format!("      Name: !Sub \"${{AWS::StackName}}-{o}\"");
                    let outputs_at = s.template_body.find("\nOutputs:\n").unwrap();
                    let block: Vec<&str> = s.template_body[outputs_at..]
                        .lines()
                        .skip_while(|l| *l != format!("  {o}:"))
                        .skip(1)
                        .take_while(|l| l.starts_with("    "))
                        .collect();
                    assert!(block.contains(&export.as_str()), "{variant} {} output {o} lacks its export: {block:?}", s.template_file);
                }
            }
        }
    }

    #[test]
    fn rendered_templates_are_complete_and_safe() {
        for (variant, stacks) in all_variants() {
            for s in &stacks {
                let b = &s.template_body;
                let f = &s.template_file;
                assert!(!b.contains("{{") && !b.contains("{%") && !b.contains("{#"), "{variant} {f}: tera leftovers");
                assert!(!b.contains("!GetAtt Cluster."), "{variant} {f}: GetAtt on the EKS cluster");
                assert!(!b.contains("Custom::") && !b.contains("AWS::CloudFormation::CustomResource"), "{variant} {f}");
                assert!(!b.contains("AWS::EC2::SecurityGroupEgress"), "{variant} {f}: moto cannot create it");
                assert!(!b.contains("LaunchConfiguration"), "{variant} {f}");
                assert!(!b.contains("192.168."), "{variant} {f}: a CIDR in template text");
                match s.role {
                    // Only the default route and the (egress) rules of the firewall and node groups.
                    StackRole::Cluster => assert_eq!(b.matches("0.0.0.0/0").count(), 1, "{variant} {f}"),
                    StackRole::Nodes => {
                        assert_eq!(b.matches("0.0.0.0/0").count(), 1, "{variant} {f}");
                        assert!(b.contains("GroupId: !Ref ControlPlaneSecurityGroup\n      IpProtocol: tcp\n      FromPort: 443"));
                    }
                    StackRole::SyncAccess => {
                        assert!(b.contains("Service: pods.eks.amazonaws.com") && b.contains("- sts:TagSession"), "{variant} {f}");
                        assert!(b.contains("Type: AWS::EKS::PodIdentityAssociation") && b.contains("AddonName: eks-pod-identity-agent"));
                        assert!(!b.contains("Action: \"*\"") && !b.contains(":*\n"), "{variant} {f}: a wildcard action");
                    }
                    StackRole::Firewall => {
                        assert!(b.contains("DefaultResult: ABANDON") && b.contains("DefaultResult: CONTINUE"));
                        assert!(b.contains("Handler: fw_lifecycle.handler"));
                        for env in ["DEPLOYMENT", "MGMT_SUBNETS", "TRUST_SUBNETS", "MGMT_SECURITY_GROUP", "TRUST_SECURITY_GROUP"] {
                            assert!(b.contains(&format!("          {env}: ")), "{variant}: lambda env {env}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_lint_rules_probe_port_is_the_cores() {
        let rules = include_str!("../../tests/cfn-rules/pano_eks_rules.py");
        let want = format!("\nPROBE_PORT = {}\n", pano_eks_core::prepare::PROBE_PORT);
        assert!(rules.contains(&want), "tests/cfn-rules/pano_eks_rules.py lacks {want:?}");
    }

    #[test]
    fn imdsv1_only_on_request_and_outbound_opens_the_s3_endpoint() {
        let fw = |text: &str| render_stacks(&valid_config_from(text), false).unwrap().remove(0).template_body;
        let default = fw(VALID);
        assert!(default.contains("          HttpTokens: required\n") && !default.contains("pano-eks/imdsv1"));
        assert!(default.contains("prod-${AWS::Region}-starport-layer-bucket/*") && !default.contains("ClusterEgressThroughTheFirewalls"));
        let old = fw(&VALID.replacen("count = 2", "count = 2\nallow_imdsv1 = true", 1));
        assert!(old.contains("          HttpTokens: optional\n") && old.contains("    Metadata:\n      pano-eks/imdsv1: "));
        let out = fw(&VALID.replacen("natgw_subnets", "outbound_via_firewall = true\nnatgw_subnets", 1));
        assert!(out.contains("Sid: ClusterEgressThroughTheFirewalls"));
    }

    #[test]
    fn eks_endpoint_logging_and_node_addresses_follow_the_config() {
        let cluster = |text: &str| render_stacks(&valid_config_from(text), false).unwrap().remove(1);
        // Defaults: the public endpoint for the operator's admin network only, no logging, and
        // public node addresses only because the internet gateway is the nodes' way out.
        let c = cluster(VALID);
        assert_eq!(c.parameters["PublicAccessCidrs"], value("203.0.113.7/32"));
        assert!(c.template_body.contains("        PublicAccessCidrs: !Ref PublicAccessCidrs\n"));
        assert!(!c.template_body.contains("Logging:"));
        assert!(c.template_body.contains("      MapPublicIpOnLaunch: true\n"));
        // With cluster egress through the firewalls: no public node addresses.
        let out = cluster(&VALID.replacen("natgw_subnets", "outbound_via_firewall = true\nnatgw_subnets", 1));
        assert!(
            out.template_body.contains("      MapPublicIpOnLaunch: false\n") && !out.template_body.contains("MapPublicIpOnLaunch: true")
        );
        // Explicit CIDRs and opt-in logs.
        let at = VALID.find("[[clusters]]").unwrap();
        let next = VALID[at..].find("\nsubnets").unwrap() + at;
        let mut text = VALID.to_string();
        text.insert_str(
            next,
            "\nendpoint_public_cidrs = [\"198.51.100.0/24\", \"203.0.113.7/32\"]\ncontrol_plane_logs = [\"api\", \"audit\"]",
        );
        let c = cluster(&text);
        assert_eq!(c.parameters["PublicAccessCidrs"], value("198.51.100.0/24,203.0.113.7/32"));
        assert!(
            c.template_body.contains("          EnabledTypes:\n            - Type: api\n            - Type: audit\n"),
            "{}",
            c.template_body
        );
    }

    #[test]
    fn the_cluster_sync_runs_in_gets_its_access_stack_after_its_nodes() {
        let cfg = valid_config_from(&variant_with(2, 2, "application", false, true, true, true));
        let s = render_stacks(&cfg, false).unwrap();
        let roles: Vec<_> = s.iter().map(|s| (s.role, s.cluster.as_deref())).collect();
        assert_eq!(
            &roles[..5],
            &[
                (StackRole::Firewall, None),
                (StackRole::Cluster, Some("two")),
                (StackRole::Nodes, Some("two")),
                (StackRole::SyncAccess, Some("two")),
                (StackRole::Cluster, Some("three")),
            ]
        );
        assert_eq!(s.iter().filter(|s| s.role == StackRole::SyncAccess).count(), 1, "only the cluster sync runs in");
        let a = &s[3];
        assert_eq!((a.stack_name.as_str(), a.template_file.as_str()), ("demo-two-sync-access", "sync-access-two.yaml"));
        let v = |k: &str| match &a.parameters[k] {
            ParamValue::Value(v) => v.clone(),
            other => panic!("{k}: {other:?}"),
        };
        assert_eq!((v("ClusterName"), v("Namespace"), v("ServiceAccount")), ("two".into(), "pano-eks".into(), "pan-user".into()));
        assert_eq!((v("ClusterName3"), v("ClusterStack3")), ("four".into(), "demo-four-cluster".into()));
        assert_eq!(
            (v("ElbName"), v("FirewallAsgName"), v("FirewallStack")),
            ("demo-exlb".into(), "demo-firewall-PANW-Firewall-ASG".into(), "demo-firewall".into())
        );
        assert_eq!(v("BootstrapBucket"), "demo-panw-bootstrap");
        // Every statement the core decides is in the template, action by action, ARNs as !Sub.
        let policy = pano_eks_core::aws::iam::sync_policy(&sync_scope(&cfg));
        for st in &policy {
            assert!(a.template_body.contains(&format!("              - Sid: {}\n                Effect: Allow\n", st.sid)), "{}", st.sid);
            for action in &st.actions {
                assert!(a.template_body.contains(&format!("                  - {action}\n")), "{action}");
            }
        }
        assert!(a.template_body.contains(
            "                  StringEquals:\n                    elasticloadbalancing:CreateAction:\n                      - \"CreateTargetGroup\"\n                      - \"CreateRule\"\n                      - \"CreateLoadBalancer\"\n                      - \"CreateListener\"\n                    aws:RequestTag/pano-eks:deployment:\n                      - !Sub \"${DeploymentName}\"\n"
        ), "conditions of one operator in one block:\n{}", a.template_body);
        // The Null operator (the extra fronts' delete) is quoted, else YAML reads a null key.
        assert!(
            a.template_body.contains(
                "                  \"Null\":\n                    aws:ResourceTag/pano-eks:front:\n                      - \"false\"\n"
            ),
            "{}",
            a.template_body
        );
        assert!(
            a.template_body.contains("                  - !Sub \"arn:${AWS::Partition}:s3:::${BootstrapBucket}/config/init-cfg.txt\"\n")
        );
        // The association names the service account the in-cluster Deployment runs as.
        let dep = super::super::manifests::SYNC_DEPLOYMENT;
        assert!(dep.contains(&format!("  namespace: {}\n", SYNC_SERVICE_ACCOUNT.0)), "{dep}");
        assert!(dep.contains(&format!("      serviceAccountName: {}\n", SYNC_SERVICE_ACCOUNT.1)), "{dep}");
        // No in-cluster cluster: no access stack; without the front: no load balancer parameters.
        assert!(stacks(2, 2, "application", false).iter().all(|s| s.role != StackRole::SyncAccess));
        let plain = render_stacks(&valid_config_from(&variant_with(2, 2, "network", false, false, true, false)), false).unwrap();
        let a = plain.iter().find(|s| s.role == StackRole::SyncAccess).unwrap();
        assert!(!a.parameters.contains_key("ElbName") && !a.parameters.contains_key("ClusterStack1"));
        // Discovery reads the load balancers (each Service's scheme); nothing else of ELB is there.
        let elb: Vec<&str> = a.template_body.lines().filter(|l| l.contains("elasticloadbalancing:")).map(str::trim).collect();
        assert_eq!(elb, ["- elasticloadbalancing:DescribeLoadBalancers"], "{}", a.template_body);
        assert!(!a.template_body.contains("ec2:ReplaceRoute"));
    }

    #[test]
    fn same_config_same_bytes() {
        let a = stacks(3, 6, "application", true);
        let b = stacks(3, 6, "application", true);
        assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
        let bodies = |s: &[StackSpec]| s.iter().map(|s| s.template_body.clone()).collect::<Vec<_>>();
        assert_eq!(bodies(&a), bodies(&b));
    }

    #[test]
    fn rendering_errors_name_the_template() {
        let mut t = engine().unwrap();
        t.add_raw_template("broken.yaml.tera", "x: {{ nope }}").unwrap();
        let err = render_one(&t, "broken.yaml.tera", &tera::Context::new()).unwrap_err().to_string();
        assert!(err.contains("cfn/broken.yaml.tera") && err.contains("nope"), "{err}");
    }

    /// `$PANO_EKS_VENV/bin/cfn-lint`, else the default venv's; `None` means skip (or fail when
    /// `PANO_EKS_REQUIRE_TOOLS=1`).
    pub(super) fn cfn_lint() -> Option<PathBuf> {
        let venv = std::env::var_os("PANO_EKS_VENV")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/pano-eks/venv")))?;
        let bin = venv.join("bin/cfn-lint");
        if bin.is_file() {
            return Some(bin);
        }
        if std::env::var("PANO_EKS_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("cfn-lint not found at {} and PANO_EKS_REQUIRE_TOOLS=1 (run scripts/setup-env)", bin.display());
        }
        eprintln!("SKIPPED: cfn-lint not found at {}; run scripts/setup-env or set PANO_EKS_VENV", bin.display());
        None
    }

    /// checkov findings that are explained (docs/cfn-lint.md, "checkov"): (check, resource).
    const CHECKOV_EXPLAINED: &[(&str, &str)] = &[
        ("CKV_AWS_2", "AWS::ElasticLoadBalancingV2::Listener.PublicListener"),
        ("CKV_AWS_103", "AWS::ElasticLoadBalancingV2::Listener.PublicListener"),
        ("CKV_AWS_260", "AWS::EC2::SecurityGroup.ElbSecurityGroup"),
        ("CKV_AWS_91", "AWS::ElasticLoadBalancingV2::LoadBalancer.PublicLoadBalancer"),
        ("CKV_AWS_115", "AWS::Lambda::Function.LifecycleFunction"),
        ("CKV_AWS_116", "AWS::Lambda::Function.LifecycleFunction"),
        ("CKV_AWS_117", "AWS::Lambda::Function.LifecycleFunction"),
        ("CKV_AWS_173", "AWS::Lambda::Function.LifecycleFunction"),
        ("CKV_AWS_158", "AWS::Logs::LogGroup.LifecycleLogGroup"),
        ("CKV_AWS_58", "AWS::EKS::Cluster.Cluster"),
    ];

    /// checkov (`$PANO_EKS_VENV/bin/checkov`) over every distinct rendered body: every failed
    /// check is one of [`CHECKOV_EXPLAINED`], and each of those is explained in docs/cfn-lint.md.
    #[test]
    fn checkov_sweep() {
        let Some(lint) = cfn_lint() else { return };
        let checkov = lint.with_file_name("checkov");
        if !checkov.is_file() {
            if std::env::var("PANO_EKS_REQUIRE_TOOLS").as_deref() == Ok("1") {
                panic!("checkov not found at {} and PANO_EKS_REQUIRE_TOOLS=1 (run scripts/setup-env)", checkov.display());
            }
            eprintln!("SKIPPED: checkov not found at {}", checkov.display());
            return;
        }
        let docs = include_str!("../../docs/cfn-lint.md");
        for (id, resource) in CHECKOV_EXPLAINED {
            let logical = resource.rsplit('.').next().unwrap();
            let row = docs.lines().find(|l| l.starts_with("| CKV_") && l.contains(&format!("{id} ")) || l.contains(&format!("{id},")));
            assert!(row.is_some_and(|r| r.contains(logical)), "{id} on {resource} is not explained in docs/cfn-lint.md");
        }
        let dir = tempfile::tempdir().unwrap();
        let mut unique: BTreeMap<String, String> = BTreeMap::new();
        for (variant, stacks) in all_variants() {
            for s in stacks {
                unique.entry(s.template_body).or_insert_with(|| format!("{variant}--{}", s.template_file));
            }
        }
        for (body, name) in &unique {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        let out = std::process::Command::new(&checkov)
            .args(["--framework", "cloudformation", "-o", "json", "--quiet", "--skip-download", "-d"])
            .arg(dir.path())
            .output()
            .expect("running checkov");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let parsed: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("checkov output is not JSON ({e}); stderr:\n{}", String::from_utf8_lossy(&out.stderr)));
        let reports = if parsed.is_array() { parsed.as_array().unwrap().clone() } else { vec![parsed] };
        let (mut passed, mut explained, mut unexplained) = (0u64, BTreeSet::new(), Vec::new());
        for r in &reports {
            passed += r["summary"]["passed"].as_u64().unwrap_or(0);
            for f in r["results"]["failed_checks"].as_array().into_iter().flatten() {
                let id = f["check_id"].as_str().unwrap_or_default().to_string();
                let resource = f["resource"].as_str().unwrap_or_default().to_string();
                if CHECKOV_EXPLAINED.iter().any(|(i, res)| *i == id && *res == resource) {
                    explained.insert((id, resource));
                } else {
                    let file = f["file_path"].as_str().unwrap_or_default().to_string();
                    unexplained.push(format!("{id} {resource} ({file}): {}", f["check_name"].as_str().unwrap_or_default()));
                }
            }
        }
        eprintln!("checkov: {} files, {passed} passed, {} explained failure kinds", unique.len(), explained.len());
        assert!(passed > 100, "checkov checked almost nothing: {stdout}");
        assert!(unexplained.is_empty(), "checkov failures not explained in docs/cfn-lint.md:\n{}", unexplained.join("\n"));
    }

    /// Every rendered variant (new/existing VPC × 2/3 AZs × 2/6 firewalls × ALB/NLB, clusters
    /// with 2/3/4 subnets, SSM or fixed node AMI) linted in one cfn-lint run: 0 errors.
    #[test]
    fn cfn_lint_sweep() {
        let Some(lint) = cfn_lint() else { return };
        let dir = tempfile::tempdir().unwrap();
        // Identical bodies (e.g. a cluster template in every firewall variant) are linted once.
        let mut unique: BTreeMap<String, String> = BTreeMap::new();
        for (variant, stacks) in all_variants() {
            for s in stacks {
                unique.entry(s.template_body).or_insert_with(|| format!("{variant}--{}", s.template_file));
            }
        }
        let mut files = Vec::new();
        for (body, name) in &unique {
            let path = dir.path().join(name);
            std::fs::write(&path, body).unwrap();
            files.push(path);
        }
        files.sort();
        // A canary with a known error proves the run really lints (and reports in this format).
        let canary = dir.path().join("canary-broken.yaml");
        std::fs::write(&canary, "Resources:\n  V:\n    Type: AWS::EC2::VPC\n    Properties:\n      CidrBlok: 10.0.0.0/16\n").unwrap();
        files.push(canary);
        // pano-eks's own rules (tests/cfn-rules): each has a canary that must trip exactly it.
        let rules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cfn-rules");
        let mut rule_canaries: BTreeMap<String, String> = BTreeMap::new();
        for e in std::fs::read_dir(rules.join("canaries")).unwrap() {
            let p = e.unwrap().path();
            let id = p.file_stem().unwrap().to_string_lossy().into_owned();
            let name = format!("rule-canary-{id}.yaml");
            std::fs::copy(&p, dir.path().join(&name)).unwrap();
            files.push(dir.path().join(&name));
            rule_canaries.insert(name, id);
        }
        assert!(rule_canaries.len() >= 7, "{rule_canaries:?}");
        let mut canary_hits: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let out = std::process::Command::new(&lint)
            .args(["-f", "json", "--regions", "us-west-2", "--append-rules"])
            .arg(&rules)
            .arg("--")
            .args(&files)
            .output()
            .expect("running cfn-lint");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let findings: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("cfn-lint output is not JSON ({e}); status {}; stderr:\n{}", out.status, String::from_utf8_lossy(&out.stderr))
        });
        let mut per_file: BTreeMap<String, (usize, usize)> = files
            .iter()
            .filter(|f| !f.ends_with("canary-broken.yaml") && !f.file_name().unwrap().to_string_lossy().starts_with("rule-canary-"))
            .map(|f| (f.file_name().unwrap().to_string_lossy().into_owned(), (0, 0)))
            .collect();
        let mut errors = Vec::new();
        let mut canary_errors = 0;
        for f in &findings {
            let file = PathBuf::from(f["Filename"].as_str().unwrap_or_default());
            let file = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let line = format!(
                "{file}:{}: {} {} {}",
                f["Location"]["Start"]["LineNumber"],
                f["Level"].as_str().unwrap_or_default(),
                f["Rule"]["Id"].as_str().unwrap_or_default(),
                f["Message"].as_str().unwrap_or_default()
            );
            if rule_canaries.contains_key(&file) {
                canary_hits.entry(file).or_default().insert(f["Rule"]["Id"].as_str().unwrap_or_default().to_string());
                continue;
            }
            if file == "canary-broken.yaml" {
                canary_errors += usize::from(f["Level"] == "Error");
                continue;
            }
            let entry = per_file.entry(file).or_default();
            if f["Level"] == "Error" {
                entry.0 += 1;
                errors.push(line);
            } else {
                entry.1 += 1;
                eprintln!("{line}");
            }
        }
        for (file, (e, w)) in &per_file {
            eprintln!("cfn-lint {file}: {e} errors, {w} warnings");
        }
        assert!(canary_errors > 0, "cfn-lint reported nothing for the broken canary: {stdout}");
        for (file, id) in &rule_canaries {
            let hits = canary_hits.get(file).cloned().unwrap_or_default();
            assert!(hits.contains(id), "rule {id} did not fire on its canary {file}: {hits:?}");
            let ours: Vec<&String> = hits.iter().filter(|h| h.starts_with("E9")).collect();
            assert_eq!(ours, vec![id], "canary {file} trips other pano-eks rules too");
        }
        assert!(errors.is_empty(), "cfn-lint errors:\n{}", errors.join("\n"));
    }
}

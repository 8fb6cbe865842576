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
    StackResource { stack: String, logical_id: String },
    /// An output of another stack (available when it is complete).
    StackOutput { stack: String, output: String },
    /// A field of `eks:DescribeCluster` for a cluster (endpoint, CA, service CIDR).
    EksCluster { cluster: String, field: EksField },
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
    #[error("rendering CloudFormation template {template}: {source}")]
    Template { template: String, source: tera::Error },
}

/// All stacks, in the order `up` creates them.
pub fn render_stacks(_cfg: &Config, _existing_vpc: bool) -> Result<Vec<StackSpec>, CfnError> {
    Ok(Vec::new())
}

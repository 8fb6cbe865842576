//! ADAPTER: AWS. Observes and applies; the decisions it needs (what to check, what to upload,
//! create or update a stack, which ENIs may be swept) are pure functions with table tests
//! (stack states, the sweep, Kubernetes-made resources and residue in `pano_eks_core::aws`).
//!
//! - `clients`: one SDK config (ring-only TLS, `AWS_ENDPOINT_URL` honoured, S3 path style on
//!   IP/localhost endpoints) and the service clients built from it;
//! - `preflight`: everything `up` checks before it creates anything;
//! - `asg`: the firewall group's size (restored by `up` after an interrupted `down`);
//! - `bucket`: the bootstrap and lambda buckets and their objects;
//! - `stacks`: the CloudFormation runner (change sets, events, bounded waits, failure reasons);
//! - `eks`: DescribeCluster and the in-process bearer token;
//! - `discovery`: the AWS facts `sync` needs (cluster subnets, firewalls);
//! - `cleanup`: the ENI sweep (PLUG-2253) and the residue report of `down`;
//! - `kube_made`: what Kubernetes made in AWS for a cluster (`down`'s fallback when it cannot reach it);
//! - `teardown`: `down`'s stack step as calls (what the stacks own, delete with ENI sweep, drain
//!   the firewall group); `pano_eks_core::aws` decides the order, the sweep and the residue;
//! - `alb`: one target group and listener rule per protected Service (`sync.manage_alb`;
//!   `pano_eks_core::front::alb` decides);
//! - `nlb`: with an NLB front, one listener and target group per protected Service port
//!   (`pano_eks_core::front::nlb` decides);
//! - `elbv2`: the ELBv2 and autoscaling calls both fronts make;
//! - `outbound`: cluster egress through a firewall (`network.outbound_via_firewall`;
//!   `pano_eks_core::egress` decides);
//! - `front_and_egress`: the AWS side of a converge: when `up`, `sync` and `down` run the front
//!   and egress steps.

pub mod alb;
pub mod alb_shards;
pub mod asg;
pub mod bucket;
pub mod cleanup;
pub mod clients;
pub mod discovery;
pub mod eks;
mod elbv2;
pub mod front_and_egress;
pub mod kube_made;
pub mod kubeconfig;
pub mod nlb;
pub mod outbound;
pub mod preflight;
pub mod progress;
pub mod stacks;
pub mod teardown;

pub use clients::Aws;

use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// One failed AWS call: the operation, the service's error code and message. Requests never
/// carry secrets in what is shown here (no bodies, no credentials).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{op}: {message}")]
pub struct AwsError {
    pub op: String,
    pub code: Option<String>,
    pub message: String,
}

impl AwsError {
    pub fn new(op: impl Into<String>, message: impl Into<String>) -> AwsError {
        AwsError { op: op.into(), code: None, message: message.into() }
    }

    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// Converts any SDK error into an `AwsError` naming the operation.
pub(crate) fn sdk_err<E>(op: &str, e: E) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = e.code().map(str::to_string);
    let message = match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        _ => DisplayErrorContext(&e).to_string(),
    };
    AwsError { op: op.to_string(), code, message }
}

/// The tag every resource of a deployment carries (stacks propagate it). Declared in the core,
/// whose planners decide ownership by it.
pub use pano_eks_core::front::alb::DEPLOYMENT_TAG;

/// Idempotent steps: an error with one of `codes` (already gone, already there) counts as done.
pub(crate) fn already_done<T>(r: Result<T, AwsError>, codes: &[&str]) -> Result<(), AwsError> {
    match r {
        Err(e) if !codes.iter().any(|c| e.is_code(c)) => Err(e),
        _ => Ok(()),
    }
}

//! The AWS decisions: what `up` checks before it creates anything ([`preflight`]), what the
//! deployment's buckets should hold and whether a bucket is ours ([`bucket`]), what a
//! CloudFormation stack's state means and what to do with it ([`stacks`]), what Kubernetes made in AWS for a cluster ([`kube_made`]), and what `down`
//! sweeps, in which order, and what counts as residue ([`teardown`]); what the in-cluster sync may
//! do in AWS, its least-privilege IAM policy ([`iam`]). The adapter (`src/aws`)
//! observes into these types and applies what they decide; it chooses only how to call AWS.

pub mod bucket;
pub mod iam;
pub mod kube_made;
pub mod preflight;
pub mod stacks;
pub mod teardown;

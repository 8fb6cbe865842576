//! Rendering, offline and deterministic, of every artifact `up` deploys.
pub mod cfn;

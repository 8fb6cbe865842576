//! pano-eks as a library: the binary's modules, also used by the integration tests and benchmarks.
//!
//! Map (see ARCHITECTURE.md): `config` (the file), `render` (templates, bootstrap, lambda zip,
//! manifests), `panorama` (the PAN-OS XML API adapter), `sync` (the engine that sequences
//! observe → plan → apply → commit → push), `commands` (one per subcommand). The planning
//! decisions live in the separate, I/O-free crate `pano-eks-core`.

pub mod aws;
pub mod cli;
pub mod commands;
pub mod config;
pub mod kube;
pub mod panorama;
pub mod render;
pub mod secret;
pub mod sync;

/// Exit codes (documented in the README): 0 success, 1 the operation failed, 2 bad usage or
/// configuration (nothing was changed).
pub mod exit {
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
}

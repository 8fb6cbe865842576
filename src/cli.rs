//! The command line: global flags and one subcommand per step of the workflow.

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "pano-eks", version, about = "Secure Kubernetes Services in Amazon EKS with VM-Series firewalls managed by Panorama")]
pub struct Cli {
    /// Configuration file.
    #[arg(long, global = true, env = "PANO_EKS_CONFIG", default_value = "pano-eks.toml")]
    pub config: PathBuf,
    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Format of data written to standard output.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented example configuration and list the values you must supply.
    Init {
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Check the configuration and report every problem at once.
    Validate {
        /// Also check the brownfield keys (as `up --existing-vpc` would).
        #[arg(long)]
        existing_vpc: bool,
    },
    /// Render, offline, everything `up` deploys: CloudFormation templates and parameters,
    /// the bootstrap package, the lambda zip and the Kubernetes manifests.
    Render {
        /// Output folder (created if missing).
        #[arg(long, default_value = "rendered")]
        out: PathBuf,
        /// Render the firewall template for an existing VPC (brownfield).
        #[arg(long)]
        existing_vpc: bool,
    },
    /// Show the object-level diff a sync would apply to Panorama; writes nothing.
    Plan {
        #[command(flatten)]
        source: FactsSource,
        #[command(flatten)]
        conn: PanoramaFlags,
    },
    /// Make Panorama protect exactly the labelled Services: write, commit, push, verify.
    Sync {
        /// One converge, then exit (non-zero if anything failed).
        #[arg(long, required = true)]
        once: bool,
        #[command(flatten)]
        source: FactsSource,
        #[command(flatten)]
        conn: PanoramaFlags,
        /// How writes are sent (default: multi-config on PAN-OS 10+, bulk set/delete before).
        #[arg(long, value_enum, hide = true)]
        write_mode: Option<WriteModeArg>,
    },
    /// Per Service: discovered, protected, pending, in conflict or invalid; per cluster its routes.
    Status {
        #[command(flatten)]
        source: FactsSource,
        #[command(flatten)]
        conn: PanoramaFlags,
    },
}

/// Where the facts (clusters, subnets, Services, firewalls) come from.
#[derive(Debug, clap::Args)]
pub struct FactsSource {
    /// A facts JSON file (see docs/facts.md). Kubernetes and AWS discovery produce the same model.
    #[arg(long, required = true)]
    pub facts: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct PanoramaFlags {
    /// Do not verify Panorama's TLS certificate (never in production).
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WriteModeArg {
    MultiConfig,
    Bulk,
    OnePerCall,
}

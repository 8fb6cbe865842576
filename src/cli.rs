//! The command line: global flags and one subcommand per step of the workflow.

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "pano-eks", version = concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("PANO_EKS_GIT_REV"), ")"), about = "Secure Kubernetes Services in Amazon EKS with VM-Series firewalls managed by Panorama")]
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
        #[arg(long, conflicts_with = "watch", required_unless_present = "watch")]
        once: bool,
        /// Keep converging on every Service change (debounced) and every `sync.resync`.
        #[arg(long)]
        watch: bool,
        /// With --watch: only the holder of a Lease writes (several replicas, in-cluster mode).
        #[arg(long, requires = "watch")]
        leader_elect: bool,
        #[command(flatten)]
        source: FactsSource,
        #[command(flatten)]
        conn: PanoramaFlags,
        /// How writes are sent (default: multi-config on PAN-OS 10+, falling back to one entry per
        /// call where Panorama refuses it; one per call before 10.0). Every write names a full entry xpath.
        #[arg(long, value_enum, hide = true)]
        write_mode: Option<WriteModeArg>,
    },
    /// Deploy firewalls and clusters (CloudFormation), set up cluster access and pan-user, first sync.
    /// Re-runnable: finished work is kept, changed templates become updates.
    Up {
        /// Deploy into the VPC named by network.existing_vpc_id / existing_igw_id.
        #[arg(long)]
        existing_vpc: bool,
        /// Answer yes to every question (deleting a stack left in ROLLBACK_COMPLETE).
        #[arg(long)]
        yes: bool,
        /// Pre-flight, then show the change sets and the Panorama plan; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// After the first sync, keep syncing (hand-off to `sync --watch`).
        #[arg(long)]
        watch: bool,
        /// Folder for the pan-user credential files (default: .pano-eks/<name>/ beside the config).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Kubeconfig to merge the operator contexts into (default: $KUBECONFIG or ~/.kube/config).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        #[command(flatten)]
        conn: PanoramaFlags,
    },
    /// Remove everything `up` made (Panorama objects, load balancers, stacks, buckets) and report
    /// anything still tagged with the deployment. Safe to re-run.
    Down {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Keep the bootstrap and lambda buckets.
        #[arg(long)]
        keep_bucket: bool,
        #[command(flatten)]
        conn: PanoramaFlags,
    },
    /// Print the shell completion script for SHELL (e.g. `pano-eks completions bash > /etc/bash_completion.d/pano-eks`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff; e.g. `pano-eks man > /usr/local/share/man/man1/pano-eks.1`).
    Man,
    /// Print an EKS bearer token as a kubectl ExecCredential (used by the kubeconfig `up` writes).
    Token {
        /// EKS cluster name.
        #[arg(long)]
        cluster: String,
        /// AWS region (default: the config file's).
        #[arg(long)]
        region: Option<String>,
    },
    /// Apply the pan-user identity to a cluster and export its credential JSON and kubeconfig.
    Credentials {
        /// The `[[clusters]]` name.
        #[arg(long)]
        cluster: String,
        /// Output folder (default: .pano-eks/<name>/<cluster>/ beside the config).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Panorama set-up steps that are not part of a sync.
    Panorama {
        #[command(subcommand)]
        command: PanoramaCommand,
    },
    /// Ask every firewall of the device group, through Panorama, what it would do with the
    /// protected traffic (in sync, inbound NAT and security, FQDN, routes, outbound NAT).
    /// Exit 1 if any check fails.
    Verify {
        #[command(flatten)]
        source: FactsSource,
        #[command(flatten)]
        conn: PanoramaFlags,
        /// Only this cluster's Services and subnets.
        #[arg(long)]
        cluster: Option<String>,
        /// Only this Service (`NAMESPACE/NAME`).
        #[arg(long)]
        service: Option<String>,
    },
    /// Per Service: discovered, protected, pending, in conflict or invalid; per cluster its routes;
    /// and a live, read-only verification on every firewall (`verify`'s checks) unless --no-verify.
    Status {
        #[command(flatten)]
        source: FactsSource,
        #[command(flatten)]
        conn: PanoramaFlags,
        /// Skip the verification (no op calls to the firewalls through Panorama).
        #[arg(long)]
        no_verify: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PanoramaCommand {
    /// Create the template, stack, device group, DNS, interfaces, zones, virtual router and vsys1
    /// imports the firewalls need (only what is missing), then one partial commit.
    Prepare {
        /// Also add the seed's `allow-all` security pre-rule (first connectivity tests only).
        #[arg(long)]
        allow_all: bool,
        /// Change existing settings that differ (interface in another zone, router without ECMP…)
        /// instead of only reporting them.
        #[arg(long)]
        adopt: bool,
        /// Show what would be created or changed; write nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        conn: PanoramaFlags,
    },
}

/// Where the facts (clusters, subnets, Services, firewalls) come from.
#[derive(Debug, clap::Args)]
pub struct FactsSource {
    /// A facts JSON file (docs/facts.md) instead of AWS discovery. With --watch only its subnets
    /// and firewalls are used: Services come from the Kubernetes watches.
    #[arg(long)]
    pub facts: Option<PathBuf>,
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
    OnePerCall,
}

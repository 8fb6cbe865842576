//! `pano-eks down`: removes everything `up` made and proves it. Panorama objects first (the sync
//! engine with no clusters and no firewalls), then the Services' load balancers, then the node,
//! cluster and firewall stacks — sweeping detached ENIs of our subnets and security groups when
//! a delete fails on them (PLUG-2253) — then the buckets, and a residue report of everything
//! still tagged with the deployment. Idempotent: a second run finds nothing and reports clean.
//!
//! `run` reads as the step list it prints; the order of the stacks, the sweep and the residue
//! are decided in `pano_eks_core::aws::teardown`, the calls live in `crate::aws::teardown`.

use std::time::Duration;

use pano_eks_core::Facts;
use pano_eks_core::aws::teardown::{ClusterStacks, Leftover, deletion_order};

use super::shared::{cluster_access, confirm, connect_panorama, runtime};
use super::{CmdResult, Failure, load_config};
use crate::aws::progress::Progress;
use crate::aws::stacks::{AwsCfn, Runner, Timing};
use crate::aws::{Aws, bucket, cleanup, teardown};
use crate::cli::{Cli, OutputFormat, PanoramaFlags};
use crate::config::{Config, LoadOptions, LoadedConfig};

#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    pub yes: bool,
    pub keep_bucket: bool,
}

/// How long `down` waits for load balancers of deleted Services, and for firewalls to go.
const LB_WAIT: Duration = Duration::from_secs(600);

pub fn run(cli: &Cli, conn: &PanoramaFlags, opts: &DownOptions) -> CmdResult {
    let loaded = load_config(cli, LoadOptions::runtime())?;
    let cfg = &loaded.config;
    let stack_names = stack_order(cfg);
    let buckets = [cfg.bootstrap_bucket(), cfg.lambda_bucket()];
    announce(cfg, &stack_names, &buckets, opts.keep_bucket);
    if !confirm(&format!("Delete deployment {} and everything in it?", cfg.name), opts.yes)? {
        return Err(Failure::failed("stopped: nothing deleted"));
    }
    let progress = Progress::auto();
    runtime()?.block_on(async {
        let aws = Aws::connect(&cfg.region).await;
        let cfn = AwsCfn { client: &aws.cfn };
        let runner = Runner::new(&cfn, Timing { operation: Duration::from_secs(30 * 60), ..Timing::default() });
        let mut errors: Vec<String> = Vec::new();
        // What the stacks own, read before anything is deleted (needed for the ENI sweep).
        let scope = teardown::sweep_scope(&cfn, &stack_names, cfg.network.existing_vpc_id.as_deref()).await;

        progress.line("1. Panorama");
        errors.extend(remove_panorama_objects(&loaded, conn, &progress).await);
        progress.line("2. LoadBalancer Services");
        for c in &cfg.clusters {
            errors.extend(remove_load_balancer_services(&aws, &loaded, c, &progress).await);
        }
        errors.extend(remove_front_and_egress(&aws, cfg, &progress).await);
        progress.line("3. stacks");
        errors.extend(
            teardown::delete_stacks(&aws, &runner, &stack_names, &cfg.firewall_stack(), &cfg.firewall_asg(), &scope, &progress).await,
        );
        if !opts.keep_bucket {
            progress.line("4. buckets");
            errors.extend(delete_buckets(&aws, &buckets, &progress).await);
        }
        progress.line("5. residue");
        let check_buckets: Vec<String> = if opts.keep_bucket { Vec::new() } else { buckets.to_vec() };
        let cluster_names: Vec<String> = cfg.clusters.iter().map(|c| c.name.clone()).collect();
        let leftovers = cleanup::residue(&aws, &cfg.name, &stack_names, &check_buckets, &cluster_names)
            .await
            .map_err(|e| Failure::failed(format!("residue report: {e}")))?;
        report(cli, cfg, &leftovers, &errors)
    })
}

/// Every stack of the deployment, in the order `down` deletes them.
fn stack_order(cfg: &Config) -> Vec<String> {
    let clusters: Vec<ClusterStacks> = cfg
        .clusters
        .iter()
        .map(|c| ClusterStacks {
            access: c.in_cluster.then(|| cfg.sync_access_stack(&c.name)),
            nodes: cfg.node_stack(&c.name),
            cluster: cfg.cluster_stack(&c.name),
        })
        .collect();
    deletion_order(&clusters, &cfg.firewall_stack())
}

/// The step list, before the confirmation.
fn announce(cfg: &Config, stack_names: &[String], buckets: &[String], keep_bucket: bool) {
    eprintln!("pano-eks down: deployment {} in {}", cfg.name, cfg.region);
    eprintln!("  1. Panorama: remove this deployment's NAT rules, objects and routes (commit, push)");
    eprintln!(
        "  2. delete Services of type LoadBalancer in {} (cluster unreachable: the load balancers and security groups Kubernetes tagged for it, from AWS); this deployment's ALB rules and target groups; cluster egress back to the internet gateway, its EIP released",
        cfg.clusters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
    );
    eprintln!("  3. delete stacks {}", stack_names.join(", "));
    eprintln!(
        "  4. {}",
        if keep_bucket { "keep the buckets".to_string() } else { format!("empty and delete buckets {}", buckets.join(", ")) }
    );
    eprintln!("  5. report anything still tagged pano-eks:deployment={}", cfg.name);
}

/// 1. This deployment's Panorama objects (the engine converging to no facts), then what
/// `panorama prepare` created (recorded), and nothing else.
async fn remove_panorama_objects(loaded: &LoadedConfig, conn: &PanoramaFlags, progress: &Progress) -> Vec<String> {
    let engine = match connect_panorama(loaded, conn).await {
        Ok(engine) => engine,
        Err(e) => return vec![format!("Panorama clean-up: {e}")],
    };
    let r = match engine.converge(&Facts::default()).await {
        Ok(r) => r,
        Err(e) => return vec![format!("Panorama clean-up: {e}")],
    };
    let (_, _, d) = r.plan.counts();
    progress.line(format!(
        "   {d} object(s) removed; {}",
        r.commit_job.map(|j| format!("committed (job {j}) and pushed")).unwrap_or_else(|| "nothing to commit".into())
    ));
    match super::prepare::remove(&engine, loaded).await {
        Ok(lines) => {
            lines.iter().for_each(|l| progress.line(format!("   {l}")));
            Vec::new()
        }
        Err(e) => vec![format!("Panorama prerequisites: {e}")],
    }
}

/// 2. A cluster's load balancer Services (their NLBs and ENIs would block the node stack). When
/// the cluster cannot be reached (or is gone), what Kubernetes made for it is found by its AWS
/// tags instead and deleted from the AWS side.
async fn remove_load_balancer_services(aws: &Aws, loaded: &LoadedConfig, c: &crate::config::Cluster, progress: &Progress) -> Vec<String> {
    if delete_services_through_kubernetes(aws, loaded, c, progress).await {
        return Vec::new();
    }
    progress.line(format!(
        "   cluster {}: looking for what Kubernetes made for it in AWS (load balancers, target groups, security groups by tag)",
        c.name
    ));
    match crate::aws::kube_made::remove(aws, &c.name, LB_WAIT, Duration::from_secs(5)).await {
        Ok(r) => {
            if r.lines.is_empty() && r.errors.is_empty() {
                progress.line("   nothing found");
            }
            r.lines.iter().for_each(|l| progress.line(format!("   {l}")));
            r.errors.into_iter().map(|e| format!("cluster {}: {e}", c.name)).collect()
        }
        Err(e) => vec![format!("cluster {}: Kubernetes-made AWS resources: {e}", c.name)],
    }
}

/// Deletes the cluster's LoadBalancer Services through its API; false when the cluster does not
/// exist, cannot be reached or refused (the AWS-side fallback then runs).
async fn delete_services_through_kubernetes(aws: &Aws, loaded: &LoadedConfig, c: &crate::config::Cluster, progress: &Progress) -> bool {
    let access = match cluster_access(aws, loaded, c).await {
        Ok(Some((access, _))) => access,
        Ok(None) => {
            progress.line(format!("   cluster {}: does not exist", c.name));
            return false;
        }
        Err(e) => {
            progress.line(format!("   cluster {}: cannot be reached ({e})", c.name));
            return false;
        }
    };
    let r = async {
        let client = crate::kube::client(&access).await?;
        crate::kube::delete_load_balancer_services(&client, LB_WAIT).await
    }
    .await;
    match r {
        Ok(gone) => {
            progress.line(format!(
                "   cluster {}: {} Service(s) deleted{}",
                c.name,
                gone.len(),
                if gone.is_empty() { String::new() } else { format!(": {}", gone.join(", ")) }
            ));
            true
        }
        Err(e) => {
            progress.line(format!("   cluster {}: cannot delete its LoadBalancer Services ({e})", c.name));
            false
        }
    }
}

/// What `sync.manage_alb` and `network.outbound_via_firewall` made (whatever the config says
/// now): our rules and target groups (the listener's default restored), the cluster default
/// routes back on the internet gateway, our EIP released (a mapped EIP would keep the IGW from
/// detaching).
async fn remove_front_and_egress(aws: &Aws, cfg: &Config, progress: &Progress) -> Vec<String> {
    match crate::aws::front_and_egress::remove_all(aws, cfg).await {
        Ok(done) => {
            for d in done {
                progress.line(format!("   {d}"));
            }
            Vec::new()
        }
        Err(errs) => errs,
    }
}

/// 4. Empties and deletes the buckets.
async fn delete_buckets(aws: &Aws, buckets: &[String], progress: &Progress) -> Vec<String> {
    let mut errors = Vec::new();
    for b in buckets {
        match bucket::delete(&aws.s3, b).await {
            Ok(true) => progress.line(format!("   {b}: deleted")),
            Ok(false) => progress.line(format!("   {b}: does not exist")),
            Err(e) => errors.push(format!("bucket {b}: {e}")),
        }
    }
    errors
}

/// 5. The residue report; `down` fails when anything remains or any step failed.
fn report(cli: &Cli, cfg: &Config, leftovers: &[Leftover], errors: &[String]) -> CmdResult {
    match cli.output {
        OutputFormat::Json => println!("{}", serde_json::json!({ "residue": leftovers, "errors": errors })),
        OutputFormat::Text => {
            if leftovers.is_empty() {
                println!("down: clean: nothing tagged pano-eks:deployment={} remains", cfg.name);
            } else {
                println!("down: {} resource(s) remain:", leftovers.len());
                for l in leftovers {
                    println!("  {} {}", l.kind, l.id);
                }
            }
        }
    }
    if !errors.is_empty() || !leftovers.is_empty() {
        return Err(Failure::failed(format!(
            "down did not finish cleanly{}; re-run `pano-eks down` after fixing the cause",
            if errors.is_empty() { String::new() } else { format!(":\n  - {}", errors.join("\n  - ")) }
        )));
    }
    Ok(())
}

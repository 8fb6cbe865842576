//! `pano-eks down`: removes everything `up` made and proves it. Panorama objects first (the sync
//! engine with no clusters and no firewalls), then the Services' load balancers, then the node,
//! cluster and firewall stacks — sweeping detached ENIs of our subnets and security groups when
//! a delete fails on them (PLUG-2253) — then the buckets, and a residue report of everything
//! still tagged with the deployment. Idempotent: a second run finds nothing and reports clean.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use pano_eks_core::Facts;

use super::shared::{cluster_access, confirm, connect_panorama, runtime};
use super::{CmdResult, Failure, load_config};
use crate::aws::progress::Progress;
use crate::aws::stacks::{AwsCfn, CfnApi, DeleteOutcome, Runner, Timing};
use crate::aws::{Aws, bucket, cleanup};
use crate::cli::{Cli, OutputFormat, PanoramaFlags};
use crate::config::LoadOptions;

#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    pub yes: bool,
    pub keep_bucket: bool,
}

/// How long `down` waits for load balancers of deleted Services, and for firewalls to go.
const LB_WAIT: Duration = Duration::from_secs(600);
const ASG_DRAIN: Duration = Duration::from_secs(900);
/// Delete attempts per stack (each failed one is followed by an ENI sweep).
const DELETE_ATTEMPTS: usize = 3;

pub fn run(cli: &Cli, conn: &PanoramaFlags, opts: &DownOptions) -> CmdResult {
    let loaded = load_config(cli, LoadOptions { existing_vpc: false })?;
    let cfg = &loaded.config;
    let mut stack_names = Vec::new();
    for c in &cfg.clusters {
        stack_names.push(cfg.node_stack(&c.name));
        stack_names.push(cfg.cluster_stack(&c.name));
    }
    stack_names.push(cfg.firewall_stack());
    let buckets = [cfg.bootstrap_bucket(), cfg.lambda_bucket()];
    eprintln!("pano-eks down: deployment {} in {}", cfg.name, cfg.region);
    eprintln!("  1. Panorama: remove this deployment's NAT rules, objects and routes (commit, push)");
    eprintln!(
        "  2. delete Services of type LoadBalancer in {} (cluster unreachable: the load balancers and security groups Kubernetes tagged for it, from AWS); this deployment's ALB rules and target groups; cluster egress back to the internet gateway, its EIP released",
        cfg.clusters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
    );
    eprintln!("  3. delete stacks {}", stack_names.join(", "));
    eprintln!(
        "  4. {}",
        if opts.keep_bucket { "keep the buckets".to_string() } else { format!("empty and delete buckets {}", buckets.join(", ")) }
    );
    eprintln!("  5. report anything still tagged pano-eks:deployment={}", cfg.name);
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
        let mut vpc_id = None;
        let mut groups = BTreeSet::new();
        let mut subnets = BTreeSet::new();
        for s in &stack_names {
            if let Ok(Some(st)) = cfn.describe(s).await {
                if vpc_id.is_none() {
                    vpc_id = st.outputs.get("VpcId").cloned();
                }
            }
            for r in cfn.resources(s).await.unwrap_or_default() {
                match (r.resource_type.as_str(), r.physical_id) {
                    ("AWS::EC2::SecurityGroup", Some(p)) => {
                        groups.insert(p);
                    }
                    ("AWS::EC2::Subnet", Some(p)) => {
                        subnets.insert(p);
                    }
                    ("AWS::EC2::VPC", Some(p)) if vpc_id.is_none() => vpc_id = Some(p),
                    _ => {}
                }
            }
        }
        if vpc_id.is_none() {
            vpc_id = cfg.network.existing_vpc_id.clone();
        }

        // 1. Panorama.
        progress.line("1. Panorama");
        match connect_panorama(&loaded, conn).await {
            Ok(engine) => match engine.converge(&Facts::default()).await {
                Ok(r) => {
                    let (_, _, d) = r.plan.counts();
                    progress.line(format!(
                        "   {d} object(s) removed; {}",
                        r.commit_job.map(|j| format!("committed (job {j}) and pushed")).unwrap_or_else(|| "nothing to commit".into())
                    ));
                    // Then what `panorama prepare` created (recorded), and nothing else.
                    match super::prepare::remove(&engine, &loaded).await {
                        Ok(lines) => lines.iter().for_each(|l| progress.line(format!("   {l}"))),
                        Err(e) => errors.push(format!("Panorama prerequisites: {e}")),
                    }
                }
                Err(e) => errors.push(format!("Panorama clean-up: {e}")),
            },
            Err(e) => errors.push(format!("Panorama clean-up: {e}")),
        }

        // 2. Load balancer Services (their NLBs and ENIs would block the node stack). When the
        // cluster cannot be reached (or is gone), what Kubernetes made for it is found by its AWS
        // tags instead and deleted from the AWS side.
        progress.line("2. LoadBalancer Services");
        for c in &cfg.clusters {
            let through_kubernetes = match cluster_access(&aws, &loaded, c).await {
                Ok(None) => {
                    progress.line(format!("   cluster {}: does not exist", c.name));
                    false
                }
                Ok(Some((access, _))) => {
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
                Err(e) => {
                    progress.line(format!("   cluster {}: cannot be reached ({e})", c.name));
                    false
                }
            };
            if !through_kubernetes {
                progress.line(format!(
                    "   cluster {}: looking for what Kubernetes made for it in AWS (load balancers, target groups, security groups by tag)",
                    c.name
                ));
                match crate::aws::kube_made::remove(&aws, &c.name, LB_WAIT, Duration::from_secs(5)).await {
                    Ok(r) => {
                        if r.lines.is_empty() && r.errors.is_empty() {
                            progress.line("   nothing found");
                        }
                        r.lines.iter().for_each(|l| progress.line(format!("   {l}")));
                        errors.extend(r.errors.into_iter().map(|e| format!("cluster {}: {e}", c.name)));
                    }
                    Err(e) => errors.push(format!("cluster {}: Kubernetes-made AWS resources: {e}", c.name)),
                }
            }
        }

        // What `sync.manage_alb` and `network.outbound_via_firewall` made (whatever the config
        // says now): our rules and target groups (the listener's default restored), the cluster
        // default routes back on the internet gateway, our EIP released (a mapped EIP would
        // keep the IGW from detaching).
        match crate::aws::front_and_egress::remove_all(&aws, cfg).await {
            Ok(done) => {
                for d in done {
                    progress.line(format!("   {d}"));
                }
            }
            Err(errs) => errors.extend(errs),
        }

        // 3. Stacks: nodes, clusters, then the firewall stack once its instances are gone.
        progress.line("3. stacks");
        let sweep = |vpc: Option<String>| {
            let (aws, groups, subnets) = (&aws, &groups, &subnets);
            async move {
                let Some(vpc) = vpc else { return Ok(Vec::new()) };
                cleanup::sweep_enis(aws, &vpc, groups, subnets).await
            }
        };
        for c in &cfg.clusters {
            for s in [cfg.node_stack(&c.name), cfg.cluster_stack(&c.name)] {
                if let Err(e) = delete_with_sweep(&runner, &s, &progress, || sweep(vpc_id.clone())).await {
                    errors.push(e);
                }
            }
        }
        let fw = cfg.firewall_stack();
        if cfn.describe(&fw).await.ok().flatten().is_some() {
            if let Err(e) = drain_asg(&aws, &cfg.firewall_asg(), &progress).await {
                errors.push(e);
            }
            if let Ok(ids) = sweep(vpc_id.clone()).await {
                if !ids.is_empty() {
                    progress.line(format!("   swept {} detached ENI(s): {}", ids.len(), ids.join(", ")));
                }
            }
        }
        if let Err(e) = delete_with_sweep(&runner, &fw, &progress, || sweep(vpc_id.clone())).await {
            errors.push(e);
        }

        // 4. Buckets.
        if !opts.keep_bucket {
            progress.line("4. buckets");
            for b in &buckets {
                match bucket::delete(&aws.s3, b).await {
                    Ok(true) => progress.line(format!("   {b}: deleted")),
                    Ok(false) => progress.line(format!("   {b}: does not exist")),
                    Err(e) => errors.push(format!("bucket {b}: {e}")),
                }
            }
        }

        // 5. Residue.
        progress.line("5. residue");
        let check_buckets: Vec<String> = if opts.keep_bucket { Vec::new() } else { buckets.to_vec() };
        let cluster_names: Vec<String> = cfg.clusters.iter().map(|c| c.name.clone()).collect();
        let leftovers = cleanup::residue(&aws, &cfg.name, &stack_names, &check_buckets, &cluster_names)
            .await
            .map_err(|e| Failure::failed(format!("residue report: {e}")))?;
        match cli.output {
            OutputFormat::Json => println!("{}", serde_json::json!({ "residue": leftovers, "errors": errors })),
            OutputFormat::Text => {
                if leftovers.is_empty() {
                    println!("down: clean: nothing tagged pano-eks:deployment={} remains", cfg.name);
                } else {
                    println!("down: {} resource(s) remain:", leftovers.len());
                    for l in &leftovers {
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
    })
}

/// Deletes a stack; on DELETE_FAILED (DependencyViolation from leftover ENIs) sweeps the
/// detached ENIs of our subnets and security groups and tries again.
async fn delete_with_sweep<F, Fut>(runner: &Runner<'_, AwsCfn<'_>>, stack: &str, progress: &Progress, sweep: F) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>, crate::aws::AwsError>>,
{
    if runner.api.describe(stack).await.map_err(|e| e.to_string())?.is_none() {
        progress.line(format!("   {stack}: does not exist"));
        return Ok(());
    }
    let mut task = progress.task(stack);
    for attempt in 1..=DELETE_ATTEMPTS {
        match runner.delete(stack, &mut task).await.map_err(|e| e.to_string())? {
            DeleteOutcome::Deleted => {
                task.finish("deleted");
                return Ok(());
            }
            DeleteOutcome::Failed(reasons) => {
                task.event(format!("delete failed (attempt {attempt}): {}", reasons.join("; ")));
                let swept = sweep().await.map_err(|e| e.to_string())?;
                task.event(format!(
                    "swept {} detached ENI(s){}",
                    swept.len(),
                    if swept.is_empty() { String::new() } else { format!(": {}", swept.join(", ")) }
                ));
                if attempt == DELETE_ATTEMPTS {
                    task.finish("FAILED");
                    return Err(format!("stack {stack}: delete failed {DELETE_ATTEMPTS} times: {}", reasons.join("; ")));
                }
            }
        }
    }
    unreachable!("the loop returns")
}

/// Scales the firewall group to zero and waits (bounded) until its instances are gone, so the
/// lifecycle lambda removes their extra ENIs before the stack deletes subnets and groups.
async fn drain_asg(aws: &Aws, asg: &str, progress: &Progress) -> Result<(), String> {
    let r = aws
        .asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(asg)
        .send()
        .await
        .map_err(|e| format!("autoscaling:DescribeAutoScalingGroups: {e}"))?;
    if r.auto_scaling_groups().is_empty() {
        return Ok(());
    }
    aws.asg
        .update_auto_scaling_group()
        .auto_scaling_group_name(asg)
        .min_size(0)
        .desired_capacity(0)
        .send()
        .await
        .map_err(|e| format!("autoscaling:UpdateAutoScalingGroup {asg}: {e}"))?;
    let mut task = progress.task(asg);
    let start = Instant::now();
    loop {
        let r = aws
            .asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(asg)
            .send()
            .await
            .map_err(|e| format!("autoscaling:DescribeAutoScalingGroups: {e}"))?;
        let n: usize = r.auto_scaling_groups().iter().map(|g| g.instances().len()).sum();
        if n == 0 {
            task.finish("no firewall instances left");
            return Ok(());
        }
        if start.elapsed() > ASG_DRAIN {
            task.finish("still has instances");
            return Err(format!("{asg}: {n} instance(s) still there after {ASG_DRAIN:?}"));
        }
        task.heartbeat(&format!("terminating {n} firewall instance(s)"));
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

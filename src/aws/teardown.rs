//! The AWS side of `down`'s stack step, as a sequence of calls: read what the stacks own (before
//! anything is deleted), delete each stack in the order `pano_eks_core::aws::teardown` decides —
//! sweeping detached ENIs of our subnets and security groups when a delete fails on them
//! (PLUG-2253) — and drain the firewall group first so its lifecycle lambda removes the
//! instances' extra ENIs. Retries and bounded waits only; no decisions.

use std::time::{Duration, Instant};

use pano_eks_core::aws::teardown::SweepScope;

use super::progress::Progress;
use super::stacks::{AwsCfn, CfnApi, DeleteOutcome, Runner};
use super::{Aws, AwsError, cleanup};

/// How long the firewall group may take to terminate its instances.
const ASG_DRAIN: Duration = Duration::from_secs(900);
/// Delete attempts per stack (each failed one is followed by an ENI sweep).
const DELETE_ATTEMPTS: usize = 3;

/// What the stacks own, read from CloudFormation (a stack that cannot be read owns nothing).
pub async fn sweep_scope(cfn: &AwsCfn<'_>, stacks: &[String], existing_vpc: Option<&str>) -> SweepScope {
    let mut observed = Vec::new();
    for s in stacks {
        let vpc = match cfn.describe(s).await {
            Ok(Some(st)) => st.outputs.get("VpcId").cloned(),
            _ => None,
        };
        observed.push((vpc, cfn.resources(s).await.unwrap_or_default()));
    }
    SweepScope::from_stacks(observed.iter().map(|(v, r)| (v.as_deref(), r.as_slice())), existing_vpc)
}

/// Deletes the sweepable ENIs of the scope's VPC (none without a VPC); their ids.
pub async fn sweep(aws: &Aws, scope: &SweepScope) -> Result<Vec<String>, AwsError> {
    let Some(vpc) = &scope.vpc_id else { return Ok(Vec::new()) };
    cleanup::sweep_enis(aws, vpc, &scope.groups, &scope.subnets).await
}

/// Deletes the cluster stacks in `order`, then drains the firewall group and deletes the
/// firewall stack; every failure is kept and the next stack still tried.
pub async fn delete_stacks(
    aws: &Aws,
    runner: &Runner<'_, AwsCfn<'_>>,
    order: &[String],
    firewall: &str,
    asg: &str,
    scope: &SweepScope,
    progress: &Progress,
) -> Vec<String> {
    let mut errors = Vec::new();
    for s in order.iter().filter(|s| s.as_str() != firewall) {
        if let Err(e) = delete_with_sweep(aws, runner, s, scope, progress).await {
            errors.push(e);
        }
    }
    if runner.api.describe(firewall).await.ok().flatten().is_some() {
        if let Err(e) = drain_asg(aws, asg, progress).await {
            errors.push(e);
        }
        if let Ok(ids) = sweep(aws, scope).await {
            if !ids.is_empty() {
                progress.line(format!("   swept {} detached ENI(s): {}", ids.len(), ids.join(", ")));
            }
        }
    }
    if let Err(e) = delete_with_sweep(aws, runner, firewall, scope, progress).await {
        errors.push(e);
    }
    errors
}

/// Deletes a stack; on DELETE_FAILED (DependencyViolation from leftover ENIs) sweeps the
/// detached ENIs of our subnets and security groups and tries again.
pub async fn delete_with_sweep(
    aws: &Aws,
    runner: &Runner<'_, AwsCfn<'_>>,
    stack: &str,
    scope: &SweepScope,
    progress: &Progress,
) -> Result<(), String> {
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
                let swept = sweep(aws, scope).await.map_err(|e| e.to_string())?;
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

async fn describe_group(
    aws: &Aws,
    asg: &str,
) -> Result<aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput, String> {
    aws.asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(asg)
        .send()
        .await
        .map_err(|e| format!("autoscaling:DescribeAutoScalingGroups: {e}"))
}

/// Scales the firewall group to zero and waits (bounded) until its instances are gone, so the
/// lifecycle lambda removes their extra ENIs before the stack deletes subnets and groups.
pub async fn drain_asg(aws: &Aws, asg: &str, progress: &Progress) -> Result<(), String> {
    let r = describe_group(aws, asg).await?;
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
        let r = describe_group(aws, asg).await?;
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

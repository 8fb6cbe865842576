//! The ELBv2 and autoscaling calls both load-balancer fronts make (`alb` for an ALB, `nlb` for an
//! NLB): reading tags in batches, a VPC's target groups (paginated), the firewall ASG's
//! attachments, forward actions; creating, attaching, detaching and deleting target groups,
//! pointing a listener's default action; the firewall stack's outputs. How to call, never what:
//! the decisions are in `pano_eks_core::front::alb` and `pano_eks_core::front::nlb`.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_elasticloadbalancingv2::types as elb;

use super::{Aws, AwsError, sdk_err};

/// DescribeTags takes at most 20 resources a call.
const TAGS_PER_CALL: usize = 20;

pub(crate) fn tag(k: &str, v: &str) -> elb::Tag {
    elb::Tag::builder().key(k).value(v).build()
}

pub(crate) fn forward(arn: &str) -> elb::Action {
    elb::Action::builder().r#type(elb::ActionTypeEnum::Forward).target_group_arn(arn).build()
}

/// The target groups forward actions send to (one target group or a forward config), sorted.
pub(crate) fn forwards(actions: &[elb::Action]) -> Vec<String> {
    let mut out = Vec::new();
    for a in actions {
        if a.r#type() != Some(&elb::ActionTypeEnum::Forward) {
            continue;
        }
        if let Some(t) = a.target_group_arn() {
            out.push(t.to_string());
        } else if let Some(fc) = a.forward_config() {
            out.extend(fc.target_groups().iter().filter_map(|t| t.target_group_arn().map(str::to_string)));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Tags by resource ARN.
pub(crate) async fn read_tags(aws: &Aws, arns: &[String]) -> Result<BTreeMap<String, BTreeMap<String, String>>, AwsError> {
    let mut out = BTreeMap::new();
    for chunk in arns.chunks(TAGS_PER_CALL) {
        let r =
            aws.elbv2.describe_tags().set_resource_arns(Some(chunk.to_vec())).send().await.map_err(|e| sdk_err("elbv2:DescribeTags", e))?;
        for d in r.tag_descriptions() {
            let tags = d.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect();
            out.insert(d.resource_arn().unwrap_or_default().to_string(), tags);
        }
    }
    Ok(out)
}

/// Every target group of the VPC, as ELBv2 describes them (all pages).
pub(crate) async fn vpc_target_groups(aws: &Aws, vpc_id: &str) -> Result<Vec<elb::TargetGroup>, AwsError> {
    let mut out = Vec::new();
    let mut marker = None;
    loop {
        let r = aws
            .elbv2
            .describe_target_groups()
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| sdk_err("elbv2:DescribeTargetGroups", e))?;
        out.extend(r.target_groups().iter().filter(|t| t.vpc_id() == Some(vpc_id)).cloned());
        match r.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

/// A target group's port as a `u16` (0 when absent).
pub(crate) fn port(p: Option<i32>) -> u16 {
    p.and_then(|p| u16::try_from(p).ok()).unwrap_or(0)
}

/// The target group ARNs attached to the ASG (not being removed). An ASG already gone (a
/// half-deleted firewall stack) reads as none, so `down` can still remove our target groups.
pub(crate) async fn asg_target_groups(aws: &Aws, asg_name: &str) -> Result<BTreeSet<String>, AwsError> {
    let attached = match aws
        .asg
        .describe_load_balancer_target_groups()
        .auto_scaling_group_name(asg_name)
        .send()
        .await
        .map_err(|e| sdk_err(&format!("autoscaling:DescribeLoadBalancerTargetGroups {asg_name}"), e))
    {
        Ok(r) => r.load_balancer_target_groups().to_vec(),
        Err(e) if e.is_code("ValidationError") && e.message.to_ascii_lowercase().contains("not found") => Vec::new(),
        Err(e) => return Err(e),
    };
    Ok(attached
        .iter()
        .filter(|s| !matches!(s.state(), Some("Removing") | Some("Removed")))
        .filter_map(|s| s.load_balancer_target_group_arn().map(str::to_string))
        .collect())
}

/// The firewall group's instances that serve or are about to (not terminating); an ASG already
/// gone reads as none.
pub(crate) async fn asg_instances(aws: &Aws, asg_name: &str) -> Result<BTreeSet<String>, AwsError> {
    let r = aws
        .asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(asg_name)
        .send()
        .await
        .map_err(|e| sdk_err(&format!("autoscaling:DescribeAutoScalingGroups {asg_name}"), e))?;
    Ok(r.auto_scaling_groups()
        .iter()
        .flat_map(|g| g.instances())
        .filter(|i| !i.lifecycle_state().is_some_and(|s| s.as_str().starts_with("Terminat")))
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect())
}

/// The instance targets registered in a target group (any health state but draining).
pub(crate) async fn registered_instances(aws: &Aws, tg_arn: &str) -> Result<BTreeSet<String>, AwsError> {
    let r = aws
        .elbv2
        .describe_target_health()
        .target_group_arn(tg_arn)
        .send()
        .await
        .map_err(|e| sdk_err(&format!("elbv2:DescribeTargetHealth {tg_arn}"), e))?;
    Ok(r.target_health_descriptions()
        .iter()
        .filter(|d| d.target_health().and_then(|h| h.state()) != Some(&elb::TargetHealthStateEnum::Draining))
        .filter_map(|d| d.target()?.id().map(str::to_string))
        .collect())
}

/// Registers and deregisters instance targets of one group (one call each); the lines done.
pub(crate) async fn register(aws: &Aws, name: &str, arn: &str, add: &[String], remove: &[String]) -> Result<Vec<String>, AwsError> {
    let targets = |ids: &[String]| ids.iter().map(|i| elb::TargetDescription::builder().id(i).build()).collect::<Vec<_>>();
    let mut done = Vec::new();
    if !add.is_empty() {
        aws.elbv2
            .register_targets()
            .target_group_arn(arn)
            .set_targets(Some(targets(add)))
            .send()
            .await
            .map_err(|e| sdk_err(&format!("elbv2:RegisterTargets {name}"), e))?;
        done.push(format!("registered {} in {name} (the firewall group holds its 50 target groups)", add.join(", ")));
    }
    if !remove.is_empty() {
        let r = aws.elbv2.deregister_targets().target_group_arn(arn).set_targets(Some(targets(remove))).send().await;
        super::already_done(r.map_err(|e| sdk_err(&format!("elbv2:DeregisterTargets {name}"), e)), &["InvalidTarget"])?;
        done.push(format!("deregistered {} from {name} (no longer in the firewall group)", remove.join(", ")));
    }
    Ok(done)
}

/// Deletes a load balancer (with its listeners; already gone counts as done).
pub(crate) async fn delete_load_balancer(aws: &Aws, name: &str, arn: &str) -> Result<(), AwsError> {
    let r = aws.elbv2.delete_load_balancer().load_balancer_arn(arn).send().await;
    super::already_done(r.map_err(|e| sdk_err(&format!("elbv2:DeleteLoadBalancer {name}"), e)), &["LoadBalancerNotFound"])
}

/// Target group ARNs by name: those observed, and those created while applying.
pub(crate) struct TargetGroupArns(BTreeMap<String, String>);

impl TargetGroupArns {
    pub(crate) fn new(named: impl IntoIterator<Item = (String, String)>) -> TargetGroupArns {
        TargetGroupArns(named.into_iter().collect())
    }

    pub(crate) fn get(&self, name: &str) -> Result<String, AwsError> {
        self.0.get(name).cloned().ok_or_else(|| AwsError::new("elbv2", format!("target group {name} not found")))
    }

    pub(crate) fn insert(&mut self, name: &str, arn: String) {
        self.0.insert(name.to_string(), arn);
    }
}

/// The ARN of the target group a CreateTargetGroup answer names.
pub(crate) fn created_arn(r: &aws_sdk_elasticloadbalancingv2::operation::create_target_group::CreateTargetGroupOutput) -> String {
    r.target_groups().first().and_then(|t| t.target_group_arn()).unwrap_or_default().to_string()
}

/// Attaches a target group to the ASG; the line done.
pub(crate) async fn attach(aws: &Aws, asg_name: &str, name: &str, arn: &str) -> Result<String, AwsError> {
    aws.asg
        .attach_load_balancer_target_groups()
        .auto_scaling_group_name(asg_name)
        .target_group_arns(arn)
        .send()
        .await
        .map_err(|e| sdk_err(&format!("autoscaling:AttachLoadBalancerTargetGroups {name} to {asg_name}"), e))?;
    Ok(format!("attached {name} to {asg_name}"))
}

/// Detaches a target group from the ASG; the line done.
pub(crate) async fn detach(aws: &Aws, asg_name: &str, name: &str, arn: &str) -> Result<String, AwsError> {
    aws.asg
        .detach_load_balancer_target_groups()
        .auto_scaling_group_name(asg_name)
        .target_group_arns(arn)
        .send()
        .await
        .map_err(|e| sdk_err(&format!("autoscaling:DetachLoadBalancerTargetGroups {name} from {asg_name}"), e))?;
    Ok(format!("detached {name} from {asg_name}"))
}

/// Deletes a target group (already gone counts as done); the line done.
pub(crate) async fn delete_target_group(aws: &Aws, service: &str, name: &str, arn: &str) -> Result<String, AwsError> {
    let r = aws
        .elbv2
        .delete_target_group()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| sdk_err(&format!("elbv2:DeleteTargetGroup {name} ({service})"), e));
    super::already_done(r, &["TargetGroupNotFound"])?;
    Ok(format!("deleted target group {name} of {service}"))
}

/// The default action of an extra front (no target group, so it takes none of the 100): a
/// plain 404 for requests no Service's rule matches.
pub(crate) fn no_service() -> elb::Action {
    elb::Action::builder()
        .r#type(elb::ActionTypeEnum::FixedResponse)
        .fixed_response_config(
            elb::FixedResponseActionConfig::builder()
                .status_code("404")
                .content_type("text/plain")
                .message_body("no Service matches this host or path")
                .build(),
        )
        .build()
}

/// Sets a listener's default action (forward to one target group, or [`no_service`]).
pub(crate) async fn set_default_action(aws: &Aws, listener_arn: &str, action: elb::Action, op: &str) -> Result<(), AwsError> {
    aws.elbv2
        .modify_listener()
        .listener_arn(listener_arn)
        .default_actions(action)
        .send()
        .await
        .map_err(|e| sdk_err(&format!("elbv2:ModifyListener {op}"), e))?;
    Ok(())
}

/// The outputs of the firewall stack; `None` when the stack does not exist.
pub(crate) struct StackOutputs {
    stack: String,
    status: String,
    outputs: BTreeMap<String, String>,
}

impl StackOutputs {
    pub(crate) async fn read(aws: &Aws, stack: &str) -> Result<Option<StackOutputs>, AwsError> {
        let cfn = super::stacks::AwsCfn { client: &aws.cfn };
        let Some(st) = super::stacks::CfnApi::describe(&cfn, stack).await? else { return Ok(None) };
        Ok(Some(StackOutputs { stack: stack.to_string(), status: st.status, outputs: st.outputs }))
    }

    pub(crate) fn get(&self, k: &str) -> Result<String, AwsError> {
        self.outputs.get(k).cloned().ok_or_else(|| {
            AwsError::new("cloudformation:DescribeStacks", format!("stack {} ({}) has no output {k}", self.stack, self.status))
        })
    }
}

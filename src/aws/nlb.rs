//! The public NLB (`firewalls.elb_type = "network"` with `sync.manage_alb`): one TCP listener and
//! target group per protected Service port (issue 13 item 6). The decision is
//! [`pano_eks_core::front::nlb::plan_nlb`]; this adapter reads what exists (ownership from the same
//! tags as the ALB's: `pano-eks:deployment` + `pano-eks:service`), and applies the actions.
//! Target groups are named like the ALB's ([`pano_eks_core::front::alb::tg_name`]) and probed with TCP on their
//! traffic port, i.e. through the Service's NAT rule on the firewall. The NLB's own security
//! group gets each listener's port (tcp from anywhere, described `pano-eks:<deployment> <service>`)
//! with the listener, and loses it with the listener. The calls it shares with the ALB front are
//! in [`super::elbv2`].

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types as elb;
use pano_eks_core::front::alb::{SERVICE_TAG, Wanted};
use pano_eks_core::front::nlb::{
    NlbAction, NlbContext, NlbListener, NlbObserved, NlbPlan, NlbTargetGroup, NlbWanted, ingress_description, our_ingress_port, plan_nlb,
};
use serde::Serialize;

use super::elbv2::{self, StackOutputs, TargetGroupArns, forward, forwards, read_tags, tag};
use super::{Aws, AwsError, DEPLOYMENT_TAG, sdk_err};

/// The firewall stack's side of the NLB (its outputs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    pub deployment: String,
    pub vpc_id: String,
    pub lb_arn: String,
    pub listener_arn: String,
    pub public_tg_arn: String,
    pub asg_name: String,
    /// The NLB's own security group (stack output `ElbSecurityGroup`): each listener's port is
    /// authorized on it with the listener.
    pub security_group: String,
}

/// The stack's own listener port (`PublicListener`, TCP 80).
pub const DEFAULT_PORT: u16 = 80;

fn core_ctx(ctx: &Context) -> NlbContext {
    NlbContext { default_listener_arn: ctx.listener_arn.clone(), default_port: DEFAULT_PORT, public_tg_arn: ctx.public_tg_arn.clone() }
}

/// The ALB's wanted Services as the NLB planner takes them (name per Service and port).
pub fn wanted(ctx: &Context, wanted: &[Wanted]) -> Vec<NlbWanted> {
    pano_eks_core::front::nlb::nlb_wanted(&ctx.deployment, wanted)
}

/// The Service a resource belongs to, by the core's ownership rule (`None`: not ours).
fn owner(ctx: &Context, tags: &BTreeMap<String, String>) -> Option<String> {
    pano_eks_core::front::alb::owner(&ctx.deployment, tags).map(|k| k.to_string())
}

/// Target groups of the VPC, listeners of the NLB (with tags), the ASG's attachments.
pub async fn observe(aws: &Aws, ctx: &Context) -> Result<NlbObserved, AwsError> {
    let tgs: Vec<(String, String, u16)> = elbv2::vpc_target_groups(aws, &ctx.vpc_id)
        .await?
        .iter()
        .map(|t| {
            (
                t.target_group_arn().unwrap_or_default().to_string(),
                t.target_group_name().unwrap_or_default().to_string(),
                elbv2::port(t.port()),
            )
        })
        .collect();
    let tags = read_tags(aws, &tgs.iter().map(|t| t.0.clone()).collect::<Vec<_>>()).await?;
    let target_groups = tgs
        .into_iter()
        .map(|(arn, name, port)| {
            let owner = tags.get(&arn).and_then(|t| owner(ctx, t));
            NlbTargetGroup { arn, name, port, owner }
        })
        .collect();

    let mut listed = Vec::new();
    let mut marker = None;
    loop {
        let r = match aws
            .elbv2
            .describe_listeners()
            .load_balancer_arn(&ctx.lb_arn)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| sdk_err(&format!("elbv2:DescribeListeners {}", ctx.lb_arn), e))
        {
            Ok(r) => r,
            // A half-deleted firewall stack: nothing to keep, our target groups can still go.
            Err(e) if e.is_code("LoadBalancerNotFound") => break,
            Err(e) => return Err(e),
        };
        listed.extend(r.listeners().iter().cloned());
        match r.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    let ltags = read_tags(aws, &listed.iter().filter_map(|l| l.listener_arn().map(str::to_string)).collect::<Vec<_>>()).await?;
    let listeners = listed
        .iter()
        .map(|l| {
            let arn = l.listener_arn().unwrap_or_default().to_string();
            let forward = forwards(l.default_actions());
            let owner = ltags.get(&arn).and_then(|t| owner(ctx, t));
            NlbListener { arn, port: elbv2::port(l.port()), forward, owner }
        })
        .collect();

    let asg_target_groups = elbv2::asg_target_groups(aws, &ctx.asg_name).await?;
    // Our ingress rules on the NLB's group (which ones are ours is the core's `our_ingress_port`).
    let mut ingress = std::collections::BTreeMap::new();
    let rules = aws
        .ec2
        .describe_security_group_rules()
        .filters(aws_sdk_ec2::types::Filter::builder().name("group-id").values(&ctx.security_group).build())
        .send()
        .await
        .map_err(|e| sdk_err(&format!("ec2:DescribeSecurityGroupRules {}", ctx.security_group), e))?;
    for r in rules.security_group_rules() {
        let port = our_ingress_port(&ctx.deployment, r.is_egress() == Some(false), r.description(), r.from_port(), r.to_port());
        if let (Some(port), Some(id)) = (port, r.security_group_rule_id()) {
            ingress.insert(port, id.to_string());
        }
    }
    Ok(NlbObserved { target_groups, listeners, asg_target_groups, ingress })
}

/// Executes the plan's actions in order; one line per action done.
pub async fn apply(aws: &Aws, ctx: &Context, seen: &NlbObserved, plan: &NlbPlan) -> Result<Vec<String>, AwsError> {
    let mut arns = TargetGroupArns::new(seen.target_groups.iter().map(|t| (t.name.clone(), t.arn.clone())));
    let mut done = Vec::new();
    for a in &plan.actions {
        match a {
            NlbAction::CreateTargetGroup { service, name, port } => {
                let r = aws
                    .elbv2
                    .create_target_group()
                    .name(name)
                    .protocol(elb::ProtocolEnum::Tcp)
                    .port(i32::from(*port))
                    .vpc_id(&ctx.vpc_id)
                    .target_type(elb::TargetTypeEnum::Instance)
                    .health_check_protocol(elb::ProtocolEnum::Tcp)
                    .health_check_port("traffic-port")
                    .tags(tag(DEPLOYMENT_TAG, &ctx.deployment))
                    .tags(tag(SERVICE_TAG, service))
                    .send()
                    .await
                    .map_err(|e| sdk_err(&format!("elbv2:CreateTargetGroup {name} ({service})"), e))?;
                arns.insert(name, elbv2::created_arn(&r));
                done.push(format!("created target group {name} (TCP {port}, health check TCP traffic-port) for {service}"));
            }
            NlbAction::Attach { name } => done.push(elbv2::attach(aws, &ctx.asg_name, name, &arns.get(name)?).await?),
            NlbAction::AuthorizeIngress { service, port } => {
                let range = aws_sdk_ec2::types::IpRange::builder()
                    .cidr_ip("0.0.0.0/0")
                    .description(ingress_description(&ctx.deployment, service))
                    .build();
                let perm = aws_sdk_ec2::types::IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(i32::from(*port))
                    .to_port(i32::from(*port))
                    .ip_ranges(range)
                    .build();
                let r = aws.ec2.authorize_security_group_ingress().group_id(&ctx.security_group).ip_permissions(perm).send().await;
                // Already there counts as done.
                super::already_done(
                    r.map_err(|e| sdk_err(&format!("ec2:AuthorizeSecurityGroupIngress {} tcp {port}", ctx.security_group), e)),
                    &["InvalidPermission.Duplicate"],
                )?;
                done.push(format!("security group {}: tcp {port} from anywhere for {service}", ctx.security_group));
            }
            NlbAction::RevokeIngress { port, rule } => {
                let r = aws.ec2.revoke_security_group_ingress().group_id(&ctx.security_group).security_group_rule_ids(rule).send().await;
                super::already_done(
                    r.map_err(|e| sdk_err(&format!("ec2:RevokeSecurityGroupIngress {} {rule}", ctx.security_group), e)),
                    &["InvalidPermission.NotFound", "InvalidSecurityGroupRuleId.NotFound"],
                )?;
                done.push(format!("security group {}: tcp {port} revoked", ctx.security_group));
            }
            NlbAction::CreateListener { service, port, target } => {
                let arn = arns.get(target)?;
                aws.elbv2
                    .create_listener()
                    .load_balancer_arn(&ctx.lb_arn)
                    .protocol(elb::ProtocolEnum::Tcp)
                    .port(i32::from(*port))
                    .default_actions(forward(&arn))
                    .tags(tag(DEPLOYMENT_TAG, &ctx.deployment))
                    .tags(tag(SERVICE_TAG, service))
                    .send()
                    .await
                    .map_err(|e| sdk_err(&format!("elbv2:CreateListener TCP {port} for {service}"), e))?;
                done.push(format!("created listener TCP {port} for {service} → {target}"));
            }
            NlbAction::ModifyListener { service, arn, port, target } => {
                elbv2::set_default_action(aws, arn, forward(&arns.get(target)?), &format!("{arn} ({service})")).await?;
                done.push(format!("listener TCP {port} of {service} → {target}"));
            }
            NlbAction::SetDefault { target } => {
                let (arn, what) = match target {
                    Some(t) => (arns.get(t)?, t.clone()),
                    None => (ctx.public_tg_arn.clone(), "the firewall stack's target group".to_string()),
                };
                elbv2::set_default_action(aws, &ctx.listener_arn, forward(&arn), &ctx.listener_arn).await?;
                done.push(format!("listener TCP {DEFAULT_PORT} → {what}"));
            }
            NlbAction::DeleteListener { service, arn, port } => {
                let r = aws.elbv2.delete_listener().listener_arn(arn).send().await;
                super::already_done(r.map_err(|e| sdk_err(&format!("elbv2:DeleteListener {arn} ({service})"), e)), &["ListenerNotFound"])?;
                done.push(format!("deleted listener TCP {port} of {service}"));
            }
            NlbAction::Detach { name } => done.push(elbv2::detach(aws, &ctx.asg_name, name, &arns.get(name)?).await?),
            NlbAction::DeleteTargetGroup { service, name } => {
                done.push(elbv2::delete_target_group(aws, service, name, &arns.get(name)?).await?)
            }
        }
    }
    Ok(done)
}

/// What one NLB reconcile did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct NlbReport {
    pub plan: NlbPlan,
    pub done: Vec<String>,
}

/// Observe → plan → apply. `wanted` empty removes everything we own (used by `down`).
pub async fn reconcile(aws: &Aws, ctx: &Context, wanted: &[NlbWanted]) -> Result<NlbReport, AwsError> {
    let seen = observe(aws, ctx).await?;
    let plan = plan_nlb(&core_ctx(ctx), wanted, &seen);
    let done = apply(aws, ctx, &seen, &plan).await?;
    Ok(NlbReport { plan, done })
}

/// The context from the firewall stack's outputs; `None` when the stack does not exist.
pub async fn context(aws: &Aws, deployment: &str, firewall_stack: &str) -> Result<Option<Context>, AwsError> {
    let Some(out) = StackOutputs::read(aws, firewall_stack).await? else { return Ok(None) };
    Ok(Some(Context {
        deployment: deployment.to_string(),
        vpc_id: out.get("VpcId")?,
        lb_arn: out.get("PublicElbArn")?,
        listener_arn: out.get("PublicListenerArn")?,
        public_tg_arn: out.get("PublicTargetGroupArn")?,
        asg_name: out.get("FirewallAsgName")?,
        security_group: out.get("ElbSecurityGroup")?,
    }))
}

//! The public NLB (`firewalls.elb_type = "network"` with `sync.manage_alb`): one TCP listener and
//! target group per protected Service port (issue 13 item 6). The decision is
//! [`pano_eks_core::front::plan_nlb`]; this adapter reads what exists (ownership from the same
//! tags as the ALB's: `pano-eks:deployment` + `pano-eks:service`), and applies the actions.
//! Target groups are named like the ALB's ([`alb::tg_name`]) and probed with TCP on their
//! traffic port, i.e. through the Service's NAT rule on the firewall. The NLB's own security
//! group gets each listener's port (tcp from anywhere, described `pano-eks:<deployment> <service>`)
//! with the listener, and loses it with the listener.

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types as elb;
use pano_eks_core::front::{NlbAction, NlbContext, NlbListener, NlbObserved, NlbPlan, NlbTargetGroup, NlbWanted, plan_nlb};
use serde::Serialize;

use super::alb::{self, SERVICE_TAG, ServiceKey, Wanted};
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
    wanted
        .iter()
        .map(|w| NlbWanted { service: w.key.to_string(), port: w.port, target_group: alb::tg_name(&ctx.deployment, &w.key, w.port) })
        .collect()
}

fn owner(ctx: &Context, tags: &BTreeMap<String, String>) -> Option<String> {
    if tags.get(DEPLOYMENT_TAG).map(String::as_str) != Some(ctx.deployment.as_str()) {
        return None;
    }
    tags.get(SERVICE_TAG).and_then(|v| ServiceKey::parse(v)).map(|k| k.to_string())
}

async fn read_tags(aws: &Aws, arns: &[String]) -> Result<BTreeMap<String, BTreeMap<String, String>>, AwsError> {
    let mut out = BTreeMap::new();
    for chunk in arns.chunks(20) {
        let r =
            aws.elbv2.describe_tags().set_resource_arns(Some(chunk.to_vec())).send().await.map_err(|e| sdk_err("elbv2:DescribeTags", e))?;
        for d in r.tag_descriptions() {
            let tags = d.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect();
            out.insert(d.resource_arn().unwrap_or_default().to_string(), tags);
        }
    }
    Ok(out)
}

/// Target groups of the VPC, listeners of the NLB (with tags), the ASG's attachments.
pub async fn observe(aws: &Aws, ctx: &Context) -> Result<NlbObserved, AwsError> {
    let mut tgs = Vec::new();
    let mut marker = None;
    loop {
        let r = aws
            .elbv2
            .describe_target_groups()
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| sdk_err("elbv2:DescribeTargetGroups", e))?;
        for t in r.target_groups() {
            if t.vpc_id() == Some(ctx.vpc_id.as_str()) {
                tgs.push((
                    t.target_group_arn().unwrap_or_default().to_string(),
                    t.target_group_name().unwrap_or_default().to_string(),
                    t.port().and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
                ));
            }
        }
        match r.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
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
            let mut forward: Vec<String> = l
                .default_actions()
                .iter()
                .filter(|a| a.r#type() == Some(&elb::ActionTypeEnum::Forward))
                .flat_map(|a| {
                    a.target_group_arn().map(|t| vec![t.to_string()]).unwrap_or_else(|| {
                        a.forward_config()
                            .map(|f| f.target_groups().iter().filter_map(|t| t.target_group_arn().map(str::to_string)).collect())
                            .unwrap_or_default()
                    })
                })
                .collect();
            forward.sort();
            forward.dedup();
            let owner = ltags.get(&arn).and_then(|t| owner(ctx, t));
            NlbListener { arn, port: l.port().and_then(|p| u16::try_from(p).ok()).unwrap_or(0), forward, owner }
        })
        .collect();

    let attached = match aws
        .asg
        .describe_load_balancer_target_groups()
        .auto_scaling_group_name(&ctx.asg_name)
        .send()
        .await
        .map_err(|e| sdk_err(&format!("autoscaling:DescribeLoadBalancerTargetGroups {}", ctx.asg_name), e))
    {
        Ok(r) => r.load_balancer_target_groups().to_vec(),
        Err(e) if e.is_code("ValidationError") && e.message.to_ascii_lowercase().contains("not found") => Vec::new(),
        Err(e) => return Err(e),
    };
    let asg_target_groups = attached
        .iter()
        .filter(|s| !matches!(s.state(), Some("Removing") | Some("Removed")))
        .filter_map(|s| s.load_balancer_target_group_arn().map(str::to_string))
        .collect();
    // Our ingress rules on the NLB's group: tcp, one port, described "pano-eks:<deployment> …".
    let mine = format!("pano-eks:{} ", ctx.deployment);
    let mut ingress = std::collections::BTreeMap::new();
    let rules = aws
        .ec2
        .describe_security_group_rules()
        .filters(aws_sdk_ec2::types::Filter::builder().name("group-id").values(&ctx.security_group).build())
        .send()
        .await
        .map_err(|e| sdk_err(&format!("ec2:DescribeSecurityGroupRules {}", ctx.security_group), e))?;
    for r in rules.security_group_rules() {
        let ours = r.is_egress() == Some(false) && r.description().is_some_and(|d| d.starts_with(&mine));
        if let (true, Some(from), Some(to), Some(id)) = (ours, r.from_port(), r.to_port(), r.security_group_rule_id()) {
            if from == to {
                if let Ok(port) = u16::try_from(from) {
                    ingress.insert(port, id.to_string());
                }
            }
        }
    }
    Ok(NlbObserved { target_groups, listeners, asg_target_groups, ingress })
}

fn tag(k: &str, v: &str) -> elb::Tag {
    elb::Tag::builder().key(k).value(v).build()
}

fn forward(arn: &str) -> elb::Action {
    elb::Action::builder().r#type(elb::ActionTypeEnum::Forward).target_group_arn(arn).build()
}

/// Executes the plan's actions in order; one line per action done.
pub async fn apply(aws: &Aws, ctx: &Context, seen: &NlbObserved, plan: &NlbPlan) -> Result<Vec<String>, AwsError> {
    let mut arns: BTreeMap<String, String> = seen.target_groups.iter().map(|t| (t.name.clone(), t.arn.clone())).collect();
    let arn_of = |arns: &BTreeMap<String, String>, name: &str| {
        arns.get(name).cloned().ok_or_else(|| AwsError::new("elbv2", format!("target group {name} not found")))
    };
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
                let arn = r.target_groups().first().and_then(|t| t.target_group_arn()).unwrap_or_default().to_string();
                arns.insert(name.clone(), arn);
                done.push(format!("created target group {name} (TCP {port}, health check TCP traffic-port) for {service}"));
            }
            NlbAction::Attach { name } => {
                let arn = arn_of(&arns, name)?;
                aws.asg
                    .attach_load_balancer_target_groups()
                    .auto_scaling_group_name(&ctx.asg_name)
                    .target_group_arns(&arn)
                    .send()
                    .await
                    .map_err(|e| sdk_err(&format!("autoscaling:AttachLoadBalancerTargetGroups {name} to {}", ctx.asg_name), e))?;
                done.push(format!("attached {name} to {}", ctx.asg_name));
            }
            NlbAction::AuthorizeIngress { service, port } => {
                let range = aws_sdk_ec2::types::IpRange::builder()
                    .cidr_ip("0.0.0.0/0")
                    .description(format!("pano-eks:{} {service}", ctx.deployment))
                    .build();
                let perm = aws_sdk_ec2::types::IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(i32::from(*port))
                    .to_port(i32::from(*port))
                    .ip_ranges(range)
                    .build();
                match aws
                    .ec2
                    .authorize_security_group_ingress()
                    .group_id(&ctx.security_group)
                    .ip_permissions(perm)
                    .send()
                    .await
                    .map_err(|e| sdk_err(&format!("ec2:AuthorizeSecurityGroupIngress {} tcp {port}", ctx.security_group), e))
                {
                    Ok(_) => {}
                    Err(e) if e.is_code("InvalidPermission.Duplicate") => {}
                    Err(e) => return Err(e),
                }
                done.push(format!("security group {}: tcp {port} from anywhere for {service}", ctx.security_group));
            }
            NlbAction::RevokeIngress { port, rule } => {
                match aws
                    .ec2
                    .revoke_security_group_ingress()
                    .group_id(&ctx.security_group)
                    .security_group_rule_ids(rule)
                    .send()
                    .await
                    .map_err(|e| sdk_err(&format!("ec2:RevokeSecurityGroupIngress {} {rule}", ctx.security_group), e))
                {
                    Ok(_) => {}
                    Err(e) if e.is_code("InvalidPermission.NotFound") || e.is_code("InvalidSecurityGroupRuleId.NotFound") => {}
                    Err(e) => return Err(e),
                }
                done.push(format!("security group {}: tcp {port} revoked", ctx.security_group));
            }
            NlbAction::CreateListener { service, port, target } => {
                let arn = arn_of(&arns, target)?;
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
                let tg = arn_of(&arns, target)?;
                aws.elbv2
                    .modify_listener()
                    .listener_arn(arn)
                    .default_actions(forward(&tg))
                    .send()
                    .await
                    .map_err(|e| sdk_err(&format!("elbv2:ModifyListener {arn} ({service})"), e))?;
                done.push(format!("listener TCP {port} of {service} → {target}"));
            }
            NlbAction::SetDefault { target } => {
                let (arn, what) = match target {
                    Some(t) => (arn_of(&arns, t)?, t.clone()),
                    None => (ctx.public_tg_arn.clone(), "the firewall stack's target group".to_string()),
                };
                aws.elbv2
                    .modify_listener()
                    .listener_arn(&ctx.listener_arn)
                    .default_actions(forward(&arn))
                    .send()
                    .await
                    .map_err(|e| sdk_err(&format!("elbv2:ModifyListener {}", ctx.listener_arn), e))?;
                done.push(format!("listener TCP {DEFAULT_PORT} → {what}"));
            }
            NlbAction::DeleteListener { service, arn, port } => {
                match aws
                    .elbv2
                    .delete_listener()
                    .listener_arn(arn)
                    .send()
                    .await
                    .map_err(|e| sdk_err(&format!("elbv2:DeleteListener {arn} ({service})"), e))
                {
                    Ok(_) => {}
                    Err(e) if e.is_code("ListenerNotFound") => {}
                    Err(e) => return Err(e),
                }
                done.push(format!("deleted listener TCP {port} of {service}"));
            }
            NlbAction::Detach { name } => {
                let arn = arn_of(&arns, name)?;
                aws.asg
                    .detach_load_balancer_target_groups()
                    .auto_scaling_group_name(&ctx.asg_name)
                    .target_group_arns(&arn)
                    .send()
                    .await
                    .map_err(|e| sdk_err(&format!("autoscaling:DetachLoadBalancerTargetGroups {name} from {}", ctx.asg_name), e))?;
                done.push(format!("detached {name} from {}", ctx.asg_name));
            }
            NlbAction::DeleteTargetGroup { service, name } => {
                let arn = arn_of(&arns, name)?;
                match aws
                    .elbv2
                    .delete_target_group()
                    .target_group_arn(&arn)
                    .send()
                    .await
                    .map_err(|e| sdk_err(&format!("elbv2:DeleteTargetGroup {name} ({service})"), e))
                {
                    Ok(_) => {}
                    Err(e) if e.is_code("TargetGroupNotFound") => {}
                    Err(e) => return Err(e),
                }
                done.push(format!("deleted target group {name} of {service}"));
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
    let cfn = super::stacks::AwsCfn { client: &aws.cfn };
    let Some(st) = super::stacks::CfnApi::describe(&cfn, firewall_stack).await? else { return Ok(None) };
    let get = |k: &str| {
        st.outputs.get(k).cloned().ok_or_else(|| {
            AwsError::new("cloudformation:DescribeStacks", format!("stack {firewall_stack} ({}) has no output {k}", st.status))
        })
    };
    Ok(Some(Context {
        deployment: deployment.to_string(),
        vpc_id: get("VpcId")?,
        lb_arn: get("PublicElbArn")?,
        listener_arn: get("PublicListenerArn")?,
        public_tg_arn: get("PublicTargetGroupArn")?,
        asg_name: get("FirewallAsgName")?,
        security_group: get("ElbSecurityGroup")?,
    }))
}

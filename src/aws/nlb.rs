//! The public NLB (`firewalls.elb_type = "network"` with `sync.manage_alb`): one TCP listener and
//! target group per protected Service port (issue 13 item 6), over as many NLBs as the Services
//! need (50 listeners each: the firewall stack's NLB and extra ones `<name>-front-N`, issue 16).
//! The decisions are [`pano_eks_core::front::nlb_shards::plan`] (which NLB serves which Service)
//! and [`pano_eks_core::front::nlb::plan_nlb`] (each NLB's listeners); this adapter reads what
//! exists (ownership from the same tags as the ALB's: `pano-eks:deployment` + `pano-eks:service`,
//! the front from `pano-eks:front`), and applies the actions. Target groups are named like the
//! ALB's ([`pano_eks_core::front::alb::tg_name`]) and probed with TCP on their traffic port, i.e.
//! through the Service's NAT rule on the firewall. An extra NLB is a copy of the stack's (scheme,
//! IP address type, subnets, security groups). The NLBs' security group (the stack's, which every
//! front has) gets each listener's port (tcp from anywhere, described
//! `pano-eks:<deployment> <service>`) with the listener, and loses it with the listener. The
//! calls it shares with the ALB front are in [`super::elbv2`].

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types as elb;
use pano_eks_core::front::alb::{SERVICE_TAG, ServiceKey, Wanted};
use pano_eks_core::front::nlb::{
    NlbAction, NlbContext, NlbListener, NlbPlan, NlbTargetGroup, NlbWanted, ingress_description, our_ingress_port,
};
use pano_eks_core::front::nlb_shards::{self, NlbFront, NlbFrontsObserved, NlbShardedPlan};
use pano_eks_core::front::shards::{self, FrontAction};
use serde::Serialize;

use super::alb_shards::{FrontNames, PublicName, describe_lbs};
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
    NlbContext {
        default_listener_arn: ctx.listener_arn.clone(),
        default_port: Some(DEFAULT_PORT),
        public_tg_arn: ctx.public_tg_arn.clone(),
    }
}

/// The ALB's wanted Services as the NLB planner takes them (name per Service and port).
pub fn wanted(ctx: &Context, wanted: &[Wanted]) -> Vec<NlbWanted> {
    pano_eks_core::front::nlb::nlb_wanted(&ctx.deployment, wanted)
}

/// The Service a resource belongs to, by the core's ownership rule (`None`: not ours).
fn owner(ctx: &Context, tags: &BTreeMap<String, String>) -> Option<String> {
    pano_eks_core::front::alb::owner(&ctx.deployment, tags).map(|k| k.to_string())
}

/// What an extra NLB copies from the stack's.
#[derive(Clone, Debug)]
pub(crate) struct Template {
    scheme: Option<elb::LoadBalancerSchemeEnum>,
    ip_address_type: Option<elb::IpAddressType>,
    subnets: Vec<String>,
    security_groups: Vec<String>,
}

/// The listeners of one NLB with their owners (a load balancer gone reads as none).
async fn nlb_listeners(aws: &Aws, ctx: &Context, lb_arn: &str) -> Result<Vec<NlbListener>, AwsError> {
    let mut listed = Vec::new();
    let mut marker = None;
    loop {
        let r = match aws
            .elbv2
            .describe_listeners()
            .load_balancer_arn(lb_arn)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| sdk_err(&format!("elbv2:DescribeListeners {lb_arn}"), e))
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
    Ok(listed
        .iter()
        .map(|l| {
            let arn = l.listener_arn().unwrap_or_default().to_string();
            let forward = forwards(l.default_actions());
            let owner = ltags.get(&arn).and_then(|t| owner(ctx, t));
            NlbListener { arn, port: elbv2::port(l.port()), forward, owner }
        })
        .collect())
}

fn front_of_lb(number: u32, lb: &elb::LoadBalancer) -> NlbFront {
    NlbFront {
        number,
        name: lb.load_balancer_name().unwrap_or_default().to_string(),
        arn: lb.load_balancer_arn().unwrap_or_default().to_string(),
        dns_name: lb.dns_name().unwrap_or_default().to_string(),
        listeners: Vec::new(),
    }
}

/// Every NLB of the front (the stack's, and the extra ones by their tags), the VPC's target
/// groups (with owner and front), the ASG's attachments and instances, the targets of our
/// unattached groups, our ingress rules; and the stack's NLB as the template of new fronts
/// (`None` when it is gone).
pub(crate) async fn observe(aws: &Aws, ctx: &Context) -> Result<(NlbFrontsObserved, Option<Template>), AwsError> {
    let tgs = elbv2::vpc_target_groups(aws, &ctx.vpc_id).await?;
    let arns: Vec<String> = tgs.iter().map(|t| t.target_group_arn().unwrap_or_default().to_string()).collect();
    let tags = read_tags(aws, &arns).await?;
    let target_groups: Vec<NlbTargetGroup> = tgs
        .iter()
        .map(|t| {
            let arn = t.target_group_arn().unwrap_or_default().to_string();
            let t_tags = tags.get(&arn).cloned().unwrap_or_default();
            NlbTargetGroup {
                name: t.target_group_name().unwrap_or_default().to_string(),
                port: elbv2::port(t.port()),
                owner: owner(ctx, &t_tags),
                front: shards::front_of(&t_tags),
                arn,
            }
        })
        .collect();

    let mut first = NlbFront { number: 1, arn: ctx.lb_arn.clone(), ..NlbFront::default() };
    let mut template = None;
    if let Some(lb) = describe_lbs(aws, Some(&ctx.lb_arn)).await?.into_iter().next() {
        first = front_of_lb(1, &lb);
        template = Some(Template {
            scheme: lb.scheme().cloned(),
            ip_address_type: lb.ip_address_type().cloned(),
            subnets: lb.availability_zones().iter().filter_map(|z| z.subnet_id().map(str::to_string)).collect(),
            security_groups: lb.security_groups().to_vec(),
        });
    }
    first.listeners = nlb_listeners(aws, ctx, &ctx.lb_arn).await?;
    let mut fronts = vec![first];
    let in_vpc: Vec<elb::LoadBalancer> = describe_lbs(aws, None)
        .await?
        .into_iter()
        .filter(|lb| lb.vpc_id() == Some(ctx.vpc_id.as_str()) && lb.r#type() == Some(&elb::LoadBalancerTypeEnum::Network))
        .collect();
    let lb_tags = read_tags(aws, &in_vpc.iter().filter_map(|lb| lb.load_balancer_arn().map(str::to_string)).collect::<Vec<_>>()).await?;
    for lb in &in_vpc {
        let arn = lb.load_balancer_arn().unwrap_or_default();
        let Some(number) = lb_tags.get(arn).and_then(|t| shards::extra_front_of(&ctx.deployment, t)) else { continue };
        let mut f = front_of_lb(number, lb);
        f.listeners = nlb_listeners(aws, ctx, arn).await?;
        fronts.push(f);
    }

    let asg_target_groups = elbv2::asg_target_groups(aws, &ctx.asg_name).await?;
    let asg_instances = elbv2::asg_instances(aws, &ctx.asg_name).await?;
    let mut registered = BTreeMap::new();
    for t in target_groups.iter().filter(|t| t.owner.is_some() && !asg_target_groups.contains(&t.arn)) {
        registered.insert(t.arn.clone(), elbv2::registered_instances(aws, &t.arn).await?);
    }
    // Our ingress rules on the NLBs' group (which ones are ours is the core's `our_ingress_port`).
    let mut ingress = BTreeMap::new();
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
    Ok((NlbFrontsObserved { fronts, target_groups, asg_target_groups, asg_instances, registered, ingress }, template))
}

/// Creates an extra NLB (no listener: each Service's comes with its plan); its (arn, DNS name).
async fn create_front(aws: &Aws, ctx: &Context, t: &Template, number: u32, name: &str) -> Result<(String, String), AwsError> {
    let r = aws
        .elbv2
        .create_load_balancer()
        .name(name)
        .r#type(elb::LoadBalancerTypeEnum::Network)
        .set_scheme(t.scheme.clone())
        .set_ip_address_type(t.ip_address_type.clone())
        .set_subnets(Some(t.subnets.clone()))
        .set_security_groups((!t.security_groups.is_empty()).then(|| t.security_groups.clone()))
        .tags(tag(DEPLOYMENT_TAG, &ctx.deployment))
        .tags(tag(shards::FRONT_TAG, &shards::front_tag_value(number)))
        .send()
        .await
        .map_err(|e| sdk_err(&format!("elbv2:CreateLoadBalancer {name}"), e))?;
    let lb = r.load_balancers().first().ok_or_else(|| AwsError::new("elbv2:CreateLoadBalancer", format!("{name}: no load balancer")))?;
    Ok((lb.load_balancer_arn().unwrap_or_default().to_string(), lb.dns_name().unwrap_or_default().to_string()))
}

/// Executes the sharded plan: new NLBs, each front's actions, direct registrations, removals.
/// Returns the lines done and every front's name and DNS name.
pub(crate) async fn apply(
    aws: &Aws,
    ctx: &Context,
    template: Option<&Template>,
    seen: &NlbFrontsObserved,
    plan: &NlbShardedPlan,
) -> Result<(Vec<String>, FrontNames), AwsError> {
    let mut done = Vec::new();
    let mut lb_arn: BTreeMap<u32, String> = seen.fronts.iter().map(|f| (f.number, f.arn.clone())).collect();
    let mut names: FrontNames = seen.fronts.iter().map(|f| (f.number, (f.name.clone(), f.dns_name.clone()))).collect();
    for a in &plan.create {
        if let FrontAction::CreateFront { number, name } = a {
            let t = template.ok_or_else(|| AwsError::new("elbv2", "the firewall stack's load balancer is gone: no front to copy"))?;
            let (arn, dns) = create_front(aws, ctx, t, *number, name).await?;
            done.push(format!("created front {name} ({dns})"));
            lb_arn.insert(*number, arn);
            names.insert(*number, (name.clone(), dns));
        }
    }
    let mut arns = TargetGroupArns::new(seen.target_groups.iter().map(|t| (t.name.clone(), t.arn.clone())));
    for (n, p) in plan.fronts.iter().filter(|(_, p)| !p.actions.is_empty()) {
        let lb = lb_arn.get(n).ok_or_else(|| AwsError::new("elbv2", format!("front {n} has no load balancer")))?;
        let fctx = Context { lb_arn: lb.clone(), ..ctx.clone() };
        let lines = apply_front(aws, &fctx, *n, &mut arns, &p.actions).await?;
        let prefix = if *n == 1 { String::new() } else { format!("{}: ", names.get(n).map(|x| x.0.as_str()).unwrap_or("?")) };
        done.extend(lines.into_iter().map(|l| format!("{prefix}{l}")));
    }
    for t in &plan.targets {
        let arn = arns.get(&t.name)?;
        done.extend(elbv2::register(aws, &t.name, &arn, &t.register, &t.deregister).await?);
    }
    for a in &plan.remove {
        if let FrontAction::DeleteFront { number, name, arn } = a {
            elbv2::delete_load_balancer(aws, name, arn).await?;
            done.push(format!("deleted front {name} (no Service left)"));
            names.remove(number);
        }
    }
    Ok((done, names))
}

/// Executes one NLB's actions in order (`ctx.lb_arn` is that NLB); the target groups it creates
/// are tagged with the front ([`shards::FRONT_TAG`]). One line per action done.
async fn apply_front(
    aws: &Aws,
    ctx: &Context,
    front: u32,
    arns: &mut TargetGroupArns,
    actions: &[NlbAction],
) -> Result<Vec<String>, AwsError> {
    let mut done = Vec::new();
    for a in actions {
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
                    .tags(tag(shards::FRONT_TAG, &shards::front_tag_value(front)))
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

/// What one NLB reconcile did (over every NLB of the front).
#[derive(Clone, Debug, Default, Serialize)]
pub struct NlbReport {
    /// Every front's plan as one: their actions in order, every Service's outcome.
    pub plan: NlbPlan,
    /// The sharded plan: fronts made and removed, the Service → front assignment.
    pub fronts: NlbShardedPlan,
    /// The public DNS name of each Service with a listener (its own, or the stack's).
    pub public: Vec<PublicName>,
    pub done: Vec<String>,
}

/// Observe → plan → apply, over every NLB. `wanted` empty removes everything we own, extra
/// NLBs included (used by `down`).
pub async fn reconcile(aws: &Aws, ctx: &Context, wanted: &[NlbWanted]) -> Result<NlbReport, AwsError> {
    let (seen, template) = observe(aws, ctx).await?;
    let sharded = nlb_shards::plan(&ctx.deployment, &core_ctx(ctx), wanted, &seen);
    let (done, names) = apply(aws, ctx, template.as_ref(), &seen, &sharded).await?;
    let mut plan = NlbPlan::default();
    for (_, p) in &sharded.fronts {
        plan.actions.extend(p.actions.iter().cloned());
        plan.listeners_after += p.listeners_after;
    }
    plan.services = sharded.outcomes().into_iter().cloned().collect();
    let front_of: BTreeMap<(&str, u16), u32> = sharded.services.iter().map(|s| ((s.service.as_str(), s.port), s.front)).collect();
    let public = plan
        .services
        .iter()
        .filter(|s| s.state != pano_eks_core::front::nlb::NlbState::Conflict)
        .filter_map(|s| {
            let (front, dns_name) = names.get(front_of.get(&(s.service.as_str(), s.port))?)?.clone();
            Some(PublicName { service: ServiceKey::parse(&s.service)?, front, dns_name })
        })
        .collect();
    Ok(NlbReport { plan, fronts: sharded, public, done })
}

/// The public DNS name of each Service an NLB serves, read without changing anything (`status`).
pub async fn public_names(aws: &Aws, ctx: &Context) -> Result<Vec<PublicName>, AwsError> {
    let (seen, _) = observe(aws, ctx).await?;
    let names: FrontNames = seen.fronts.iter().map(|f| (f.number, (f.name.clone(), f.dns_name.clone()))).collect();
    Ok(nlb_shards::served(&core_ctx(ctx), &seen)
        .into_iter()
        .filter_map(|(service, n)| {
            let (front, dns_name) = names.get(&n)?.clone();
            Some(PublicName { service: ServiceKey::parse(&service)?, front, dns_name })
        })
        .collect())
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

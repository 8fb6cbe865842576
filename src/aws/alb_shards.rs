//! ADAPTER: the ALB front's shards (`sync.manage_alb`): reads every front of the deployment (the
//! firewall stack's ALB, and the extra ones found by their `pano-eks:deployment` and
//! `pano-eks:front` tags), the VPC's target groups, the firewall group's attachments and
//! instances, the targets of our unattached groups, into the core's [`FrontsObserved`]; executes
//! a [`ShardedPlan`]: creates extra fronts as copies of the stack's (scheme, subnets, security
//! groups, listener port and protocol), applies each front's ALB plan, registers the firewalls
//! where the autoscaling group cannot take a group, deletes emptied fronts. It decides nothing:
//! `pano_eks_core::front::shards` does.

use std::collections::BTreeMap;

use serde::Serialize;

use aws_sdk_elasticloadbalancingv2::types as elb;
use pano_eks_core::front::alb::owner;
use pano_eks_core::front::shards::{self, Front, FrontAction, FrontsObserved, ShardedPlan};

use super::alb::{self, Context};
use super::elbv2::{self, TargetGroupArns, read_tags, tag};
use super::{Aws, AwsError, DEPLOYMENT_TAG, sdk_err};

/// What an extra front copies from the stack's load balancer and listener.
#[derive(Clone, Debug)]
pub(crate) struct Template {
    scheme: Option<elb::LoadBalancerSchemeEnum>,
    ip_address_type: Option<elb::IpAddressType>,
    subnets: Vec<String>,
    security_groups: Vec<String>,
    port: Option<i32>,
    protocol: Option<elb::ProtocolEnum>,
    ssl_policy: Option<String>,
    certificates: Vec<elb::Certificate>,
}

/// A front's name and public DNS name, by front number.
pub type FrontNames = BTreeMap<u32, (String, String)>;

pub(crate) async fn describe_lbs(aws: &Aws, arn: Option<&str>) -> Result<Vec<elb::LoadBalancer>, AwsError> {
    let mut out = Vec::new();
    let mut marker = None;
    loop {
        let r = aws
            .elbv2
            .describe_load_balancers()
            .set_load_balancer_arns(arn.map(|a| vec![a.to_string()]))
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| sdk_err("elbv2:DescribeLoadBalancers", e));
        let r = match r {
            Err(e) if arn.is_some() && e.is_code("LoadBalancerNotFound") => return Ok(out),
            r => r?,
        };
        out.extend(r.load_balancers().iter().cloned());
        match r.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => return Ok(out),
        }
    }
}

async fn listeners(aws: &Aws, lb_arn: Option<&str>, listener_arn: Option<&str>) -> Result<Vec<elb::Listener>, AwsError> {
    let r = aws
        .elbv2
        .describe_listeners()
        .set_load_balancer_arn(lb_arn.map(str::to_string))
        .set_listener_arns(listener_arn.map(|a| vec![a.to_string()]))
        .send()
        .await
        .map_err(|e| sdk_err("elbv2:DescribeListeners", e));
    match r {
        Ok(r) => Ok(r.listeners().to_vec()),
        Err(e) if e.is_code("ListenerNotFound") || e.is_code("LoadBalancerNotFound") => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn front_of_lb(number: u32, lb: &elb::LoadBalancer, listener_arn: Option<String>) -> Front {
    Front {
        number,
        name: lb.load_balancer_name().unwrap_or_default().to_string(),
        arn: lb.load_balancer_arn().unwrap_or_default().to_string(),
        dns_name: lb.dns_name().unwrap_or_default().to_string(),
        listener_arn,
        rules: Vec::new(),
        default_forward: Vec::new(),
    }
}

/// Every front of the deployment and what they share; the stack's load balancer and listener
/// as the template of new fronts (`None` when the stack's listener is gone).
pub(crate) async fn observe(aws: &Aws, ctx: &Context) -> Result<(FrontsObserved, Option<Template>), AwsError> {
    let target_groups = alb::vpc_groups(aws, &ctx.vpc_id).await?;
    let asg_target_groups = elbv2::asg_target_groups(aws, &ctx.asg_name).await?;
    let asg_instances = elbv2::asg_instances(aws, &ctx.asg_name).await?;

    let mut fronts = Vec::new();
    let mut template = None;
    let (rules, default_forward) = alb::listener_rules(aws, &ctx.listener_arn).await?;
    let mut first = Front { number: 1, listener_arn: Some(ctx.listener_arn.clone()), rules, default_forward, ..Front::default() };
    if let Some(l) = listeners(aws, None, Some(&ctx.listener_arn)).await?.into_iter().next() {
        if let Some(lb) = describe_lbs(aws, l.load_balancer_arn()).await?.into_iter().next() {
            first = Front { rules: first.rules, default_forward: first.default_forward, ..front_of_lb(1, &lb, first.listener_arn) };
            template = Some(Template {
                scheme: lb.scheme().cloned(),
                ip_address_type: lb.ip_address_type().cloned(),
                subnets: lb.availability_zones().iter().filter_map(|z| z.subnet_id().map(str::to_string)).collect(),
                security_groups: lb.security_groups().to_vec(),
                port: l.port(),
                protocol: l.protocol().cloned(),
                ssl_policy: l.ssl_policy().map(str::to_string),
                certificates: l.certificates().to_vec(),
            });
        }
    }
    fronts.push(first);

    let in_vpc: Vec<elb::LoadBalancer> =
        describe_lbs(aws, None).await?.into_iter().filter(|lb| lb.vpc_id() == Some(ctx.vpc_id.as_str())).collect();
    let tags = read_tags(aws, &in_vpc.iter().filter_map(|lb| lb.load_balancer_arn().map(str::to_string)).collect::<Vec<_>>()).await?;
    for lb in &in_vpc {
        let arn = lb.load_balancer_arn().unwrap_or_default();
        let Some(number) = tags.get(arn).and_then(|t| shards::extra_front_of(&ctx.deployment, t)) else { continue };
        let listener = listeners(aws, Some(arn), None).await?.into_iter().next().and_then(|l| l.listener_arn().map(str::to_string));
        let mut f = front_of_lb(number, lb, listener.clone());
        if let Some(l) = &listener {
            (f.rules, f.default_forward) = alb::listener_rules(aws, l).await?;
        }
        fronts.push(f);
    }

    let mut registered = BTreeMap::new();
    for t in target_groups.iter().filter(|t| owner(&ctx.deployment, &t.tags).is_some() && !asg_target_groups.contains(&t.arn)) {
        registered.insert(t.arn.clone(), elbv2::registered_instances(aws, &t.arn).await?);
    }
    Ok((FrontsObserved { fronts, target_groups, asg_target_groups, asg_instances, registered }, template))
}

async fn create_listener(aws: &Aws, ctx: &Context, t: &Template, number: u32, lb_arn: &str) -> Result<String, AwsError> {
    let r = aws
        .elbv2
        .create_listener()
        .load_balancer_arn(lb_arn)
        .set_port(t.port)
        .set_protocol(t.protocol.clone())
        .set_ssl_policy(t.ssl_policy.clone())
        .set_certificates((!t.certificates.is_empty()).then(|| t.certificates.clone()))
        .default_actions(elbv2::no_service())
        .tags(tag(DEPLOYMENT_TAG, &ctx.deployment))
        .tags(tag(shards::FRONT_TAG, &shards::front_tag_value(number)))
        .send()
        .await
        .map_err(|e| sdk_err(&format!("elbv2:CreateListener on front {number}"), e))?;
    Ok(r.listeners().first().and_then(|l| l.listener_arn()).unwrap_or_default().to_string())
}

/// Creates an extra front (load balancer + listener); its (arn, DNS name, listener).
async fn create_front(aws: &Aws, ctx: &Context, t: &Template, number: u32, name: &str) -> Result<(String, String, String), AwsError> {
    let r = aws
        .elbv2
        .create_load_balancer()
        .name(name)
        .r#type(elb::LoadBalancerTypeEnum::Application)
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
    let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
    let listener = create_listener(aws, ctx, t, number, &arn).await?;
    Ok((arn, lb.dns_name().unwrap_or_default().to_string(), listener))
}

/// Executes the plan: new fronts, each front's actions, direct registrations, removals. Returns
/// the lines done and every front's name and DNS name.
pub(crate) async fn apply(
    aws: &Aws,
    ctx: &Context,
    template: Option<&Template>,
    seen: &FrontsObserved,
    plan: &ShardedPlan,
) -> Result<(Vec<String>, FrontNames), AwsError> {
    let mut done = Vec::new();
    let mut listener: BTreeMap<u32, String> = seen.fronts.iter().filter_map(|f| Some((f.number, f.listener_arn.clone()?))).collect();
    let mut names: FrontNames = seen.fronts.iter().map(|f| (f.number, (f.name.clone(), f.dns_name.clone()))).collect();
    let no_template = || AwsError::new("elbv2", "the firewall stack's load balancer or listener is gone: no front to copy");
    for a in &plan.create {
        match a {
            FrontAction::CreateFront { number, name } => {
                let (_, dns, l) = create_front(aws, ctx, template.ok_or_else(no_template)?, *number, name).await?;
                done.push(format!("created front {name} ({dns})"));
                listener.insert(*number, l);
                names.insert(*number, (name.clone(), dns));
            }
            FrontAction::CreateListener { number, name } => {
                let arn = seen.fronts.iter().find(|f| f.number == *number).map(|f| f.arn.clone()).unwrap_or_default();
                let l = create_listener(aws, ctx, template.ok_or_else(no_template)?, *number, &arn).await?;
                done.push(format!("created the listener of front {name}"));
                listener.insert(*number, l);
            }
            FrontAction::DeleteFront { .. } => {}
        }
    }
    let mut arns = TargetGroupArns::new(seen.target_groups.iter().map(|t| (t.name.clone(), t.arn.clone())));
    for (n, p) in plan.fronts.iter().filter(|(_, p)| !p.actions.is_empty()) {
        let l = listener.get(n).ok_or_else(|| AwsError::new("elbv2", format!("front {n} has no listener")))?;
        let fctx = Context { listener_arn: l.clone(), ..ctx.clone() };
        let lines = alb::apply_front(aws, &fctx, *n, &mut arns, &p.actions).await?;
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

/// The public DNS name of each Service a front serves (its rule, or the default action), read
/// without changing anything (`status`).
pub async fn public_names(aws: &Aws, ctx: &Context) -> Result<Vec<PublicName>, AwsError> {
    let (seen, _) = observe(aws, ctx).await?;
    let names: FrontNames = seen.fronts.iter().map(|f| (f.number, (f.name.clone(), f.dns_name.clone()))).collect();
    Ok(shards::served(&ctx.deployment, &seen)
        .into_iter()
        .filter_map(|(service, n)| {
            let (front, dns_name) = names.get(&n)?.clone();
            Some(PublicName { service, front, dns_name })
        })
        .collect())
}

/// A Service's public name: the front that serves it and that front's DNS name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PublicName {
    pub service: alb::ServiceKey,
    pub front: String,
    pub dns_name: String,
}

/// What one ALB reconcile did (over every front).
#[derive(Clone, Debug, Default, Serialize)]
pub struct AlbReport {
    /// Every front's plan as one: their actions in order, every Service's outcome.
    pub plan: alb::AlbPlan,
    /// The sharded plan: fronts made and removed, the Service → front assignment.
    pub fronts: ShardedPlan,
    /// The public DNS name of each Service routed (by a rule or a default action).
    pub public: Vec<PublicName>,
    pub done: Vec<String>,
}

/// Observe → plan → apply, over every front. `wanted` empty removes everything we own, extra
/// fronts included (used by `down`).
pub async fn reconcile(aws: &Aws, ctx: &Context, wanted: &[alb::Wanted]) -> Result<AlbReport, AwsError> {
    let (seen, template) = observe(aws, ctx).await?;
    let sharded = shards::plan(&alb::core_ctx(ctx), wanted, &seen);
    let (done, names) = apply(aws, ctx, template.as_ref(), &seen, &sharded).await?;
    let mut plan = alb::AlbPlan::default();
    for (_, p) in &sharded.fronts {
        plan.actions.extend(p.actions.iter().cloned());
        plan.services.extend(p.services.iter().cloned());
    }
    plan.services.sort_by(|a, b| a.service.cmp(&b.service));
    let front_of: BTreeMap<&alb::ServiceKey, u32> = sharded.services.iter().map(|s| (&s.service, s.front)).collect();
    let public = plan
        .services
        .iter()
        .filter(|s| matches!(s.state, alb::AlbState::Routed | alb::AlbState::Default))
        .filter_map(|s| {
            let (front, dns_name) = names.get(front_of.get(&s.service)?)?.clone();
            Some(PublicName { service: s.service.clone(), front, dns_name })
        })
        .collect();
    Ok(AlbReport { plan, fronts: sharded, public, done })
}

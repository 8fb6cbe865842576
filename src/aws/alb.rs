//! ADAPTER: the public ALB (`sync.manage_alb`), one target group and listener rule per protected
//! Service. The decision is [`pano_eks_core::front::alb::plan`] (which target group and rule each
//! Service gets, priorities, conflicts, what to delete); this module reads what exists into the
//! core's [`Observed`] (`observe`) and executes its actions (`apply`), deciding nothing. The calls
//! it shares with the NLB front are in [`super::elbv2`].

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types as elb;

pub use pano_eks_core::front::alb::{
    Action, AlbContext, AlbPlan, AlbState, HOST_ANNOTATION, HealthCheck, Observed, PATH_ANNOTATION, PRIORITY_BASE, PRIORITY_SPAN, Rule,
    SERVICE_TAG, ServiceAlb, ServiceKey, TG_NAME_MAX, TargetGroup, Wanted, home_priority, plan, service_health_check, tg_name, wanted,
};

use pano_eks_core::front::shards;

use super::elbv2::{self, StackOutputs, TargetGroupArns, forward, forwards, read_tags, tag};
use super::{Aws, AwsError, DEPLOYMENT_TAG, sdk_err};

/// The firewall stack's side of the sandwich (its outputs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    pub deployment: String,
    pub vpc_id: String,
    pub listener_arn: String,
    /// The stack's own target group (traffic 81, probed on the firewall's HTTPS): the listener's
    /// default when no Service has it.
    pub public_tg_arn: String,
    pub asg_name: String,
}

/// What the planner takes of the context.
pub(crate) fn core_ctx(ctx: &Context) -> AlbContext {
    AlbContext { deployment: ctx.deployment.clone(), vpc_id: ctx.vpc_id.clone(), public_tg_arn: ctx.public_tg_arn.clone() }
}

/// Reads the VPC's target groups (with tags), the listener's rules and the ASG's attachments.
pub async fn observe(aws: &Aws, ctx: &Context) -> Result<Observed, AwsError> {
    let target_groups = vpc_groups(aws, &ctx.vpc_id).await?;
    let (rules, default_forward) = listener_rules(aws, &ctx.listener_arn).await?;
    let asg_target_groups = elbv2::asg_target_groups(aws, &ctx.asg_name).await?;
    Ok(Observed { target_groups, rules, default_forward, asg_target_groups })
}

/// Every target group of the VPC with its tags and health check.
pub(crate) async fn vpc_groups(aws: &Aws, vpc_id: &str) -> Result<Vec<TargetGroup>, AwsError> {
    let mut tgs: Vec<TargetGroup> = elbv2::vpc_target_groups(aws, vpc_id)
        .await?
        .iter()
        .map(|t| TargetGroup {
            arn: t.target_group_arn().unwrap_or_default().to_string(),
            name: t.target_group_name().unwrap_or_default().to_string(),
            port: elbv2::port(t.port()),
            vpc_id: vpc_id.to_string(),
            tags: BTreeMap::new(),
            health: Some(HealthCheck {
                protocol: t.health_check_protocol().map(|p| p.as_str().to_string()).unwrap_or_default(),
                port: t.health_check_port().unwrap_or_default().to_string(),
                path: t.health_check_path().map(str::to_string),
                matcher: t.matcher().and_then(|m| m.http_code()).map(str::to_string),
            }),
        })
        .collect();
    let tags = read_tags(aws, &tgs.iter().map(|t| t.arn.clone()).collect::<Vec<_>>()).await?;
    for t in &mut tgs {
        t.tags = tags.get(&t.arn).cloned().unwrap_or_default();
    }
    Ok(tgs)
}

/// A listener's non-default rules (with tags) and what its default action forwards to. A
/// listener already gone (a half-deleted firewall stack) reads as empty, so `down` can still
/// remove our target groups; creating rules on it fails in `apply`, by name.
pub(crate) async fn listener_rules(aws: &Aws, listener_arn: &str) -> Result<(Vec<Rule>, Vec<String>), AwsError> {
    // Every page: a listener holds up to 100 rules of ours and a page may hold fewer (moto
    // answers 50 a page).
    let mut listed = Vec::new();
    let mut marker = None;
    loop {
        let r = aws
            .elbv2
            .describe_rules()
            .listener_arn(listener_arn)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| sdk_err(&format!("elbv2:DescribeRules {listener_arn}"), e));
        let r = match r {
            Ok(r) => r,
            Err(e) if e.is_code("ListenerNotFound") => break,
            Err(e) => return Err(e),
        };
        listed.extend(r.rules().iter().cloned());
        match r.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    let mut rules = Vec::new();
    let mut default_forward = Vec::new();
    for r in &listed {
        if r.is_default() == Some(true) || r.priority() == Some("default") {
            default_forward = forwards(r.actions());
            continue;
        }
        let (mut hosts, mut paths) = (Vec::new(), Vec::new());
        for c in r.conditions() {
            match c.field() {
                Some("host-header") => hosts.extend(
                    c.host_header_config().map(|h| h.values().to_vec()).filter(|v| !v.is_empty()).unwrap_or_else(|| c.values().to_vec()),
                ),
                Some("path-pattern") => paths.extend(
                    c.path_pattern_config().map(|p| p.values().to_vec()).filter(|v| !v.is_empty()).unwrap_or_else(|| c.values().to_vec()),
                ),
                // Any other condition makes the rule different from ours: record it as a
                // pseudo-host so it never equals a host/path-only rule.
                Some(other) => hosts.push(format!("<{other}>")),
                None => {}
            }
        }
        rules.push(Rule {
            arn: r.rule_arn().unwrap_or_default().to_string(),
            priority: r.priority().and_then(|p| p.parse().ok()).unwrap_or(0),
            hosts,
            paths,
            forward: forwards(r.actions()),
            tags: BTreeMap::new(),
        });
    }
    let tags = read_tags(aws, &rules.iter().map(|r| r.arn.clone()).collect::<Vec<_>>()).await?;
    for r in &mut rules {
        r.tags = tags.get(&r.arn).cloned().unwrap_or_default();
    }
    Ok((rules, default_forward))
}

fn conditions(hosts: &[String], paths: &[String]) -> Vec<elb::RuleCondition> {
    let mut out = Vec::new();
    if !hosts.is_empty() {
        out.push(
            elb::RuleCondition::builder()
                .field("host-header")
                .host_header_config(elb::HostHeaderConditionConfig::builder().set_values(Some(hosts.to_vec())).build())
                .build(),
        );
    }
    if !paths.is_empty() {
        out.push(
            elb::RuleCondition::builder()
                .field("path-pattern")
                .path_pattern_config(elb::PathPatternConditionConfig::builder().set_values(Some(paths.to_vec())).build())
                .build(),
        );
    }
    out
}

/// Executes the plan's actions in order; returns one line per action done.
pub async fn apply(aws: &Aws, ctx: &Context, seen: &Observed, plan: &AlbPlan) -> Result<Vec<String>, AwsError> {
    let mut arns = TargetGroupArns::new(seen.target_groups.iter().map(|t| (t.name.clone(), t.arn.clone())));
    apply_front(aws, ctx, 1, &mut arns, &plan.actions).await
}

/// Executes one front's actions in order (`ctx.listener_arn` is that front's listener); the
/// target groups it creates are tagged with the front ([`shards::FRONT_TAG`]). Front 1's default
/// goes back to the stack's target group, an extra front's to its fixed response.
pub(crate) async fn apply_front(
    aws: &Aws,
    ctx: &Context,
    front: u32,
    arns: &mut TargetGroupArns,
    actions: &[Action],
) -> Result<Vec<String>, AwsError> {
    let mut done = Vec::new();
    for a in actions {
        match a {
            Action::CreateTargetGroup { service, name, port, health } => {
                let r = aws
                    .elbv2
                    .create_target_group()
                    .name(name)
                    .protocol(elb::ProtocolEnum::Http)
                    .port(i32::from(*port))
                    .vpc_id(&ctx.vpc_id)
                    .target_type(elb::TargetTypeEnum::Instance)
                    .health_check_protocol(elb::ProtocolEnum::from(health.protocol.as_str()))
                    .health_check_port(&health.port)
                    .set_health_check_path(health.path.clone())
                    .set_matcher(health.matcher.as_ref().map(|m| elb::Matcher::builder().http_code(m).build()))
                    .tags(tag(DEPLOYMENT_TAG, &ctx.deployment))
                    .tags(tag(SERVICE_TAG, &service.to_string()))
                    .tags(tag(shards::FRONT_TAG, &shards::front_tag_value(front)))
                    .send()
                    .await
                    .map_err(|e| sdk_err(&format!("elbv2:CreateTargetGroup {name} ({service})"), e))?;
                arns.insert(name, elbv2::created_arn(&r));
                done.push(format!(
                    "created target group {name} (port {port}, health check {} {}) for {service}",
                    health.protocol, health.port
                ));
            }
            Action::ModifyHealthCheck { service, name, health } => {
                let arn = arns.get(name)?;
                aws.elbv2
                    .modify_target_group()
                    .target_group_arn(&arn)
                    .health_check_protocol(elb::ProtocolEnum::from(health.protocol.as_str()))
                    .health_check_port(&health.port)
                    .set_health_check_path(health.path.clone())
                    .set_matcher(health.matcher.as_ref().map(|m| elb::Matcher::builder().http_code(m).build()))
                    .send()
                    .await
                    .map_err(|e| sdk_err(&format!("elbv2:ModifyTargetGroup {name} ({service})"), e))?;
                done.push(format!("target group {name} of {service}: health check {} {}", health.protocol, health.port));
            }
            Action::Attach { name } => done.push(elbv2::attach(aws, &ctx.asg_name, name, &arns.get(name)?).await?),
            Action::CreateRule { service, priority, hosts, paths, target } => {
                let arn = arns.get(target)?;
                aws.elbv2
                    .create_rule()
                    .listener_arn(&ctx.listener_arn)
                    .priority(*priority as i32)
                    .set_conditions(Some(conditions(hosts, paths)))
                    .actions(forward(&arn))
                    .tags(tag(DEPLOYMENT_TAG, &ctx.deployment))
                    .tags(tag(SERVICE_TAG, &service.to_string()))
                    .send()
                    .await
                    .map_err(|e| sdk_err(&format!("elbv2:CreateRule priority {priority} for {service}"), e))?;
                done.push(format!("created rule {priority} for {service} → {target}"));
            }
            Action::ModifyRule { service, arn, priority, hosts, paths, target } => {
                let tg = arns.get(target)?;
                aws.elbv2
                    .modify_rule()
                    .rule_arn(arn)
                    .set_conditions(Some(conditions(hosts, paths)))
                    .actions(forward(&tg))
                    .send()
                    .await
                    .map_err(|e| sdk_err(&format!("elbv2:ModifyRule {arn} ({service})"), e))?;
                done.push(format!("updated rule {priority} for {service} → {target}"));
            }
            Action::SetDefault { target } => {
                let (action, what) = match target {
                    Some(t) => (forward(&arns.get(t)?), t.clone()),
                    None if front == 1 => (forward(&ctx.public_tg_arn), "the firewall stack's target group".to_string()),
                    None => (elbv2::no_service(), "a fixed 404".to_string()),
                };
                elbv2::set_default_action(aws, &ctx.listener_arn, action, &ctx.listener_arn).await?;
                done.push(format!("listener default action → {what}"));
            }
            Action::DeleteRule { service, arn, priority } => {
                let r = aws.elbv2.delete_rule().rule_arn(arn).send().await;
                super::already_done(r.map_err(|e| sdk_err(&format!("elbv2:DeleteRule {arn} ({service})"), e)), &["RuleNotFound"])?;
                done.push(format!("deleted rule {priority} of {service}"));
            }
            Action::Detach { name } => done.push(elbv2::detach(aws, &ctx.asg_name, name, &arns.get(name)?).await?),
            Action::DeleteTargetGroup { service, name } => {
                done.push(elbv2::delete_target_group(aws, &service.to_string(), name, &arns.get(name)?).await?)
            }
        }
    }
    Ok(done)
}

/// The context from the firewall stack's outputs; `None` when the stack does not exist.
pub async fn context(aws: &Aws, deployment: &str, firewall_stack: &str) -> Result<Option<Context>, AwsError> {
    let Some(out) = StackOutputs::read(aws, firewall_stack).await? else { return Ok(None) };
    Ok(Some(Context {
        deployment: deployment.to_string(),
        vpc_id: out.get("VpcId")?,
        listener_arn: out.get("PublicListenerArn")?,
        public_tg_arn: out.get("PublicTargetGroupArn")?,
        asg_name: out.get("FirewallAsgName")?,
    }))
}

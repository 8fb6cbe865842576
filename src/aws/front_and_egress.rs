//! The AWS side of a converge: the front load balancer and cluster egress, and when they run.
//! After every successful Panorama converge (`sync --once`, `sync --watch`, `up`): the load
//! balancer reconcile (`sync.manage_alb`: ALB rules, or with `elb_type = "network"` one NLB
//! listener per Service port; either over as many load balancers as the Services need) and the egress check (`network.outbound_via_firewall`); `down`
//! removes both before the stacks go. Sequencing only: the decisions are in
//! `pano_eks_core::front::alb`, `pano_eks_core::front::nlb` and `pano_eks_core::egress`, the I/O in the
//! adapters `alb`, `nlb` and `outbound`.

use pano_eks_core::{Facts, Plan};
use serde::Serialize;

use super::{Aws, alb, alb_shards, nlb, outbound};
use crate::config::{Config, ElbType};

/// What the front and egress steps did after one converge (each is `None` when not enabled).
#[derive(Debug, Default, Serialize)]
pub struct FrontAndEgressReport {
    pub alb: Option<alb_shards::AlbReport>,
    /// With an NLB front (`firewalls.elb_type = "network"`).
    pub nlb: Option<nlb::NlbReport>,
    pub outbound: Option<outbound::OutboundReport>,
    /// Conflicts and waits (the step did what it could), each naming its step.
    pub problems: Vec<String>,
    /// Failed AWS calls: the step stopped there (the next converge retries).
    pub errors: Vec<String>,
}

/// Whether the front or the egress step is enabled.
pub fn enabled(cfg: &Config) -> bool {
    cfg.sync.manage_alb || cfg.network.outbound_via_firewall
}

impl FrontAndEgressReport {
    /// Human lines: what changed, then every problem (conflicts included).
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(a) = &self.alb {
            out.extend(a.done.iter().map(|d| format!("alb: {d}")));
        }
        if let Some(n) = &self.nlb {
            out.extend(n.done.iter().map(|d| format!("nlb: {d}")));
        }
        if let Some(o) = &self.outbound {
            out.extend(o.done.iter().map(|d| format!("outbound: {d}")));
        }
        out.extend(self.problems.iter().map(|p| format!("warning: {p}")));
        out.extend(self.errors.iter().map(|e| format!("error: {e}")));
        out
    }
}

fn cluster_stacks(cfg: &Config) -> Vec<String> {
    cfg.clusters.iter().map(|c| cfg.cluster_stack(&c.name)).collect()
}

pub async fn outbound_context(aws: &Aws, cfg: &Config) -> Result<outbound::Context, String> {
    outbound::context(
        aws,
        &cfg.name,
        &cfg.firewall_asg(),
        &cfg.firewall_stack(),
        &cluster_stacks(cfg),
        cfg.network.existing_igw_id.as_deref(),
    )
    .await
    .map_err(|e| e.to_string())
}

/// The NLB part after a converge (one listener per protected Service port, over every NLB of the
/// front); `Ok(None)` when
/// the firewall stack does not exist.
pub async fn nlb_after_sync(aws: &Aws, cfg: &Config, plan: &Plan, facts: &Facts) -> Result<Option<nlb::NlbReport>, String> {
    let Some(ctx) = nlb::context(aws, &cfg.name, &cfg.firewall_stack()).await.map_err(|e| e.to_string())? else { return Ok(None) };
    let wanted = nlb::wanted(&ctx, &alb::wanted(plan, facts));
    nlb::reconcile(aws, &ctx, &wanted).await.map(Some).map_err(|e| e.to_string())
}

/// The ALB part after a converge; `Ok(None)` when the firewall stack does not exist.
pub async fn alb_after_sync(aws: &Aws, cfg: &Config, plan: &Plan, facts: &Facts) -> Result<Option<alb_shards::AlbReport>, String> {
    if cfg.firewalls.elb_type != ElbType::Application {
        return Err("listener rules need an ALB (firewalls.elb_type = \"application\")".into());
    }
    let Some(ctx) = alb::context(aws, &cfg.name, &cfg.firewall_stack()).await.map_err(|e| e.to_string())? else { return Ok(None) };
    let wanted = alb::wanted(plan, facts);
    alb_shards::reconcile(aws, &ctx, &wanted).await.map(Some).map_err(|e| e.to_string())
}

/// Runs the enabled front and egress steps after a successful converge. Returns what happened rather than
/// failing: the caller decides (`sync --once` and `up` exit non-zero on errors, `--watch` logs
/// and retries at the next converge).
pub async fn after_sync(aws: &Aws, cfg: &Config, plan: &Plan, facts: &Facts) -> FrontAndEgressReport {
    let mut report = FrontAndEgressReport::default();
    if cfg.sync.manage_alb && cfg.firewalls.elb_type == ElbType::Network {
        match nlb_after_sync(aws, cfg, plan, facts).await {
            Ok(Some(r)) => {
                for s in r.plan.conflicts() {
                    report.problems.push(format!("nlb: Service {} (port {}): {:?}: {}", s.service, s.port, s.state, s.reason));
                }
                report.problems.extend(r.fronts.problems.iter().map(|p| format!("nlb: {p}")));
                report.nlb = Some(r);
            }
            Ok(None) => report.errors.push(format!("nlb: firewall stack {} does not exist", cfg.firewall_stack())),
            Err(e) => report.errors.push(format!("nlb: {e}")),
        }
    } else if cfg.sync.manage_alb {
        match alb_after_sync(aws, cfg, plan, facts).await {
            Ok(Some(r)) => {
                for s in r.plan.conflicts() {
                    report.problems.push(format!("alb: Service {} (port {}): {:?}: {}", s.service, s.port, s.state, s.reason));
                }
                report.problems.extend(r.fronts.problems.iter().map(|p| format!("alb: {p}")));
                report.alb = Some(r);
            }
            Ok(None) => report.errors.push(format!("alb: firewall stack {} does not exist", cfg.firewall_stack())),
            Err(e) => report.errors.push(format!("alb: {e}")),
        }
    }
    if cfg.network.outbound_via_firewall {
        match ensure_outbound(aws, cfg).await {
            Ok(r) => {
                report.problems.extend(r.plan.problems.iter().cloned());
                report.outbound = Some(r);
            }
            Err(e) => report.errors.push(format!("outbound: {e}")),
        }
    }
    report
}

pub async fn ensure_outbound(aws: &Aws, cfg: &Config) -> Result<outbound::OutboundReport, String> {
    let ctx = outbound_context(aws, cfg).await?;
    outbound::ensure(aws, &ctx).await.map_err(|e| e.to_string())
}

/// `down`: every target group and rule of ours removed (default action restored), egress back
/// on the internet gateway, our EIPs released. Runs whatever the config says now: an option
/// turned off since `up` must not leave resources behind. Returns the lines done.
pub async fn remove_all(aws: &Aws, cfg: &Config) -> Result<Vec<String>, Vec<String>> {
    let (mut done, mut errors) = (Vec::new(), Vec::new());
    // An NLB front's listeners go first: a listener still forwarding keeps its target group.
    if cfg.firewalls.elb_type == ElbType::Network {
        match nlb::context(aws, &cfg.name, &cfg.firewall_stack()).await {
            Ok(Some(ctx)) => match nlb::reconcile(aws, &ctx, &[]).await {
                Ok(r) => done.extend(r.done.into_iter().map(|d| format!("nlb: {d}"))),
                Err(e) => errors.push(format!("nlb: {e}")),
            },
            Ok(None) => {}
            Err(e) => done.push(format!("nlb: skipped: {e}")),
        }
    }
    // (An NLB listener has no rules: the ALB reconcile is for an ALB front only.)
    let alb_ctx =
        if cfg.firewalls.elb_type == ElbType::Application { alb::context(aws, &cfg.name, &cfg.firewall_stack()).await } else { Ok(None) };
    match alb_ctx {
        Ok(Some(ctx)) => match alb_shards::reconcile(aws, &ctx, &[]).await {
            Ok(r) => done.extend(r.done.into_iter().map(|d| format!("alb: {d}"))),
            Err(e) => errors.push(format!("alb: {e}")),
        },
        Ok(None) => {}
        // A stack without outputs (failed create) never got a listener to attach rules to; any
        // target group left would show in the residue report.
        Err(e) => done.push(format!("alb: skipped: {e}")),
    }
    match outbound_context(aws, cfg).await {
        Ok(ctx) => match outbound::undo(aws, &ctx).await {
            Ok(r) => done.extend(r.done.into_iter().map(|d| format!("outbound: {d}"))),
            Err(e) => errors.push(format!("outbound: {e}")),
        },
        Err(e) => errors.push(format!("outbound: {e}")),
    }
    if errors.is_empty() { Ok(done) } else { Err(errors) }
}

//! The public Network Load Balancer in front of the firewalls (`firewalls.elb_type = "network"`
//! with `sync.manage_alb`): one TCP listener and one target group per protected Service port,
//! issue 13 item 6. An NLB has no host or path rules, so the port is all that tells Services
//! apart; the firewall stack's own listener (TCP 80) goes to a Service on port 80 the way the
//! ALB's default action does, and back to the stack's target group when none is.
//!
//! PURE: what exists (listeners and target groups as the adapter read them, each with its owner
//! from the ownership tags by the ALB's rule, [`alb::owner`]) and what is wanted ([`nlb_wanted`])
//! → ordered actions and one outcome per Service. The adapter (`src/aws/nlb.rs`) observes and
//! applies, deciding nothing.
//!
//! The NLB's own security group admits the internet on the stack's listener port only; each
//! Service listener's port is authorized on it alongside the listener and revoked with it, so
//! the group never admits a port no listener serves.
//!
//! Limit: 50 listeners per Network Load Balancer, not adjustable (Elastic Load Balancing,
//! "Quotas for your Network Load Balancers"), the stack's own and anyone else's included. This
//! plans one NLB; [`crate::front::nlb_shards`] gives each NLB of the front its share so none needs
//! a 51st (a Service that still would, on a front of someone else's listeners, is a conflict,
//! reported, never half-created).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::front::alb;

/// Listeners per Network Load Balancer (ELB quotas; not adjustable).
pub const NLB_LISTENER_LIMIT: usize = 50;

/// A protected Service wanting its port on the NLB. `service` is `cluster/namespace/name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NlbWanted {
    pub service: String,
    pub port: u16,
    /// The target group name for this Service and port (the adapter's naming scheme).
    pub target_group: String,
}

/// A target group of the VPC; `owner` is the Service whose ownership tags it carries for this
/// deployment, `None` when it is not ours.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NlbTargetGroup {
    pub arn: String,
    pub name: String,
    pub port: u16,
    pub owner: Option<String>,
    /// The front it serves ([`crate::front::shards::front_of`] its tags: 1 without a front tag).
    pub front: u32,
}

/// A listener of the NLB; `owner` as for target groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NlbListener {
    pub arn: String,
    pub port: u16,
    pub forward: Vec<String>,
    pub owner: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NlbObserved {
    pub target_groups: Vec<NlbTargetGroup>,
    pub listeners: Vec<NlbListener>,
    /// Target group ARNs attached to the firewall autoscaling group.
    pub asg_target_groups: BTreeSet<String>,
    /// Ports our ingress rules open on the NLB's security group (rule ids by port).
    pub ingress: BTreeMap<u16, String>,
}

/// The firewall stack's side: its listener (TCP `default_port`) and target group. An extra
/// front ([`crate::front::nlb_shards`]) has no stack listener: `default_port` is `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NlbContext {
    pub default_listener_arn: String,
    pub default_port: Option<u16>,
    pub public_tg_arn: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum NlbAction {
    /// TCP, the Service's port, instance targets, TCP health check on the traffic port.
    CreateTargetGroup {
        service: String,
        name: String,
        port: u16,
    },
    Attach {
        name: String,
    },
    /// TCP `port` from anywhere on the NLB's security group (before its listener exists).
    AuthorizeIngress {
        service: String,
        port: u16,
    },
    CreateListener {
        service: String,
        port: u16,
        target: String,
    },
    ModifyListener {
        service: String,
        arn: String,
        port: u16,
        target: String,
    },
    /// The stack's listener forwards to `target` (by name); `None`: back to the stack's group.
    SetDefault {
        target: Option<String>,
    },
    DeleteListener {
        service: String,
        arn: String,
        port: u16,
    },
    /// After the listener is gone.
    RevokeIngress {
        port: u16,
        rule: String,
    },
    Detach {
        name: String,
    },
    DeleteTargetGroup {
        service: String,
        name: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NlbState {
    /// Its own listener on its port forwards to its target group.
    Listening,
    /// The stack's listener (its port is the stack's) forwards to its target group.
    Default,
    Conflict,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NlbService {
    pub service: String,
    pub port: u16,
    pub target_group: Option<String>,
    pub state: NlbState,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NlbPlan {
    pub actions: Vec<NlbAction>,
    pub services: Vec<NlbService>,
    /// Listeners the NLB has once the plan is applied (counted against [`NLB_LISTENER_LIMIT`]).
    pub listeners_after: usize,
}

impl NlbPlan {
    pub fn conflicts(&self) -> impl Iterator<Item = &NlbService> {
        self.services.iter().filter(|s| s.state == NlbState::Conflict)
    }
}

/// The ALB's wanted Services as the NLB planner takes them: one per Service and port, its
/// target group named as the ALB's ([`alb::tg_name`]).
pub fn nlb_wanted(deployment: &str, wanted: &[alb::Wanted]) -> Vec<NlbWanted> {
    wanted
        .iter()
        .map(|w| NlbWanted { service: w.key.to_string(), port: w.port, target_group: alb::tg_name(deployment, &w.key, w.port) })
        .collect()
}

/// How our ingress rules on the NLB's security group are described (their ownership mark):
/// `pano-eks:<deployment> <service>`.
pub fn ingress_description(deployment: &str, service: &str) -> String {
    format!("pano-eks:{deployment} {service}")
}

/// The port an ingress rule of the NLB's security group opens for us: inbound, one port, and
/// described with this deployment's mark ([`ingress_description`]). `None`: not ours.
pub fn our_ingress_port(deployment: &str, inbound: bool, description: Option<&str>, from: Option<i32>, to: Option<i32>) -> Option<u16> {
    let mine = format!("pano-eks:{deployment} ");
    let ours = inbound && description.is_some_and(|d| d.starts_with(&mine));
    match (ours, from, to) {
        (true, Some(from), Some(to)) if from == to => u16::try_from(from).ok(),
        _ => None,
    }
}

/// Desired vs existing → actions in a safe order (target groups, attaches, listeners, default,
/// listener deletes, detaches, target group deletes) and one outcome per wanted Service.
pub fn plan_nlb(ctx: &NlbContext, wanted: &[NlbWanted], seen: &NlbObserved) -> NlbPlan {
    let mut wanted = wanted.to_vec();
    wanted.sort_by(|a, b| (&a.service, a.port).cmp(&(&b.service, b.port)));
    let tg_by_name: BTreeMap<&str, &NlbTargetGroup> = seen.target_groups.iter().map(|t| (t.name.as_str(), t)).collect();
    let tg_by_arn: BTreeMap<&str, &NlbTargetGroup> = seen.target_groups.iter().map(|t| (t.arn.as_str(), t)).collect();
    let listener_on: BTreeMap<u16, &NlbListener> = seen.listeners.iter().map(|l| (l.port, l)).collect();
    let still_wanted: BTreeSet<&str> = wanted.iter().map(|w| w.service.as_str()).collect();
    // Listeners that stay whatever we do: everything not ours (the stack's listener included).
    let foreign_listeners = seen.listeners.iter().filter(|l| l.owner.is_none()).count();

    let (mut creates, mut attaches, mut listener_ops) = (Vec::new(), Vec::new(), Vec::new());
    let mut default_op = None;
    let mut default_for: Option<String> = None;
    let mut outcomes = Vec::new();
    let mut keep_tgs: BTreeSet<String> = BTreeSet::new();
    let mut keep_listeners: BTreeSet<String> = BTreeSet::new();
    let mut ports: BTreeMap<u16, String> = BTreeMap::new();
    let mut ours_after = 0usize;
    let mut ingress_ops = Vec::new();
    let mut keep_ingress: BTreeSet<u16> = BTreeSet::new();

    for w in &wanted {
        let mut out =
            NlbService { service: w.service.clone(), port: w.port, target_group: None, state: NlbState::Conflict, reason: String::new() };
        if let Some(other) = ports.get(&w.port) {
            out.reason = format!("port {} is already Service {other}'s listener (an NLB tells Services apart by port only)", w.port);
            outcomes.push(out);
            continue;
        }
        // The target group.
        let tg_ok = match tg_by_name.get(w.target_group.as_str()) {
            Some(t) if t.owner.as_deref() == Some(w.service.as_str()) => true,
            Some(t) => {
                out.reason = format!("target group name {} is taken by {} (not owned by this Service)", w.target_group, t.arn);
                false
            }
            None => true,
        };
        if !tg_ok {
            outcomes.push(out);
            continue;
        }
        // The listener.
        let existing = listener_on.get(&w.port).copied();
        let listener_plan = listener_for(ctx, w, existing, &tg_by_arn, &still_wanted, (foreign_listeners, ours_after));
        let listener = match listener_plan {
            Ok(l) => l,
            Err(reason) => {
                out.reason = reason;
                outcomes.push(out);
                continue;
            }
        };
        ports.insert(w.port, w.service.clone());
        let tg = tg_by_name.get(w.target_group.as_str()).copied();
        if tg.is_none() {
            creates.push(NlbAction::CreateTargetGroup { service: w.service.clone(), name: w.target_group.clone(), port: w.port });
        }
        if !tg.is_some_and(|t| seen.asg_target_groups.contains(&t.arn)) {
            attaches.push(NlbAction::Attach { name: w.target_group.clone() });
        }
        keep_tgs.insert(w.target_group.clone());
        out.target_group = Some(w.target_group.clone());
        let forwards_here = |forward: &[String]| forward.len() == 1 && tg.is_some_and(|t| t.arn == forward[0]);
        match listener {
            None => {
                if !existing.is_some_and(|l| forwards_here(&l.forward)) {
                    default_op = Some(NlbAction::SetDefault { target: Some(w.target_group.clone()) });
                }
                default_for = Some(w.target_group.clone());
                out.state = NlbState::Default;
            }
            Some(Some(l)) => {
                keep_listeners.insert(l.arn.clone());
                keep_ingress.insert(w.port);
                if !seen.ingress.contains_key(&w.port) {
                    ingress_ops.push(NlbAction::AuthorizeIngress { service: w.service.clone(), port: w.port });
                }
                ours_after += 1;
                if !forwards_here(&l.forward) {
                    listener_ops.push(NlbAction::ModifyListener {
                        service: w.service.clone(),
                        arn: l.arn.clone(),
                        port: w.port,
                        target: w.target_group.clone(),
                    });
                }
                out.state = NlbState::Listening;
            }
            Some(None) => {
                ours_after += 1;
                keep_ingress.insert(w.port);
                if !seen.ingress.contains_key(&w.port) {
                    ingress_ops.push(NlbAction::AuthorizeIngress { service: w.service.clone(), port: w.port });
                }
                listener_ops.push(NlbAction::CreateListener { service: w.service.clone(), port: w.port, target: w.target_group.clone() });
                out.state = NlbState::Listening;
            }
        }
        outcomes.push(out);
    }

    // The stack's listener goes back to the stack's group when no Service holds it.
    let default_forward: Vec<&String> =
        ctx.default_port.and_then(|p| listener_on.get(&p)).map(|l| l.forward.iter().collect()).unwrap_or_default();
    let default_is_ours = default_forward.iter().any(|a| tg_by_arn.get(a.as_str()).is_some_and(|t| t.owner.is_some()));
    if default_for.is_none() && default_is_ours {
        default_op = Some(NlbAction::SetDefault { target: None });
    }

    let (deletes, revokes, detaches, tg_deletes) = garbage(seen, &keep_listeners, &keep_ingress, &keep_tgs);

    let mut actions = creates;
    actions.extend(attaches);
    actions.extend(ingress_ops);
    actions.extend(listener_ops);
    actions.extend(default_op);
    actions.extend(deletes);
    actions.extend(revokes);
    actions.extend(detaches);
    actions.extend(tg_deletes);
    outcomes.sort_by(|a, b| (&a.service, a.port).cmp(&(&b.service, b.port)));
    NlbPlan { actions, services: outcomes, listeners_after: foreign_listeners + ours_after }
}

/// What the Service's port needs of the listeners: `Ok(None)` the stack's listener (the default
/// port), `Ok(Some(Some(l)))` our listener `l` as it is, `Ok(Some(None))` a new listener (within
/// the 50-listener limit, counting the listeners that stay: (not ours, ours for other Services)),
/// `Err` why not.
fn listener_for<'a>(
    ctx: &NlbContext,
    w: &NlbWanted,
    existing: Option<&'a NlbListener>,
    tg_by_arn: &BTreeMap<&str, &NlbTargetGroup>,
    still_wanted: &BTreeSet<&str>,
    (foreign_listeners, ours_after): (usize, usize),
) -> Result<Option<Option<&'a NlbListener>>, String> {
    if Some(w.port) == ctx.default_port {
        let current: Vec<&String> = existing.map(|l| l.forward.iter().collect()).unwrap_or_default();
        let foreign =
            current.iter().any(|a| a.as_str() != ctx.public_tg_arn && tg_by_arn.get(a.as_str()).is_none_or(|t| t.owner.is_none()));
        if foreign {
            let shown: Vec<&str> = current.iter().map(|s| s.as_str()).collect();
            return Err(format!("the stack's listener on {} forwards to {} (not ours): not overwritten", w.port, shown.join(", ")));
        }
        return Ok(None);
    }
    match existing {
        Some(l) if l.owner.as_deref() == Some(w.service.as_str()) => Ok(Some(Some(l))),
        Some(l) => match &l.owner {
            Some(gone) if !still_wanted.contains(gone.as_str()) => {
                Err(format!("port {} still has the listener of Service {gone}, removed now; taken at the next sync", w.port))
            }
            Some(other) => Err(format!("port {} is already Service {other}'s listener", w.port)),
            None => Err(format!("port {} has a listener not ours ({})", w.port, l.arn)),
        },
        None if foreign_listeners + ours_after + 1 > NLB_LISTENER_LIMIT => Err(format!(
            "the NLB would need a listener beyond its limit of {NLB_LISTENER_LIMIT} ({foreign_listeners} not ours, {ours_after} for other Services)"
        )),
        None => Ok(Some(None)),
    }
}

/// Listeners, ingress rules and target groups of ours no longer wanted:
/// (listener deletes, ingress revokes, detaches, target group deletes).
fn garbage(
    seen: &NlbObserved,
    keep_listeners: &BTreeSet<String>,
    keep_ingress: &BTreeSet<u16>,
    keep_tgs: &BTreeSet<String>,
) -> (Vec<NlbAction>, Vec<NlbAction>, Vec<NlbAction>, Vec<NlbAction>) {
    let mut deletes = Vec::new();
    let mut ours_listeners: Vec<&NlbListener> = seen.listeners.iter().filter(|l| l.owner.is_some()).collect();
    ours_listeners.sort_by_key(|l| l.port);
    for l in ours_listeners {
        if !keep_listeners.contains(&l.arn) {
            deletes.push(NlbAction::DeleteListener { service: l.owner.clone().unwrap_or_default(), arn: l.arn.clone(), port: l.port });
        }
    }
    let revokes: Vec<NlbAction> = seen
        .ingress
        .iter()
        .filter(|(port, _)| !keep_ingress.contains(port))
        .map(|(port, rule)| NlbAction::RevokeIngress { port: *port, rule: rule.clone() })
        .collect();
    let (mut detaches, mut tg_deletes) = (Vec::new(), Vec::new());
    let mut ours_tgs: Vec<&NlbTargetGroup> = seen.target_groups.iter().filter(|t| t.owner.is_some()).collect();
    ours_tgs.sort_by(|a, b| a.name.cmp(&b.name));
    for t in ours_tgs {
        if keep_tgs.contains(&t.name) {
            continue;
        }
        if seen.asg_target_groups.contains(&t.arn) {
            detaches.push(NlbAction::Detach { name: t.name.clone() });
        }
        tg_deletes.push(NlbAction::DeleteTargetGroup { service: t.owner.clone().unwrap_or_default(), name: t.name.clone() });
    }
    (deletes, revokes, detaches, tg_deletes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> NlbContext {
        NlbContext { default_listener_arn: "lst-80".into(), default_port: Some(80), public_tg_arn: "tg-public".into() }
    }

    fn want(svc: &str, port: u16) -> NlbWanted {
        NlbWanted { service: format!("shop/default/{svc}"), port, target_group: format!("pk-{svc}-{port}") }
    }

    /// The firewall stack as created: its listener on 80 → its target group, attached to the ASG.
    fn base() -> NlbObserved {
        NlbObserved {
            target_groups: vec![NlbTargetGroup { arn: "tg-public".into(), name: "demo-fw-public".into(), port: 81, owner: None, front: 1 }],
            listeners: vec![NlbListener { arn: "lst-80".into(), port: 80, forward: vec!["tg-public".into()], owner: None }],
            asg_target_groups: BTreeSet::from(["tg-public".to_string()]),
            ingress: BTreeMap::new(),
        }
    }

    /// What AWS shows after the plan (arn = "arn-<name>", listener arn = "lst-<port>").
    fn applied(seen: &NlbObserved, p: &NlbPlan) -> NlbObserved {
        let mut s = seen.clone();
        let arn = |n: &str| format!("arn-{n}");
        for a in &p.actions {
            match a {
                NlbAction::CreateTargetGroup { service, name, port } => s.target_groups.push(NlbTargetGroup {
                    arn: arn(name),
                    name: name.clone(),
                    port: *port,
                    owner: Some(service.clone()),
                    front: 1,
                }),
                NlbAction::Attach { name } => {
                    s.asg_target_groups.insert(arn(name));
                }
                NlbAction::AuthorizeIngress { port, .. } => {
                    s.ingress.insert(*port, format!("sgr-{port}"));
                }
                NlbAction::RevokeIngress { port, .. } => {
                    s.ingress.remove(port);
                }
                NlbAction::CreateListener { service, port, target } => s.listeners.push(NlbListener {
                    arn: format!("lst-{port}"),
                    port: *port,
                    forward: vec![arn(target)],
                    owner: Some(service.clone()),
                }),
                NlbAction::ModifyListener { arn: a, target, .. } => {
                    s.listeners.iter_mut().find(|l| &l.arn == a).unwrap().forward = vec![arn(target)];
                }
                NlbAction::SetDefault { target } => {
                    s.listeners.iter_mut().find(|l| l.port == 80).unwrap().forward =
                        vec![target.as_deref().map(arn).unwrap_or_else(|| "tg-public".into())]
                }
                NlbAction::DeleteListener { arn: a, .. } => s.listeners.retain(|l| &l.arn != a),
                NlbAction::Detach { name } => {
                    s.asg_target_groups.remove(&arn(name));
                }
                NlbAction::DeleteTargetGroup { name, .. } => s.target_groups.retain(|t| &t.name != name),
            }
        }
        s
    }

    fn kinds(p: &NlbPlan) -> Vec<&'static str> {
        p.actions
            .iter()
            .map(|a| match a {
                NlbAction::CreateTargetGroup { .. } => "create-tg",
                NlbAction::Attach { .. } => "attach",
                NlbAction::AuthorizeIngress { .. } => "authorize",
                NlbAction::RevokeIngress { .. } => "revoke",
                NlbAction::CreateListener { .. } => "create-listener",
                NlbAction::ModifyListener { .. } => "modify-listener",
                NlbAction::SetDefault { target: Some(_) } => "default-to-service",
                NlbAction::SetDefault { target: None } => "default-to-stack",
                NlbAction::DeleteListener { .. } => "delete-listener",
                NlbAction::Detach { .. } => "detach",
                NlbAction::DeleteTargetGroup { .. } => "delete-tg",
            })
            .collect()
    }

    fn states(p: &NlbPlan) -> Vec<(String, u16, NlbState)> {
        p.services.iter().map(|s| (s.service.rsplit('/').next().unwrap().to_string(), s.port, s.state)).collect()
    }

    #[test]
    fn each_service_port_gets_its_own_listener_and_target_group_then_converges() {
        let wanted = [want("api", 8443), want("shop", 443), want("web", 80)];
        let p = plan_nlb(&ctx(), &wanted, &base());
        assert_eq!(
            kinds(&p),
            [
                "create-tg",
                "create-tg",
                "create-tg",
                "attach",
                "attach",
                "attach",
                "authorize",
                "authorize",
                "create-listener",
                "create-listener",
                "default-to-service"
            ]
        );
        assert_eq!(
            states(&p),
            [("api".into(), 8443, NlbState::Listening), ("shop".into(), 443, NlbState::Listening), ("web".into(), 80, NlbState::Default)]
        );
        assert_eq!(p.listeners_after, 3, "the stack's listener + two");
        // The NLB's group opens exactly the Service listeners' ports (80 is the stack's own).
        let opened: Vec<u16> =
            p.actions.iter().filter_map(|a| if let NlbAction::AuthorizeIngress { port, .. } = a { Some(*port) } else { None }).collect();
        assert_eq!(opened, [8443, 443]);
        let after = applied(&base(), &p);
        let again = plan_nlb(&ctx(), &wanted, &after);
        assert!(again.actions.is_empty(), "{:?}", again.actions);
        assert_eq!(again.services, p.services);
        // Every Service gone: listeners, then target groups, and the stack's listener back.
        let gone = plan_nlb(&ctx(), &[], &after);
        assert_eq!(
            kinds(&gone),
            [
                "default-to-stack",
                "delete-listener",
                "delete-listener",
                "revoke",
                "revoke",
                "detach",
                "detach",
                "detach",
                "delete-tg",
                "delete-tg",
                "delete-tg"
            ]
        );
        assert_eq!(applied(&after, &gone), base());
    }

    /// Table: (listeners already on the NLB not ours, Services wanted) → listening, conflicts.
    #[test]
    fn listeners_are_counted_against_the_limit_of_50() {
        let cases: &[(usize, usize, usize, usize)] = &[
            // (foreign listeners besides the stack's, services, listening, conflicts)
            (0, 3, 3, 0),
            (0, 49, 49, 0),
            (0, 50, 49, 1),
            (10, 40, 39, 1),
            (48, 2, 1, 1),
            (49, 1, 0, 1),
        ];
        for &(foreign, n, listening, conflicts) in cases {
            let mut seen = base();
            for i in 0..foreign {
                seen.listeners.push(NlbListener { arn: format!("lst-x{i}"), port: 20_000 + i as u16, forward: vec![], owner: None });
            }
            let wanted: Vec<NlbWanted> = (0..n).map(|i| want(&format!("s{i:02}"), 10_000 + i as u16)).collect();
            let p = plan_nlb(&ctx(), &wanted, &seen);
            let got_listening = p.services.iter().filter(|s| s.state == NlbState::Listening).count();
            assert_eq!((got_listening, p.conflicts().count()), (listening, conflicts), "foreign {foreign}, services {n}");
            assert!(p.listeners_after <= NLB_LISTENER_LIMIT, "{}", p.listeners_after);
            for c in p.conflicts() {
                assert!(c.reason.contains("limit of 50"), "{}", c.reason);
                assert!(
                    !p.actions.iter().any(|a| matches!(a, NlbAction::CreateTargetGroup { service, .. } if *service == c.service)),
                    "half-created"
                );
            }
            // Existing listeners of ours count too: a re-run with everything applied is stable.
            let after = applied(&seen, &p);
            assert!(plan_nlb(&ctx(), &wanted, &after).actions.is_empty(), "foreign {foreign}, services {n}");
        }
    }

    #[test]
    fn conflicts_are_reported_never_overwritten() {
        // Two Services on one port: the first in key order gets it.
        let p = plan_nlb(&ctx(), &[want("b", 443), want("a", 443)], &base());
        assert_eq!(states(&p), [("a".into(), 443, NlbState::Listening), ("b".into(), 443, NlbState::Conflict)]);
        assert!(p.services[1].reason.contains("already Service shop/default/a's listener"));
        // A listener not ours on the port.
        let mut seen = base();
        seen.listeners.push(NlbListener { arn: "lst-manual".into(), port: 443, forward: vec!["tg-manual".into()], owner: None });
        let p = plan_nlb(&ctx(), &[want("a", 443)], &seen);
        assert!(p.actions.is_empty() && p.services[0].reason.contains("lst-manual"), "{p:?}");
        // The stack's listener pointed elsewhere by someone: port-80 Service is a conflict.
        let mut seen = base();
        seen.listeners[0].forward = vec!["tg-manual".into()];
        let p = plan_nlb(&ctx(), &[want("web", 80)], &seen);
        assert!(p.actions.is_empty() && p.services[0].reason.contains("not overwritten"), "{p:?}");
        // Our target group name held by a group not ours.
        let mut seen = base();
        seen.target_groups.push(NlbTargetGroup { arn: "tg-squat".into(), name: "pk-a-443".into(), port: 443, owner: None, front: 1 });
        let p = plan_nlb(&ctx(), &[want("a", 443)], &seen);
        assert!(p.actions.is_empty() && p.services[0].reason.contains("tg-squat"), "{p:?}");
    }

    #[test]
    fn a_port_handed_from_a_departing_service_converges_in_two_syncs() {
        let first = applied(&base(), &plan_nlb(&ctx(), &[want("old", 443)], &base()));
        let p = plan_nlb(&ctx(), &[want("new", 443)], &first);
        assert_eq!(p.services[0].state, NlbState::Conflict);
        assert!(p.services[0].reason.contains("taken at the next sync"), "{}", p.services[0].reason);
        assert_eq!(kinds(&p), ["delete-listener", "revoke", "detach", "delete-tg"]);
        let second = applied(&first, &p);
        let p2 = plan_nlb(&ctx(), &[want("new", 443)], &second);
        assert_eq!(states(&p2), [("new".into(), 443, NlbState::Listening)]);
        assert!(plan_nlb(&ctx(), &[want("new", 443)], &applied(&second, &p2)).actions.is_empty());
    }

    /// Table: which ingress rules of the NLB's security group are ours, and the port they open.
    #[test]
    fn ingress_rules_are_ours_by_description_direction_and_a_single_port() {
        let mark = ingress_description("demo", "shop/default/web");
        assert_eq!(mark, "pano-eks:demo shop/default/web");
        let cases: &[(bool, Option<&str>, Option<i32>, Option<i32>, Option<u16>)] = &[
            (true, Some(&mark), Some(443), Some(443), Some(443)),
            (false, Some(&mark), Some(443), Some(443), None),
            (true, Some("pano-eks:other shop/default/web"), Some(443), Some(443), None),
            (true, Some("pano-eks:demo-2 shop/default/web"), Some(443), Some(443), None),
            (true, Some("opened by hand"), Some(443), Some(443), None),
            (true, None, Some(443), Some(443), None),
            (true, Some(&mark), Some(8000), Some(8100), None),
            (true, Some(&mark), Some(-1), Some(-1), None),
            (true, Some(&mark), None, None, None),
        ];
        for (inbound, description, from, to, want) in cases {
            assert_eq!(our_ingress_port("demo", *inbound, *description, *from, *to), *want, "{inbound} {description:?} {from:?} {to:?}");
        }
    }

    #[test]
    fn a_listener_of_ours_pointing_elsewhere_is_repointed() {
        let mut seen = applied(&base(), &plan_nlb(&ctx(), &[want("a", 443)], &base()));
        seen.listeners.iter_mut().find(|l| l.port == 443).unwrap().forward = vec!["tg-public".into()];
        let p = plan_nlb(&ctx(), &[want("a", 443)], &seen);
        assert_eq!(kinds(&p), ["modify-listener"]);
    }
}

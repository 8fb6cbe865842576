//! NLB fronts that shard (`firewalls.elb_type = "network"` with `sync.manage_alb`): one NLB holds
//! at most 50 listeners (the stack's own included), one per protected Service port; when the
//! Services need more, further NLBs (`<deployment>-front-2`, …, named as the ALB shards:
//! [`shards::front_name`]) take the rest, each planned by [`nlb::plan_nlb`] on its share.
//!
//! PURE. Inputs: the wanted Service ports ([`nlb::nlb_wanted`]) and every NLB of the front as
//! observed ([`NlbFrontsObserved`]: the firewall stack's NLB is front 1, the extra ones are found
//! by their `pano-eks:deployment` + `pano-eks:front` tags). Output ([`NlbShardedPlan`]): the
//! fronts to create, one [`NlbPlan`] per front, the firewalls registered directly where the
//! autoscaling group cannot take a group ([`shards::AsgBudget`]), the fronts to remove, each
//! Service's front. The adapter (`src/aws/nlb.rs`) observes and applies.
//!
//! * **Room.** A front holds [`NLB_LISTENER_LIMIT`] listeners minus those not ours (front 1:
//!   the stack's TCP 80 listener, so 49 Services). A Service on the stack's listener port takes
//!   that listener (front 1), not a slot.
//! * **Assignment** is the ALB shards' ([`shards::assign_with`]): a Service stays on the front that
//!   holds its listener or target group (`pano-eks:front` tag), a new one goes to the lowest front
//!   with room, a front is created when none has any; an extra front is removed when its last
//!   Service has gone (never emptied by moving Services: their DNS name would change).
//! * **One port, one Service, over every front.** Two Services on one port stay a conflict even
//!   though different NLBs could each listen on it: the firewall tells the Services apart by the
//!   destination port alone (one inbound NAT rule per label port on its untrust address), so the
//!   Panorama plan already admits only the oldest claim of a label port; a second one here is
//!   refused the same way (it follows the port's holder onto its front, where [`nlb::plan_nlb`]
//!   reports it), never given a listener that the firewalls would send to another Service.
//! * **Security groups.** Every front has the stack NLB's security groups (the adapter copies
//!   them); a Service listener's port is authorized there once, by the plan of the front that
//!   serves the port (or last served it, for the revoke).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::front::nlb::{self, NLB_LISTENER_LIMIT, NlbAction, NlbContext, NlbListener, NlbObserved, NlbPlan, NlbTargetGroup, NlbWanted};
use crate::front::shards::{self, FrontAction, Targets};

/// One NLB of the front as observed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NlbFront {
    /// 1: the firewall stack's; ≥ 2: an extra one of ours.
    pub number: u32,
    pub name: String,
    pub arn: String,
    pub dns_name: String,
    pub listeners: Vec<NlbListener>,
}

/// Every NLB of the front and what they share: the VPC's target groups (owner and front from
/// their tags), the firewall group's attachments and instances, the targets of our unattached
/// groups, and our ingress rules on the (shared) security group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NlbFrontsObserved {
    pub fronts: Vec<NlbFront>,
    pub target_groups: Vec<NlbTargetGroup>,
    pub asg_target_groups: BTreeSet<String>,
    pub asg_instances: BTreeSet<String>,
    /// Registered instance targets by target group ARN (read for our groups not attached).
    pub registered: BTreeMap<String, BTreeSet<String>>,
    /// Ports our ingress rules open (rule ids by port).
    pub ingress: BTreeMap<u16, String>,
}

/// A Service port's front.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NlbServiceFront {
    /// `cluster/namespace/name`.
    pub service: String,
    pub port: u16,
    pub front: u32,
    pub front_name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NlbShardedPlan {
    /// Before everything else ([`FrontAction::CreateFront`]: an NLB with no listener).
    pub create: Vec<FrontAction>,
    /// One plan per front (number order), after `create`; attachments past the autoscaling
    /// group's limit are left out (see `targets`).
    pub fronts: Vec<(u32, NlbPlan)>,
    /// After the fronts' plans.
    pub targets: Vec<Targets>,
    /// Last.
    pub remove: Vec<FrontAction>,
    pub services: Vec<NlbServiceFront>,
    /// What could not be done as wanted (a front kept for a listener not ours on it).
    pub problems: Vec<String>,
}

impl NlbShardedPlan {
    /// Every front's Service outcomes, sorted.
    pub fn outcomes(&self) -> Vec<&nlb::NlbService> {
        let mut out: Vec<&nlb::NlbService> = self.fronts.iter().flat_map(|(_, p)| p.services.iter()).collect();
        out.sort_by(|a, b| (&a.service, a.port).cmp(&(&b.service, b.port)));
        out
    }

    pub fn conflicts(&self) -> impl Iterator<Item = &nlb::NlbService> {
        self.outcomes().into_iter().filter(|s| s.state == nlb::NlbState::Conflict)
    }
}

/// How many Service listeners a front can take: the limit less the listeners not ours.
pub fn room(front: &NlbFront) -> usize {
    NLB_LISTENER_LIMIT.saturating_sub(front.listeners.iter().filter(|l| l.owner.is_none()).count())
}

/// The whole NLB front: assignment, one NLB plan per front on its share of the observed state,
/// the autoscaling group's attachment budget, the fronts to create and remove. `ctx` is front
/// 1's (the stack's listener); `deployment` names new fronts.
pub fn plan(deployment: &str, ctx: &NlbContext, wanted: &[NlbWanted], seen: &NlbFrontsObserved) -> NlbShardedPlan {
    let mut fronts: Vec<&NlbFront> = seen.fronts.iter().collect();
    fronts.sort_by_key(|f| f.number);
    let held = |f: &NlbFront| -> BTreeSet<String> {
        let by_listener = f.listeners.iter().filter_map(|l| l.owner.clone());
        let by_tg = seen.target_groups.iter().filter(|t| t.front == f.number).filter_map(|t| t.owner.clone());
        by_listener.chain(by_tg).collect()
    };
    let loads: Vec<(u32, usize, BTreeSet<String>)> = fronts.iter().map(|f| (f.number, room(f), held(f))).collect();

    // One Service per port: the one holding our listener on it (any front), else the first.
    let listener_owner: BTreeMap<u16, &str> =
        fronts.iter().flat_map(|f| f.listeners.iter()).filter_map(|l| Some((l.port, l.owner.as_deref()?))).collect();
    let mut by_port: BTreeMap<u16, Vec<&NlbWanted>> = BTreeMap::new();
    for w in wanted {
        by_port.entry(w.port).or_default().push(w);
    }
    let mut holder: BTreeMap<u16, String> = BTreeMap::new();
    for (port, ws) in &by_port {
        let mut names: Vec<&str> = ws.iter().map(|w| w.service.as_str()).collect();
        names.sort();
        let first = listener_owner.get(port).copied().filter(|o| names.contains(o)).unwrap_or(names[0]);
        holder.insert(*port, first.to_string());
    }
    let slotted: Vec<String> = holder
        .iter()
        .filter(|(port, _)| Some(**port) != ctx.default_port)
        .map(|(_, s)| s.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (shard_of, new_numbers) = shards::assign_with(&slotted, &loads, NLB_LISTENER_LIMIT);
    // A port's Services go where its holder goes; the stack's port is front 1's.
    let front_of_port = |port: u16| -> u32 {
        if Some(port) == ctx.default_port {
            return 1;
        }
        holder.get(&port).and_then(|s| shard_of.get(s)).copied().unwrap_or(1)
    };
    // Whose plan revokes or keeps each of our ingress rules: the front serving its port now,
    // else the one whose listener of ours is on it, else front 1.
    let ingress_front = |port: u16| -> u32 {
        if by_port.contains_key(&port) {
            return front_of_port(port);
        }
        fronts.iter().find(|f| f.listeners.iter().any(|l| l.port == port && l.owner.is_some())).map(|f| f.number).unwrap_or(1)
    };

    let mut out = NlbShardedPlan::default();
    out.create.extend(new_numbers.iter().map(|&n| FrontAction::CreateFront { number: n, name: shards::front_name(deployment, n) }));
    let mut numbers: Vec<u32> = fronts.iter().map(|f| f.number).chain(new_numbers.iter().copied()).collect();
    numbers.sort();
    numbers.dedup();
    let extra_ctx = NlbContext { default_listener_arn: String::new(), default_port: None, public_tg_arn: ctx.public_tg_arn.clone() };
    for &n in &numbers {
        let front = fronts.iter().find(|f| f.number == n);
        let share: Vec<NlbWanted> = wanted.iter().filter(|w| front_of_port(w.port) == n).cloned().collect();
        let observed = NlbObserved {
            target_groups: seen.target_groups.iter().filter(|t| t.owner.is_none() || t.front == n).cloned().collect(),
            listeners: front.map(|f| f.listeners.clone()).unwrap_or_default(),
            asg_target_groups: seen.asg_target_groups.clone(),
            ingress: seen.ingress.iter().filter(|(p, _)| ingress_front(**p) == n).map(|(p, r)| (*p, r.clone())).collect(),
        };
        let front_ctx = if n == 1 { ctx } else { &extra_ctx };
        out.fronts.push((n, nlb::plan_nlb(front_ctx, &share, &observed)));
        let name = front.map(|f| f.name.clone()).unwrap_or_else(|| shards::front_name(deployment, n));
        out.services.extend(share.iter().map(|w| NlbServiceFront {
            service: w.service.clone(),
            port: w.port,
            front: n,
            front_name: name.clone(),
        }));
        let Some(f) = front.filter(|f| f.number >= 2 && share.is_empty()) else { continue };
        if let Some(l) = f.listeners.iter().find(|l| l.owner.is_none()) {
            out.problems.push(format!("front {} has no Service left but keeps a listener not ours ({}): not removed", f.name, l.arn));
        } else {
            out.remove.push(FrontAction::DeleteFront { number: n, name: f.name.clone(), arn: f.arn.clone() });
        }
    }
    let arns: BTreeMap<&str, &str> = seen.target_groups.iter().map(|t| (t.name.as_str(), t.arn.as_str())).collect();
    let mut budget = shards::AsgBudget::new(&seen.asg_target_groups, &seen.asg_instances, &seen.registered, arns);
    for (n, p) in out.fronts.iter_mut() {
        budget.take(*n, &mut p.actions, |a| match a {
            NlbAction::Attach { name } => Some(name.as_str()),
            _ => None,
        });
    }
    out.targets = budget.targets;
    out.services.sort_by(|a, b| (&a.service, a.port).cmp(&(&b.service, b.port)));
    out
}

/// Which front serves each Service now: the front with its listener, or front 1 when the stack's
/// listener forwards to its target group (for `status`: the DNS name to give it).
pub fn served(ctx: &NlbContext, seen: &NlbFrontsObserved) -> Vec<(String, u32)> {
    let by_arn: BTreeMap<&str, &NlbTargetGroup> = seen.target_groups.iter().map(|t| (t.arn.as_str(), t)).collect();
    let mut out: BTreeMap<String, u32> = BTreeMap::new();
    for f in &seen.fronts {
        for l in &f.listeners {
            let owner = match &l.owner {
                Some(o) => Some(o.clone()),
                None if f.number == 1 && Some(l.port) == ctx.default_port => {
                    l.forward.iter().find_map(|a| by_arn.get(a.as_str()).and_then(|t| t.owner.clone()))
                }
                None => None,
            };
            if let Some(o) = owner {
                out.entry(o).or_insert(f.number);
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
#[path = "nlb_shards_tests.rs"]
mod tests;

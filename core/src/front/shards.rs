//! Front load balancers that shard (`sync.manage_alb` with an ALB front): when the protected
//! Services need more target groups or rules than one ALB holds, further ALBs
//! (`<deployment>-front-2`, …) take the rest; each is planned by [`alb::plan`] on its share.
//!
//! PURE. Inputs: the wanted Services ([`alb::wanted`]) and every front as observed
//! ([`FrontsObserved`]: the firewall stack's ALB is front 1, the extra ones are found by their
//! tags). Output: the fronts to create, one [`alb::AlbPlan`] per front, how the firewalls are put
//! into target groups the autoscaling group cannot take, the fronts to remove, and each Service's
//! front ([`ShardedPlan`]). The adapter (`src/aws/alb.rs`) observes and applies.
//!
//! Limits (Elastic Load Balancing, "Quotas for your Application Load Balancers"; EC2 Auto
//! Scaling, "Quotas for Amazon EC2 Auto Scaling"; `shared/reference/limits.md`):
//! * 100 target groups per ALB, not adjustable, counted over every listener action (AWS's
//!   `TooManyUniqueTargetGroupsPerLoadBalancer`): the listener's default target group (the stack's
//!   own on front 1) and any foreign rule's groups count;
//! * 100 rules per ALB (the default quota; foreign rules count);
//! * 50 Elastic Load Balancing target groups per Auto Scaling group, not adjustable: the stack's
//!   own group and foreign ones count. A Service's group is attached to the firewall group while
//!   that leaves room; past it the firewall instances are registered in the group directly, and
//!   every converge puts the group's current instances there (a replaced firewall joins at the
//!   next converge instead of at launch).
//!
//! Assignment ([`assign`]) is stable: a Service stays on the front that holds its rule or target
//! group (its `pano-eks:front` tag), whatever comes later; a new Service goes to the lowest
//! front with room, in key order; a front is created when none has room. Every Service counts one
//! slot on its front, with or without a rule (the strict reading: a Service without host/path may
//! take the listener's default action). Services are never moved to empty a front (their public
//! DNS name would change); an extra front is removed when its last Service has gone.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::front::alb::{self, AlbContext, AlbPlan, Observed, Rule, ServiceKey, TargetGroup, Wanted, owner};

/// The tag naming the front (a number) one of our target groups or extra load balancers serves.
/// A target group of ours without it is on front 1 (made before fronts sharded).
pub const FRONT_TAG: &str = "pano-eks:front";
/// Target groups per Application Load Balancer (not adjustable).
pub const TARGET_GROUPS_PER_ALB: usize = 100;
/// Listener rules per Application Load Balancer, defaults not counted (the default quota).
pub const RULES_PER_ALB: usize = 100;
/// Elastic Load Balancing target groups per Auto Scaling group (not adjustable).
pub const TARGET_GROUPS_PER_ASG: usize = 50;
/// ELBv2's load balancer name limit.
pub const LB_NAME_MAX: usize = 32;

/// The name of front `n` ≥ 2: `<deployment>-front-<n>`; a deployment name too long for it is cut
/// and suffixed with a hash of the whole, so the name stays unique and ≤ 32 characters.
pub fn front_name(deployment: &str, n: u32) -> String {
    let plain = format!("{deployment}-front-{n}");
    if plain.len() <= LB_NAME_MAX {
        return plain;
    }
    let d: [u8; 32] = Sha256::digest(deployment.as_bytes()).into();
    let hash: String = d[..3].iter().map(|b| format!("{b:02x}")).collect();
    let suffix = format!("-{hash}-front-{n}");
    let mut head: String = deployment.chars().take(LB_NAME_MAX.saturating_sub(suffix.len())).collect();
    while head.ends_with('-') {
        head.pop();
    }
    format!("{head}{suffix}")
}

/// The value of [`FRONT_TAG`] for front `n`.
pub fn front_tag_value(n: u32) -> String {
    n.to_string()
}

/// The front a resource of ours serves, from its tags (absent or unreadable: front 1).
pub fn front_of(tags: &BTreeMap<String, String>) -> u32 {
    tags.get(FRONT_TAG).and_then(|v| v.parse().ok()).filter(|n| *n >= 1).unwrap_or(1)
}

/// The extra front a load balancer is, from its tags: ours (`pano-eks:deployment`) and
/// numbered ≥ 2; `None` otherwise (the stack's own ALB carries no front tag).
pub fn extra_front_of(deployment: &str, tags: &BTreeMap<String, String>) -> Option<u32> {
    if tags.get(alb::DEPLOYMENT_TAG).map(String::as_str) != Some(deployment) {
        return None;
    }
    tags.get(FRONT_TAG).and_then(|v| v.parse().ok()).filter(|n| *n >= 2)
}

/// One front load balancer as observed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Front {
    /// 1: the firewall stack's; ≥ 2: an extra one of ours.
    pub number: u32,
    pub name: String,
    pub arn: String,
    pub dns_name: String,
    /// `None`: an extra load balancer whose listener was never made (an interrupted run).
    pub listener_arn: Option<String>,
    pub rules: Vec<Rule>,
    pub default_forward: Vec<String>,
}

/// Everything the fronts share: the VPC's target groups (with tags), the firewall group's
/// attachments and instances, and the targets registered in our unattached groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrontsObserved {
    pub fronts: Vec<Front>,
    pub target_groups: Vec<TargetGroup>,
    pub asg_target_groups: BTreeSet<String>,
    /// The firewall group's instances (in service or starting).
    pub asg_instances: BTreeSet<String>,
    /// Registered instance targets by target group ARN (read for our groups not attached).
    pub registered: BTreeMap<String, BTreeSet<String>>,
}

/// A front load balancer to make or remove (the adapter copies scheme, subnets, security groups
/// and the listener's port and protocol from front 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum FrontAction {
    /// A load balancer and its listener (default: a fixed 404, no target group).
    CreateFront { number: u32, name: String },
    /// The listener of an extra load balancer that has none.
    CreateListener { number: u32, name: String },
    /// An extra front without Services (its rules and target groups are gone by then).
    DeleteFront { number: u32, name: String, arn: String },
}

/// The firewall instances put into (or taken out of) a target group the autoscaling group
/// cannot take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Targets {
    pub front: u32,
    /// Target group name.
    pub name: String,
    pub register: Vec<String>,
    pub deregister: Vec<String>,
}

/// A Service's front.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceFront {
    pub service: ServiceKey,
    pub front: u32,
    /// The load balancer's name (its DNS name is the adapter's to read).
    pub front_name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ShardedPlan {
    /// Before everything else.
    pub create: Vec<FrontAction>,
    /// One plan per front (number order), after `create`; attachments past the autoscaling
    /// group's limit are left out (see `targets`).
    pub fronts: Vec<(u32, AlbPlan)>,
    /// After the fronts' plans (their target groups exist by then).
    pub targets: Vec<Targets>,
    /// Last.
    pub remove: Vec<FrontAction>,
    pub services: Vec<ServiceFront>,
    /// What could not be done as wanted (a front kept for a foreign rule on it).
    pub problems: Vec<String>,
}

/// How many Services a front can hold: what the target group and rule limits leave after what
/// is not ours (the stack's default target group, foreign rules and their groups). On front 1
/// the stack's target group (`stack_tg`) always counts, also while a Service holds the default
/// action: it comes back there when that Service goes, in the same run as new Services may come.
pub fn room(deployment: &str, front: &Front, tgs: &BTreeMap<&str, &TargetGroup>, stack_tg: &str) -> usize {
    let ours = |arn: &str| tgs.get(arn).is_some_and(|t| owner(deployment, &t.tags).is_some());
    let stack = (front.number == 1).then_some(stack_tg);
    let foreign_groups: BTreeSet<&str> = front
        .default_forward
        .iter()
        .chain(front.rules.iter().flat_map(|r| r.forward.iter()))
        .map(String::as_str)
        .filter(|a| !ours(a))
        .chain(stack)
        .collect();
    let foreign_rules = front.rules.iter().filter(|r| owner(deployment, &r.tags).is_none()).count();
    TARGET_GROUPS_PER_ALB.saturating_sub(foreign_groups.len()).min(RULES_PER_ALB.saturating_sub(foreign_rules))
}

/// Service → front: held ones stay where they are (up to the front's room, in key order), new
/// ones go to the lowest front with room; a new front number (the lowest unused ≥ 2) is opened
/// when none has room. `fronts`: (number, room, held Services). Returns the assignment and the
/// numbers of the fronts to create.
pub fn assign(wanted: &[ServiceKey], fronts: &[(u32, usize, BTreeSet<ServiceKey>)]) -> (BTreeMap<ServiceKey, u32>, Vec<u32>) {
    assign_with(wanted, fronts, TARGET_GROUPS_PER_ALB.min(RULES_PER_ALB))
}

/// [`assign`] for any front type: `new_room` is what a front made now holds (ALB: 100
/// Services, NLB: 50 listeners).
pub fn assign_with<K: Ord + Clone>(wanted: &[K], fronts: &[(u32, usize, BTreeSet<K>)], new_room: usize) -> (BTreeMap<K, u32>, Vec<u32>) {
    let mut keys: Vec<&K> = wanted.iter().collect();
    keys.sort();
    keys.dedup();
    let mut load: BTreeMap<u32, (usize, usize)> = fronts.iter().map(|(n, room, _)| (*n, (*room, 0))).collect();
    load.entry(1).or_insert((new_room, 0));
    let mut out = BTreeMap::new();
    for k in &keys {
        let held = fronts.iter().find(|(_, _, h)| h.contains(*k)).map(|(n, _, _)| *n);
        if let Some(n) = held {
            let (room, used) = load.get_mut(&n).expect("front known");
            if *used < *room {
                *used += 1;
                out.insert((*k).clone(), n);
            }
        }
    }
    let mut created = Vec::new();
    for k in keys {
        if out.contains_key(k) {
            continue;
        }
        let n = match load.iter().find(|(_, (room, used))| used < room).map(|(n, _)| *n) {
            Some(n) => n,
            None => {
                let n = (2..).find(|n| !load.contains_key(n)).expect("a free number");
                load.insert(n, (new_room, 0));
                created.push(n);
                n
            }
        };
        load.get_mut(&n).expect("front known").1 += 1;
        out.insert(k.clone(), n);
    }
    (out, created)
}

/// The whole sharded front: assignment, one ALB plan per front on its share of the observed
/// state, the autoscaling group's attachment budget, the fronts to create and remove.
pub fn plan(ctx: &AlbContext, wanted: &[Wanted], seen: &FrontsObserved) -> ShardedPlan {
    let dep = ctx.deployment.as_str();
    let tgs: BTreeMap<&str, &TargetGroup> = seen.target_groups.iter().map(|t| (t.arn.as_str(), t)).collect();
    let mut fronts: Vec<&Front> = seen.fronts.iter().collect();
    fronts.sort_by_key(|f| f.number);
    let held = |f: &Front| -> BTreeSet<ServiceKey> {
        let by_rule = f.rules.iter().filter_map(|r| owner(dep, &r.tags));
        let by_tg = seen.target_groups.iter().filter(|t| front_of(&t.tags) == f.number).filter_map(|t| owner(dep, &t.tags));
        by_rule.chain(by_tg).collect()
    };
    let loads: Vec<(u32, usize, BTreeSet<ServiceKey>)> =
        fronts.iter().map(|f| (f.number, room(dep, f, &tgs, &ctx.public_tg_arn), held(f))).collect();
    let keys: Vec<ServiceKey> = wanted.iter().map(|w| w.key.clone()).collect();
    let (shard_of, new_numbers) = assign(&keys, &loads);

    let mut out = ShardedPlan::default();
    for f in &fronts {
        if f.number >= 2 && f.listener_arn.is_none() && shard_of.values().any(|n| *n == f.number) {
            out.create.push(FrontAction::CreateListener { number: f.number, name: f.name.clone() });
        }
    }
    out.create.extend(new_numbers.iter().map(|&n| FrontAction::CreateFront { number: n, name: front_name(dep, n) }));

    let mut numbers: Vec<u32> = fronts.iter().map(|f| f.number).chain(new_numbers.iter().copied()).collect();
    numbers.sort();
    numbers.dedup();
    for &n in &numbers {
        let front = fronts.iter().find(|f| f.number == n);
        let share: Vec<Wanted> = wanted.iter().filter(|w| shard_of.get(&w.key) == Some(&n)).cloned().collect();
        let observed = Observed {
            target_groups: seen.target_groups.iter().filter(|t| owner(dep, &t.tags).is_none() || front_of(&t.tags) == n).cloned().collect(),
            rules: front.map(|f| f.rules.clone()).unwrap_or_default(),
            default_forward: front.map(|f| f.default_forward.clone()).unwrap_or_default(),
            asg_target_groups: seen.asg_target_groups.clone(),
        };
        out.fronts.push((n, alb::plan(ctx, &share, &observed)));
        let name = front.map(|f| f.name.clone()).unwrap_or_else(|| front_name(dep, n));
        out.services.extend(share.iter().map(|w| ServiceFront { service: w.key.clone(), front: n, front_name: name.clone() }));
        let Some(f) = front.filter(|f| f.number >= 2 && share.is_empty()) else { continue };
        let foreign: Vec<&Rule> = f.rules.iter().filter(|r| owner(dep, &r.tags).is_none()).collect();
        if let Some(r) = foreign.first() {
            out.problems.push(format!("front {} has no Service left but keeps a rule not ours ({}): not removed", f.name, r.arn));
        } else {
            out.remove.push(FrontAction::DeleteFront { number: n, name: f.name.clone(), arn: f.arn.clone() });
        }
    }
    out.targets = attachment_budget(seen, &mut out.fronts);
    out.services.sort_by(|a, b| a.service.cmp(&b.service));
    out
}

/// Which front serves each Service now: the front whose listener has its rule, or whose default
/// action forwards to its target group (for `status`: the DNS name to give it).
pub fn served(deployment: &str, seen: &FrontsObserved) -> Vec<(ServiceKey, u32)> {
    let by_arn: BTreeMap<&str, &TargetGroup> = seen.target_groups.iter().map(|t| (t.arn.as_str(), t)).collect();
    let mut out: BTreeMap<ServiceKey, u32> = BTreeMap::new();
    for f in &seen.fronts {
        for r in &f.rules {
            if let Some(k) = owner(deployment, &r.tags) {
                out.entry(k).or_insert(f.number);
            }
        }
        for a in &f.default_forward {
            if let Some(k) = by_arn.get(a.as_str()).and_then(|t| owner(deployment, &t.tags)) {
                out.entry(k).or_insert(f.number);
            }
        }
    }
    out.into_iter().collect()
}

/// Attachments within [`TARGET_GROUPS_PER_ASG`] (what is attached now counts, detaches planned in
/// the same run do not: they come after the attaches), in front and action order; every other
/// group of ours that serves a Service gets the firewall instances registered directly.
fn attachment_budget(seen: &FrontsObserved, fronts: &mut [(u32, AlbPlan)]) -> Vec<Targets> {
    let arns: BTreeMap<&str, &str> = seen.target_groups.iter().map(|t| (t.name.as_str(), t.arn.as_str())).collect();
    let mut budget = AsgBudget::new(&seen.asg_target_groups, &seen.asg_instances, &seen.registered, arns);
    for (n, p) in fronts.iter_mut() {
        budget.take(*n, &mut p.actions, |a| match a {
            alb::Action::Attach { name } => Some(name.as_str()),
            _ => None,
        });
    }
    budget.targets
}

/// The firewall autoscaling group's [`TARGET_GROUPS_PER_ASG`] over every front (either type):
/// attachments within it are kept (what is attached now counts, detaches planned in the same run
/// do not: they come after the attaches), in front and action order; every other group that
/// would be attached gets the firewall instances registered directly ([`Targets`]).
pub struct AsgBudget<'a> {
    left: usize,
    instances: &'a BTreeSet<String>,
    registered: &'a BTreeMap<String, BTreeSet<String>>,
    /// Target group ARN by name.
    arns: BTreeMap<&'a str, &'a str>,
    pub targets: Vec<Targets>,
}

impl<'a> AsgBudget<'a> {
    pub fn new(
        attached: &BTreeSet<String>,
        instances: &'a BTreeSet<String>,
        registered: &'a BTreeMap<String, BTreeSet<String>>,
        arns: BTreeMap<&'a str, &'a str>,
    ) -> AsgBudget<'a> {
        AsgBudget { left: TARGET_GROUPS_PER_ASG.saturating_sub(attached.len()), instances, registered, arns, targets: Vec::new() }
    }

    /// Keeps the attaches of one front's `actions` that fit, removes the others and plans their
    /// direct registration. `attach`: the target group an action attaches, if it is an attach.
    pub fn take<A>(&mut self, front: u32, actions: &mut Vec<A>, attach: impl Fn(&A) -> Option<&str>) {
        let mut direct = Vec::new();
        actions.retain(|a| match attach(a) {
            Some(_) if self.left > 0 => {
                self.left -= 1;
                true
            }
            Some(name) => {
                direct.push(name.to_string());
                false
            }
            None => true,
        });
        for name in direct {
            let have = self.arns.get(name.as_str()).and_then(|arn| self.registered.get(*arn)).cloned().unwrap_or_default();
            let register: Vec<String> = self.instances.difference(&have).cloned().collect();
            let deregister: Vec<String> = have.difference(self.instances).cloned().collect();
            if !register.is_empty() || !deregister.is_empty() {
                self.targets.push(Targets { front, name, register, deregister });
            }
        }
    }
}

#[cfg(test)]
#[path = "shards_tests.rs"]
mod tests;

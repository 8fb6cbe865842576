//! The public ALB's decision (`sync.manage_alb`): which target group and listener rule each
//! protected Service gets, the rule priorities, conflicts with what is not ours, and what to
//! delete, shaped like the AWS Load Balancer Controller's model: inputs ([`wanted`]: the
//! Services the Panorama plan protects, with their annotations) → desired (a target group per
//! Service and port, a rule per host/path) → diff against [`Observed`] *by ownership tag* →
//! ordered [`Action`]s and one [`ServiceAlb`] outcome per Service ([`plan`]).
//!
//! PURE. The adapter (`src/aws/alb.rs`) reads what exists into [`Observed`] and applies the
//! actions; it decides nothing.
//!
//! Ownership: a target group or listener rule is ours when it carries
//! `pano-eks:deployment=<deployment>` **and** `pano-eks:service=<cluster>/<namespace>/<name>`
//! ([`owner`]; the NLB front, [`crate::front::nlb`], uses the same marks). Anything else is foreign: a
//! foreign target group serving the firewalls on a Service's port, a foreign rule with the same
//! host/path, or a foreign default action is a *conflict*: reported, never overwritten.
//!
//! Names: `pk-<service tail>-<port>-<8 hex of sha256(deployment/cluster/ns/name)>`, ≤ 32 chars
//! (ELBv2's limit), deterministic. The port is in the name because a target group's port cannot
//! change: a new label port makes a new group, the rule moves to it, the old one goes.
//!
//! Priorities: `10000 + sha256(cluster/ns/name) mod 40000`, probing upwards (wrapping) past
//! every priority already taken on the listener; new rules are placed in key order, so the same
//! world always yields the same priorities, and an existing rule is never moved.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{Facts, Plan, ServiceState};

/// The tag every AWS resource of a deployment carries (stacks propagate it): `<deployment>`.
pub const DEPLOYMENT_TAG: &str = "pano-eks:deployment";

/// The ownership tag naming the Service a target group or rule belongs to.
pub const SERVICE_TAG: &str = "pano-eks:service";
/// Service annotations choosing the listener rule's conditions.
pub const HOST_ANNOTATION: &str = "pano-eks/alb-host";
pub const PATH_ANNOTATION: &str = "pano-eks/alb-path";
/// Rule priorities we pick from: [BASE, BASE + SPAN). Below BASE is left to people.
pub const PRIORITY_BASE: u32 = 10_000;
pub const PRIORITY_SPAN: u32 = 40_000;
/// ELBv2's target group name limit.
pub const TG_NAME_MAX: usize = 32;

/// `cluster/namespace/name`, the value of the `pano-eks:service` tag.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ServiceKey {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.cluster, self.namespace, self.name)
    }
}

impl ServiceKey {
    pub fn parse(tag: &str) -> Option<ServiceKey> {
        let mut it = tag.splitn(3, '/');
        let (c, n, s) = (it.next()?, it.next()?, it.next()?);
        (!c.is_empty() && !n.is_empty() && !s.is_empty()).then(|| ServiceKey { cluster: c.into(), namespace: n.into(), name: s.into() })
    }
}

/// A protected Service that wants a target group (and, with host/path, a rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub key: ServiceKey,
    pub port: u16,
    pub host: Option<String>,
    pub path: Option<String>,
}

/// The Services the ALB serves: Protected or Planned in the core's plan, with their port, and
/// the host/path annotations from the facts. Sorted by key.
pub fn wanted(plan: &Plan, facts: &Facts) -> Vec<Wanted> {
    let by_key = facts.service_index();
    let mut out: Vec<Wanted> = plan
        .services
        .iter()
        .filter(|s| matches!(s.state, ServiceState::Protected | ServiceState::Planned))
        .filter_map(|s| {
            let port = s.port?;
            let ann = by_key.get(&(s.cluster.as_str(), s.namespace.as_str(), s.name.as_str())).map(|f| &f.annotations);
            let get = |k: &str| ann.and_then(|a| a.get(k)).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
            Some(Wanted {
                key: ServiceKey { cluster: s.cluster.clone(), namespace: s.namespace.clone(), name: s.name.clone() },
                port,
                host: get(HOST_ANNOTATION),
                path: get(PATH_ANNOTATION),
            })
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The target group name of a Service on a port: readable tail, port, hash; ≤ 32 characters.
pub fn tg_name(deployment: &str, key: &ServiceKey, port: u16) -> String {
    let d = digest(&format!("{deployment}/{key}"));
    let hash: String = d[..4].iter().map(|b| format!("{b:02x}")).collect();
    let suffix = format!("-{port}-{hash}");
    let mut tail = String::new();
    for ch in key.name.chars() {
        let c = if ch.is_ascii_alphanumeric() { ch.to_ascii_lowercase() } else { '-' };
        if !(c == '-' && (tail.is_empty() || tail.ends_with('-'))) {
            tail.push(c);
        }
    }
    let room = TG_NAME_MAX - "pk-".len() - suffix.len();
    tail.truncate(room);
    let tail = tail.trim_end_matches('-');
    if tail.is_empty() { format!("pk{suffix}") } else { format!("pk-{tail}{suffix}") }
}

/// Where a Service's rule would land if nothing else were there.
pub fn home_priority(key: &ServiceKey) -> u32 {
    let d = digest(&key.to_string());
    PRIORITY_BASE + u32::from_be_bytes([d[0], d[1], d[2], d[3]]) % PRIORITY_SPAN
}

/// The first free priority at or after the Service's home slot (wrapping in the range).
fn assign_priority(key: &ServiceKey, taken: &BTreeSet<u32>) -> Option<u32> {
    let home = home_priority(key) - PRIORITY_BASE;
    (0..PRIORITY_SPAN).map(|i| PRIORITY_BASE + (home + i) % PRIORITY_SPAN).find(|p| !taken.contains(p))
}

/// A target group's health check, as ELBv2 takes and describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    /// `HTTP`, `HTTPS` or `TCP`.
    pub protocol: String,
    /// A port number or `traffic-port`.
    pub port: String,
    pub path: Option<String>,
    /// HTTP codes, e.g. `200-499`.
    pub matcher: Option<String>,
}

/// How a Service's target group is probed: on its own traffic port, so the probe takes the same
/// path as the traffic (load balancer → firewall eth0 → the Service's NAT rule → the Service).
/// Any HTTP answer counts (`200-499`): it proves that path, whatever the application serves at
/// `/`. (Copying the firewall stack's group probed port 81, which nothing answers: every target
/// was unhealthy and the load balancer failed open.)
pub fn service_health_check() -> HealthCheck {
    HealthCheck { protocol: "HTTP".into(), port: "traffic-port".into(), path: Some("/".into()), matcher: Some("200-499".into()) }
}

/// A target group as ELBv2 describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetGroup {
    pub arn: String,
    pub name: String,
    pub port: u16,
    pub vpc_id: String,
    pub tags: BTreeMap<String, String>,
    /// `None`: not read (only our own groups' health checks matter).
    pub health: Option<HealthCheck>,
}

/// A non-default listener rule: its conditions and the target groups it forwards to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    pub arn: String,
    pub priority: u32,
    pub hosts: Vec<String>,
    pub paths: Vec<String>,
    pub forward: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// What exists: target groups of the VPC, the listener's rules and default action, the target
/// groups attached to the firewall autoscaling group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    pub target_groups: Vec<TargetGroup>,
    pub rules: Vec<Rule>,
    pub default_forward: Vec<String>,
    pub asg_target_groups: BTreeSet<String>,
}

/// What the planner needs of the firewall stack's side of the sandwich (its outputs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlbContext {
    pub deployment: String,
    pub vpc_id: String,
    /// The stack's own target group (traffic 81, probed on the firewall's HTTPS): the listener's
    /// default when no Service has it.
    pub public_tg_arn: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    CreateTargetGroup {
        service: ServiceKey,
        name: String,
        port: u16,
        health: HealthCheck,
    },
    /// One of our groups probes something else than [`service_health_check`] (made by an
    /// earlier version): point its health check at the traffic port.
    ModifyHealthCheck {
        service: ServiceKey,
        name: String,
        health: HealthCheck,
    },
    /// Attach to the firewall ASG (which registers its instances, now and when replaced).
    Attach {
        name: String,
    },
    CreateRule {
        service: ServiceKey,
        priority: u32,
        hosts: Vec<String>,
        paths: Vec<String>,
        target: String,
    },
    ModifyRule {
        service: ServiceKey,
        arn: String,
        priority: u32,
        hosts: Vec<String>,
        paths: Vec<String>,
        target: String,
    },
    /// Point the listener's default action at a target group (by name); `None`: back to the
    /// firewall stack's own target group.
    SetDefault {
        target: Option<String>,
    },
    DeleteRule {
        service: ServiceKey,
        arn: String,
        priority: u32,
    },
    Detach {
        name: String,
    },
    DeleteTargetGroup {
        service: ServiceKey,
        name: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlbState {
    /// A listener rule with the Service's host/path forwards to its target group.
    Routed,
    /// The listener's default action forwards to its target group (the only Service).
    Default,
    /// Target group only: no host/path and other Services share the listener.
    NoRule,
    Conflict,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceAlb {
    pub service: ServiceKey,
    pub port: u16,
    pub target_group: Option<String>,
    pub priority: Option<u32>,
    pub state: AlbState,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AlbPlan {
    pub actions: Vec<Action>,
    pub services: Vec<ServiceAlb>,
}

impl AlbPlan {
    pub fn conflicts(&self) -> impl Iterator<Item = &ServiceAlb> {
        self.services.iter().filter(|s| s.state != AlbState::Routed && s.state != AlbState::Default)
    }
}

/// The Service a resource of this deployment belongs to, from its ownership tags; `None`: not ours.
pub fn owner(deployment: &str, tags: &BTreeMap<String, String>) -> Option<ServiceKey> {
    if tags.get(DEPLOYMENT_TAG).map(String::as_str) != Some(deployment) {
        return None;
    }
    tags.get(SERVICE_TAG).and_then(|v| ServiceKey::parse(v))
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

/// Desired model vs what exists → actions in a safe order (creates, attaches, rules, default,
/// rule deletes, detaches, target group deletes) and one outcome per wanted Service.
///
/// Stages: a target group per Service port (`Planner::target_groups`), then a listener rule
/// or the default action for each Service that has one (`Planner::route`), priorities for new
/// rules, the default action back to the stack's group when no Service holds it, and what of
/// ours is no longer wanted (`Planner::garbage`).
pub fn plan(ctx: &AlbContext, wanted: &[Wanted], seen: &Observed) -> AlbPlan {
    let mut wanted = wanted.to_vec();
    wanted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut p = Planner::new(ctx, seen);
    let with_tg = p.target_groups(&wanted);
    let sole = with_tg.len() == 1;
    for (w, name, out) in with_tg {
        p.route(w, name, out, sole);
    }
    p.priorities();
    // The default action goes back to the stack's target group when no Service holds it.
    let default_is_ours = seen.default_forward.iter().any(|a| p.tg_by_arn.get(a.as_str()).is_some_and(|t| p.is_ours(t)));
    if p.default_for.is_none() && default_is_ours {
        p.default_op = Some(Action::SetDefault { target: None });
    }
    let (deletes, detaches, tg_deletes) = p.garbage();

    let Planner { creates, attaches, rule_ops, default_op, mut outcomes, .. } = p;
    let mut actions = creates;
    actions.extend(attaches);
    actions.extend(rule_ops);
    actions.extend(default_op);
    actions.extend(deletes);
    actions.extend(detaches);
    actions.extend(tg_deletes);
    outcomes.sort_by(|a, b| a.service.cmp(&b.service));
    AlbPlan { actions, services: outcomes }
}

/// One ALB planning pass: what exists, indexed, and the actions and outcomes so far.
struct Planner<'a> {
    ctx: &'a AlbContext,
    seen: &'a Observed,
    tg_by_arn: BTreeMap<&'a str, &'a TargetGroup>,
    tg_by_name: BTreeMap<&'a str, &'a TargetGroup>,
    our_rules: BTreeMap<ServiceKey, &'a Rule>,
    foreign_rules: Vec<&'a Rule>,
    /// Target groups that already serve the firewalls: attached to their ASG or forwarded to.
    serving: BTreeSet<&'a str>,
    creates: Vec<Action>,
    attaches: Vec<Action>,
    rule_ops: Vec<Action>,
    default_op: Option<Action>,
    outcomes: Vec<ServiceAlb>,
    keep_tgs: BTreeSet<String>,
    keep_rules: BTreeSet<ServiceKey>,
    ports: BTreeMap<u16, ServiceKey>,
    conditions_taken: BTreeMap<(Vec<String>, Vec<String>), ServiceKey>,
    new_rules: Vec<(ServiceKey, Vec<String>, Vec<String>, String)>,
    default_for: Option<String>,
}

impl<'a> Planner<'a> {
    fn new(ctx: &'a AlbContext, seen: &'a Observed) -> Self {
        let serving = seen
            .asg_target_groups
            .iter()
            .map(String::as_str)
            .chain(seen.rules.iter().flat_map(|r| r.forward.iter().map(String::as_str)))
            .chain(seen.default_forward.iter().map(String::as_str))
            .chain(std::iter::once(ctx.public_tg_arn.as_str()))
            .collect();
        Planner {
            ctx,
            seen,
            tg_by_arn: seen.target_groups.iter().map(|t| (t.arn.as_str(), t)).collect(),
            tg_by_name: seen.target_groups.iter().map(|t| (t.name.as_str(), t)).collect(),
            our_rules: seen.rules.iter().filter_map(|r| Some((owner(&ctx.deployment, &r.tags)?, r))).collect(),
            foreign_rules: seen.rules.iter().filter(|r| owner(&ctx.deployment, &r.tags).is_none()).collect(),
            serving,
            creates: Vec::new(),
            attaches: Vec::new(),
            rule_ops: Vec::new(),
            default_op: None,
            outcomes: Vec::new(),
            keep_tgs: BTreeSet::new(),
            keep_rules: BTreeSet::new(),
            ports: BTreeMap::new(),
            conditions_taken: BTreeMap::new(),
            new_rules: Vec::new(),
            default_for: None,
        }
    }

    fn is_ours(&self, t: &TargetGroup) -> bool {
        owner(&self.ctx.deployment, &t.tags).is_some()
    }

    /// A target group per Service port (the first Service of a port wins), created, its health
    /// check fixed, attached to the firewalls' group. Only Services that get one count towards
    /// "the only one" (who may take the default action).
    fn target_groups<'w>(&mut self, wanted: &'w [Wanted]) -> Vec<(&'w Wanted, String, ServiceAlb)> {
        let (ctx, seen) = (self.ctx, self.seen);
        let mut with_tg = Vec::new();
        for w in wanted {
            let name = tg_name(&ctx.deployment, &w.key, w.port);
            let mut out = ServiceAlb {
                service: w.key.clone(),
                port: w.port,
                target_group: None,
                priority: None,
                state: AlbState::Conflict,
                reason: String::new(),
            };
            if let Some(other) = self.ports.get(&w.port) {
                out.reason = format!("port {} already has the target group of Service {other}", w.port);
                self.outcomes.push(out);
                continue;
            }
            match self.tg_by_name.get(name.as_str()) {
                Some(t) if owner(&ctx.deployment, &t.tags).as_ref() == Some(&w.key) => {
                    if t.health.as_ref().is_some_and(|h| *h != service_health_check()) {
                        self.creates.push(Action::ModifyHealthCheck {
                            service: w.key.clone(),
                            name: name.clone(),
                            health: service_health_check(),
                        });
                    }
                }
                Some(t) => {
                    out.reason = format!("target group name {name} is taken by {} (not owned by this Service)", t.arn);
                    self.outcomes.push(out);
                    continue;
                }
                None => {
                    let clash = seen
                        .target_groups
                        .iter()
                        .find(|t| !self.is_ours(t) && t.port == w.port && t.vpc_id == ctx.vpc_id && self.serving.contains(t.arn.as_str()));
                    if let Some(t) = clash {
                        out.reason = format!("firewall port {} is already served by target group {} ({}), not ours", w.port, t.name, t.arn);
                        self.outcomes.push(out);
                        continue;
                    }
                    self.creates.push(Action::CreateTargetGroup {
                        service: w.key.clone(),
                        name: name.clone(),
                        port: w.port,
                        health: service_health_check(),
                    });
                }
            }
            self.ports.insert(w.port, w.key.clone());
            self.keep_tgs.insert(name.clone());
            let attached = self.tg_by_name.get(name.as_str()).is_some_and(|t| seen.asg_target_groups.contains(&t.arn));
            if !attached {
                self.attaches.push(Action::Attach { name: name.clone() });
            }
            out.target_group = Some(name.clone());
            with_tg.push((w, name, out));
        }
        with_tg
    }

    /// The listener rule of a Service with a host or path (new ones get priorities later), or the
    /// listener's default action for a sole Service without either; a foreign rule or default
    /// action in the way is a conflict.
    fn route(&mut self, w: &Wanted, name: String, mut out: ServiceAlb, sole: bool) {
        let hosts: Vec<String> = w.host.iter().cloned().collect();
        let paths: Vec<String> = w.path.iter().cloned().collect();
        if hosts.is_empty() && paths.is_empty() {
            self.default_action(name, out, sole);
            return;
        }
        let cond = (sorted(&hosts), sorted(&paths));
        let describe = || {
            let mut parts = Vec::new();
            if !hosts.is_empty() {
                parts.push(format!("host {}", hosts.join(",")));
            }
            if !paths.is_empty() {
                parts.push(format!("path {}", paths.join(",")));
            }
            parts.join(" ")
        };
        if let Some(r) = self.foreign_rules.iter().find(|r| (sorted(&r.hosts), sorted(&r.paths)) == cond) {
            out.reason = format!("a rule not ours ({}, priority {}) already matches {}", r.arn, r.priority, describe());
            if self.our_rules.contains_key(&w.key) {
                self.keep_rules.insert(w.key.clone());
            }
            self.outcomes.push(out);
            return;
        }
        if let Some(other) = self.conditions_taken.get(&cond) {
            out.reason = format!("Service {other} already has a rule for {}", describe());
            if self.our_rules.contains_key(&w.key) {
                self.keep_rules.insert(w.key.clone());
            }
            self.outcomes.push(out);
            return;
        }
        self.conditions_taken.insert(cond.clone(), w.key.clone());
        match self.our_rules.get(&w.key) {
            Some(r) => {
                self.keep_rules.insert(w.key.clone());
                let target_ok = r.forward.len() == 1 && self.tg_by_name.get(name.as_str()).is_some_and(|t| t.arn == r.forward[0]);
                if (sorted(&r.hosts), sorted(&r.paths)) != cond || !target_ok {
                    self.rule_ops.push(Action::ModifyRule {
                        service: w.key.clone(),
                        arn: r.arn.clone(),
                        priority: r.priority,
                        hosts: hosts.clone(),
                        paths: paths.clone(),
                        target: name.clone(),
                    });
                }
                out.priority = Some(r.priority);
            }
            None => self.new_rules.push((w.key.clone(), hosts.clone(), paths.clone(), name.clone())),
        }
        out.state = AlbState::Routed;
        self.outcomes.push(out);
    }

    /// Only a sole Service may take the listener's default action, and never over a foreign one.
    fn default_action(&mut self, name: String, mut out: ServiceAlb, sole: bool) {
        if !sole {
            out.state = AlbState::NoRule;
            out.reason =
                format!("no {HOST_ANNOTATION} or {PATH_ANNOTATION} annotation: only a sole Service may take the listener's default action");
            self.outcomes.push(out);
            return;
        }
        let current = sorted(&self.seen.default_forward);
        let foreign_default =
            current.iter().any(|a| a != &self.ctx.public_tg_arn && !self.tg_by_arn.get(a.as_str()).is_some_and(|t| self.is_ours(t)));
        if foreign_default {
            out.reason = format!("the listener's default action forwards to {} (not ours): not overwritten", current.join(", "));
            self.outcomes.push(out);
            return;
        }
        let ours_now = current.len() == 1 && self.tg_by_name.get(name.as_str()).is_some_and(|t| t.arn == current[0]);
        if !ours_now {
            self.default_op = Some(Action::SetDefault { target: Some(name.clone()) });
        }
        self.default_for = Some(name);
        out.state = AlbState::Default;
        self.outcomes.push(out);
    }

    /// New rules: priorities from the hash, in key order, past every priority in use.
    fn priorities(&mut self) {
        let mut taken: BTreeSet<u32> = self.seen.rules.iter().map(|r| r.priority).collect();
        for (key, hosts, paths, target) in std::mem::take(&mut self.new_rules) {
            let o = self.outcomes.iter_mut().find(|o| o.service == key).expect("outcome recorded");
            match assign_priority(&key, &taken) {
                Some(p) => {
                    taken.insert(p);
                    o.priority = Some(p);
                    self.rule_ops.push(Action::CreateRule { service: key, priority: p, hosts, paths, target });
                }
                None => {
                    o.state = AlbState::Conflict;
                    o.reason = format!("no free rule priority in {PRIORITY_BASE}..{}", PRIORITY_BASE + PRIORITY_SPAN);
                }
            }
        }
    }

    /// Rules and target groups of ours no longer wanted: (rule deletes, detaches, group deletes).
    /// A rule kept as it is (a conflicting Service's) keeps the target group it forwards to.
    fn garbage(&self) -> (Vec<Action>, Vec<Action>, Vec<Action>) {
        let mut deletes = Vec::new();
        for (key, r) in &self.our_rules {
            if !self.keep_rules.contains(key) {
                deletes.push(Action::DeleteRule { service: key.clone(), arn: r.arn.clone(), priority: r.priority });
            }
        }
        let modified: BTreeSet<&ServiceKey> =
            self.rule_ops.iter().filter_map(|a| if let Action::ModifyRule { service, .. } = a { Some(service) } else { None }).collect();
        let untouched_targets: BTreeSet<&str> = self
            .keep_rules
            .iter()
            .filter(|k| !modified.contains(k))
            .filter_map(|k| self.our_rules.get(k))
            .flat_map(|r| r.forward.iter().map(String::as_str))
            .collect();
        let mut detaches = Vec::new();
        let mut tg_deletes = Vec::new();
        let mut ours: Vec<(&TargetGroup, ServiceKey)> =
            self.seen.target_groups.iter().filter_map(|t| Some((t, owner(&self.ctx.deployment, &t.tags)?))).collect();
        ours.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        for (t, key) in ours {
            if self.keep_tgs.contains(&t.name) || untouched_targets.contains(t.arn.as_str()) {
                continue;
            }
            if self.seen.asg_target_groups.contains(&t.arn) {
                detaches.push(Action::Detach { name: t.name.clone() });
            }
            tg_deletes.push(Action::DeleteTargetGroup { service: key, name: t.name.clone() });
        }
        (deletes, detaches, tg_deletes)
    }
}

#[cfg(test)]
#[path = "alb_tests.rs"]
mod tests;

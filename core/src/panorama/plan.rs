//! The planner: desired model vs observed entries → ordered operations, plus status for humans.
//!
//! Like the AWS Load Balancer Controller's synthesizers, each kind is diffed on its own and
//! only entries carrying our ownership marks are ever updated or deleted. Everything here is
//! sorted by name or identity, so the same input always yields the same plan.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::facts::Facts;
use crate::fxhash::{FxMap, FxSet, map_with_capacity, set_with_capacity};
use crate::panorama::desired;
use crate::panorama::model::{
    Address, DestinationTranslation, Kind, MARKER_TAG, NatRule, Object, Observed, Operation, Referrer, Scope, ServiceObject, StaticRoute,
    Tag,
};
use crate::panorama::naming::{MANAGED_BY, Names};
use crate::panorama::spec::{Ctx, RuleSpec, Spec};
use crate::panorama::status::{ClusterStatus, Problem, ProblemKind, ServiceState, ServiceStatus};
use crate::settings::{PlanSettings, SettingsError};

/// Everything one planning pass decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// In execution order: upserts (tags → addresses, services → NAT rules, routes), then
    /// deletes (NAT rules, routes → addresses, services → tags).
    pub operations: Vec<Operation>,
    /// Some operation touches the device group: commit, then push the device group.
    pub device_group_changed: bool,
    /// Some operation touches the template: commit, then push the template.
    pub template_changed: bool,
    /// One entry per Service carrying the label, sorted by cluster/namespace/name.
    pub services: Vec<ServiceStatus>,
    /// Managed clusters by name, with their subnets, outbound rule and route names.
    pub clusters: Vec<ClusterStatus>,
    /// Everything that was skipped or could not be written, sorted by subject.
    pub problems: Vec<Problem>,
}

impl Plan {
    /// True when Panorama already holds exactly the desired entries.
    pub fn is_noop(&self) -> bool {
        self.operations.is_empty()
    }

    /// (creates, updates, deletes).
    pub fn counts(&self) -> (usize, usize, usize) {
        self.operations.iter().fold((0, 0, 0), |(c, u, d), op| match op {
            Operation::Create { .. } => (c + 1, u, d),
            Operation::Update { .. } => (c, u + 1, d),
            Operation::Delete { .. } => (c, u, d + 1),
        })
    }
}

/// One kind's observed entries: indexed by name (the first wins if the adapter hands over
/// duplicates), each ownership test evaluated once.
struct Seen<'a, T, N> {
    list: &'a [T],
    owned: Vec<bool>,
    /// Owned entries kept as they are even when not desired (a frozen cluster's Service objects).
    held: Vec<bool>,
    by_name: FxMap<&'a str, usize>,
    name: N,
}

impl<'a, T: PartialEq, N: Fn(&T) -> &str> Seen<'a, T, N> {
    fn new(list: &'a [T], name: N, owned: impl Fn(&T) -> bool) -> Self {
        let mut by_name = map_with_capacity(list.len());
        for (i, o) in list.iter().enumerate() {
            by_name.entry(name(o)).or_insert(i);
        }
        Self { list, owned: list.iter().map(owned).collect(), held: vec![false; list.len()], by_name, name }
    }

    /// Marks entries this plan must not delete although nothing desires them.
    fn hold(mut self, pred: impl Fn(&T) -> bool) -> Self {
        for (h, o) in self.held.iter_mut().zip(self.list) {
            *h = pred(o);
        }
        self
    }

    /// Where the entry with this name is; each desired name is looked up once, here.
    fn locate(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The located entry is someone else's: its name is taken.
    fn is_foreign(&self, at: Option<usize>) -> bool {
        at.is_some_and(|j| !self.owned[j])
    }

    /// Entries we do not own; this plan leaves them as they are.
    fn foreign(&self) -> impl Iterator<Item = &'a T> + '_ {
        self.list.iter().zip(&self.owned).filter(|(_, owned)| !**owned).map(|(o, _)| o)
    }

    /// One kind's synthesizer, like the AWS LB Controller's: create what is missing, update
    /// owned entries that differ (in place), delete owned entries no longer desired. `desired`
    /// (with where each name was located) must hold no name taken by a foreign entry.
    fn diff<S: Spec<Entry = T>>(&self, ctx: &Ctx, desired: Vec<(S, Option<usize>)>, kind: Kind) -> Diff<S> {
        let name = &self.name;
        let mut order: Vec<usize> = (0..desired.len()).collect();
        // Names are unique within a kind, so an unstable sort is still deterministic.
        order.sort_unstable_by(|&a, &b| desired[a].0.name().cmp(desired[b].0.name()));

        // In name order: observed entries usually sit in that order, so memory is read front
        // to back (a no-op resync is bound by reading every observed entry once).
        let mut matched = vec![false; self.list.len()];
        let mut verdict: Vec<Option<bool>> = vec![None; desired.len()]; // Some(exists) = write it
        for &i in &order {
            let (d, at) = &desired[i];
            verdict[i] = match *at {
                None => Some(false),
                Some(j) => {
                    matched[j] = true;
                    (self.owned[j] && !d.matches(ctx, &self.list[j])).then_some(true)
                }
            };
        }
        // (A duplicate name counts as matched when its first holder is: deletes go by name.)
        let mut gone: Vec<&str> = (0..self.list.len())
            .filter(|&j| self.owned[j] && !self.held[j] && !matched[j] && !matched[self.by_name[name(&self.list[j])]])
            .map(|j| name(&self.list[j]))
            .collect();
        gone.sort_unstable();
        gone.dedup();
        let deletes = gone.into_iter().map(|n| Operation::Delete { kind, name: n.to_owned() }).collect();
        Diff { desired, order, verdict, deletes }
    }
}

/// The outcome of [`Seen::diff`] for one kind.
struct Diff<S> {
    desired: Vec<(S, Option<usize>)>,
    /// Indices into `desired`, by name.
    order: Vec<usize>,
    /// Per desired entry: `None` = in place, `Some(exists)` = update (true) or create.
    verdict: Vec<Option<bool>>,
    deletes: Vec<Operation>,
}

impl<S: Spec> Diff<S> {
    /// Per desired entry, in input order: is it written?
    fn written(&self) -> Vec<bool> {
        self.verdict.iter().map(Option::is_some).collect()
    }

    fn writes(&self) -> usize {
        self.verdict.iter().filter(|v| v.is_some()).count()
    }

    /// Builds the upserts, by name, straight into `ops`; returns the deletes.
    fn emit(self, ctx: &Ctx, wrap: impl Fn(S::Entry) -> Object, ops: &mut Vec<Operation>) -> Vec<Operation> {
        let Diff { desired, order, verdict, deletes } = self;
        if verdict.iter().all(Option::is_none) {
            return deletes;
        }
        let mut slots: Vec<Option<S>> = desired.into_iter().map(|(d, _)| Some(d)).collect();
        for i in order {
            if let Some(exists) = verdict[i] {
                let object = wrap(slots[i].take().expect("each entry once").build(ctx));
                ops.push(if exists { Operation::Update { object } } else { Operation::Create { object } });
            }
        }
        deletes
    }
}

/// The tag object for `name`: the shared marker, or the tag of one cluster of `deployment`.
fn tag_entry(name: &str, deployment: &str, cluster: Option<&str>) -> Tag {
    let (color, comments) = match cluster {
        Some(cluster) if name != MARKER_TAG => ("color24", format!("{MANAGED_BY}: deployment {deployment}, cluster {cluster}")),
        _ => ("color13", format!("{MANAGED_BY}: marks every object pano-eks writes")),
    };
    Tag { name: name.to_owned(), color: Some(color.to_owned()), comments: Some(comments), unmodelled: vec![] }
}

/// Every name a foreign entry references → a description of the first one (foreign NAT rules
/// of our rulebase first, then the referrers in their sorted order). Referrers carrying this
/// deployment's marks are ours and hold nothing.
fn holders<'a>(
    names: &Names,
    device_group: &str,
    rules: impl Iterator<Item = &'a NatRule>,
    referrers: &'a [Referrer],
) -> FxMap<&'a str, String> {
    let mut uses: FxMap<&'a str, String> = map_with_capacity(0);
    for rule in rules {
        let dnat = match &rule.destination_translation {
            Some(DestinationTranslation::Dynamic { address, .. }) => Some(address),
            _ => None,
        };
        for used in rule.source.iter().chain(&rule.destination).chain(dnat).chain([&rule.service]).chain(&rule.tags) {
            uses.entry(used.as_str()).or_insert_with(|| format!("NAT rule {:?} (device group {device_group} pre-rulebase)", rule.name));
        }
    }
    let mut foreign: Vec<&Referrer> = referrers.iter().filter(|r| !names.owns_tagged(&r.tags)).collect();
    foreign.sort();
    for r in foreign {
        for used in r.names.iter().chain(&r.tags) {
            uses.entry(used.as_str()).or_insert_with(|| format!("{} {:?} ({})", r.kind, r.name, r.location));
        }
    }
    uses
}

/// The Service an entry of ours belongs to, from its description `cluster/namespace/name - …`.
fn service_of(description: &Option<String>) -> Option<String> {
    let (who, _) = description.as_deref()?.split_once(" - ")?;
    (who.split('/').count() == 3 && !who.contains(' ')).then(|| who.to_owned())
}

/// Plans the writes that make Panorama hold exactly what protects the labelled Services.
///
/// Pure and deterministic. Entries without this deployment's ownership marks are never
/// updated or deleted; a desired name they already hold is reported as a conflict and skipped.
pub fn plan(settings: &PlanSettings, facts: &Facts, observed: &Observed) -> Result<Plan, SettingsError> {
    settings.validate()?;
    let names = Names::new(&settings.deployment);
    let desired::Model { ctx, inbound, outbound, routes, mut services, mut clusters, mut problems } =
        desired::build(settings, &names, facts);
    let owned_tagged = |tags: &[String]| names.owns_tagged(tags);
    // A frozen cluster's Services are unknown (its API could not be listed): its per-Service
    // entries stay exactly as they are instead of reading as "no Services, delete them all".
    let frozen: Vec<String> = facts.frozen_clusters.iter().map(|c| names.cluster_tag(c)).collect();
    let is_frozen = |tags: &[String]| !frozen.is_empty() && tags.iter().any(|t| frozen.contains(t));

    let seen_addresses =
        Seen::new(&observed.addresses, |o: &Address| &o.name, |o: &Address| owned_tagged(&o.tags)).hold(|o| is_frozen(&o.tags));
    let seen_services =
        Seen::new(&observed.services, |o: &ServiceObject| &o.name, |o: &ServiceObject| owned_tagged(&o.tags)).hold(|o| is_frozen(&o.tags));
    let seen_rules =
        Seen::new(&observed.nat_rules, |o: &NatRule| &o.name, |o: &NatRule| owned_tagged(&o.tags)).hold(|o| is_frozen(&o.tags));
    let seen_routes = Seen::new(&observed.static_routes, |o: &StaticRoute| &o.name, |o: &StaticRoute| names.owns_route(&o.name));
    let seen_tags = Seen::new(&observed.tags, |o: &Tag| &o.name, |o: &Tag| names.owns_tag_object(o));
    let foreign = |what: &str, name: &str| {
        format!(
            "{what} {name:?} already exists in device group {} and is not owned by deployment {}",
            settings.device_group, settings.deployment
        )
    };

    // Inbound: all three objects or none, so a rule never points at someone else's object.
    // Kept items go straight into per-kind lists (same order); moves of big structs add up.
    let mut used_clusters = vec![false; ctx.tags.len()];
    let mut held: FxSet<&str> = set_with_capacity(0);
    let mut held_tags: FxSet<&str> = set_with_capacity(0);
    let mut status_of = Vec::with_capacity(inbound.len());
    let mut addresses = Vec::with_capacity(inbound.len());
    let mut svc_objects = Vec::with_capacity(inbound.len());
    let mut rules = Vec::with_capacity(inbound.len() + outbound.len());
    for item in inbound {
        let at = [seen_addresses.locate(&item.address.name), seen_services.locate(&item.service.name), seen_rules.locate(&item.rule.name)];
        let clashes: Vec<String> = [
            (seen_addresses.is_foreign(at[0]), "address", &item.address.name),
            (seen_services.is_foreign(at[1]), "service", &item.service.name),
            (seen_rules.is_foreign(at[2]), "NAT rule", &item.rule.name),
        ]
        .into_iter()
        .filter(|c| c.0)
        .map(|(_, what, name)| foreign(what, name))
        .collect();
        if clashes.is_empty() {
            let [a, s, r] = at;
            used_clusters[item.cluster] = true;
            status_of.push(item.status);
            addresses.push((item.address, a));
            svc_objects.push((item.service, s));
            rules.push((RuleSpec::Inbound(item.rule), r));
            continue;
        }
        // What we already own of this Service stays as it is (held, not garbage-collected):
        // a name clash caused by someone else must not tear down working protection.
        let owned_at = [
            at[0].filter(|&j| seen_addresses.owned[j]).map(|j| (&seen_addresses.list[j].name, &seen_addresses.list[j].tags)),
            at[1].filter(|&j| seen_services.owned[j]).map(|j| (&seen_services.list[j].name, &seen_services.list[j].tags)),
            at[2].filter(|&j| seen_rules.owned[j]).map(|j| (&seen_rules.list[j].name, &seen_rules.list[j].tags)),
        ];
        for (name, tags) in owned_at.into_iter().flatten() {
            held.insert(name.as_str());
            held_tags.extend(tags.iter().map(String::as_str));
        }
        let st = &mut services[item.status];
        let why = format!("{}; not written (entries it already has are left as they are)", clashes.join("; "));
        st.state = ServiceState::Conflict;
        st.reason = why.clone();
        (st.nat_rule, st.address, st.service_object) = (None, None, None);
        let subject = format!("{}/{}/{}", st.cluster, st.namespace, st.name);
        problems.push(Problem { subject, kind: ProblemKind::NameConflict, message: why });
    }

    for item in outbound {
        let cluster = &mut clusters[item.cluster];
        let subnet = &mut cluster.subnets[item.subnet];
        let at = seen_rules.locate(&item.rule.name);
        if seen_rules.is_foreign(at) {
            let subject = format!("{}/{}", cluster.name, subnet.id);
            problems.push(Problem {
                subject,
                kind: ProblemKind::NameConflict,
                message: format!("{}; not written", foreign("NAT rule", &item.rule.name)),
            });
        } else {
            subnet.outbound_rule = Some(item.rule.name.clone());
            used_clusters[item.cluster] = true;
            rules.push((RuleSpec::Built(item.rule), at));
        }
    }
    // Route names carry our prefix, which is our ownership mark: no foreign route can hold one.
    for r in &routes {
        clusters[r.cluster].subnets[r.subnet].routes.push(r.route.name.clone());
    }

    // Tags: the marker and each cluster tag still referenced by a desired object.
    let cluster_of_tag: FxMap<&str, &str> = clusters.iter().map(|c| (c.tag.as_str(), c.name.as_str())).collect();
    let mut wanted_tags: BTreeSet<String> = BTreeSet::new();
    for tags in ctx.tags.iter().zip(used_clusters).filter(|(_, used)| *used).map(|(tags, _)| tags) {
        for t in tags {
            if !wanted_tags.contains(t) {
                wanted_tags.insert(t.clone());
            }
        }
    }
    let mut desired_tags = Vec::new();
    for name in &wanted_tags {
        let at = seen_tags.locate(name);
        if seen_tags.is_foreign(at) {
            // A tag is only a label: objects may still reference the foreign one.
            let message = format!("tag {name:?} exists and was not created by pano-eks; left unchanged and used as is");
            problems.push(Problem { subject: name.clone(), kind: ProblemKind::NameConflict, message });
            continue;
        }
        desired_tags.push((tag_entry(name, &settings.deployment, cluster_of_tag.get(name.as_str()).copied()), at));
    }

    // A tag may go only if nothing that stays references it: our desired objects, and every
    // entry we do not own (foreign ones and other deployments'), which this plan leaves alone.
    let mut referenced: FxSet<&str> = wanted_tags.iter().map(String::as_str).collect();
    let foreign_tags = (seen_addresses.foreign().map(|o| &o.tags))
        .chain(seen_services.foreign().map(|o| &o.tags))
        .chain(seen_rules.foreign().map(|o| &o.tags));
    for tags in foreign_tags {
        referenced.extend(tags.iter().map(String::as_str));
    }

    let route_objs: Vec<_> = routes.into_iter().map(|r| (seen_routes.locate(&r.route.name), r.route)).map(|(at, r)| (r, at)).collect();

    let tag_diff = seen_tags.diff(&ctx, desired_tags, Kind::Tag);
    let addr_diff = seen_addresses.diff(&ctx, addresses, Kind::Address);
    let svc_diff = seen_services.diff(&ctx, svc_objects, Kind::Service);
    let rule_diff = seen_rules.diff(&ctx, rules, Kind::NatRule);
    let route_diff = seen_routes.diff(&ctx, route_objs, Kind::StaticRoute);
    let (w_addr, w_svc, w_rule) = (addr_diff.written(), svc_diff.written(), rule_diff.written());
    let (mut addr_diff, mut svc_diff, mut rule_diff) = (addr_diff, svc_diff, rule_diff);

    // An address or service a foreign rule still uses cannot be deleted (PAN-OS refuses, and
    // the whole batch with it): keep it and say which rule holds it.
    for deletes in [&mut addr_diff.deletes, &mut svc_diff.deletes, &mut rule_diff.deletes] {
        deletes.retain(|op| !held.contains(op.name()));
    }
    referenced.extend(held_tags);
    // What still references an entry we would delete holds it (PAN-OS refuses the delete, and in
    // a batch every other write with it): foreign NAT rules of our rulebase, and every rule or
    // group elsewhere the adapter found (other rulebases, descendant device groups, shared),
    // unless it carries our own marks. Held entries are reported against their Service and go
    // with the first sync after the reference does.
    let holders = holders(&names, &settings.device_group, seen_rules.foreign(), &observed.referrers);
    let mut referenced_extra: Vec<String> = Vec::new();
    if !holders.is_empty() {
        // Returns the tags of a kept entry: they stay referenced too.
        let mut keep = |what: &str, op: &Operation, found: Option<(&'_ Vec<String>, &Option<String>)>| -> bool {
            let Some(holder) = holders.get(op.name()) else { return true };
            let (tags, description) = found.map_or((None, &None), |(t, d)| (Some(t), d));
            let message = format!(
                "{what} {:?} not deleted: still used by {holder}, which pano-eks does not own; it is deleted by the first sync after that reference goes",
                op.name()
            );
            problems.push(Problem {
                subject: service_of(description).unwrap_or_else(|| op.name().to_owned()),
                kind: ProblemKind::InUse,
                message,
            });
            referenced_extra.extend(tags.into_iter().flatten().cloned());
            false
        };
        addr_diff.deletes.retain(|op| {
            keep(
                "address",
                op,
                seen_addresses.locate(op.name()).map(|j| (&seen_addresses.list[j].tags, &seen_addresses.list[j].description)),
            )
        });
        svc_diff.deletes.retain(|op| {
            keep("service", op, seen_services.locate(op.name()).map(|j| (&seen_services.list[j].tags, &seen_services.list[j].description)))
        });
    }

    // Upserts in dependency order (tags, addresses, services, rules, routes), deletes after.
    // Reserved exactly: an Operation is ~350 bytes and regrowing would copy them all.
    let writes = tag_diff.writes() + addr_diff.writes() + svc_diff.writes() + rule_diff.writes() + route_diff.writes();
    let deletes =
        tag_diff.deletes.len() + addr_diff.deletes.len() + svc_diff.deletes.len() + rule_diff.deletes.len() + route_diff.deletes.len();
    let mut operations = Vec::with_capacity(writes + deletes);
    let mut del_tag = tag_diff.emit(&ctx, Object::Tag, &mut operations);
    del_tag.retain(|op| {
        if referenced.contains(op.name()) || referenced_extra.iter().any(|t| t == op.name()) {
            return false;
        }
        let Some(holder) = holders.get(op.name()) else { return true };
        let message = format!("tag {:?} not deleted: still used by {holder}, which pano-eks does not own", op.name());
        problems.push(Problem { subject: op.name().to_owned(), kind: ProblemKind::InUse, message });
        false
    });
    let del_addr = addr_diff.emit(&ctx, Object::Address, &mut operations);
    let del_svc = svc_diff.emit(&ctx, Object::Service, &mut operations);
    let del_rule = rule_diff.emit(&ctx, Object::NatRule, &mut operations);
    let del_route = route_diff.emit(&ctx, Object::StaticRoute, &mut operations);
    // An update keeps the rule's identity: the observed uuid goes into the `edit`, so PAN-OS
    // keeps its hit counts and rule-usage history.
    for op in operations.iter_mut() {
        if let Operation::Update { object: Object::NatRule(r) } = op {
            r.uuid = seen_rules.locate(&r.name).and_then(|j| seen_rules.list[j].uuid.clone());
        }
    }

    for (i, &st) in status_of.iter().enumerate() {
        let st = &mut services[st];
        (st.state, st.reason) = if w_addr[i] || w_svc[i] || w_rule[i] {
            (ServiceState::Planned, "this plan writes its address, service and NAT rule".to_owned())
        } else {
            (ServiceState::Protected, "address, service and NAT rule are in place".to_owned())
        };
    }

    // A rule goes before the objects it references; tags go last.
    for deletes in [del_rule, del_route, del_addr, del_svc, del_tag] {
        operations.extend(deletes);
    }
    let device_group_changed = operations.iter().any(|o| o.kind().scope() == Scope::DeviceGroup);
    let template_changed = operations.iter().any(|o| o.kind().scope() == Scope::Template);

    services.sort_by(|a, b| (&a.cluster, &a.namespace, &a.name).cmp(&(&b.cluster, &b.namespace, &b.name)));
    problems.sort();
    Ok(Plan { operations, device_group_changed, template_changed, services, clusters, problems })
}

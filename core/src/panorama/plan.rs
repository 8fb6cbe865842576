//! The planner: desired model vs observed entries → ordered operations, plus status for humans.
//!
//! Like the AWS Load Balancer Controller's synthesizers, each kind is diffed on its own and
//! only entries carrying our ownership marks are ever updated or deleted. Everything here is
//! sorted by name or identity, so the same input always yields the same plan.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::capacity::{self, Claim, Limits};
use crate::facts::Facts;
use crate::fxhash::{FxMap, FxSet, map_with_capacity, set_with_capacity};
use crate::panorama::desired;
use crate::panorama::model::{
    Address, DestinationTranslation, Kind, MARKER_TAG, NatRule, Object, Observed, Operation, Referrer, Scope, ServiceObject, StaticRoute,
    Tag,
};
use crate::panorama::naming::{MANAGED_BY, Names};
use crate::panorama::spec::{AddressSpec, Ctx, RuleSpec, ServiceSpec, Spec};
use crate::panorama::status::{ClusterStatus, Problem, ProblemKind, ServiceState, ServiceStatus};
use crate::security::exposure::{LoadBalancerIndex, exposure_in};
use crate::security::policy;
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

    /// (creates, updates, deletes); moves are counted by [`Plan::moves`].
    pub fn counts(&self) -> (usize, usize, usize) {
        self.operations.iter().fold((0, 0, 0), |(c, u, d), op| match op {
            Operation::Create { .. } => (c + 1, u, d),
            Operation::Update { .. } => (c, u + 1, d),
            Operation::Delete { .. } => (c, u, d + 1),
            Operation::Move { .. } => (c, u, d),
        })
    }

    /// How many of our rules this plan moves.
    pub fn moves(&self) -> usize {
        self.operations.iter().filter(|op| matches!(op, Operation::Move { .. })).count()
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

/// Name accessor of one observed kind (a plain fn, so the index can name its type).
type NameOf<T> = fn(&T) -> &str;

/// The observed entries of every kind, indexed, with ownership (and frozen holds) evaluated once.
struct Index<'a> {
    addresses: Seen<'a, Address, NameOf<Address>>,
    services: Seen<'a, ServiceObject, NameOf<ServiceObject>>,
    rules: Seen<'a, NatRule, NameOf<NatRule>>,
    routes: Seen<'a, StaticRoute, NameOf<StaticRoute>>,
    tags: Seen<'a, Tag, NameOf<Tag>>,
}

impl<'a> Index<'a> {
    fn new(names: &Names, facts: &Facts, observed: &'a Observed) -> Self {
        let owned_tagged = |tags: &[String]| names.owns_tagged(tags);
        // A frozen cluster's Services are unknown (its API could not be listed): its per-Service
        // entries stay exactly as they are instead of reading as "no Services, delete them all".
        let frozen: Vec<String> = facts.frozen_clusters.iter().map(|c| names.cluster_tag(c)).collect();
        let is_frozen = |tags: &[String]| !frozen.is_empty() && tags.iter().any(|t| frozen.contains(t));
        Index {
            addresses: Seen::new(&observed.addresses, (|o: &Address| o.name.as_str()) as NameOf<Address>, |o| owned_tagged(&o.tags))
                .hold(|o| is_frozen(&o.tags)),
            services: Seen::new(&observed.services, (|o: &ServiceObject| o.name.as_str()) as NameOf<ServiceObject>, |o| {
                owned_tagged(&o.tags)
            })
            .hold(|o| is_frozen(&o.tags)),
            rules: Seen::new(&observed.nat_rules, (|o: &NatRule| o.name.as_str()) as NameOf<NatRule>, |o| owned_tagged(&o.tags))
                .hold(|o| is_frozen(&o.tags)),
            routes: Seen::new(&observed.static_routes, (|o: &StaticRoute| o.name.as_str()) as NameOf<StaticRoute>, |o| {
                names.owns_route(&o.name)
            }),
            tags: Seen::new(&observed.tags, (|o: &Tag| o.name.as_str()) as NameOf<Tag>, |o| names.owns_tag_object(o)),
        }
    }
}

/// What the planner writes and reports as it goes.
struct Outcome<'s> {
    settings: &'s PlanSettings,
    services: Vec<ServiceStatus>,
    clusters: Vec<ClusterStatus>,
    problems: Vec<Problem>,
}

impl Outcome<'_> {
    fn foreign(&self, what: &str, name: &str) -> String {
        format!(
            "{what} {name:?} already exists in device group {} and is not owned by deployment {}",
            self.settings.device_group, self.settings.deployment
        )
    }
}

/// The desired entries that may be written (no name held by a foreign entry), each with where
/// its name was located, and what conflicts hold of ours.
struct Admitted<'a, 'f> {
    /// Per cluster: some desired object carries its tag.
    used_clusters: Vec<bool>,
    /// Owned entries of a Service in a name conflict, and their tags: kept as they are.
    held: FxSet<&'a str>,
    held_tags: FxSet<&'a str>,
    /// Per admitted Service (same order as `addresses`/`svc_objects`): its status index.
    status_of: Vec<usize>,
    addresses: Vec<(AddressSpec<'f>, Option<usize>)>,
    svc_objects: Vec<(ServiceSpec<'f>, Option<usize>)>,
    rules: Vec<(RuleSpec<'f>, Option<usize>)>,
}

/// Plans the writes that make Panorama hold exactly what protects the labelled Services.
///
/// Pure and deterministic. Entries without this deployment's ownership marks are never
/// updated or deleted; a desired name they already hold is reported as a conflict and skipped.
pub fn plan(settings: &PlanSettings, facts: &Facts, observed: &Observed) -> Result<Plan, SettingsError> {
    settings.validate()?;
    let names = Names::new(&settings.deployment);
    let desired::Model { ctx, inbound, outbound, routes, services, clusters, problems } =
        desired::build(settings, &names, facts, &observed.profile_groups);
    let seen = Index::new(&names, facts, observed);
    let mut out = Outcome { settings, services, clusters, problems };

    let inbound = within_capacity(&seen, &names, observed, inbound, outbound.len(), &mut out);
    let mut admitted = admit_inbound(&seen, inbound, ctx.tags.len(), &mut out);
    admitted.rules.reserve_exact(outbound.len());
    admit_outbound(&seen, outbound, &mut admitted, &mut out);
    // Route names carry our prefix, which is our ownership mark: no foreign route can hold one.
    for r in &routes {
        out.clusters[r.cluster].subnets[r.subnet].routes.push(r.route.name.clone());
    }
    let ns_tags = namespace_tags(&admitted, &out.services);
    let (wanted_tags, desired_tags) = wanted_tags(&seen, &ctx, &admitted.used_clusters, &ns_tags, &mut out);

    // A tag may go only if nothing that stays references it: our desired objects, and every
    // entry we do not own (foreign ones and other deployments'), which this plan leaves alone.
    let mut referenced: FxSet<&str> = wanted_tags.iter().map(String::as_str).collect();
    let foreign_tags = (seen.addresses.foreign().map(|o| &o.tags))
        .chain(seen.services.foreign().map(|o| &o.tags))
        .chain(seen.rules.foreign().map(|o| &o.tags));
    for tags in foreign_tags {
        referenced.extend(tags.iter().map(String::as_str));
    }

    let route_objs: Vec<_> = routes.into_iter().map(|r| (seen.routes.locate(&r.route.name), r.route)).map(|(at, r)| (r, at)).collect();
    let Admitted { used_clusters, held, held_tags, status_of, addresses, svc_objects, rules } = admitted;
    let tag_diff = seen.tags.diff(&ctx, desired_tags, Kind::Tag);
    let mut addr_diff = seen.addresses.diff(&ctx, addresses, Kind::Address);
    let mut svc_diff = seen.services.diff(&ctx, svc_objects, Kind::Service);
    let mut rule_diff = seen.rules.diff(&ctx, rules, Kind::NatRule);
    let route_diff = seen.routes.diff(&ctx, route_objs, Kind::StaticRoute);
    let (w_addr, w_svc, w_rule) = (addr_diff.written(), svc_diff.written(), rule_diff.written());

    // An address or service a foreign rule still uses cannot be deleted (PAN-OS refuses, and
    // the whole batch with it): keep it and say which rule holds it.
    for deletes in [&mut addr_diff.deletes, &mut svc_diff.deletes, &mut rule_diff.deletes] {
        deletes.retain(|op| !held.contains(op.name()));
    }
    referenced.extend(held_tags);
    let holders = holders(&names, &settings.device_group, seen.rules.foreign(), &observed.referrers);
    let referenced_extra = keep_referenced(&seen, &holders, &mut addr_diff.deletes, &mut svc_diff.deletes, &mut out.problems);

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
        out.problems.push(Problem { subject: op.name().to_owned(), kind: ProblemKind::InUse, message });
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
            r.uuid = seen.rules.locate(&r.name).and_then(|j| seen.rules.list[j].uuid.clone());
        }
    }

    for (i, &st) in status_of.iter().enumerate() {
        let st = &mut out.services[st];
        (st.state, st.reason) = if w_addr[i] || w_svc[i] || w_rule[i] {
            (ServiceState::Planned, "this plan writes its address, service and NAT rule".to_owned())
        } else {
            (ServiceState::Protected, "address, service and NAT rule are in place".to_owned())
        };
    }
    mark_exposed(facts, &mut out.services, &mut out.problems);

    // Security rules and address groups (core/src/security): after the objects they name, our
    // moves after every create; their deletes before anything they name.
    let input = policy::Input { settings, names: &names, facts, observed, holders: &holders, used_clusters: &used_clusters };
    let security = policy::plan(&input, &mut out.services, &out.clusters);
    out.problems.extend(security.problems);
    operations.extend(security.upserts);
    operations.extend(security.moves);

    // A rule goes before the objects it references; tags go last.
    for deletes in [security.rule_deletes, del_rule, del_route, security.group_deletes, del_addr, del_svc, del_tag] {
        operations.extend(deletes);
    }
    let device_group_changed = operations.iter().any(|o| o.kind().scope() == Scope::DeviceGroup);
    let template_changed = operations.iter().any(|o| o.kind().scope() == Scope::Template);

    let Outcome { mut services, clusters, mut problems, .. } = out;
    services.sort_by(|a, b| (&a.cluster, &a.namespace, &a.name).cmp(&(&b.cluster, &b.namespace, &b.name)));
    problems.sort();
    Ok(Plan { operations, device_group_changed, template_changed, services, clusters, problems })
}

/// Capacity: with known limits, the Services whose objects fit (those already in Panorama
/// first, then the oldest; see [`crate::capacity::admit`]); the others are `over-capacity`.
/// Counted as in use: everything of the containers that is not this deployment's (the device
/// group's pre-rulebase security rules among them: ours are claims or fixed entries, never
/// counted as someone else's too), what lies `elsewhere` (shared, ancestors, the device group's
/// post-rulebases) and the outbound rules (NAT, and with `[sync.security]` the outbound security
/// rule of each). With `[sync.security]` a Service also spends its allow rule.
fn within_capacity<'f>(
    seen: &Index,
    names: &Names,
    observed: &Observed,
    inbound: Vec<desired::Inbound<'f>>,
    outbound: usize,
    out: &mut Outcome,
) -> Vec<desired::Inbound<'f>> {
    let Some(capacity) = &out.settings.capacity else { return inbound };
    let mut used = observed.elsewhere;
    for a in seen.addresses.foreign() {
        used.addresses += 1;
        used.fqdn_addresses += usize::from(matches!(a.value, crate::panorama::model::AddressValue::Fqdn(_)));
    }
    used.service_objects += seen.services.foreign().count();
    used.nat_rules += seen.rules.foreign().count() + outbound;
    used.security_rules += observed.security_rules.iter().filter(|r| !names.owns_tagged(&r.tags)).count();
    let security = usize::from(out.settings.security.is_some());
    used.security_rules += security * outbound;
    let cost = Limits { fqdn_addresses: 1, addresses: 1, service_objects: 1, nat_rules: 1, security_rules: security };
    let claims: Vec<Claim> = inbound
        .iter()
        .map(|i| {
            let present = seen.addresses.locate(&i.address.name).is_some_and(|j| seen.addresses.owned[j]);
            let st = &out.services[i.status];
            Claim { key: format!("{}/{}/{}", st.cluster, st.namespace, st.name), created: i.created, present, cost }
        })
        .collect();
    let verdicts = capacity::admit(capacity, used, &claims);
    let mut kept = Vec::with_capacity(inbound.len());
    for (item, verdict) in inbound.into_iter().zip(verdicts) {
        let Some(why) = verdict else {
            kept.push(item);
            continue;
        };
        let st = &mut out.services[item.status];
        let reason = format!("over capacity: {why}; admitted when room appears");
        (st.state, st.reason) = (ServiceState::OverCapacity, reason.clone());
        (st.nat_rule, st.address, st.service_object) = (None, None, None);
        let subject = format!("{}/{}/{}", st.cluster, st.namespace, st.name);
        out.problems.push(Problem { subject, kind: ProblemKind::OverCapacity, message: reason });
    }
    kept
}

/// Inbound: all three objects of a Service or none, so a rule never points at someone else's
/// object. Kept items go straight into per-kind lists (same order); moves of big structs add up.
fn admit_inbound<'a, 'f>(seen: &Index<'a>, inbound: Vec<desired::Inbound<'f>>, clusters: usize, out: &mut Outcome) -> Admitted<'a, 'f> {
    let mut a = Admitted {
        used_clusters: vec![false; clusters],
        held: set_with_capacity(0),
        held_tags: set_with_capacity(0),
        status_of: Vec::with_capacity(inbound.len()),
        addresses: Vec::with_capacity(inbound.len()),
        svc_objects: Vec::with_capacity(inbound.len()),
        rules: Vec::with_capacity(inbound.len()),
    };
    for item in inbound {
        let at = [seen.addresses.locate(&item.address.name), seen.services.locate(&item.service.name), seen.rules.locate(&item.rule.name)];
        let clashes: Vec<String> = [
            (seen.addresses.is_foreign(at[0]), "address", &item.address.name),
            (seen.services.is_foreign(at[1]), "service", &item.service.name),
            (seen.rules.is_foreign(at[2]), "NAT rule", &item.rule.name),
        ]
        .into_iter()
        .filter(|c| c.0)
        .map(|(_, what, name)| out.foreign(what, name))
        .collect();
        if clashes.is_empty() {
            let [ad, s, r] = at;
            a.used_clusters[item.cluster] = true;
            a.status_of.push(item.status);
            a.addresses.push((item.address, ad));
            a.svc_objects.push((item.service, s));
            a.rules.push((RuleSpec::Inbound(item.rule), r));
            continue;
        }
        // What we already own of this Service stays as it is (held, not garbage-collected):
        // a name clash caused by someone else must not tear down working protection.
        let owned_at = [
            at[0].filter(|&j| seen.addresses.owned[j]).map(|j| (&seen.addresses.list[j].name, &seen.addresses.list[j].tags)),
            at[1].filter(|&j| seen.services.owned[j]).map(|j| (&seen.services.list[j].name, &seen.services.list[j].tags)),
            at[2].filter(|&j| seen.rules.owned[j]).map(|j| (&seen.rules.list[j].name, &seen.rules.list[j].tags)),
        ];
        for (name, tags) in owned_at.into_iter().flatten() {
            a.held.insert(name.as_str());
            a.held_tags.extend(tags.iter().map(String::as_str));
        }
        let st = &mut out.services[item.status];
        let why = format!("{}; not written (entries it already has are left as they are)", clashes.join("; "));
        st.state = ServiceState::Conflict;
        st.reason = why.clone();
        (st.nat_rule, st.address, st.service_object) = (None, None, None);
        let subject = format!("{}/{}/{}", st.cluster, st.namespace, st.name);
        out.problems.push(Problem { subject, kind: ProblemKind::NameConflict, message: why });
    }
    a
}

/// Outbound: each subnet's rule unless a foreign rule holds its name.
fn admit_outbound(seen: &Index, outbound: Vec<desired::Outbound>, a: &mut Admitted, out: &mut Outcome) {
    for item in outbound {
        let at = seen.rules.locate(&item.rule.name);
        if seen.rules.is_foreign(at) {
            let message = format!("{}; not written", out.foreign("NAT rule", &item.rule.name));
            let cluster = &out.clusters[item.cluster];
            let subject = format!("{}/{}", cluster.name, cluster.subnets[item.subnet].id);
            out.problems.push(Problem { subject, kind: ProblemKind::NameConflict, message });
        } else {
            out.clusters[item.cluster].subnets[item.subnet].outbound_rule = Some(item.rule.name.clone());
            a.used_clusters[item.cluster] = true;
            a.rules.push((RuleSpec::Built(item.rule), at));
        }
    }
}

/// With `[sync.security]`: each namespace tag an admitted address carries → (cluster, namespace).
fn namespace_tags(admitted: &Admitted, services: &[ServiceStatus]) -> FxMap<String, (String, String)> {
    let mut out: FxMap<String, (String, String)> = map_with_capacity(0);
    for ((spec, _), &st) in admitted.addresses.iter().zip(&admitted.status_of) {
        if let Some(tag) = &spec.ns_tag {
            let st = &services[st];
            out.entry(tag.clone()).or_insert_with(|| (st.cluster.clone(), st.namespace.clone()));
        }
    }
    out
}

/// Tags: the marker and each cluster tag still referenced by a desired object (and the
/// namespace tags of admitted addresses); a foreign tag of that name is used as is (reported,
/// not written).
fn wanted_tags(
    seen: &Index,
    ctx: &Ctx,
    used_clusters: &[bool],
    ns_tags: &FxMap<String, (String, String)>,
    out: &mut Outcome,
) -> (BTreeSet<String>, Vec<(Tag, Option<usize>)>) {
    let cluster_of_tag: FxMap<&str, &str> = out.clusters.iter().map(|c| (c.tag.as_str(), c.name.as_str())).collect();
    let mut wanted_tags: BTreeSet<String> = BTreeSet::new();
    for tags in ctx.tags.iter().zip(used_clusters).filter(|(_, used)| **used).map(|(tags, _)| tags) {
        for t in tags {
            if !wanted_tags.contains(t) {
                wanted_tags.insert(t.clone());
            }
        }
    }
    wanted_tags.extend(ns_tags.keys().cloned());
    let mut desired_tags = Vec::new();
    let mut problems = Vec::new();
    for name in &wanted_tags {
        let at = seen.tags.locate(name);
        if seen.tags.is_foreign(at) {
            // A tag is only a label: objects may still reference the foreign one.
            let message = format!("tag {name:?} exists and was not created by pano-eks; left unchanged and used as is");
            problems.push(Problem { subject: name.clone(), kind: ProblemKind::NameConflict, message });
            continue;
        }
        let mut entry = tag_entry(name, &out.settings.deployment, cluster_of_tag.get(name.as_str()).copied());
        if let Some((cluster, ns)) = ns_tags.get(name) {
            entry.comments = Some(format!("{MANAGED_BY}: deployment {}, cluster {cluster}, namespace {ns}", out.settings.deployment));
        }
        desired_tags.push((entry, at));
    }
    out.problems.extend(problems);
    (wanted_tags, desired_tags)
}

/// What still references an entry we would delete holds it (PAN-OS refuses the delete, and in
/// a batch every other write with it): foreign NAT rules of our rulebase, and every rule or
/// group elsewhere the adapter found (other rulebases, descendant device groups, shared),
/// unless it carries our own marks. Held entries are reported against their Service and go
/// with the first sync after the reference does. Returns the tags of the kept entries: they
/// stay referenced too.
fn keep_referenced(
    seen: &Index,
    holders: &FxMap<&str, String>,
    addr_deletes: &mut Vec<Operation>,
    svc_deletes: &mut Vec<Operation>,
    problems: &mut Vec<Problem>,
) -> Vec<String> {
    let mut referenced_extra: Vec<String> = Vec::new();
    if holders.is_empty() {
        return referenced_extra;
    }
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
    addr_deletes.retain(|op| {
        keep("address", op, seen.addresses.locate(op.name()).map(|j| (&seen.addresses.list[j].tags, &seen.addresses.list[j].description)))
    });
    svc_deletes.retain(|op| {
        keep("service", op, seen.services.locate(op.name()).map(|j| (&seen.services.list[j].tags, &seen.services.list[j].description)))
    });
    referenced_extra
}

/// A Service whose own load balancer is internet-facing keeps its objects (the firewall path
/// works) but is `exposed`, not protected: the internet reaches it around the firewalls.
fn mark_exposed(facts: &Facts, services: &mut [ServiceStatus], problems: &mut Vec<Problem>) {
    let by_key = facts.service_index();
    let load_balancers = LoadBalancerIndex::new(&facts.load_balancers);
    for st in services.iter_mut().filter(|s| matches!(s.state, ServiceState::Planned | ServiceState::Protected)) {
        let Some(svc) = by_key.get(&(st.cluster.as_str(), st.namespace.as_str(), st.name.as_str())).copied() else {
            continue;
        };
        if let Some(why) = exposure_in(svc, &load_balancers).exposed_because() {
            st.state = ServiceState::Exposed;
            st.reason = why.to_owned();
            let subject = format!("{}/{}/{}", st.cluster, st.namespace, st.name);
            problems.push(Problem { subject, kind: ProblemKind::Exposed, message: why.to_owned() });
        }
    }
}

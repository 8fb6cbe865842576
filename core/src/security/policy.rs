//! The security stage of a plan: after the NAT path is planned (which Services have objects,
//! which subnets have outbound rules), the allow rules, outbound rules and address groups they
//! need, diffed against what the device group holds by ownership mark, and the moves that keep
//! our block of rules where the config places it.
//!
//! Ownership as everywhere: an entry is ours when it carries the marker tag and a tag of this
//! deployment. A foreign rule or group holding a name we want is a conflict (reported, never
//! written); our rules and groups nothing wants any more are deleted — rules before the objects
//! they name (the planner orders them), groups a foreign rule still names are held. With
//! `[sync.security]` off nothing is desired, so what we wrote earlier is removed.

use crate::facts::Facts;
use crate::fxhash::FxMap;
use crate::panorama::model::{AddressGroup, GroupValue, Kind, Object, Observed, Operation, SecurityRule};
use crate::panorama::naming::{MANAGED_BY, Names};
use crate::panorama::status::{ClusterStatus, Problem, ProblemKind, ServiceState, ServiceStatus};
use crate::security::{annotations, groups, placement, rules};
use crate::settings::PlanSettings;

/// What the stage reads.
pub(crate) struct Input<'a> {
    pub settings: &'a PlanSettings,
    pub names: &'a Names,
    pub facts: &'a Facts,
    pub observed: &'a Observed,
    /// Names foreign entries reference → who (see `plan::holders`): such a group is not deleted.
    pub holders: &'a FxMap<&'a str, String>,
    /// Per cluster (same order as the statuses): some desired object carries its tag.
    pub used_clusters: &'a [bool],
}

/// What the stage adds to the plan.
#[derive(Default)]
pub(crate) struct Outcome {
    /// Groups, then rules, by name.
    pub upserts: Vec<Operation>,
    pub moves: Vec<Operation>,
    pub rule_deletes: Vec<Operation>,
    pub group_deletes: Vec<Operation>,
    pub problems: Vec<Problem>,
}

fn subject(st: &ServiceStatus) -> String {
    format!("{}/{}/{}", st.cluster, st.namespace, st.name)
}

/// `cluster/namespace/name` from an owned entry's description.
fn service_of(description: &Option<String>) -> Option<&str> {
    let (who, _) = description.as_deref()?.split_once(" - ")?;
    (who.split('/').count() == 3 && !who.contains(' ')).then_some(who)
}

/// The Service statuses that get an allow rule: their objects are (being) written.
fn protected(st: &ServiceStatus) -> bool {
    matches!(st.state, ServiceState::Planned | ServiceState::Protected | ServiceState::Exposed)
        && st.nat_rule.is_some()
        && st.service_object.is_some()
}

/// One desired entry, with the Service it belongs to (for status).
struct Want<T> {
    entry: T,
    service: Option<usize>,
}

/// The stage. Updates `services` (each protected Service's `security_rule`, conflicts, planned).
pub(crate) fn plan(input: &Input, services: &mut [ServiceStatus], clusters: &[ClusterStatus]) -> Outcome {
    let mut out = Outcome::default();
    let (s, names, observed) = (input.settings, input.names, input.observed);
    let managed = format!("{MANAGED_BY} ({})", names.deployment());
    let frozen: Vec<String> = input.facts.frozen_clusters.iter().map(|c| names.cluster_tag(c)).collect();
    let is_frozen = |tags: &[String]| tags.iter().any(|t| frozen.contains(t));
    let conflicted: Vec<String> = services.iter().filter(|st| st.state == ServiceState::Conflict).map(subject).collect();

    let (mut want_rules, want_groups) = match &s.security {
        None => (vec![], vec![]),
        Some(sec) => desired(input, sec, services, clusters, &managed),
    };
    want_rules.sort_by(|a, b| a.entry.name.cmp(&b.entry.name));

    // Rules: conflicts, then create / update / in place; owned leftovers deleted unless held.
    let owned = |r: &SecurityRule| names.owns_tagged(&r.tags);
    let by_name: FxMap<&str, &SecurityRule> = observed.security_rules.iter().rev().map(|r| (r.name.as_str(), r)).collect();
    let mut admitted: Vec<&str> = Vec::new();
    let mut created: Vec<String> = Vec::new();
    let mut written = vec![false; services.len()];
    for w in &want_rules {
        let name = w.entry.name.as_str();
        match by_name.get(name) {
            Some(r) if !owned(r) => {
                let why = format!(
                    "security rule {name:?} already exists in device group {} and is not owned by deployment {}; not written",
                    s.device_group,
                    names.deployment()
                );
                match w.service {
                    Some(i) => {
                        let st = &mut services[i];
                        (st.state, st.reason, st.security_rule) = (ServiceState::Conflict, why.clone(), None);
                        out.problems.push(Problem { subject: subject(st), kind: ProblemKind::NameConflict, message: why });
                    }
                    None => out.problems.push(Problem { subject: name.to_owned(), kind: ProblemKind::NameConflict, message: why }),
                }
                continue;
            }
            Some(r) if r.same_content(&w.entry) => {}
            Some(r) => {
                let mut entry = w.entry.clone();
                entry.uuid = r.uuid.clone();
                out.upserts.push(Operation::Update { object: Object::SecurityRule(entry) });
                w.service.inspect(|&i| written[i] = true);
            }
            None => {
                out.upserts.push(Operation::Create { object: Object::SecurityRule(w.entry.clone()) });
                created.push(name.to_owned());
                w.service.inspect(|&i| written[i] = true);
            }
        }
        admitted.push(name);
    }
    let wanted: std::collections::BTreeSet<&str> = want_rules.iter().map(|w| w.entry.name.as_str()).collect();
    for r in observed.security_rules.iter().filter(|r| owned(r) && !wanted.contains(r.name.as_str())) {
        let held = is_frozen(&r.tags) || service_of(&r.description).is_some_and(|who| conflicted.iter().any(|c| c == who));
        if !held {
            out.rule_deletes.push(Operation::Delete { kind: Kind::SecurityRule, name: r.name.clone() });
        }
    }
    out.rule_deletes.sort_by(|a, b| a.name().cmp(b.name()));
    out.rule_deletes.dedup();

    // Placement: the rulebase as it will be (deletes gone, creates at the bottom).
    if let Some(sec) = &s.security {
        let gone: std::collections::HashSet<&str> = out.rule_deletes.iter().map(Operation::name).collect();
        let mut current: Vec<String> =
            observed.security_rules.iter().map(|r| r.name.clone()).filter(|n| !gone.contains(&n.as_str())).collect();
        current.dedup();
        current.extend(created);
        match placement::moves(&current, &admitted, &sec.placement) {
            Ok(moves) => {
                for (name, to) in moves {
                    if let Some(i) = want_rules.iter().find(|w| w.entry.name == name).and_then(|w| w.service) {
                        written[i] = true;
                    }
                    out.moves.push(Operation::Move { kind: Kind::SecurityRule, name, to });
                }
            }
            Err(why) => out.problems.push(Problem { subject: s.device_group.clone(), kind: ProblemKind::Placement, message: why }),
        }
    }

    // Status: which rule allows each Service; a rule written or moved makes it planned.
    for w in &want_rules {
        let Some(i) = w.service else { continue };
        let st = &mut services[i];
        if st.state == ServiceState::Conflict {
            continue;
        }
        st.security_rule = Some(w.entry.name.clone());
        if written[i] && st.state == ServiceState::Protected {
            (st.state, st.reason) = (ServiceState::Planned, "this plan writes or moves its security rule".to_owned());
        }
    }

    diff_groups(input, want_groups, &is_frozen, &mut out);
    out
}

/// The rules and groups `[sync.security]` wants.
fn desired(
    input: &Input,
    sec: &crate::settings::SecuritySettings,
    services: &[ServiceStatus],
    clusters: &[ClusterStatus],
    managed: &str,
) -> (Vec<Want<SecurityRule>>, Vec<AddressGroup>) {
    let (s, names) = (input.settings, input.names);
    let tags_of = |cluster: &str| clusters.iter().find(|c| c.name == cluster).map(|c| vec![crate::MARKER_TAG.to_owned(), c.tag.clone()]);
    let mut rules_out = Vec::new();
    let mut ns_groups: std::collections::BTreeSet<(&str, &str)> = std::collections::BTreeSet::new();
    let by_key = input.facts.service_index();
    for (i, st) in services.iter().enumerate().filter(|(_, st)| protected(st)) {
        let (Some(rule), Some(svc), Some(tags)) = (&st.nat_rule, &st.service_object, tags_of(&st.cluster)) else { continue };
        let Some(f) = by_key.get(&(st.cluster.as_str(), st.namespace.as_str(), st.name.as_str())).copied() else { continue };
        // Validated when the Service was admitted (desired.rs): a failure here cannot happen.
        let Ok(policy) = annotations::read(&f.annotations, sec, &input.observed.profile_groups) else { continue };
        let description = format!("{} - {managed}", subject(st));
        rules_out.push(Want { entry: rules::allow_rule(s, rule, svc, &policy, description, tags), service: Some(i) });
        ns_groups.insert((&st.cluster, &st.namespace));
    }
    let mut groups_out = Vec::new();
    for (ci, c) in clusters.iter().enumerate() {
        let tags = vec![crate::MARKER_TAG.to_owned(), c.tag.clone()];
        for sn in &c.subnets {
            let Some(rule) = &sn.outbound_rule else { continue };
            let description = format!("{}/{} {} - {managed}", c.name, sn.id, sn.cidr);
            rules_out.push(Want {
                entry: rules::outbound_rule(s, rule, &sn.cidr, &sec.outbound_applications, description, tags.clone()),
                service: None,
            });
        }
        if !input.used_clusters.get(ci).copied().unwrap_or(false) {
            continue;
        }
        let group = |name: String, tag: &str, what: String| -> Option<AddressGroup> {
            let filter = groups::filter_all(&[tag]).ok()?;
            Some(AddressGroup {
                name,
                value: GroupValue::Dynamic(filter),
                description: Some(format!("{what} - {managed}")),
                tags: tags.clone(),
                unmodelled: vec![],
            })
        };
        groups_out.extend(group(groups::cluster_group(names, &c.name), &c.tag, format!("cluster {}", c.name)));
        for (_, ns) in ns_groups.iter().filter(|(cl, _)| *cl == c.name) {
            let tag = groups::namespace_tag(names, &c.name, ns);
            groups_out.extend(group(groups::namespace_group(names, &c.name, ns), &tag, format!("cluster {} namespace {ns}", c.name)));
        }
    }
    groups_out.sort_by(|a, b| a.name.cmp(&b.name));
    groups_out.dedup_by(|a, b| a.name == b.name);
    (rules_out, groups_out)
}

/// Groups: create / update / in place; a foreign group of our name is a conflict; ours that
/// nothing wants go, unless a foreign rule or group still names them (PAN-OS refuses).
fn diff_groups(input: &Input, want: Vec<AddressGroup>, is_frozen: &dyn Fn(&[String]) -> bool, out: &mut Outcome) {
    let (names, observed) = (input.names, input.observed);
    let by_name: FxMap<&str, &AddressGroup> = observed.address_groups.iter().rev().map(|g| (g.name.as_str(), g)).collect();
    let address_names: std::collections::BTreeSet<&str> = observed.addresses.iter().map(|a| a.name.as_str()).collect();
    for g in &want {
        match by_name.get(g.name.as_str()) {
            Some(o) if !names.owns_tagged(&o.tags) => out.problems.push(Problem {
                subject: g.name.clone(),
                kind: ProblemKind::NameConflict,
                message: format!(
                    "address group {:?} already exists and is not owned by deployment {}; not written",
                    g.name,
                    names.deployment()
                ),
            }),
            Some(o) if *o == g => {}
            Some(_) => out.upserts.push(Operation::Update { object: Object::AddressGroup(g.clone()) }),
            // Addresses and address groups share one namespace in PAN-OS.
            None if address_names.contains(g.name.as_str()) => out.problems.push(Problem {
                subject: g.name.clone(),
                kind: ProblemKind::NameConflict,
                message: format!("address group {:?} not written: an address object holds that name", g.name),
            }),
            None => out.upserts.push(Operation::Create { object: Object::AddressGroup(g.clone()) }),
        }
    }
    // Groups go before rules in the upserts (a rule may name a group).
    out.upserts.sort_by_key(|op| op.kind() != Kind::AddressGroup);
    for g in observed.address_groups.iter().filter(|g| names.owns_tagged(&g.tags) && !want.iter().any(|w| w.name == g.name)) {
        if is_frozen(&g.tags) {
            continue;
        }
        if let Some(holder) = input.holders.get(g.name.as_str()) {
            out.problems.push(Problem {
                subject: g.name.clone(),
                kind: ProblemKind::InUse,
                message: format!("address group {:?} not deleted: still used by {holder}, which pano-eks does not own", g.name),
            });
            continue;
        }
        out.group_deletes.push(Operation::Delete { kind: Kind::AddressGroup, name: g.name.clone() });
    }
    out.group_deletes.sort_by(|a, b| a.name().cmp(b.name()));
    out.group_deletes.dedup();
}

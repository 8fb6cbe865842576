//! The planner: desired model vs observed entries → ordered operations, plus status for humans.
//!
//! Like the AWS Load Balancer Controller's synthesizers, each kind is diffed on its own and
//! only entries carrying our ownership marks are ever updated or deleted. Everything here is
//! sorted by name or identity, so the same input always yields the same plan.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::desired;
use crate::facts::Facts;
use crate::model::{Kind, MARKER_TAG, Object, Observed, Operation, Scope, Tag};
use crate::naming::{MANAGED_BY, Names};
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

/// Where a labelled Service stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceState {
    /// Its address, service object and NAT rule exist in Panorama exactly as desired.
    Protected,
    /// Valid and winning its port; this plan creates or updates its objects.
    Planned,
    /// Winning its port but its load balancer has no hostname yet.
    Pending,
    /// Lost its label port to an older Service, or a desired name is taken by a foreign entry.
    Conflict,
    /// Bad label, wrong type, no TCP port, bad hostname, or its cluster is not managed.
    Invalid,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    /// The label port, when the label parsed.
    pub port: Option<u16>,
    pub state: ServiceState,
    pub reason: String,
    /// Set when the Service is Protected or Planned.
    pub nat_rule: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub name: String,
    /// `pano-eks.<deployment>.<cluster>`.
    pub tag: String,
    pub subnets: Vec<SubnetStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetStatus {
    pub id: String,
    pub cidr: String,
    /// `None` when its name is taken by a foreign rule.
    pub outbound_rule: Option<String>,
    /// One per distinct firewall next hop.
    pub routes: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    InvalidLabel,
    InvalidService,
    NotLoadBalancer,
    NoTcpPort,
    InvalidHostname,
    Pending,
    PortConflict,
    DuplicateService,
    InvalidCluster,
    DuplicateCluster,
    TooManyClusters,
    InvalidSubnet,
    DuplicateSubnet,
    InvalidFirewall,
    /// A desired name is held by an entry we do not own; ours is not written.
    NameConflict,
}

/// Something skipped or not written, with the thing it concerns
/// (`cluster/namespace/service`, `cluster/subnet-id`, a firewall id, a tag name).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Problem {
    pub subject: String,
    pub kind: ProblemKind,
    pub message: String,
}

/// Entries by name; the first wins if the adapter hands over duplicates.
fn index<T>(list: &[T], name: impl Fn(&T) -> &str) -> HashMap<&str, &T> {
    let mut map = HashMap::with_capacity(list.len());
    for o in list {
        map.entry(name(o)).or_insert(o);
    }
    map
}

/// Ops for one kind: create what is missing, update owned entries that differ, delete owned
/// entries no longer desired. `desired` holds no name taken by a foreign entry (checked before).
fn synthesize<T: PartialEq + Clone>(
    desired: &[&T],
    observed: &[T],
    name: impl Fn(&T) -> &str,
    owned: impl Fn(&T) -> bool,
    wrap: impl Fn(T) -> Object,
    kind: Kind,
) -> (Vec<Operation>, Vec<Operation>) {
    let seen = index(observed, &name);
    let mut upserts = Vec::new();
    for d in desired {
        match seen.get(name(d)) {
            None => upserts.push(Operation::Create { object: wrap((*d).clone()) }),
            Some(o) if *o == *d || !owned(o) => {}
            Some(_) => upserts.push(Operation::Update { object: wrap((*d).clone()) }),
        }
    }
    let wanted: HashSet<&str> = desired.iter().map(|d| name(d)).collect();
    let gone: BTreeSet<&str> = observed.iter().filter(|o| owned(o) && !wanted.contains(name(o))).map(&name).collect();
    let deletes = gone.into_iter().map(|n| Operation::Delete { kind, name: n.to_owned() }).collect();
    (upserts, deletes)
}

fn sorted_by_name<'a, T>(mut v: Vec<&'a T>, name: impl Fn(&T) -> &str) -> Vec<&'a T> {
    v.sort_by(|a, b| name(a).cmp(name(b)));
    v
}

/// Plans the writes that make Panorama hold exactly what protects the labelled Services.
///
/// Pure and deterministic. Entries without this deployment's ownership marks are never
/// updated or deleted; a desired name they already hold is reported as a conflict and skipped.
pub fn plan(settings: &PlanSettings, facts: &Facts, observed: &Observed) -> Result<Plan, SettingsError> {
    settings.validate()?;
    let names = Names::new(&settings.deployment);
    let desired::Model { inbound, outbound, routes, mut services, mut clusters, mut problems } =
        desired::build(settings, &names, facts);
    let owned_tagged = |tags: &[String]| names.owns_tagged(tags);

    let seen_addresses = index(&observed.addresses, |o| &o.name);
    let seen_services = index(&observed.services, |o| &o.name);
    let seen_rules = index(&observed.nat_rules, |o| &o.name);
    let foreign = |what: &str, name: &str| {
        format!("{what} {name:?} already exists in device group {} and is not owned by deployment {}", settings.device_group, settings.deployment)
    };

    // Inbound: all three objects or none, so a rule never points at someone else's object.
    let mut kept_inbound = Vec::with_capacity(inbound.len());
    for item in inbound {
        let mut clashes = Vec::new();
        if seen_addresses.get(item.address.name.as_str()).is_some_and(|o| !owned_tagged(&o.tags)) {
            clashes.push(foreign("address", &item.address.name));
        }
        if seen_services.get(item.service.name.as_str()).is_some_and(|o| !owned_tagged(&o.tags)) {
            clashes.push(foreign("service", &item.service.name));
        }
        if seen_rules.get(item.rule.name.as_str()).is_some_and(|o| !owned_tagged(&o.tags)) {
            clashes.push(foreign("NAT rule", &item.rule.name));
        }
        let st = &mut services[item.status];
        if clashes.is_empty() {
            let in_sync = seen_addresses.get(item.address.name.as_str()) == Some(&&item.address)
                && seen_services.get(item.service.name.as_str()) == Some(&&item.service)
                && seen_rules.get(item.rule.name.as_str()) == Some(&&item.rule);
            (st.state, st.reason) = if in_sync {
                (ServiceState::Protected, "address, service and NAT rule are in place".to_owned())
            } else {
                (ServiceState::Planned, "this plan writes its address, service and NAT rule".to_owned())
            };
            kept_inbound.push(item);
        } else {
            let why = format!("{}; not written", clashes.join("; "));
            st.state = ServiceState::Conflict;
            st.reason = why.clone();
            st.nat_rule = None;
            let subject = format!("{}/{}/{}", st.cluster, st.namespace, st.name);
            problems.push(Problem { subject, kind: ProblemKind::NameConflict, message: why });
        }
    }

    let mut kept_outbound = Vec::with_capacity(outbound.len());
    for item in outbound {
        let cluster = &mut clusters[item.cluster];
        let subnet = &mut cluster.subnets[item.subnet];
        if seen_rules.get(item.rule.name.as_str()).is_some_and(|o| !owned_tagged(&o.tags)) {
            let subject = format!("{}/{}", cluster.name, subnet.id);
            problems.push(Problem { subject, kind: ProblemKind::NameConflict, message: format!("{}; not written", foreign("NAT rule", &item.rule.name)) });
        } else {
            subnet.outbound_rule = Some(item.rule.name.clone());
            kept_outbound.push(item);
        }
    }
    // Route names carry our prefix, which is our ownership mark: no foreign route can hold one.
    for r in &routes {
        clusters[r.cluster].subnets[r.subnet].routes.push(r.route.name.clone());
    }

    // Tags: the marker and each cluster tag still referenced by a desired object.
    let cluster_of_tag: HashMap<&str, &str> = clusters.iter().map(|c| (c.tag.as_str(), c.name.as_str())).collect();
    let mut wanted_tags: BTreeSet<&str> = BTreeSet::new();
    for tags in kept_inbound.iter().map(|i| &i.address.tags).chain(kept_outbound.iter().map(|o| &o.rule.tags)) {
        wanted_tags.extend(tags.iter().map(String::as_str));
    }
    let seen_tags = index(&observed.tags, |o| &o.name);
    let desired_tags: Vec<Tag> = wanted_tags
        .iter()
        .filter_map(|&name| {
            let tag = if name == MARKER_TAG {
                Tag {
                    name: name.to_owned(),
                    color: Some("color13".to_owned()),
                    comments: Some(format!("{MANAGED_BY}: marks every object pano-eks writes")),
                    unmodelled: vec![],
                }
            } else {
                Tag {
                    name: name.to_owned(),
                    color: Some("color24".to_owned()),
                    comments: Some(format!("{MANAGED_BY}: deployment {}, cluster {}", settings.deployment, cluster_of_tag[name])),
                    unmodelled: vec![],
                }
            };
            if seen_tags.get(name).is_some_and(|o| !names.owns_tag_object(o)) {
                // A tag is only a label: objects may still reference the foreign one.
                let message = format!("tag {name:?} exists and was not created by pano-eks; left unchanged and used as is");
                problems.push(Problem { subject: name.to_owned(), kind: ProblemKind::NameConflict, message });
                return None;
            }
            Some(tag)
        })
        .collect();

    let addresses = sorted_by_name(kept_inbound.iter().map(|i| &i.address).collect(), |o| &o.name);
    let svc_objects = sorted_by_name(kept_inbound.iter().map(|i| &i.service).collect(), |o| &o.name);
    let rules = sorted_by_name(
        kept_inbound.iter().map(|i| &i.rule).chain(kept_outbound.iter().map(|o| &o.rule)).collect(),
        |o| &o.name,
    );
    let route_objs = sorted_by_name(routes.iter().map(|r| &r.route).collect(), |o| &o.name);

    let (up_addr, del_addr) =
        synthesize(&addresses, &observed.addresses, |o| &o.name, |o| owned_tagged(&o.tags), Object::Address, Kind::Address);
    let (up_svc, del_svc) =
        synthesize(&svc_objects, &observed.services, |o| &o.name, |o| owned_tagged(&o.tags), Object::Service, Kind::Service);
    let (up_rule, del_rule) =
        synthesize(&rules, &observed.nat_rules, |o| &o.name, |o| owned_tagged(&o.tags), Object::NatRule, Kind::NatRule);
    let (up_route, del_route) = synthesize(
        &route_objs,
        &observed.static_routes,
        |o| &o.name,
        |o| names.owns_route(&o.name),
        Object::StaticRoute,
        Kind::StaticRoute,
    );

    // A tag may go only if nothing that stays references it: our desired objects, and every
    // entry we do not own (foreign ones and other deployments'), which this plan leaves alone.
    let mut referenced: HashSet<&str> = wanted_tags.iter().copied().collect();
    let foreign_tags = (observed.addresses.iter().map(|o| &o.tags))
        .chain(observed.services.iter().map(|o| &o.tags))
        .chain(observed.nat_rules.iter().map(|o| &o.tags))
        .filter(|tags| !owned_tagged(tags));
    for tags in foreign_tags {
        referenced.extend(tags.iter().map(String::as_str));
    }
    let desired_tag_refs: Vec<&Tag> = desired_tags.iter().collect();
    let (up_tag, mut del_tag) =
        synthesize(&desired_tag_refs, &observed.tags, |o| &o.name, |o| names.owns_tag_object(o), Object::Tag, Kind::Tag);
    del_tag.retain(|op| !referenced.contains(op.name()));

    let operations: Vec<Operation> = [up_tag, up_addr, up_svc, up_rule, up_route, del_rule, del_route, del_addr, del_svc, del_tag]
        .into_iter()
        .flatten()
        .collect();
    let device_group_changed = operations.iter().any(|o| o.kind().scope() == Scope::DeviceGroup);
    let template_changed = operations.iter().any(|o| o.kind().scope() == Scope::Template);

    services.sort_by(|a, b| (&a.cluster, &a.namespace, &a.name).cmp(&(&b.cluster, &b.namespace, &b.name)));
    problems.sort();
    Ok(Plan { operations, device_group_changed, template_changed, services, clusters, problems })
}

//! Facts → desired model. Bad facts are reported against the thing they concern and skipped;
//! they never stop the good ones from being planned.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::facts::{ClusterFacts, Facts, ServiceFacts};
use crate::panorama::model::{MARKER_TAG, NatRule, NextHop, SourceTranslation, StaticRoute};
use crate::panorama::naming::{NAME_MAX, NameRequest, Names, ROUTE_NAME_MAX, TAG_NAME_MAX, assign_unique, is_safe_name};
use crate::panorama::spec::{AddressSpec, Ctx, InboundRuleSpec, Owner, ServiceSpec};
use crate::panorama::status::{ClusterStatus, Problem, ProblemKind, ServiceState, ServiceStatus, SubnetStatus};
use crate::settings::PlanSettings;
use crate::time::Timestamp;

/// EKS allows 100; longer would crowd every name into a hash.
const CLUSTER_NAME_MAX: usize = 100;
const FQDN_MAX: usize = 255;

/// The three objects that protect one Service, not yet built (see `spec`).
pub(crate) struct Inbound<'a> {
    /// Index into `Model::services`.
    pub status: usize,
    /// Index into `Ctx::tags`.
    pub cluster: usize,
    /// When the Service was created: capacity admission goes oldest first.
    pub created: &'a Timestamp,
    pub address: AddressSpec<'a>,
    pub service: ServiceSpec<'a>,
    pub rule: InboundRuleSpec<'a>,
}

/// The outbound NAT rule of one cluster subnet.
pub(crate) struct Outbound {
    pub cluster: usize,
    pub subnet: usize,
    pub rule: NatRule,
}

pub(crate) struct Route {
    pub cluster: usize,
    pub subnet: usize,
    pub route: StaticRoute,
}

/// What Panorama should hold, before it is compared with what it does hold.
pub(crate) struct Model<'a> {
    pub ctx: Ctx<'a>,
    pub inbound: Vec<Inbound<'a>>,
    pub outbound: Vec<Outbound>,
    pub routes: Vec<Route>,
    pub services: Vec<ServiceStatus>,
    pub clusters: Vec<ClusterStatus>,
    pub problems: Vec<Problem>,
}

/// One cluster as the facts describe it, possibly spread over several entries.
struct Cluster<'a> {
    name: &'a str,
    parts: Vec<&'a ClusterFacts>,
}

impl<'a> Cluster<'a> {
    fn services(&self) -> impl Iterator<Item = &'a ServiceFacts> + '_ {
        self.parts.iter().flat_map(|p| &p.services)
    }
}

/// A labelled Service that passed validation and competes for its label port.
struct Candidate<'a> {
    status: usize,
    ci: usize,
    port: u16,
    created: &'a Timestamp,
    cluster: &'a str,
    svc: &'a ServiceFacts,
    target_port: u16,
}

fn problem(kind: ProblemKind, subject: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem { kind, subject: subject.into(), message: message.into() }
}

fn service_subject(cluster: &str, s: &ServiceFacts) -> String {
    format!("{cluster}/{}/{}", s.namespace, s.name)
}

/// A decimal port 1..=65535, written canonically (no sign, no leading zeros).
pub(crate) fn parse_label_port(value: &str) -> Result<u16, String> {
    if value.is_empty() || !value.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("label value {value:?} is not a number"));
    }
    if value.len() > 1 && value.starts_with('0') {
        return Err(format!("label value {value:?} has leading zeros"));
    }
    match value.parse::<u32>() {
        Ok(0) => Err("label value 0 is not a valid port".to_owned()),
        Ok(p) if p <= 65535 => Ok(p as u16),
        _ => Err(format!("label value {value:?} is out of range 1-65535")),
    }
}

/// Cluster, namespace and Service names become name parts joined by '.', so they must be
/// PAN-OS-safe and dot-free.
fn is_name_part(s: &str, max: usize) -> bool {
    s.len() <= max && is_safe_name(s) && !s.contains('.')
}

fn is_hostname(h: &str) -> bool {
    h.len() <= FQDN_MAX && h.split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
}

/// Classifies one labelled Service. `Ok` = it may claim `port`; `Err` = invalid, with the reason.
fn validate_service(s: &ServiceFacts, label: &str) -> Result<(u16, u16), (Option<u16>, ProblemKind, String)> {
    let port = parse_label_port(label).map_err(|m| (None, ProblemKind::InvalidLabel, m))?;
    let bad = |kind, msg: String| (Some(port), kind, msg);
    if !is_name_part(&s.namespace, 253) || !is_name_part(&s.name, 253) {
        return Err(bad(ProblemKind::InvalidService, "namespace or name is not a valid Kubernetes name".to_owned()));
    }
    if s.service_type != "LoadBalancer" {
        return Err(bad(ProblemKind::NotLoadBalancer, format!("type is {:?}, not LoadBalancer", s.service_type)));
    }
    let Some(target) = s.ports.iter().find(|p| p.protocol == "TCP" && (1..=65535).contains(&p.port)) else {
        return Err(bad(ProblemKind::NoTcpPort, "the Service has no TCP port".to_owned()));
    };
    if let Some(h) = s.lb_hostname.as_deref().filter(|h| !h.is_empty())
        && !is_hostname(h)
    {
        return Err(bad(ProblemKind::InvalidHostname, format!("load balancer hostname {h:?} is not a valid FQDN")));
    }
    Ok((port, target.port as u16))
}

fn status(cluster: &str, s: &ServiceFacts, port: Option<u16>, state: ServiceState, reason: String) -> ServiceStatus {
    ServiceStatus {
        cluster: cluster.to_owned(),
        namespace: s.namespace.clone(),
        name: s.name.clone(),
        port,
        state,
        reason,
        nat_rule: None,
        address: None,
        service_object: None,
        security_rule: None,
    }
}

/// Facts → desired model, in the stages a reader can follow: clusters, subnets, next hops,
/// label-port claims, names, then the entries themselves.
pub(crate) fn build<'a>(settings: &'a PlanSettings, names: &Names, facts: &'a Facts, profile_groups: &'a [String]) -> Model<'a> {
    let security = settings.security.as_ref().map(|s| (s, profile_groups));
    let mut r = Report { label_key: settings.label_key.as_str(), security, problems: Vec::new(), statuses: Vec::new() };
    let clusters = r.clusters(facts, settings.max_clusters);
    let cluster_tags =
        assign_unique(clusters.iter().map(|c| NameRequest::new(names.cluster_tag_prefix(), &[c.name], None)).collect(), TAG_NAME_MAX);
    let mut cluster_status: Vec<ClusterStatus> = clusters
        .iter()
        .zip(&cluster_tags)
        .map(|(c, tag)| ClusterStatus { name: c.name.to_owned(), tag: tag.clone(), subnets: Vec::new() })
        .collect();
    let subnets = r.subnets(&clusters, &mut cluster_status);
    let nexthops = r.next_hops(facts);
    let ready = r.claims(&clusters);

    // Names, each kind assigned as a whole so uniqueness is checked across the kind.
    let addr_names = assign_unique(ready.iter().map(|w| names.address(w.cluster, &w.svc.namespace, &w.svc.name)).collect(), NAME_MAX);
    let svc_names = assign_unique(ready.iter().map(|w| names.service(w.port)).collect(), NAME_MAX);
    // Inbound and outbound rules share one rulebase, so one namespace.
    let mut rule_reqs: Vec<NameRequest> = ready.iter().map(|w| names.inbound_rule(w.cluster, &w.svc.namespace, &w.svc.name)).collect();
    rule_reqs.extend(subnets.iter().map(|&(ci, _, net)| names.outbound_rule(clusters[ci].name, net)));
    let mut rule_names = assign_unique(rule_reqs, NAME_MAX).into_iter();
    let route_keys: Vec<(usize, usize, Ipv4Net, Ipv4Addr)> =
        subnets.iter().flat_map(|&(ci, si, net)| nexthops.iter().map(move |&nh| (ci, si, net, nh))).collect();
    let route_names = assign_unique(route_keys.iter().map(|&(_, _, net, nh)| names.route(net, nh)).collect(), ROUTE_NAME_MAX);

    let managed = format!("managed by pano-eks ({})", names.deployment());
    let tags: Vec<Vec<String>> = cluster_tags.iter().map(|t| vec![MARKER_TAG.to_owned(), t.clone()]).collect();
    let ns_tag =
        |w: &Candidate| settings.security.as_ref().map(|_| crate::security::groups::namespace_tag(names, w.cluster, &w.svc.namespace));
    let inbound = inbound_specs(&ready, addr_names, svc_names, &mut rule_names, &mut r.statuses, &ns_tag);
    let outbound = outbound_rules(settings, &subnets, &clusters, &cluster_status, &mut rule_names, &managed, &tags);
    let routes = route_keys
        .iter()
        .zip(route_names)
        .map(|(&(ci, si, net, nh), name)| Route { cluster: ci, subnet: si, route: static_route(settings, name, net, nh) })
        .collect();

    let ctx = Ctx { settings, managed, tags };
    Model { ctx, inbound, outbound, routes, services: r.statuses, clusters: cluster_status, problems: r.problems }
}

/// What the stages of [`build`] report as they go: problems, and one status per labelled Service.
struct Report<'k> {
    label_key: &'k str,
    /// With `[sync.security]`: its settings and the profile groups Panorama holds.
    security: Option<(&'k crate::settings::SecuritySettings, &'k [String])>,
    problems: Vec<Problem>,
    statuses: Vec<ServiceStatus>,
}

impl Report<'_> {
    /// Clusters by name, at most `max_clusters`. Entries sharing a name are merged, so the
    /// outcome does not depend on the order of the facts.
    fn clusters<'a>(&mut self, facts: &'a Facts, max_clusters: usize) -> Vec<Cluster<'a>> {
        let mut by_name: BTreeMap<&str, Vec<&ClusterFacts>> = BTreeMap::new();
        for c in &facts.clusters {
            by_name.entry(&c.name).or_default().push(c);
        }
        let mut clusters: Vec<Cluster> = Vec::new();
        for (name, parts) in by_name {
            let c = Cluster { name, parts };
            if c.parts.len() > 1 {
                self.problems.push(problem(
                    ProblemKind::DuplicateCluster,
                    c.name,
                    "cluster listed more than once in the facts; entries merged",
                ));
            }
            if !is_name_part(c.name, CLUSTER_NAME_MAX) {
                let why = format!("cluster name {:?} is not 1-100 chars of [A-Za-z0-9_-] starting alphanumeric", c.name);
                self.reject_cluster(&c, &why);
                self.problems.push(problem(ProblemKind::InvalidCluster, c.name, why));
            } else if clusters.len() >= max_clusters {
                let why = format!("more than max_clusters={max_clusters} clusters; extra clusters by name order are not managed");
                self.reject_cluster(&c, &why);
                self.problems.push(problem(ProblemKind::TooManyClusters, c.name, why));
            } else {
                clusters.push(c);
            }
        }
        clusters
    }

    /// Reports every labelled Service of a cluster we will not manage.
    fn reject_cluster(&mut self, c: &Cluster, why: &str) {
        let label_key = self.label_key;
        let mut labelled: Vec<&ServiceFacts> = c.services().filter(|s| s.labels.contains_key(label_key)).collect();
        labelled.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)).then_with(|| a.cmp(b)));
        labelled.dedup_by(|a, b| a.namespace == b.namespace && a.name == b.name);
        for s in labelled {
            let port = s.labels.get(label_key).and_then(|v| parse_label_port(v).ok());
            self.statuses.push(status(c.name, s, port, ServiceState::Invalid, why.to_owned()));
        }
    }

    /// Subnets: valid canonical IPv4 CIDRs, each owned by one cluster (first by cluster name).
    /// Returns (cluster, index in that cluster's subnet statuses, net).
    fn subnets(&mut self, clusters: &[Cluster], cluster_status: &mut [ClusterStatus]) -> Vec<(usize, usize, Ipv4Net)> {
        let mut subnet_owner: BTreeMap<Ipv4Net, usize> = BTreeMap::new();
        let mut subnets = Vec::new();
        for (ci, c) in clusters.iter().enumerate() {
            let mut list: Vec<_> = c.parts.iter().flat_map(|p| &p.subnets).collect();
            list.sort_by(|a, b| (&a.cidr, &a.id).cmp(&(&b.cidr, &b.id)));
            for s in list {
                let subject = format!("{}/{}", c.name, s.id);
                let net = match s.cidr.parse::<Ipv4Net>() {
                    Ok(net) if net.trunc() == net => net,
                    Ok(_) => {
                        self.problems.push(problem(
                            ProblemKind::InvalidSubnet,
                            subject,
                            format!("subnet CIDR {} has host bits set", s.cidr),
                        ));
                        continue;
                    }
                    Err(_) => {
                        self.problems.push(problem(
                            ProblemKind::InvalidSubnet,
                            subject,
                            format!("subnet CIDR {:?} is not an IPv4 CIDR", s.cidr),
                        ));
                        continue;
                    }
                };
                match subnet_owner.get(&net) {
                    Some(&owner) if owner == ci => continue, // listed twice in one cluster: same objects
                    Some(&owner) => {
                        let msg = format!("subnet {net} is already used by cluster {}", clusters[owner].name);
                        self.problems.push(problem(ProblemKind::DuplicateSubnet, subject, msg));
                        continue;
                    }
                    None => {}
                }
                subnet_owner.insert(net, ci);
                let si = cluster_status[ci].subnets.len();
                cluster_status[ci].subnets.push(SubnetStatus {
                    id: s.id.clone(),
                    cidr: net.to_string(),
                    outbound_rule: None,
                    routes: Vec::new(),
                });
                subnets.push((ci, si, net));
            }
        }
        subnets
    }

    /// Firewalls → distinct next hops (first host of each trust subnet).
    fn next_hops(&mut self, facts: &Facts) -> BTreeSet<Ipv4Addr> {
        let mut nexthops = BTreeSet::new();
        let mut firewalls: Vec<_> = facts.firewalls.iter().collect();
        firewalls.sort_by(|a, b| a.id.cmp(&b.id));
        for f in firewalls {
            match f.trust_subnet_cidr.parse::<Ipv4Net>() {
                Ok(net) if net.trunc() == net && net.prefix_len() <= 30 => {
                    nexthops.insert(Ipv4Addr::from(u32::from(net.network()) + 1));
                }
                _ => self.problems.push(problem(
                    ProblemKind::InvalidFirewall,
                    &f.id,
                    format!("trust subnet CIDR {:?} is not a canonical IPv4 CIDR of /30 or wider", f.trust_subnet_cidr),
                )),
            }
        }
        nexthops
    }

    /// Services: validate, then let the oldest claim of each label port win. Returns the
    /// Services that get objects, in identity order.
    fn claims<'a>(&mut self, clusters: &[Cluster<'a>]) -> Vec<Candidate<'a>> {
        let mut candidates = self.candidates(clusters);
        // Oldest claim first, ties by identity (unique here, so the unstable sort is deterministic).
        candidates.sort_unstable_by(|a, b| {
            (a.port.cmp(&b.port))
                .then_with(|| a.created.cmp(b.created))
                .then_with(|| (a.cluster, &a.svc.namespace, &a.svc.name).cmp(&(b.cluster, &b.svc.namespace, &b.svc.name)))
        });
        let mut winners: Vec<Candidate> = Vec::new();
        for cand in candidates {
            let subject = || service_subject(cand.cluster, cand.svc);
            if let Some(w) = winners.last().filter(|w| w.port == cand.port) {
                let why = format!(
                    "label port {} is already claimed by the older Service {} (created {})",
                    cand.port,
                    service_subject(w.cluster, w.svc),
                    w.created
                );
                self.statuses[cand.status].state = ServiceState::Conflict;
                self.statuses[cand.status].reason = why.clone();
                self.problems.push(problem(ProblemKind::PortConflict, subject(), why));
                continue;
            }
            if cand.svc.lb_hostname.as_deref().is_none_or(str::is_empty) {
                let why = "waiting for the load balancer hostname".to_owned();
                self.statuses[cand.status].state = ServiceState::Pending;
                self.statuses[cand.status].reason = why.clone();
                self.problems.push(problem(ProblemKind::Pending, subject(), why));
            }
            winners.push(cand);
        }
        let mut ready: Vec<Candidate> = winners.into_iter().filter(|w| self.statuses[w.status].state == ServiceState::Planned).collect();
        // Identity order = name order of addresses and rules, so later lookups walk the observed
        // entries (which Panorama lists in the order we created them) front to back.
        ready.sort_unstable_by_key(|w| w.status);
        ready
    }

    /// Every labelled Service that passes validation (the others are `invalid` with the reason).
    fn candidates<'a>(&mut self, clusters: &[Cluster<'a>]) -> Vec<Candidate<'a>> {
        let mut candidates = Vec::new();
        for (ci, c) in clusters.iter().enumerate() {
            let mut list: Vec<&ServiceFacts> = c.services().collect();
            // Ties (a Service listed twice) by content, so the same one wins whatever the order;
            // that makes the order total, so the faster unstable sort is deterministic too.
            list.sort_unstable_by(|a, b| a.namespace.cmp(&b.namespace).then_with(|| a.name.cmp(&b.name)).then_with(|| a.cmp(b)));
            for (i, s) in list.iter().enumerate() {
                let Some(label) = s.labels.get(self.label_key) else { continue };
                let subject = || service_subject(c.name, s);
                if i > 0 && list[i - 1].namespace == s.namespace && list[i - 1].name == s.name {
                    self.problems.push(problem(
                        ProblemKind::DuplicateService,
                        subject(),
                        "Service listed twice in the facts; one entry is used",
                    ));
                    continue;
                }
                // With `[sync.security]` its annotations must make a rule PAN-OS accepts.
                let annotated = validate_service(s, label).and_then(|ok| match self.security {
                    Some((sec, known)) => crate::security::annotations::read(&s.annotations, sec, known)
                        .map(|_| ok)
                        .map_err(|why| (Some(ok.0), ProblemKind::InvalidAnnotation, why)),
                    None => Ok(ok),
                });
                match annotated {
                    Err((port, kind, why)) => {
                        self.statuses.push(status(c.name, s, port, ServiceState::Invalid, why.clone()));
                        self.problems.push(problem(kind, subject(), why));
                    }
                    Ok((port, target_port)) => {
                        let status_index = self.statuses.len();
                        candidates.push(Candidate {
                            status: status_index,
                            ci,
                            port,
                            created: &s.created,
                            cluster: c.name,
                            svc: s,
                            target_port,
                        });
                        self.statuses.push(status(c.name, s, Some(port), ServiceState::Planned, String::new()));
                    }
                }
            }
        }
        candidates
    }
}

/// The address, service and inbound NAT rule of each Service that gets objects; names in
/// identity order, as assigned.
fn inbound_specs<'a>(
    ready: &[Candidate<'a>],
    addr_names: Vec<String>,
    svc_names: Vec<String>,
    rule_names: &mut impl Iterator<Item = String>,
    statuses: &mut [ServiceStatus],
    ns_tag: &dyn Fn(&Candidate) -> Option<String>,
) -> Vec<Inbound<'a>> {
    let mut inbound = Vec::with_capacity(ready.len());
    for ((w, address_name), service_name) in ready.iter().zip(addr_names).zip(svc_names) {
        let owner = Owner { ci: w.ci, cluster: w.cluster, namespace: &w.svc.namespace, name: &w.svc.name };
        let address =
            AddressSpec { name: address_name, owner, hostname: w.svc.lb_hostname.as_deref().unwrap_or_default(), ns_tag: ns_tag(w) };
        let service = ServiceSpec { name: service_name, owner, port: w.port };
        let rule = InboundRuleSpec {
            name: rule_names.next().expect("one name per Service"),
            owner,
            address: address.name.clone(),
            service: service.name.clone(),
            target_port: w.target_port,
        };
        let st = &mut statuses[w.status];
        (st.nat_rule, st.address, st.service_object) = (Some(rule.name.clone()), Some(address.name.clone()), Some(service.name.clone()));
        inbound.push(Inbound { status: w.status, cluster: w.ci, created: w.created, address, service, rule });
    }
    inbound
}

/// The outbound NAT rule of each cluster subnet (trust → untrust, source NAT to the untrust
/// interface); names continue after the inbound rules'.
fn outbound_rules(
    settings: &PlanSettings,
    subnets: &[(usize, usize, Ipv4Net)],
    clusters: &[Cluster],
    cluster_status: &[ClusterStatus],
    rule_names: &mut impl Iterator<Item = String>,
    managed: &str,
    tags: &[Vec<String>],
) -> Vec<Outbound> {
    let mut outbound = Vec::with_capacity(subnets.len());
    for &(ci, si, net) in subnets {
        let name = rule_names.next().expect("one name per subnet");
        let sub = &cluster_status[ci].subnets[si];
        let rule = NatRule {
            name,
            from: vec![settings.trust_zone.clone()],
            to: settings.untrust_zone.clone(),
            source: vec![net.to_string()],
            destination: vec!["any".to_owned()],
            service: "any".to_owned(),
            to_interface: None,
            source_translation: Some(SourceTranslation::InterfaceAddress { interface: settings.untrust_interface.clone() }),
            destination_translation: None,
            description: Some(format!("{}/{} {net} - {managed}", clusters[ci].name, sub.id)),
            tags: tags[ci].clone(),
            disabled: false,
            unmodelled: vec![],
            uuid: None,
        };
        outbound.push(Outbound { cluster: ci, subnet: si, rule });
    }
    outbound
}

/// The static route of one subnet through one firewall next hop, out of the trust interface.
fn static_route(settings: &PlanSettings, name: String, net: Ipv4Net, nh: Ipv4Addr) -> StaticRoute {
    StaticRoute {
        name,
        destination: net.to_string(),
        nexthop: Some(NextHop::IpAddress(nh.to_string())),
        interface: Some(settings.trust_interface.clone()),
        metric: 10,
        admin_dist: None,
        unmodelled: vec![],
    }
}

//! Domain types for the kinds of Panorama entries pano-eks writes, and for what it reads (the
//! five of the NAT path, and with `[sync.security]` security rules and address groups).
//!
//! One type serves both sides: the planner builds desired values, the Panorama adapter parses
//! *every* entry of the containers into the same types (owned or not). Shapes we do not model
//! (an ip-netmask address, a static NAT rule, a discard route, extra children) are carried in
//! `Other(raw)` variants or `unmodelled`, so a foreign entry never compares equal to a desired
//! one by accident, and an owned entry with stray content is rewritten.
//!
//! Adapter contract: fill PAN-OS defaults on read (`distribution` round-robin, `metric` 10,
//! `disabled` no), drop volatile attributes (`admin`, `dirtyId`, `time`; `uuid` too, except a
//! NAT rule's, which is kept in [`NatRule::uuid`]), and put any other child element into
//! `unmodelled` as its XML text, in document order.

use serde::{Deserialize, Serialize};

use crate::fxhash::{FxMap, map_with_capacity};

/// The marker tag every pano-eks object carries, whatever the deployment.
pub const MARKER_TAG: &str = "pano-eks";

/// `<tag>/entry`: an administrative tag object in the device group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub name: String,
    pub color: Option<String>,
    pub comments: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmodelled: Vec<String>,
}

/// The one value an address object holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddressValue {
    Fqdn(String),
    IpNetmask(String),
    IpRange(String),
    IpWildcard(String),
    /// Anything else, as raw XML.
    Other(String),
}

/// `<address>/entry`. pano-eks writes only FQDN addresses (the Service's internal NLB).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub name: String,
    pub value: AddressValue,
    pub description: Option<String>,
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmodelled: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// `<service>/entry`. `port` is PAN-OS's port string ("82", "80,443", "8000-8100").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceObject {
    pub name: String,
    pub protocol: Protocol,
    pub port: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmodelled: Vec<String>,
}

/// `<source-translation>` of a NAT rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceTranslation {
    /// `dynamic-ip-and-port/interface-address/interface` (no explicit IP).
    InterfaceAddress { interface: String },
    /// Any other variant (static-ip, dynamic-ip, translated-address...), as raw XML.
    Other(String),
}

/// Destination translation of a NAT rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DestinationTranslation {
    /// `<dynamic-destination-translation>`: the only form that can target an FQDN address.
    Dynamic { address: String, port: Option<u16>, distribution: String },
    /// `<destination-translation>` (static) or anything else, as raw XML.
    Other(String),
}

/// `<pre-rulebase>/<nat>/<rules>/entry` (ipv4 NAT type).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatRule {
    pub name: String,
    pub from: Vec<String>,
    /// Exactly one zone for ipv4 NAT.
    pub to: String,
    pub source: Vec<String>,
    pub destination: Vec<String>,
    /// A single service name or `any` (PAN-OS stores it as text, not a member list).
    pub service: String,
    /// Egress interface; `None` = `any`.
    pub to_interface: Option<String>,
    pub source_translation: Option<SourceTranslation>,
    pub destination_translation: Option<DestinationTranslation>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub disabled: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmodelled: Vec<String>,
    /// The rule's `uuid` attribute (PAN-OS 9.0+) as observed: identity, not content. Never part of
    /// a comparison ([`NatRule::same_content`]); an Update carries the observed one so PAN-OS
    /// keeps hit counts and rule-usage history (terraform-provider-panos `internal/manager/uuid.go`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

impl NatRule {
    /// Equal in everything but the `uuid`.
    pub fn same_content(&self, other: &NatRule) -> bool {
        let uuid = |r: &NatRule| NatRule { uuid: None, ..r.clone() };
        if self.uuid == other.uuid { self == other } else { uuid(self) == uuid(other) }
    }
}

/// `<nexthop>` of a static route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NextHop {
    IpAddress(String),
    /// discard, next-vr, fqdn, receive..., as raw XML.
    Other(String),
}

/// `<virtual-router>/entry/routing-table/ip/static-route/entry` in the template. Has no tags:
/// ownership is the reserved name prefix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticRoute {
    pub name: String,
    pub destination: String,
    pub nexthop: Option<NextHop>,
    pub interface: Option<String>,
    pub metric: u32,
    pub admin_dist: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmodelled: Vec<String>,
}

/// What an address group holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupValue {
    /// `<dynamic><filter>`: every address object whose tags match the filter.
    Dynamic(String),
    /// `<static>` members.
    Static(Vec<String>),
    /// Anything else, as raw XML.
    Other(String),
}

/// `<address-group>/entry` in the device group. pano-eks writes only dynamic groups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressGroup {
    pub name: String,
    pub value: GroupValue,
    pub description: Option<String>,
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmodelled: Vec<String>,
}

/// `<pre-rulebase>/<security>/<rules>/entry`. Read in document order: that is the rulebase's
/// evaluation order, which placement decides on.
///
/// Adapter contract (on top of the module's): members `any` of `source-user`, `category` and
/// the HIP fields and `rule-type` `universal` are PAN-OS defaults and dropped on read;
/// `log-end` defaults to yes, `log-start` and `disabled` to no.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityRule {
    pub name: String,
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub source: Vec<String>,
    pub destination: Vec<String>,
    pub application: Vec<String>,
    pub service: Vec<String>,
    /// `allow`, `deny`, `drop`, `reset-client`, …
    pub action: String,
    /// `<profile-setting><group><member>`: the security profile group.
    pub profile_group: Option<String>,
    pub log_start: bool,
    pub log_end: bool,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub disabled: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmodelled: Vec<String>,
    /// Identity, as [`NatRule::uuid`]: never compared, carried by an update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

impl SecurityRule {
    /// Equal in everything but the `uuid`.
    pub fn same_content(&self, other: &SecurityRule) -> bool {
        let uuid = |r: &SecurityRule| SecurityRule { uuid: None, ..r.clone() };
        if self.uuid == other.uuid { self == other } else { uuid(self) == uuid(other) }
    }
}

/// Where a `move` puts a rule (`action=move&where=…[&dst=…]`, facts §3): also the operator's
/// placement of pano-eks's block of security rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "where", content = "dst")]
pub enum Position {
    Top,
    Bottom,
    Before(String),
    After(String),
}

impl Position {
    /// The `where` parameter.
    pub fn where_(&self) -> &'static str {
        match self {
            Position::Top => "top",
            Position::Bottom => "bottom",
            Position::Before(_) => "before",
            Position::After(_) => "after",
        }
    }

    /// The `dst` parameter (before/after only).
    pub fn dst(&self) -> Option<&str> {
        match self {
            Position::Before(d) | Position::After(d) => Some(d),
            _ => None,
        }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.dst() {
            Some(d) => write!(f, "{} {d:?}", self.where_()),
            None => f.write_str(self.where_()),
        }
    }
}

/// The kinds, in dependency order (a later kind may reference an earlier one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Tag,
    Address,
    Service,
    NatRule,
    StaticRoute,
    AddressGroup,
    SecurityRule,
}

/// Where an entry lives, i.e. what must be committed and pushed after changing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    DeviceGroup,
    Template,
}

impl Kind {
    pub fn scope(self) -> Scope {
        match self {
            Kind::StaticRoute => Scope::Template,
            _ => Scope::DeviceGroup,
        }
    }
}

/// Any one entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "entry")]
pub enum Object {
    Tag(Tag),
    Address(Address),
    Service(ServiceObject),
    NatRule(NatRule),
    StaticRoute(StaticRoute),
    AddressGroup(AddressGroup),
    SecurityRule(SecurityRule),
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Tag(_) => Kind::Tag,
            Object::Address(_) => Kind::Address,
            Object::Service(_) => Kind::Service,
            Object::NatRule(_) => Kind::NatRule,
            Object::StaticRoute(_) => Kind::StaticRoute,
            Object::AddressGroup(_) => Kind::AddressGroup,
            Object::SecurityRule(_) => Kind::SecurityRule,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Object::Tag(o) => &o.name,
            Object::Address(o) => &o.name,
            Object::Service(o) => &o.name,
            Object::NatRule(o) => &o.name,
            Object::StaticRoute(o) => &o.name,
            Object::AddressGroup(o) => &o.name,
            Object::SecurityRule(o) => &o.name,
        }
    }
}

/// One write. Create and Update carry the full desired entry (an Update is an in-place `edit`);
/// a Move reorders one of our rules (`action=move`), never anyone else's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "op")]
pub enum Operation {
    Create { object: Object },
    Update { object: Object },
    Delete { kind: Kind, name: String },
    Move { kind: Kind, name: String, to: Position },
}

impl Operation {
    pub fn kind(&self) -> Kind {
        match self {
            Operation::Create { object } | Operation::Update { object } => object.kind(),
            Operation::Delete { kind, .. } | Operation::Move { kind, .. } => *kind,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Operation::Create { object } | Operation::Update { object } => object.name(),
            Operation::Delete { name, .. } | Operation::Move { name, .. } => name,
        }
    }
}

/// What kind of entry a [`Referrer`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReferrerKind {
    SecurityRule,
    NatRule,
    AddressGroup,
    ServiceGroup,
}

impl std::fmt::Display for ReferrerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReferrerKind::SecurityRule => "security rule",
            ReferrerKind::NatRule => "NAT rule",
            ReferrerKind::AddressGroup => "address group",
            ReferrerKind::ServiceGroup => "service group",
        })
    }
}

/// An entry outside the five containers that can name our objects, so that PAN-OS refuses to
/// delete them (facts §11.4): a security or NAT rule of a pre- or post-rulebase, an address group
/// or a service group, in our device group, one of its descendants, or `shared`. The adapter
/// keeps only what the planner needs: what it names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Referrer {
    pub kind: ReferrerKind,
    pub name: String,
    /// Where it lives, for humans: `device group eks-dg pre-rulebase`, `shared`, …
    pub location: String,
    /// Every name it holds (members, the NAT `service`, translated addresses, tags, …), sorted
    /// and deduplicated. Over-inclusive on purpose: a stray match only holds an object longer.
    pub names: Vec<String>,
    /// Its own tags (a referrer carrying this deployment's marks is ours, and does not hold).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// Everything Panorama holds in the containers pano-eks writes into, owned or not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observed {
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub addresses: Vec<Address>,
    #[serde(default)]
    pub services: Vec<ServiceObject>,
    #[serde(default)]
    pub nat_rules: Vec<NatRule>,
    #[serde(default)]
    pub static_routes: Vec<StaticRoute>,
    /// The device group's address groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address_groups: Vec<AddressGroup>,
    /// The device group's pre-rulebase security rules, in rulebase order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_rules: Vec<SecurityRule>,
    /// Names of the security profile groups the device group can use (its own and `shared`);
    /// read only with `[sync.security]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profile_groups: Vec<String>,
    /// Entries elsewhere that may reference ours (rules, groups; see [`Referrer`]). Read for
    /// planning only (candidate config); empty when not read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub referrers: Vec<Referrer>,
    /// Objects pushed to the firewalls from outside these containers (`shared`, ancestor device
    /// groups), counted for capacity admission; zero when not read.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub elsewhere: crate::capacity::Limits,
}

fn is_zero(l: &crate::capacity::Limits) -> bool {
    *l == crate::capacity::Limits::default()
}

/// Applies one kind's upserts (`Some`) and deletes (`None`) in order, as `edit`/`delete` would:
/// an edit replaces the entry in place or appends it. Indexed, so large plans stay linear.
fn apply_kind<T>(list: &mut Vec<T>, ops: Vec<(&str, Option<T>)>, name: impl Fn(&T) -> &str) {
    if ops.is_empty() {
        return;
    }
    let mut slots: Vec<Option<T>> = std::mem::take(list).into_iter().map(Some).collect();
    let mut index: FxMap<String, usize> = map_with_capacity(slots.len());
    for (i, o) in slots.iter().enumerate() {
        index.entry(name(o.as_ref().expect("filled")).to_owned()).or_insert(i);
    }
    for (key, new) in ops {
        match (index.get(key).copied(), new) {
            (Some(i), Some(new)) => slots[i] = Some(new),
            (Some(i), None) => {
                slots[i] = None;
                index.remove(key);
            }
            (None, Some(new)) => {
                index.insert(key.to_owned(), slots.len());
                slots.push(Some(new));
            }
            (None, None) => {}
        }
    }
    *list = slots.into_iter().flatten().collect();
}

/// Moves the entry `name` as PAN-OS's `move` does; an unknown entry or anchor changes nothing.
pub fn move_to<T>(list: &mut Vec<T>, name: &str, to: &Position, key: impl Fn(&T) -> &str) {
    let Some(from) = list.iter().position(|x| key(x) == name) else { return };
    if to.dst() == Some(name) {
        return;
    }
    let anchor = to.dst().map(|d| list.iter().position(|x| key(x) == d));
    if anchor == Some(None) {
        return;
    }
    let item = list.remove(from);
    let at = match to {
        Position::Top => 0,
        Position::Bottom => list.len(),
        Position::Before(d) => list.iter().position(|x| key(x) == d).expect("anchor present"),
        Position::After(d) => list.iter().position(|x| key(x) == d).expect("anchor present") + 1,
    };
    list.insert(at, item);
}

impl Observed {
    /// Applies operations as Panorama would (`edit` = replace or append, `delete` = remove).
    /// Pure; for simulators and tests that check a plan converges.
    pub fn apply(&mut self, ops: &[Operation]) {
        let (mut tags, mut addresses, mut services, mut rules, mut routes) = (vec![], vec![], vec![], vec![], vec![]);
        let (mut groups, mut security) = (vec![], vec![]);
        for op in ops {
            let name = op.name();
            match op {
                // A move reorders in place; later upserts and deletes keep that order.
                Operation::Move { .. } => {}
                Operation::Create { object } | Operation::Update { object } => match object.clone() {
                    Object::Tag(o) => tags.push((name, Some(o))),
                    Object::Address(o) => addresses.push((name, Some(o))),
                    Object::Service(o) => services.push((name, Some(o))),
                    Object::NatRule(o) => rules.push((name, Some(o))),
                    Object::StaticRoute(o) => routes.push((name, Some(o))),
                    Object::AddressGroup(o) => groups.push((name, Some(o))),
                    Object::SecurityRule(o) => security.push((name, Some(o))),
                },
                Operation::Delete { kind, .. } => match kind {
                    Kind::Tag => tags.push((name, None)),
                    Kind::Address => addresses.push((name, None)),
                    Kind::Service => services.push((name, None)),
                    Kind::NatRule => rules.push((name, None)),
                    Kind::StaticRoute => routes.push((name, None)),
                    Kind::AddressGroup => groups.push((name, None)),
                    Kind::SecurityRule => security.push((name, None)),
                },
            }
        }
        apply_kind(&mut self.tags, tags, |x| &x.name);
        apply_kind(&mut self.addresses, addresses, |x| &x.name);
        apply_kind(&mut self.services, services, |x| &x.name);
        apply_kind(&mut self.nat_rules, rules, |x| &x.name);
        apply_kind(&mut self.static_routes, routes, |x| &x.name);
        apply_kind(&mut self.address_groups, groups, |x| &x.name);
        // Security rules: upserts and deletes first (a create lands at the bottom, as `edit`
        // of a new rule does), then the moves in order, as Panorama applies them.
        apply_kind(&mut self.security_rules, security, |x| &x.name);
        for op in ops {
            if let Operation::Move { kind: Kind::SecurityRule, name, to } = op {
                move_to(&mut self.security_rules, name, to, |r| &r.name);
            }
        }
    }

    /// Number of entries across all kinds.
    pub fn len(&self) -> usize {
        self.tags.len()
            + self.addresses.len()
            + self.services.len()
            + self.nat_rules.len()
            + self.static_routes.len()
            + self.address_groups.len()
            + self.security_rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The device groups below `dg` in Panorama's hierarchy, given each device group's parent
/// (`/config/readonly/…/device-group/entry/parent-dg`; `None` = child of `shared`): children,
/// grandchildren, …, sorted by name. A cycle (a broken answer) cannot loop.
pub fn descendants(parents: &[(String, Option<String>)], dg: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut frontier = vec![dg.to_owned()];
    while let Some(p) = frontier.pop() {
        for (child, parent) in parents {
            if parent.as_deref() == Some(p.as_str()) && child != dg && !found.contains(child) {
                found.push(child.clone());
                frontier.push(child.clone());
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendants_follow_parent_dg_transitively_and_survive_cycles() {
        let p = |c: &str, parent: Option<&str>| (c.to_string(), parent.map(str::to_string));
        let tree = vec![
            p("eks-dg", None),
            p("west", Some("eks-dg")),
            p("west-2", Some("west")),
            p("east", Some("eks-dg")),
            p("other", None),
            p("other-child", Some("other")),
        ];
        let cases: [(&str, &[&str]); 4] =
            [("eks-dg", &["east", "west", "west-2"]), ("west", &["west-2"]), ("west-2", &[]), ("missing", &[])];
        for (dg, want) in cases {
            assert_eq!(descendants(&tree, dg), want.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "{dg}");
        }
        let cycle = vec![p("a", Some("b")), p("b", Some("a")), p("c", Some("b"))];
        assert_eq!(descendants(&cycle, "a"), vec!["b".to_string(), "c".to_string()]);
    }
}

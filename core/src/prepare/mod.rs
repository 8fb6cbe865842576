//! Panorama prerequisites (`pano-eks panorama prepare`, also run by `up`): the template, the
//! template stack holding it, the device group, and in the template the AWS DNS server, the
//! untrust/trust DHCP interfaces with their zones, the ECMP virtual router and the vsys1 imports
//! (the guide's "Set Up Your Panorama Configuration", steps 1–6), and the interface management
//! profile that lets the load balancers health-check the firewalls ([`PROBE_PROFILE`] on the
//! untrust interface: HTTPS from the UNTRUST subnets only). Optionally the seed's `allow-all`
//! security pre-rule.
//!
//! Pure: [`plan_prepare`] compares what Panorama holds (a [`Node`] tree of the template, stack and
//! device group, as the adapter read it) with what is wanted and returns the writes that create
//! only what is missing; what exists and differs is reported ([`Status::Differs`]) and left alone
//! unless `adopt` is set ([`Status::Adopted`]). [`plan_unprepare`] turns the [`Record`] of what
//! was created into deletes, in dependency order, skipping anything that no longer holds only
//! what pano-eks created.
//!
//! Locations are paths below `/config/devices/entry[@name='localhost.localdomain']`; the adapter
//! turns them into XPath and the [`Node`] elements into XML.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// The AWS VPC DNS resolver (the guide's STEP 4).
pub const AWS_DNS: &str = "169.254.169.253";
/// The vsys the guide's single-vsys VM-Series uses.
pub const VSYS: &str = "vsys1";
/// `entry[@name='localhost.localdomain']`, the device inside a template's config.
pub const LD: &str = "localhost.localdomain";
/// Name of the optional allow-all pre-rule (the guide's STEP 5.4).
pub const ALLOW_ALL: &str = "allow-all";
/// The port the load balancers health-check on each firewall's untrust interface (eth0): HTTPS,
/// served by the firewall itself once the untrust interface carries [`PROBE_PROFILE`]. The
/// firewall templates render it (`cfn/_firewall.yaml.tera`) and `sync`'s default target groups use it.
pub const PROBE_PORT: u16 = 443;
/// The interface management profile `prepare` puts on the untrust interface: HTTPS only,
/// permitted only from the UNTRUST subnets (where the load balancers' nodes live).
pub const PROBE_PROFILE: &str = "pano-eks-lb-probe";

/// One step of a location path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Seg {
    /// A plain element: `tag`.
    Tag(String),
    /// `entry[@name='name']`.
    Entry(String),
    /// `member[text()='value']`.
    Member(String),
    /// The text of a leaf element (only in leaf paths, never in locations).
    Value(String),
}

fn t(s: &str) -> Seg {
    Seg::Tag(s.to_string())
}
fn e(s: &str) -> Seg {
    Seg::Entry(s.to_string())
}

/// A config element: `tag`, optional `name` attribute, text, children. Other attributes
/// (PAN-OS's `admin`, `dirtyId`, `uuid`…) are dropped by the adapter.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Node {
    pub tag: String,
    pub name: Option<String>,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn new(tag: &str) -> Node {
        Node { tag: tag.to_string(), ..Default::default() }
    }
    pub fn entry(name: &str) -> Node {
        Node { tag: "entry".into(), name: Some(name.to_string()), ..Default::default() }
    }
    pub fn member(value: &str) -> Node {
        Node { tag: "member".into(), text: value.to_string(), ..Default::default() }
    }
    pub fn leaf(tag: &str, text: &str) -> Node {
        Node { tag: tag.to_string(), text: text.to_string(), ..Default::default() }
    }
    pub fn with(mut self, child: Node) -> Node {
        self.children.push(child);
        self
    }

    /// The segment this node is as a child of its parent.
    /// A `<member>` of a list (written with `set` on the list's xpath, one member at a time).
    pub fn is_member(&self) -> bool {
        self.tag == "member"
    }

    pub fn seg(&self) -> Seg {
        match (self.tag.as_str(), &self.name) {
            (_, Some(n)) if self.tag == "entry" => Seg::Entry(n.clone()),
            ("member", _) => Seg::Member(self.text.trim().to_string()),
            _ => Seg::Tag(self.tag.clone()),
        }
    }

    fn child(&self, s: &Seg) -> Option<&Node> {
        self.children.iter().find(|c| match s {
            Seg::Tag(x) => c.tag == *x && c.name.is_none(),
            Seg::Entry(x) => c.tag == "entry" && c.name.as_deref() == Some(x),
            Seg::Member(x) => c.tag == "member" && c.text.trim() == x,
            Seg::Value(_) => false,
        })
    }

    /// The node at `path` below this one.
    pub fn get(&self, path: &[Seg]) -> Option<&Node> {
        path.iter().try_fold(self, |n, s| n.child(s))
    }

    /// Trimmed text of the leaf at `path`.
    pub fn text_at(&self, path: &[Seg]) -> Option<String> {
        self.get(path).map(|n| n.text.trim().to_string())
    }

    /// `member` texts of the list at `path`.
    pub fn members(&self, path: &[Seg]) -> Vec<String> {
        self.get(path)
            .map(|l| l.children.iter().filter(|c| c.tag == "member").map(|c| c.text.trim().to_string()).collect())
            .unwrap_or_default()
    }

    /// Names of the `entry` children of the container at `path`.
    pub fn entry_names(&self, path: &[Seg]) -> Vec<String> {
        self.get(path).map(|l| l.children.iter().filter(|c| c.tag == "entry").filter_map(|c| c.name.clone()).collect()).unwrap_or_default()
    }

    /// The content of this subtree as leaf paths (relative to `at`): text leaves end in
    /// [`Seg::Value`], members in [`Seg::Member`], empty named entries are leaves too (a device
    /// group's `devices/entry[@name=serial]` is content); empty unnamed elements are structure.
    pub fn leaves(&self, at: &[Seg]) -> Vec<Vec<Seg>> {
        let mut out = Vec::new();
        let mut path = at.to_vec();
        path.push(self.seg());
        self.collect(&mut path, &mut out);
        out
    }

    fn collect(&self, path: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
        if self.children.is_empty() {
            let text = self.text.trim();
            match path.last() {
                Some(Seg::Member(_)) => out.push(path.clone()),
                Some(Seg::Entry(_)) => {
                    let mut p = path.clone();
                    if !text.is_empty() {
                        p.push(Seg::Value(text.to_string()));
                    }
                    out.push(p);
                }
                _ if !text.is_empty() => {
                    let mut p = path.clone();
                    p.push(Seg::Value(text.to_string()));
                    out.push(p);
                }
                _ => {}
            }
            return;
        }
        for c in &self.children {
            path.push(c.seg());
            c.collect(path, out);
            path.pop();
        }
    }
}

/// The operator's choices for `prepare`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepareSettings {
    /// Deployment name (goes into the ownership descriptions).
    pub deployment: String,
    pub template: String,
    pub template_stack: String,
    pub device_group: String,
    pub virtual_router: String,
    pub untrust_interface: String,
    pub trust_interface: String,
    pub untrust_zone: String,
    pub trust_zone: String,
    pub dns_primary: String,
    /// The UNTRUST subnet CIDRs (`network.untrust_subnets`): where the load balancers' nodes,
    /// and so their health checks, come from. The probe profile permits only these.
    pub untrust_subnets: Vec<String>,
    /// Also create the seed's allow-all security pre-rule (first connectivity tests only).
    pub allow_all: bool,
    /// Turn differences into updates instead of reporting them.
    pub adopt: bool,
}

/// The description pano-eks writes on the template, stack, device group and allow-all rule it creates.
pub fn marker(deployment: &str) -> String {
    format!("created by pano-eks ({deployment})")
}

/// One prerequisite. Everything needed to write it, find it and delete it again is in here, so
/// a [`Record`] of items is enough for `down` even after the config changed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Item {
    Template {
        name: String,
        description: String,
    },
    TemplateStack {
        name: String,
        description: String,
    },
    /// The template as a member of the stack (a stack that existed before gets only this).
    StackMember {
        stack: String,
        template: String,
    },
    DeviceGroup {
        name: String,
        description: String,
    },
    DnsPrimary {
        template: String,
        server: String,
    },
    /// Layer-3 ethernet interface with a DHCP client; `default_route` = create the default route.
    Interface {
        template: String,
        name: String,
        default_route: bool,
    },
    /// A layer-3 zone in vsys1 (its interfaces are [`Item::ZoneMember`]s).
    Zone {
        template: String,
        name: String,
    },
    ZoneMember {
        template: String,
        zone: String,
        interface: String,
    },
    /// A virtual router with ECMP enabled (its interfaces are [`Item::RouterInterface`]s).
    VirtualRouter {
        template: String,
        name: String,
    },
    RouterInterface {
        template: String,
        router: String,
        interface: String,
    },
    ImportInterface {
        template: String,
        interface: String,
    },
    ImportRouter {
        template: String,
        router: String,
    },
    /// The interface management profile the load balancers' health checks reach: HTTPS, and
    /// only from `permitted` (the UNTRUST subnets), so nothing else gets the web UI on eth0.
    ProbeProfile {
        template: String,
        name: String,
        permitted: Vec<String>,
    },
    /// The probe profile set on the untrust interface (a leaf inside the interface).
    ProbeProfileOnInterface {
        template: String,
        interface: String,
        profile: String,
    },
    /// The seed's allow-all security pre-rule.
    AllowAll {
        device_group: String,
        description: String,
    },
}

fn tpl(template: &str) -> Vec<Seg> {
    vec![t("template"), e(template), t("config"), t("devices"), e(LD)]
}
fn vsys(template: &str) -> Vec<Seg> {
    let mut p = tpl(template);
    p.extend([t("vsys"), e(VSYS)]);
    p
}
fn join(mut a: Vec<Seg>, b: &[Seg]) -> Vec<Seg> {
    a.extend_from_slice(b);
    a
}

impl Item {
    /// Where the item's element goes (the `set` xpath).
    pub fn parent(&self) -> Vec<Seg> {
        match self {
            Item::Template { .. } => vec![t("template")],
            Item::TemplateStack { .. } => vec![t("template-stack")],
            Item::StackMember { stack, .. } => vec![t("template-stack"), e(stack), t("templates")],
            Item::DeviceGroup { .. } => vec![t("device-group")],
            Item::DnsPrimary { template, .. } => join(tpl(template), &[t("deviceconfig"), t("system"), t("dns-setting"), t("servers")]),
            Item::Interface { template, .. } => join(tpl(template), &[t("network"), t("interface"), t("ethernet")]),
            Item::Zone { template, .. } => join(vsys(template), &[t("zone")]),
            Item::ZoneMember { template, zone, .. } => join(vsys(template), &[t("zone"), e(zone), t("network"), t("layer3")]),
            Item::VirtualRouter { template, .. } => join(tpl(template), &[t("network"), t("virtual-router")]),
            Item::RouterInterface { template, router, .. } => {
                join(tpl(template), &[t("network"), t("virtual-router"), e(router), t("interface")])
            }
            Item::ImportInterface { template, .. } => join(vsys(template), &[t("import"), t("network"), t("interface")]),
            Item::ImportRouter { template, .. } => join(vsys(template), &[t("import"), t("network"), t("virtual-router")]),
            Item::ProbeProfile { template, .. } => join(tpl(template), &[t("network"), t("profiles"), t("interface-management-profile")]),
            Item::ProbeProfileOnInterface { template, interface, .. } => {
                join(tpl(template), &[t("network"), t("interface"), t("ethernet"), e(interface), t("layer3")])
            }
            Item::AllowAll { device_group, .. } => vec![t("device-group"), e(device_group), t("pre-rulebase"), t("security"), t("rules")],
        }
    }

    /// The element written at [`Item::parent`].
    pub fn element(&self) -> Node {
        match self {
            Item::Template { name, description } => Node::entry(name)
                .with(Node::leaf("description", description))
                .with(Node::new("settings").with(Node::leaf("default-vsys", VSYS)))
                .with(Node::new("config").with(Node::new("devices").with(Node::entry(LD).with(Node::new("vsys").with(Node::entry(VSYS)))))),
            Item::TemplateStack { name, description } => Node::entry(name).with(Node::leaf("description", description)),
            Item::StackMember { template, .. } => Node::member(template),
            Item::DeviceGroup { name, description } => Node::entry(name).with(Node::leaf("description", description)),
            Item::DnsPrimary { server, .. } => Node::leaf("primary", server),
            Item::Interface { name, default_route, .. } => Node::entry(name).with(
                Node::new("layer3").with(
                    Node::new("dhcp-client")
                        .with(Node::leaf("enable", "yes"))
                        .with(Node::leaf("create-default-route", if *default_route { "yes" } else { "no" })),
                ),
            ),
            Item::Zone { name, .. } => Node::entry(name).with(Node::new("network").with(Node::new("layer3"))),
            Item::ZoneMember { interface, .. } | Item::RouterInterface { interface, .. } | Item::ImportInterface { interface, .. } => {
                Node::member(interface)
            }
            Item::VirtualRouter { name, .. } => Node::entry(name).with(Node::new("ecmp").with(Node::leaf("enable", "yes"))),
            Item::ImportRouter { router, .. } => Node::member(router),
            Item::ProbeProfile { name, permitted, .. } => {
                let mut ips = Node::new("permitted-ip");
                for cidr in permitted {
                    ips = ips.with(Node::entry(cidr));
                }
                Node::entry(name).with(Node::leaf("https", "yes")).with(ips)
            }
            Item::ProbeProfileOnInterface { profile, .. } => Node::leaf("interface-management-profile", profile),
            Item::AllowAll { description, .. } => {
                let any = |tag: &str| Node::new(tag).with(Node::member("any"));
                Node::entry(ALLOW_ALL)
                    .with(any("from"))
                    .with(any("to"))
                    .with(any("source"))
                    .with(any("destination"))
                    .with(any("source-user"))
                    .with(any("category"))
                    .with(any("application"))
                    .with(any("service"))
                    .with(Node::leaf("action", "allow"))
                    .with(Node::leaf("description", description))
            }
        }
    }

    /// The item's own node (what `delete` removes).
    pub fn path(&self) -> Vec<Seg> {
        join(self.parent(), &[self.element().seg()])
    }

    /// The leaves this item put there (relative to the device root).
    pub fn owned_leaves(&self) -> Vec<Vec<Seg>> {
        self.element().leaves(&self.parent())
    }

    /// Deletion rank: dependants before what they depend on (rule → imports → router →
    /// zones → interfaces → DNS → stack → template → device group).
    fn delete_rank(&self) -> u8 {
        match self {
            Item::AllowAll { .. } => 0,
            Item::ImportInterface { .. } | Item::ImportRouter { .. } | Item::ProbeProfileOnInterface { .. } => 1,
            Item::RouterInterface { .. } => 2,
            Item::VirtualRouter { .. } => 3,
            Item::ZoneMember { .. } => 4,
            Item::Zone { .. } => 5,
            Item::Interface { .. } | Item::ProbeProfile { .. } => 6,
            Item::DnsPrimary { .. } => 7,
            Item::StackMember { .. } => 8,
            Item::TemplateStack { .. } => 9,
            Item::Template { .. } => 10,
            Item::DeviceGroup { .. } => 11,
        }
    }

    /// Human description for reports.
    pub fn describe(&self) -> String {
        match self {
            Item::Template { name, .. } => format!("template {name}"),
            Item::TemplateStack { name, .. } => format!("template stack {name}"),
            Item::StackMember { stack, template } => format!("template {template} in stack {stack}"),
            Item::DeviceGroup { name, .. } => format!("device group {name}"),
            Item::DnsPrimary { template, server } => format!("primary DNS {server} in template {template}"),
            Item::Interface { name, default_route, .. } => {
                format!("{name}: layer 3, DHCP client {} default route", if *default_route { "with" } else { "without" })
            }
            Item::Zone { name, .. } => format!("zone {name} (layer 3, {VSYS})"),
            Item::ZoneMember { zone, interface, .. } => format!("{interface} in zone {zone}"),
            Item::VirtualRouter { name, .. } => format!("virtual router {name} (ECMP enabled)"),
            Item::RouterInterface { router, interface, .. } => format!("{interface} in virtual router {router}"),
            Item::ImportInterface { interface, .. } => format!("{interface} imported into {VSYS}"),
            Item::ImportRouter { router, .. } => format!("virtual router {router} imported into {VSYS}"),
            Item::ProbeProfile { name, permitted, .. } => {
                format!("interface management profile {name} (HTTPS for load balancer health checks, from {})", permitted.join(", "))
            }
            Item::ProbeProfileOnInterface { interface, profile, .. } => format!("{interface} with interface management profile {profile}"),
            Item::AllowAll { device_group, .. } => format!("security pre-rule {ALLOW_ALL} in device group {device_group}"),
        }
    }
}

/// One write, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Merge `element` under `parent` (creates; for leaves, replaces the value).
    Set {
        parent: Vec<Seg>,
        element: Node,
    },
    /// Replace the node at `path` with `element`.
    Edit {
        path: Vec<Seg>,
        element: Node,
    },
    Delete {
        path: Vec<Seg>,
    },
}

impl Write {
    /// The write that creates `item`, always on the item's own xpath, never on an enclosing
    /// object (facts §11.1: a write on a container or parent takes ownership of that whole node,
    /// so an admin-scoped partial commit would sweep in other admins' changes beneath it): an
    /// entry or leaf is an `edit` of its full xpath; a list member, which PAN-OS can only write
    /// on the list, is a `set` of that one `<member>` on the list's own xpath.
    fn set(item: &Item) -> Write {
        let element = item.element();
        if element.is_member() { Write::Set { parent: item.parent(), element } } else { Write::Edit { path: item.path(), element } }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Missing: created by this run.
    Create,
    /// Present as wanted.
    Exists,
    /// Present but different: reported, left alone.
    Differs(String),
    /// Present but different, and `adopt` was given: changed to what is wanted.
    Adopted(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub item: Item,
    pub status: Status,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PreparePlan {
    /// Every prerequisite in creation order with what was found.
    pub checks: Vec<Check>,
    pub writes: Vec<Write>,
}

impl PreparePlan {
    pub fn created(&self) -> Vec<Item> {
        self.checks.iter().filter(|c| c.status == Status::Create).map(|c| c.item.clone()).collect()
    }
    pub fn differences(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| matches!(c.status, Status::Differs(_))).collect()
    }
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let n = |f: fn(&Status) -> bool| self.checks.iter().filter(|c| f(&c.status)).count();
        (
            n(|s| *s == Status::Create),
            n(|s| *s == Status::Exists),
            n(|s| matches!(s, Status::Differs(_))),
            n(|s| matches!(s, Status::Adopted(_))),
        )
    }
}

/// What `prepare` created (written beside the config after the commit; `down` reads it).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    pub deployment: String,
    pub created: Vec<Item>,
}

impl Record {
    /// This record plus `items` (deduplicated, sorted): a re-run keeps what earlier runs created.
    pub fn merged(&self, deployment: &str, items: &[Item]) -> Record {
        let mut all: BTreeSet<Item> = self.created.iter().cloned().collect();
        all.extend(items.iter().cloned());
        Record { version: 1, deployment: deployment.to_string(), created: all.into_iter().collect() }
    }
}

/// Compares `devices` (the device root as read: `template/entry[T]`, `template-stack/entry[S]`,
/// `device-group/entry[DG]`, whichever exist) with the prerequisites.
pub fn plan_prepare(s: &PrepareSettings, devices: &Node) -> PreparePlan {
    let mut p = Planner { s, root: devices, plan: PreparePlan::default() };
    p.run();
    p.plan
}

struct Planner<'a> {
    s: &'a PrepareSettings,
    root: &'a Node,
    plan: PreparePlan,
}

impl Planner<'_> {
    fn push(&mut self, item: Item, status: Status, writes: Vec<Write>) {
        if matches!(status, Status::Create | Status::Adopted(_)) {
            self.plan.writes.extend(writes);
        }
        self.plan.checks.push(Check { item, status });
    }

    /// Create when absent, else exists (for items whose presence is all that matters).
    fn presence(&mut self, item: Item) {
        let status = if self.root.get(&item.path()).is_some() { Status::Exists } else { Status::Create };
        let w = vec![Write::set(&item)];
        self.push(item, status, w);
    }

    /// Present-but-different handling: Differs, or Adopted with `writes`.
    fn differs(&mut self, item: Item, reason: String, writes: Vec<Write>) {
        if self.s.adopt {
            self.push(item, Status::Adopted(reason), writes);
        } else {
            self.push(item, Status::Differs(format!("{reason} (left alone; --adopt changes it)")), vec![]);
        }
    }

    /// Every prerequisite in the guide's order: the containers (template, stack, device group),
    /// then what the template holds, then the optional allow-all rule.
    fn run(&mut self) {
        let s = self.s;
        let mark = marker(&s.deployment);
        let tname = s.template.clone();
        self.presence(Item::Template { name: tname.clone(), description: mark.clone() });
        self.presence(Item::TemplateStack { name: s.template_stack.clone(), description: mark.clone() });
        self.presence(Item::StackMember { stack: s.template_stack.clone(), template: tname.clone() });
        self.presence(Item::DeviceGroup { name: s.device_group.clone(), description: mark.clone() });
        self.dns();
        self.interfaces();
        self.zones();
        self.virtual_router();
        self.imports();
        self.probe_profile();
        self.allow_all();
    }

    /// The template's primary DNS server (FQDN objects resolve with it).
    fn dns(&mut self) {
        let s = self.s;
        let tname = s.template.clone();
        let dns = Item::DnsPrimary { template: tname.clone(), server: s.dns_primary.clone() };
        let dns_path = join(dns.parent(), &[t("primary")]);
        match self.root.text_at(&dns_path) {
            None => self.push(dns.clone(), Status::Create, vec![Write::set(&dns)]),
            Some(v) if v == s.dns_primary => self.push(dns, Status::Exists, vec![]),
            Some(v) => {
                let w = vec![Write::set(&dns)];
                self.differs(dns, format!("primary DNS server is {v}, not {}", s.dns_primary), w)
            }
        }
    }

    /// The untrust and trust interfaces (DHCP; a default route from untrust only).
    fn interfaces(&mut self) {
        let s = self.s;
        let tname = s.template.clone();
        for (name, default_route) in [(&s.untrust_interface, true), (&s.trust_interface, false)] {
            let item = Item::Interface { template: tname.clone(), name: name.clone(), default_route };
            match self.root.get(&item.path()) {
                None => self.push(item.clone(), Status::Create, vec![Write::set(&item)]),
                Some(n) => match interface_difference(n, default_route) {
                    None => self.push(item, Status::Exists, vec![]),
                    Some(reason) => {
                        let w = vec![Write::Edit { path: item.path(), element: item.element() }];
                        self.differs(item, format!("{name} {reason}"), w)
                    }
                },
            }
        }
    }

    /// The layer-3 zones and their interfaces (an interface in another zone moves only with --adopt).
    fn zones(&mut self) {
        let s = self.s;
        let tname = s.template.clone();
        let zones_at = join(vsys(&tname), &[t("zone")]);
        for (zone, iface) in [(&s.untrust_zone, &s.untrust_interface), (&s.trust_zone, &s.trust_interface)] {
            let item = Item::Zone { template: tname.clone(), name: zone.clone() };
            match self.root.get(&item.path()) {
                None => self.push(item.clone(), Status::Create, vec![Write::set(&item)]),
                Some(n) => match zone_mode(n) {
                    Some(m) if m == "layer3" => self.push(item, Status::Exists, vec![]),
                    m => {
                        let w = vec![Write::Edit { path: item.path(), element: item.element() }];
                        let what = m.map(|m| format!("a {m} zone")).unwrap_or_else(|| "a zone without a type".into());
                        self.differs(item, format!("zone {zone} is {what}, not layer 3"), w)
                    }
                },
            }
            let member = Item::ZoneMember { template: tname.clone(), zone: zone.clone(), interface: iface.clone() };
            let elsewhere: Vec<String> = self
                .root
                .entry_names(&zones_at)
                .into_iter()
                .filter(|z| z != zone)
                .filter(|z| self.root.get(&join(zones_at.clone(), &[e(z)])).is_some_and(|n| zone_interfaces(n).contains(iface)))
                .collect();
            let here = self.root.get(&join(zones_at.clone(), &[e(zone)])).is_some_and(|n| zone_interfaces(n).contains(iface));
            if here && elsewhere.is_empty() {
                self.push(member, Status::Exists, vec![]);
            } else if let Some(other) = elsewhere.first() {
                let mut w: Vec<Write> =
                    elsewhere.iter().map(|z| Write::Delete { path: zone_member_path(&zones_at, z, self.root, iface) }).collect();
                if !here {
                    w.push(Write::set(&member));
                }
                self.differs(member, format!("{iface} is in zone {other}, not {zone}"), w);
            } else {
                self.push(member.clone(), Status::Create, vec![Write::set(&member)]);
            }
        }
    }

    /// The virtual router (ECMP on) and its two interfaces.
    fn virtual_router(&mut self) {
        let s = self.s;
        let tname = s.template.clone();
        let vr = Item::VirtualRouter { template: tname.clone(), name: s.virtual_router.clone() };
        match self.root.get(&vr.path()) {
            None => self.push(vr.clone(), Status::Create, vec![Write::set(&vr)]),
            Some(n) if n.text_at(&[t("ecmp"), t("enable")]).as_deref() == Some("yes") => self.push(vr, Status::Exists, vec![]),
            Some(_) => {
                let w = vec![Write::Edit { path: join(vr.path(), &[t("ecmp"), t("enable")]), element: Node::leaf("enable", "yes") }];
                self.differs(vr, format!("virtual router {} has ECMP disabled", s.virtual_router), w)
            }
        }
        let routers_at = join(tpl(&tname), &[t("network"), t("virtual-router")]);
        for iface in [&s.untrust_interface, &s.trust_interface] {
            let item = Item::RouterInterface { template: tname.clone(), router: s.virtual_router.clone(), interface: iface.clone() };
            let here = self.root.get(&item.path()).is_some();
            let elsewhere: Vec<String> = self
                .root
                .entry_names(&routers_at)
                .into_iter()
                .filter(|r| *r != s.virtual_router)
                .filter(|r| self.root.members(&join(routers_at.clone(), &[e(r), t("interface")])).contains(iface))
                .collect();
            if let Some(other) = elsewhere.first() {
                let mut w: Vec<Write> = elsewhere
                    .iter()
                    .map(|r| Write::Delete { path: join(routers_at.clone(), &[e(r), t("interface"), Seg::Member(iface.clone())]) })
                    .collect();
                if !here {
                    w.push(Write::set(&item));
                }
                self.differs(item, format!("{iface} is in virtual router {other}, not {}", s.virtual_router), w);
            } else {
                let status = if here { Status::Exists } else { Status::Create };
                let w = vec![Write::set(&item)];
                self.push(item, status, w);
            }
        }
    }

    /// vsys1 imports the interfaces and the router.
    fn imports(&mut self) {
        let s = self.s;
        let tname = s.template.clone();
        for iface in [&s.untrust_interface, &s.trust_interface] {
            self.presence(Item::ImportInterface { template: tname.clone(), interface: iface.clone() });
        }
        self.presence(Item::ImportRouter { template: tname.clone(), router: s.virtual_router.clone() });
    }

    /// What the load balancers' health checks reach on eth0 (PROBE_PORT): the firewall's own
    /// HTTPS, permitted only from the UNTRUST subnets.
    fn probe_profile(&mut self) {
        let s = self.s;
        let tname = s.template.clone();
        let mut permitted = s.untrust_subnets.clone();
        permitted.sort();
        permitted.dedup();
        let profile = Item::ProbeProfile { template: tname.clone(), name: PROBE_PROFILE.into(), permitted: permitted.clone() };
        match self.root.get(&profile.path()) {
            None => self.push(profile.clone(), Status::Create, vec![Write::set(&profile)]),
            Some(n) => match probe_profile_difference(n, &permitted) {
                None => self.push(profile, Status::Exists, vec![]),
                Some(reason) => {
                    let w = vec![Write::Edit { path: profile.path(), element: profile.element() }];
                    self.differs(profile, format!("profile {PROBE_PROFILE} {reason}"), w)
                }
            },
        }
        let on_if = Item::ProbeProfileOnInterface {
            template: tname.clone(),
            interface: s.untrust_interface.clone(),
            profile: PROBE_PROFILE.into(),
        };
        let leaf = join(on_if.parent(), &[t("interface-management-profile")]);
        // An untrust interface left alone (someone else's, differing) is not touched at all.
        let untrust_left_alone = self.plan.checks.iter().any(|c| {
            matches!(&c.item, Item::Interface { name, .. } if *name == s.untrust_interface) && matches!(c.status, Status::Differs(_))
        });
        match self.root.text_at(&leaf) {
            Some(v) if v == PROBE_PROFILE => self.push(on_if, Status::Exists, vec![]),
            _ if untrust_left_alone => {
                let why = format!("{} is left alone, so it gets no probe profile: health checks fail", s.untrust_interface);
                self.push(on_if, Status::Differs(why), vec![])
            }
            None => self.push(on_if.clone(), Status::Create, vec![Write::set(&on_if)]),
            Some(v) => {
                let w = vec![Write::set(&on_if)];
                let why = format!("{} has interface management profile {v}, not {PROBE_PROFILE}", s.untrust_interface);
                self.differs(on_if, why, w)
            }
        }
    }

    /// The optional allow-all pre-rule (`--allow-all`: a test aid).
    fn allow_all(&mut self) {
        let s = self.s;
        let mark = marker(&s.deployment);
        if s.allow_all {
            let item = Item::AllowAll { device_group: s.device_group.clone(), description: mark.clone() };
            match self.root.get(&item.path()) {
                None => self.push(item.clone(), Status::Create, vec![Write::set(&item)]),
                Some(n) => match rule_difference(n) {
                    None => self.push(item, Status::Exists, vec![]),
                    Some(reason) => {
                        let w = vec![Write::Edit { path: item.path(), element: item.element() }];
                        self.differs(item, format!("rule {ALLOW_ALL} {reason}"), w)
                    }
                },
            }
        }
    }
}

fn zone_mode(zone: &Node) -> Option<String> {
    zone.get(&[t("network")])?
        .children
        .iter()
        .map(|c| c.tag.clone())
        .find(|t| t != "log-setting" && t != "zone-protection-profile" && t != "enable-packet-buffer-protection")
}

fn zone_interfaces(zone: &Node) -> Vec<String> {
    zone.get(&[t("network")])
        .map(|n| {
            n.children
                .iter()
                .flat_map(|mode| mode.children.iter().filter(|c| c.tag == "member").map(|c| c.text.trim().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The member node of `iface` in zone `z` (whatever the zone's mode).
fn zone_member_path(zones_at: &[Seg], z: &str, root: &Node, iface: &str) -> Vec<Seg> {
    let base = join(zones_at.to_vec(), &[e(z), t("network")]);
    let mode = root
        .get(&base)
        .and_then(|n| n.children.iter().find(|m| m.children.iter().any(|c| c.tag == "member" && c.text.trim() == iface)))
        .map(|m| m.tag.clone());
    join(base, &[Seg::Tag(mode.unwrap_or_else(|| "layer3".into())), Seg::Member(iface.to_string())])
}

/// Why an existing interface is not a layer-3 DHCP client with the wanted default-route choice.
fn interface_difference(n: &Node, default_route: bool) -> Option<String> {
    let Some(l3) = n.get(&[t("layer3")]) else {
        let mode = n.children.iter().map(|c| c.tag.as_str()).find(|t| !["comment", "link-speed", "link-duplex", "link-state"].contains(t));
        return Some(match mode {
            Some(m) => format!("is a {m} interface, not layer 3"),
            None => "has no interface type, not layer 3".to_string(),
        });
    };
    if !l3.members(&[t("ip")]).is_empty() || l3.get(&[t("ip")]).is_some_and(|ip| !ip.children.is_empty()) {
        return Some("has static IP addresses, not a DHCP client".to_string());
    }
    let Some(dhcp) = l3.get(&[t("dhcp-client")]) else { return Some("is layer 3 without a DHCP client".to_string()) };
    // PAN-OS defaults: enable yes, create-default-route yes.
    if dhcp.text_at(&[t("enable")]).is_some_and(|v| v != "yes") {
        return Some("has its DHCP client disabled".to_string());
    }
    let creates = dhcp.text_at(&[t("create-default-route")]).map(|v| v == "yes").unwrap_or(true);
    if creates != default_route {
        return Some(if default_route {
            "does not create the default route from DHCP".into()
        } else {
            "creates a default route from DHCP".into()
        });
    }
    None
}

/// The other services an interface management profile can open (PAN-OS `interface-management-profile`).
const PROFILE_SERVICES: &[&str] = &[
    "http",
    "http-ocsp",
    "ssh",
    "telnet",
    "snmp",
    "response-pages",
    "userid-service",
    "userid-syslog-listener-ssl",
    "userid-syslog-listener-udp",
];

/// Why an existing probe profile does not let exactly the load balancers' HTTPS probes in.
fn probe_profile_difference(n: &Node, permitted: &[String]) -> Option<String> {
    if n.text_at(&[t("https")]).as_deref() != Some("yes") {
        return Some("does not allow HTTPS".into());
    }
    let more: Vec<&str> = PROFILE_SERVICES.iter().copied().filter(|svc| n.text_at(&[t(svc)]).as_deref() == Some("yes")).collect();
    if !more.is_empty() {
        return Some(format!("also allows {} on the untrust interface", more.join(", ")));
    }
    let mut have = n.entry_names(&[t("permitted-ip")]);
    have.sort();
    if have.is_empty() {
        return Some("permits every source, not only the UNTRUST subnets".into());
    }
    if have != permitted {
        return Some(format!("permits {}, not the UNTRUST subnets {}", have.join(", "), permitted.join(", ")));
    }
    None
}

fn rule_difference(n: &Node) -> Option<String> {
    for f in ["from", "to", "source", "destination", "application", "service"] {
        let m = n.members(&[t(f)]);
        if m != ["any"] {
            return Some(format!("has {f} {}, not any", if m.is_empty() { "(none)".into() } else { m.join(",") }));
        }
    }
    match n.text_at(&[t("action")]) {
        Some(a) if a == "allow" => {}
        a => return Some(format!("has action {}, not allow", a.unwrap_or_default())),
    }
    if n.text_at(&[t("disabled")]).as_deref() == Some("yes") {
        return Some("is disabled".into());
    }
    None
}

/// What `down` does with one recorded item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Delete,
    /// Already gone.
    Gone,
    /// Kept: it holds config pano-eks did not create (the first few leaves, for the report).
    Kept(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnpreparePlan {
    /// Every recorded item in deletion order with its fate.
    pub items: Vec<(Item, Removal)>,
    pub writes: Vec<Write>,
}

/// Deletes of what `record` says prepare created, in dependency order. An item is deleted only
/// when everything under it is something pano-eks created; otherwise it is kept and reported.
pub fn plan_unprepare(record: &Record, devices: &Node) -> UnpreparePlan {
    let owned: BTreeSet<Vec<Seg>> = record.created.iter().flat_map(Item::owned_leaves).collect();
    let mut items = record.created.clone();
    items.sort_by_key(|i| (i.delete_rank(), i.clone()));
    items.dedup();
    let mut plan = UnpreparePlan::default();
    for item in items {
        let path = item.path();
        let Some(n) = devices.get(&path) else {
            plan.items.push((item, Removal::Gone));
            continue;
        };
        // Leaves are computed at the node's parent so they line up with the owned ones.
        let parent = &path[..path.len() - 1];
        let foreign: Vec<Vec<Seg>> = n.leaves(parent).into_iter().filter(|l| !owned.contains(l)).collect();
        if foreign.is_empty() {
            plan.writes.push(Write::Delete { path });
            plan.items.push((item, Removal::Delete));
        } else {
            let shown: Vec<String> = foreign.iter().take(3).map(|l| show_path(&l[path.len() - 1..])).collect();
            let more = if foreign.len() > 3 { format!(" and {} more", foreign.len() - 3) } else { String::new() };
            plan.items.push((item, Removal::Kept(format!("holds config pano-eks did not create: {}{more}", shown.join(", ")))));
        }
    }
    plan
}

/// `a/b[name]/c=value` for reports.
pub fn show_path(p: &[Seg]) -> String {
    let mut s = String::new();
    for seg in p {
        match seg {
            Seg::Tag(x) => {
                if !s.is_empty() {
                    s.push('/');
                }
                s.push_str(x);
            }
            Seg::Entry(n) => s.push_str(&format!("[{n}]")),
            Seg::Member(m) => s.push_str(&format!("/{m}")),
            Seg::Value(v) => s.push_str(&format!("={v}")),
        }
    }
    if s.is_empty() { "(itself changed)".into() } else { s }
}

/// Parses PAN-OS's `YYYY/MM/DD HH:MM:SS` (as in `request bootstrap vm-auth-key show`) into seconds
/// since the epoch, taking it as UTC.
pub fn parse_panos_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = s.split_once(' ')?;
    let d: Vec<i64> = date.split('/').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let tm: Vec<i64> = time.trim().split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let ([y, m, day], [hh, mm, ss]) = (d.as_slice(), tm.as_slice()) else { return None };
    if !(1..=12).contains(m) || !(1..=31).contains(day) || !(0..24).contains(hh) || !(0..60).contains(mm) || !(0..61).contains(ss) {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y2 = if *m <= 2 { y - 1 } else { *y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + hh * 3600 + mm * 60 + ss)
}

/// Panorama's own clock, as `show system info` prints it in `<time>` (`Tue Dec  1 11:26:00 2026`),
/// as `show clock` prints it (`Tue Dec  1 11:26:00 PST 2026`), or in PAN-OS's `YYYY/MM/DD HH:MM:SS`,
/// as the seconds [`parse_panos_time`] gives for the same wall-clock reading. A zone name is
/// skipped: `expiry-time` is printed in the same (configured) zone without one (facts §11.5), so
/// the two readings compare directly, whatever the zone and however far Panorama's clock is from
/// ours.
pub fn parse_panorama_clock(s: &str) -> Option<i64> {
    if let Some(t) = parse_panos_time(s) {
        return Some(t);
    }
    const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let words: Vec<&str> = s.split_whitespace().collect();
    let at = words.iter().position(|w| MONTHS.contains(&w.to_ascii_lowercase().as_str()))?;
    let month = MONTHS.iter().position(|m| words[at].eq_ignore_ascii_case(m))? + 1;
    let (day, time, year) = (words.get(at + 1)?, words.get(at + 2)?, words.last()?);
    // Between the time and the year only a zone name (letters, or a numeric offset) may stand.
    if words.len() > at + 5 || !(year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit())) || words.len() < at + 4 {
        return None;
    }
    parse_panos_time(&format!("{year}/{month:02}/{day:0>2} {time}"))
}

/// Why an explicitly configured vm-auth-key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    #[error("Panorama does not know this vm-auth-key (`request bootstrap vm-auth-key show` does not list it)")]
    Unknown,
    #[error("the vm-auth-key expired at {expiry} (Panorama's clock)")]
    Expired { expiry: String },
    #[error("the vm-auth-key expires at {expiry}, in less than {min_hours} hour(s): firewalls bootstrapping after that cannot register")]
    TooSoon { expiry: String, min_hours: i64 },
    #[error("Panorama lists the vm-auth-key with an unreadable expiry time {expiry:?}")]
    Unreadable { expiry: String },
    #[error("Panorama's clock reads {clock:?}, which pano-eks cannot read: the vm-auth-key's expiry cannot be checked")]
    UnreadableClock { clock: String },
}

/// [`check_vm_auth_key`] against Panorama's own clock reading (`show system info` `<time>` or
/// `show clock`), never the local one: `expiry-time` is in Panorama's zone and by its clock.
pub fn check_vm_auth_key_by_panorama_clock(
    listed: &[(String, String)],
    key: &str,
    panorama_clock: &str,
    min_secs: i64,
) -> Result<String, KeyProblem> {
    let Some(now) = parse_panorama_clock(panorama_clock) else {
        return Err(KeyProblem::UnreadableClock { clock: panorama_clock.to_owned() });
    };
    check_vm_auth_key(listed, key, now, min_secs)
}

/// Checks `key` against the `(key, expiry-time)` pairs Panorama lists: it must be listed and stay
/// valid for at least `min_secs` after `now`, Panorama's wall clock read by [`parse_panos_time`]
/// (see [`check_vm_auth_key_by_panorama_clock`]). Returns the expiry time text.
pub fn check_vm_auth_key(listed: &[(String, String)], key: &str, now: i64, min_secs: i64) -> Result<String, KeyProblem> {
    let Some((_, expiry)) = listed.iter().find(|(k, _)| k == key) else { return Err(KeyProblem::Unknown) };
    let Some(at) = parse_panos_time(expiry) else { return Err(KeyProblem::Unreadable { expiry: expiry.clone() }) };
    if at <= now {
        return Err(KeyProblem::Expired { expiry: expiry.clone() });
    }
    if at - now < min_secs {
        return Err(KeyProblem::TooSoon { expiry: expiry.clone(), min_hours: (min_secs + 3599) / 3600 });
    }
    Ok(expiry.clone())
}

pub mod vm_auth_key;

#[cfg(test)]
mod tests;

//! The checks a real Panorama makes when config is `set`/`edit`ed (facts §4, §7): names,
//! exactly one address type, NAT rule shape, references resolved in the device group, its
//! ancestors and shared, and paths that have no schema node on Panorama.
//!
//! Fidelity notes (the exact texts are not captured in any public source, so they are modelled
//! on the path-style validation lines PAN-OS prints, `<loc> -> <container> -> <name> ...`):
//! - every failure is `status="error" code="12"` with CDATA lines (facts §7 "code 12 is my guess"
//!   for references; "Could not find schema node" also uses 12, an [inferred] choice);
//! - names: `^[A-Za-z0-9][A-Za-z0-9._ -]*$` (facts §4 "safe" rule: stricter than PAN-OS may be, on
//!   purpose: a sim that is too strict fails loudly, one that is too lax hides bugs);
//!   lengths 63 (objects, rules, device groups, templates), 31 (static routes), 127 (tags, any
//!   printable characters);
//! - zones and interfaces are not resolved (they live in templates; facts §7 [inferred]).

use super::response::ApiError;
use super::xml_tree::{Key, Node};
use std::net::IpAddr;

/// Where an object lives.
#[derive(Clone, Debug, PartialEq)]
pub enum Loc {
    Shared,
    Dg(String),
    /// Template or template stack firewall config (`<T>/config/devices/LD`).
    Template(String),
    Other,
}

impl Loc {
    fn label(&self) -> &str {
        match self {
            Loc::Shared => "shared",
            Loc::Dg(n) | Loc::Template(n) => n,
            Loc::Other => "config",
        }
    }
}

pub const LD: &str = "localhost.localdomain";

fn tag(k: &Key) -> &str {
    match k {
        Key::Tag(t) => t,
        Key::Entry(_) => "entry",
        Key::Member(_) => "member",
    }
}

/// Splits a key path (below `/config`) into its location and the rest.
pub fn locate(path: &[Key]) -> (Loc, usize) {
    let ld = Key::Entry(LD.into());
    if path.first() == Some(&Key::Tag("shared".into())) {
        return (Loc::Shared, 1);
    }
    if path.len() >= 4
        && path[0] == Key::Tag("devices".into())
        && path[1] == ld
        && let Key::Entry(n) = &path[3]
    {
        match tag(&path[2]) {
            "device-group" => return (Loc::Dg(n.clone()), 4),
            "template" | "template-stack" => {
                if path.len() >= 7
                    && path[4] == Key::Tag("config".into())
                    && path[5] == Key::Tag("devices".into())
                    && matches!(&path[6], Key::Entry(_))
                {
                    return (Loc::Template(n.clone()), 7);
                }
                return (Loc::Other, 0);
            }
            _ => {}
        }
    }
    (Loc::Other, 0)
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Address,
    AddressGroup,
    Service,
    ServiceGroup,
    Tag,
    NatRule,
    SecurityRule,
    StaticRoute,
    DeviceGroup,
    Template,
    TemplateStack,
}

/// If `path` names an object entry, its kind and location.
pub fn classify(path: &[Key]) -> Option<(Kind, Loc)> {
    let ld = Key::Entry(LD.into());
    if path.len() == 4 && path[0] == Key::Tag("devices".into()) && path[1] == ld && matches!(path[3], Key::Entry(_)) {
        let k = match tag(&path[2]) {
            "device-group" => Kind::DeviceGroup,
            "template" => Kind::Template,
            "template-stack" => Kind::TemplateStack,
            _ => return None,
        };
        return Some((k, Loc::Other));
    }
    let (loc, i) = locate(path);
    if loc == Loc::Other || !matches!(path.last(), Some(Key::Entry(_))) {
        return None;
    }
    let rest: Vec<&str> = path[i..].iter().map(tag).collect();
    let kind = match (&loc, rest.as_slice()) {
        (Loc::Shared | Loc::Dg(_), ["address", "entry"]) => Kind::Address,
        (Loc::Shared | Loc::Dg(_), ["address-group", "entry"]) => Kind::AddressGroup,
        (Loc::Shared | Loc::Dg(_), ["service", "entry"]) => Kind::Service,
        (Loc::Shared | Loc::Dg(_), ["service-group", "entry"]) => Kind::ServiceGroup,
        (Loc::Shared | Loc::Dg(_), ["tag", "entry"]) => Kind::Tag,
        (Loc::Shared | Loc::Dg(_), ["pre-rulebase" | "post-rulebase", "nat", "rules", "entry"]) => Kind::NatRule,
        (Loc::Shared | Loc::Dg(_), ["pre-rulebase" | "post-rulebase", "security", "rules", "entry"]) => Kind::SecurityRule,
        (Loc::Template(_), ["network", "virtual-router", "entry", "routing-table", "ip", "static-route", "entry"]) => Kind::StaticRoute,
        _ => return None,
    };
    Some((kind, loc))
}

/// Xpaths that do not exist in Panorama's schema (facts §3, §7): a device group's plain
/// `rulebase`, and firewall-only trees (`vsys`, `network`) directly under Panorama's own device.
pub fn check_schema_path(path_tags: &[(String, Option<String>)], xpath: &str) -> Result<(), ApiError> {
    let t: Vec<&str> = path_tags.iter().map(|(t, _)| t.as_str()).collect();
    let bad = match t.as_slice() {
        ["config", "devices", "entry", "device-group", "entry", "rulebase", ..] => true,
        ["config", "devices", "entry", "vsys" | "network", ..] => true,
        ["config", "shared", "rulebase", ..] => true,
        _ => false,
    };
    if bad {
        return Err(ApiError { code: Some(12), lines: vec![format!("Could not find schema node for xpath {xpath}")], cdata: false });
    }
    Ok(())
}

pub fn check_name(name: &str, max: usize, strict_chars: bool) -> Result<(), String> {
    let len = name.chars().count();
    if len == 0 {
        return Err("name cannot be empty".into());
    }
    if len > max {
        return Err(format!("'{name}' can be at most {max} characters, but current length: {len}"));
    }
    if strict_chars {
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        if !first_ok || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._- ".contains(c)) {
            return Err(format!(
                "'{name}' is not a valid name: use letters, digits, spaces, hyphens, underscores and periods, starting with a letter or digit"
            ));
        }
    } else if name.chars().any(|c| c.is_control()) {
        return Err(format!("'{name}' contains control characters"));
    }
    Ok(())
}

fn is_ip_or_cidr(s: &str) -> bool {
    let (ip, mask) = match s.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (s, None),
    };
    match ip.parse::<IpAddr>() {
        Ok(a) => match mask {
            None => true,
            Some(m) => m.parse::<u8>().is_ok_and(|m| m <= if a.is_ipv4() { 32 } else { 128 }),
        },
        Err(_) => false,
    }
}

fn is_ip_range(s: &str) -> bool {
    s.split_once('-').is_some_and(|(a, b)| a.parse::<IpAddr>().is_ok() && b.parse::<IpAddr>().is_ok())
}

/// Literal address values that need no object (rule members, translated addresses).
fn is_address_literal(s: &str) -> bool {
    is_ip_or_cidr(s) || is_ip_range(s)
}

fn valid_ports(s: &str) -> bool {
    let p = |x: &str| x.parse::<u32>().is_ok_and(|v| (1..=65535).contains(&v));
    !s.is_empty()
        && s.len() <= 1023
        && s.split(',').all(|part| match part.split_once('-') {
            Some((a, b)) => p(a) && p(b) && a.parse::<u32>().unwrap() <= b.parse::<u32>().unwrap(),
            None => p(part),
        })
}

/// Device-group parent from `/config/readonly/devices/LD/device-group/entry[@name=dg]/parent-dg`
/// (where Panorama keeps the hierarchy).
pub(crate) fn parent_dg(root: &Node, dg: &str) -> Option<String> {
    root.descend(&["readonly", "devices"])?
        .entry_child(LD)?
        .child("device-group")?
        .entry_child(dg)?
        .child("parent-dg")
        .map(|p| p.text.clone())
        .filter(|t| !t.is_empty())
}

/// The object containers visible from `loc`: the DG, its ancestors, then shared.
fn scopes<'a>(root: &'a Node, loc: &Loc) -> Vec<&'a Node> {
    let mut out = Vec::new();
    if let Loc::Dg(dg) = loc {
        let mut cur = Some(dg.clone());
        let mut depth = 0;
        while let Some(name) = cur {
            if depth > 16 {
                break;
            }
            if let Some(n) = root
                .descend(&["devices"])
                .and_then(|d| d.entry_child(LD))
                .and_then(|d| d.child("device-group"))
                .and_then(|d| d.entry_child(&name))
            {
                out.push(n);
            }
            cur = parent_dg(root, &name);
            depth += 1;
        }
    }
    if let Some(s) = root.child("shared") {
        out.push(s);
    }
    out
}

fn resolves(root: &Node, loc: &Loc, containers: &[&str], name: &str) -> bool {
    scopes(root, loc).iter().any(|s| containers.iter().any(|c| s.child(c).and_then(|c| c.entry_child(name)).is_some()))
}

const PREDEFINED_SERVICES: [&str; 2] = ["service-http", "service-https"];

struct Ctx<'a> {
    root: &'a Node,
    loc: &'a Loc,
    prefix: String,
    errs: Vec<String>,
}

impl Ctx<'_> {
    fn err(&mut self, msg: String) {
        self.errs.push(format!("{} -> {}", self.prefix, msg));
    }
    fn tags(&mut self, n: &Node) {
        if let Some(t) = n.child("tag") {
            for m in t.members() {
                if !resolves(self.root, self.loc, &["tag"], m) {
                    self.err(format!("tag '{m}' is not a valid reference"));
                    self.err("tag is invalid".into());
                }
            }
        }
    }
    fn max_len(&mut self, n: &Node, field: &str, max: usize) {
        if let Some(c) = n.child(field)
            && c.text.chars().count() > max
        {
            self.err(format!("{field} can be at most {max} characters, but current length: {}", c.text.chars().count()));
        }
    }
    fn addr_ref(&mut self, field: &str, v: &str) {
        if v == "any" || is_address_literal(v) || resolves(self.root, self.loc, &["address", "address-group"], v) {
            return;
        }
        self.err(format!("{field} '{v}' is not a valid reference"));
        self.err(format!("{field} is invalid"));
    }
    fn addr_members(&mut self, n: &Node, field: &str, required: bool) {
        match n.child(field) {
            None if required => self.err(format!("is missing '{field}'")),
            None => {}
            Some(c) => {
                let ms = c.members();
                if ms.is_empty() && required {
                    self.err(format!("is missing '{field}'"));
                }
                for m in ms {
                    self.addr_ref(field, m);
                }
            }
        }
    }
    fn service_ref(&mut self, field: &str, v: &str, allow_app_default: bool) {
        if v == "any"
            || (allow_app_default && v == "application-default")
            || PREDEFINED_SERVICES.contains(&v)
            || resolves(self.root, self.loc, &["service", "service-group"], v)
        {
            return;
        }
        self.err(format!("{field} '{v}' is not a valid reference"));
        self.err(format!("{field} is invalid"));
    }
}

fn one_of<'a>(n: &'a Node, options: &[&'a str]) -> Vec<&'a str> {
    options.iter().copied().filter(|o| n.child(o).is_some()).collect()
}

/// Validates one object entry at `path` in `root`.
pub fn validate_object(root: &Node, path: &[Key], kind: Kind, loc: &Loc) -> Vec<String> {
    let Some(n) = root.get_path(path) else { return vec![] };
    let name = n.name().unwrap_or_default().to_string();
    let container = match kind {
        Kind::Address => "address",
        Kind::AddressGroup => "address-group",
        Kind::Service => "service",
        Kind::ServiceGroup => "service-group",
        Kind::Tag => "tag",
        Kind::NatRule => "nat -> rules",
        Kind::SecurityRule => "security -> rules",
        Kind::StaticRoute => "static-route",
        Kind::DeviceGroup => "device-group",
        Kind::Template => "template",
        Kind::TemplateStack => "template-stack",
    };
    let mut rb = String::new();
    if matches!(kind, Kind::NatRule | Kind::SecurityRule) {
        let (_, i) = locate(path);
        rb = format!("{} -> ", path[i].label());
    }
    let mut cx = Ctx { root, loc, prefix: format!("{} -> {rb}{container} -> {name}", loc.label()), errs: vec![] };
    let (max, strict) = match kind {
        Kind::Tag => (127, false),
        Kind::StaticRoute => (31, true),
        _ => (63, true),
    };
    if let Err(e) = check_name(&name, max, strict) {
        cx.errs.push(format!("{} -> {container} -> {e}", loc.label()));
        cx.errs.push(format!("{} -> {container} is invalid", loc.label()));
        return cx.errs;
    }
    match kind {
        Kind::Address => {
            let types = one_of(n, &["ip-netmask", "ip-range", "ip-wildcard", "fqdn"]);
            match types.as_slice() {
                [] => cx.err("is missing 'ip-netmask'".into()),
                [t] => {
                    let v = &n.child(t).unwrap().text;
                    let ok = match *t {
                        "ip-netmask" => is_ip_or_cidr(v),
                        "ip-range" => is_ip_range(v),
                        "fqdn" => !v.is_empty() && v.len() <= 255 && !v.contains(char::is_whitespace),
                        _ => !v.is_empty(),
                    };
                    if !ok {
                        cx.err(format!("{t} '{v}' is invalid"));
                    }
                }
                [a, b, ..] => cx.err(format!("Node {a} and {b} are mutually exclusive")),
            }
            cx.max_len(n, "description", 1023);
            cx.tags(n);
        }
        Kind::Service => {
            match n.child("protocol") {
                None => cx.err("is missing 'protocol'".into()),
                Some(p) => match one_of(p, &["tcp", "udp", "sctp"]).as_slice() {
                    [] => cx.err("protocol is missing 'tcp'".into()),
                    [t] => match p.child(t).unwrap().child("port") {
                        None => cx.err(format!("protocol -> {t} is missing 'port'")),
                        Some(port) if !valid_ports(&port.text) => cx.err(format!("protocol -> {t} -> port '{}' is invalid", port.text)),
                        _ => {}
                    },
                    [a, b, ..] => cx.err(format!("protocol -> Node {a} and {b} are mutually exclusive")),
                },
            }
            cx.max_len(n, "description", 1023);
            cx.tags(n);
        }
        Kind::Tag => {
            if let Some(c) = n.child("color") {
                let ok = c.text.strip_prefix("color").and_then(|x| x.parse::<u32>().ok()).is_some_and(|x| (1..=42).contains(&x) && x != 18);
                if !ok {
                    cx.err(format!("color '{}' is not a valid value", c.text));
                }
            }
            cx.max_len(n, "comments", 1023);
        }
        Kind::AddressGroup => {
            if let Some(st) = n.child("static") {
                for m in st.members() {
                    if !resolves(root, loc, &["address", "address-group"], m) {
                        cx.err(format!("static '{m}' is not a valid reference"));
                    }
                }
            }
            cx.tags(n);
        }
        Kind::ServiceGroup => {
            if let Some(ms) = n.child("members") {
                for m in ms.members() {
                    cx.service_ref("members", m, false);
                }
            }
            cx.tags(n);
        }
        Kind::NatRule => {
            for f in ["from", "to"] {
                match n.child(f).map(|c| c.members()) {
                    None => cx.err(format!("is missing '{f}'")),
                    Some(v) if v.is_empty() => cx.err(format!("is missing '{f}'")),
                    _ => {}
                }
            }
            let nat_type = n.child("nat-type").map(|c| c.text.as_str()).unwrap_or("ipv4");
            if nat_type == "ipv4" && n.child("to").is_some_and(|t| t.members().len() > 1) {
                cx.err("to: only one destination zone is allowed for an ipv4 NAT rule".into());
                cx.err("to is invalid".into());
            }
            cx.addr_members(n, "source", true);
            cx.addr_members(n, "destination", true);
            if let Some(s) = n.child("service") {
                if !s.children.is_empty() {
                    cx.err("service unexpected here: service is a single value, not a member list".into());
                } else if !s.text.is_empty() {
                    let v = s.text.clone();
                    cx.service_ref("service", &v, false);
                }
            }
            let st = n.child("destination-translation");
            let dy = n.child("dynamic-destination-translation");
            if st.is_some() && dy.is_some() {
                cx.err("Node destination-translation and dynamic-destination-translation are mutually exclusive".into());
            }
            for (field, t) in [("destination-translation", st), ("dynamic-destination-translation", dy)] {
                if let Some(t) = t {
                    match t.child("translated-address") {
                        None => cx.err(format!("{field} is missing 'translated-address'")),
                        Some(a) => {
                            let v = a.text.clone();
                            if v != "any" {
                                cx.addr_ref(&format!("{field} -> translated-address"), &v);
                            }
                        }
                    }
                    if let Some(p) = t.child("translated-port")
                        && !p.text.parse::<u32>().is_ok_and(|v| (1..=65535).contains(&v))
                    {
                        cx.err(format!("{field} -> translated-port '{}' is invalid", p.text));
                    }
                    if let Some(d) = t.child("distribution")
                        && !["round-robin", "source-ip-hash", "ip-modulo", "ip-hash", "least-sessions"].contains(&d.text.as_str())
                    {
                        cx.err(format!("{field} -> distribution '{}' is not a valid value", d.text));
                    }
                }
            }
            if let Some(srct) = n.child("source-translation") {
                for variant in srct.children.values() {
                    if let Some(ta) = variant.child("translated-address") {
                        let vals: Vec<String> = if ta.children.is_empty() {
                            vec![ta.text.clone()]
                        } else {
                            ta.members().into_iter().map(String::from).collect()
                        };
                        for v in vals {
                            cx.addr_ref(&format!("source-translation -> {} -> translated-address", variant.tag), &v);
                        }
                    }
                }
            }
            cx.max_len(n, "description", 1024);
            cx.tags(n);
        }
        Kind::SecurityRule => {
            cx.addr_members(n, "source", true);
            cx.addr_members(n, "destination", true);
            if let Some(s) = n.child("service") {
                for m in s.members() {
                    cx.service_ref("service", m, true);
                }
            }
            cx.max_len(n, "description", 1024);
            cx.tags(n);
        }
        Kind::StaticRoute => {
            match n.child("destination") {
                None => cx.err("is missing 'destination'".into()),
                Some(d) if !is_ip_or_cidr(&d.text) => cx.err(format!("destination '{}' is invalid", d.text)),
                _ => {}
            }
            if let Some(nh) = n.child("nexthop") {
                let v = one_of(nh, &["ip-address", "ipv6-address", "discard", "next-vr", "fqdn", "receive"]);
                if v.len() > 1 {
                    cx.err(format!("nexthop -> Node {} and {} are mutually exclusive", v[0], v[1]));
                }
                if let Some(ip) = nh.child("ip-address")
                    && !is_ip_or_cidr(&ip.text)
                    && !resolves(root, loc, &["address"], &ip.text)
                {
                    cx.err(format!("nexthop -> ip-address '{}' is invalid", ip.text));
                }
            }
            if let Some(m) = n.child("metric")
                && !m.text.parse::<u32>().is_ok_and(|v| (1..=65535).contains(&v))
            {
                cx.err(format!("metric '{}' is invalid", m.text));
            }
        }
        Kind::DeviceGroup | Kind::Template | Kind::TemplateStack => {
            if kind == Kind::DeviceGroup && n.child("rulebase").is_some() {
                cx.err("rulebase unexpected here".into());
            }
        }
    }
    if !cx.errs.is_empty() {
        cx.errs.push(format!("{} is invalid", cx.prefix));
    }
    cx.errs
}

/// Validates every object at or under, or enclosing, each written path.
pub fn validate_paths(root: &Node, written: &[Vec<Key>]) -> Result<(), ApiError> {
    let mut errs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in written {
        // The enclosing object, if the write landed inside one (e.g. an edit of .../fqdn).
        let mut enclosing = false;
        for l in (1..=p.len()).rev() {
            if let Some((k, loc)) = classify(&p[..l]) {
                if seen.insert(p[..l].to_vec()) {
                    errs.extend(validate_object(root, &p[..l], k, &loc));
                }
                enclosing = true;
                // A DG/template entry itself encloses objects; keep walking into the subtree.
                if !matches!(k, Kind::DeviceGroup | Kind::Template | Kind::TemplateStack) {
                    break;
                }
            }
        }
        let _ = enclosing;
        // Objects below the written node (set of a container or a whole DG).
        if let Some(n) = root.get_path(p) {
            let mut stack: Vec<(Vec<Key>, &Node)> = vec![(p.clone(), n)];
            while let Some((path, node)) = stack.pop() {
                for (k, c) in &node.children {
                    if c.children.is_empty() && c.tag != "entry" {
                        continue;
                    }
                    let mut cp = path.clone();
                    cp.push(k.clone());
                    if let Some((kind, loc)) = classify(&cp) {
                        if seen.insert(cp.clone()) {
                            errs.extend(validate_object(root, &cp, kind, &loc));
                        }
                        if !matches!(kind, Kind::DeviceGroup | Kind::Template | Kind::TemplateStack) {
                            continue;
                        }
                    }
                    stack.push((cp, c));
                }
            }
        }
        if errs.len() > 50 {
            break;
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(ApiError::validation(errs)) }
}

//! Managed firewalls with a data plane of their own (issue 15): what each device accepted from
//! its last successful push, and the op commands a device answers from it (`target=SERIAL`).
//! Evidence and the strictest readings are in sim/README.md.

use super::schema::{LD, parent_dg};
use super::xml_tree::{Node, escape};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// One data-plane interface of a firewall, as AWS discovery reports its ENI.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    pub name: String,
    pub zone: String,
    /// `A.B.C.D/len`
    pub address: String,
}

/// Device N's interfaces when the devices file gives none: untrust 10.100.N.10/24 on
/// ethernet1/1, trust 10.200.N.10/24 on ethernet1/2.
pub fn default_interfaces(n: usize) -> Vec<Interface> {
    let n = n % 256;
    vec![
        Interface { name: "ethernet1/1".into(), zone: "untrust".into(), address: format!("10.100.{n}.10/24") },
        Interface { name: "ethernet1/2".into(), zone: "trust".into(), address: format!("10.200.{n}.10/24") },
    ]
}

/// What one device last accepted, and what `show devices` says about it.
#[derive(Clone, Debug, Default)]
pub struct DeviceRun {
    /// vsys1 entry: merged objects and the flattened rulebase (evaluation order).
    pub policy: Option<Node>,
    /// The device's `entry[@name=LD]` from its template stack (network, vsys zones).
    pub template: Option<Node>,
    pub policy_status: &'static str,
    pub template_status: &'static str,
}

impl DeviceRun {
    /// Firewall-shaped running config (`GET /_sim/devices/SERIAL/running`).
    pub fn running_xml(&self) -> String {
        if self.policy.is_none() && self.template.is_none() {
            return "<config/>".into();
        }
        let mut ld = self.template.clone().unwrap_or_else(|| Node::entry(LD));
        if let Some(p) = &self.policy {
            let vsys = ld.ensure("vsys");
            let mut v = vsys.entry_child("vsys1").cloned().unwrap_or_else(|| Node::entry("vsys1"));
            merge(&mut v, p);
            vsys.put(v);
        }
        let mut devices = Node::new("devices");
        devices.put(ld);
        let mut cfg = Node::new("config");
        cfg.put(devices);
        cfg.to_xml()
    }

    /// md5-like digest of the policy part (stable hex of a FNV-1a hash; the product only
    /// compares it for change).
    pub fn policy_digest(&self) -> String {
        let Some(p) = &self.policy else { return String::new() };
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in p.to_xml().bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        format!("{h:016x}{:016x}", h.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15)
    }
}

/// Recursive merge: children of `src` replace or extend those of `dst`, containers merge.
fn merge(dst: &mut Node, src: &Node) {
    for (k, c) in &src.children {
        match dst.children.get_mut(k) {
            Some(d) if !c.children.is_empty() && !d.children.is_empty() => merge(d, c),
            _ => {
                dst.children.insert(k.clone(), c.clone());
            }
        }
    }
}

fn dg_node<'a>(root: &'a Node, dg: &str) -> Option<&'a Node> {
    root.child("devices")?.entry_child(LD)?.child("device-group")?.entry_child(dg)
}

/// Policy scopes of `dg` in PAN-OS order: shared, outermost parent … the device group.
fn chain<'a>(root: &'a Node, dg: &str) -> Vec<&'a Node> {
    let mut names = vec![dg.to_string()];
    while let Some(p) = parent_dg(root, names.last().expect("non-empty")) {
        if names.contains(&p) || names.len() > 64 {
            break;
        }
        names.push(p);
    }
    let mut out: Vec<&Node> = root.child("shared").into_iter().collect();
    out.extend(names.iter().rev().filter_map(|n| dg_node(root, n)));
    out
}

const OBJECT_KINDS: [&str; 5] = ["tag", "address", "address-group", "service", "service-group"];

/// What a push of `dg` gives a device: objects (nearer scope wins on a name) and each rulebase
/// flattened as pre (shared → DG) then post (DG → shared).
pub fn policy_snapshot(root: &Node, dg: &str) -> Node {
    let scopes = chain(root, dg);
    let mut v = Node::entry("vsys1");
    for kind in OBJECT_KINDS {
        let mut c = Node::new(kind);
        for s in &scopes {
            for e in s.child(kind).map(|k| k.entries().collect::<Vec<_>>()).unwrap_or_default() {
                c.put(e.clone());
            }
        }
        v.put(c);
    }
    let rb = v.ensure("rulebase");
    for kind in ["security", "nat"] {
        let mut rules = Node::new("rules");
        let pre = scopes.iter().filter_map(|s| s.descend(&["pre-rulebase", kind, "rules"]));
        let post = scopes.iter().rev().filter_map(|s| s.descend(&["post-rulebase", kind, "rules"]));
        for r in pre.chain(post) {
            for e in r.entries() {
                if rules.entry_child(e.name().unwrap_or_default()).is_none() {
                    rules.put(e.clone());
                }
            }
        }
        rb.ensure(kind).put(rules);
    }
    v
}

/// What a push of a template stack (or one template) gives a device: templates merged, the
/// first listed winning.
pub fn template_snapshot(root: &Node, container: &str, name: &str) -> Option<Node> {
    let ld = root.child("devices")?.entry_child(LD)?;
    let templates: Vec<String> = if container == "template-stack" {
        let s = ld.child("template-stack")?.entry_child(name)?;
        s.child("templates").map(|t| t.members().into_iter().map(String::from).collect()).unwrap_or_default()
    } else {
        vec![name.to_string()]
    };
    let mut out = Node::entry(LD);
    for t in templates.iter().rev() {
        if let Some(c) = ld.child("template").and_then(|x| x.entry_child(t)).and_then(|x| x.descend(&["config", "devices"]))
            && let Some(e) = c.entry_child(LD)
        {
            merge(&mut out, e);
        }
    }
    Some(out)
}

/// `A.B.C.D/len` or a bare address (/32).
pub fn parse_cidr(s: &str) -> Option<(u32, u8)> {
    let (a, l) = s.trim().split_once('/').unwrap_or((s.trim(), "32"));
    let ip: Ipv4Addr = a.parse().ok()?;
    let l: u8 = l.parse().ok().filter(|l| *l <= 32)?;
    Some((u32::from(ip), l))
}

fn mask(l: u8) -> u32 {
    if l == 0 { 0 } else { u32::MAX << (32 - l) }
}

fn in_net(ip: u32, (net, l): (u32, u8)) -> bool {
    ip & mask(l) == net & mask(l)
}

/// One FIB answer.
#[derive(Debug, PartialEq)]
pub struct Fib {
    pub interface: String,
    /// Next hop, `None` for a connected route.
    pub next_hop: Option<Ipv4Addr>,
    pub src: Ipv4Addr,
    pub metric: u32,
    pub prefix: String,
}

/// Longest-prefix lookup over connected routes (the interfaces) and the template's static
/// routes whose next hop lies on a connected subnet.
pub fn fib_lookup(ifaces: &[Interface], template: Option<&Node>, ip: Ipv4Addr) -> Option<Fib> {
    let ip = u32::from(ip);
    let connected: Vec<(&Interface, (u32, u8))> = ifaces.iter().filter_map(|i| Some((i, parse_cidr(&i.address)?))).collect();
    let mut best: Option<(u8, Fib)> = None;
    let mut offer = |l: u8, f: Fib| {
        if best.as_ref().is_none_or(|(bl, _)| l > *bl) {
            best = Some((l, f));
        }
    };
    for (i, net) in &connected {
        if in_net(ip, *net) {
            let p = Ipv4Addr::from(net.0 & mask(net.1));
            offer(
                net.1,
                Fib { interface: i.name.clone(), next_hop: None, src: Ipv4Addr::from(net.0), metric: 0, prefix: format!("{p}/{}", net.1) },
            );
        }
    }
    let routes = template
        .and_then(|t| t.descend(&["network", "virtual-router"]))
        .map(|vr| {
            vr.entries().filter_map(|e| e.descend(&["routing-table", "ip", "static-route"])).flat_map(|s| s.entries()).collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for r in routes {
        let Some(dst) = r.child("destination").and_then(|d| parse_cidr(&d.text)) else { continue };
        let Some(nh) = r.descend(&["nexthop", "ip-address"]).and_then(|n| n.text.trim().parse::<Ipv4Addr>().ok()) else { continue };
        // Active only when the next hop is on a connected subnet.
        let Some((i, net)) = connected.iter().find(|(_, net)| in_net(u32::from(nh), *net)) else { continue };
        if in_net(ip, dst) {
            let metric = r.child("metric").and_then(|m| m.text.trim().parse().ok()).unwrap_or(10);
            let p = Ipv4Addr::from(dst.0 & mask(dst.1));
            offer(
                dst.1,
                Fib { interface: i.name.clone(), next_hop: Some(nh), src: Ipv4Addr::from(net.0), metric, prefix: format!("{p}/{}", dst.1) },
            );
        }
    }
    best.map(|(_, f)| f)
}

/// `test security-policy-match` criteria.
#[derive(Debug, Default)]
pub struct Packet {
    pub from: Option<String>,
    pub to: Option<String>,
    pub source: u32,
    pub destination: u32,
    pub protocol: u8,
    pub port: Option<u16>,
    /// `<application>`, when the query names one.
    pub application: Option<String>,
}

impl Packet {
    /// From the command's `<security-policy-match>`/`<nat-policy-match>` element.
    pub fn parse(m: &Node) -> Result<Packet, String> {
        let text = |t: &str| m.child(t).map(|c| c.text.trim().to_string()).filter(|s| !s.is_empty());
        let ip = |t: &str| -> Result<u32, String> {
            let v = text(t).ok_or_else(|| format!("{t} is missing"))?;
            v.parse::<Ipv4Addr>().map(u32::from).map_err(|_| format!("{t} {v} is not an IPv4 address"))
        };
        let protocol = text("protocol").ok_or("protocol is missing")?;
        Ok(Packet {
            from: text("from"),
            to: text("to"),
            source: ip("source")?,
            destination: ip("destination")?,
            protocol: protocol.parse().map_err(|_| format!("protocol {protocol} is invalid"))?,
            port: match text("destination-port") {
                Some(p) => Some(p.parse().map_err(|_| format!("destination-port {p} is invalid"))?),
                None => None,
            },
            application: text("application"),
        })
    }
}

/// Evaluates addresses and services against one device's objects.
pub struct Matcher<'a> {
    objs: &'a Node,
    dns: &'a BTreeMap<String, Vec<String>>,
}

impl<'a> Matcher<'a> {
    pub fn new(objs: &'a Node, dns: &'a BTreeMap<String, Vec<String>>) -> Self {
        Matcher { objs, dns }
    }

    fn obj(&self, kind: &str, name: &str) -> Option<&'a Node> {
        self.objs.child(kind)?.entry_child(name)
    }

    /// The FQDNs of this device's address objects with what each resolves to now.
    pub fn fqdns(&self) -> Vec<(String, Vec<String>)> {
        let Some(a) = self.objs.child("address") else { return vec![] };
        a.entries()
            .filter_map(|e| e.child("fqdn"))
            .map(|f| (f.text.trim().to_string(), self.dns.get(f.text.trim()).cloned().unwrap_or_default()))
            .collect()
    }

    fn address(&self, name: &str, ip: u32, depth: u8) -> bool {
        if name == "any" {
            return true;
        }
        if depth > 16 {
            return false;
        }
        if let Some(a) = self.obj("address", name) {
            if let Some(n) = a.child("ip-netmask").and_then(|n| parse_cidr(&n.text)) {
                return in_net(ip, n);
            }
            if let Some((lo, hi)) = a.child("ip-range").and_then(|r| r.text.split_once('-')) {
                let (Ok(lo), Ok(hi)) = (lo.trim().parse::<Ipv4Addr>(), hi.trim().parse::<Ipv4Addr>()) else { return false };
                return (u32::from(lo)..=u32::from(hi)).contains(&ip);
            }
            if let Some(f) = a.child("fqdn") {
                let ips = self.dns.get(f.text.trim()).map(|v| v.as_slice()).unwrap_or_default();
                return ips.iter().any(|s| s.parse::<Ipv4Addr>().is_ok_and(|x| u32::from(x) == ip));
            }
            return false;
        }
        if let Some(g) = self.obj("address-group", name) {
            if let Some(s) = g.child("static") {
                return s.members().iter().any(|m| self.address(m, ip, depth + 1));
            }
            if let Some(f) = g.descend(&["dynamic", "filter"]) {
                let Some(addrs) = self.objs.child("address") else { return false };
                return addrs
                    .entries()
                    .filter(|a| tag_filter(&f.text, &a.child("tag").map(|t| t.members()).unwrap_or_default()))
                    .any(|a| self.address(a.name().unwrap_or_default(), ip, depth + 1));
            }
            return false;
        }
        // A literal address, range or network in the rule.
        if let Some((lo, hi)) = name.split_once('-')
            && let (Ok(lo), Ok(hi)) = (lo.parse::<Ipv4Addr>(), hi.parse::<Ipv4Addr>())
        {
            return (u32::from(lo)..=u32::from(hi)).contains(&ip);
        }
        parse_cidr(name).is_some_and(|n| in_net(ip, n))
    }

    fn service(&self, name: &str, proto: u8, port: Option<u16>, depth: u8) -> bool {
        let ports_match = |spec: &str| match port {
            None => true,
            Some(p) => spec.split(',').any(|s| match s.trim().split_once('-') {
                Some((a, b)) => a.trim().parse::<u16>().is_ok_and(|a| a <= p) && b.trim().parse::<u16>().is_ok_and(|b| p <= b),
                None => s.trim().parse::<u16>() == Ok(p),
            }),
        };
        match name {
            // [strictest plausible] application is not modelled: application-default matches
            // any port of tcp/udp.
            "any" | "application-default" => return true,
            "service-http" => return proto == 6 && ports_match("80,8080"),
            "service-https" => return proto == 6 && ports_match("443"),
            _ => {}
        }
        if depth > 16 {
            return false;
        }
        if let Some(s) = self.obj("service", name) {
            for (p, n) in [("tcp", 6u8), ("udp", 17u8)] {
                if let Some(x) = s.descend(&["protocol", p, "port"]) {
                    return proto == n && ports_match(&x.text);
                }
            }
            return false;
        }
        if let Some(g) = self.obj("service-group", name) {
            return g.child("members").map(|m| m.members()).unwrap_or_default().iter().any(|m| self.service(m, proto, port, depth + 1));
        }
        false
    }

    fn addr_list(&self, rule: &Node, tag: &str, ip: u32) -> bool {
        let m = rule.child(tag).map(|c| c.members()).unwrap_or_default();
        let hit = m.iter().any(|a| self.address(a, ip, 0));
        let negate = rule.child(&format!("negate-{tag}")).is_some_and(|n| n.text.trim() == "yes");
        hit != negate
    }

    fn zones(rule: &Node, tag: &str, zone: Option<&str>) -> bool {
        let m = rule.child(tag).map(|c| c.members()).unwrap_or_default();
        match zone {
            None => true,
            Some(z) => m.iter().any(|x| *x == "any" || *x == z),
        }
    }

    /// First enabled security rule (1-based index in evaluation order) matching `p`.
    pub fn security<'r>(&self, rules: &'r Node, p: &Packet) -> Option<(usize, &'r Node)> {
        rules.entries().enumerate().map(|(i, r)| (i + 1, r)).find(|(_, r)| {
            r.child("disabled").is_none_or(|d| d.text.trim() != "yes")
                && Self::zones(r, "from", p.from.as_deref())
                && Self::zones(r, "to", p.to.as_deref())
                && self.addr_list(r, "source", p.source)
                && self.addr_list(r, "destination", p.destination)
                && r.child("service").map(|s| s.members()).unwrap_or_default().iter().any(|s| self.service(s, p.protocol, p.port, 0))
                && Self::application(r, p.application.as_deref())
        })
    }

    /// A query naming an application matches rules listing it or `any`; one naming none is
    /// matched on the other criteria only [inferred, no public fixture either way: `application`
    /// is an optional criterion of the command, like the others left out; see sim/README.md].
    fn application(rule: &Node, app: Option<&str>) -> bool {
        let listed = rule.child("application").map(|c| c.members()).unwrap_or_default();
        match app {
            None => true,
            Some(a) => listed.is_empty() || listed.iter().any(|x| *x == "any" || *x == a),
        }
    }
}

/// First enabled NAT rule matching the pre-NAT packet: from zone, to zone (the zone of the
/// pre-NAT destination by FIB when not given), `to-interface`, addresses and the one service.
pub fn nat<'r>(m: &Matcher, rules: &'r Node, p: &Packet, to_interface: Option<&str>) -> Option<(usize, &'r Node)> {
    rules.entries().enumerate().map(|(i, r)| (i + 1, r)).find(|(_, r)| {
        let leaf = |t: &str| r.child(t).map(|c| c.text.trim()).filter(|t| !t.is_empty()).unwrap_or("any");
        r.child("disabled").is_none_or(|d| d.text.trim() != "yes")
            && Matcher::zones(r, "from", p.from.as_deref())
            && Matcher::zones(r, "to", p.to.as_deref())
            && (leaf("to-interface") == "any" || to_interface.is_none_or(|i| i == leaf("to-interface")))
            && m.addr_list(r, "source", p.source)
            && m.addr_list(r, "destination", p.destination)
            && m.service(leaf("service"), p.protocol, p.port, 0)
    })
}

/// The zone of the interface `ip` routes out of on this device.
pub fn zone_of(ifaces: &[Interface], template: Option<&Node>, ip: u32) -> Option<String> {
    let f = fib_lookup(ifaces, template, Ipv4Addr::from(ip))?;
    ifaces.iter().find(|i| i.name == f.interface).map(|i| i.zone.clone())
}

/// The `<result>` body of a `test nat-policy-match` answer: `<entry>NAME; index: N</entry>`
/// (the form pan-os-ansible's match module splits on `;`), empty `<rules/>` for no match.
pub fn nat_answer(hit: Option<(usize, &Node)>) -> String {
    match hit {
        Some((i, r)) => format!("<rules><entry>{}; index: {i}</entry></rules>", escape(r.name().unwrap_or_default())),
        None => "<rules/>".into(),
    }
}

/// A dynamic address group filter like `'a' and 'b'` or `a or b` against an object's tags.
fn tag_filter(filter: &str, tags: &[&str]) -> bool {
    filter.split(" or ").any(|alt| {
        alt.split(" and ").all(|t| {
            let t = t.trim().trim_matches(|c| c == '(' || c == ')').trim().trim_matches(|c| c == '\'' || c == '"');
            tags.contains(&t)
        })
    })
}

/// The `<result>` body of a `test security-policy-match` answer (pan-os-python's newer form).
pub fn security_answer(hit: Option<(usize, &Node)>, p: &Packet) -> String {
    match hit {
        Some((i, r)) => {
            let name = escape(r.name().unwrap_or_default());
            let action = escape(r.child("action").map(|a| a.text.trim()).unwrap_or("allow"));
            format!("<rules><entry name=\"{name}\"><index>{i}</index><action>{action}</action></entry></rules>")
        }
        None => {
            let intra = p.from.is_some() && p.from == p.to;
            let (name, action) = if intra { ("intrazone-default", "allow") } else { ("interzone-default", "deny") };
            format!("<rules><entry name=\"{name}\"><index>0</index><action>{action}</action></entry></rules>")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fib_longest_prefix_and_inactive_static_routes() {
        let ifs = default_interfaces(1);
        let t = super::super::xml_tree::parse_one(
            "<entry name=\"localhost.localdomain\"><network><virtual-router><entry name=\"default\"><routing-table><ip><static-route>\
<entry name=\"vpc\"><destination>10.0.0.0/8</destination><nexthop><ip-address>10.200.1.1</ip-address></nexthop></entry>\
<entry name=\"k8s\"><destination>10.50.0.0/16</destination><nexthop><ip-address>10.200.1.1</ip-address></nexthop></entry>\
<entry name=\"off\"><destination>10.60.0.0/16</destination><nexthop><ip-address>192.168.9.1</ip-address></nexthop></entry>\
</static-route></ip></routing-table></entry></virtual-router></network></entry>",
        )
        .unwrap();
        let look = |ip: &str| fib_lookup(&ifs, Some(&t), ip.parse().unwrap());
        // connected /24 beats the /8 static route
        assert_eq!(look("10.200.1.77").unwrap().next_hop, None);
        assert_eq!(look("10.200.1.77").unwrap().interface, "ethernet1/2");
        // /16 beats /8
        assert_eq!(look("10.50.3.4").unwrap().prefix, "10.50.0.0/16");
        // next hop off the connected subnets: route inactive, falls back to the /8
        assert_eq!(look("10.60.3.4").unwrap().prefix, "10.0.0.0/8");
        assert!(look("192.0.2.1").is_none());
    }

    #[test]
    fn tag_filters() {
        assert!(tag_filter("'a' and 'b'", &["a", "b"]));
        assert!(!tag_filter("'a' and 'b'", &["a"]));
        assert!(tag_filter("a or b", &["b"]));
    }
}

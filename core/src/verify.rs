//! `pano-eks verify`: what to ask each firewall about the traffic we protect, and what answer
//! proves it is protected (issue 15). Panorama accepting, committing and pushing is not proof: a
//! push can report OK while a device keeps its old config (pan-os-ansible#400), an FQDN can stay
//! unresolved, a static route can be inactive, a foreign rule can capture the port. So the
//! firewall itself is asked (its policy-match, fib-lookup and FQDN answers), and each answer is
//! judged here. Pure: the adapter (`src/panorama/verify.rs`) sends the [`Query`]s and parses the
//! answers into [`Answer`]s.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::PlanSettings;
use crate::panorama::{ClusterStatus, ServiceState, ServiceStatus};

/// An internet client as the public load balancer delivers it (NLB/ALB-to-firewall traffic keeps
/// the client address, so the firewall sees an internet source). TEST-NET-2 (RFC 5737): never a
/// real peer, so no rule can be written for it by accident.
pub const INTERNET_CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
/// An internet destination for the outbound check (TEST-NET-3, RFC 5737).
pub const INTERNET_SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
/// HTTPS, the port outbound traffic from a cluster most commonly uses.
pub const OUTBOUND_PORT: u16 = 443;
/// IP protocol number of TCP, as the policy-match commands take it.
pub const TCP: u8 = 6;

/// One managed firewall as `show devices connected` on Panorama reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub serial: String,
    pub hostname: String,
    pub connected: bool,
    /// `vsys/entry/shared-policy-status` (`In Sync`, `Out of Sync`, …); `None` when absent.
    pub shared_policy_status: Option<String>,
    /// `template-status`; `None` when absent.
    pub template_status: Option<String>,
}

/// A layer-3 interface of a firewall as it reports it (`show interface all`, `ifnet/entry`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    pub zone: String,
    /// Address and prefix (`10.0.1.10/24`).
    pub address: Ipv4Net,
}

/// Which check a row reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// Connected, and shared policy and template in sync on Panorama's view.
    InSync,
    /// The firewall reports the untrust and trust interfaces the settings name.
    Interfaces,
    /// `test nat-policy-match` for a Service's inbound traffic hits our rule.
    InboundNat,
    /// `test security-policy-match` for the same traffic allows it.
    InboundSecurity,
    /// The firewall resolved the Service's FQDN object.
    Fqdn,
    /// `test routing fib-lookup` for a cluster subnet answers our next hop on trust.
    Route,
    /// `test nat-policy-match` from a cluster subnet to the internet hits our outbound rule.
    OutboundNat,
    /// With `[sync.security]`: inbound traffic to a port no Service claims is not allowed.
    UnclaimedDenied,
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Check::InSync => "in-sync",
            Check::Interfaces => "interfaces",
            Check::InboundNat => "inbound-nat",
            Check::InboundSecurity => "inbound-security",
            Check::Fqdn => "fqdn",
            Check::Route => "route",
            Check::OutboundNat => "outbound-nat",
            Check::UnclaimedDenied => "unclaimed-denied",
        }
    }
}

/// A question for one firewall, in PAN-OS terms (the adapter turns it into op XML).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Query {
    NatMatch {
        from: String,
        to: String,
        source: Ipv4Addr,
        destination: Ipv4Addr,
        protocol: u8,
        port: u16,
    },
    SecurityMatch {
        from: String,
        to: String,
        source: Ipv4Addr,
        destination: Ipv4Addr,
        protocol: u8,
        port: u16,
    },
    /// The device's FQDN refresh table; judged for `fqdn`.
    Fqdn {
        fqdn: String,
    },
    FibLookup {
        virtual_router: String,
        address: Ipv4Addr,
    },
}

/// What answer proves the check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Expect {
    /// The first matching rule is this one.
    Rule { name: String },
    /// The first matching rule allows.
    Allow,
    /// No rule allows: the first matching rule denies or drops, or none matches (default deny).
    Deny,
    /// At least one address.
    Resolved,
    /// Egress on this interface towards this next hop.
    NextHop { interface: String, nexthop: Ipv4Addr },
}

/// The Service a row concerns (for its Kubernetes event and `status`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ServiceKey {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
}

/// One question for one firewall and the answer that passes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub serial: String,
    pub check: Check,
    /// What is checked: `cluster/namespace/name` or a subnet CIDR.
    pub subject: String,
    pub service: Option<ServiceKey>,
    pub query: Query,
    pub expect: Expect,
}

/// A rule a policy-match named (the first is the one that applies).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchedRule {
    pub name: String,
    /// Security rules: `allow`, `deny`, `drop`, `reset-*`; `None` when the answer omits it.
    pub action: Option<String>,
}

/// A firewall's answer, parsed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Answer {
    /// Matching rules in order; empty = no rule matched.
    Rules { rules: Vec<MatchedRule> },
    /// Addresses the device resolved the FQDN to (empty = unresolved or absent).
    Resolved { addresses: Vec<Ipv4Addr> },
    /// The FIB's answer; `interface` `None` = no route.
    Fib { interface: Option<String>, nexthop: Option<Ipv4Addr> },
    /// The op failed (device disconnected, command refused): PAN-OS's message.
    Failed { message: String },
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub serial: String,
    pub check: Check,
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceKey>,
    pub ok: bool,
    /// What the firewall answered, in words; on a failure also why it is one.
    pub detail: String,
}

/// The firewall's own view of the interfaces the settings name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sides {
    pub untrust: Interface,
    pub trust: Interface,
}

/// Rows that need no op on the device: connection and sync state from Panorama's
/// `show devices connected`. A disconnected firewall is reported, never skipped.
pub fn sync_row(d: &Device) -> Row {
    let status = |s: &Option<String>| s.as_deref().unwrap_or("not reported").to_owned();
    let in_sync = |s: &Option<String>| s.as_deref().is_some_and(|v| v.eq_ignore_ascii_case("in sync"));
    let (ok, detail) = if !d.connected {
        (false, "not connected to Panorama: nothing on it can be verified".to_owned())
    } else if in_sync(&d.shared_policy_status) && d.template_status.as_ref().is_none_or(|_| in_sync(&d.template_status)) {
        (true, format!("shared policy {}, template {}", status(&d.shared_policy_status), status(&d.template_status)))
    } else {
        (false, format!("shared policy {}, template {}", status(&d.shared_policy_status), status(&d.template_status)))
    };
    Row { serial: d.serial.clone(), check: Check::InSync, subject: d.hostname.clone(), service: None, ok, detail }
}

/// A device group without members would make every check vacuously green: that is a failure
/// (nothing protects the Services), reported as one row naming the device group.
pub fn membership_row(device_group: &str, members: &[String]) -> Option<Row> {
    members.is_empty().then(|| Row {
        serial: "-".to_owned(),
        check: Check::InSync,
        subject: device_group.to_owned(),
        service: None,
        ok: false,
        detail: format!("device group {device_group} has no member firewall: nothing enforces the Services"),
    })
}

/// Picks the settings' untrust and trust interfaces from what the firewall reports; the row
/// says what was missing (then no traffic check can be built for it).
pub fn sides(serial: &str, ifaces: &[Interface], s: &PlanSettings) -> (Row, Option<Sides>) {
    let find = |name: &str| ifaces.iter().find(|i| i.name == name).cloned();
    let row = |ok, detail: String| Row {
        serial: serial.to_owned(),
        check: Check::Interfaces,
        subject: serial.to_owned(),
        service: None,
        ok,
        detail,
    };
    match (find(&s.untrust_interface), find(&s.trust_interface)) {
        (Some(u), Some(t)) => {
            let detail = format!("{} {} in {}, {} {} in {}", u.name, u.address, u.zone, t.name, t.address, t.zone);
            (row(true, detail), Some(Sides { untrust: u, trust: t }))
        }
        (u, t) => {
            let missing: Vec<&str> = [(u.is_none(), s.untrust_interface.as_str()), (t.is_none(), s.trust_interface.as_str())]
                .into_iter()
                .filter(|m| m.0)
                .map(|m| m.1)
                .collect();
            (row(false, format!("the firewall reports no layer-3 address on {}", missing.join(", "))), None)
        }
    }
}

/// Every traffic probe for one firewall: per protected Service inbound NAT, inbound security
/// and FQDN; per cluster subnet route and outbound NAT. Only Services whose objects Panorama
/// holds (`Protected`) are checked: the others are not claimed to be protected.
pub fn probes(
    serial: &str,
    sides: &Sides,
    services: &[ServiceStatus],
    clusters: &[ClusterStatus],
    fqdns: &dyn Fn(&ServiceKey) -> Option<String>,
    s: &PlanSettings,
) -> Vec<Probe> {
    let mut out = Vec::new();
    let untrust_ip = sides.untrust.address.addr();
    for st in services.iter().filter(|st| st.state == ServiceState::Protected) {
        let (Some(rule), Some(port)) = (&st.nat_rule, st.port) else { continue };
        let key = ServiceKey { cluster: st.cluster.clone(), namespace: st.namespace.clone(), name: st.name.clone() };
        let subject = format!("{}/{}/{}", st.cluster, st.namespace, st.name);
        let probe = |check, query, expect| Probe {
            serial: serial.to_owned(),
            check,
            subject: subject.clone(),
            service: Some(key.clone()),
            query,
            expect,
        };
        // NAT matches the pre-NAT packet: addressed to the firewall's untrust address, so the
        // destination zone is untrust (the zone of the pre-NAT destination).
        let nat = Query::NatMatch {
            from: s.untrust_zone.clone(),
            to: s.untrust_zone.clone(),
            source: INTERNET_CLIENT,
            destination: untrust_ip,
            protocol: TCP,
            port,
        };
        out.push(probe(Check::InboundNat, nat, Expect::Rule { name: rule.clone() }));
        // Security matches pre-NAT addresses and the post-NAT destination zone (trust).
        let sec = Query::SecurityMatch {
            from: s.untrust_zone.clone(),
            to: s.trust_zone.clone(),
            source: INTERNET_CLIENT,
            destination: untrust_ip,
            protocol: TCP,
            port,
        };
        // With [sync.security] the Service's own allow rule must be the one that matches.
        let expect = match &st.security_rule {
            Some(name) if s.security.is_some() => Expect::Rule { name: name.clone() },
            _ => Expect::Allow,
        };
        out.push(probe(Check::InboundSecurity, sec, expect));
        if let Some(fqdn) = fqdns(&key) {
            out.push(probe(Check::Fqdn, Query::Fqdn { fqdn }, Expect::Resolved));
        }
    }
    if s.security.is_some() {
        out.push(unclaimed(serial, untrust_ip, services, s));
    }
    let nexthop = first_host(sides.trust.address.trunc());
    for c in clusters {
        for sn in &c.subnets {
            let Ok(net) = sn.cidr.parse::<Ipv4Net>() else { continue };
            let host = first_host(net.trunc());
            let probe = |check, query, expect| Probe {
                serial: serial.to_owned(),
                check,
                subject: format!("{}/{}", c.name, sn.cidr),
                service: None,
                query,
                expect,
            };
            let fib = Query::FibLookup { virtual_router: s.virtual_router.clone(), address: host };
            out.push(probe(Check::Route, fib, Expect::NextHop { interface: sides.trust.name.clone(), nexthop }));
            if let Some(rule) = &sn.outbound_rule {
                let q = Query::NatMatch {
                    from: s.trust_zone.clone(),
                    to: s.untrust_zone.clone(),
                    source: host,
                    destination: INTERNET_SERVER,
                    protocol: TCP,
                    port: OUTBOUND_PORT,
                };
                out.push(probe(Check::OutboundNat, q, Expect::Rule { name: rule.clone() }));
            }
        }
    }
    out
}

/// With `[sync.security]` and no allow-all, inbound traffic to a port no labelled Service claims
/// must not be allowed: asked for the lowest such port from 1024 up (below, well-known ports a
/// foreign rule may legitimately open).
fn unclaimed(serial: &str, untrust_ip: Ipv4Addr, services: &[ServiceStatus], s: &PlanSettings) -> Probe {
    let port = (1024..=u16::MAX).find(|p| !services.iter().any(|st| st.port == Some(*p))).unwrap_or(1024);
    Probe {
        serial: serial.to_owned(),
        check: Check::UnclaimedDenied,
        subject: format!("tcp/{port}"),
        service: None,
        query: Query::SecurityMatch {
            from: s.untrust_zone.clone(),
            to: s.trust_zone.clone(),
            source: INTERNET_CLIENT,
            destination: untrust_ip,
            protocol: TCP,
            port,
        },
        expect: Expect::Deny,
    }
}

/// After a converge whose writes were committed and pushed, its `Planned` Services are in
/// Panorama as desired too: they are checked like `Protected` ones (a refused write made them
/// `Refused`, so they stay out).
pub fn after_converge(services: &[ServiceStatus]) -> Vec<ServiceStatus> {
    services
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if s.state == ServiceState::Planned {
                s.state = ServiceState::Protected;
            }
            s
        })
        .collect()
}

/// Each Service's FQDN: its load balancer hostname, which its address object holds.
pub fn fqdns(facts: &crate::Facts) -> std::collections::BTreeMap<ServiceKey, String> {
    let mut out = std::collections::BTreeMap::new();
    for c in &facts.clusters {
        for s in &c.services {
            if let Some(h) = &s.lb_hostname {
                out.insert(ServiceKey { cluster: c.name.clone(), namespace: s.namespace.clone(), name: s.name.clone() }, h.clone());
            }
        }
    }
    out
}

/// The first host of a subnet: AWS's VPC router on the firewall's trust subnet (the next hop of
/// our cluster routes), and a representative address of a cluster subnet.
pub fn first_host(net: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()).saturating_add(1))
}

/// Judges one answer against what the probe expects.
pub fn judge(p: &Probe, a: &Answer) -> Row {
    let (ok, detail) = match (&p.expect, a) {
        (_, Answer::Failed { message }) => (false, format!("the firewall did not answer: {message}")),
        (Expect::Rule { name }, Answer::Rules { rules }) => match rules.first() {
            Some(r) if r.name == *name => (true, format!("matches {name}")),
            Some(r) => (false, format!("matches {} before ours ({name})", r.name)),
            None => (false, format!("matches no rule (ours: {name})")),
        },
        (Expect::Allow, Answer::Rules { rules }) => match rules.first() {
            Some(MatchedRule { name, action: Some(act) }) if act == "allow" => (true, format!("allowed by {name}")),
            Some(MatchedRule { name, action: Some(act) }) => (false, format!("blocked: {name} says {act}")),
            Some(MatchedRule { name, action: None }) => (false, format!("{name} matches but the firewall did not say its action")),
            None => (false, "no security rule matches: dropped by the default rule".to_owned()),
        },
        (Expect::Deny, Answer::Rules { rules }) => match rules.first() {
            Some(MatchedRule { name, action: Some(act) }) if act == "allow" => {
                (false, format!("allowed by {name}: a port no Service claims is open to the internet"))
            }
            Some(MatchedRule { name, action: Some(act) }) => (true, format!("{name} says {act}")),
            Some(MatchedRule { name, action: None }) => (false, format!("{name} matches but the firewall did not say its action")),
            None => (true, "no security rule matches: dropped by the default rule".to_owned()),
        },
        (Expect::Resolved, Answer::Resolved { addresses }) if addresses.is_empty() => {
            (false, "the firewall has not resolved the FQDN: NAT to it sends traffic nowhere".to_owned())
        }
        (Expect::Resolved, Answer::Resolved { addresses }) => {
            (true, format!("resolved to {}", addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")))
        }
        (Expect::NextHop { interface, nexthop }, Answer::Fib { interface: got, nexthop: hop }) => match (got, hop) {
            (Some(i), Some(h)) if i == interface && h == nexthop => (true, format!("via {h} on {i}")),
            (Some(i), h) => (
                false,
                format!(
                    "via {} on {i}, expected {nexthop} on {interface} (our static route is missing or inactive: is its next hop on a connected subnet?)",
                    h.map_or("no next hop".to_owned(), |h| h.to_string())
                ),
            ),
            (None, _) => (false, format!("no route (expected {nexthop} on {interface}): our static route is missing or inactive")),
        },
        (e, a) => (false, format!("unexpected answer {a:?} for {e:?}")),
    };
    Row { serial: p.serial.clone(), check: p.check, subject: p.subject.clone(), service: p.service.clone(), ok, detail }
}

/// Per-firewall summary: (serial, rows, failed rows).
pub fn summary(rows: &[Row]) -> Vec<(String, usize, usize)> {
    let mut out: Vec<(String, usize, usize)> = Vec::new();
    for r in rows {
        match out.iter_mut().find(|s| s.0 == r.serial) {
            Some(s) => {
                s.1 += 1;
                s.2 += usize::from(!r.ok);
            }
            None => out.push((r.serial.clone(), 1, usize::from(!r.ok))),
        }
    }
    out
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;

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

pub mod focus;
pub use focus::{Focus, Verified};

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
    /// `vsys/entry/shared-policy-version`: the version of the device-group policy the firewall
    /// holds (public captures of `show devices all`: cdot65/pan-os-upgrade test data, an integer
    /// such as `35`, empty before any push); `None` when absent or empty.
    #[serde(default)]
    pub policy_version: Option<u64>,
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
    /// The policy version the firewall holds moved past the push we made, and is not behind
    /// the other members of the device group (a push reported OK that the firewall did not
    /// take: pan-os-ansible#400).
    ConfigVersion,
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
            Check::ConfigVersion => "config-version",
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

impl ServiceKey {
    /// The key of a Service's status.
    pub fn of(st: &ServiceStatus) -> ServiceKey {
        ServiceKey { cluster: st.cluster.clone(), namespace: st.namespace.clone(), name: st.name.clone() }
    }
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
/// holds (`Protected`) are checked: the others are not claimed to be protected. With a
/// [`Focus`], only its Services and clusters are asked about (the unclaimed port is always
/// asked, and is chosen among all `services`).
pub fn probes(
    serial: &str,
    sides: &Sides,
    services: &[ServiceStatus],
    clusters: &[ClusterStatus],
    fqdns: &dyn Fn(&ServiceKey) -> Option<String>,
    s: &PlanSettings,
    focus: Option<&Focus>,
) -> Vec<Probe> {
    let mut out = Vec::new();
    let untrust_ip = sides.untrust.address.addr();
    for st in services.iter().filter(|st| st.state == ServiceState::Protected) {
        let (Some(rule), Some(port)) = (&st.nat_rule, st.port) else { continue };
        let key = ServiceKey::of(st);
        if focus.is_some_and(|f| !f.has_service(&key)) {
            continue;
        }
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
    for c in clusters.iter().filter(|c| focus.is_none_or(|f| f.has_cluster(&c.name))) {
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

/// The `config-version` row of each connected member: its `shared-policy-version` must be
/// reported, not behind the highest version among the members (one device group, one push: a
/// member behind its peers kept an older config), and, when `before` is given (the versions
/// seen before a device-group push of ours that reported OK for that firewall), higher than it
/// was: our push changed the device group, so a firewall that took it holds a newer version.
/// Panorama's own `shared-policy-status` can say "In Sync" while a firewall kept its old config
/// (pan-os-ansible#400), so the version is compared too. [strictest reading] the meaning of
/// the version is inferred from public captures (an integer Panorama moves with each push of
/// the device group, the same on the members that took it); see sim/README.md.
pub fn version_rows(devices: &[Device], before: Option<&std::collections::BTreeMap<String, u64>>) -> Vec<Row> {
    let up: Vec<&Device> = devices.iter().filter(|d| d.connected).collect();
    let newest = up.iter().filter_map(|d| d.policy_version.map(|v| (v, d.hostname.as_str()))).max();
    up.iter()
        .map(|d| {
            let row = |ok, detail: String| Row {
                serial: d.serial.clone(),
                check: Check::ConfigVersion,
                subject: d.hostname.clone(),
                service: None,
                ok,
                detail,
            };
            let prior = before.and_then(|b| b.get(&d.serial));
            match (d.policy_version, newest, prior) {
                (None, _, _) => row(false, "shared-policy-version not reported: cannot tell which policy the firewall holds".into()),
                (Some(v), Some((max, peer)), _) if v < max => row(
                    false,
                    format!("shared-policy-version {v} while {peer} holds {max}: this firewall kept an older policy than its peers"),
                ),
                (Some(v), _, Some(p)) if v <= *p => row(
                    false,
                    format!(
                        "shared-policy-version still {v} after our push (was {p}): the push reported OK but the firewall kept its old config (pan-os-ansible#400)"
                    ),
                ),
                (Some(v), _, Some(p)) => row(true, format!("shared-policy-version {v} (was {p} before our push)")),
                (Some(v), _, None) => row(true, format!("shared-policy-version {v}, as its peers")),
            }
        })
        .collect()
}

/// The baseline of `config-version` after a device-group push of ours: the last pass's
/// versions of the firewalls the push job reported OK for (a firewall the push failed on is
/// already a failed push; one the last pass did not see has no baseline).
pub fn before_push(last: &std::collections::BTreeMap<String, u64>, pushed_ok: &[String]) -> std::collections::BTreeMap<String, u64> {
    last.iter().filter(|(s, _)| pushed_ok.contains(s)).map(|(s, v)| (s.clone(), *v)).collect()
}

/// Checks that concern a whole firewall: a failure there means no Service is verified on it.
fn firewall_wide(c: Check) -> bool {
    matches!(c, Check::InSync | Check::ConfigVersion | Check::Interfaces)
}

/// One failed check, for `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failed {
    pub serial: String,
    pub check: Check,
    pub subject: String,
    pub detail: String,
}

impl Failed {
    fn of(r: &Row) -> Failed {
        Failed { serial: r.serial.clone(), check: r.check, subject: r.subject.clone(), detail: r.detail.clone() }
    }
}

/// One firewall's verification, for `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallVerification {
    pub serial: String,
    pub checks: usize,
    pub ok: bool,
    pub failed: Vec<Failed>,
}

/// One Service's verification, for `status`: on how many of the firewalls every check of it
/// (and of the firewall itself) passed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceVerification {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub verified_on: usize,
    pub firewalls: usize,
    pub failed: Vec<Failed>,
}

/// A verification pass summarised per firewall and per Service (`status --output json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// Unix seconds of the pass.
    pub at: u64,
    pub firewalls: Vec<FirewallVerification>,
    pub services: Vec<ServiceVerification>,
}

/// Summarises the rows of one pass. A firewall-wide failure (not connected, out of sync, an
/// older policy, missing interfaces) counts against every Service; a Service without rows on a
/// firewall (it was asked nothing there) is not verified on it.
pub fn verification(rows: &[Row], services: &[ServiceKey], at: u64) -> Verification {
    let firewalls: Vec<FirewallVerification> = summary(rows)
        .into_iter()
        .map(|(serial, checks, _)| {
            let failed: Vec<Failed> = rows.iter().filter(|r| r.serial == serial && !r.ok).map(Failed::of).collect();
            FirewallVerification { ok: failed.is_empty(), serial, checks, failed }
        })
        .collect();
    let members: Vec<&FirewallVerification> = firewalls.iter().filter(|f| f.serial != "-").collect();
    let services = services
        .iter()
        .map(|k| {
            let mut failed = Vec::new();
            let mut verified_on = 0;
            for fw in &members {
                let wide: Vec<&Row> = rows.iter().filter(|r| r.serial == fw.serial && firewall_wide(r.check) && !r.ok).collect();
                let own: Vec<&Row> = rows.iter().filter(|r| r.serial == fw.serial && r.service.as_ref() == Some(k)).collect();
                failed.extend(wide.iter().chain(own.iter().filter(|r| !r.ok)).map(|r| Failed::of(r)));
                if wide.is_empty() && !own.is_empty() && own.iter().all(|r| r.ok) {
                    verified_on += 1;
                }
            }
            ServiceVerification {
                cluster: k.cluster.clone(),
                namespace: k.namespace.clone(),
                name: k.name.clone(),
                verified_on,
                firewalls: members.len(),
                failed,
            }
        })
        .collect();
    Verification { at, firewalls, services }
}

/// `HH:MM:SS` UTC of a Unix time (the clock `status` prints).
pub fn clock(at: u64) -> String {
    let s = at % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// The one line `status` prints: "verified on 2/2 firewalls at 10:42:07 UTC", or which check
/// failed where (at most 3, then how many more).
pub fn headline(v: &Verification) -> String {
    let members: Vec<&FirewallVerification> = v.firewalls.iter().filter(|f| f.serial != "-").collect();
    let green = members.iter().filter(|f| f.ok).count();
    let when = clock(v.at);
    let failed: Vec<String> = v
        .firewalls
        .iter()
        .flat_map(|f| f.failed.iter())
        .map(|f| format!("{} {} {}: {}", f.serial, f.check.as_str(), f.subject, f.detail))
        .collect();
    if failed.is_empty() && !members.is_empty() {
        return format!("verified on {green}/{} firewalls at {when} UTC", members.len());
    }
    let more = failed.len().saturating_sub(3);
    let mut out =
        format!("verified on {green}/{} firewalls at {when} UTC; FAILED: {}", members.len(), failed[..failed.len().min(3)].join("; "));
    if more > 0 {
        out.push_str(&format!("; and {more} more (pano-eks verify)"));
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

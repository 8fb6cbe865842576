//! The I/O of `pano-eks verify`: asks each managed firewall, through Panorama's op proxy
//! (`type=op&target=SERIAL`), the questions `pano_eks_core::verify` decides, and parses the
//! answers into core types. At most [`IN_FLIGHT`] calls at a time; the FQDN table is read once
//! per firewall (one call answers every Service), policy matches are one call per flow (PAN-OS
//! has no batched form).
//!
//! Shapes (cited; fixtures in the tests below):
//! * `<test><security-policy-match>` with `source`, `destination`, `protocol` (number),
//!   `destination-port`, `from`, `to`: pan-os-python `base.py` `test_security_policy_match`.
//!   Its answer `result/rules/entry` comes in two forms across versions: `<entry name="R">` with
//!   `index`/`action` children (newer), or text `R; index: N` (older; pan-os-python reads only
//!   name and index from it; a CLI-style text body may carry `action allow;`, as ntc-templates
//!   `paloalto_panos_test_security-policy-match` parses).
//! * `<test><nat-policy-match>` with the same elements plus `to-interface`: pan-os-ansible
//!   `panos_match_rules` (`rule_type: nat`); answer `result/rules/entry` (same two forms).
//! * `<test><routing><fib-lookup><virtual-router>VR</virtual-router><ip>A</ip>`: PAN-OS CLI
//!   `test routing fib-lookup virtual-router VR ip A`; answer `result/{nh, src, ip, interface,
//!   metric}` (`ip` the next hop). A missing `interface` = no route.
//! * `<request><system><fqdn><show/></fqdn></system></request>`: the device's FQDN refresh table.
//!   No public capture of the XML form was found: `fqdn-info/entry[@name=FQDN]{state, member*}`
//!   (panorama-sim's inferred shape, sim/README) is read, else the CLI's text table (the FQDN on
//!   a line, its addresses on the indented lines after it). Strictest reading: an FQDN not
//!   listed, listed without an address, or with a state other than `resolved`, is unresolved.
//! * `<show><interface>all</interface></show>` on the device: `result/ifnet/entry/{name, zone,
//!   fwd, ip}` (`ip` = `A/len` or `N/A`): public op-command helpers' recorded answers.
//! * `<show><devices><all/></devices></show>` on Panorama: `result/devices/entry{serial,
//!   connected, hostname, vsys/entry/{shared-policy-status, shared-policy-md5sum,
//!   shared-policy-version}, template-status?}` (facts §6; pan-os-python `panorama.py
//!   refresh_devices`; `shared-policy-version` an integer in cdot65/pan-os-upgrade's captured
//!   `show devices all` test data); `<show><devicegroups/></show>` for the DG's members.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use futures::stream::{self, StreamExt};
use pano_eks_core::verify::{self, Answer, Device, Focus, Interface, MatchedRule, Probe, Query, Row, ServiceKey};
use pano_eks_core::{ClusterStatus, PlanSettings, ServiceStatus};

use super::PanoramaClient;
use super::xml::Element;

/// Calls in flight per Panorama: the bound, so a fleet check never crowds out an
/// administrator's own work on the same management plane.
pub const IN_FLIGHT: usize = 5;

/// Probes whose futures exist at once (`IN_FLIGHT` of them in flight); the slots drain only at
/// the end of each chunk.
const PROBES_PER_CHUNK: usize = 256;

/// Everything `verify` found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    pub rows: Vec<Row>,
    /// Op calls made (for the benchmark and the summary).
    pub calls: u64,
    /// Each member's `shared-policy-version` (the next pass's baseline after a push of ours).
    #[serde(skip)]
    pub versions: BTreeMap<String, u64>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.rows.iter().all(|r| r.ok)
    }
}

/// What verify checks: the plan's statuses and each Service's FQDN (its load balancer hostname).
pub struct Scope<'a> {
    pub settings: &'a PlanSettings,
    pub services: &'a [ServiceStatus],
    pub clusters: &'a [ClusterStatus],
    pub fqdns: &'a BTreeMap<ServiceKey, String>,
    /// The members' policy versions before a device-group push of ours that reported OK for
    /// them (`config-version` must have moved past it); `None` when this pass follows no push.
    pub before_push: Option<&'a BTreeMap<String, u64>>,
    /// Only these Services and clusters (`sync --watch` after a converge from its cache,
    /// `core::verify::focus`); `None`: all of them.
    pub focus: Option<&'a Focus>,
    /// Given the rows as they come: first every firewall-wide row, then each chunk of answers
    /// (`sync --watch` keeps what a pass it stops had answered).
    pub sink: Option<&'a (dyn Fn(&[Row]) + Send + Sync)>,
}

impl<'a> Scope<'a> {
    /// Everything, with no push to compare with (`verify`, `status`, `up`).
    pub fn all(
        settings: &'a PlanSettings,
        services: &'a [ServiceStatus],
        clusters: &'a [ClusterStatus],
        fqdns: &'a BTreeMap<ServiceKey, String>,
    ) -> Scope<'a> {
        Scope { settings, services, clusters, fqdns, before_push: None, focus: None, sink: None }
    }
}

/// Verifies every member firewall of the device group; one row per check.
pub async fn run(client: &PanoramaClient, scope: &Scope<'_>) -> Result<Report, super::PanosError> {
    let before = client.stats.calls.load(std::sync::atomic::Ordering::Relaxed);
    let members = members(client, &scope.settings.device_group).await?;
    let devices = parse_devices(&client.op(&Element::new("show").child(Element::new("devices").child(Element::new("all")))).await?);
    let mut rows: Vec<Row> = verify::membership_row(&scope.settings.device_group, &members).into_iter().collect();
    let members: Vec<Device> = members
        .iter()
        .map(|serial| {
            devices.iter().find(|d| &d.serial == serial).cloned().unwrap_or(Device { serial: serial.clone(), ..Default::default() })
        })
        .collect();
    rows.extend(members.iter().map(verify::sync_row));
    rows.extend(verify::version_rows(&members, scope.before_push));
    let versions = members.iter().filter_map(|d| Some((d.serial.clone(), d.policy_version?))).collect();
    let asked: Vec<String> = members.iter().filter(|d| d.connected).map(|d| d.serial.clone()).collect();
    // Per firewall its interfaces, then its FQDN table when a probe needs it, then every traffic
    // probe: all through one bounded stream, so a slow firewall never holds up the others' calls.
    // (Futures collected first, then bounded: a `stream.map(async closure)` over borrowed
    // items is not `Send` for every lifetime, which `tokio::spawn` of the watch loop needs.)
    let firsts: Vec<_> = asked
        .iter()
        .map(|serial| async move {
            let ifaces = ask(client, serial, &show_interfaces()).await;
            (serial.clone(), ifaces)
        })
        .collect();
    let firsts: Vec<(String, Result<Element, String>)> = stream::iter(firsts).buffer_unordered(IN_FLIGHT).collect().await;
    let mut probes: Vec<Probe> = Vec::new();
    for (serial, ifaces) in firsts {
        let ifaces = match ifaces {
            Ok(r) => parse_interfaces(&r),
            Err(e) => {
                rows.push(Row {
                    serial: serial.clone(),
                    check: verify::Check::Interfaces,
                    subject: serial.clone(),
                    service: None,
                    ok: false,
                    detail: e,
                });
                continue;
            }
        };
        let (row, sides) = verify::sides(&serial, &ifaces, scope.settings);
        rows.push(row);
        if let Some(sides) = sides {
            let f = |k: &ServiceKey| scope.fqdns.get(k).cloned();
            probes.extend(verify::probes(&serial, &sides, scope.services, scope.clusters, &f, scope.settings, scope.focus));
        }
    }
    if let Some(sink) = scope.sink {
        sink(&rows);
    }
    // Service by Service (each on every firewall in turn), so a pass stopped part-way has
    // finished whole Services.
    probes.sort_by(|a, b| a.subject.cmp(&b.subject));
    // One FQDN table per firewall answers all its FQDN probes; a pass with none reads none.
    let tables: Vec<_> = asked
        .iter()
        .filter(|serial| probes.iter().any(|p| &p.serial == *serial && matches!(p.query, Query::Fqdn { .. })))
        .map(|serial| async move { (serial.clone(), ask(client, serial, &fqdn_show()).await) })
        .collect();
    let fqdn_tables: BTreeMap<String, Result<Element, String>> = stream::iter(tables).buffer_unordered(IN_FLIGHT).collect().await;
    // The futures of one chunk at a time: each holds a whole call's state (kilobytes), so the
    // 64,000 probes of 16,000 Services on two firewalls, collected at once, would hold hundreds
    // of megabytes before the first answer.
    for chunk in probes.chunks(PROBES_PER_CHUNK) {
        let answers: Vec<_> = chunk
            .iter()
            .map(|p| {
                let table = fqdn_tables.get(&p.serial);
                async move { verify::judge(p, &answer(client, p, table).await) }
            })
            .collect();
        let answers: Vec<Row> = stream::iter(answers).buffer_unordered(IN_FLIGHT).collect().await;
        if let Some(sink) = scope.sink {
            sink(&answers);
        }
        rows.extend(answers);
    }
    rows.sort_by(|a, b| (&a.serial, a.check, &a.subject).cmp(&(&b.serial, b.check, &b.subject)));
    Ok(Report { rows, calls: client.stats.calls.load(std::sync::atomic::Ordering::Relaxed) - before, versions })
}

async fn answer(client: &PanoramaClient, p: &Probe, fqdn_table: Option<&Result<Element, String>>) -> Answer {
    if let Query::Fqdn { fqdn } = &p.query {
        return match fqdn_table {
            Some(Ok(t)) => Answer::Resolved { addresses: parse_fqdn(t, fqdn) },
            Some(Err(e)) => Answer::Failed { message: e.clone() },
            None => Answer::Failed { message: "FQDN table not read".into() },
        };
    }
    match ask(client, &p.serial, &command(&p.query)).await {
        Ok(r) => match &p.query {
            Query::FibLookup { .. } => parse_fib(&r),
            _ => Answer::Rules { rules: parse_rules(&r) },
        },
        Err(message) => Answer::Failed { message },
    }
}

async fn ask(client: &PanoramaClient, serial: &str, cmd: &Element) -> Result<Element, String> {
    client.op_on(serial, cmd).await.map_err(|e| e.to_string())
}

/// The serials the device group lists (`show devicegroups`, `devicegroups/entry[@name]/devices/entry`).
pub(crate) async fn members(client: &PanoramaClient, dg: &str) -> Result<Vec<String>, super::PanosError> {
    let r = client.op(&Element::new("show").child(Element::new("devicegroups"))).await?;
    Ok(parse_members(&r, dg))
}

pub fn parse_members(result: &Element, dg: &str) -> Vec<String> {
    let Some(groups) = result.find("devicegroups") else { return vec![] };
    groups
        .elements()
        .filter(|g| g.get_attr("name") == Some(dg))
        .flat_map(|g| g.find("devices").into_iter().flat_map(|d| d.elements()))
        .filter_map(|e| e.get_attr("name").map(str::to_owned).or_else(|| e.text_at("serial")))
        .collect()
}

/// The op XML for a query (element names as the PAN-OS CLI tokens, as pan-os-python builds them).
pub fn command(q: &Query) -> Element {
    match q {
        Query::NatMatch { from, to, source, destination, protocol, port } => {
            Element::new("test").child(policy_match("nat-policy-match", from, to, *source, *destination, *protocol, *port))
        }
        Query::SecurityMatch { from, to, source, destination, protocol, port } => {
            Element::new("test").child(policy_match("security-policy-match", from, to, *source, *destination, *protocol, *port))
        }
        Query::FibLookup { virtual_router, address } => Element::new("test").child(
            Element::new("routing")
                .child(Element::new("fib-lookup").leaf("virtual-router", virtual_router.as_str()).leaf("ip", address.to_string())),
        ),
        Query::Fqdn { .. } => fqdn_show(),
    }
}

fn policy_match(kind: &str, from: &str, to: &str, source: Ipv4Addr, destination: Ipv4Addr, protocol: u8, port: u16) -> Element {
    Element::new(kind)
        .leaf("from", from)
        .leaf("to", to)
        .leaf("source", source.to_string())
        .leaf("destination", destination.to_string())
        .leaf("protocol", protocol.to_string())
        .leaf("destination-port", port.to_string())
}

fn fqdn_show() -> Element {
    Element::new("request").child(Element::new("system").child(Element::new("fqdn").child(Element::new("show"))))
}

fn show_interfaces() -> Element {
    Element::new("show").child(Element::new("interface").text("all"))
}

/// `result/rules/entry` in either form (see the module doc).
pub fn parse_rules(result: &Element) -> Vec<MatchedRule> {
    let Some(rules) = result.find("rules") else { return vec![] };
    rules
        .elements()
        .filter(|e| e.name == "entry")
        .filter_map(|e| {
            if let Some(name) = e.get_attr("name") {
                return Some(MatchedRule { name: name.to_owned(), action: e.text_at("action").filter(|a| !a.is_empty()) });
            }
            let text = e.text_content();
            let first = text.lines().next()?.trim().trim_matches('"');
            let name = first.split(';').next()?.trim().trim_matches('"');
            let action = text.lines().find_map(|l| l.trim().strip_prefix("action ").map(|a| a.trim_end_matches(';').trim().to_owned()));
            (!name.is_empty()).then(|| MatchedRule { name: name.to_owned(), action })
        })
        .collect()
}

/// `result/{interface, ip}` of a fib-lookup.
pub fn parse_fib(result: &Element) -> Answer {
    let interface = result.text_at("interface").filter(|i| !i.is_empty());
    let nexthop = result.text_at("ip").and_then(|s| s.parse().ok());
    Answer::Fib { interface, nexthop }
}

/// Addresses the FQDN table lists for `fqdn` (empty = unresolved or not listed). Structured
/// form `fqdn-info/entry[@name=FQDN]{state, member*}` (the shape panorama-sim answers, inferred:
/// an entry whose `state` is present and not `resolved` counts as unresolved); else the CLI's
/// text table (the FQDN's line, then its indented address lines).
pub fn parse_fqdn(result: &Element, fqdn: &str) -> Vec<Ipv4Addr> {
    if let Some(info) = result.find("fqdn-info") {
        return info
            .elements()
            .filter(|e| e.name == "entry" && e.get_attr("name") == Some(fqdn))
            .filter(|e| e.text_at("state").is_none_or(|s| s.eq_ignore_ascii_case("resolved")))
            .flat_map(|e| e.elements().filter(|m| m.name == "member").filter_map(|m| m.text_content().parse().ok()).collect::<Vec<_>>())
            .collect();
    }
    let text = result.text_content();
    let mut lines = text.lines().skip_while(|l| !l.split_whitespace().any(|w| w == fqdn));
    if lines.next().is_none() {
        return vec![];
    }
    lines.take_while(|l| l.starts_with(char::is_whitespace)).flat_map(addresses_in).collect()
}

fn addresses_in(s: &str) -> Vec<Ipv4Addr> {
    s.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '/'))
        .filter_map(|w| w.split('/').next().and_then(|a| a.parse::<Ipv4Addr>().ok()))
        .collect()
}

/// Layer-3 interfaces with an address (`ip` other than `N/A`).
pub fn parse_interfaces(result: &Element) -> Vec<Interface> {
    result
        .find("ifnet")
        .into_iter()
        .flat_map(|i| i.elements())
        .filter_map(|e| {
            let address = e.text_at("ip")?.parse().ok()?;
            Some(Interface { name: e.text_at("name")?, zone: e.text_at("zone").unwrap_or_default(), address })
        })
        .collect()
}

/// `result/devices/entry` of `show devices all`.
pub fn parse_devices(result: &Element) -> Vec<Device> {
    result
        .find("devices")
        .into_iter()
        .flat_map(|d| d.elements())
        .filter_map(|e| {
            let serial = e.text_at("serial").or_else(|| e.get_attr("name").map(str::to_owned))?;
            let vsys_status = e.find("vsys").and_then(|v| v.elements().find_map(|x| x.text_at("shared-policy-status")));
            let version = e.find("vsys").and_then(|v| v.elements().find_map(|x| x.text_at("shared-policy-version")?.trim().parse().ok()));
            Some(Device {
                serial,
                hostname: e.text_at("hostname").unwrap_or_default(),
                connected: e.text_at("connected").as_deref() == Some("yes"),
                shared_policy_status: e.text_at("shared-policy-status").or(vsys_status).filter(|s| !s.is_empty()),
                template_status: e.text_at("template-status").filter(|s| !s.is_empty()),
                policy_version: version,
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;

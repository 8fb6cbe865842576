//! Managed firewalls with a data plane of their own (issue 15), in process through
//! `State::handle`: each device answers `target=SERIAL` op commands from what its own last
//! push gave it. The pushed commands are the ones pan-os-python sends (see sim/README.md).

use pano_eks_sim::panorama::faults::Faults;
use pano_eks_sim::panorama::state::{Device, Options};
use pano_eks_sim::panorama::xml_tree::Node;

mod panorama_support;
use panorama_support::*;

fn serial(i: usize) -> String {
    Device::generated(i).serial
}

/// The `show devices` entry of one serial (up to its template status).
fn device_entry(xml: &str, serial: &str) -> String {
    let start = xml.find(&format!("<serial>{serial}</serial>")).unwrap_or_else(|| panic!("{serial} not in {xml}"));
    let end = start + xml[start..].find("</template-status>").expect("template-status");
    xml[start..end].to_string()
}

fn rule(name: &str, from: &str, to: &str, dst: &str, svc: &str, action: &str) -> String {
    format!(
        "<entry name='{name}'><from><member>{from}</member></from><to><member>{to}</member></to><source><member>any</member></source>\
<destination><member>{dst}</member></destination><application><member>any</member></application><service><member>{svc}</member></service><action>{action}</action></entry>"
    )
}

const PUSH_DG1: &str = "<commit-all><shared-policy><device-group><entry name=\"DG1\"/></device-group></shared-policy></commit-all>";
const PUSH_TS1: &str = "<commit-all><template-stack><name>TS1</name></template-stack></commit-all>";

impl Sim {
    fn dp() -> Sim {
        Sim::with(Options { devices_in_dg: Some("DG1".into()), devices_in_stack: Some("TS1".into()), ..opts() })
    }
    fn push_wait(&mut self, cmd: &str) -> Node {
        let r = self.push(cmd);
        let id = text(&r, &["result", "job"]);
        self.wait_job(&id)
    }
    fn on(&mut self, serial: &str, cmd: &str) -> (u16, Node) {
        let key = self.key.clone();
        self.call_as(&key, &[("type", "op"), ("target", serial), ("cmd", cmd)])
    }
    fn policy_match(&mut self, serial: &str, from: &str, to: &str, dst: &str, port: u16) -> (String, String) {
        let (_, r) = self.on(
            serial,
            &format!("<test><security-policy-match><source>198.51.100.7</source><destination>{dst}</destination><protocol>6</protocol><destination-port>{port}</destination-port><from>{from}</from><to>{to}</to></security-policy-match></test>"),
        );
        assert_eq!(r.attr("status"), Some("success"), "{}", self.last);
        let e = r.descend(&["result", "rules"]).and_then(|x| x.entries().next()).unwrap_or_else(|| panic!("no rule in {}", self.last));
        (e.name().unwrap().to_string(), text(e, &["action"]))
    }
    fn running_of(&self, serial: &str) -> String {
        self.st.runs.get(serial).map(|r| r.running_xml()).unwrap_or_default()
    }
}

#[test]
fn each_device_keeps_its_own_running_config_and_a_failed_push_leaves_it_as_it_was() {
    let mut s = Sim::dp();
    s.set(&format!("{}/pre-rulebase/security/rules", dg("DG1")), &rule("ours-a", "untrust", "trust", "10.200.1.50", "any", "allow"));
    s.commit_and_wait();
    s.push_wait(PUSH_DG1);
    for i in 1..=3 {
        assert!(s.running_of(&serial(i)).contains("ours-a"), "device {i}: {}", s.running_of(&serial(i)));
    }
    s.set(&format!("{}/pre-rulebase/security/rules", dg("DG1")), &rule("ours-b", "untrust", "trust", "any", "any", "allow"));
    s.commit_and_wait();
    s.st.set_faults(Faults { fail_push_serial: Some(serial(2)), ..s.st.faults.clone() });
    let j = s.push_wait(PUSH_DG1);
    assert!(s.last.contains("<result>FAIL</result>"), "device 2 reported failed: {}", s.last);
    let _ = j;
    assert!(s.running_of(&serial(1)).contains("ours-b"));
    assert!(!s.running_of(&serial(2)).contains("ours-b"), "failed push changed nothing");
    assert!(s.running_of(&serial(2)).contains("ours-a"));
    // what the device answers follows its own config
    assert_eq!(s.policy_match(&serial(1), "untrust", "trust", "10.200.1.99", 80).0, "ours-b");
    assert_eq!(s.policy_match(&serial(2), "untrust", "trust", "10.200.1.99", 80).0, "interzone-default");
    let r = s.op("<show><devices><all/></devices></show>");
    let _ = r;
    let dev2 = device_entry(&s.last, &serial(2));
    assert!(dev2.contains("<shared-policy-status>out of sync</shared-policy-status>"), "{dev2}");
}

#[test]
fn a_silently_ignored_push_reports_ok_and_in_sync_but_changes_nothing() {
    let mut s = Sim::dp();
    s.set(&format!("{}/pre-rulebase/security/rules", dg("DG1")), &rule("ours", "untrust", "trust", "any", "any", "allow"));
    s.commit_and_wait();
    s.st.set_faults(Faults { push_silently_ignored_by: vec![serial(3)], ..s.st.faults.clone() });
    s.push_wait(PUSH_DG1);
    assert!(!s.last.contains("FAIL"), "the job says OK: {}", s.last);
    assert!(s.running_of(&serial(1)).contains("ours"));
    assert!(!s.running_of(&serial(3)).contains("ours"));
    assert_eq!(s.policy_match(&serial(3), "untrust", "trust", "10.200.3.9", 443).0, "interzone-default");
    s.op("<show><devices><connected/></devices></show>");
    let dev3 = device_entry(&s.last, &serial(3));
    assert!(dev3.contains("<shared-policy-status>in sync</shared-policy-status>"), "{dev3}");
}

#[test]
fn a_disconnected_device_is_not_connected_refuses_ops_and_fails_its_push() {
    let mut s = Sim::dp();
    s.set(&format!("{}/tag", dg("DG1")), "<entry name='t'/>");
    s.commit_and_wait();
    s.st.set_faults(Faults { disconnected: vec![serial(2)], ..s.st.faults.clone() });
    s.op("<show><devices><all/></devices></show>");
    let dev2 = device_entry(&s.last, &serial(2));
    assert!(dev2.contains("<connected>no</connected>"), "{dev2}");
    s.op("<show><devices><connected/></devices></show>");
    assert!(!s.last.contains(&serial(2)));
    let (_, r) = s.on(&serial(2), "<show><system><info/></system></show>");
    assert_eq!(r.attr("status"), Some("error"));
    assert!(s.last.contains("not connected"), "{}", s.last);
    let (_, r) = s.on(&serial(1), "<show><system><info/></system></show>");
    assert_eq!(text(&r, &["result", "system", "serial"]), serial(1));
    assert_eq!(text(&r, &["result", "system", "vm-mem"]), (8192 * 1024 - 30_000).to_string());
    s.push_wait(PUSH_DG1);
    assert_eq!(s.last.matches("<result>FAIL</result>").count(), 2, "job and device 2 fail: {}", s.last);
    assert!(s.running_of(&serial(2)).is_empty() || s.running_of(&serial(2)) == "<config/>");
}

#[test]
fn fqdn_objects_match_by_the_devices_resolved_set() {
    let mut s = Sim::dp();
    s.set(&format!("{}/address", dg("DG1")), "<entry name='svc-fqdn'><fqdn>web.example.internal</fqdn></entry>");
    s.set(&format!("{}/pre-rulebase/security/rules", dg("DG1")), &rule("to-fqdn", "untrust", "trust", "svc-fqdn", "any", "allow"));
    s.commit_and_wait();
    s.push_wait(PUSH_DG1);
    let fw = serial(1);
    assert_eq!(s.policy_match(&fw, "untrust", "trust", "10.200.1.20", 443).0, "interzone-default", "unresolved");
    let (_, r) = s.on(&fw, "<request><system><fqdn><show/></fqdn></system></request>");
    assert_eq!(r.attr("status"), Some("success"));
    assert!(s.last.contains("<state>unresolved</state>"), "{}", s.last);
    s.st.dns.insert("web.example.internal".into(), vec!["10.200.1.20".into()]);
    assert_eq!(s.policy_match(&fw, "untrust", "trust", "10.200.1.20", 443).0, "to-fqdn");
    assert_eq!(s.policy_match(&fw, "untrust", "trust", "10.200.1.21", 443).0, "interzone-default");
}

#[test]
fn first_match_wins_shared_and_foreign_rules_above_ours_and_deny_rules() {
    let mut s = Sim::dp();
    let svc = "<entry name='tcp-8080'><protocol><tcp><port>8000-8100</port></tcp></protocol></entry>";
    s.set(&format!("{}/service", dg("DG1")), svc);
    s.set(
        &format!("{}/pre-rulebase/security/rules", dg("DG1")),
        &(rule("ours-8080", "untrust", "trust", "10.200.1.0/24", "tcp-8080", "allow")
            + &rule("ours-deny", "untrust", "trust", "10.200.1.66", "any", "deny")
            + &rule("ours-all", "untrust", "trust", "10.200.1.0/24", "any", "allow")),
    );
    // another administrator's rule in shared pre-rulebase: evaluated before the DG's
    s.set("/config/shared/pre-rulebase/security/rules", &rule("foreign-block", "untrust", "trust", "10.200.1.77", "any", "deny"));
    s.set(&format!("{}/post-rulebase/security/rules", dg("DG1")), &rule("post-any", "any", "any", "any", "any", "allow"));
    s.commit_and_wait();
    s.push_wait(PUSH_DG1);
    let fw = serial(1);
    assert_eq!(s.policy_match(&fw, "untrust", "trust", "10.200.1.77", 8080), ("foreign-block".into(), "deny".into()));
    assert_eq!(s.policy_match(&fw, "untrust", "trust", "10.200.1.66", 8080).0, "ours-8080", "first match, not the deny below");
    assert_eq!(s.policy_match(&fw, "untrust", "trust", "10.200.1.66", 80), ("ours-deny".into(), "deny".into()));
    assert_eq!(s.policy_match(&fw, "untrust", "trust", "10.200.1.5", 80).0, "ours-all");
    assert_eq!(s.policy_match(&fw, "trust", "untrust", "192.0.2.1", 80).0, "post-any", "post-rulebase after pre");
    let (_, r) = s.on(&fw, "<test><security-policy-match><source>198.51.100.7</source><destination>10.200.1.5</destination><protocol>6</protocol><destination-port>80</destination-port><from>untrust</from><to>trust</to></security-policy-match></test>");
    assert_eq!(text(r.descend(&["result", "rules"]).unwrap().entry_child("ours-all").unwrap(), &["index"]), "4");
    // disabled rules are skipped
    s.set(&format!("{}/pre-rulebase/security/rules/entry[@name='ours-all']", dg("DG1")), "<disabled>yes</disabled>");
    s.commit_and_wait();
    s.push_wait(PUSH_DG1);
    assert_eq!(s.policy_match(&fw, "untrust", "trust", "10.200.1.5", 80).0, "post-any");
}

#[test]
fn fib_lookup_uses_connected_routes_active_static_routes_and_longest_prefix() {
    let mut s = Sim::dp();
    let tpl = format!("{LD}/template/entry[@name='T1']");
    s.set(&format!("{tpl}/config/devices/entry[@name='localhost.localdomain']/network/virtual-router/entry[@name='default']/routing-table/ip/static-route"),
        "<entry name='vpc'><destination>10.0.0.0/8</destination><nexthop><ip-address>10.200.1.1</ip-address></nexthop></entry>\
<entry name='pods'><destination>10.50.0.0/16</destination><nexthop><ip-address>10.100.1.1</ip-address></nexthop></entry>\
<entry name='off'><destination>10.60.0.0/16</destination><nexthop><ip-address>192.168.9.1</ip-address></nexthop></entry>");
    s.set(&format!("{LD}/template-stack/entry[@name='TS1']/templates"), "<member>T1</member>");
    s.commit_and_wait();
    s.push_wait(PUSH_TS1);
    let fw = serial(1);
    let look = |s: &mut Sim, ip: &str| {
        let (_, r) = s.on(
            &fw,
            &format!("<test><routing><fib-lookup><virtual-router>default</virtual-router><ip>{ip}</ip></fib-lookup></routing></test>"),
        );
        (text(&r, &["result", "interface"]), text(&r, &["result", "ip"]))
    };
    assert_eq!(look(&mut s, "10.200.1.40"), ("ethernet1/2".into(), "0.0.0.0".into()), "connected");
    assert_eq!(look(&mut s, "10.50.9.9"), ("ethernet1/1".into(), "10.100.1.1".into()), "/16 beats /8");
    assert_eq!(look(&mut s, "10.60.9.9"), ("ethernet1/2".into(), "10.200.1.1".into()), "next hop off-subnet: inactive");
    assert!(s.running_of(&fw).contains("static-route"));
    assert!(!s.running_of(&serial(1)).contains("pre-rulebase"));
}

#[test]
fn nat_first_match_with_a_foreign_rule_above_ours_and_to_zone_by_fib() {
    let mut s = Sim::dp();
    let nat = |name: &str, to: &str, dst: &str, svc: &str| {
        format!(
            "<entry name='{name}'><from><member>untrust</member></from><to><member>{to}</member></to><source><member>any</member></source>\
<destination><member>{dst}</member></destination><service>{svc}</service><destination-translation><translated-address>10.200.1.50</translated-address></destination-translation></entry>"
        )
    };
    s.set("/config/shared/pre-rulebase/nat/rules", &nat("foreign-nat", "untrust", "10.100.1.10", "service-https"));
    s.set(
        &format!("{}/pre-rulebase/nat/rules", dg("DG1")),
        &(nat("ours-nat", "untrust", "10.100.1.10", "any")
            + &nat("ours-untrust-any", "untrust", "any", "any")
            + &nat("ours-trust", "trust", "any", "any")),
    );
    s.commit_and_wait();
    s.push_wait(PUSH_DG1);
    let fw = serial(1);
    let q = |s: &mut Sim, dst: &str, port: u16, to: &str| {
        let (_, r) = s.on(&fw, &format!("<test><nat-policy-match><from>untrust</from>{to}<source>198.51.100.7</source><destination>{dst}</destination><destination-port>{port}</destination-port><protocol>6</protocol></nat-policy-match></test>"));
        assert_eq!(r.attr("status"), Some("success"), "{}", s.last);
        r.descend(&["result", "rules", "entry"]).map(|e| e.text.clone())
    };
    assert_eq!(q(&mut s, "10.100.1.10", 443, "").as_deref(), Some("foreign-nat; index: 1"), "the foreign rule above ours wins");
    assert_eq!(q(&mut s, "10.100.1.10", 80, "").as_deref(), Some("ours-nat; index: 2"));
    // to zone left out: 10.200.1.99 routes out of ethernet1/2 (trust), so the untrust rule
    // above does not match
    assert_eq!(q(&mut s, "10.200.1.99", 80, "").as_deref(), Some("ours-trust; index: 4"));
    assert_eq!(q(&mut s, "10.200.1.99", 80, "<to>untrust</to>").as_deref(), Some("ours-untrust-any; index: 3"));
    assert_eq!(q(&mut s, "10.100.1.10", 80, "<to>dmz</to>"), None, "no match: empty rules");
}

/// A device with a memory size of its own (tier 1: 8 GB) refuses a push that would give it more
/// than 2,000 FQDN address objects, counting `shared` too; the job reports that device FAIL with
/// the limit named and its running config stays as it was. A device without `memory_mb` (the
/// generated ones) takes it.
#[test]
fn a_device_refuses_a_push_past_its_memory_tiers_fqdn_limit_and_keeps_its_config() {
    let mut devices: Vec<Device> = (1..=3).map(Device::generated).collect();
    devices[0].memory_mb = Some(8192);
    devices[1].memory_mb = Some(16384);
    let mut s = Sim::with(Options { devices_in_dg: Some("DG1".into()), devices_in_stack: Some("TS1".into()), devices, ..opts() });
    let fqdn = |range: std::ops::Range<usize>, p: &str| -> String {
        range.map(|i| format!("<entry name='{p}-{i}'><fqdn>{p}{i}.example.com</fqdn></entry>")).collect()
    };
    s.set("/config/shared/address", &fqdn(0..1_000, "shared"));
    s.set(&format!("{}/address", dg("DG1")), &fqdn(0..1_000, "dg"));
    s.commit_and_wait();
    s.push_wait(PUSH_DG1);
    assert!(!s.last.contains("FAIL"), "2,000 fit on tier 1: {}", s.last);
    assert!(s.running_of(&serial(1)).contains("dg-999"));

    s.set(&format!("{}/address", dg("DG1")), &fqdn(1_000..1_001, "dg"));
    s.commit_and_wait();
    s.push_wait(PUSH_DG1);
    let failed: Vec<&str> = s.last.split("<entry").skip(1).filter(|e| e.contains("<result>FAIL</result>")).collect();
    assert_eq!(failed.len(), 2, "both devices with a tier-1/2 memory size refuse the 2,001st: {}", s.last);
    assert!(
        failed.iter().all(|e| e.contains("FQDN address objects exceed the maximum of 2000") && e.contains("2001 configured")),
        "{failed:?}"
    );
    assert!(!s.running_of(&serial(1)).contains("dg-1000") && s.running_of(&serial(1)).contains("dg-999"), "kept as it was");
    assert!(s.running_of(&serial(3)).contains("dg-1000"), "no memory_mb: not enforced");
}

//! `pano-eks verify` against panorama-sim (issue 15): green on both firewalls, then each failure
//! class of the issue detected and named by a test of its own (a firewall that silently kept its
//! old config after an OK push, an FQDN that does not resolve, a static route whose next hop is
//! off the trust subnet, a foreign NAT rule above ours capturing the port, a security rule that
//! denies the traffic, a disconnected firewall), and `status` carrying the last verification.
//! Each also checks what verify *sent* (the sim's per-command request counts).

mod support;

use support::{DEVICES_WITH_INTERFACES, DG_RULES, PASSWORD, Sim, allow_inbound_and_stack_the_template, facts_json, path_str};

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_pano-eks")).args(args).env("PANO_EKS_TEST_PANORAMA_PASSWORD", PASSWORD).output().unwrap()
}

fn requests(sim: &Sim, key: &str) -> u64 {
    sim.stats()["requests"][key].as_u64().unwrap_or(0)
}

const DEVICES: &str = r#"[{"serial": "007900000001", "hostname": "fw-01", "ip": "10.0.0.11"},
                         {"serial": "007900000002", "hostname": "fw-02", "ip": "10.0.0.12", "connected": false}]"#;

#[test]
fn a_disconnected_firewall_is_reported_failed_and_never_asked() {
    let sim = Sim::start_with_devices(DEVICES, &["--job-step-ms", "0"]);
    let cfg = path_str(&sim.write_config(""));
    let facts = sim.dir.path().join("facts.json");
    std::fs::write(&facts, facts_json(2, "")).unwrap();
    let facts = path_str(&facts);
    let out = cli(&["--config", &cfg, "sync", "--once", "--facts", &facts]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let interface_calls = requests(&sim, "op.show.interface");

    let out = cli(&["--config", &cfg, "--output", "json", "verify", "--facts", &facts]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a failed row fails the command: {stderr}");
    assert!(!stderr.contains(PASSWORD) && !String::from_utf8_lossy(&out.stdout).contains(PASSWORD), "no secret in output");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = report["rows"].as_array().unwrap();
    let fw2: Vec<&serde_json::Value> = rows.iter().filter(|r| r["serial"] == "007900000002").collect();
    assert_eq!(fw2.len(), 1, "the disconnected firewall gets exactly its in-sync row: {rows:?}");
    assert_eq!((fw2[0]["check"].as_str(), fw2[0]["ok"].as_bool()), (Some("in-sync"), Some(false)));
    assert!(fw2[0]["detail"].as_str().unwrap().contains("not connected"), "{:?}", fw2[0]);
    assert!(rows.iter().any(|r| r["serial"] == "007900000001"), "the connected one is asked: {rows:?}");
    // What verify sent: one interface read, for the one connected member (none for fw-02).
    assert_eq!(requests(&sim, "op.show.interface") - interface_calls, 1, "{}", sim.stats());
    assert!(requests(&sim, "op.show.devicegroups") >= 1 && requests(&sim, "op.show.devices") >= 1, "{}", sim.stats());
}

#[test]
fn a_bad_scope_is_a_usage_error_naming_it() {
    let sim = Sim::start(&["--job-step-ms", "0"]);
    let cfg = path_str(&sim.write_config(""));
    let facts = sim.dir.path().join("facts.json");
    std::fs::write(&facts, facts_json(1, "")).unwrap();
    let facts = path_str(&facts);
    for (args, needle) in [
        (vec!["--cluster", "nope"], "--cluster nope: no such managed cluster"),
        (vec!["--service", "default/nope"], "--service default/nope: no labelled Service"),
        (vec!["--service", "no-slash"], "--service no-slash: expected NAMESPACE/NAME"),
    ] {
        let mut all = vec!["--config", &cfg, "verify", "--facts", &facts];
        all.extend(args);
        let out = cli(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(needle), "want {needle:?} in {stderr}");
    }
    assert_eq!(requests(&sim, "op.show.interface"), 0, "nothing asked of a firewall: {}", sim.stats());
}

#[test]
fn a_device_group_without_firewalls_fails_verify() {
    let sim = Sim::start_fresh(&["--job-step-ms", "0"]);
    let cfg = path_str(&sim.write_config(""));
    let facts = sim.dir.path().join("facts.json");
    std::fs::write(&facts, facts_json(1, "")).unwrap();
    let out = cli(&["--config", &cfg, "--output", "json", "verify", "--facts", &path_str(&facts)]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0]["detail"].as_str().unwrap().contains("has no member firewall"), "{rows:?}");
    assert_eq!(requests(&sim, "op.show.interface"), 0, "{}", sim.stats());
}

fn verify_json(cfg: &str, facts: &str) -> (Option<i32>, Vec<serde_json::Value>, String) {
    let out = cli(&["--config", cfg, "--output", "json", "verify", "--facts", facts]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    (out.status.code(), report["rows"].as_array().cloned().unwrap_or_default(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn green_on_both_firewalls_and_what_verify_sends() {
    let sim = Sim::start_with_devices(DEVICES_WITH_INTERFACES, &["--job-step-ms", "0"]);
    let cfg = path_str(&sim.write_config(""));
    allow_inbound_and_stack_the_template(&sim);
    sim.dns(serde_json::json!({"internal-svc-0.elb.us-west-2.amazonaws.com": ["192.168.110.77"],
                               "internal-svc-1.elb.us-west-2.amazonaws.com": ["192.168.111.78"]}));
    let facts = sim.dir.path().join("facts.json");
    std::fs::write(&facts, facts_json(1, "")).unwrap();
    let facts = path_str(&facts);
    let out = cli(&["--config", &cfg, "sync", "--once", "--facts", &facts]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let sent = |k: &str| requests(&sim, k);
    let kinds = ["op.test.nat-policy-match", "op.test.security-policy-match", "op.test.routing", "op.request.system", "op.show.interface"];
    let before: Vec<u64> = kinds.iter().map(|k| sent(k)).collect();
    let (code, rows, stderr) = verify_json(&cfg, &facts);
    let calls: Vec<u64> = kinds.iter().zip(&before).map(|(k, b)| sent(k) - b).collect();
    // Per firewall: NAT for 1 Service + 2 subnets, security for 1, fib-lookup for 2 subnets,
    // one FQDN table, one interface read.
    assert_eq!(calls, [6, 2, 4, 2, 2], "what verify sent ({kinds:?}): {}", sim.stats());
    let failed: Vec<&serde_json::Value> = rows.iter().filter(|r| r["ok"] != true).collect();
    assert!(failed.is_empty() && code == Some(0), "every check green: {failed:#?} {stderr}");
    for fw in ["007900000001", "007900000002"] {
        for check in ["in-sync", "config-version", "interfaces", "inbound-nat", "inbound-security", "fqdn", "route", "outbound-nat"] {
            assert!(rows.iter().any(|r| r["serial"] == fw && r["check"] == check), "{fw} {check}: {rows:#?}");
        }
    }
}

/// Another administrator writes `element` into `rulebase` (`nat` or `security`) of eks-dg's
/// pre-rulebase, moves it to the top, commits and pushes the device group.
fn foreign_rule_on_top(sim: &Sim, rulebase: &str, name: &str, element: &str) {
    let rules = format!("{DG_RULES}/{rulebase}/rules");
    let entry = format!("{rules}/entry[@name='{name}']");
    let as_other = |p: &[(&str, &str)]| {
        let r = sim.api_as("other-admin", "other", p);
        assert!(r.contains("success"), "{p:?}: {r}");
    };
    as_other(&[("type", "config"), ("action", "set"), ("xpath", &rules), ("element", element)]);
    as_other(&[("type", "config"), ("action", "move"), ("xpath", &entry), ("where", "top")]);
    as_other(&[("type", "commit"), ("cmd", "<commit></commit>")]);
    let push = "<commit-all><shared-policy><device-group><entry name=\"eks-dg\"/></device-group></shared-policy></commit-all>";
    as_other(&[("type", "commit"), ("action", "all"), ("cmd", push)]);
}

fn failed_rows(rows: &[serde_json::Value]) -> Vec<(String, String, String, String)> {
    rows.iter()
        .filter(|r| r["ok"] != true)
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (s("serial"), s("check"), s("subject"), s("detail"))
        })
        .collect()
}

/// A synced world: the two firewalls of `DEVICES_WITH_INTERFACES`, another admin's allow rule,
/// the stacked template, the FQDN of svc-0 resolvable, one Service (`facts_json(1)`) synced.
fn synced() -> (Sim, String, String) {
    let sim = Sim::start_with_devices(DEVICES_WITH_INTERFACES, &["--job-step-ms", "0"]);
    let cfg = path_str(&sim.write_config(""));
    allow_inbound_and_stack_the_template(&sim);
    sim.dns(serde_json::json!({FQDN_0: ["192.168.110.77"]}));
    let facts = sim.dir.path().join("facts.json");
    std::fs::write(&facts, facts_json(1, "")).unwrap();
    let facts = path_str(&facts);
    let out = cli(&["--config", &cfg, "sync", "--once", "--facts", &facts]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, rows, stderr) = verify_json(&cfg, &facts);
    assert_eq!(code, Some(0), "green before the fault: {:#?} {stderr}", failed_rows(&rows));
    (sim, cfg, facts)
}

const FQDN_0: &str = "internal-svc-0.elb.us-west-2.amazonaws.com";

#[test]
fn an_fqdn_the_firewalls_cannot_resolve_is_named() {
    let (sim, cfg, facts) = synced();
    let before = requests(&sim, "op.request.system");
    sim.dns(serde_json::json!({}));
    let (code, rows, _) = verify_json(&cfg, &facts);
    let f = failed_rows(&rows);
    assert_eq!((code, f.len()), (Some(1), 2), "{f:#?}");
    assert!(f.iter().all(|r| r.1 == "fqdn" && r.2 == "shop/default/svc-0" && r.3.contains("has not resolved")), "{f:#?}");
    assert_eq!(requests(&sim, "op.request.system") - before, 2, "one FQDN table read per firewall: {}", sim.stats());
    sim.dns(serde_json::json!({FQDN_0: ["192.168.110.77"]}));
    assert_eq!(verify_json(&cfg, &facts).0, Some(0), "resolved again: green");
}

#[test]
fn a_foreign_nat_rule_above_ours_capturing_the_port_is_named() {
    let (sim, cfg, facts) = synced();
    let nat = "<entry name='foreign-capture'><from><member>untrust</member></from><to><member>untrust</member></to><source><member>any</member></source>\
        <destination><member>any</member></destination><service>any</service></entry>";
    foreign_rule_on_top(&sim, "nat", "foreign-capture", nat);
    let f = failed_rows(&verify_json(&cfg, &facts).1);
    let nat: Vec<_> = f.iter().filter(|r| r.1 == "inbound-nat").collect();
    assert_eq!(nat.len(), 2, "both firewalls took the foreign rule: {f:#?}");
    assert!(nat.iter().all(|r| r.3.contains("matches foreign-capture before ours (demo.in.shop.default.svc-0)")), "{f:#?}");
}

#[test]
fn a_security_rule_that_denies_the_service_is_named() {
    let (sim, cfg, facts) = synced();
    let deny = "<entry name='block-in'><from><member>untrust</member></from><to><member>trust</member></to><source><member>any</member></source>\
        <destination><member>any</member></destination><service><member>any</member></service><application><member>any</member></application><action>deny</action></entry>";
    foreign_rule_on_top(&sim, "security", "block-in", deny);
    let before = requests(&sim, "op.test.security-policy-match");
    let f = failed_rows(&verify_json(&cfg, &facts).1);
    assert_eq!(requests(&sim, "op.test.security-policy-match") - before, 2, "one per Service and firewall: {}", sim.stats());
    let sec: Vec<_> = f.iter().filter(|r| r.1 == "inbound-security").collect();
    assert_eq!(sec.len(), 2, "{f:#?}");
    assert!(sec.iter().all(|r| r.3.contains("blocked: block-in says deny")), "{f:#?}");
    assert!(f.iter().all(|r| r.1 == "inbound-security"), "nothing else failed: {f:#?}");
}

#[test]
fn a_static_route_whose_next_hop_is_off_the_trust_subnet_is_named() {
    let (sim, cfg, facts) = synced();
    // fw-01's trust interface moves: our routes' next hop (192.168.2.1) is no longer on a
    // connected subnet, so the firewall keeps them inactive.
    let mut devices: serde_json::Value = serde_json::from_str(DEVICES_WITH_INTERFACES).unwrap();
    devices[0]["interfaces"][1]["address"] = "192.168.99.10/24".into();
    sim.devices(devices);
    let before = requests(&sim, "op.test.routing");
    let f = failed_rows(&verify_json(&cfg, &facts).1);
    assert_eq!(requests(&sim, "op.test.routing") - before, 4, "one fib-lookup per subnet and firewall: {}", sim.stats());
    let routes: Vec<_> = f.iter().filter(|r| r.1 == "route").collect();
    assert_eq!(routes.len(), 2, "{f:#?}");
    assert!(routes.iter().all(|r| r.0 == "007900000001"), "only fw-01's routes: {f:#?}");
    // The firewall has no route for the cluster subnet at all (our static route is inactive).
    assert!(routes.iter().all(|r| r.3.contains("no route to 192.168.11")), "{f:#?}");
}

#[test]
fn a_firewall_that_silently_kept_its_old_config_is_named() {
    let (sim, cfg, facts) = synced();
    // fw-02 reports the next push OK but keeps its old config (pan-os-ansible#400); Panorama
    // still says "in sync" for it (the sim's strictest reading).
    sim.faults(serde_json::json!({"push_silently_ignored_by": ["007900000002"]}));
    sim.dns(serde_json::json!({FQDN_0: ["192.168.110.77"], "internal-svc-1.elb.us-west-2.amazonaws.com": ["192.168.111.78"]}));
    std::fs::write(&facts, facts_json(2, "")).unwrap();
    let out = cli(&["--config", &cfg, "sync", "--once", "--facts", &facts]);
    assert!(out.status.success(), "the push job says OK: {}", String::from_utf8_lossy(&out.stderr));
    let (code, rows, _) = verify_json(&cfg, &facts);
    assert_eq!(code, Some(1));
    let f = failed_rows(&rows);
    assert!(f.iter().all(|r| r.0 == "007900000002"), "fw-01 took the push: {f:#?}");
    let version = f.iter().find(|r| r.1 == "config-version").unwrap_or_else(|| panic!("{f:#?}"));
    assert!(version.3.contains("while fw-01 holds") && version.3.contains("older policy"), "{version:?}");
    assert!(f.iter().any(|r| r.1 == "inbound-nat" && r.2 == "shop/default/svc-1"), "its data plane lacks the new rule: {f:#?}");
    assert!(rows.iter().any(|r| r["serial"] == "007900000002" && r["check"] == "in-sync" && r["ok"] == true), "Panorama says in sync");
}

#[test]
fn status_carries_the_last_verification_per_service_and_per_firewall() {
    let (sim, cfg, facts) = synced();
    let status = |extra: &[&str]| {
        let mut a = vec!["--config", cfg.as_str(), "--output", "json", "status", "--facts", facts.as_str()];
        a.extend(extra);
        let out = cli(&a);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let st = status(&[]);
    let v = &st["verification"];
    assert!(v["summary"].as_str().unwrap().starts_with("verified on 2/2 firewalls at "), "{v:#}");
    let fws: Vec<(&str, bool)> =
        v["firewalls"].as_array().unwrap().iter().map(|f| (f["serial"].as_str().unwrap(), f["ok"] == true)).collect();
    assert_eq!(fws, [("007900000001", true), ("007900000002", true)], "{v:#}");
    let svc = &st["services"][0];
    assert_eq!((svc["verification"]["verified_on"].as_u64(), svc["verification"]["firewalls"].as_u64()), (Some(2), Some(2)), "{svc:#}");

    // A failure: the text summary names the check and where it failed; JSON lists it on the Service.
    sim.dns(serde_json::json!({}));
    let svc = status(&[])["services"][0].clone();
    assert_eq!(svc["verification"]["verified_on"].as_u64(), Some(0), "{svc:#}");
    assert!(svc["verification"]["failed"].as_array().unwrap().iter().all(|f| f["check"] == "fqdn"), "{svc:#}");
    let out = cli(&["--config", &cfg, "status", "--facts", &facts]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("verify: ")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("verified on 0/2 firewalls") && line.contains("FAILED: 007900000001 fqdn shop/default/svc-0"), "{line}");

    // --no-verify asks the firewalls nothing.
    let before = requests(&sim, "op.test.nat-policy-match") + requests(&sim, "op.show.interface");
    assert_eq!(status(&["--no-verify"])["verification"]["skipped"], "--no-verify");
    assert_eq!(requests(&sim, "op.test.nat-policy-match") + requests(&sim, "op.show.interface"), before, "{}", sim.stats());
}

//! `pano-eks verify` against panorama-sim (issue 15). The failure classes that need the sim's
//! managed-device data plane (branch `verify-sim`) are not here yet; see docs/testing.md.

mod support;

use support::{PASSWORD, Sim, facts_json, path_str};

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

/// Interfaces as AWS discovery reports the ENIs, matching `facts_json`'s trust subnets.
const DEVICES_WITH_INTERFACES: &str = r#"[
  {"serial": "007900000001", "hostname": "fw-01", "ip": "10.0.0.11", "interfaces": [
    {"name": "ethernet1/1", "zone": "untrust", "address": "192.168.1.10/24"}, {"name": "ethernet1/2", "zone": "trust", "address": "192.168.2.10/24"}]},
  {"serial": "007900000002", "hostname": "fw-02", "ip": "10.0.0.12", "interfaces": [
    {"name": "ethernet1/1", "zone": "untrust", "address": "192.168.11.10/24"}, {"name": "ethernet1/2", "zone": "trust", "address": "192.168.12.10/24"}]}]"#;

fn verify_json(cfg: &str, facts: &str) -> (Option<i32>, Vec<serde_json::Value>, String) {
    let out = cli(&["--config", cfg, "--output", "json", "verify", "--facts", facts]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    (out.status.code(), report["rows"].as_array().cloned().unwrap_or_default(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn green_on_both_firewalls_then_a_silently_ignored_push_is_caught() {
    let sim = Sim::start_with_devices(DEVICES_WITH_INTERFACES, &["--job-step-ms", "0"]);
    let cfg = path_str(&sim.write_config(""));
    // Another admin's allow rule for the inbound traffic, committed (our partial commit never
    // takes another admin's changes), so our push carries it to the firewalls.
    let dg = "/config/devices/entry[@name='localhost.localdomain']/device-group/entry[@name='eks-dg']/pre-rulebase/security/rules";
    let rule = "<entry name='allow-in'><from><member>untrust</member></from><to><member>trust</member></to><source><member>any</member></source>\
        <destination><member>any</member></destination><service><member>any</member></service><application><member>any</member></application><action>allow</action></entry>";
    let r = sim.api_as("other-admin", "other", &[("type", "config"), ("action", "set"), ("xpath", dg), ("element", rule)]);
    assert!(r.contains("success"), "{r}");
    // The stack carries our template (what `panorama prepare` sets up), so the routes reach them.
    let stack = "/config/devices/entry[@name='localhost.localdomain']/template-stack/entry[@name='eks-stack']/templates";
    let r = sim.api_as(
        "other-admin",
        "other",
        &[("type", "config"), ("action", "set"), ("xpath", stack), ("element", "<member>eks-template</member>")],
    );
    assert!(r.contains("success"), "{r}");
    let r = sim.api_as("other-admin", "other", &[("type", "commit"), ("cmd", "<commit></commit>")]);
    assert!(r.contains("success"), "{r}");
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
        for check in ["in-sync", "interfaces", "inbound-nat", "inbound-security", "fqdn", "route", "outbound-nat"] {
            assert!(rows.iter().any(|r| r["serial"] == fw && r["check"] == check), "{fw} {check}: {rows:#?}");
        }
    }

    // fw-02 reports the next push OK but keeps its old config (pan-os-ansible#400).
    sim.faults(serde_json::json!({"push_silently_ignored_by": ["007900000002"]}));
    std::fs::write(&facts, facts_json(2, "")).unwrap();
    let out = cli(&["--config", &cfg, "sync", "--once", "--facts", &facts]);
    assert!(out.status.success(), "the push job says OK: {}", String::from_utf8_lossy(&out.stderr));
    let (code, rows, _) = verify_json(&cfg, &facts);
    assert_eq!(code, Some(1));
    let failed: Vec<(&str, &str, &str)> = rows
        .iter()
        .filter(|r| r["ok"] != true)
        .map(|r| (r["serial"].as_str().unwrap(), r["check"].as_str().unwrap(), r["subject"].as_str().unwrap()))
        .collect();
    assert!(failed.contains(&("007900000002", "inbound-nat", "shop/default/svc-1")), "{rows:#?}");
    assert!(failed.iter().all(|f| f.0 == "007900000002"), "fw-01 took the push: {failed:?}");
}

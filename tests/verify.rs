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

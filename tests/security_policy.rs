//! `[sync.security]` against panorama-sim (issue 19): the allow rules, outbound rules and dynamic
//! address groups read back with pan-os-python exactly as planned and in the planned order;
//! relabel, re-annotate and delete follow; another admin's rules are never moved or committed;
//! what is sent (`/_sim/writes`: moves of our rules only); and verify's policy match on the
//! firewalls: every protected Service allowed by its own rule, a port no Service claims denied.

mod support;

use std::time::{Duration, Instant};

use pano_eks::secret::Secret;
use pano_eks::sync::{Credentials, Engine, EngineOptions};
use pano_eks_core::Facts;
use support::{ADMIN, PASSWORD, Sim, path_str};

const DG: &str = "/config/devices/entry[@name='localhost.localdomain']/device-group/entry[@name='eks-dg']";
const SECURITY: &str = "[sync.security]\nenabled = true\nafter = \"corp-first\"\n";
const IN_WEB: &str = "demo.in.shop.default.web";
const IN_API: &str = "demo.in.shop.payments.api";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Facts: cluster shop (two subnets) with `services` = (namespace, name, label, annotations).
fn facts(services: &[(&str, &str, &str, &[(&str, &str)])]) -> Facts {
    let svcs: Vec<serde_json::Value> = services
        .iter()
        .map(|(ns, name, label, ann)| {
            // An internal NLB (the lab's), plus the test's own annotations.
            let internal = [("service.beta.kubernetes.io/aws-load-balancer-internal", "true")];
            let annotations: serde_json::Map<_, _> =
                internal.iter().chain(ann.iter()).map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect();
            serde_json::json!({
                "namespace": ns, "name": name, "labels": {"panw-tg-port": label}, "type": "LoadBalancer",
                "annotations": annotations,
                "lb_hostname": format!("internal-{name}.elb.us-west-2.amazonaws.com"),
                "ports": [{"port": 80, "protocol": "TCP"}], "created": "2026-11-26T10:00:00Z"
            })
        })
        .collect();
    let doc = serde_json::json!({
        "clusters": [{"name": "shop", "subnets": [{"id": "subnet-1", "cidr": "192.168.110.0/24", "az": "us-west-2a"},
                                                  {"id": "subnet-2", "cidr": "192.168.111.0/24", "az": "us-west-2b"}],
                      "services": svcs}],
        "firewalls": [{"id": "i-0abc", "az": "us-west-2a", "trust_subnet_cidr": "192.168.2.0/24"},
                      {"id": "i-0def", "az": "us-west-2b", "trust_subnet_cidr": "192.168.12.0/24"}]
    });
    Facts::from_json(&doc.to_string()).unwrap()
}

fn two() -> Facts {
    facts(&[("default", "web", "82", &[]), ("payments", "api", "83", &[("pano-eks/applications", "ssl,web-browsing")])])
}

fn foreign_rule(name: &str, action: &str) -> String {
    format!(
        "<entry name=\"{name}\"><from><member>any</member></from><to><member>any</member></to><source><member>any</member></source>\
         <destination><member>any</member></destination><source-user><member>any</member></source-user><category><member>any</member></category>\
         <application><member>any</member></application><service><member>any</member></service><action>{action}</action></entry>"
    )
}

/// Another admin writes a rule (and, with `commit`, commits it as its own partial commit).
fn other_admin_rule(sim: &Sim, name: &str, action: &str, commit: bool) {
    let xpath = format!("{DG}/pre-rulebase/security/rules/entry[@name='{name}']");
    let el = foreign_rule(name, action);
    let r = sim.api_as("other-admin", "other", &[("type", "config"), ("action", "edit"), ("xpath", &xpath), ("element", &el)]);
    assert!(r.contains("status=\"success\""), "{r}");
    if commit {
        let cmd = "<commit><partial><admin><member>other-admin</member></admin></partial></commit>";
        let r = sim.api_as("other-admin", "other", &[("type", "commit"), ("cmd", cmd)]);
        assert!(r.contains("status=\"success\""), "{r}");
        let start = Instant::now();
        while sim.jobs().iter().any(|j| j["status"] != "FIN") {
            assert!(start.elapsed() < Duration::from_secs(60), "the other admin's commit did not finish");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// pan-os-python's view of the device group: (rules in order, groups).
fn readback(sim: &Sim) -> Option<serde_json::Value> {
    let venv = std::env::var_os("PANO_EKS_VENV").map(std::path::PathBuf::from);
    let python = venv.map(|v| v.join("bin/python")).filter(|p| p.exists());
    let Some(python) = python else {
        assert!(std::env::var("PANO_EKS_REQUIRE_TOOLS").as_deref() != Ok("1"), "pan-os-python is required (scripts/setup-env)");
        eprintln!("SKIPPED: pan-os-python readback (no PANO_EKS_VENV)");
        return None;
    };
    let script = support::repo_root().join("tests/python/security_readback.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .args([&sim.url, &path_str(&sim.ca()), ADMIN, "PANO_EKS_TEST_PANORAMA_PASSWORD", "eks-dg"])
        .env("PANO_EKS_TEST_PANORAMA_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

fn names(v: &serde_json::Value, list: &str) -> Vec<String> {
    v[list].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect()
}

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_pano-eks")).args(args).env("PANO_EKS_TEST_PANORAMA_PASSWORD", PASSWORD).output().unwrap()
}

#[test]
fn rules_groups_and_order_read_back_as_planned_and_follow_the_cluster() {
    let sim = Sim::start(&["--job-step-ms", "0"]);
    // Another admin's rules: two committed, one left pending.
    other_admin_rule(&sim, "corp-first", "allow", true);
    other_admin_rule(&sim, "corp-deny", "deny", true);
    other_admin_rule(&sim, "corp-pending", "deny", false);
    let cfg = sim.config(SECURITY);
    let rt = rt();
    let e = rt
        .block_on(Engine::connect_with(&cfg, sim.dir.path(), EngineOptions::default(), Credentials::Password(Secret::new(PASSWORD))))
        .unwrap();
    sim.reset_writes();

    let r = rt.block_on(e.converge(&two())).unwrap();
    assert!(r.plan.problems.is_empty(), "{:#?}", r.plan.problems);
    let planned_rules: Vec<&str> = r
        .plan
        .operations
        .iter()
        .filter(|o| o.kind() == pano_eks_core::Kind::SecurityRule && matches!(o, pano_eks_core::Operation::Create { .. }))
        .map(|o| o.name())
        .collect();
    let ours = [IN_WEB, IN_API, "demo.out.shop.192.168.110.0_24", "demo.out.shop.192.168.111.0_24"];
    assert_eq!(planned_rules, ours);
    // What was sent: every move names one of our rules, never another admin's.
    let writes = sim.writes();
    let moves: Vec<&serde_json::Value> = writes.iter().filter(|w| w["action"] == "move").collect();
    assert_eq!(moves.len(), ours.len(), "new rules land at the bottom; each is moved once into the block: {moves:?}");
    for m in &moves {
        let xp = m["xpath"].as_str().unwrap();
        assert!(xp.contains("/pre-rulebase/security/rules/entry[@name='demo."), "a move of a rule not ours: {xp}");
        assert!(!m["refused"].as_bool().unwrap(), "{m}");
    }
    assert!(writes.iter().all(|w| !w["xpath"].as_str().unwrap_or("").contains("corp-")), "nothing of the other admin's is written");

    // pan-os-python reads exactly the planned rules, in the planned place, and the groups.
    if let Some(v) = readback(&sim) {
        let mut want = vec!["corp-first".to_owned()];
        want.extend(ours.iter().map(|s| s.to_string()));
        want.extend(["corp-deny".to_owned(), "corp-pending".to_owned()]);
        assert_eq!(names(&v, "rules"), want);
        let web = &v["rules"][1];
        assert_eq!(web["fromzone"], serde_json::json!(["untrust"]));
        assert_eq!(web["tozone"], serde_json::json!(["trust"]));
        assert_eq!(web["service"], serde_json::json!(["demo.tcp-82"]));
        assert_eq!(web["application"], serde_json::json!(["any"]));
        assert_eq!((web["action"].as_str(), web["log_end"].as_bool()), (Some("allow"), Some(true)));
        assert_eq!(v["rules"][2]["application"], serde_json::json!(["ssl", "web-browsing"]));
        assert_eq!(v["rules"][3]["source"], serde_json::json!(["192.168.110.0/24"]));
        let groups: Vec<(String, String)> = v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| (g["name"].as_str().unwrap().to_owned(), g["dynamic_value"].as_str().unwrap_or("").to_owned()))
            .collect();
        let want_groups = [
            ("demo.shop", "'pano-eks.demo.shop'"),
            ("demo.shop.default", "'pano-eks.demo.shop.default'"),
            ("demo.shop.payments", "'pano-eks.demo.shop.payments'"),
        ];
        assert_eq!(groups, want_groups.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>());
    }
    // The other admin's pending rule stays pending: our partial commit did not take it along.
    assert!(!sim.config_xml("running").contains("corp-pending"), "another admin's pending rule was committed");
    assert!(sim.config_xml("running").contains(IN_WEB));

    // A no-op resync writes nothing and moves nothing.
    sim.reset_writes();
    let again = rt.block_on(e.converge(&two())).unwrap();
    assert!(again.plan.is_noop(), "{:#?}", again.plan.operations);
    assert_eq!((again.write_calls, again.commit_job), (0, None));
    assert!(sim.writes().is_empty());

    // The other admin moves the anchor to the end: our block follows, only ours move.
    let r = sim.api_as(
        "other-admin",
        "other",
        &[
            ("type", "config"),
            ("action", "move"),
            ("xpath", &format!("{DG}/pre-rulebase/security/rules/entry[@name='corp-first']")),
            ("where", "bottom"),
        ],
    );
    assert!(r.contains("status=\"success\""), "{r}");
    sim.reset_writes();
    let r = rt.block_on(e.converge(&two())).unwrap();
    assert_eq!(r.plan.moves(), ours.len());
    assert!(sim.writes().iter().all(|w| w["action"] == "move" && w["xpath"].as_str().unwrap().contains("entry[@name='demo.")));
    if let Some(v) = readback(&sim) {
        let mut want = vec!["corp-deny".to_owned(), "corp-pending".to_owned(), "corp-first".to_owned()];
        want.extend(ours.iter().map(|s| s.to_string()));
        assert_eq!(names(&v, "rules"), want);
    }
    // corp-first's move is the other admin's pending change: still not committed by us.
    assert!(!sim.config_xml("running").contains("corp-pending"));

    // Re-annotate: the rule is updated in place. Relabel: its service follows. Delete: it goes.
    let reannotated = facts(&[
        ("default", "web", "82", &[("pano-eks/applications", "web-browsing")]),
        ("payments", "api", "83", &[("pano-eks/applications", "ssl,web-browsing")]),
    ]);
    let r = rt.block_on(e.converge(&reannotated)).unwrap();
    assert_eq!(r.plan.counts(), (0, 1, 0), "{:#?}", r.plan.operations);
    let relabelled = facts(&[("default", "web", "90", &[]), ("payments", "api", "83", &[("pano-eks/applications", "ssl,web-browsing")])]);
    rt.block_on(e.converge(&relabelled)).unwrap();
    let deleted = facts(&[("default", "web", "90", &[])]);
    rt.block_on(e.converge(&deleted)).unwrap();
    if let Some(v) = readback(&sim) {
        let rules = names(&v, "rules");
        assert!(rules.contains(&IN_WEB.to_owned()) && !rules.contains(&IN_API.to_owned()), "{rules:?}");
        let web = v["rules"].as_array().unwrap().iter().find(|r| r["name"] == IN_WEB).unwrap().clone();
        assert_eq!((web["service"].clone(), web["application"].clone()), (serde_json::json!(["demo.tcp-90"]), serde_json::json!(["any"])));
        assert_eq!(names(&v, "groups"), ["demo.shop", "demo.shop.default"], "the payments group went with its last Service");
    }
    let (plan, _) = rt.block_on(e.plan(&deleted)).unwrap();
    assert!(plan.is_noop(), "{:#?}", plan.operations);

    // `status` says which rule allows each Service; `down`-style removal (no Services, security
    // off) removes every rule and group of ours and leaves the other admin's.
    let cfg_path = path_str(&sim.write_config(SECURITY));
    let facts_file = sim.dir.path().join("facts.json");
    std::fs::write(&facts_file, deleted.to_json()).unwrap();
    let out = cli(&["--config", &cfg_path, "status", "--facts", &path_str(&facts_file)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("(allowed by {IN_WEB})")), "{stdout}");
    let off = rt
        .block_on(Engine::connect_with(
            &sim.config(""),
            sim.dir.path(),
            EngineOptions::default(),
            Credentials::Password(Secret::new(PASSWORD)),
        ))
        .unwrap();
    rt.block_on(off.converge(&Facts::default())).unwrap();
    if let Some(v) = readback(&sim) {
        assert_eq!(names(&v, "rules"), ["corp-deny", "corp-pending", "corp-first"]);
        assert!(names(&v, "groups").is_empty());
    }
}

#[test]
fn verify_finds_every_service_allowed_by_its_own_rule_and_an_unclaimed_port_denied() {
    let sim = Sim::start(&["--job-step-ms", "0"]);
    let cfg = path_str(&sim.write_config("[sync.security]\nenabled = true\n"));
    let facts_file = sim.dir.path().join("facts.json");
    std::fs::write(&facts_file, two().to_json()).unwrap();
    let facts_file = path_str(&facts_file);
    let out = cli(&["--config", &cfg, "sync", "--once", "--facts", &facts_file]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let verify = || {
        let out = cli(&["--config", &cfg, "--output", "json", "verify", "--facts", &facts_file]);
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        report["rows"].as_array().unwrap().clone()
    };
    let rows = verify();
    let of = |rows: &[serde_json::Value], check: &str| rows.iter().filter(|r| r["check"] == check).cloned().collect::<Vec<_>>();
    let sec = of(&rows, "inbound-security");
    assert_eq!(sec.len(), 4, "2 Services x 2 firewalls: {rows:?}");
    for r in &sec {
        let own = if r["subject"] == "shop/default/web" { IN_WEB } else { IN_API };
        assert!(r["ok"].as_bool().unwrap() && r["detail"].as_str().unwrap().contains(own), "{r}");
    }
    let un = of(&rows, "unclaimed-denied");
    assert_eq!(un.len(), 2, "{rows:?}");
    for r in &un {
        assert!(r["ok"].as_bool().unwrap(), "{r}");
        assert!(r["detail"].as_str().unwrap().contains("interzone-default"), "{r}");
    }

    // The seed's allow-all (as `panorama prepare --allow-all` writes it; here another admin
    // adds and commits it, below our block: placement top) opens every other port: verify says so.
    other_admin_rule(&sim, "allow-all", "allow", true);
    // A new Service's sync pushes the device group, allow-all with it.
    let three = facts(&[("default", "web", "82", &[]), ("payments", "api", "83", &[]), ("default", "cart", "84", &[])]);
    std::fs::write(sim.dir.path().join("facts.json"), three.to_json()).unwrap();
    let out = cli(&["--config", &cfg, "sync", "--once", "--facts", &facts_file]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = verify();
    assert!(of(&rows, "inbound-security").iter().all(|r| r["ok"].as_bool().unwrap()), "our block stays above allow-all: {rows:?}");
    for r in of(&rows, "unclaimed-denied") {
        assert!(!r["ok"].as_bool().unwrap() && r["detail"].as_str().unwrap().contains("allowed by allow-all"), "{r}");
    }
}

/// A rule may name a security profile group the device group inherits: its own, an ancestor
/// device group's or `shared`'s. One the device group cannot see makes that Service `invalid`
/// (the reason names the group), and the others still get their rules.
#[test]
fn profile_groups_of_shared_and_ancestor_device_groups_are_usable_and_others_are_invalid() {
    let sim = Sim::start(&["--job-step-ms", "0"]);
    let ld = "/config/devices/entry[@name='localhost.localdomain']";
    let set = |xpath: &str, element: &str| {
        let r = sim.api_as("other-admin", "other", &[("type", "config"), ("action", "set"), ("xpath", xpath), ("element", element)]);
        assert!(r.contains("status=\"success\""), "{xpath}: {r}");
    };
    let group = |name: &str| format!("<entry name='{name}'><virus><member>default</member></virus></entry>");
    // eks-dg's parent is corp, whose parent is the top (Panorama's read-only parent-dg nodes).
    set(&format!("{ld}/device-group"), "<entry name='corp'/>");
    set(
        "/config/readonly/devices/entry[@name='localhost.localdomain']/device-group",
        "<entry name='eks-dg'><parent-dg>corp</parent-dg></entry>",
    );
    set("/config/shared/profile-group", &group("from-shared"));
    set(&format!("{ld}/device-group/entry[@name='corp']/profile-group"), &group("from-parent"));
    set(&format!("{DG}/profile-group"), &group("from-own"));
    set(&format!("{ld}/device-group/entry[@name='elsewhere']/profile-group"), &group("from-unrelated"));

    let cfg = sim.config("[sync.security]\nenabled = true\n");
    let rt = rt();
    let e = rt
        .block_on(Engine::connect_with(&cfg, sim.dir.path(), EngineOptions::default(), Credentials::Password(Secret::new(PASSWORD))))
        .unwrap();
    let pg = "pano-eks/profile-group";
    let f = facts(&[
        ("default", "a", "82", &[(pg, "from-shared")]),
        ("default", "b", "83", &[(pg, "from-parent")]),
        ("default", "c", "84", &[(pg, "from-own")]),
        ("default", "d", "85", &[(pg, "from-unrelated")]),
    ]);
    let r = rt.block_on(e.converge(&f)).unwrap();
    let state = |n: &str| r.plan.services.iter().find(|s| s.name == n).map(|s| (s.state, s.reason.clone())).unwrap();
    for n in ["a", "b", "c"] {
        assert_eq!(state(n).0, pano_eks_core::ServiceState::Planned, "{n}: {}", state(n).1);
    }
    let (st, why) = state("d");
    assert_eq!(st, pano_eks_core::ServiceState::Invalid);
    assert!(why.contains("\"from-unrelated\""), "{why}");
    // What was written: each rule names its group.
    let running = sim.config_xml("running");
    let security = &running[running.find("<security><rules>").expect("a security rulebase")..];
    for (svc, g) in [("a", "from-shared"), ("b", "from-parent"), ("c", "from-own")] {
        let rule = format!("<entry name=\"demo.in.shop.default.{svc}\"");
        let at = security.find(&rule).unwrap_or_else(|| panic!("no rule for {svc}"));
        let running = security;
        let end = at + running[at..].find("</entry>").unwrap();
        assert!(running[at..end].contains(&format!("<member>{g}</member>")), "{svc}: {}", &running[at..end]);
    }
    assert!(!security.contains("demo.in.shop.default.d\""), "the invalid Service got no security rule");
}

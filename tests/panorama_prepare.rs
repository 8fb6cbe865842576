//! `pano-eks panorama prepare` against panorama-sim: a fresh Panorama becomes ready with no
//! manual step and a second run changes nothing; an existing, differing interface is reported
//! and left untouched (until `--adopt`); `unprepare` (what `down` runs) removes exactly what
//! prepare created; the vm-auth-key pre-flight.

mod support;

use std::process::{Command, Output};
use std::time::Duration;

use pano_eks::panorama::apply::LockWait;
use pano_eks::panorama::prepare::{self, Writer};
use pano_eks::secret::Secret;
use pano_eks::sync::{Credentials, Engine, EngineOptions};
use support::{PASSWORD, Sim};

const T: &str = "/config/devices/entry[@name='localhost.localdomain']/template/entry[@name='eks-template']/config/devices/entry[@name='localhost.localdomain']";

fn run(sim: &Sim, args: &[&str]) -> Output {
    let cfg = sim.write_config("");
    let out = Command::new(env!("CARGO_BIN_EXE_pano-eks"))
        .arg("--config")
        .arg(&cfg)
        .args(args)
        .env("PANO_EKS_TEST_PANORAMA_PASSWORD", PASSWORD)
        .env("PANO_EKS_LOG", "pano_eks=trace")
        .output()
        .unwrap();
    let (o, e) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("--- pano-eks {args:?}: {}\n{o}\n{e}", out.status);
    assert!(!o.contains(PASSWORD) && !e.contains(PASSWORD), "the Panorama password leaked");
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The XML without whitespace, and `admin`/`dirtyId`/`time`/`uuid` attributes.
fn flat(xml: &str) -> String {
    let mut s: String = xml.split(['\n', '\r']).map(str::trim).collect();
    for attr in ["admin", "dirtyId", "time", "uuid"] {
        while let Some(i) = s.find(&format!(" {attr}=\"")) {
            let end = s[i + attr.len() + 3..].find('"').unwrap() + i + attr.len() + 4;
            s.replace_range(i..end, "");
        }
    }
    s
}

fn stat(sim: &Sim, key: &str) -> u64 {
    sim.stats()[key].as_u64().unwrap_or(0)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn engine(rt: &tokio::runtime::Runtime, sim: &Sim) -> Engine {
    let cfg = sim.config("");
    rt.block_on(Engine::connect_with(&cfg, sim.dir.path(), EngineOptions::default(), Credentials::Password(Secret::new(PASSWORD)))).unwrap()
}

fn writer(e: &Engine) -> Writer<'_> {
    Writer {
        client: &e.client,
        admin: support::ADMIN,
        sw_version: &e.sw_version,
        lock_wait: LockWait::default(),
        job_timeout: Duration::from_secs(30),
    }
}

fn record_file(sim: &Sim) -> std::path::PathBuf {
    prepare::record_path(sim.dir.path(), "demo")
}

#[test]
fn a_fresh_panorama_becomes_ready_and_a_second_prepare_changes_nothing() {
    let sim = Sim::start_fresh(&["--job-step-ms", "0"]);
    let first = run(&sim, &["panorama", "prepare"]);
    assert!(first.status.success());
    assert!(stdout(&first).contains("19 created, 0 already there, 0 difference(s) left alone; committed (job"), "{}", stdout(&first));
    assert_eq!(stat(&sim, "write_calls"), 1, "one multi-config call");
    assert_eq!(stat(&sim, "commits"), 1, "one partial commit");

    // What the firewalls need is in the RUNNING config (committed), in the guide's shapes.
    let running = flat(&sim.config_xml("running"));
    for want in [
        "<template-stack><entry name=\"eks-stack\"><description>created by pano-eks (demo)</description><templates><member>eks-template</member></templates></entry></template-stack>",
        "<device-group><entry name=\"eks-dg\"><description>created by pano-eks (demo)</description></entry></device-group>",
        "<dns-setting><servers><primary>169.254.169.253</primary></servers></dns-setting>",
        // The load balancers' probe path: eth0 (ethernet1/1) answers HTTPS (the templates'
        // health-check port) to the UNTRUST subnets only.
        "<entry name=\"ethernet1/1\"><layer3><dhcp-client><enable>yes</enable><create-default-route>yes</create-default-route></dhcp-client><interface-management-profile>pano-eks-lb-probe</interface-management-profile></layer3></entry>",
        "<interface-management-profile><entry name=\"pano-eks-lb-probe\"><https>yes</https><permitted-ip><entry name=\"192.168.1.0/24\"/><entry name=\"192.168.11.0/24\"/></permitted-ip></entry></interface-management-profile>",
        "<entry name=\"ethernet1/2\"><layer3><dhcp-client><enable>yes</enable><create-default-route>no</create-default-route></dhcp-client></layer3></entry>",
        "<entry name=\"untrust\"><network><layer3><member>ethernet1/1</member></layer3></network></entry>",
        "<entry name=\"trust\"><network><layer3><member>ethernet1/2</member></layer3></network></entry>",
        "<entry name=\"vr-default\"><ecmp><enable>yes</enable></ecmp><interface><member>ethernet1/1</member><member>ethernet1/2</member></interface></entry>",
        "<import><network><interface><member>ethernet1/1</member><member>ethernet1/2</member></interface><virtual-router><member>vr-default</member></virtual-router></network></import>",
    ] {
        assert!(running.contains(want), "running config lacks {want}\n{running}");
    }
    assert!(!running.contains("allow-all"), "no allow-all rule unless asked");
    assert!(record_file(&sim).exists());

    // Second run: nothing written, nothing committed.
    let calls = stat(&sim, "write_calls");
    let second = run(&sim, &["panorama", "prepare"]);
    assert!(second.status.success());
    assert!(stdout(&second).contains("0 created, 19 already there, 0 difference(s) left alone; nothing to commit"), "{}", stdout(&second));
    assert_eq!(stat(&sim, "write_calls"), calls);
    assert_eq!(stat(&sim, "commits"), 1);

    // --dry-run writes nothing either; --allow-all adds just the rule, with a warning.
    let dry = run(&sim, &["panorama", "prepare", "--allow-all", "--dry-run"]);
    assert!(dry.status.success() && stdout(&dry).contains("create   security pre-rule allow-all in device group eks-dg"));
    assert_eq!(stat(&sim, "write_calls"), calls);
    let all = run(&sim, &["panorama", "prepare", "--allow-all"]);
    assert!(all.status.success());
    assert!(String::from_utf8_lossy(&all.stderr).contains("warning: --allow-all"));
    assert!(stdout(&all).contains("1 created, 19 already there"), "{}", stdout(&all));
    let running = flat(&sim.config_xml("running"));
    assert!(running.contains("<entry name=\"allow-all\"><from><member>any</member></from><to><member>any</member></to>"), "{running}");
    assert!(running.contains("<action>allow</action>"));
}

#[test]
fn an_existing_differing_interface_is_reported_and_untouched_until_adopt() {
    let sim = Sim::start_fresh(&["--job-step-ms", "0"]);
    // Another admin made ethernet1/1 a static interface in zone dmz (and did not commit).
    let static_if = "<entry name=\"ethernet1/1\"><layer3><ip><entry name=\"10.0.0.1/24\"/></ip></layer3><comment>theirs</comment></entry>";
    for (xp, el) in [
        (format!("{T}/network/interface/ethernet"), static_if.to_string()),
        (
            format!("{T}/vsys/entry[@name='vsys1']/zone"),
            "<entry name=\"dmz\"><network><layer3><member>ethernet1/1</member></layer3></network></entry>".to_string(),
        ),
    ] {
        let r = sim.api_as("other-admin", "other", &[("type", "config"), ("action", "set"), ("xpath", &xp), ("element", &el)]);
        assert!(r.contains("success"), "{r}");
    }
    let out = run(&sim, &["panorama", "prepare"]);
    assert_eq!(out.status.code(), Some(1), "differences left: not ready");
    let o = stdout(&out);
    assert!(o.contains("DIFFERS  ethernet1/1: layer 3, DHCP client with default route: ethernet1/1 has static IP addresses, not a DHCP client (left alone; --adopt changes it)"), "{o}");
    assert!(o.contains("DIFFERS  ethernet1/1 in zone untrust: ethernet1/1 is in zone dmz, not untrust"), "{o}");
    assert!(o.contains("create   ethernet1/2: layer 3"), "the rest is still prepared: {o}");
    // Left alone, the interface gets no probe profile either (and the report says what that costs).
    assert!(o.contains("DIFFERS  ethernet1/1 with interface management profile pano-eks-lb-probe: ethernet1/1 is left alone, so it gets no probe profile: health checks fail"), "{o}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Panorama is not fully prepared: 3 existing setting(s) differ"));
    let cand = flat(&sim.config_xml("candidate"));
    assert!(cand.contains(&format!("<ethernet>{static_if}")), "interface untouched:\n{cand}");
    assert!(
        cand.contains("<entry name=\"dmz\"><network><layer3><member>ethernet1/1</member></layer3></network></entry>"),
        "zone untouched"
    );
    // Our partial commit did not take the other admin's pending changes along.
    let running = flat(&sim.config_xml("running"));
    assert!(!running.contains("dmz") && !running.contains("10.0.0.1/24"), "another admin's changes were committed:\n{running}");
    assert!(running.contains("<entry name=\"ethernet1/2\">"));
    // The template existed (their set created it): not ours, not in the record.
    let record = std::fs::read_to_string(record_file(&sim)).unwrap();
    assert!(!record.contains("\"kind\": \"template\""), "{record}");

    // --adopt makes them what the firewalls need.
    let adopt = run(&sim, &["panorama", "prepare", "--adopt"]);
    assert!(adopt.status.success());
    assert!(
        stdout(&adopt).contains("adopt    ethernet1/1: layer 3, DHCP client with default route: was: ethernet1/1 has static IP addresses"),
        "{}",
        stdout(&adopt)
    );
    let again = run(&sim, &["panorama", "prepare"]);
    assert!(again.status.success(), "everything matches after --adopt");
    let cand = flat(&sim.config_xml("candidate"));
    assert!(
        cand.contains("<entry name=\"dmz\"><network><layer3/></network></entry>")
            || cand.contains("<entry name=\"dmz\"><network><layer3></layer3></network></entry>"),
        "{cand}"
    );
}

#[test]
fn unprepare_removes_what_prepare_created_and_nothing_else() {
    // Device group and stack exist already, with the firewalls in them.
    let sim = Sim::start(&["--job-step-ms", "0"]);
    let before = flat(&sim.config_xml("running"));
    let out = run(&sim, &["panorama", "prepare", "--allow-all"]);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("exists   template stack eks-stack")
            && stdout(&out).contains("create   template eks-template in stack eks-stack")
    );
    // Someone else's address in the device group stays whatever happens.
    let dg = "/config/devices/entry[@name='localhost.localdomain']/device-group/entry[@name='eks-dg']/address";
    let r = sim.api_as(
        "other-admin",
        "other",
        &[
            ("type", "config"),
            ("action", "set"),
            ("xpath", dg),
            ("element", "<entry name=\"theirs\"><ip-netmask>10.1.1.1</ip-netmask></entry>"),
        ],
    );
    assert!(r.contains("success"), "{r}");

    let rt = rt();
    let e = engine(&rt, &sim);
    let r = rt.block_on(prepare::unprepare(&writer(&e), &record_file(&sim))).unwrap();
    let lines = prepare::describe_removal(&r.plan).join("\n");
    eprintln!("{lines}");
    assert!(r.commit_job.is_some());
    assert!(lines.contains("removed  security pre-rule allow-all") && lines.contains("removed  template eks-template"), "{lines}");
    assert!(!lines.contains("KEPT"), "{lines}");
    let running = flat(&sim.config_xml("running"));
    assert!(!running.contains("eks-template") && !running.contains("allow-all") && !running.contains("169.254.169.253"), "{running}");
    // The stack and the device group were not ours: still there with their firewalls.
    for keep in ["<template-stack><entry name=\"eks-stack\">", "<device-group><entry name=\"eks-dg\">", "<entry name=\"007900000001\"/>"] {
        assert!(before.contains(keep) && running.contains(keep), "{keep} lost:\n{running}");
    }
    assert!(flat(&sim.config_xml("candidate")).contains("<entry name=\"theirs\">"), "another admin's address was removed");
    assert!(!record_file(&sim).exists(), "record emptied");
    // A second down finds nothing recorded.
    let r2 = rt.block_on(prepare::unprepare(&writer(&e), &record_file(&sim))).unwrap();
    assert!(r2.plan.items.is_empty() && r2.commit_job.is_none());
}

#[test]
fn unprepare_of_a_fresh_prepare_leaves_panorama_as_it_was_and_keeps_what_others_added() {
    let sim = Sim::start_fresh(&["--job-step-ms", "0"]);
    let before = flat(&sim.config_xml("running"));
    assert!(run(&sim, &["panorama", "prepare"]).status.success());
    let rt = rt();
    let e = engine(&rt, &sim);
    let r = rt.block_on(prepare::unprepare(&writer(&e), &record_file(&sim))).unwrap();
    assert!(r.plan.items.iter().all(|(_, x)| *x == pano_eks_core::prepare::Removal::Delete), "{:#?}", r.plan.items);
    assert_eq!(flat(&sim.config_xml("running")), before, "Panorama is back to where it was");

    // Prepare again; another admin adds a static route to our router: router and template stay.
    assert!(run(&sim, &["panorama", "prepare"]).status.success());
    let route = format!("{T}/network/virtual-router/entry[@name='vr-default']/routing-table/ip/static-route");
    let x = sim.api_as(
        "other-admin",
        "other",
        &[
            ("type", "config"),
            ("action", "set"),
            ("xpath", &route),
            (
                "element",
                "<entry name=\"theirs\"><destination>10.9.0.0/16</destination><nexthop><ip-address>10.0.2.1</ip-address></nexthop></entry>",
            ),
        ],
    );
    assert!(x.contains("success"), "{x}");
    let r = rt.block_on(prepare::unprepare(&writer(&e), &record_file(&sim))).unwrap();
    let lines = prepare::describe_removal(&r.plan).join("\n");
    assert!(lines.contains("KEPT     virtual router vr-default (ECMP enabled): holds config pano-eks did not create: [vr-default]/routing-table/ip/static-route[theirs]"), "{lines}");
    assert!(lines.contains("KEPT     template eks-template"), "{lines}");
    assert!(lines.contains("removed  zone untrust") && lines.contains("removed  device group eks-dg"), "{lines}");
    let cand = flat(&sim.config_xml("candidate"));
    assert!(cand.contains("<entry name=\"theirs\"><destination>10.9.0.0/16</destination>"), "their route survived");
    let rec = std::fs::read_to_string(record_file(&sim)).unwrap();
    assert!(rec.contains("virtual-router") && !rec.contains("\"zone\""), "the record keeps only what was kept: {rec}");
}

#[test]
fn vm_auth_key_lifetimes_are_checked_against_panorama() {
    let sim = Sim::start_fresh(&["--job-step-ms", "0"]);
    let rt = rt();
    let e = engine(&rt, &sim);
    let make_key = |hours: &str| {
        let r = sim.api_as("other-admin", "other", &[("type", "op"), ("cmd", &format!("<request><bootstrap><vm-auth-key><generate><lifetime>{hours}</lifetime></generate></vm-auth-key></bootstrap></request>"))]);
        r.split("VM auth key ").nth(1).unwrap().split(' ').next().unwrap().to_string()
    };
    let long = make_key("8760");
    let listed = rt.block_on(prepare::vm_auth_keys(&e.client)).unwrap();
    assert!(listed.iter().any(|(k, _)| *k == long), "{listed:?}");
    // Panorama's clock, as the product reads it (never the local clock).
    let clock = rt.block_on(prepare::panorama_clock(&e.client)).unwrap();
    let now = pano_eks_core::prepare::parse_panorama_clock(&clock).unwrap_or_else(|| panic!("unreadable clock {clock:?}"));
    assert!(pano_eks_core::prepare::check_vm_auth_key_by_panorama_clock(&listed, &long, &clock, 3600).is_ok());
    assert_eq!(
        pano_eks_core::prepare::check_vm_auth_key(&listed, "123456789012345", now, 3600),
        Err(pano_eks_core::prepare::KeyProblem::Unknown)
    );
    // A key valid for one hour is too close to its expiry once a few seconds have passed.
    let short = make_key("1");
    let listed = rt.block_on(prepare::vm_auth_keys(&e.client)).unwrap();
    assert!(matches!(
        pano_eks_core::prepare::check_vm_auth_key(&listed, &short, now + 5, 3600),
        Err(pano_eks_core::prepare::KeyProblem::TooSoon { .. })
    ));
}

/// Panorama in UTC-8 with its clock 90 minutes fast: a 2-hour key has 30 minutes left by
/// Panorama's clock (it refuses registration by that clock), and an expiry printed in UTC-8 read
/// as UTC would look long expired. Needs the sim's `--timezone-offset-minutes` and the
/// `clock_skew_secs` fault (added on the sim branch).
#[test]
fn vm_auth_key_expiry_follows_panoramas_zone_and_clock() {
    use pano_eks_core::prepare::{KeyProblem, check_vm_auth_key_by_panorama_clock};
    let sim = Sim::start_fresh(&["--job-step-ms", "0", "--timezone-offset-minutes", "-480"]);
    let rt = rt();
    let e = engine(&rt, &sim);
    let make_key = |hours: &str| {
        let r = sim.api_as("other-admin", "other", &[("type", "op"), ("cmd", &format!("<request><bootstrap><vm-auth-key><generate><lifetime>{hours}</lifetime></generate></vm-auth-key></bootstrap></request>"))]);
        r.split("VM auth key ").nth(1).unwrap().split(' ').next().unwrap().to_string()
    };
    let key = make_key("2");
    let check = || {
        let listed = rt.block_on(prepare::vm_auth_keys(&e.client)).unwrap();
        let clock = rt.block_on(prepare::panorama_clock(&e.client)).unwrap();
        (check_vm_auth_key_by_panorama_clock(&listed, &key, &clock, 3600), listed, clock)
    };
    let (r, listed, clock) = check();
    assert!(r.is_ok(), "2 h left in UTC-8: {r:?} (listed {listed:?}, clock {clock:?})");
    // Read as UTC against our clock, the UTC-8 expiry would look 6 hours expired.
    let local_now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!(matches!(pano_eks_core::prepare::check_vm_auth_key(&listed, &key, local_now, 3600), Err(KeyProblem::Expired { .. })));
    sim.faults(serde_json::json!({"clock_skew_secs": 5400}));
    let (r, _, clock) = check();
    assert!(matches!(r, Err(KeyProblem::TooSoon { .. })), "30 min left by Panorama's fast clock {clock:?}: {r:?}");
}

/// `up` against moto, kube-sim and a FRESH panorama-sim: Panorama is prepared before anything
/// else, the generated vm-auth-key lands in the bucket's config/init-cfg.txt and in no output or
/// log; an explicit key Panorama does not know stops `up` at pre-flight; `down` removes what
/// prepare created.
#[test]
fn up_prepares_panorama_and_the_vm_auth_key_reaches_init_cfg_only() {
    use support::aws_world::{KubeSim, MotoWorld, moto_world};
    let Some(world) = moto_world("us-west-2") else { return };
    let sim = Sim::start_fresh(&["--job-step-ms", "0"]);
    let kube = KubeSim::start("shop");
    let ami = world.key_pair_and_ami("ops");
    let MotoWorld { rt, moto, aws } = world;
    let d = sim.dir.path();
    let clusters = format!(
        "[[clusters]]\nname = \"shop\"\nsubnets = [\"192.168.110.0/24\", \"192.168.111.0/24\"]\n\
         nodes = {{ ami = \"{ami}\", min = 1, max = 1, desired = 1 }}\napi_server = \"{kurl}\"\nca_cert = \"{kca}\"\n",
        kurl = kube.url,
        kca = kube.ca.display(),
    );
    // Not pano-eks.toml: `engine()` rewrites that one with the harness config.
    let write = |extra_firewalls: &str| {
        support::TestConfig { panorama_url: &sim.url, ami: &ami, extra_firewalls, clusters: &clusters, ..Default::default() }
            .write(d, "up.toml")
    };
    let run_up = |cfg: &std::path::Path, args: &[&str], env: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_pano-eks"))
            .arg("--config")
            .arg(cfg)
            .args(args)
            .env_remove("AWS_PROFILE")
            .env("PANO_EKS_TEST_PANORAMA_PASSWORD", PASSWORD)
            .env("PANO_EKS_LOG", "pano_eks=trace,pano_eks_core=trace")
            .env("KUBECONFIG", d.join("kubeconfig"))
            .envs(moto.env())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        eprintln!(
            "--- pano-eks {args:?}: {}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };

    // An explicit key Panorama does not know: pre-flight error, nothing created, key not shown.
    let bad = "998877665544332";
    let cfg = write("vm_auth_key_env = \"TEST_VM_AUTH_KEY\"");
    let out = run_up(&cfg, &["up", "--yes"], &[("TEST_VM_AUTH_KEY", bad)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pre-flight: firewalls.vm_auth_key_env (TEST_VM_AUTH_KEY): Panorama does not know this vm-auth-key"), "{err}");
    assert!(!err.contains(bad) && !String::from_utf8_lossy(&out.stdout).contains(bad), "the key was printed");
    assert_eq!(stat(&sim, "write_calls"), 0, "pre-flight failure wrote to Panorama");
    let buckets = rt.block_on(aws.s3.list_buckets().send()).unwrap();
    assert!(buckets.buckets().is_empty(), "pre-flight failure created a bucket");

    // No key configured: `up` prepares Panorama, generates a key and puts it into init-cfg.
    let cfg = write("");
    let out = run_up(&cfg, &["up", "--yes"], &[]);
    assert!(out.status.success(), "up failed");
    let (o, e) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(e.contains("Panorama prerequisites: 19 created"), "{e}");
    assert!(e.find("Panorama prerequisites").unwrap() < e.rfind("2. buckets").unwrap(), "prepared before the bootstrap package");
    let init = rt.block_on(pano_eks::aws::bucket::get_text(&aws.s3, "demo-panw-bootstrap", "config/init-cfg.txt")).unwrap().unwrap();
    let key = init.lines().find_map(|l| l.strip_prefix("vm-auth-key=")).unwrap().trim().to_string();
    assert!(key.len() >= 10 && key.chars().all(|c| c.is_ascii_alphanumeric()), "vm-auth-key in init-cfg: {key:?}");
    let e2 = engine(&rt, &sim);
    assert!(rt.block_on(prepare::vm_auth_keys(&e2.client)).unwrap().iter().any(|(k, _)| *k == key), "the key is Panorama's");
    assert!(init.contains("tplname=eks-stack") && init.contains("dgname=eks-dg"));
    let moto_log = std::fs::read_to_string(&moto.log).unwrap_or_default();
    for (what, text) in [("stdout", &o), ("stderr (trace log)", &e), ("moto log", &moto_log)] {
        assert!(!text.contains(&key), "the vm-auth-key appears in {what}");
    }
    assert!(flat(&sim.config_xml("running")).contains("<entry name=\"vr-default\"><ecmp><enable>yes</enable></ecmp>"));

    // down removes what prepare created (after the sync objects).
    let down = run_up(&cfg, &["down", "--yes"], &[]);
    assert!(down.status.success(), "down failed");
    assert!(String::from_utf8_lossy(&down.stderr).contains("removed  template eks-template"));
    let running = flat(&sim.config_xml("running"));
    assert!(!running.contains("eks-template") && !running.contains("eks-stack") && !running.contains("eks-dg"), "{running}");
}

//! The sync engine against panorama-sim: what a converge writes, that a second one writes
//! nothing, deletes and in-place updates, foreign objects left alone, and the fault cases
//! (crash after any number of writes, injected 5xx and dropped connections, locks, failed push).

mod support;

use std::time::Duration;

use pano_eks::panorama::apply::{self, LockWait, WriteMode};
use pano_eks::panorama::client::RetryPolicy;
use pano_eks::panorama::locations::Locations;
use pano_eks::panorama::observe::{self, Which};
use pano_eks::secret::Secret;
use pano_eks::sync::{Credentials, Engine, EngineOptions};
use pano_eks_core::{Facts, Observed};
use support::{PASSWORD, Sim, canonical, facts_json, facts_range, without_uuids};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn engine(rt: &tokio::runtime::Runtime, sim: &Sim, opts: EngineOptions) -> Engine {
    let cfg = sim.config("");
    rt.block_on(Engine::connect_with(&cfg, sim.dir.path(), opts, Credentials::Password(Secret::new(PASSWORD)))).unwrap()
}

/// A panorama-sim started with `sim_args` and an engine connected to it with `opts`.
fn started(sim_args: &[&str], opts: EngineOptions) -> (Sim, tokio::runtime::Runtime, Engine) {
    let sim = Sim::start(sim_args);
    let rt = rt();
    let e = engine(&rt, &sim, opts);
    (sim, rt, e)
}

/// As `started` (jobs done at once), with `other-admin` holding the lock the sim fault `lock`
/// names (`config_lock_by`, `commit_lock_by`) and an engine that waits for it at most `bound`.
fn locked_by_another_admin(lock: &str, bound: Duration) -> (Sim, tokio::runtime::Runtime, Engine) {
    let mut opts = fast();
    opts.lock_wait = LockWait { bound };
    let (sim, rt, e) = started(&["--job-step-ms", "0"], opts);
    sim.faults(serde_json::json!({ lock: "other-admin" }));
    (sim, rt, e)
}

/// `pano-eks ARGS` as a user runs it, with the test password.
fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_pano-eks")).args(args).env("PANO_EKS_TEST_PANORAMA_PASSWORD", PASSWORD).output().unwrap()
}

fn fast() -> EngineOptions {
    EngineOptions {
        retry: Some(RetryPolicy { attempts: 8, base: Duration::from_millis(5), cap: Duration::from_millis(50) }),
        ..Default::default()
    }
}

fn facts(n: usize, suffix: &str) -> Facts {
    Facts::from_json(&facts_json(n, suffix)).unwrap()
}

fn stat(sim: &Sim, key: &str) -> u64 {
    sim.stats()[key].as_u64().unwrap_or(0)
}

/// How many `/api` requests of one kind (`op.show.commit-locks`, `keygen`, …) the sim answered.
fn requests(sim: &Sim, key: &str) -> u64 {
    sim.stats()["requests"][key].as_u64().unwrap_or(0)
}

fn read(rt: &tokio::runtime::Runtime, e: &Engine, which: Which) -> Observed {
    rt.block_on(observe::read(&e.client, &Locations::from_settings(&e.settings), which)).unwrap()
}

/// Panorama holds exactly what the facts ask for: a fresh plan against it is empty, and what
/// was committed equals the candidate.
fn assert_converged(rt: &tokio::runtime::Runtime, e: &Engine, f: &Facts) {
    let (plan, mut candidate) = rt.block_on(e.plan(f)).unwrap();
    assert!(plan.is_noop(), "left to do: {:#?}", plan.operations);
    candidate.referrers.clear(); // read for planning only
    candidate.elsewhere = Default::default(); // counts outside our containers, for admission
    let running = read(rt, e, Which::Running);
    assert_eq!(canonical(candidate), canonical(running), "candidate and running differ: uncommitted work left");
}

/// Equal but for NAT rule uuids.
fn same_content(a: &Observed, b: &Observed) -> bool {
    let strip = |o: &Observed| {
        let mut o = o.clone();
        o.nat_rules.iter_mut().for_each(|r| r.uuid = None);
        o
    };
    strip(a) == strip(b)
}

#[test]
fn first_converge_writes_exactly_the_desired_objects_then_nothing() {
    let (sim, rt, e) = started(&["--job-step-ms", "0"], fast());
    let f = facts(3, "");
    let report = rt.block_on(e.converge(&f)).unwrap();
    // 2 tags, 3 × (address, service, NAT rule), 2 outbound rules, 2 subnets × 2 next hops.
    assert_eq!(report.plan.operations.len(), 2 + 9 + 2 + 4);
    assert_eq!(report.write_calls, 1, "one multi-config call");
    assert!(report.commit_job.is_some());
    assert_eq!(report.pushes.len(), 2, "device group and template stack");
    for p in &report.pushes {
        assert_eq!(p.devices.len(), 2, "{p:?}");
        assert!(p.devices.iter().all(|(_, _, r)| r == "OK"));
    }
    // Through the sim's own XML: the inbound rule uses dynamic destination NAT to the FQDN object.
    let running = sim.config_xml("running");
    for want in [
        "<fqdn>internal-svc-0.elb.us-west-2.amazonaws.com</fqdn>",
        "<dynamic-destination-translation><translated-address>demo.shop.default.svc-0</translated-address><translated-port>80</translated-port>",
        "<destination>192.168.110.0/24</destination>",
        "<ip-address>192.168.12.1</ip-address>",
    ] {
        assert!(running.replace(['\n', ' '], "").contains(&want.replace(' ', "")), "running config lacks {want}");
    }
    assert_converged(&rt, &e, &f);

    let (writes, commits, pushes) = (stat(&sim, "write_calls"), stat(&sim, "commits"), stat(&sim, "pushes"));
    let again = rt.block_on(e.converge(&f)).unwrap();
    assert!(again.plan.is_noop());
    assert_eq!((again.write_calls, again.commit_job, again.pushes.len()), (0, None, 0));
    assert_eq!(
        (stat(&sim, "write_calls"), stat(&sim, "commits"), stat(&sim, "pushes")),
        (writes, commits, pushes),
        "no-op resync: 0 writes, 0 commits"
    );
}

#[test]
fn a_removed_service_loses_its_objects_and_a_new_hostname_updates_in_place() {
    let (sim, rt, e) = started(&["--job-step-ms", "0"], fast());
    rt.block_on(e.converge(&facts(3, ""))).unwrap();

    let ops_before = stat(&sim, "write_ops");
    let changed = facts(3, "-v2");
    let r = rt.block_on(e.converge(&changed)).unwrap();
    let (c, u, d) = r.plan.counts();
    assert_eq!((c, u, d), (0, 3, 0), "three addresses updated in place: {:#?}", r.plan.operations);
    assert_eq!(stat(&sim, "write_ops") - ops_before, 3);
    assert_converged(&rt, &e, &changed);

    let fewer = facts(2, "-v2");
    let r = rt.block_on(e.converge(&fewer)).unwrap();
    assert_eq!(r.plan.counts(), (0, 0, 3), "svc-2's address, service object and NAT rule go");
    let running = sim.config_xml("running");
    assert!(!running.contains("svc-2"), "svc-2 is gone from the running config");
    assert_converged(&rt, &e, &fewer);

    // Every Service gone: only what other clusters' rules and routes need remains, and tags stay referenced.
    let none = facts(0, "");
    rt.block_on(e.converge(&none)).unwrap();
    assert_converged(&rt, &e, &none);
}

#[test]
fn foreign_objects_are_never_touched_even_with_look_alike_names() {
    let sim = Sim::start(&["--job-step-ms", "0"]);
    let dg = "/config/devices/entry[@name='localhost.localdomain']/device-group/entry[@name='eks-dg']";
    // Another admin's objects: one with exactly the name we want, others that look like ours.
    for (xpath, element) in [
        (format!("{dg}/address"), "<entry name='demo.shop.default.svc-0'><ip-netmask>10.9.9.9/32</ip-netmask></entry>"),
        (
            format!("{dg}/address"),
            "<entry name='demo.shop.default.legacy'><fqdn>legacy.example.com</fqdn><description>managed by pano-eks</description></entry>",
        ),
        (
            format!("{dg}/pre-rulebase/nat/rules"),
            "<entry name='demo.in.shop.default.old'><from><member>untrust</member></from><to><member>untrust</member></to><source><member>any</member></source><destination><member>any</member></destination><service>any</service></entry>",
        ),
    ] {
        let r = sim.api_as("other-admin", "other", &[("type", "config"), ("action", "set"), ("xpath", &xpath), ("element", element)]);
        assert!(r.contains("success"), "{r}");
    }
    let before = sim.config_xml("candidate");
    let rt = rt();
    let e = engine(&rt, &sim, fast());
    let f = facts(2, "");
    let report = rt.block_on(e.converge(&f)).unwrap();
    assert!(
        report.plan.problems.iter().any(|p| p.message.contains("demo.shop.default.svc-0")),
        "the taken name is reported: {:#?}",
        report.plan.problems
    );
    let after = sim.config_xml("candidate");
    for foreign in ["<ip-netmask>10.9.9.9/32</ip-netmask>", "legacy.example.com", "demo.in.shop.default.old"] {
        assert!(before.contains(foreign) && after.contains(foreign), "{foreign} must stay");
    }
    // The other admin's pending changes were not committed by our partial commit.
    assert!(!sim.config_xml("running").contains("10.9.9.9"), "another admin's change was committed");
    let again = rt.block_on(e.converge(&f)).unwrap();
    assert!(again.plan.is_noop() && again.commit_job.is_none(), "stable with the conflict in place");
}

#[test]
fn killed_after_any_number_of_writes_a_rerun_converges_exactly() {
    let (sim, rt, e) = started(&["--job-step-ms", "0"], fast());
    // From svc-0..29 (old hostnames) to svc-10..39: deletes, in-place updates and creates.
    let start = Facts::from_json(&facts_range(0, 30, "-old")).unwrap();
    let target = Facts::from_json(&facts_range(10, 40, "")).unwrap();
    let locs = Locations::from_settings(&e.settings);
    rt.block_on(e.converge(&start)).unwrap();
    let baseline = read(&rt, &e, Which::Running);
    let (plan, _) = rt.block_on(e.plan(&target)).unwrap();
    let n = plan.operations.len();
    let (c, u, d) = plan.counts();
    assert!(c > 0 && u > 0 && d > 0, "{c} creates, {u} updates, {d} deletes");
    let points: Vec<usize> = (0..=n).step_by((n / 55).max(1)).chain([n]).collect();
    assert!(points.len() >= 50, "need at least 50 crash points, have {}", points.len());
    for k in points {
        // Back to the committed baseline.
        sim.reset();
        rt.block_on(e.converge(&start)).unwrap();
        assert!(same_content(&read(&rt, &e, Which::Running), &baseline), "baseline restored");
        // The killed run: its first k writes landed, one call each, then nothing (no commit).
        rt.block_on(apply::apply(&e.client, &locs, &plan.operations[..k], WriteMode::OnePerCall, LockWait::default())).unwrap();
        let r = rt.block_on(e.converge(&target)).unwrap();
        // (PAN-OS gives re-created rules new uuids: compare the operations without them.)
        assert_eq!(without_uuids(&r.plan.operations), without_uuids(&plan.operations[k..]), "after {k} writes exactly the rest is left");
        assert!(r.commit_job.is_some(), "the interrupted run's writes are committed too (crash at {k})");
        assert_converged(&rt, &e, &target);
        let running = read(&rt, &e, Which::Running);
        let inbound = running.nat_rules.iter().filter(|r| r.name.starts_with("demo.in.")).count();
        assert_eq!(inbound, 30, "no duplicate or stray inbound rule after a crash at {k}");
    }
}

#[test]
fn converges_through_injected_server_errors_and_dropped_connections() {
    let (sim, rt, e) = started(&["--job-step-ms", "0", "--seed", "7"], fast());
    sim.faults(serde_json::json!({"http_error_rate": 0.1, "drop_rate": 0.1}));
    let f = facts(30, "");
    let r = rt.block_on(e.converge(&f)).unwrap();
    assert!(r.commit_job.is_some());
    assert!(e.client.stats.retries.load(std::sync::atomic::Ordering::Relaxed) > 0, "faults were injected and retried");
    sim.faults(serde_json::json!({"http_error_rate": 0.0, "drop_rate": 0.0}));
    assert_converged(&rt, &e, &f);
}

#[test]
fn a_lock_held_by_another_admin_is_waited_for_then_reported_and_left_alone() {
    let (sim, rt, e) = locked_by_another_admin("config_lock_by", Duration::from_millis(1500));
    let started = std::time::Instant::now();
    let err = rt.block_on(e.converge(&facts(1, ""))).unwrap_err().to_string();
    assert!(started.elapsed() >= Duration::from_millis(1000), "it waited: {err}");
    assert!(err.contains("gave up after") && err.contains("other-admin"), "{err}");
    assert!(!sim.config_xml("candidate").contains("demo."), "nothing was written past the lock");
    assert_eq!(sim.stats()["commits"].as_u64().unwrap_or(0), 0);
}

#[test]
fn a_push_that_fails_on_one_firewall_fails_the_sync_and_names_it() {
    let sim = Sim::start(&["--job-step-ms", "0", "--fail-push", "007900000002"]);
    let cfg = sim.write_config("");
    let facts_path = sim.dir.path().join("facts.json");
    std::fs::write(&facts_path, facts_json(1, "")).unwrap();
    let out = cli(&["--config", &support::path_str(&cfg), "sync", "--once", "--facts", &support::path_str(&facts_path)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("007900000002") && stderr.contains("did not succeed"), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "no secret in errors");
}

/// The commit landed but the push failed on a firewall: the next converge finds nothing to
/// commit, yet pushes again (what was sent: one more `commit-all` of the device group), until a
/// push ends OK; then a converge with nothing to do pushes nothing.
#[test]
fn a_failed_push_is_pushed_again_by_the_next_converge_until_it_lands() {
    let (sim, rt, e) = started(&["--job-step-ms", "0"], fast());
    let pushes = || sim.jobs().iter().filter(|j| j["type"] == "CommitAll").count();
    sim.faults(serde_json::json!({"fail_push_serial": "007900000002", "fail_push_message": "injected: device busy"}));
    let err = rt.block_on(e.converge(&facts(1, ""))).unwrap_err().to_string();
    assert!(err.contains("007900000002"), "{err}");
    assert_eq!(pushes(), 1);

    // Still failing: pushed again (nothing to commit), and still reported.
    sim.reset_writes();
    let err = rt.block_on(e.converge(&facts(1, ""))).unwrap_err().to_string();
    assert!(err.contains("007900000002"), "{err}");
    assert!(sim.writes().is_empty(), "nothing was written, only pushed");
    assert_eq!(pushes(), 2);

    // The firewall takes it now: the push lands, and the one after has nothing owed.
    sim.faults(serde_json::json!({"fail_push_serial": null}));
    let r = rt.block_on(e.converge(&facts(1, ""))).unwrap();
    assert!(r.plan.is_noop() && r.commit_job.is_none(), "{:?}", r.plan.operations);
    // Both owed: the device group's, and the template stack's, which the failed first push held up.
    let targets: Vec<&str> = r.pushes.iter().map(|p| p.target.as_str()).collect();
    assert_eq!(targets, ["device-group/eks-dg", "template-stack/eks-stack"]);
    assert_eq!(pushes(), 4);
    let r = rt.block_on(e.converge(&facts(1, ""))).unwrap();
    assert!(r.pushes.is_empty() && r.commit_job.is_none());
    assert_eq!(pushes(), 4);
}

#[test]
fn a_nat_rule_update_sends_the_observed_uuid_so_pan_os_keeps_its_history() {
    use pano_eks::panorama::codec;
    use pano_eks_core::{Object, Operation};
    let (_sim, rt, e) = started(&["--job-step-ms", "0"], fast());
    rt.block_on(e.converge(&facts(1, ""))).unwrap();
    let name = "demo.in.shop.default.svc-0";
    let rule_in = |which| read(&rt, &e, which).nat_rules.into_iter().find(|r| r.name == name).expect("the inbound rule");
    let original = rule_in(Which::Candidate).uuid.expect("PAN-OS gave the rule a uuid");

    // A new target port: the plan updates the rule, carrying the uuid it observed.
    let moved = Facts::from_json(&facts_json(1, "").replace(r#""port": 80,"#, r#""port": 8080,"#)).unwrap();
    let (plan, _) = rt.block_on(e.plan(&moved)).unwrap();
    let update = plan.operations.iter().find(|o| o.name() == name).expect("the rule is updated");
    let Operation::Update { object: Object::NatRule(r) } = update else { panic!("{update:?}") };
    assert_eq!(r.uuid.as_deref(), Some(original.as_str()));

    // Between plan and apply, stamp another uuid on the rule: what it holds after our write can
    // only come from the `edit` we sent (the sim keeps the old uuid when an edit carries none).
    let locs = Locations::from_settings(&e.settings);
    let xpath = locs.entry(pano_eks_core::Kind::NatRule, name);
    let mut stamped = rule_in(Which::Candidate);
    stamped.uuid = Some("5a1e0000-0000-4000-8000-00000000ffff".into());
    rt.block_on(e.client.edit(&xpath, &codec::encode(&Object::NatRule(stamped)))).unwrap();
    assert_eq!(rule_in(Which::Candidate).uuid.as_deref(), Some("5a1e0000-0000-4000-8000-00000000ffff"));
    rt.block_on(apply::apply(&e.client, &locs, &plan.operations, e.mode, LockWait::default())).unwrap();
    let after = rule_in(Which::Candidate);
    assert_eq!(after.uuid.as_deref(), Some(original.as_str()), "the edit carried the observed uuid");
    assert!(matches!(&after.destination_translation, Some(pano_eks_core::DestinationTranslation::Dynamic { port: Some(8080), .. })));
    rt.block_on(e.converge(&moved)).unwrap();
    assert_eq!(rule_in(Which::Running).uuid.as_deref(), Some(original.as_str()), "and it is committed with it");
    assert_converged(&rt, &e, &moved);
}

#[test]
fn a_commit_lock_of_another_admin_is_waited_for_from_show_commit_locks_then_reported_by_owner() {
    let (sim, rt, e) = locked_by_another_admin("commit_lock_by", Duration::from_millis(1500));
    let f = facts(1, "");
    let started = std::time::Instant::now();
    let err = rt.block_on(e.converge(&f)).unwrap_err().to_string();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1000), "it waited ({waited:?}): {err}");
    assert!(waited < Duration::from_secs(30), "bounded: waited {waited:?}");
    assert!(err.contains("gave up after") && err.contains("commit lock held by other-admin"), "{err}");
    assert!(requests(&sim, "op.show.commit-locks") >= 1, "decided from show commit-locks: {}", sim.stats());
    assert_eq!(stat(&sim, "commits"), 0, "nothing committed past the lock");
    // The lock never removed by us; once its owner releases it, the next run commits everything.
    assert!(sim.api_as("other-admin", "other", &[("type", "op"), ("cmd", "<show><commit-locks/></show>")]).contains("other-admin"));
    sim.faults(serde_json::json!({"commit_lock_by": ""}));
    let r = rt.block_on(e.converge(&f)).unwrap();
    assert!(r.commit_job.is_some());
    assert_converged(&rt, &e, &f);
}

#[test]
fn a_commit_lock_released_while_waiting_lets_the_commit_through() {
    let (sim, rt, e) = locked_by_another_admin("commit_lock_by", Duration::from_secs(120));
    let f = facts(1, "");
    let started = std::time::Instant::now();
    let report = std::thread::scope(|s| {
        // The other admin releases the lock once pano-eks has looked at it (and is waiting).
        s.spawn(|| {
            while requests(&sim, "op.show.commit-locks") == 0 {
                assert!(started.elapsed() < Duration::from_secs(60), "pano-eks never asked for the commit locks");
                std::thread::yield_now();
            }
            sim.faults(serde_json::json!({"commit_lock_by": ""}));
        });
        rt.block_on(e.converge(&f))
    })
    .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(60), "proceeded once released, took {took:?}");
    assert!(report.commit_job.is_some() && report.pushes.len() == 2, "{report:?}");
    assert_converged(&rt, &e, &f);
}

#[test]
fn a_commit_lock_of_our_own_admin_does_not_block_our_commit() {
    let sim = Sim::start(&["--job-step-ms", "0"]);
    let r = sim.api_as(
        support::ADMIN,
        PASSWORD,
        &[("type", "op"), ("cmd", "<request><commit-lock><add><comment>held by us</comment></add></commit-lock></request>")],
    );
    assert!(r.contains("success"), "{r}");
    let rt = rt();
    let e = engine(&rt, &sim, fast());
    let f = facts(1, "");
    let r = rt.block_on(e.converge(&f)).unwrap();
    assert!(r.commit_job.is_some());
    assert_eq!(requests(&sim, "op.show.commit-locks"), 0, "no refusal, nothing to ask");
    assert_converged(&rt, &e, &f);
}

/// Another admin's security rule (our device group) and address group (a descendant device
/// group) name pano-eks addresses; deleting those Services holds the addresses (reported against
/// the Services; `sync --once` exits 0 with a warning), every other Service still converges, and
/// the addresses go with the first sync after the references do.
#[test]
fn objects_a_foreign_rule_or_group_references_are_held_until_the_reference_goes() {
    use pano_eks_core::ProblemKind;
    let (sim, rt, e) = started(&["--job-step-ms", "0"], fast());
    rt.block_on(e.converge(&facts(3, ""))).unwrap();
    let ld = "/config/devices/entry[@name='localhost.localdomain']";
    let dg = format!("{ld}/device-group/entry[@name='eks-dg']");
    let west = format!("{ld}/device-group/entry[@name='eks-west']");
    let rule = |dst: &str| {
        format!(
            "<entry name='allow-svc-1'><from><member>untrust</member></from><to><member>trust</member></to><source><member>any</member></source>\
             <destination><member>{dst}</member></destination><service><member>application-default</member></service>\
             <application><member>web-browsing</member></application><action>allow</action></entry>"
        )
    };
    let other = |params: &[(&str, &str)]| {
        let r = sim.api_as("other-admin", "other", params);
        assert!(r.contains("success"), "{params:?}: {r}");
    };
    let commit_other =
        || other(&[("type", "commit"), ("cmd", "<commit><partial><admin><member>other-admin</member></admin></partial></commit>")]);
    other(&[
        ("type", "config"),
        ("action", "set"),
        ("xpath", &format!("{dg}/pre-rulebase/security/rules")),
        ("element", &rule("demo.shop.default.svc-1")),
    ]);
    other(&[("type", "config"), ("action", "set"), ("xpath", &format!("{ld}/device-group")), ("element", "<entry name='eks-west'/>")]);
    other(&[
        ("type", "config"),
        ("action", "set"),
        ("xpath", "/config/readonly/devices/entry[@name='localhost.localdomain']/device-group"),
        ("element", "<entry name='eks-west'><parent-dg>eks-dg</parent-dg></entry>"),
    ]);
    other(&[
        ("type", "config"),
        ("action", "set"),
        ("xpath", &format!("{west}/address-group")),
        ("element", "<entry name='west-web'><static><member>demo.shop.default.svc-2</member></static></entry>"),
    ]);
    commit_other();

    // svc-1 and svc-2 are deleted, svc-3 is new: one `sync --once` through the CLI.
    let mut f = facts(4, "");
    f.clusters[0].services.retain(|s| s.name != "svc-1" && s.name != "svc-2");
    let facts_path = sim.dir.path().join("facts.json");
    std::fs::write(&facts_path, serde_json::to_string(&f).unwrap()).unwrap();
    let cfg = sim.write_config("");
    let out = cli(&["--config", &support::path_str(&cfg), "sync", "--once", "--facts", &support::path_str(&facts_path)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "held objects are a warning, not a failure: {stderr}");
    for want in [
        "warning: shop/default/svc-1: address \"demo.shop.default.svc-1\" not deleted: still used by security rule \"allow-svc-1\" (device group eks-dg pre-rulebase)",
        "warning: shop/default/svc-2: address \"demo.shop.default.svc-2\" not deleted: still used by address group \"west-web\" (device group eks-west)",
    ] {
        assert!(stderr.contains(want), "want {want:?} in:\n{stderr}");
    }
    assert!(!stderr.contains(PASSWORD));
    let running = sim.config_xml("running");
    for held in ["demo.shop.default.svc-1", "demo.shop.default.svc-2"] {
        assert!(running.contains(&format!("<entry name=\"{held}\"")), "{held} is held");
    }
    for gone in ["demo.in.shop.default.svc-1", "demo.in.shop.default.svc-2"] {
        assert!(!running.contains(gone), "{gone}: what nothing references still goes");
    }

    // `status --output json` carries the holds as problems of kind in-use, by Service.
    let out = cli(&["--config", &support::path_str(&cfg), "--output", "json", "status", "--facts", &support::path_str(&facts_path)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let held: Vec<(&str, &str)> = status["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "in-use")
        .map(|p| (p["subject"].as_str().unwrap(), p["message"].as_str().unwrap()))
        .collect();
    assert_eq!(held.len(), 2, "{status:#}");
    assert!(held[0].0 == "shop/default/svc-1" && held[0].1.contains("allow-svc-1"), "{held:?}");
    assert!(held[1].0 == "shop/default/svc-2" && held[1].1.contains("west-web"), "{held:?}");

    // The same through the engine: every other Service converged, the holds are stable.
    let (plan, _) = rt.block_on(e.plan(&f)).unwrap();
    assert!(plan.is_noop(), "{:#?}", plan.operations);
    for s in &plan.services {
        assert_eq!(s.state, pano_eks_core::ServiceState::Protected, "{s:?}");
    }
    assert_eq!(plan.services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["svc-0", "svc-3"]);
    let held: Vec<&str> = plan.problems.iter().filter(|p| p.kind == ProblemKind::InUse).map(|p| p.subject.as_str()).collect();
    assert_eq!(held, ["shop/default/svc-1", "shop/default/svc-2"]);
    let again = rt.block_on(e.converge(&f)).unwrap();
    assert!(again.write_calls == 0 && again.commit_job.is_none(), "a hold is not retried while it stands");

    // The other admin stops naming them: the next sync deletes both.
    other(&[
        ("type", "config"),
        ("action", "edit"),
        ("xpath", &format!("{dg}/pre-rulebase/security/rules/entry[@name='allow-svc-1']")),
        ("element", &rule("any")),
    ]);
    other(&[("type", "config"), ("action", "delete"), ("xpath", &format!("{west}/address-group/entry[@name='west-web']"))]);
    commit_other();
    let r = rt.block_on(e.converge(&f)).unwrap();
    assert_eq!(r.plan.counts(), (0, 0, 2), "{:#?}", r.plan.operations);
    assert!(r.plan.problems.iter().all(|p| p.kind != ProblemKind::InUse), "{:#?}", r.plan.problems);
    let running = sim.config_xml("running");
    assert!(!running.contains("demo.shop.default.svc-1\"") && !running.contains("demo.shop.default.svc-2\""), "both addresses went");
    assert!(running.contains("allow-svc-1"), "the other admin's rule is untouched");
    assert_converged(&rt, &e, &f);
}

fn rotate_keys(sim: &Sim) {
    let c = reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(sim.ca()).unwrap()).unwrap()])
        .build()
        .unwrap();
    assert!(c.post(format!("{}/_sim/rotate-keys", sim.url)).send().unwrap().status().is_success());
}

/// Another process rotating our admin's key (`POST /_sim/rotate-keys` revokes every key): the
/// engine makes one new key and carries on; a second rotation in the middle of a converge costs
/// one more keygen, never a loop.
#[test]
fn a_rotated_key_is_regenerated_once_per_403_and_a_second_rotation_mid_run_too() {
    let (sim, rt, e) = started(&["--job-step-ms", "50"], fast());
    assert_eq!((e.client.keygens(), requests(&sim, "keygen")), (1, 1), "one key per process");
    rt.block_on(e.converge(&facts(1, ""))).unwrap();
    assert_eq!(requests(&sim, "keygen"), 1, "a converge reuses the key");

    rotate_keys(&sim);
    let f = facts(2, "");
    rt.block_on(e.converge(&f)).unwrap();
    assert_eq!((e.client.keygens(), requests(&sim, "keygen")), (2, 2), "one new key after the rotation");

    // Mid-run: rotate again once the engine has re-keyed after the first rotation *and used the
    // new key* (its write went in). Rotating between a re-keygen and the retry it guards would
    // refuse a fresh key, which the engine rightly reports instead of looping.
    rotate_keys(&sim);
    let started = std::time::Instant::now();
    let writes_before = stat(&sim, "write_calls");
    let f = facts(3, "");
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            while requests(&sim, "keygen") < 3 || stat(&sim, "write_calls") <= writes_before {
                assert!(started.elapsed() < Duration::from_secs(60), "no re-keygen and write after {:?}", started.elapsed());
                std::thread::yield_now();
            }
            rotate_keys(&sim);
        });
        rt.block_on(e.converge(&f))
    });
    r.unwrap_or_else(|e| panic!("converge after two rotations ({:?}): {e}", started.elapsed()));
    // Keygen 4 can only come from a 403 inside this converge (the engine calls nothing after
    // it): the second rotation landed mid-run, and each rotation cost exactly one keygen although
    // several concurrent calls saw each 403.
    assert_eq!((e.client.keygens(), requests(&sim, "keygen")), (4, 4), "one keygen per 403 event: {}", sim.stats());
    assert!(stat(&sim, "auth_failures") >= 2, "{}", sim.stats());
    assert_converged(&rt, &e, &f);
}

/// With a configured API key there is nothing to regenerate: a 403 is an immediate, clear error.
#[test]
fn a_revoked_configured_api_key_fails_at_once_and_says_why() {
    let sim = Sim::start(&["--job-step-ms", "0"]);
    let key = sim.api_as(support::ADMIN, PASSWORD, &[("type", "keygen"), ("user", support::ADMIN), ("password", PASSWORD)]);
    let key = key.split("<key>").nth(1).unwrap().split("</key>").next().unwrap().to_string();
    let rt = rt();
    let cfg = sim.config("");
    let e = rt.block_on(Engine::connect_with(&cfg, sim.dir.path(), fast(), Credentials::ApiKey(Secret::new(key.clone())))).unwrap();
    rotate_keys(&sim);
    let before = requests(&sim, "keygen");
    let err = rt.block_on(e.converge(&facts(1, ""))).unwrap_err().to_string();
    assert_eq!(requests(&sim, "keygen"), before, "no keygen without a password");
    assert!(err.contains("configured API key") && err.contains("dedicated administrator"), "{err}");
    assert!(!err.contains(&key), "the key never appears in an error");
}

/// Capacity (issue 16): the firewalls report a tier-1 memory size (`show system info` through
/// Panorama, `vm-mem` in KB), so 2,000 FQDN address objects is the limit; with 1,998 held by
/// another admin's objects, a sync of 5 Services admits exactly 2 (the oldest) and the rest are
/// `over-capacity` with the limit named, and nothing is written for them. What was asked: each
/// member firewall, by serial (the sim's request counts).
#[test]
fn a_sync_past_the_fqdn_limit_of_tier_1_firewalls_admits_exactly_the_room_left() {
    let sim = Sim::start(&["--job-step-ms", "0"]);
    let dg = "/config/devices/entry[@name='localhost.localdomain']/device-group/entry[@name='eks-dg']";
    let foreign: String = (0..1_998).map(|i| format!("<entry name='other-{i}'><fqdn>o{i}.example.com</fqdn></entry>")).collect();
    let r = sim.api_as(
        "other-admin",
        "other",
        &[("type", "config"), ("action", "set"), ("xpath", &format!("{dg}/address")), ("element", &foreign)],
    );
    assert!(r.contains("success"), "{r}");
    let rt = rt();
    let e = engine(&rt, &sim, fast());
    let system_info_before = requests(&sim, "op.show.system");
    let report = rt.block_on(e.converge(&facts(5, ""))).unwrap();
    let states: Vec<_> = report.plan.services.iter().map(|s| (s.name.as_str(), s.state)).collect();
    let admitted = states.iter().filter(|(_, s)| *s == pano_eks_core::ServiceState::Planned).count();
    let over: Vec<_> = report.plan.services.iter().filter(|s| s.state == pano_eks_core::ServiceState::OverCapacity).collect();
    assert_eq!((admitted, over.len()), (2, 3), "{states:?}");
    assert!(
        over.iter().all(|s| s.reason.contains("FQDN address objects: 2,000 on memory tier 1, 2,000 in use")),
        "{:#?}",
        over.iter().map(|s| &s.reason).collect::<Vec<_>>()
    );
    let ours = read(&rt, &e, Which::Candidate).addresses.iter().filter(|a| a.name.starts_with("demo.")).count();
    assert_eq!(ours, 2, "only the admitted Services' addresses were written");
    assert!(!report.pushes.is_empty() && report.pushes.iter().all(|p| p.devices.iter().all(|(_, _, r)| r == "OK")), "{:?}", report.pushes);
    assert!(requests(&sim, "op.show.system") >= system_info_before + 2, "each member firewall asked: {}", sim.stats());
}

/// Firewalls that enforce their limits (panorama-sim with `memory_mb` set: tier 1, 2,000 FQDN
/// address objects, counting `shared` and the device group): another admin holds 1,000 FQDN
/// objects in `shared` and 995 in eks-dg, committed. A sync of 10 Services admits exactly the 5
/// that fit, counting `shared` (read as names and `fqdn` leaves, not whole entries), and its push
/// succeeds on both firewalls. The same world with the limits lifted writes all 10 and the
/// firewalls refuse that push, naming the limit: admission is what kept the first push whole.
#[test]
fn a_sync_against_tier_1_firewalls_that_enforce_their_limits_never_makes_a_push_fail() {
    const DEVICES: &str = r#"[{"serial": "007900000001", "hostname": "fw-01", "ip": "10.0.0.11", "memory_mb": 8192},
                              {"serial": "007900000002", "hostname": "fw-02", "ip": "10.0.0.12", "memory_mb": 8192}]"#;
    let sim = Sim::start_with_devices(DEVICES, &["--job-step-ms", "0"]);
    let dg = "/config/devices/entry[@name='localhost.localdomain']/device-group/entry[@name='eks-dg']";
    let fqdn = |n: usize, p: &str| -> String {
        (0..n).map(|i| format!("<entry name='{p}-{i}'><fqdn>{p}{i}.example.com</fqdn></entry>")).collect()
    };
    for (xpath, element) in [("/config/shared/address".to_string(), fqdn(1_000, "shared")), (format!("{dg}/address"), fqdn(995, "dg"))] {
        let r = sim.api_as("other-admin", "other", &[("type", "config"), ("action", "set"), ("xpath", &xpath), ("element", &element)]);
        assert!(r.contains("success"), "{r}");
    }
    let r = sim.api_as("other-admin", "other", &[("type", "commit"), ("cmd", "<commit></commit>")]);
    assert!(r.contains("success"), "{r}");
    let rt = rt();
    let e = engine(&rt, &sim, fast());
    let gets_before = requests(&sim, "config.get");
    let report = rt.block_on(e.converge(&facts(10, ""))).unwrap();
    let over: Vec<_> = report.plan.services.iter().filter(|s| s.state == pano_eks_core::ServiceState::OverCapacity).collect();
    assert_eq!(over.len(), 5, "{:?}", report.plan.services.iter().map(|s| (&s.name, s.state)).collect::<Vec<_>>());
    assert!(over.iter().all(|s| s.reason.contains("FQDN address objects: 2,000 on memory tier 1, 2,000 in use")), "{:?}", over[0].reason);
    assert!(report.pushes.iter().any(|p| p.target == "device-group/eks-dg"), "{:?}", report.pushes);
    assert!(report.pushes.iter().all(|p| p.devices.len() == 2 && p.devices.iter().all(|(_, _, r)| r == "OK")), "{:?}", report.pushes);
    assert!(requests(&sim, "config.get") > gets_before, "{}", sim.stats());

    // Without admission the firewalls refuse the push: the test above could fail.
    let mut lifted = engine(&rt, &sim, fast());
    lifted.settings.capacity = Some(pano_eks_core::capacity::Capacity {
        limits: pano_eks_core::capacity::Limits {
            fqdn_addresses: usize::MAX,
            addresses: usize::MAX,
            service_objects: usize::MAX,
            nat_rules: usize::MAX,
            security_rules: usize::MAX,
        },
        source: "lifted".into(),
    });
    let err = rt.block_on(lifted.converge(&facts(10, ""))).expect_err("the firewalls refuse 2,005 FQDN objects");
    let text = err.to_string() + &format!("{err:?}");
    assert!(text.contains("fw-01") && text.contains("fw-02") && text.contains("FQDN address objects exceed the maximum of 2000"), "{text}");
}

/// Capacity with `[sync.security]` (issue 16): each admitted Service spends its allow rule and
/// our own rules in the device group's pre-rulebase count once, as the claims and outbound rules
/// they are, never again as someone else's (`panorama::capacity::elsewhere` reads only the
/// post-rulebase of the device group itself). So a second converge changes nothing, and when a
/// protected Service goes the oldest waiting one is admitted: with our rules counted twice the
/// room would never reappear.
#[test]
fn with_sync_security_our_own_rules_count_once_and_a_departure_readmits() {
    use pano_eks_core::ServiceState::{OverCapacity, Planned, Protected};
    let sim = Sim::start(&["--job-step-ms", "0"]);
    let rt = rt();
    let mut e = engine(&rt, &sim, fast());
    e.settings.security = Some(pano_eks_core::settings::SecuritySettings::default());
    let big = usize::MAX / 4;
    e.settings.capacity = Some(pano_eks_core::capacity::Capacity {
        limits: pano_eks_core::capacity::Limits {
            fqdn_addresses: big,
            addresses: big,
            service_objects: big,
            nat_rules: big,
            security_rules: 4,
        },
        source: "firewalls.capacity".into(),
    });
    let mut f = facts(6, "");
    let states = |r: &pano_eks::sync::Report, s: pano_eks_core::ServiceState| -> Vec<String> {
        r.plan.services.iter().filter(|x| x.state == s).map(|x| x.name.clone()).collect()
    };
    let first = rt.block_on(e.converge(&f)).unwrap();
    let admitted = states(&first, Planned);
    let waiting = states(&first, OverCapacity);
    assert!(!admitted.is_empty() && !waiting.is_empty(), "{:?}", first.plan.services);
    assert!(
        waiting.iter().all(|_| first.plan.problems.iter().any(|p| p.message.contains("security rules: 4 on firewalls.capacity, 4 in use")))
    );
    let rules = read(&rt, &e, Which::Candidate).security_rules.len();
    assert_eq!(rules, 4, "the limit, not more");

    let second = rt.block_on(e.converge(&f)).unwrap();
    assert_eq!(states(&second, Protected), admitted);
    assert_eq!(states(&second, OverCapacity), waiting);
    assert!(second.plan.is_noop(), "{:?}", second.plan.operations);

    // An admitted Service goes: the first waiting one takes its rule.
    let gone = admitted[0].clone();
    f.clusters.iter_mut().for_each(|c| c.services.retain(|s| s.name != gone));
    let third = rt.block_on(e.converge(&f)).unwrap();
    assert_eq!(states(&third, Planned), [waiting[0].clone()], "{:?}", third.plan.services);
    assert_eq!(read(&rt, &e, Which::Candidate).security_rules.len(), 4);
}

//! Panorama as it really is (issue 12): what `sync` and `prepare` *send* (read from panorama-sim's
//! wire-level record, not from what the sim made of it), the version profiles (9.1 without
//! multi-config, 10.0 with it off and then on, 10.2, 11.1), two administrators with pending
//! changes in the containers pano-eks writes, and a refused write that blocks nothing else.
//! The sim's behaviour for each is documented with its evidence in `sim/README.md`.

mod support;

use std::process::Command;
use std::time::Duration;

use pano_eks::panorama::apply::{self, LockWait, WriteMode};
use pano_eks::panorama::client::RetryPolicy;
use pano_eks::panorama::locations::Locations;
use pano_eks::panorama::observe::{self, Which};
use pano_eks::panorama::prepare::{self, Writer};
use pano_eks::secret::Secret;
use pano_eks::sync::{Credentials, Engine, EngineOptions};
use pano_eks_core::{Facts, Observed, ProblemKind, ServiceState};
use serde_json::Value;
use support::{PASSWORD, Sim, canonical, facts_json, facts_range, without_uuids};

const DG: &str = "/config/devices/entry[@name='localhost.localdomain']/device-group/entry[@name='eks-dg']";
const TPL: &str = "/config/devices/entry[@name='localhost.localdomain']/template/entry[@name='eks-template']/config/devices/entry[@name='localhost.localdomain']";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn engine(rt: &tokio::runtime::Runtime, sim: &Sim) -> Engine {
    let opts = EngineOptions {
        retry: Some(RetryPolicy { attempts: 8, base: Duration::from_millis(5), cap: Duration::from_millis(50) }),
        ..Default::default()
    };
    rt.block_on(Engine::connect_with(&sim.config(""), sim.dir.path(), opts, Credentials::Password(Secret::new(PASSWORD)))).unwrap()
}

fn facts(n: usize, suffix: &str) -> Facts {
    Facts::from_json(&facts_json(n, suffix)).unwrap()
}

fn read(rt: &tokio::runtime::Runtime, e: &Engine, which: Which) -> Observed {
    rt.block_on(observe::read(&e.client, &Locations::from_settings(&e.settings), which)).unwrap()
}

/// pano-eks's own entries (deployment `demo`), objects in name order; other admins' entries
/// (pending or not) are not ours to compare.
fn sorted(mut o: Observed) -> Observed {
    let ours = |n: &str| n.starts_with("demo.") || n.starts_with("pke-") || n.starts_with("pano-eks");
    o.tags.retain(|x| ours(&x.name));
    o.addresses.retain(|x| ours(&x.name));
    o.services.retain(|x| ours(&x.name));
    o.nat_rules.retain(|x| ours(&x.name));
    o.static_routes.retain(|x| ours(&x.name));
    // Referrers are read for planning only; a rule's uuid is PAN-OS's identity, new per create.
    o.referrers.clear();
    // Counts of what others hold (capacity) include another admin's pending rules in the candidate.
    o.elsewhere = Default::default();
    o.nat_rules.iter_mut().for_each(|r| r.uuid = None);
    canonical(o)
}

/// Panorama holds exactly what `f` asks for, committed.
fn assert_converged(rt: &tokio::runtime::Runtime, e: &Engine, f: &Facts, profile: &str) {
    let (plan, candidate) = rt.block_on(e.plan(f)).unwrap();
    assert!(plan.is_noop(), "{profile}: left to do: {:#?}", plan.operations);
    assert_eq!(sorted(candidate), sorted(read(rt, e, Which::Running)), "{profile}: uncommitted work left");
}

/// The last xpath step's name, for `…/entry[@name='x']` (names may hold `/`: `ethernet1/1`).
fn entry_name(xpath: &str) -> Option<&str> {
    let body = xpath.strip_suffix("']")?;
    let at = body.rfind("/entry[@name='")?;
    Some(&body[at + "/entry[@name='".len()..])
}

/// The last xpath step (an `entry[…]` or `member[…]` predicate kept whole).
fn last_step(xpath: &str) -> &str {
    match xpath.strip_suffix("']").and_then(|b| b.rfind("/entry[@name='").or_else(|| b.rfind("/member[text()='"))) {
        Some(at) => &xpath[at + 1..],
        None => xpath.rsplit('/').next().unwrap_or(xpath),
    }
}

/// Every config write a client sent names one object's own node: an `edit` of a full entry
/// xpath whose element is that entry (or of one leaf), a `delete` of one entry or member, or a
/// `set` of exactly one `<member>` on a list's own xpath. Never a container (`…/address`), a
/// device group or template node, or an enclosing object.
fn assert_full_xpaths(writes: &[Value], who: &str) {
    assert!(!writes.is_empty(), "{who}: nothing was recorded");
    for w in writes {
        let action = w["action"].as_str().unwrap();
        let xpath = w["xpath"].as_str().unwrap();
        let root = w["element_root"].as_str();
        let names: Vec<&str> = w["element_names"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        match action {
            "edit" => match entry_name(xpath) {
                Some(name) => {
                    assert_eq!(root, Some("entry"), "{who}: edit of an entry sends that entry: {w}");
                    assert_eq!(names, [name], "{who}: edit element is the entry the xpath names: {w}");
                    for container in ["/device-group/entry[@name='eks-dg']", "/template/entry[@name='eks-template']"] {
                        assert!(!xpath.ends_with(container) || who == "prepare", "{who}: writes a whole device group or template: {w}");
                    }
                }
                None => {
                    // A leaf (prepare: DNS primary, ECMP enable, the interface's management
                    // profile): its own xpath, same element name, and not a container of entries.
                    let last = last_step(xpath);
                    assert_eq!(root, Some(last), "{who}: a leaf edit names the leaf: {w}");
                    assert!(names.is_empty(), "{who}: a leaf holds no entries: {w}");
                    const CONTAINERS: [&str; 14] = [
                        "address",
                        "service",
                        "tag",
                        "rules",
                        "static-route",
                        "zone",
                        "virtual-router",
                        "ethernet",
                        "template",
                        "device-group",
                        "template-stack",
                        "vsys",
                        "config",
                        "interface-management-profile-list",
                    ];
                    assert!(!CONTAINERS.contains(&last), "{who}: edit of a container: {w}");
                }
            },
            "delete" => {
                let last = last_step(xpath);
                assert!(last.starts_with("entry[@name='") || last.starts_with("member[text()='"), "{who}: delete of a container: {w}");
                assert!(!last.contains(" or "), "{who}: deletes go one entry at a time: {w}");
            }
            "set" => {
                assert_eq!(root, Some("member"), "{who}: set is only for one list member: {w}");
                assert_eq!(names.len(), 1, "{who}: one member per set: {w}");
                let last = last_step(xpath);
                assert!(!last.starts_with("entry[") && !last.starts_with("member["), "{who}: a member is set on its list: {w}");
            }
            other => panic!("{who}: unexpected write action {other}: {w}"),
        }
    }
}

#[test]
fn sync_and_prepare_send_only_full_entry_xpaths() {
    let sim = Sim::start_fresh(&["--job-step-ms", "0"]);
    let cfg = sim.write_config("");
    let out = Command::new(env!("CARGO_BIN_EXE_pano-eks"))
        .arg("--config")
        .arg(&cfg)
        .args(["panorama", "prepare", "--allow-all"])
        .env("PANO_EKS_TEST_PANORAMA_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let writes = sim.writes();
    assert_full_xpaths(&writes, "prepare");
    assert!(
        writes
            .iter()
            .any(|w| w["action"] == "set" && w["xpath"].as_str().unwrap().ends_with("/zone/entry[@name='untrust']/network/layer3"))
    );
    sim.reset_writes();

    let rt = rt();
    let e = engine(&rt, &sim);
    // First converge, an update of every address (new hostnames) with a relabel, then deletes.
    rt.block_on(e.converge(&facts(5, ""))).unwrap();
    let mut relabel = facts(5, "-v2");
    relabel.clusters[0].services[0].labels.insert("panw-tg-port".into(), "9000".into());
    rt.block_on(e.converge(&relabel)).unwrap();
    rt.block_on(e.converge(&Facts::from_json(&facts_range(3, 5, "-v2")).unwrap())).unwrap();
    let writes = sim.writes();
    assert_full_xpaths(&writes, "sync");
    let by = |action: &str| writes.iter().filter(|w| w["action"] == action).count();
    assert!(
        by("edit") > 0 && by("delete") > 0 && by("set") == 0,
        "edits and deletes, no set: {} edit, {} delete",
        by("edit"),
        by("delete")
    );
    assert!(writes.iter().all(|w| w["admin"] == support::ADMIN && w["multi_config"] == true), "all in multi-config batches as pano-eks");
    assert!(writes.iter().any(|w| w["xpath"].as_str().unwrap() == format!("{DG}/address/entry[@name='demo.shop.default.svc-0']")));
    assert!(writes.iter().any(|w| {
        w["xpath"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{TPL}/network/virtual-router/entry[@name='vr-default']/routing-table/ip/static-route/entry[@name='pke-"))
    }));
}

/// One profile: a first converge, a no-op resync, an update/delete, and crash-point reruns.
fn converge_on(profile: &str, sim_args: &[&str], enable_multi_config: bool) -> (usize, usize) {
    let mut args = vec!["--job-step-ms", "0"];
    args.extend_from_slice(sim_args);
    let sim = Sim::start(&args);
    if enable_multi_config {
        sim.faults(serde_json::json!({"multi_config_enabled": true}));
    }
    let rt = rt();
    let e = engine(&rt, &sim);
    let first = facts(6, "");
    let r = rt.block_on(e.converge(&first)).unwrap();
    assert!(r.plan.problems.iter().all(|p| p.kind != ProblemKind::Refused), "{profile}: {:?}", r.plan.problems);
    assert!(r.commit_job.is_some(), "{profile}");
    assert_converged(&rt, &e, &first, profile);
    let first_calls = r.write_calls;

    // A no-op resync: no write, no commit.
    let (w0, c0) = (sim.stats()["write_calls"].as_u64().unwrap(), sim.stats()["commits"].as_u64().unwrap());
    let r = rt.block_on(e.converge(&first)).unwrap();
    assert_eq!((r.write_calls, r.commit_job), (0, None), "{profile}: no-op resync");
    assert_eq!((sim.stats()["write_calls"].as_u64().unwrap(), sim.stats()["commits"].as_u64().unwrap()), (w0, c0), "{profile}");

    // Crash points: the first k writes of the next plan landed (one per call), then nothing;
    // the rerun finishes exactly the rest and commits both.
    let target = Facts::from_json(&facts_range(3, 9, "-v2")).unwrap();
    let baseline = sorted(read(&rt, &e, Which::Running));
    let (plan, _) = rt.block_on(e.plan(&target)).unwrap();
    let n = plan.operations.len();
    let locs = Locations::from_settings(&e.settings);
    for k in [0, 1, n / 3, n / 2, n - 1, n] {
        let applied =
            rt.block_on(apply::apply(&e.client, &locs, &plan.operations[..k], WriteMode::OnePerCall, LockWait::default())).unwrap();
        assert!(applied.refused.is_empty(), "{profile}: {:?}", applied.refused);
        let r = rt.block_on(e.converge(&target)).unwrap();
        assert_eq!(
            without_uuids(&r.plan.operations),
            without_uuids(&plan.operations[k..]),
            "{profile}: after {k} writes exactly the rest is left"
        );
        assert_converged(&rt, &e, &target, profile);
        // Back to the committed baseline for the next crash point (a fresh Panorama: converging
        // back would re-create the deleted rules at the bottom of the rulebase).
        sim.reset();
        if enable_multi_config {
            sim.faults(serde_json::json!({"multi_config_enabled": true}));
        }
        rt.block_on(e.converge(&first)).unwrap();
        assert_eq!(sorted(read(&rt, &e, Which::Running)), baseline, "{profile}: baseline restored");
    }
    let multi = sim.writes().iter().filter(|w| w["multi_config"] == true).count();
    (first_calls, multi)
}

#[test]
fn converges_exactly_on_every_version_profile() {
    // 6 Services: 2 tags + 18 objects + 2 outbound rules + 4 routes = 26 entries.
    let (calls, multi) = converge_on("9.1", &["--sw-version", "9.1.16"], false);
    assert_eq!((calls, multi), (26, 0), "9.1: one full-xpath edit per call, no multi-config ever sent");
    // 10.0 refuses multi-config until it is enabled: the first batch is refused (1 call), the
    // rest goes one per call, and the engine stays there.
    let (calls, multi) = converge_on("10.0 (multi-config off)", &["--sw-version", "10.0.9"], false);
    assert_eq!(calls, 1 + 26, "10.0 off: one refused batch, then one call per entry");
    assert!(multi <= 26, "the refused batch is the only multi-config");
    let (calls, _) = converge_on("10.0 (multi-config enabled)", &["--sw-version", "10.0.9"], true);
    assert_eq!(calls, 1, "10.0 enabled: one batch");
    for v in ["10.2.9", "11.1.4"] {
        let (calls, multi) = converge_on(v, &["--sw-version", v], false);
        assert_eq!(calls, 1, "{v}: one multi-config call");
        assert!(multi >= 26, "{v}: entries sent in multi-config");
    }
}

fn pending(sim: &Sim, which: &str, name: &str) -> bool {
    sim.config_xml(which).contains(&format!("name=\"{name}\""))
}

#[test]
fn on_11_1_a_sync_and_a_prepare_commit_only_pano_eks_changes() {
    let sim = Sim::start_fresh(&["--job-step-ms", "0", "--sw-version", "11.1.4"]);
    let b = |params: &[(&str, &str)]| {
        let r = sim.api_as("other-admin", "other", params);
        assert!(r.contains("status=\"success\""), "admin B's write: {r}");
    };
    let cfg = sim.write_config("");
    let prepare = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_pano-eks"))
            .arg("--config")
            .arg(&cfg)
            .args(["panorama", "prepare"])
            .args(args)
            .env("PANO_EKS_TEST_PANORAMA_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    // Prepare first makes the device group and template (nothing of B's yet). Then the untrust
    // zone drifts (B takes ethernet1/1 out of it and commits), and B leaves two changes pending: a
    // new zone beside the ones prepare manages, and a log setting inside the untrust zone itself.
    // prepare runs again: it puts ethernet1/1 back (one member on the zone's own layer3 list) and
    // adds the allow-all rule, and commits; both of B's pending changes stay pending.
    prepare(&[]);
    let zones = format!("{TPL}/vsys/entry[@name='vsys1']/zone");
    b(&[
        ("type", "config"),
        ("action", "delete"),
        ("xpath", &format!("{zones}/entry[@name='untrust']/network/layer3/member[text()='ethernet1/1']")),
    ]);
    b(&[("type", "commit"), ("cmd", "<commit><partial><admin><member>other-admin</member></admin></partial></commit>")]);
    let committed = std::time::Instant::now();
    while sim.jobs().iter().any(|j| j["status"] != "FIN") {
        assert!(committed.elapsed() < Duration::from_secs(60), "admin B's commit did not finish within {:?}", committed.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!sim.config_xml("running").contains("<member>ethernet1/1</member></layer3>"), "the drift is committed");
    b(&[
        ("type", "config"),
        ("action", "edit"),
        ("xpath", &format!("{zones}/entry[@name='b-dmz']")),
        ("element", "<entry name=\"b-dmz\"><network><layer3/></network></entry>"),
    ]);
    b(&[
        ("type", "config"),
        ("action", "edit"),
        ("xpath", &format!("{zones}/entry[@name='untrust']/network/log-setting")),
        ("element", "<log-setting>b-zone-logs</log-setting>"),
    ]);
    prepare(&["--allow-all"]);
    let running = sim.config_xml("running");
    assert!(running.contains("<member>ethernet1/1</member>"), "prepare's member is committed");
    assert!(pending(&sim, "candidate", "b-dmz") && !pending(&sim, "running", "b-dmz"), "prepare committed admin B's zone");
    assert!(
        sim.config_xml("candidate").contains("b-zone-logs") && !running.contains("b-zone-logs"),
        "prepare committed B's change inside the zone it wrote"
    );
    assert!(pending(&sim, "running", "allow-all"), "prepare's own change is committed");

    // B: an address, a NAT rule and a route in the containers sync writes, all pending.
    b(&[
        ("type", "config"),
        ("action", "edit"),
        ("xpath", &format!("{DG}/address/entry[@name='b-addr']")),
        ("element", "<entry name=\"b-addr\"><ip-netmask>10.9.9.9</ip-netmask></entry>"),
    ]);
    b(&[
        ("type", "config"),
        ("action", "edit"),
        ("xpath", &format!("{DG}/pre-rulebase/nat/rules/entry[@name='b-nat']")),
        (
            "element",
            "<entry name=\"b-nat\"><from><member>untrust</member></from><to><member>untrust</member></to><source><member>any</member></source><destination><member>any</member></destination><service>any</service></entry>",
        ),
    ]);
    let routes = format!("{TPL}/network/virtual-router/entry[@name='vr-default']/routing-table/ip/static-route");
    b(&[
        ("type", "config"),
        ("action", "edit"),
        ("xpath", &format!("{routes}/entry[@name='b-route']")),
        (
            "element",
            "<entry name=\"b-route\"><destination>10.50.0.0/16</destination><nexthop><ip-address>192.168.2.1</ip-address></nexthop></entry>",
        ),
    ]);

    let rt = rt();
    let e = engine(&rt, &sim);
    let b_names = ["b-dmz", "b-addr", "b-nat", "b-route"];
    for (step, f) in
        [("first converge", facts(3, "")), ("update", facts(3, "-v2")), ("delete", Facts::from_json(&facts_range(1, 3, "-v2")).unwrap())]
    {
        let r = rt.block_on(e.converge(&f)).unwrap();
        assert!(r.commit_job.is_some(), "{step}: committed");
        assert_converged(&rt, &e, &f, step);
        for n in b_names {
            assert!(pending(&sim, "candidate", n), "{step}: B's {n} is still in the candidate");
            assert!(!pending(&sim, "running", n), "{step}: pano-eks's commit took admin B's pending {n}");
        }
    }
}

/// A sim that refuses every write of the NAT rule of Service `svc` (default namespace), and the
/// message it refuses with.
fn refusing_nat_rule_of(svc: &str) -> (Sim, String) {
    let sim = Sim::start(&["--job-step-ms", "0"]);
    let rule = format!("demo.in.shop.default.{svc}");
    let msg = format!("{rule} -> destination-translation is invalid (injected)");
    sim.faults(serde_json::json!({"refuse_writes": [{"name_glob": rule, "message": msg}]}));
    (sim, msg)
}

#[test]
fn a_refused_nat_rule_blocks_nothing_else_and_converges_once_the_fault_is_lifted() {
    let (sim, msg) = refusing_nat_rule_of("svc-1");
    let msg = msg.as_str();
    let rt = rt();
    let e = engine(&rt, &sim);
    let f = facts(4, "");
    let r = rt.block_on(e.converge(&f)).unwrap();
    let state = |name: &str| r.plan.services.iter().find(|s| s.name == name).map(|s| (s.state, s.reason.clone())).unwrap();
    assert_eq!(state("svc-1").0, ServiceState::Refused);
    assert!(state("svc-1").1.contains(msg), "PAN-OS's own text: {}", state("svc-1").1);
    assert!(r.plan.problems.iter().any(|p| p.kind == ProblemKind::Refused && p.subject == "shop/default/svc-1" && p.message.contains(msg)));
    assert!(r.commit_job.is_some(), "what went in was committed");
    let running = read(&rt, &e, Which::Running);
    for i in [0, 2, 3] {
        assert!(running.nat_rules.iter().any(|x| x.name == format!("demo.in.shop.default.svc-{i}")), "svc-{i} is protected and committed");
        assert_eq!(state(&format!("svc-{i}")).0, ServiceState::Planned);
    }
    assert!(!running.nat_rules.iter().any(|x| x.name == "demo.in.shop.default.svc-1"));
    // The refused batch cost a few calls, not one per operation.
    assert!(r.write_calls <= 3, "split at the failing sub-operation: {} calls", r.write_calls);

    // The CLI: exit 1, naming the Service and PAN-OS's message.
    let cfg = sim.write_config("");
    let facts_path = sim.dir.path().join("facts.json");
    std::fs::write(&facts_path, facts_json(4, "")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pano-eks"))
        .arg("--config")
        .arg(&cfg)
        .args(["sync", "--once", "--facts"])
        .arg(&facts_path)
        .env("PANO_EKS_TEST_PANORAMA_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("shop/default/svc-1") && err.contains(msg), "{err}");

    // Fault lifted: the next converge protects it.
    sim.faults(serde_json::json!({"refuse_writes": null}));
    let r = rt.block_on(e.converge(&f)).unwrap();
    assert!(r.plan.services.iter().all(|s| s.state != ServiceState::Refused), "{:?}", r.plan.services);
    assert_converged(&rt, &e, &f, "after the fault");
}

/// A plan larger than one render chunk (`apply`'s 5,000 operations) is rendered and written in
/// pieces: a refusal in a later piece is still reported against its own Service (the index is
/// the plan's, not the piece's), and cutting adds no call beyond the batches' own.
#[test]
fn a_refusal_past_the_first_render_chunk_names_its_own_service() {
    let (sim, msg) = refusing_nat_rule_of("svc-2500");
    let msg = msg.as_str();
    let rt = rt();
    let e = engine(&rt, &sim);
    let f = facts(2_600, "");
    let r = rt.block_on(e.converge(&f)).unwrap();
    assert!(r.plan.operations.len() > 5_000, "{} operations: more than one chunk", r.plan.operations.len());
    let refused: Vec<&str> = r.plan.services.iter().filter(|s| s.state == ServiceState::Refused).map(|s| s.name.as_str()).collect();
    assert_eq!(refused, ["svc-2500"]);
    let svc = r.plan.services.iter().find(|s| s.name == "svc-2500").unwrap();
    assert!(svc.reason.contains(msg), "{}", svc.reason);
    let running = read(&rt, &e, Which::Running);
    for i in [0, 2_499, 2_501, 2_599] {
        assert!(running.nat_rules.iter().any(|x| x.name == format!("demo.in.shop.default.svc-{i}")), "svc-{i} committed");
    }
    assert!(!running.nat_rules.iter().any(|x| x.name == "demo.in.shop.default.svc-2500"));
    let writes = sim.writes();
    assert!(writes.iter().all(|w| w["multi_config"] == true), "every call a multi-config batch");
    assert!(r.write_calls <= 10, "the batches (≤ 2,500 sub-operations each) and the split around the refusal: {} calls", r.write_calls);
}

#[test]
fn prepare_on_9_1_writes_one_node_per_call_and_is_ready() {
    let sim = Sim::start_fresh(&["--job-step-ms", "0", "--sw-version", "9.1.16"]);
    let rt = rt();
    let e = engine(&rt, &sim);
    let w = Writer {
        client: &e.client,
        admin: support::ADMIN,
        sw_version: &e.sw_version,
        lock_wait: LockWait::default(),
        job_timeout: Duration::from_secs(30),
    };
    let s = prepare::settings(&sim.config(""), false, false);
    let report = rt.block_on(prepare::prepare(&w, &s, &prepare::record_path(sim.dir.path(), "demo"))).unwrap();
    let writes = sim.writes();
    assert_full_xpaths(&writes, "prepare");
    assert!(writes.iter().all(|x| x["multi_config"] == false), "9.1 has no multi-config");
    assert_eq!(writes.len(), report.write_calls, "one call per write");
    assert_eq!(writes.len(), report.plan.writes.len());
    assert!(report.commit_job.is_some());
}

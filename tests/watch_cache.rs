//! The watch cache of `sync --watch` (issue 18).
//!
//! 1. Property: over random sequences of Service changes and foreign edits (someone else edits,
//!    deletes or takes the name of an entry the next converge touches; adds or removes a rule that
//!    references one of ours; a resync now and then), the plan made from the cache equals the plan
//!    made from a full read, after every step. "Panorama" is an in-memory config here that behaves
//!    as the XML API does for these writes (an `edit` replaces or appends, a created NAT rule gets
//!    a uuid, an edit without one keeps it; everything reads back through the codec).
//! 2. Against panorama-sim: a foreign edit of one of our entries between two changes is repaired
//!    by the next converge that touches it (and that converge reads that kind whole), or else by
//!    the next resync; checked on what was sent (`/_sim/writes`) and read (`/_sim/stats`).

mod support;

use std::collections::BTreeSet;
use std::sync::Mutex;

use pano_eks::panorama::PanosError;
use pano_eks::panorama::cache::{Cache, Source};
use pano_eks::panorama::{codec, kinds, xml};
use pano_eks_core::{Facts, Kind, Names, Object, Observed, Operation, Plan, PlanSettings, Referrer, ReferrerKind};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// 1. cached plan == full-read plan

/// An in-memory Panorama candidate config, counting what is read.
#[derive(Default)]
struct Memory {
    truth: Mutex<Observed>,
    reads: Mutex<Vec<String>>,
    next_uuid: Mutex<u64>,
}

impl Memory {
    fn log(&self, what: String) {
        self.reads.lock().unwrap().push(what);
    }

    /// Writes as Panorama does: each entry as it reads back, a created NAT rule gets a new uuid,
    /// an update without one keeps the rule's.
    fn write(&self, ops: &[Operation]) {
        let mut truth = self.truth.lock().unwrap();
        let mut n = self.next_uuid.lock().unwrap();
        let ops: Vec<Operation> = ops
            .iter()
            .map(|op| {
                let mut op = op.clone();
                if let Operation::Create { object: Object::NatRule(r) } | Operation::Update { object: Object::NatRule(r) } = &mut op {
                    if r.uuid.is_none() {
                        r.uuid = truth.nat_rules.iter().find(|x| x.name == r.name).and_then(|x| x.uuid.clone()).or_else(|| {
                            *n += 1;
                            Some(format!("uuid-{n}"))
                        });
                    }
                }
                round_trip(op)
            })
            .collect();
        truth.apply(&ops);
    }
}

fn round_trip(op: Operation) -> Operation {
    let (Operation::Create { object } | Operation::Update { object }) = &op else { return op };
    let kind = object.kind();
    let mut back = Observed::default();
    codec::decode_container(kind, &xml::Element::new("c").child(codec::encode(object)), &mut back);
    Operation::Update { object: kinds::objects(&back, kind).pop().expect("one entry") }
}

impl Source for Memory {
    fn everything(&self) -> impl Future<Output = Result<Observed, PanosError>> + Send {
        self.log("everything".into());
        std::future::ready(Ok(self.truth.lock().unwrap().clone()))
    }

    fn kind(&self, kind: Kind) -> impl Future<Output = Result<Observed, PanosError>> + Send {
        self.log(format!("kind {kind:?}"));
        let mut all = self.truth.lock().unwrap().clone();
        let mut one = Observed::default();
        kinds::append(&mut one, &mut all, kind);
        std::future::ready(Ok(one))
    }

    fn named(&self, kind: Kind, names: &[String]) -> impl Future<Output = Result<Observed, PanosError>> + Send {
        self.log(format!("named {kind:?} {}", names.len()));
        let set: BTreeSet<&str> = names.iter().map(String::as_str).collect();
        let picked = kinds::named(&self.truth.lock().unwrap(), kind, &set);
        let mut one = Observed::default();
        one.apply(&picked.into_iter().map(|object| Operation::Update { object }).collect::<Vec<_>>());
        std::future::ready(Ok(one))
    }

    fn referrers(&self) -> impl Future<Output = Result<Vec<Referrer>, PanosError>> + Send {
        self.log("referrers".into());
        std::future::ready(Ok(self.truth.lock().unwrap().referrers.clone()))
    }
}

/// One Service of the generated world: (cluster, index) → (port, hostname generation).
type World = std::collections::BTreeMap<(usize, usize), (u16, u8)>;

fn facts(world: &World) -> Facts {
    let cluster = |c: usize| {
        let services: Vec<String> = world
            .iter()
            .filter(|((cl, _), _)| *cl == c)
            .map(|((_, i), (port, host))| {
                format!(
                    r#"{{"namespace": "default", "name": "svc-{i}", "labels": {{"panw-tg-port": "{port}"}}, "type": "LoadBalancer",
                 "annotations": {{"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}},
                     "lb_hostname": "internal-svc-{i}-{host}.elb.us-west-2.amazonaws.com", "ports": [{{"port": 80, "protocol": "TCP"}}],
                     "created": "2026-11-26T10:00:{i:02}Z"}}"#
                )
            })
            .collect();
        format!(
            r#"{{"name": "c{c}", "subnets": [{{"id": "subnet-{c}", "cidr": "192.168.{}.0/24", "az": "us-west-2a"}}], "services": [{}]}}"#,
            110 + c,
            services.join(",")
        )
    };
    Facts::from_json(&format!(
        r#"{{"clusters": [{}, {}], "firewalls": [{{"id": "i-a", "az": "us-west-2a", "trust_subnet_cidr": "192.168.2.0/24"}}]}}"#,
        cluster(0),
        cluster(1)
    ))
    .unwrap()
}

#[derive(Clone, Debug)]
enum Step {
    /// Create or change (port, hostname) a Service.
    Upsert {
        cluster: usize,
        i: usize,
        port: u16,
        host: u8,
    },
    Delete {
        cluster: usize,
        i: usize,
    },
    /// Someone else changes, deletes or takes the name of the `pick`-th entry the next plan touches
    /// (`how`: 0 delete, 1-2 edit, 3 take over the address of that entry's Service).
    ForeignEdit {
        pick: usize,
        how: u8,
    },
    /// A foreign security rule starts naming the `pick`-th of our addresses, services or tags.
    AddReferrer {
        pick: usize,
    },
    RemoveReferrer {
        pick: usize,
    },
    /// The next converge reads everything (sync.resync).
    Resync,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..2usize, 0..6usize, 8000..8004u16, 0..3u8).prop_map(|(cluster, i, port, host)| Step::Upsert { cluster, i, port, host }),
        2 => (0..2usize, 0..6usize).prop_map(|(cluster, i)| Step::Delete { cluster, i }),
        3 => (any::<usize>(), 0..4u8).prop_map(|(pick, how)| Step::ForeignEdit { pick, how }),
        1 => any::<usize>().prop_map(|pick| Step::AddReferrer { pick }),
        1 => any::<usize>().prop_map(|pick| Step::RemoveReferrer { pick }),
        1 => Just(Step::Resync),
    ]
}

/// Someone else's edit of the entry `op` is about to write or delete.
fn foreign_edit(truth: &mut Observed, kind: Kind, name: String, how: u8) {
    let existing = kinds::named(truth, kind, &BTreeSet::from([name.as_str()])).pop();
    let edited = match (existing, how) {
        (Some(_), 0) => return truth.apply(&[Operation::Delete { kind, name }]),
        // Taken over: our marks removed, so it is someone else's now.
        (Some(Object::Address(mut a)), 3) => {
            a.tags.clear();
            Object::Address(a)
        }
        (Some(Object::Tag(mut t)), _) => {
            t.color = Some("color1".into());
            Object::Tag(t)
        }
        (Some(Object::Address(mut a)), _) => {
            a.description = Some("edited by hand".into());
            Object::Address(a)
        }
        (Some(Object::Service(mut s)), _) => {
            s.port = "9999".into();
            Object::Service(s)
        }
        (Some(Object::NatRule(mut r)), _) => {
            r.disabled = true;
            Object::NatRule(r)
        }
        (Some(Object::StaticRoute(mut r)), _) => {
            r.metric = 99;
            Object::StaticRoute(r)
        }
        // Security kinds are not in these plans (no [sync.security]).
        (Some(_), _) => return,
        // A name the plan creates: someone else takes it first (no ownership marks).
        (None, _) => match kind {
            Kind::Tag => Object::Tag(pano_eks_core::Tag { name, color: None, comments: Some("by hand".into()), unmodelled: vec![] }),
            Kind::Address => Object::Address(pano_eks_core::Address {
                name,
                value: pano_eks_core::AddressValue::IpNetmask("10.9.9.9/32".into()),
                description: None,
                tags: vec![],
                unmodelled: vec![],
            }),
            Kind::Service => Object::Service(pano_eks_core::ServiceObject {
                name,
                protocol: pano_eks_core::Protocol::Tcp,
                port: "1".into(),
                description: None,
                tags: vec![],
                unmodelled: vec![],
            }),
            // A route's name carries our prefix (its ownership mark), so nobody else's can hold it;
            // a NAT rule name taken by hand is what `admit_inbound` reports as a conflict.
            _ => return,
        },
    };
    truth.apply(&[round_trip(Operation::Update { object: edited })]);
}

fn owned_names(truth: &Observed, names: &Names) -> Vec<String> {
    let mut v: Vec<String> = truth.addresses.iter().filter(|a| names.owns_tagged(&a.tags)).map(|a| a.name.clone()).collect();
    v.extend(truth.services.iter().filter(|s| names.owns_tagged(&s.tags)).map(|s| s.name.clone()));
    v.extend(truth.tags.iter().filter(|t| names.owns_tag_object(t)).map(|t| t.name.clone()));
    v
}

fn run_steps(steps: &[Step]) -> Result<(), TestCaseError> {
    let settings = PlanSettings::new("demo", "eks-dg", "eks-tpl");
    let names = Names::new("demo");
    let plan = |o: &Observed, f: &Facts| -> Result<Plan, PanosError> { Ok(pano_eks_core::plan(&settings, f, o).expect("valid settings")) };
    let panorama = Memory::default();
    let mut cache = Cache::default();
    let mut world = World::new();
    let mut full_next = true;
    let mut referrer_no = 0;
    for (n, s) in steps.iter().enumerate() {
        match s {
            Step::Upsert { cluster, i, port, host } => {
                world.insert((*cluster, *i), (*port, *host));
            }
            Step::Delete { cluster, i } => {
                world.remove(&(*cluster, *i));
            }
            Step::ForeignEdit { pick, how } => {
                let view = cache.observed().cloned().unwrap_or_default();
                let p = plan(&view, &facts(&world)).unwrap();
                if !p.operations.is_empty() {
                    let op = &p.operations[pick % p.operations.len()];
                    let (mut kind, mut name) = (op.kind(), op.name().to_owned());
                    // 3: the address of the Service this entry belongs to, which the plan may not touch.
                    let sibling =
                        p.services.iter().find(|st| [&st.service_object, &st.nat_rule].iter().any(|n| n.as_deref() == Some(op.name())));
                    if let (3, Some(a)) = (*how, sibling.and_then(|st| st.address.clone())) {
                        (kind, name) = (Kind::Address, a);
                    }
                    foreign_edit(&mut panorama.truth.lock().unwrap(), kind, name, *how);
                }
            }
            Step::AddReferrer { pick } => {
                let mut truth = panorama.truth.lock().unwrap();
                let ours = owned_names(&truth, &names);
                if !ours.is_empty() {
                    referrer_no += 1;
                    truth.referrers.push(Referrer {
                        kind: ReferrerKind::SecurityRule,
                        name: format!("by-hand-{referrer_no}"),
                        location: "device group eks-dg pre-rulebase".into(),
                        names: vec![ours[pick % ours.len()].clone()],
                        tags: vec![],
                    });
                    truth.referrers.sort();
                }
            }
            Step::RemoveReferrer { pick } => {
                let mut truth = panorama.truth.lock().unwrap();
                if !truth.referrers.is_empty() {
                    let at = pick % truth.referrers.len();
                    truth.referrers.remove(at);
                }
            }
            Step::Resync => full_next = true,
        }
        // One converge: the full-read plan, then the cached one, which must agree.
        let f = facts(&world);
        let full_plan = plan(&panorama.truth.lock().unwrap(), &f).unwrap();
        let fresh = full_next || cache.is_cold();
        if fresh {
            cache.fill(panorama.truth.lock().unwrap().clone());
        }
        let (cached_plan, confirmed) = futures::executor::block_on(cache.plan(&panorama, fresh, |o| plan(o, &f))).unwrap();
        prop_assert_eq!(&cached_plan, &full_plan, "step {} {:?}: {:?}", n, s, confirmed);
        panorama.write(&cached_plan.operations);
        cache.record(&cached_plan.operations);
        cache.pushed();
        full_next = false;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn the_cached_plan_is_the_full_read_plan(steps in prop::collection::vec(step(), 1..30)) {
        run_steps(&steps)?;
    }
}

/// Without foreign edits, a cached converge reads only the names it touches (and, for a delete,
/// the referrers); never a whole kind.
#[test]
fn a_converge_without_foreign_edits_reads_only_what_it_touches() {
    let settings = PlanSettings::new("demo", "eks-dg", "eks-tpl");
    let plan = |o: &Observed, f: &Facts| -> Result<Plan, PanosError> { Ok(pano_eks_core::plan(&settings, f, o).unwrap()) };
    let panorama = Memory::default();
    let mut cache = Cache::default();
    let mut world: World = (0..6).map(|i| ((0, i), (8000 + i as u16, 0))).collect();
    cache.fill(Observed::default());
    let converge = |cache: &mut Cache, world: &World| {
        panorama.reads.lock().unwrap().clear();
        let f = facts(world);
        let (p, _) = futures::executor::block_on(cache.plan(&panorama, false, |o| plan(o, &f))).unwrap();
        panorama.write(&p.operations);
        cache.record(&p.operations);
        (p, std::mem::take(&mut *panorama.reads.lock().unwrap()))
    };
    let (p, _) = converge(&mut cache, &world);
    assert!(!p.operations.is_empty());
    let only_named = |reads: &[String]| reads.iter().all(|r| r.starts_with("named ") || r == "referrers");
    world.insert((0, 2), (8100, 0)); // relabel: a new service object, the NAT rule, the old object goes
    let (p, reads) = converge(&mut cache, &world);
    assert!(p.operations.iter().any(|op| op.kind() == Kind::NatRule), "{:?}", p.operations);
    // The old port's service object goes, so the referrers are read for the hold decision.
    assert!(only_named(&reads) && reads.contains(&"referrers".to_string()), "{reads:?}");
    // The rule's uuid was learnt on the way: the update carries the one Panorama gave it.
    assert!(
        p.operations.iter().any(|op| matches!(op, Operation::Update { object: Object::NatRule(r) } if r.uuid.is_some())),
        "{:?} {reads:?}",
        p.operations
    );
    world.remove(&(0, 3)); // delete: its address and NAT rule, after reading the referrers
    let (p, reads) = converge(&mut cache, &world);
    assert!(p.operations.iter().any(|op| matches!(op, Operation::Delete { kind: Kind::Address, .. })), "{:?}", p.operations);
    assert!(only_named(&reads) && reads.contains(&"referrers".to_string()), "{reads:?}");
    let strip = |o: &Observed| {
        let mut o = o.clone();
        o.nat_rules.iter_mut().for_each(|r| r.uuid = None);
        o
    };
    assert_eq!(strip(cache.observed().unwrap()), strip(&panorama.truth.lock().unwrap()), "the cache holds what Panorama holds");
}

// ---------------------------------------------------------------------------------------------
// 2. against panorama-sim

use pano_eks::secret::Secret;
use pano_eks::sync::{Credentials, Engine, EngineOptions, Read, Report};
use support::{PASSWORD, Sim, facts_json};

const DG: &str = "/config/devices/entry[@name='localhost.localdomain']/device-group/entry[@name='eks-dg']";

/// Another admin gives one of our addresses another FQDN (our marks stay: still ours).
fn tamper(sim: &Sim, address: &str) {
    let xp = format!("{DG}/address/entry[@name='{address}']/fqdn");
    let r = sim.api_as(
        "other-admin",
        "other",
        &[("type", "config"), ("action", "edit"), ("xpath", &xp), ("element", "<fqdn>tampered.example</fqdn>")],
    );
    assert!(r.contains("success"), "{r}");
}

fn relabel(f: &mut Facts, svc: usize, port: u16) {
    let s = f.clusters[0].services.iter_mut().find(|s| s.name == format!("svc-{svc}")).unwrap();
    s.labels.insert("panw-tg-port".into(), port.to_string());
}

/// The xpaths written since the last reset (`/_sim/writes`), refused ones left out.
fn written(sim: &Sim) -> Vec<String> {
    sim.writes().iter().filter(|w| w["refused"] != true).map(|w| w["xpath"].as_str().unwrap().to_string()).collect()
}

fn fqdn_of(sim: &Sim, rt: &tokio::runtime::Runtime, e: &Engine, address: &str) -> String {
    let _ = sim;
    let o = rt.block_on(pano_eks::panorama::observe::read(
        &e.client,
        &pano_eks::panorama::locations::Locations::from_settings(&e.settings),
        pano_eks::panorama::observe::Which::Candidate,
    ));
    match &o.unwrap().addresses.iter().find(|a| a.name == address).expect("address present").value {
        pano_eks_core::AddressValue::Fqdn(f) => f.clone(),
        other => panic!("{other:?}"),
    }
}

fn converge(rt: &tokio::runtime::Runtime, e: &Engine, f: &Facts, read: Read) -> Report {
    let r = rt.block_on(e.converge_watched(f, read)).unwrap();
    assert!(r.plan.problems.is_empty(), "{:?}", r.plan.problems);
    r
}

#[test]
fn a_foreign_edit_is_repaired_by_the_next_converge_that_touches_it_else_by_the_resync() {
    let sim = Sim::start(&["--job-step-ms", "0"]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let e = rt
        .block_on(Engine::connect_with(
            &sim.config(""),
            sim.dir.path(),
            EngineOptions::default(),
            Credentials::Password(Secret::new(PASSWORD)),
        ))
        .unwrap();
    let mut f = Facts::from_json(&facts_json(4, "")).unwrap();
    let first = converge(&rt, &e, &f, Read::Full);
    assert!(first.confirmed.is_none() && first.commit_job.is_some());
    let (addr1, addr3) = ("demo.shop.default.svc-1", "demo.shop.default.svc-3");
    let want1 = fqdn_of(&sim, &rt, &e, addr1);

    // Someone else edits svc-1's address; then svc-2 is relabelled: that converge touches only
    // svc-2's entries (and confirms them by name), so svc-1's address stays as edited.
    tamper(&sim, addr1);
    sim.reset_writes();
    relabel(&mut f, 2, 9002);
    let r = converge(&rt, &e, &f, Read::Cached);
    let c = r.confirmed.as_ref().unwrap();
    assert!(c.reread.is_empty() && !c.fell_back, "{c:?}");
    assert!(c.named.values().all(|n| *n <= 2), "only svc-2's entries (and the old port's service object) are read: {c:?}");
    let sent = written(&sim);
    assert!(!sent.is_empty() && sent.iter().all(|x| !x.contains("svc-1") && !x.contains("svc-0") && !x.contains("svc-3")), "{sent:?}");
    assert!(r.commit_job.is_some(), "our writes are committed");
    assert_eq!(fqdn_of(&sim, &rt, &e, addr1), "tampered.example");

    // svc-1 is relabelled: the converge confirms svc-1's address with its rule and service,
    // finds the edit, reads the addresses whole and repairs it with the relabel.
    sim.reset_writes();
    relabel(&mut f, 1, 9001);
    let r = converge(&rt, &e, &f, Read::Cached);
    let c = r.confirmed.as_ref().unwrap();
    assert_eq!(c.reread, vec![Kind::Address], "{c:?}");
    let sent = written(&sim);
    assert!(sent.iter().any(|x| x == &format!("{DG}/address/entry[@name='{addr1}']")), "the address is written back: {sent:?}");
    assert_eq!(fqdn_of(&sim, &rt, &e, addr1), want1);

    // An edit no change touches waits for the resync, which reads everything and repairs it.
    let want3 = fqdn_of(&sim, &rt, &e, addr3);
    tamper(&sim, addr3);
    sim.reset_writes();
    relabel(&mut f, 0, 9000);
    let r = converge(&rt, &e, &f, Read::Cached);
    assert!(r.confirmed.as_ref().unwrap().reread.is_empty());
    assert!(written(&sim).iter().all(|x| !x.contains("svc-3")));
    assert_eq!(fqdn_of(&sim, &rt, &e, addr3), "tampered.example");
    sim.reset_writes();
    let r = converge(&rt, &e, &f, Read::Full);
    assert!(r.confirmed.is_none());
    assert_eq!(written(&sim), vec![format!("{DG}/address/entry[@name='{addr3}']")], "the resync writes exactly the repair");
    assert_eq!(fqdn_of(&sim, &rt, &e, addr3), want3);

    // Nothing changed, nothing to confirm: a cached converge reads and writes nothing.
    let before = sim.stats();
    let r = converge(&rt, &e, &f, Read::Cached);
    let after = sim.stats();
    assert!(r.plan.is_noop() && r.commit_job.is_none() && r.pushes.is_empty());
    assert_eq!(after["requests"], before["requests"], "no call at all: {before} {after}");
}

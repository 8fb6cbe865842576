//! Randomised (seeded, reproducible) checks of the planner's promises over many worlds:
//! applying a plan converges (the next plan is a no-op), foreign entries survive untouched,
//! names stay within limits, and the same facts in any order give the same plan.

mod common;

use std::collections::BTreeMap;

use common::*;
use pano_eks_core::panorama::naming::{NAME_MAX, ROUTE_NAME_MAX, TAG_NAME_MAX, is_safe_name};
use pano_eks_core::*;

/// xorshift64*: tiny, seeded, good enough to vary test worlds.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn random_facts(rng: &mut Rng) -> Facts {
    let cluster_names = ["shop", "blog", "a", "very-long-cluster-name-that-goes-on-and-on-and-on-for-quite-a-while-x", "c_2", "bad.name"];
    let namespaces = ["default", "team-a", "n".repeat(63).leak(), "kube-system"];
    let mut clusters = Vec::new();
    for c in 0..rng.below(5) {
        let name = rng.pick(&cluster_names).to_owned();
        let subnets = (0..rng.below(4))
            .map(|i| {
                let cidr = match rng.below(10) {
                    0 => "not-a-cidr".to_owned(),
                    1 => format!("10.{c}.{i}.7/24"),
                    _ => format!("10.{}.{}.0/{}", rng.below(3), rng.below(4) * 64, 18 + rng.below(8)),
                };
                SubnetFacts { id: format!("subnet-{c}-{i}"), cidr, az: "az".into() }
            })
            .collect();
        let services = (0..rng.below(12))
            .map(|i| {
                let label = match rng.below(12) {
                    0 => "abc".to_owned(),
                    1 => "0".to_owned(),
                    _ => (80 + rng.below(8)).to_string(),
                };
                let mut s = svc(rng.pick(&namespaces), &format!("svc-{}", rng.below(6)), &label);
                if rng.chance(10) {
                    s.labels.clear();
                }
                if rng.chance(10) {
                    s.service_type = "ClusterIP".into();
                }
                if rng.chance(15) {
                    s.lb_hostname = None;
                } else if rng.chance(30) {
                    s.lb_hostname = Some(format!("internal-{}.elb.amazonaws.com", rng.below(3)));
                }
                if rng.chance(10) {
                    s.ports = vec![PortFacts { port: 53, protocol: "UDP".into() }];
                }
                s.ports.push(PortFacts { port: 8000 + i as u32, protocol: "TCP".into() });
                s.created = ts(&format!("2026-0{}-0{}T00:00:00Z", 1 + rng.below(3), 1 + rng.below(3)));
                s
            })
            .collect();
        clusters.push(ClusterFacts { name, subnets, services });
    }
    let firewalls = (0..rng.below(4))
        .map(|i| {
            let trust = if rng.chance(10) { "junk".to_owned() } else { format!("192.168.{}.0/24", rng.below(3)) };
            fw(&format!("i-{i}"), &trust)
        })
        .collect();
    facts(clusters, firewalls)
}

/// Foreign entries (some with our names or prefixes) that must never be written.
fn foreign_noise(rng: &mut Rng, base: &Observed) -> Observed {
    let mut o = base.clone();
    let names = ["corp-web", "prod.shop.default.svc-1", "prod.tcp-81", "prod.in.shop.default.svc-2", "pano-eks.prod.zzz"];
    // Panorama names are unique per container: noise only takes free names.
    for _ in 0..rng.below(4) {
        let a = foreign_address(rng.pick(&names), &[rng.pick(&["corp", "pano-eks", "pano-eks.prod.shop", "pano-eks.dev.shop"])]);
        if !o.addresses.iter().any(|x| x.name == a.name) {
            o.addresses.push(a);
        }
    }
    let tag = rng.pick(&names);
    if rng.chance(50) && !o.tags.iter().any(|t| t.name == tag) {
        o.tags.push(Tag { name: tag.into(), color: None, comments: Some("by hand".into()), unmodelled: vec![] });
    }
    o
}

fn check_names(p: &Plan) {
    for op in &p.operations {
        let limit = match op.kind() {
            Kind::Tag => TAG_NAME_MAX,
            Kind::StaticRoute => ROUTE_NAME_MAX,
            _ => NAME_MAX,
        };
        assert!(op.name().len() <= limit && is_safe_name(op.name()), "{:?} {}", op.kind(), op.name());
    }
}

fn shuffled(f: &Facts, rng: &mut Rng) -> Facts {
    let mut f = f.clone();
    for _ in 0..3 {
        let n = f.clusters.len();
        if n > 1 {
            f.clusters.swap(rng.below(n as u64) as usize, rng.below(n as u64) as usize);
        }
        for c in &mut f.clusters {
            let m = c.services.len();
            if m > 1 {
                c.services.swap(rng.below(m as u64) as usize, rng.below(m as u64) as usize);
            }
        }
        f.firewalls.reverse();
    }
    f
}

#[test]
fn plans_converge_leave_foreign_entries_alone_and_are_order_independent() {
    // PLAN_FUZZ_ROUNDS / PLAN_FUZZ_SEED widen the search locally; CI runs the default.
    let rounds = std::env::var("PLAN_FUZZ_ROUNDS").ok().and_then(|n| n.parse().ok()).unwrap_or(300);
    let seed = std::env::var("PLAN_FUZZ_SEED").ok().and_then(|n| n.parse().ok()).unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut rng = Rng(seed);
    for round in 0..rounds {
        let before = random_facts(&mut rng);
        let after = random_facts(&mut rng);
        let start = foreign_noise(&mut rng, &converge(&before, &Observed::default()));
        let foreign_before: BTreeMap<String, Address> =
            start.addresses.iter().filter(|a| !Names::new("prod").owns_tagged(&a.tags)).map(|a| (a.name.clone(), a.clone())).collect();

        let p = run(&after, &start);
        check_names(&p);
        assert_eq!(run(&shuffled(&after, &mut rng), &start), p, "round {round}: order must not matter");
        let mut end = start.clone();
        end.apply(&p.operations);
        let again = run(&after, &end);
        assert!(again.is_noop(), "round {round}: not converged: {:#?}", again.operations);
        for (name, a) in &foreign_before {
            assert_eq!(end.addresses.iter().find(|x| &x.name == name), Some(a), "round {round}: foreign {name} changed");
        }
        // Every Service with the label is reported exactly once.
        let labelled: usize = after
            .clusters
            .iter()
            .map(|c| {
                let mut seen: Vec<(&str, &str)> = c
                    .services
                    .iter()
                    .filter(|s| s.labels.contains_key("panw-tg-port"))
                    .map(|s| (s.namespace.as_str(), s.name.as_str()))
                    .collect();
                seen.sort();
                seen.dedup();
                seen.len()
            })
            .sum();
        assert!(p.services.len() <= labelled, "round {round}");
        let protected = again.services.iter().filter(|s| s.state == ServiceState::Protected).count();
        let planned = p.services.iter().filter(|s| matches!(s.state, ServiceState::Planned | ServiceState::Protected)).count();
        assert_eq!(protected, planned, "round {round}: what was planned is protected after applying");
    }
}
